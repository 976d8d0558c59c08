"""Hand-made chains for the engine's unit tests: Black-Scholes from scipy (independent of the
engine's py_vollib pricing), a simple skew, spreads of a few cents."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
from scipy.stats import norm

from v6core.greeks import year_fraction
from v6core.models import ContractInfo
from v6core.structures import ChainSlice, OptionQuote

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
NEAR = date(2026, 12, 18)
FAR = date(2027, 1, 15)
RATE = 0.04
SPOT = 100.0


def bs(S, K, t, r, sigma, call):
    d1 = (math.log(S / K) + (r + 0.5 * sigma**2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if call:
        return S * norm.cdf(d1) - K * math.exp(-r * t) * norm.cdf(d2), norm.cdf(d1)
    return K * math.exp(-r * t) * norm.cdf(-d2) - S * norm.cdf(-d1), norm.cdf(d1) - 1


def smile(K: float, spot: float = SPOT) -> float:
    return 0.25 - 0.10 * math.log(K / spot)


def make_chain(expiry: date = NEAR, spot: float = SPOT, step: float = 1.0, span: int = 30,
               symbol: str = "XYZ", now: datetime = NOW) -> ChainSlice:
    t = year_fraction(expiry, now)
    strikes = tuple(float(spot - span * step + i * step) for i in range(2 * span + 1))
    calls, puts = [], []
    base = 10_000_000 + expiry.toordinal() * 1000
    for i, K in enumerate(strikes):
        iv = smile(K, spot)
        for right, out in (("C", calls), ("P", puts)):
            price, delta = bs(spot, K, t, RATE, iv, right == "C")
            c = ContractInfo(base + 2 * i + (right == "P"), symbol, "OPT", expiry=expiry, strike=K,
                             right=right, multiplier=100.0)
            half = max(0.01, round(price * 0.01, 2))
            out.append(OptionQuote(c, bid=max(round(price - half, 2), 0.0), ask=round(price + half, 2),
                                   iv=iv, delta=delta, gamma=0.01, theta=-0.02, vega=0.1,
                                   open_interest=1000.0, und_price=spot, time=now))
    stock = OptionQuote(ContractInfo(4242, symbol, "STK"), bid=spot - 0.01, ask=spot + 0.01,
                        delta=1.0, und_price=spot, time=now)
    return ChainSlice(symbol, expiry, spot, strikes, tuple(calls), tuple(puts), stock)


def nearest_delta_strike(chain: ChainSlice, right: str, target: float) -> float:
    """Brute force, written apart from the engine: smallest |delta| error, ties further OTM."""
    best = None
    for K in chain.strikes:
        q = chain.option(K, right)
        err = abs(abs(q.delta) - target)
        otm = -K if right == "C" else K
        if best is None or (err, otm) < best[0]:
            best = ((err, otm), K)
    return best[1]


def payoff_at(legs, S: np.ndarray, horizon_expiry: date, units: int, now: datetime = NOW) -> np.ndarray:
    """Value of the legs at 16:00 NY on `horizon_expiry`, for each price in S (loops, scipy BS)."""
    horizon = datetime.combine(horizon_expiry, datetime.min.time()).replace(hour=21, tzinfo=timezone.utc)
    total = np.zeros_like(S)
    for leg in legs:
        c, q = leg.contract, leg.quantity * units
        if c.sec_type == "STK":
            total += q * S
            continue
        if c.expiry == horizon_expiry:
            intrinsic = np.maximum(S - c.strike, 0) if c.right == "C" else np.maximum(c.strike - S, 0)
            total += q * 100 * intrinsic
        else:
            t = year_fraction(c.expiry, horizon)
            values = np.array([bs(s, c.strike, t, RATE, leg.quote.iv, c.right == "C")[0] for s in S])
            total += q * 100 * values
    return total
