"""Black-Scholes price, Greeks and implied vol for arrays of options, through `py_vollib_vectorized`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import py_vollib_vectorized as pvv

# Inside Black-Scholes only: an expiring-today leg a few seconds from the close is priced at
# this time to expiry (about 30 s) rather than dividing by ~0.
MIN_T = 1e-6
ONE_DAY = 1.0 / 365.0
IV_MAX = 10.0                      # 1000 %: above this an "implied vol" is noise, not a market

GREEK_KEYS = ("price", "delta", "gamma", "theta", "vega")


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
