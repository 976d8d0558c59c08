"""The P&L on screen is IB's (issue #12, defect 2): account daily, unrealized and realized P&L
from reqPnL, per-leg unrealized from reqPnLSingle / portfolio updates, to the cent; a closed leg
shows under "closed today" with IB's realized P&L and commissions from its commission reports.

Against the real simulator: close a held leg with a real order, freeze the market, and compare
with the gateway's own account P&L (the same figures its reqPnL answers).
"""

from __future__ import annotations

import math

from v6core.models import PNL_FROM_IB_ACCOUNT, OrderSpec
from tests.runtime.helpers import wait_ready


def _cents(value: float) -> int:
    return round(value * 100)


def test_pnl_is_ibs_to_the_cent_and_a_closed_leg_shows_with_its_realized_pnl(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    ready = wait_ready(rt, gw)
    leg = next(l for l in ready.legs if l.contract.is_option and l.quantity > 0)
    close = OrderSpec(contract=leg.contract, action="SELL", quantity=leg.quantity, order_type="MKT")
    placed = rt.place_order(close, "pnl-close-1").result(timeout=20)
    assert placed.order_id > 0
    con_id = leg.contract.con_id
    closed = rt.wait_for(lambda s: all(l.contract.con_id != con_id for l in s.legs)
                         and any(c.contract.con_id == con_id for c in s.closed_today), 20)
    assert closed is not None, rt.snapshot().closed_today
    gw.freeze()
    sim = {}

    def matches(snap) -> bool:
        sim.update(gw.account_values())
        return (snap.daily_pnl is not None
                and _cents(snap.daily_pnl) == _cents(sim["DailyPnL"])
                and _cents(snap.unrealized_pnl) == _cents(sim["UnrealizedPnL"])
                and _cents(snap.realized_pnl) == _cents(sim["RealizedPnL"]))

    snap = rt.wait_for(matches, 20)
    assert snap is not None, (rt.snapshot().daily_pnl, rt.snapshot().unrealized_pnl,
                              rt.snapshot().realized_pnl, sim)
    print(f"\nIB (simulator) daily/unrealized/realized {sim['DailyPnL']:.2f} / {sim['UnrealizedPnL']:.2f} / "
          f"{sim['RealizedPnL']:.2f}; on screen {snap.daily_pnl:.2f} / {snap.unrealized_pnl:.2f} / "
          f"{snap.realized_pnl:.2f}")
    assert sim["RealizedPnL"] != 0.0                       # closing did realize something
    assert (snap.daily_pnl_source, snap.unrealized_pnl_source, snap.realized_pnl_source) == (
        PNL_FROM_IB_ACCOUNT,) * 3
    # every held leg carries IB's own unrealized P&L, and together they are the account's
    assert all(l.pnl_source == "IB" for l in snap.legs)
    assert _cents(math.fsum(l.unrealized_pnl for l in snap.legs)) == _cents(sim["UnrealizedPnL"])
    # the closed leg: IB's realized P&L and the day's commissions, from its executions
    row = next(c for c in snap.closed_today if c.contract.con_id == con_id)
    fills = [f for f in gw.fills() if f["con_id"] == con_id]
    assert _cents(row.realized_pnl) == _cents(math.fsum(f["realized"] for f in fills if f["realized"]))
    assert _cents(row.commissions) == _cents(math.fsum(f["commission"] for f in fills))
    assert row.quantity_closed == leg.quantity and not row.still_held and row.realized_pnl != 0.0
