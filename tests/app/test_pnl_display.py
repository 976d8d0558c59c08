"""Overview shows IB's P&L to the cent, says where it comes from, and lists what was closed
today (issue #12, defect 2). The snapshot comes from the real runtime after a real closing order
on the real simulator; the page reads it through the stand-in services."""

from __future__ import annotations

import pytest

from pages.components import common
from tests.app.conftest import open_page, shown_metric
from tests.app.synthetic import install_stand_in, remove_stand_in
from v6core.config import Settings
from v6core.models import OrderSpec
from v6core.runtime import Runtime
from v6core.sim import SimGateway


@pytest.fixture(scope="module")
def after_a_close():
    gateway = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=5.0)
    gateway.start()
    runtime = Runtime(Settings(mode="ib", ib_host="127.0.0.1", ib_port=gateway.port, client_id=29))
    try:
        runtime.start()
        ready = runtime.wait_for(lambda s: len(s.legs) > 0 and s.daily_pnl is not None, 30)
        assert ready is not None
        leg = next(l for l in ready.legs if l.contract.is_option and l.quantity > 0)
        runtime.place_order(OrderSpec(leg.contract, "SELL", leg.quantity, "MKT"), "close-1").result(timeout=20)
        gateway.freeze()
        sim = {}

        def settled(snap) -> bool:
            sim.update(gateway.account_values())
            return (any(c.contract.con_id == leg.contract.con_id for c in snap.closed_today)
                    and round(snap.realized_pnl * 100) == round(sim["RealizedPnL"] * 100))

        snap = runtime.wait_for(settled, 30)
        assert snap is not None
        yield snap, dict(sim), leg
    finally:
        runtime.stop()
        gateway.stop()


def test_overview_shows_ibs_pnl_and_the_leg_closed_today(after_a_close, monkeypatch):
    snap, sim, leg = after_a_close
    monkeypatch.delenv("V6_PASSWORD", raising=False)
    install_stand_in(snap)
    try:
        at = open_page("overview", timeout=60)
        assert not at.exception, at.exception
        metrics = {m.label: shown_metric(m.value) for m in at.metric}
        assert metrics["Realized P&L"] == common.fmt_money(sim["RealizedPnL"], signed=True)
        assert metrics["Realized P&L"] != common.fmt_money(0.0, signed=True)
        assert any("IB account P&L" in c.value for c in at.caption)
        assert any(h.value.startswith("Closed today") for h in at.subheader)
        closed = next(d.value for d in at.dataframe if "Realized P&L" in d.value.columns)
        row = closed[closed["Leg"] == leg.contract.label].iloc[0]
        assert round(row["Realized P&L"] * 100) == round(sim["RealizedPnL"] * 100)
    finally:
        remove_stand_in()
