"""Validation of per-contract Greeks against market semantics and IB's "unknown" sentinels."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from v6core.greeks.pricing import IV_MAX
from v6core.models import Greeks, GreekSource

NEGATIVE_TOLERANCE = -1e-9         # gamma/vega this slightly below 0 are rounding, not data
DELTA_TOLERANCE = 1e-9
IB_UNSET = 1e300                   # IB sends Double.MAX_VALUE for "not computed"
IB_GREEK_SENTINEL = -2.0           # delta/gamma/vega/theta "unknown" (ib_async keeps it for vega/theta)
IB_PRICE_SENTINEL = -1.0           # impliedVol/optPrice/undPrice "unknown"


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
