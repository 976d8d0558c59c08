"""Risk graphs and scenario grids for the Greeks & risk page: pure, vectorised, no I/O.

Every function takes position legs (`v6core.models.Leg`) or a `RiskBook` prepared from them
once with `prepare_risk`, and returns P&L in dollars measured against the current value:

- T+0 (today): Black-Scholes at each leg's implied vol, re-priced at the shocked underlying
  minus the same model at the current underlying, so no shock means exactly 0 P&L even when
  the quoted mark and the model disagree by a few cents;
- at expiry (the nearest option expiry in the legs, 16:00 New York): expiring legs at their
  payoff, later legs (calendars, diagonals) by Black-Scholes for the time they have left,
  minus each leg's current mark (the model value where there is no mark);
- stocks are linear: quantity x (shocked price - current price).

Inputs per leg: the underlying price from `spots[symbol]` when given, else the leg's
`greeks.und_price` (for a stock: `spots`, else its mark); the vol from `greeks.iv`, else the
vol implied from the leg's mark. Legs without either are left out and listed in
`RiskBook.skipped` so the page can say so. Vol shocks are in vol points (+1 = +0.01).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import polars as pl

from v6core.greeks import IV_MAX, NEW_YORK, EXPIRY_CLOSE, bs_price, implied_vol, year_fraction
from v6core.models import Leg

MIN_IV = 0.001          # a vol shock never takes a leg below 0.1 % vol
PRICE_SHOCKS_PCT = tuple(range(-10, 11, 2))   # the page's default grid: -10 % ... +10 %
VOL_SHOCKS_PTS = tuple(range(-5, 6))          # ... by -5 ... +5 vol points


@dataclass(slots=True, frozen=True)
class RiskBook:
    """Legs as aligned arrays (one row per priced leg), ready for vectorised scenarios."""

    con_ids: np.ndarray          # int
    symbols: np.ndarray          # str: the underlying
    is_option: np.ndarray        # bool
    is_call: np.ndarray          # bool
    strike: np.ndarray           # nan for stocks
    expiry: tuple[date | None, ...]
    t: np.ndarray                # years to expiry from `now` (0 for stocks)
    size: np.ndarray             # signed quantity x multiplier
    spot: np.ndarray             # current underlying price
    iv: np.ndarray               # decimal; nan for stocks
    mark: np.ndarray             # current value per share (mark, or the model's value)
    rate: float
    now: datetime
    skipped: tuple[tuple[int, str], ...] = field(default=())   # (con_id, why it is left out)

    def __len__(self) -> int:
        return int(self.con_ids.shape[0])

    def subset(self, mask: np.ndarray) -> RiskBook:
        return RiskBook(
            self.con_ids[mask], self.symbols[mask], self.is_option[mask], self.is_call[mask],
            self.strike[mask], tuple(e for e, m in zip(self.expiry, mask) if m), self.t[mask],
            self.size[mask], self.spot[mask], self.iv[mask], self.mark[mask], self.rate, self.now,
            self.skipped)

    def underlying(self, symbol: str) -> RiskBook:
        return self.subset(self.symbols == symbol)

    @property
    def horizon(self) -> datetime | None:
        """The close of the nearest expiry among the options still alive: None without options,
        `now` when every option held has already expired.

        A leg that already expired (and is still held) is worth its intrinsic value and must
        not pull the horizon into the past, where later legs would have more time left.
        """
        if not self.is_option.any():
            return None
        alive = [e for e, opt, t in zip(self.expiry, self.is_option, self.t) if opt and t > 0]
        if not alive:
            return self.now
        return datetime.combine(min(alive), EXPIRY_CLOSE, tzinfo=NEW_YORK)


def _positive(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def prepare_risk(legs: Sequence[Leg], now: datetime, rate: float,
                 spots: Mapping[str, float] | None = None) -> RiskBook:
    """Collect what the scenarios need from `legs`; one vectorised IV solve for legs lacking one."""
    spots = spots or {}
    rows: list[tuple] = []
    skipped: list[tuple[int, str]] = []
    for leg in legs:
        c = leg.contract
        qty = leg.quantity if leg.quantity is not None and math.isfinite(leg.quantity) else 0.0
        if qty == 0:
            continue
        size = qty * (c.multiplier or 1.0)
        und = spots.get(c.symbol)
        g = leg.greeks
        if c.sec_type == "STK":
            spot = und if _positive(und) else (leg.mark if _positive(leg.mark) else None)
            if spot is None:
                skipped.append((c.con_id, "no price"))
                continue
            rows.append((c.con_id, c.symbol, False, False, np.nan, None, 0.0, size, spot, np.nan, spot))
            continue
        if not (c.is_option and c.expiry is not None and _positive(c.strike) and c.right in ("C", "P")):
            skipped.append((c.con_id, f"{c.sec_type} is not a stock or a complete option"))
            continue
        if not _positive(und):
            und = g.und_price if g is not None and _positive(g.und_price) else None
        if und is None:
            skipped.append((c.con_id, "no underlying price"))
            continue
        iv = g.iv if g is not None and _positive(g.iv) and g.iv <= IV_MAX else np.nan
        mark = leg.mark if _positive(leg.mark) else np.nan
        t = year_fraction(c.expiry, now)
        rows.append((c.con_id, c.symbol, True, c.right == "C", float(c.strike), c.expiry, t, size,
                     float(und), iv, mark))

    n = len(rows)
    cols = list(zip(*rows)) if rows else [()] * 11
    book = dict(
        con_ids=np.array(cols[0], dtype=np.int64), symbols=np.array(cols[1], dtype=object),
        is_option=np.array(cols[2], dtype=bool), is_call=np.array(cols[3], dtype=bool),
        strike=np.array(cols[4], dtype=float), expiry=tuple(cols[5]), t=np.array(cols[6], dtype=float),
        size=np.array(cols[7], dtype=float), spot=np.array(cols[8], dtype=float),
        iv=np.array(cols[9], dtype=float), mark=np.array(cols[10], dtype=float),
    )
    if n == 0:
        return RiskBook(**book, rate=rate, now=now, skipped=tuple(skipped))

    opt, t, iv, mark = book["is_option"], book["t"], book["iv"], book["mark"]
    need_iv = opt & (t > 0) & ~np.isfinite(iv) & np.isfinite(mark)
    if need_iv.any():
        iv[need_iv] = implied_vol(mark[need_iv], book["spot"][need_iv], book["strike"][need_iv],
                                  t[need_iv], rate, book["is_call"][need_iv])
    priced = ~opt | (t == 0) | np.isfinite(iv)
    for i in np.flatnonzero(~priced):
        skipped.append((int(book["con_ids"][i]), "no implied vol (IB sent none, mark implies none)"))
    # Where there is no mark, the model's own value is the reference.
    model_now = np.where(opt, bs_price(book["spot"], np.where(opt, book["strike"], 1.0), t, rate,
                                       np.where(opt, iv, 0.2), book["is_call"]), book["spot"])
    book["mark"] = np.where(np.isfinite(mark), mark, model_now)
    full = RiskBook(**book, rate=rate, now=now, skipped=())
    kept = full.subset(priced & np.isfinite(full.mark))
    for i in np.flatnonzero(priced & ~np.isfinite(full.mark)):
        skipped.append((int(book["con_ids"][i]), "cannot be valued"))
    return RiskBook(kept.con_ids, kept.symbols, kept.is_option, kept.is_call, kept.strike,
                    kept.expiry, kept.t, kept.size, kept.spot, kept.iv, kept.mark, rate, now,
                    tuple(sorted(skipped)))


def _book(legs, now: datetime, rate: float, spots) -> RiskBook:
    return legs if isinstance(legs, RiskBook) else prepare_risk(legs, now, rate, spots)


def _value(book: RiskBook, spot: np.ndarray, t: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """Per-share value of every leg in every scenario: arrays shaped (scenarios, legs)."""
    shape = spot.shape
    opt = np.broadcast_to(book.is_option, shape)
    value = np.array(spot, dtype=float, copy=True)          # stocks: the price itself
    if opt.any():
        strike = np.broadcast_to(book.strike, shape)[opt]
        call = np.broadcast_to(book.is_call, shape)[opt]
        value[opt] = bs_price(spot[opt], strike, np.broadcast_to(t, shape)[opt], book.rate,
                              np.broadcast_to(iv, shape)[opt], call)
    return value


def close_of(expiry: date) -> datetime:
    """16:00 New York on `expiry`: the moment "at expiry" means."""
    return datetime.combine(expiry, EXPIRY_CLOSE, tzinfo=NEW_YORK)


def _pnl(book: RiskBook, spot: np.ndarray, iv_shift_pts: np.ndarray | float, at_expiry: bool,
         horizon: datetime | None = None) -> np.ndarray:
    """Total P&L per scenario row; `spot` is (scenarios, legs), iv_shift_pts broadcasts to it.

    T+0 (at_expiry False, no horizon): against the model today. At a later moment (`horizon`,
    or the nearest expiry when at_expiry): every leg valued at that moment (legs expired by
    then at their payoff, later legs by Black-Scholes for the time they still have), against
    each leg's current mark.
    """
    shift = np.asarray(iv_shift_pts, dtype=float) / 100.0
    iv = np.where(book.is_option, np.maximum(book.iv + shift, MIN_IV), np.nan)
    if at_expiry or horizon is not None:
        horizon = horizon if horizon is not None else book.horizon
        t = np.array([year_fraction(e, horizon) if opt and horizon is not None else 0.0
                      for e, opt in zip(book.expiry, book.is_option)], dtype=float)
        now_value = np.where(book.is_option, book.mark, book.spot)
    else:
        t = book.t
        now_value = _value(book, book.spot[None, :], t, np.where(book.is_option, book.iv, np.nan)[None, :])
    shocked = _value(book, spot, t, np.broadcast_to(iv, spot.shape))
    pnl = (shocked - now_value) * book.size
    return np.nansum(pnl, axis=1)


def _curves(book: RiskBook, spot: np.ndarray, iv_shift: float, at: datetime | None,
            expiry: date | None) -> dict[str, np.ndarray]:
    curves = {"t0_pnl": _pnl(book, spot, iv_shift, at_expiry=False),
              "expiry_pnl": _pnl(book, spot, iv_shift, at_expiry=True,
                                 horizon=close_of(expiry) if expiry is not None else None)}
    if at is not None:
        curves["at_pnl"] = _pnl(book, spot, iv_shift, at_expiry=False, horizon=at)
    return curves


def expiries(book: RiskBook) -> list[date]:
    """Expiries of the options still alive in the book, nearest first (the "at expiry" choices)."""
    return sorted({e for e, opt, t in zip(book.expiry, book.is_option, book.t) if opt and t > 0})


def risk_curves(legs: Sequence[Leg] | RiskBook, spot_grid, now: datetime, rate: float,
                iv_shift: float = 0.0, spots: Mapping[str, float] | None = None, *,
                at: datetime | None = None, expiry: date | None = None) -> dict[str, np.ndarray]:
    """P&L of ONE underlying's legs against its price: today (T+0) and at an expiry.

    `spot_grid`: underlying prices to evaluate; `iv_shift` in vol points applied to every
    option (0 = as quoted). `expiry`: which expiry "at expiry" means (default the nearest);
    `at`: also a T+n curve at that moment ("at_pnl"). Returns {"spot", "t0_pnl",
    "expiry_pnl"[, "at_pnl"]} arrays of the grid's length.
    """
    book = _book(legs, now, rate, spots)
    symbols = set(book.symbols.tolist())
    if len(symbols) > 1:
        raise ValueError(f"risk_curves is per underlying; got {sorted(symbols)} "
                         f"(use portfolio_risk_curves for several)")
    grid = np.atleast_1d(np.asarray(spot_grid, dtype=float))
    if len(book) == 0:
        zeros = np.zeros_like(grid)
        out = {"spot": grid, "t0_pnl": zeros, "expiry_pnl": zeros.copy()}
        if at is not None:
            out["at_pnl"] = zeros.copy()
        return out
    spot = np.broadcast_to(grid[:, None], (grid.shape[0], len(book)))
    return {"spot": grid, **_curves(book, spot, iv_shift, at, expiry)}


def portfolio_risk_curves(legs: Sequence[Leg] | RiskBook, moves_pct, now: datetime, rate: float,
                          iv_shift: float = 0.0, spots: Mapping[str, float] | None = None, *,
                          betas: Mapping[str, float] | None = None, at: datetime | None = None,
                          expiry: date | None = None) -> dict[str, np.ndarray]:
    """Like `risk_curves` for many underlyings against a % move of a reference index.

    Without `betas` every underlying moves by the same %; with them (betas to the reference,
    see `rebase_betas`) each underlying moves by its beta x the index move (missing: 1).
    Returns {"move_pct", "t0_pnl", "expiry_pnl"[, "at_pnl"]}; expiry defaults to the nearest.
    """
    book = _book(legs, now, rate, spots)
    moves = np.atleast_1d(np.asarray(moves_pct, dtype=float))
    if len(book) == 0:
        zeros = np.zeros_like(moves)
        out = {"move_pct": moves, "t0_pnl": zeros, "expiry_pnl": zeros.copy()}
        if at is not None:
            out["at_pnl"] = zeros.copy()
        return out
    beta = np.array([float((betas or {}).get(s, 1.0)) for s in book.symbols.tolist()])
    factor = np.maximum(1.0 + beta[None, :] * moves[:, None] / 100.0, 0.001)
    spot = book.spot[None, :] * factor
    return {"move_pct": moves, **_curves(book, spot, iv_shift, at, expiry)}


def rebase_betas(betas: Mapping[str, float], reference: str) -> dict[str, float]:
    """Betas to another reference index, from betas to SPY: beta(X, ref) = beta(X) / beta(ref).

    Exact when returns follow the one-factor model the SPY betas come from; the reference
    itself gets 1. An unknown reference is taken as SPY-like (beta 1).
    """
    base = float(betas.get(reference, 1.0)) or 1.0
    rebased = {symbol: float(b) / base for symbol, b in betas.items()}
    rebased[reference] = 1.0
    return rebased


def scenario_matrix(legs: Sequence[Leg] | RiskBook, price_shocks_pct, vol_shocks_pts, now: datetime,
                    rate: float, spots: Mapping[str, float] | None = None, *,
                    betas: Mapping[str, float] | None = None) -> np.ndarray:
    """T+0 P&L, shape (len(price_shocks_pct), len(vol_shocks_pts)): every underlying moved by
    the same % (with `betas`: by its beta x the reference index's %, as in
    `portfolio_risk_curves`), every option's vol by the same number of points."""
    book = _book(legs, now, rate, spots)
    prices = np.atleast_1d(np.asarray(price_shocks_pct, dtype=float))
    vols = np.atleast_1d(np.asarray(vol_shocks_pts, dtype=float))
    if len(book) == 0:
        return np.zeros((prices.shape[0], vols.shape[0]))
    p, v = np.meshgrid(prices, vols, indexing="ij")
    p, v = p.ravel(), v.ravel()
    beta = np.array([float((betas or {}).get(sym, 1.0)) for sym in book.symbols.tolist()])
    spot = book.spot[None, :] * np.maximum(1.0 + beta[None, :] * p[:, None] / 100.0, 0.001)
    pnl = _pnl(book, spot, np.broadcast_to(v[:, None], spot.shape), at_expiry=False)
    return pnl.reshape(prices.shape[0], vols.shape[0])


def scenario_grid(legs: Sequence[Leg] | RiskBook, price_shocks_pct, vol_shocks_pts, now: datetime,
                  rate: float, spots: Mapping[str, float] | None = None) -> pl.DataFrame:
    """`scenario_matrix` as a long polars frame: price_shock_pct, vol_shock_pts, pnl.

    Pivot with `frame.pivot(on="vol_shock_pts", index="price_shock_pct", values="pnl")`.
    """
    prices = np.atleast_1d(np.asarray(price_shocks_pct, dtype=float))
    vols = np.atleast_1d(np.asarray(vol_shocks_pts, dtype=float))
    matrix = scenario_matrix(legs, prices, vols, now, rate, spots)
    p, v = np.meshgrid(prices, vols, indexing="ij")
    return pl.DataFrame({"price_shock_pct": p.ravel(), "vol_shock_pts": v.ravel(), "pnl": matrix.ravel()})


def spot_grid(spot: float, width_pct: float = 15.0, points: int = 121) -> np.ndarray:
    """Evenly spaced underlying prices spot x (1 +/- width_pct %), always including spot itself."""
    half = points // 2
    return spot * (1.0 + np.linspace(-width_pct, width_pct, 2 * half + 1) / 100.0)


def crossings(x, y) -> tuple[float, ...]:
    """Where a sampled P&L curve crosses zero (breakevens), by linear interpolation between
    samples; a sample exactly at 0 between two of the same sign (a touch) is not a crossing."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out: list[float] = []
    sign = np.sign(ys)
    nonzero = np.flatnonzero(sign != 0)
    for a, b in zip(nonzero[:-1], nonzero[1:]):
        if sign[a] != sign[b]:
            if b == a + 1:
                out.append(float(xs[a] - ys[a] * (xs[b] - xs[a]) / (ys[b] - ys[a])))
            else:                       # zero on the samples in between: their middle
                out.append(float(0.5 * (xs[a + 1] + xs[b - 1])))
    return tuple(out)


def strategy_legs(legs: Sequence[Leg], con_ids: Sequence[int], quantities: Sequence[float] = ()) -> list[Leg]:
    """The legs of one strategy, each at the quantity the strategy holds (a held leg can be
    split between strategies: 2 of 3 short puts in a condor). Without `quantities`, whole legs."""
    from dataclasses import replace

    by_id: dict[int, Leg] = {}
    for leg in legs:
        by_id.setdefault(leg.contract.con_id, leg)
    out = []
    for i, con_id in enumerate(con_ids):
        leg = by_id.get(con_id)
        if leg is None:
            continue
        if i < len(quantities) and quantities[i] != leg.quantity:
            leg = replace(leg, quantity=float(quantities[i]))    # the risk engine reads the quantity
        out.append(leg)
    return out
