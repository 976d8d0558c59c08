"""Position Greeks: per-contract Greeks x quantity x multiplier, dollar and beta delta, totals."""

from __future__ import annotations

import math

import numpy as np

from v6core.greeks.pricing import _broadcast
from v6core.models import Greeks, GreekSource, PositionGreeks

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
