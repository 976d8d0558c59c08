"""Quotes on demand (issue #12, defect 5): the runtime quotes whatever a ticket needs, not only
held legs, within a cap, and unsubscribes when the owner lets go; a signal for a symbol the book
does not hold becomes a ticket that its checks can pass (no "No live quote").

Real runtime, real simulator, real order desk on a Delta audit log in tmp.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from v6core.models import OrderSpec
from v6core.lake import AuditLog
from v6core.orders import OrderDesk
from v6core.runtime import MAX_ON_DEMAND_QUOTES, QuoteCapError
from tests.runtime.helpers import wait_ready


def _unheld_options(gw, count: int):
    held = {p.contract.con_id for p in gw.positions()}
    found = []
    for expiry in gw.expiries("SPY"):
        for strike in gw.strikes("SPY"):
            info = gw.lookup("SPY", expiry, strike, "C")
            if info is not None and info.con_id not in held:
                found.append(info)
                if len(found) == count:
                    return found
    raise AssertionError("the simulator lists too few SPY options")


def test_ensure_and_release_quotes_for_contracts_not_held(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    option = _unheld_options(gw, 1)[0]
    assert rt.snapshot().quote(option.con_id) is None
    before = gw.subscription_counts()["market_data"]
    [quoted] = rt.ensure_quotes([option], "ticket-A").result(timeout=10)
    assert quoted.con_id == option.con_id
    live = rt.wait_for(lambda s: (q := s.quote(option.con_id)) is not None and q.mid is not None, 10)
    assert live is not None
    assert gw.subscription_counts()["market_data"] == before + 1
    # a second owner shares the line; it stays until both let go
    rt.ensure_quotes([option], "signals-page").result(timeout=10)
    rt.release_quotes("ticket-A").result(timeout=10)
    assert gw.subscription_counts()["market_data"] == before + 1
    rt.release_quotes("signals-page").result(timeout=10)
    gone = rt.wait_for(lambda s: s.quote(option.con_id) is None, 10)
    assert gone is not None
    deadline = time.monotonic() + 5
    while gw.subscription_counts()["market_data"] != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.subscription_counts()["market_data"] == before
    # symbols are qualified with the gateway
    [tsla] = rt.ensure_quotes(["tsla"], "ticket-B").result(timeout=10)
    assert tsla.con_id == gw.lookup("TSLA").con_id and tsla.sec_type == "STK"
    with pytest.raises(ValueError, match="does not know"):
        rt.ensure_quotes(["NOSUCH"], "ticket-C").result(timeout=10)


def test_on_demand_quotes_are_capped(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    options = _unheld_options(gw, MAX_ON_DEMAND_QUOTES + 1)
    rt.ensure_quotes(options[:-1], "many").result(timeout=20)
    with pytest.raises(QuoteCapError):
        rt.ensure_quotes(options[-1:], "one-more").result(timeout=10)
    rt.release_quotes("many").result(timeout=10)
    rt.ensure_quotes(options[-1:], "one-more").result(timeout=10)    # room again


def test_a_signal_for_a_symbol_not_held_becomes_a_ticket_with_a_live_quote(gateway, make_runtime, tmp_path):
    gw = gateway
    # the watchlist no longer quotes TSLA; close the TSLA legs so nothing else does
    rt = make_runtime(gw, watchlist=["SPY"])
    ready = wait_ready(rt, gw)
    for leg in [l for l in ready.legs if l.contract.symbol == "TSLA"]:
        action = "BUY" if leg.quantity < 0 else "SELL"
        rt.place_order(OrderSpec(leg.contract, action, abs(leg.quantity), "MKT"), f"flat-{leg.contract.con_id}"
                       ).result(timeout=20)
    tsla = gw.lookup("TSLA").con_id
    flat = rt.wait_for(lambda s: not any(l.contract.symbol == "TSLA" for l in s.legs), 20)
    assert flat is not None
    assert rt.wait_for(lambda s: s.quote(tsla) is None, 10) is not None     # nobody quotes TSLA now
    desk = OrderDesk(rt.settings, rt, AuditLog(tmp_path / "lake"), request_timeout=10.0)
    desk.start()
    try:
        signal = SimpleNamespace(actionable=True, action="BUY", symbol="TSLA", entry=gw.spot("TSLA"),
                                 stop=None, target=None, record_id="sig-1")
        ticket = desk.draft_from_signal(signal, "session-1")
        assert ticket.contract.con_id == tsla
        quoted = rt.wait_for(lambda s: (q := s.quote(tsla)) is not None and q.time is not None, 10)
        assert quoted is not None
        result = desk.evaluate(desk.ticket(ticket.ticket_id))
        assert not any("No live quote" in p for p in result.problems), result.problems
    finally:
        desk.stop()
