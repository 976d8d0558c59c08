"""The Signals page drafting a signal as a defined-risk vertical, and as shares with an attached
bracket, with the real services (runtime, chain feed, desk, audit) on the embedded simulator."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from tests.orders.conftest import signal_record
from tests.signals.test_page import PAGE, button
from v6core.signals.schema import SignalState

pytestmark = pytest.mark.slow


@pytest.fixture
def services(tmp_path, monkeypatch):
    from pages.components import common

    monkeypatch.setenv("V6_MODE", "sim")
    monkeypatch.setenv("V6_LAKE_PATH", str(tmp_path / "lake"))
    monkeypatch.setenv("V6_WATCHLIST", '["SPY", "AAPL"]')
    monkeypatch.setenv("V6_LLM_BASE_URL", "")
    common.get_services.clear()
    built = common.get_services()
    try:
        assert built.runtime.wait_for(lambda s: bool(s.underlyings) and s.underlying("SPY") is not None
                                      and bool(s.underlying("SPY").spot), 30) is not None
        yield built
    finally:
        built.stop()
        common.get_services.clear()


def page_with(services, monkeypatch, record) -> tuple[AppTest, list]:
    """The page showing `record` as SPY's latest signal; switch_page recorded, not followed."""
    switched: list = []
    monkeypatch.setattr(streamlit, "switch_page", switched.append)
    monkeypatch.setattr(services.signals, "latest", lambda: {record.symbol: record})
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, switched


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_buy_signal_drafts_a_put_credit_vertical_through_the_desk(services, monkeypatch):
    spot = services.runtime.snapshot().underlying("SPY").spot
    record = signal_record("SPY", "BUY", round(spot, 2))
    at, switched = page_with(services, monkeypatch, record)
    labels = [b.label for b in at.button]
    assert "Create ticket" in labels and "Create vertical ticket" in labels
    expiry = next(s for s in at.selectbox if s.label == "Expiry").value
    listing = services.chains.listing("SPY").result(timeout=10)
    from pages.components.signal_structure import _today
    today = _today()
    assert expiry == min(e for e in listing.expiries if e - today >= timedelta(days=21))
    assert next(n for n in at.number_input if n.label == "Target delta").value == pytest.approx(0.30)

    button(at, "Create vertical ticket").click()
    at = rerun(at)
    assert switched == ["pages/orders.py"]
    ticket = services.orders.ticket(at.session_state["ticket_id"])
    assert ticket.is_combo and ticket.origin == "signal structure" and ticket.signal_id == record.record_id
    legs = ticket.combo_legs
    assert {leg.contract.right for leg in legs} == {"P"} and {leg.contract.expiry for leg in legs} == {expiry}
    short = next(leg for leg in legs if leg.action == "SELL")
    long = next(leg for leg in legs if leg.action == "BUY")
    assert long.contract.strike < short.contract.strike                 # bullish: a put credit spread
    assert not ticket.bracket
    # drafted, nothing else: the review and the confirmation happen on Orders
    assert services.orders.audit.audit(ticket.ticket_id)["event"].to_list() == ["drafted"]
    assert services.runtime.sim.orders() == []


def test_shares_with_a_bracket_and_errors_shown_for_what_cannot_be_drafted(services, monkeypatch):
    spot = services.runtime.snapshot().underlying("SPY").spot
    record = signal_record("SPY", "SELL", round(spot, 2))
    at, switched = page_with(services, monkeypatch, record)
    next(c for c in at.checkbox if c.label.startswith("Attach a bracket")).check()
    button(at, "Create ticket").click()
    at = rerun(at)
    ticket = services.orders.ticket(at.session_state["ticket_id"])
    assert ticket.bracket and ticket.action == "SELL" and ticket.target < ticket.limit_price < ticket.stop
    assert (ticket.spec.take_profit, ticket.spec.stop_loss) == (ticket.target, ticket.stop)
    assert services.runtime.sim.orders() == []

    # no chain for the symbol: said so, and no vertical button
    failed: concurrent.futures.Future = concurrent.futures.Future()
    failed.set_exception(ValueError("the gateway lists no options on SPY"))
    monkeypatch.setattr(services.chains, "listing", lambda symbol: failed)
    at = rerun(at)
    assert any("No option chain for SPY" in e.value for e in at.error)
    assert "Create vertical ticket" not in [b.label for b in at.button]


@pytest.mark.parametrize("kind", ["low confidence", "suspect"])
def test_a_signal_that_is_not_actionable_gets_no_button_at_all(services, monkeypatch, kind):
    spot = services.runtime.snapshot().underlying("SPY").spot
    record = signal_record("SPY", "BUY", round(spot, 2), confidence="LOW" if kind == "low confidence" else "HIGH")
    if kind == "suspect":
        from dataclasses import replace
        record = replace(record, flags=("order-instruction: 'buy 500 shares now'",))
        assert record.state is SignalState.SUSPECT
    at, _ = page_with(services, monkeypatch, record)
    labels = [b.label for b in at.button]
    assert "Create ticket" not in labels and "Create vertical ticket" not in labels
    assert not [c for c in at.checkbox if c.label.startswith("Attach a bracket")]
