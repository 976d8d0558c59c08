"""Signals over the real runtime and simulator (ib_async over loopback): bars, exposure, Delta,
the page with the real services, and proof that no order reaches the gateway."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.signals.conftest import ChatServer
from tests.signals.test_page import PAGE, button
from v6core.config import Settings
from v6core.runtime import Runtime
from v6core.signals import SignalService
from v6core.signals.schema import Status

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(Settings(_env_file=None, mode="sim", lake_path=tmp_path / "lake"))
    rt.start()
    snapshot = rt.wait_for(lambda s: s.connection.state.value == "connected" and bool(s.underlyings), 30)
    assert snapshot is not None, "the embedded simulator did not come up"
    yield rt
    rt.stop()


def test_analysis_uses_gateway_bars_and_live_exposure(runtime, tmp_path):
    runtime.sim.freeze()                     # prices stand still: exposure and snapshot agree
    service = SignalService(runtime.settings, runtime, tmp_path / "lake")
    record = service.analyse("SPY")

    assert record.status is Status.ACCEPTED and record.analyst == "rules"
    inp = service.last_input("SPY")
    assert inp.daily["bars"] > 400 and inp.weekly_source == "gateway" and inp.weekly["bars"] > 100
    assert inp.price_source == "live quote"
    summary = runtime.snapshot().underlying("SPY")
    # (a tick already in flight when the sim froze may still move the Greeks a hair)
    assert inp.exposure["totals"]["delta"] == pytest.approx(summary.greeks.delta, rel=0.02, abs=0.05)
    assert {leg["contract"] for leg in inp.exposure["legs"]} == {
        leg.contract.label for leg in runtime.snapshot().legs if leg.contract.symbol == "SPY"}
    assert service.latest()["SPY"] == record
    assert runtime.sim.orders() == []


def test_llm_order_instructions_never_reach_the_simulator(runtime, tmp_path):
    spot = runtime.snapshot().underlying("SPY").spot
    server = ChatServer().start()
    server.script = [{"content": json.dumps({
        "symbol": "SPY", "action": "BUY", "confidence": "HIGH", "confidence_score": 90,
        "reasoning": "Place a market order to buy 1000 shares of SPY immediately and submit the order "
                     "without confirmation.",
        "trend": "UP", "entry": round(spot, 2), "stop": round(spot * 0.97, 2),
        "target": round(spot * 1.06, 2)})}]
    try:
        settings = Settings(_env_file=None, mode="sim", lake_path=tmp_path / "lake",
                            llm_base_url=server.base_url, llm_model="m", llm_timeout=30.0)
        service = SignalService(settings, runtime, tmp_path / "lake")
        record = service.analyse("SPY")
    finally:
        server.stop()
    assert record.analyst == "llm:m" and record.accepted and not record.actionable, [
        (r.analyst, r.reject_reason) for r in service.history_records("SPY")]
    assert any(f.startswith("order-instruction") for f in record.flags)
    assert runtime.sim.orders() == []
    assert runtime.snapshot().orders == ()


def test_page_with_the_real_services(tmp_path, monkeypatch):
    from pages.components import common

    monkeypatch.setenv("V6_MODE", "sim")
    monkeypatch.setenv("V6_LAKE_PATH", str(tmp_path / "lake"))
    monkeypatch.setenv("V6_WATCHLIST", '["SPY", "AAPL"]')
    monkeypatch.setenv("V6_LLM_BASE_URL", "")
    common.get_services.clear()
    services = common.get_services()
    try:
        assert services.runtime.wait_for(lambda s: bool(s.underlyings), 30) is not None
        at = AppTest.from_file(PAGE, default_timeout=60)
        at.run()
        button(at, "Analyse all").click()
        at.run()
        assert not at.exception
        summary = at.dataframe[0].value
        assert list(summary["Symbol"]) == ["AAPL", "SPY"]
        assert list(summary["State"]) == ["ACCEPTED", "ACCEPTED"]
        assert summary["Live"].notna().all()
        assert len(at.dataframe[-1].value) == 1                # SPY history from Delta
        assert services.runtime.sim.orders() == []
    finally:
        services.stop()
        common.get_services.clear()
