"""What a structure can make or lose: net debit/credit, max profit, max loss, breakevens and the
probability of profit, at the first expiry among its legs. Pure and vectorised.

- One expiry (and stock): the payoff is piecewise linear with kinks at the strikes, so the
  extremes sit at S = 0, at a strike, or run to infinity with the slope beyond the last strike
  (unlimited); breakevens are the exact roots of the linear pieces.
- Several expiries (calendars, diagonals): at the first expiry, later legs are valued by
  Black-Scholes at their own IV for the time they have left; extremes and roots come from a
  dense grid refined by bisection, and "unlimited" is read from the slope far out.
- Probability of profit: P&L > 0 at that expiry under a lognormal underlying; each breakeven
  uses the IV of the legs interpolated at its strike (the smile), as a trader's platform does.

All P&L figures are dollars for all units of the structure, after the premium: `max_loss` is
the lowest P&L (negative), `max_profit` the highest; None means unlimited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from scipy.stats import norm

from v6core.greeks import EXPIRY_CLOSE, NEW_YORK, bs_price, year_fraction
from v6core.structures.chain import StructureError
from v6core.structures.templates import Structure

UNLIMITED_SLOPE = 1e-6       # $ of P&L per $ of underlying beyond which a side is unlimited
GRID_POINTS = 4001


@dataclass(slots=True, frozen=True)
class PayoffSummary:
    horizon: date                    # the expiry the figures refer to (the first one)
    premium: float                   # $ paid (+, a debit) or received (-, a credit)
    max_profit: float | None         # highest P&L at the horizon; None = unlimited
    max_loss: float | None           # lowest P&L at the horizon (negative); None = unlimited
    breakevens: tuple[float, ...]
    pop: float | None                # probability of profit at the horizon, 0..1

    @property
    def is_credit(self) -> bool:
        return self.premium < 0


@dataclass(slots=True, frozen=True)
class _Legs:
    is_option: np.ndarray
    is_call: np.ndarray
    strike: np.ndarray
    size: np.ndarray                 # signed quantity x multiplier, all units
    t_left: np.ndarray               # years left after the horizon (0 for the expiring legs)
    iv: np.ndarray


def _legs(structure: Structure, horizon: datetime) -> _Legs:
    rows = []
    for leg, qty in structure.scaled():
        c = leg.contract
        if leg.is_option:
            iv = leg.quote.iv if leg.quote is not None and leg.quote.iv else math.nan
            rows.append((True, c.right == "C", float(c.strike), qty * c.multiplier,
                         year_fraction(c.expiry, horizon), iv))
        else:
            rows.append((False, False, math.nan, float(qty), 0.0, math.nan))
    cols = list(zip(*rows))
    return _Legs(np.array(cols[0], bool), np.array(cols[1], bool), np.array(cols[2], float),
                 np.array(cols[3], float), np.array(cols[4], float), np.array(cols[5], float))


def _values(legs: _Legs, spots: np.ndarray, rate: float) -> np.ndarray:
    """Value of the whole structure at the horizon for each underlying price."""
    s = spots[:, None]
    k = np.where(legs.is_option, legs.strike, 0.0)[None, :]
    intrinsic = np.where(legs.is_call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
    value = np.where(legs.is_option, intrinsic, s)
    later = legs.is_option & (legs.t_left > 0)
    if later.any():
        n, m = spots.shape[0], int(later.sum())
        grid_s = np.repeat(spots, m)
        price = bs_price(grid_s, np.tile(legs.strike[later], n), np.tile(legs.t_left[later], n), rate,
                         np.tile(legs.iv[later], n), np.tile(legs.is_call[later], n))
        value[:, later] = price.reshape(n, m)
    return value @ legs.size


def _smile(structure: Structure, horizon_expiry: date):
    """IV at a price, interpolated over the legs' strikes (the horizon expiry's legs first)."""
    points = sorted({(leg.contract.strike, leg.quote.iv) for leg in structure.legs
                     if leg.is_option and leg.quote is not None and leg.quote.iv
                     and leg.contract.expiry == horizon_expiry})
    if not points:
        points = sorted({(leg.contract.strike, leg.quote.iv) for leg in structure.legs
                         if leg.is_option and leg.quote is not None and leg.quote.iv})
    if not points:
        return None
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return lambda price: float(np.interp(price, xs, ys))


def _prob_above(spot: float, level: float, t: float, rate: float, iv: float) -> float:
    if level <= 0:
        return 1.0
    if t <= 0 or iv <= 0:
        return 1.0 if spot > level else 0.0
    d2 = (math.log(spot / level) + (rate - 0.5 * iv * iv) * t) / (iv * math.sqrt(t))
    return float(norm.cdf(d2))


def _roots_linear(xs: np.ndarray, ys: np.ndarray) -> list[float]:
    roots = []
    for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:]):
        if y0 == 0.0 and (not roots or not math.isclose(roots[-1], x0)):
            if x0 > 0:
                roots.append(float(x0))
        elif y0 * y1 < 0:
            roots.append(float(x0 - y0 * (x1 - x0) / (y1 - y0)))
    return roots


def analyse(structure: Structure, spot: float, now: datetime, rate: float,
            price: float | None = None) -> PayoffSummary:
    """The structure's payoff figures at its first expiry, bought/sold at `price` (the combo
    price per unit; default the legs' mids)."""
    expiries = structure.expiries
    if not expiries:
        raise StructureError("a structure without options has no expiry to analyse")
    first = expiries[0]
    horizon = datetime.combine(first, EXPIRY_CLOSE, tzinfo=NEW_YORK)
    premium = structure.premium(price)
    if premium is None:
        raise StructureError("a leg has no two-sided quote: no mid to price the structure")
    legs = _legs(structure, horizon)
    if np.any(legs.is_option & (legs.t_left > 0) & ~np.isfinite(legs.iv)):
        raise StructureError("a later leg has no implied vol to value it at the first expiry")

    def pnl(s: np.ndarray) -> np.ndarray:
        return _values(legs, s, rate) - premium

    strikes = np.unique(legs.strike[legs.is_option])
    multi = bool((legs.t_left > 0).any())
    far = max(float(strikes.max()), spot) * 4.0
    if not multi:
        xs = np.concatenate(([0.0], strikes, [far]))
        ys = pnl(xs)
        right_slope = float(legs.size[~legs.is_option].sum()
                            + legs.size[legs.is_option & legs.is_call].sum())
        roots = _roots_linear(xs, ys)
    else:
        xs = np.unique(np.concatenate((np.linspace(far / GRID_POINTS, far, GRID_POINTS), strikes)))
        ys = pnl(xs)
        tail = pnl(np.array([far * 10, far * 20]))
        right_slope = float((tail[1] - tail[0]) / (far * 10))
        roots = [_bisect(pnl, a, b) for a, b in _brackets(xs, ys)]
    max_profit = None if right_slope > UNLIMITED_SLOPE else float(ys.max())
    max_loss = None if right_slope < -UNLIMITED_SLOPE else float(ys.min())
    if max_profit is not None and right_slope > -UNLIMITED_SLOPE and multi:
        max_profit = max(max_profit, float(tail.max()))
    if max_loss is not None and right_slope < UNLIMITED_SLOPE and multi:
        max_loss = min(max_loss, float(tail.min()))
    breakevens = tuple(round(r, 4) for r in roots)
    pop = _pop(structure, first, spot, now, rate, breakevens, pnl)
    return PayoffSummary(first, float(premium), max_profit, max_loss, breakevens, pop)


def _brackets(xs: np.ndarray, ys: np.ndarray) -> list[tuple[float, float]]:
    return [(float(xs[i]), float(xs[i + 1])) for i in np.flatnonzero(ys[:-1] * ys[1:] < 0)]


def _bisect(f, a: float, b: float, iterations: int = 60) -> float:
    fa = float(f(np.array([a]))[0])
    for _ in range(iterations):
        m = 0.5 * (a + b)
        fm = float(f(np.array([m]))[0])
        if (fm < 0) == (fa < 0):
            a, fa = m, fm
        else:
            b = m
    return 0.5 * (a + b)


def _pop(structure: Structure, expiry: date, spot: float, now: datetime, rate: float,
         breakevens: tuple[float, ...], pnl) -> float | None:
    smile = _smile(structure, expiry)
    t = year_fraction(expiry, now)
    if smile is None:
        return None
    edges = [0.0, *breakevens, math.inf]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        if math.isinf(hi):
            probe = spot if lo == 0 else lo * 1.05 + 0.01
        else:
            probe = 0.5 * (lo + hi)
        if float(pnl(np.array([probe]))[0]) <= 0:
            continue
        above_lo = 1.0 if lo == 0 else _prob_above(spot, lo, t, rate, smile(lo))
        above_hi = 0.0 if math.isinf(hi) else _prob_above(spot, hi, t, rate, smile(hi))
        total += max(above_lo - above_hi, 0.0)
    return min(max(total, 0.0), 1.0)
