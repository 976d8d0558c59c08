"""Full revaluation: reprice each held option with Black-Scholes to see what the Greeks missed.

Per leg held over the span (start quantity, start position), with the recorded spot S and IV
at both points and the time to expiry T at both points:

    spot  = P(S1, iv0, T0) - P(S0, iv0, T0)     against delta + gamma
    vol   = P(S1, iv1, T0) - P(S1, iv0, T0)     against vega
    time  = P(S1, iv1, T1) - P(S1, iv1, T0)     against theta   (an expired leg: to intrinsic)

`approximation` = (spot - delta - gamma) + (vol - vega) + (time - theta): what the Taylor
expansion missed. What remains in the residual after it is the gap between the recorded marks
and the model (rates, dividends, quote mids, stale ticks), not the Greeks' fault. One vectorised
`py_vollib_vectorized` call per repricing (through `v6core.greeks.bs_price`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from v6core.greeks import SECONDS_PER_YEAR, bs_price, year_fraction


def _years(expiries: list, when: datetime) -> np.ndarray:
    cache: dict = {}
    out = np.full(len(expiries), np.nan)
    for i, e in enumerate(expiries):
        if e is not None:
            if e not in cache:
                cache[e] = year_fraction(e, when)
            out[i] = cache[e]
    return out


def revalue(legs: pl.DataFrame, t0: datetime, rate: float) -> pl.DataFrame:
    """The legs frame with approx_spot / approx_vol / approx_time / approximation filled and the
    residual reduced by them. Stocks and legs without usable inputs keep zeros (and their notes)."""
    n = legs.height
    if n == 0:
        return legs
    size = legs["held_size"].to_numpy()
    expiries = legs["expiry"].to_list()
    t_start = _years(expiries, t0)
    days = legs["days"].to_numpy()
    # The end time of each leg inside the span (an expired leg stops at its close: T = 0).
    t_end = np.maximum(t_start - days * 86400.0 / SECONDS_PER_YEAR, 0.0)
    expired = (legs["status"] == "expired").to_numpy()
    t_end = np.where(expired, 0.0, t_end)
    s0, s1 = legs["spot_start"].to_numpy(), legs["spot_end"].to_numpy()
    iv0, iv1 = legs["iv_start"].to_numpy(), legs["iv_end"].to_numpy()
    strike, call = legs["strike"].fill_null(np.nan).to_numpy(), legs["is_call"].to_numpy()
    usable = ((size != 0) & (legs["sec_type"] == "OPT").to_numpy() & ~legs["no_greeks"].to_numpy()
              & np.isfinite(s0) & np.isfinite(s1) & np.isfinite(iv0) & np.isfinite(iv1)
              & np.isfinite(t_start) & (t_start > 0))
    spot = np.zeros(n)
    vol = np.zeros(n)
    decay = np.zeros(n)
    rows = np.flatnonzero(usable)
    if rows.size:
        k, c = strike[rows], call[rows]
        p00 = bs_price(s0[rows], k, t_start[rows], rate, iv0[rows], c)
        p10 = bs_price(s1[rows], k, t_start[rows], rate, iv0[rows], c)
        p11 = bs_price(s1[rows], k, t_start[rows], rate, iv1[rows], c)
        p_end = bs_price(s1[rows], k, t_end[rows], rate, iv1[rows], c)
        spot[rows] = size[rows] * (p10 - p00)
        vol[rows] = size[rows] * (p11 - p10)
        decay[rows] = size[rows] * (p_end - p11)
    greeks = legs.select("delta", "gamma", "theta", "vega").to_numpy()
    approx_spot = np.where(usable, spot - greeks[:, 0] - greeks[:, 1], 0.0)
    approx_vol = np.where(usable, vol - greeks[:, 3], 0.0)
    approx_time = np.where(usable, decay - greeks[:, 2], 0.0)
    finite = np.isfinite(approx_spot) & np.isfinite(approx_vol) & np.isfinite(approx_time)
    approx_spot, approx_vol, approx_time = (np.where(finite, a, 0.0)
                                            for a in (approx_spot, approx_vol, approx_time))
    approximation = approx_spot + approx_vol + approx_time
    return legs.with_columns(
        pl.Series("approx_spot", approx_spot), pl.Series("approx_vol", approx_vol),
        pl.Series("approx_time", approx_time), pl.Series("approximation", approximation),
        (pl.col("residual") - pl.Series(approximation)).alias("residual"))

