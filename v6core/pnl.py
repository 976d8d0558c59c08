"""The account's P&L as IB states it, and what was closed today.

IB's own figures use IB's marks and its realized-P&L accounting; a P&L computed from quote mids
differs by dollars and does not know what was closed. So the snapshot shows, best first: IB's
account P&L (reqPnL), else the sum of IB's per-position figures (reqPnLSingle / portfolio
updates, commission reports for closed trades), else v6's own computation, and says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date
from zoneinfo import ZoneInfo

from v6core.models import (
    PNL_FROM_IB_ACCOUNT, PNL_FROM_IB_POSITIONS, PNL_FROM_V6, ClosedLeg, FillView, Leg,
)

NEW_YORK = ZoneInfo("America/New_York")


def _finite_sum(values: Iterable[float | None]) -> float:
    return math.fsum(v for v in values if v is not None and math.isfinite(v))


def closed_legs_today(fills: Iterable[FillView], held_con_ids: set[int], today: date) -> tuple[ClosedLeg, ...]:
    """One row per contract with a closing fill today (IB reports realized P&L on closing fills
    only): realized P&L summed from the commission reports, the day's commissions on it."""
    todays: dict[int, list[FillView]] = {}
    for fill in fills:
        if fill.time.astimezone(NEW_YORK).date() == today:
            todays.setdefault(fill.contract.con_id, []).append(fill)
    closed = []
    for con_id, group in todays.items():
        closing = [f for f in group if f.realized_pnl is not None]
        if not closing:
            continue
        closed.append(ClosedLeg(
            contract=closing[-1].contract,
            quantity_closed=math.fsum(f.quantity for f in closing),
            realized_pnl=_finite_sum(f.realized_pnl for f in closing),
            commissions=_finite_sum(f.commission for f in group),
            fills=len(group),
            last_fill_at=max(f.time for f in group),
            still_held=con_id in held_con_ids,
        ))
    return tuple(sorted(closed, key=lambda c: (c.last_fill_at, c.contract.con_id)))


def account_pnl(ib_account: tuple[float | None, float | None, float | None], legs: Sequence[Leg],
                closed: Sequence[ClosedLeg]) -> tuple[tuple[float | None, float, float], tuple[str, str, str]]:
    """((daily, unrealized, realized), (their sources)) for the trusted legs of the book."""
    ib_daily, ib_unrealized, ib_realized = ib_account

    if ib_daily is not None:
        daily, daily_source = ib_daily, PNL_FROM_IB_ACCOUNT
    else:
        dailies = [l.daily_pnl for l in legs if l.daily_pnl is not None]
        daily = math.fsum(dailies) if dailies else None
        daily_source = PNL_FROM_IB_POSITIONS if dailies and len(dailies) == len(legs) else PNL_FROM_V6

    if ib_unrealized is not None:
        unrealized, unrealized_source = ib_unrealized, PNL_FROM_IB_ACCOUNT
    else:
        unrealized = _finite_sum(l.unrealized_pnl for l in legs)
        from_ib = all(l.pnl_source == "IB" and l.unrealized_pnl is not None for l in legs)
        unrealized_source = PNL_FROM_IB_POSITIONS if legs and from_ib else PNL_FROM_V6

    if ib_realized is not None:
        realized, realized_source = ib_realized, PNL_FROM_IB_ACCOUNT
    else:
        # closed today (commission reports) plus what held legs realized (portfolio updates)
        closed_ids = {c.contract.con_id for c in closed}
        realized = (_finite_sum(c.realized_pnl for c in closed)
                    + _finite_sum(l.realized_pnl for l in legs if l.contract.con_id not in closed_ids))
        realized_source = PNL_FROM_IB_POSITIONS if closed or any(
            l.realized_pnl is not None for l in legs) else PNL_FROM_V6
    return (daily, unrealized, realized), (daily_source, unrealized_source, realized_source)
