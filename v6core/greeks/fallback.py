"""Fallback Greeks: legs IB gave none (or garbage) for, computed here in one vectorised pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from v6core.greeks.expiry import year_fraction
from v6core.greeks.pricing import GREEK_KEYS, IV_MAX, bs_greeks, implied_vol
from v6core.models import Greeks, GreekSource


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
