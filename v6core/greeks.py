"""Black-Scholes Greeks, implied vol, validation and position Greeks: pure, vectorised, no I/O.

Longer than ~450 lines on purpose: one function computes Greeks for live, history and what-if alike.

Units are IB's (see `v6core.models`): per-contract Greeks per share, theta in $ per calendar
day, vega in $ per 1 vol point. The pricing runs through `py_vollib_vectorized`, whose Greeks
are finite differences with exactly those units: theta is the price change over one calendar
day (for the last day: the whole remaining time value), vega the change per 1 vol point.

The first call JIT-compiles numba code (seconds, cached on disk afterwards); `warm_up()` lets the
runtime pay that once at start instead of on the first tick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import py_vollib_vectorized as pvv

from v6core.models import Greeks, GreekSource, PositionGreeks

NEW_YORK = ZoneInfo("America/New_York")
SECONDS_PER_YEAR = 365.0 * 24 * 3600
EXPIRY_CLOSE = time(16, 0)

# Inside Black-Scholes only: an expiring-today leg a few seconds from the close is priced at
# this time to expiry (about 30 s) rather than dividing by ~0.
MIN_T = 1e-6
ONE_DAY = 1.0 / 365.0
IV_MAX = 10.0                      # 1000 %: above this an "implied vol" is noise, not a market
NEGATIVE_TOLERANCE = -1e-9         # gamma/vega this slightly below 0 are rounding, not data
DELTA_TOLERANCE = 1e-9
IB_UNSET = 1e300                   # IB sends Double.MAX_VALUE for "not computed"
IB_GREEK_SENTINEL = -2.0           # delta/gamma/vega/theta "unknown" (ib_async keeps it for vega/theta)
IB_PRICE_SENTINEL = -1.0           # impliedVol/optPrice/undPrice "unknown"

GREEK_KEYS = ("price", "delta", "gamma", "theta", "vega")


def year_fraction(expiry: date, now: datetime) -> float:
    """Years (of 365 days) from `now` to 16:00 New York time on `expiry`; 0 once that has passed.

    On the expiry day before the close this is small and positive, so the leg stays priceable.
    """
    if now.tzinfo is None:
        raise ValueError("year_fraction needs a timezone-aware `now` (v6 timestamps are UTC)")
    close = datetime.combine(expiry, EXPIRY_CLOSE, tzinfo=NEW_YORK)
    seconds = (close - now).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR


def _as_flags(is_call: np.ndarray) -> list[int]:
    # py_vollib_vectorized maps each flag through a dict in Python: plain ints are the cheapest.
    return np.where(is_call, 1, -1).tolist()


def _broadcast(*values) -> list[np.ndarray]:
    arrays = [np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
    return [np.ascontiguousarray(a) for a in np.broadcast_arrays(*arrays)]


@dataclass(slots=True)
class _Inputs:
    """Broadcast inputs split into expired rows (t == 0) and live rows (t > 0 with a vol)."""

    spot: np.ndarray
    strike: np.ndarray
    t: np.ndarray
    rate: np.ndarray
    iv: np.ndarray
    call: np.ndarray
    expired: np.ndarray
    live: np.ndarray

    @classmethod
    def of(cls, spot, strike, t, rate, iv, is_call) -> _Inputs:
        is_call_arr = np.atleast_1d(np.asarray(is_call, dtype=bool))
        spot, strike, t, rate, iv, call_f = _broadcast(spot, strike, t, rate, iv, is_call_arr)
        usable = (np.isfinite(spot) & np.isfinite(strike) & np.isfinite(t) & np.isfinite(rate)
                  & (spot > 0) & (strike > 0) & (t >= 0))
        live = usable & (t > 0) & np.isfinite(iv) & (iv > 0)
        return cls(spot, strike, t, rate, iv, call_f.astype(bool), usable & (t == 0), live)

    def intrinsic(self, rows: np.ndarray) -> np.ndarray:
        s, k = self.spot[rows], self.strike[rows]
        return np.where(self.call[rows], np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))

    def pvv_args(self) -> tuple:
        live = self.live
        return (_as_flags(self.call[live]), self.spot[live], self.strike[live],
                np.maximum(self.t[live], MIN_T), self.rate[live], self.iv[live])


def bs_greeks(spot, strike, t, rate, iv, is_call) -> dict[str, np.ndarray]:
    """Black-Scholes price and Greeks for arrays (broadcast) of European options.

    Returns float arrays under "price", "delta", "gamma", "theta" ($/share/day), "vega"
    ($/share/vol point). t == 0 means expired: intrinsic value, delta 0 or +/-1, no gamma,
    theta or vega. Rows with unusable inputs (non-finite, spot/strike <= 0, iv <= 0 while
    t > 0, t < 0) come back as NaN in every key, never as an exception.
    """
    x = _Inputs.of(spot, strike, t, rate, iv, is_call)
    n = x.spot.shape[0]
    out = {k: np.full(n, np.nan) for k in GREEK_KEYS}

    expired = x.expired
    if expired.any():
        s, k, c = x.spot[expired], x.strike[expired], x.call[expired]
        out["price"][expired] = x.intrinsic(expired)
        out["delta"][expired] = np.where(c, np.where(s > k, 1.0, 0.0), np.where(s < k, -1.0, 0.0))
        for key in ("gamma", "theta", "vega"):
            out[key][expired] = 0.0

    live = x.live
    if live.any():
        args = x.pvv_args()
        price = pvv.vectorized_black_scholes(*args, return_as="numpy")
        out["price"][live] = price
        delta = pvv.vectorized_delta(*args, model="black_scholes", return_as="numpy")
        out["delta"][live] = np.clip(delta, -1.0, 1.0)
        # Finite differences of a convex, vol-increasing price can dip a hair below zero.
        gamma = pvv.vectorized_gamma(*args, model="black_scholes", return_as="numpy")
        out["gamma"][live] = np.maximum(gamma, 0.0)
        vega = pvv.vectorized_vega(*args, model="black_scholes", return_as="numpy")
        out["vega"][live] = np.maximum(vega, 0.0)
        theta = pvv.vectorized_theta(*args, model="black_scholes", return_as="numpy")
        # In its last day py_vollib_vectorized measures theta against t = 1e-5 years, which is
        # later than "now" once t < 1e-5 (theta turns positive); the last day's decay is simply
        # all the time value left.
        last_day = x.t[live] <= ONE_DAY
        if last_day.any():
            rows = np.flatnonzero(live)[last_day]
            theta[last_day] = x.intrinsic(rows) - price[last_day]
        out["theta"][live] = theta
    return out


def bs_price(spot, strike, t, rate, iv, is_call) -> np.ndarray:
    """Black-Scholes price only (cheaper than `bs_greeks` when scanning price/vol grids)."""
    x = _Inputs.of(spot, strike, t, rate, iv, is_call)
    price = np.full(x.spot.shape[0], np.nan)
    if x.expired.any():
        price[x.expired] = x.intrinsic(x.expired)
    if x.live.any():
        price[x.live] = pvv.vectorized_black_scholes(*x.pvv_args(), return_as="numpy")
    return price


def implied_vol(price, spot, strike, t, rate, is_call) -> np.ndarray:
    """Implied vol (decimal) per row; NaN where no vol in (0, IV_MAX] reproduces the price.

    That is: price at or below the discounted intrinsic value, at or above the no-arbitrage
    bound (spot for a call, discounted strike for a put), expired, or any input unusable.
    """
    is_call_arr = np.atleast_1d(np.asarray(is_call, dtype=bool))
    price, spot, strike, t, rate, call_f = _broadcast(price, spot, strike, t, rate, is_call_arr)
    call = call_f.astype(bool)
    result = np.full(price.shape[0], np.nan)
    finite = (np.isfinite(price) & np.isfinite(spot) & np.isfinite(strike) & np.isfinite(t)
              & np.isfinite(rate))
    ok = finite & (price > 0) & (spot > 0) & (strike > 0) & (t > 0)
    with np.errstate(invalid="ignore", over="ignore"):
        discounted_strike = strike * np.exp(-rate * t)
        intrinsic = np.where(call, np.maximum(spot - discounted_strike, 0.0),
                             np.maximum(discounted_strike - spot, 0.0))
        upper = np.where(call, spot, discounted_strike)
    ok &= (price > intrinsic) & (price < upper)
    if ok.any():
        solved = pvv.vectorized_implied_volatility(
            price[ok], spot[ok], strike[ok], np.maximum(t[ok], MIN_T), rate[ok],
            _as_flags(call[ok]), model="black_scholes", on_error="ignore", return_as="numpy")
        solved = np.asarray(solved, dtype=float)
        solved[~np.isfinite(solved) | (solved <= 0) | (solved > IV_MAX)] = np.nan
        result[ok] = solved
    return result


def warm_up() -> None:
    """JIT-compile the numba kernels now (a few seconds the first time, cached on disk)."""
    bs_greeks([100.0], [100.0], [0.1], 0.04, [0.2], [True])
    implied_vol([2.0], [100.0], [100.0], [0.1], 0.04, [True])


# --------------------------------------------------------------------------- fallback Greeks

@dataclass(slots=True, frozen=True)
class GreekRequest:
    """One option leg whose Greeks must be computed here (IB gave none or garbage).

    Give either `expiry` (time to expiry is measured from `now` in `fill_greeks`) or `t` in
    years. `iv` is IB's implied vol if it sent one (sentinels/NaN allowed: they are ignored),
    `mid` the option's mid price, used to imply a vol when IB's is missing.
    """

    con_id: int
    spot: float | None
    strike: float
    is_call: bool
    expiry: date | None = None
    t: float | None = None
    iv: float | None = None
    mid: float | None = None


@dataclass(slots=True, frozen=True)
class FilledGreeks:
    con_id: int
    greeks: Greeks | None
    reason: str = ""               # why greeks is None (empty when it is not)


def _usable_iv(iv: float | None) -> bool:
    return iv is not None and math.isfinite(iv) and 0.0 < iv <= IV_MAX


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def fill_greeks_explained(requests: Sequence[GreekRequest], now: datetime,
                          rate: float) -> list[FilledGreeks]:
    """Like `fill_greeks`, but each result also says why Greeks could not be computed."""
    n = len(requests)
    spot = np.full(n, np.nan)
    strike = np.full(n, np.nan)
    t = np.full(n, np.nan)
    iv = np.full(n, np.nan)
    mid = np.full(n, np.nan)
    call = np.zeros(n, dtype=bool)
    reasons = [""] * n
    years_to: dict[date, float] = {}              # a book has few expiries: convert each once
    for i, r in enumerate(requests):
        call[i] = bool(r.is_call)
        if not _positive(r.spot):
            reasons[i] = f"no underlying price (got {r.spot!r})"
            continue
        if not _positive(r.strike):
            reasons[i] = f"bad strike {r.strike!r}"
            continue
        if r.t is not None:
            years = float(r.t)
        elif r.expiry is not None:
            years = years_to.get(r.expiry)
            if years is None:
                years = years_to[r.expiry] = year_fraction(r.expiry, now)
        else:
            reasons[i] = "no expiry"
            continue
        if not math.isfinite(years) or years < 0:
            reasons[i] = f"bad time to expiry {years!r}"
            continue
        spot[i], strike[i], t[i] = float(r.spot), float(r.strike), years
        if _usable_iv(r.iv):
            iv[i] = float(r.iv)
        elif _positive(r.mid):
            mid[i] = float(r.mid)

    # Imply vols for every leg that needs one in a single vectorised call.
    need_iv = np.isfinite(t) & (t > 0) & ~np.isfinite(iv) & np.isfinite(mid)
    if need_iv.any():
        iv[need_iv] = implied_vol(mid[need_iv], spot[need_iv], strike[need_iv], t[need_iv],
                                  rate, call[need_iv])
    priceable = np.isfinite(t) & ((t == 0) | np.isfinite(iv))
    values = {k: np.full(n, np.nan) for k in GREEK_KEYS}
    if priceable.any():
        computed = bs_greeks(spot[priceable], strike[priceable], t[priceable], rate,
                             np.where(np.isfinite(iv[priceable]), iv[priceable], np.nan),
                             call[priceable])
        for k in GREEK_KEYS:
            values[k][priceable] = computed[k]

    finite = (np.isfinite(values["delta"]) & np.isfinite(values["gamma"])
              & np.isfinite(values["theta"]) & np.isfinite(values["vega"])).tolist()
    rows = zip(values["delta"].tolist(), values["gamma"].tolist(), values["theta"].tolist(),
               values["vega"].tolist(), iv.tolist(), spot.tolist(), priceable.tolist(), finite)
    results: list[FilledGreeks] = []
    for r, reason, (delta, gamma, theta, vega, used_iv, und, ok_vol, ok_values) in zip(requests, reasons, rows):
        if reason:
            results.append(FilledGreeks(r.con_id, None, reason))
        elif not ok_vol:
            if _positive(r.mid):
                why = f"no vol: mid {r.mid:g} implies none (outside no-arbitrage bounds)"
            else:
                why = "no vol: IB sent no implied vol and there is no two-sided quote"
            results.append(FilledGreeks(r.con_id, None, why))
        elif not ok_values:
            results.append(FilledGreeks(r.con_id, None, "Black-Scholes gave non-finite Greeks"))
        else:
            results.append(FilledGreeks(r.con_id, Greeks(
                delta, gamma, theta, vega, iv=used_iv if math.isfinite(used_iv) else None,
                und_price=und, source=GreekSource.COMPUTED)))
    return results


def fill_greeks(requests: Sequence[GreekRequest], now: datetime, rate: float) -> list[Greeks | None]:
    """Greeks for legs IB gave none for, all in one vectorised pass, in request order.

    The vol is IB's implied vol when it is valid, else the one implied from `mid`; results are
    marked `GreekSource.COMPUTED`. None where neither gives a vol (see `fill_greeks_explained`).
    Expired legs (t == 0) need no vol: intrinsic value, delta 0/+-1.
    """
    return [f.greeks for f in fill_greeks_explained(requests, now, rate)]


# --------------------------------------------------------------------------- validation

def _fmt(x: float) -> str:
    return f"{x:.6g}"


def validate_greeks(g: Greeks | None) -> tuple[Greeks | None, tuple[str, ...]]:
    """Check per-contract Greeks against market semantics.

    Returns (greeks, flags): the Greeks (an unknown or unusable `iv`/`und_price` cleaned
    to None) when usable, else None plus flags such as "IB delta 1.7 out of [-1, 1]".
    delta in [-1, 1]; gamma, vega >= 0 (a tiny negative is rounding and is clipped to 0);
    theta any finite number; iv in (0, 10] when present. IB's "unknown" sentinels (-2 for the
    Greeks, -1 for iv / underlying price, Double.MAX_VALUE for "unset") count as missing.
    None in gives (None, ()): absence is not a validation problem.
    """
    if g is None:
        return None, ()
    src = g.source.value if isinstance(g.source, GreekSource) else str(g.source)
    is_ib = g.source == GreekSource.IB
    flags: list[str] = []

    def check_number(name: str, value) -> float | None:
        try:
            x = float(value)
        except (TypeError, ValueError):
            flags.append(f"{src} {name} is not a number ({value!r})")
            return None
        if math.isnan(x):
            flags.append(f"{src} {name} is NaN")
            return None
        if math.isinf(x) or abs(x) >= IB_UNSET:
            flags.append(f"{src} {name} is unset/infinite ({_fmt(x)})")
            return None
        if is_ib and x == IB_GREEK_SENTINEL:
            flags.append(f"{src} {name} unknown (IB sentinel -2)")
            return None
        return x

    delta = check_number("delta", g.delta)
    gamma = check_number("gamma", g.gamma)
    theta = check_number("theta", g.theta)
    vega = check_number("vega", g.vega)
    if delta is not None and not -1.0 - DELTA_TOLERANCE <= delta <= 1.0 + DELTA_TOLERANCE:
        flags.append(f"{src} delta {_fmt(delta)} out of [-1, 1]")
    if gamma is not None and gamma < NEGATIVE_TOLERANCE:
        flags.append(f"{src} gamma {_fmt(gamma)} is negative")
    if vega is not None and vega < NEGATIVE_TOLERANCE:
        flags.append(f"{src} vega {_fmt(vega)} is negative")

    iv = g.iv
    if iv is not None:
        try:
            iv = float(iv)
        except (TypeError, ValueError):
            flags.append(f"{src} iv is not a number ({g.iv!r})")
            iv = None
        else:
            if is_ib and iv == IB_PRICE_SENTINEL:
                iv = None
            elif not math.isfinite(iv) or abs(iv) >= IB_UNSET:
                flags.append(f"{src} iv {_fmt(iv)} is not finite")
            elif not 0.0 < iv <= IV_MAX:
                flags.append(f"{src} iv {_fmt(iv)} out of (0, {IV_MAX:g}]")

    und = g.und_price
    try:
        und = float(und) if und is not None else None
    except (TypeError, ValueError):
        und = None
    if und is not None and (not math.isfinite(und) or und <= 0 or und >= IB_UNSET):
        und = None

    if flags:
        return None, tuple(flags)
    cleaned = replace(
        g, delta=float(np.clip(delta, -1.0, 1.0)), gamma=max(gamma, 0.0), theta=theta,
        vega=max(vega, 0.0), iv=iv, und_price=und)
    return cleaned, ()


# --------------------------------------------------------------------------- position Greeks

STOCK_GREEKS = Greeks(delta=1.0, gamma=0.0, theta=0.0, vega=0.0, source=GreekSource.STOCK)


def _finite_or(x, default: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def position_greeks(greeks: Greeks | None, quantity: float, multiplier: float,
                    spot: float | None, beta: float = 1.0,
                    spy_price: float | None = None) -> PositionGreeks:
    """Greeks of a holding; THE formula for live state, history and what-if.

    Per-contract Greeks x quantity (signed) x multiplier. Stocks: pass `STOCK_GREEKS` with
    multiplier 1. dollar delta = position delta x spot (spot falls back to greeks.und_price);
    beta delta (SPY shares) = position delta x beta x spot / spy_price, 0 without a SPY price.
    Missing Greeks (None) give zeros: they stay out of the totals.
    """
    if greeks is None:
        return PositionGreeks()
    size = _finite_or(quantity, 0.0) * _finite_or(multiplier, 0.0)
    delta = _finite_or(greeks.delta, 0.0) * size
    s = _finite_or(spot, float("nan"))
    if not s > 0:
        s = _finite_or(greeks.und_price, 0.0)
    s = s if s > 0 else 0.0
    spy = _finite_or(spy_price, 0.0)
    dollar = delta * s
    beta_delta = delta * _finite_or(beta, 1.0) * s / spy if spy > 0 else 0.0
    return PositionGreeks(
        delta=delta,
        gamma=_finite_or(greeks.gamma, 0.0) * size,
        theta=_finite_or(greeks.theta, 0.0) * size,
        vega=_finite_or(greeks.vega, 0.0) * size,
        dollar_delta=dollar,
        beta_delta=beta_delta,
    )


def position_greeks_arrays(delta, gamma, theta, vega, quantity, multiplier, spot,
                           beta=1.0, spy_price=None) -> dict[str, np.ndarray]:
    """Vectorised `position_greeks` for many legs (arrays broadcast); same rules, same units.

    A row whose per-contract Greeks contain NaN (missing/flagged) contributes zeros to every
    output; a non-positive or NaN spot zeroes only its dollar and beta delta; spy_price None,
    NaN or <= 0 zeroes beta delta.
    """
    spy = np.nan if spy_price is None else spy_price
    delta, gamma, theta, vega, quantity, multiplier, spot, beta, spy = _broadcast(
        delta, gamma, theta, vega, quantity, multiplier, spot, beta, spy)
    valid = np.isfinite(delta) & np.isfinite(gamma) & np.isfinite(theta) & np.isfinite(vega)
    size = np.where(valid & np.isfinite(quantity) & np.isfinite(multiplier), quantity * multiplier, 0.0)
    pos = {
        "delta": np.where(valid, delta, 0.0) * size,
        "gamma": np.where(valid, gamma, 0.0) * size,
        "theta": np.where(valid, theta, 0.0) * size,
        "vega": np.where(valid, vega, 0.0) * size,
    }
    s = np.where(np.isfinite(spot) & (spot > 0), spot, 0.0)
    pos["dollar_delta"] = pos["delta"] * s
    b = np.where(np.isfinite(beta), beta, 1.0)
    spy_ok = np.isfinite(spy) & (spy > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos["beta_delta"] = np.where(spy_ok, pos["delta"] * b * s / np.where(spy_ok, spy, 1.0), 0.0)
    return pos


def sum_position_greeks(arrays: dict[str, np.ndarray]) -> PositionGreeks:
    """Totals of `position_greeks_arrays` output as one PositionGreeks."""
    return PositionGreeks(**{k: float(np.sum(arrays[k])) for k in (
        "delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")})
