"""The desk against the real runtime and simulator: drafting, every check, preview, placement,
rejection, cancel, cancel-all and the audit trail of each."""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest

from tests.orders.conftest import signal_record, wait_until
from v6core.orders import checks as order_checks  # where the tick rule lives
from v6core.models import WhatIfResult
from v6core.orders import OrderDeskError, TicketBlocked, TicketState, order_legs


def aapl_spot(stack) -> float:
    return stack.gw.spot("AAPL")


def draft_aapl(stack, *, action="BUY", quantity=1, limit=None):
    """An AAPL stock ticket from a constructed signal; limit far from the market by default so it
    rests (tests that want a fill pass a marketable limit)."""
    spot = aapl_spot(stack)
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", action, spot), "sess-a")
    resting = round(spot * (0.8 if action == "BUY" else 1.2), 2)
    return stack.desk.edit(ticket.ticket_id, "sess-a", quantity=quantity,
                           limit_price=resting if limit is None else limit)


# ---------------------------------------------------------------- drafting


def test_signal_ticket_is_a_stock_limit_at_the_entry_with_stop_and_target(stack):
    spot = aapl_spot(stack)
    record = signal_record("AAPL", "SELL", spot + 0.004)
    ticket = stack.desk.draft_from_signal(record, "sess-a")
    assert ticket.ticket_id.startswith("T-") and len(ticket.ticket_id) == 14
    assert (ticket.contract.symbol, ticket.contract.sec_type) == ("AAPL", "STK")
    assert (ticket.action, ticket.order_type, ticket.tif) == ("SELL", "LMT", "DAY")
    assert ticket.limit_price == round(spot + 0.004, 2)          # snapped to the $0.01 grid
    assert (ticket.stop, ticket.target) == (record.stop, record.target)
    assert ticket.signal_id == record.record_id
    assert ticket.state == TicketState.DRAFTED
    trail = stack.audit.audit(ticket.ticket_id)
    assert trail["event"].to_list() == ["drafted"]
    assert trail["session_id"].to_list() == ["sess-a"]


def test_signal_for_a_stock_not_held_is_quoted_through_its_underlying(stack):
    spy = stack.gw.spot("SPY")
    ticket = stack.desk.draft_from_signal(signal_record("SPY", "BUY", spy), "sess-a")
    # qualified and quoted on demand when drafted (runtime.ensure_quotes), so it carries its conId
    assert ticket.contract.con_id == stack.gw.lookup("SPY").con_id
    result = stack.desk.check(ticket.ticket_id, "sess-a")
    assert result.ok, result.problems
    assert result.order_greeks.delta == pytest.approx(1.0)


@pytest.mark.parametrize("confidence", ["LOW"])
def test_a_signal_that_is_not_actionable_makes_no_ticket(stack, confidence):
    record = signal_record("AAPL", "BUY", aapl_spot(stack), confidence=confidence)
    with pytest.raises(OrderDeskError, match="not actionable"):
        stack.desk.draft_from_signal(record, "sess-a")


def test_close_strategy_as_one_combo_reverses_every_leg(stack):
    snapshot = stack.snapshot()
    condor = next(s for s in snapshot.strategies if s.underlying == "SPY" and len(s.con_ids) == 4)
    legs = [leg for leg in snapshot.legs if leg.contract.con_id in condor.con_ids]
    [ticket] = stack.desk.draft_close(condor, as_combo=True, session_id="sess-a")
    assert ticket.contract.sec_type == "BAG" and ticket.contract.symbol == "SPY"
    assert ticket.quantity == 2                          # the condor is held 2x: ratios 1
    held = {leg.contract.con_id: leg.quantity for leg in legs}
    assert {c.con_id: q for c, q in order_legs(ticket.spec)} == {k: -v for k, v in held.items()}
    # The order's delta is exactly minus the legs' position delta, through position_greeks.
    result = stack.desk.evaluate(ticket, snapshot)
    assert result.order_greeks.delta == pytest.approx(-sum(leg.position_greeks.delta for leg in legs))


def test_close_as_separate_legs_makes_one_ticket_per_leg(stack):
    snapshot = stack.snapshot()
    vertical = next(s for s in snapshot.strategies if s.underlying == "QQQ")
    tickets = stack.desk.draft_close(vertical, as_combo=False, session_id="sess-a")
    legs = {leg.contract.con_id: leg for leg in snapshot.legs if leg.contract.con_id in vertical.con_ids}
    assert len(tickets) == len(legs)
    for ticket in tickets:
        leg = legs[ticket.contract.con_id]
        assert ticket.action == ("SELL" if leg.quantity > 0 else "BUY")
        assert ticket.quantity == abs(leg.quantity)
        assert not ticket.combo_legs


# ---------------------------------------------------------------- editing and validation


def test_editing_after_preview_invalidates_the_preview(stack):
    ticket = draft_aapl(stack)
    previewed = stack.desk.preview(ticket.ticket_id, "sess-a")
    assert previewed.state == TicketState.PREVIEWED and previewed.preview is not None
    edited = stack.desk.edit(ticket.ticket_id, "sess-a", quantity=2)
    assert edited.state == TicketState.DRAFTED and edited.preview is None
    with pytest.raises(OrderDeskError, match="Review the ticket"):
        stack.desk.confirm(ticket.ticket_id, "sess-a")
    assert stack.sim_orders(ticket.ticket_id) == []
    assert stack.events(ticket.ticket_id)[-1] == "edited"


@pytest.mark.parametrize("changes, message", [
    (dict(limit_price=None), "A limit price is required for a LMT order."),
    (dict(quantity=0), "Quantity must be a positive number."),
    (dict(limit_price=229.555), "is not on the tick grid"),
])
def test_validation_messages_block_the_preview(stack, changes, message):
    ticket = draft_aapl(stack)
    stack.desk.edit(ticket.ticket_id, "sess-a", **changes)
    with pytest.raises(TicketBlocked) as blocked:
        stack.desk.preview(ticket.ticket_id, "sess-a")
    assert any(message in p for p in blocked.value.problems)
    trail = stack.audit.audit(ticket.ticket_id)
    last = trail.row(-1, named=True)
    assert last["event"] == "checked" and last["status"] == "blocked"
    assert any(message in p for p in json.loads(last["detail"])["problems"])


def test_market_order_needs_no_limit(stack):
    ticket = draft_aapl(stack)
    stack.desk.edit(ticket.ticket_id, "sess-a", order_type="MKT", limit_price=None)
    assert stack.desk.check(ticket.ticket_id, "sess-a").ok


# ---------------------------------------------------------------- limits


def test_quantity_limit(stack, limits):
    limits(max_order_quantity=5)
    ticket = draft_aapl(stack, quantity=6)
    problems = stack.desk.check(ticket.ticket_id, "sess-a").problems
    assert "Quantity 6 is above the limit of 5." in problems
    assert stack.desk.ticket(ticket.ticket_id).state == TicketState.DRAFTED


def test_notional_limit(stack, limits):
    limits(max_order_notional=1_000)
    ticket = draft_aapl(stack, quantity=10, limit=round(aapl_spot(stack) * 0.8, 2))
    expected = ticket.limit_price * 10
    result = stack.desk.check(ticket.ticket_id, "sess-a")
    assert result.notional == pytest.approx(expected)
    assert f"Notional ${expected:,.0f} is above the limit of $1,000." in result.problems


def test_delta_change_limit(stack, limits):
    limits(max_delta_change=5)
    ticket = draft_aapl(stack, action="SELL", quantity=6)
    result = stack.desk.check(ticket.ticket_id, "sess-a")
    assert result.order_greeks.delta == pytest.approx(-6)
    assert "This order changes portfolio delta by -6.0 shares, above the limit of 5." in result.problems


def test_symbol_not_allowed(stack, limits):
    limits(allowed_symbols=["SPY", "QQQ"])
    ticket = draft_aapl(stack)
    assert "AAPL is not an allowed symbol (allowed: SPY, QQQ)." in stack.desk.check(ticket.ticket_id, "sess-a").problems


def test_limits_are_checked_again_at_confirm(stack, limits):
    ticket = draft_aapl(stack, quantity=3)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    limits(max_order_quantity=2)            # tightened between preview and confirm
    with pytest.raises(TicketBlocked, match="above the limit of 2"):
        stack.desk.confirm(ticket.ticket_id, "sess-a")
    assert stack.sim_orders(ticket.ticket_id) == []


# ---------------------------------------------------------------- preview


def test_preview_has_what_if_quote_and_greeks_before_and_after(stack):
    ticket = draft_aapl(stack, quantity=10)
    previewed = stack.desk.preview(ticket.ticket_id, "sess-a")
    p = previewed.preview
    assert p.spec == previewed.spec
    assert p.what_if.init_margin_change is not None and p.what_if.init_margin_change > 0
    assert p.what_if.commission == pytest.approx(1.0)         # 10 shares: the $1 minimum
    assert [q.con_id for q in p.quotes] == [ticket.contract.con_id]
    assert p.order_greeks.delta == pytest.approx(10)
    assert p.greeks_after.delta == pytest.approx(p.greeks_before.delta + 10)
    assert p.greeks_after.gamma == pytest.approx(p.greeks_before.gamma)
    assert p.is_paper and not p.needs_typed_confirmation
    detail = json.loads(stack.audit.audit(ticket.ticket_id).row(-1, named=True)["detail"])
    assert detail["init_margin_change"] == p.what_if.init_margin_change


# ---------------------------------------------------------------- placement, fills, audit


def test_confirmed_order_reaches_the_sim_exactly_as_confirmed_and_fills_with_commission(stack):
    spot = aapl_spot(stack)
    ticket = draft_aapl(stack, quantity=3, limit=round(spot * 1.02, 2))      # marketable
    stack.desk.edit(ticket.ticket_id, "sess-a", tif="GTC")
    stack.desk.preview(ticket.ticket_id, "sess-a")
    sent = stack.desk.confirm(ticket.ticket_id, "sess-b")
    [order] = stack.sim_orders(ticket.ticket_id)
    assert (order.action, order.quantity, order.order_type, order.limit_price, order.tif, order.con_id) == (
        "BUY", 3, "LMT", round(spot * 1.02, 2), "GTC", ticket.contract.con_id)
    assert sent.order_id == order.order_id and sent.perm_id == order.perm_id
    wait_until(lambda: "fill" in stack.events(ticket.ticket_id), timeout=15)
    final = stack.desk.ticket(ticket.ticket_id)
    assert final.state == TicketState.FILLED and final.filled == 3
    trail = stack.audit.audit(ticket.ticket_id)
    events = trail["event"].to_list()
    assert events[:5] == ["drafted", "edited", "edited", "checked", "previewed"]
    assert events[5:7] == ["confirmed", "sent"]
    confirmed = trail.row(5, named=True)
    assert confirmed["session_id"] == "sess-b"
    fill_row = trail.filter(trail["event"] == "fill").row(0, named=True)
    assert (fill_row["order_id"], fill_row["perm_id"]) == (order.order_id, order.perm_id)
    sim_fill = next(f for f in stack.gw.fills() if f["order_ref"] == ticket.ticket_id)
    assert json.loads(fill_row["detail"])["commission"] == pytest.approx(sim_fill["commission"])
    fills = stack.audit.fills().filter(stack.audit.fills()["ticket_id"] == ticket.ticket_id)
    assert fills["exec_id"].to_list() == [sim_fill["exec_id"]]
    assert fills["commission"].to_list() == [pytest.approx(sim_fill["commission"])]


def test_gateway_refusal_at_preview_is_shown_with_its_reason(stack, monkeypatch):
    # Make the desk's own tick rule looser than the exchange's, so the gateway is the one to refuse.
    monkeypatch.setattr(order_checks, "min_tick", lambda contract, price: 0.001)
    ticket = draft_aapl(stack, limit=round(aapl_spot(stack) * 0.8, 2) + 0.005)
    with pytest.raises(OrderDeskError, match="110: The price does not conform to the minimum price variation"):
        stack.desk.preview(ticket.ticket_id, "sess-a")
    assert stack.desk.ticket(ticket.ticket_id).state == TicketState.CHECKED
    with pytest.raises(OrderDeskError, match="Review the ticket"):
        stack.desk.confirm(ticket.ticket_id, "sess-a")
    assert stack.sim_orders(ticket.ticket_id) == []


def test_gateway_rejection_at_placement_is_shown_with_its_reason(stack, monkeypatch):
    # The exchange refuses at placement what passed every check and the what-if: here the desk's
    # tick rule is loosened and the what-if answer is stood in, so only the gateway can refuse.
    monkeypatch.setattr(order_checks, "min_tick", lambda contract, price: 0.001)
    monkeypatch.setattr(stack.runtime, "what_if", lambda spec: _done(WhatIfResult(
        init_margin_change=1.0, maint_margin_change=1.0, init_margin_after=None, maint_margin_after=None,
        equity_with_loan_after=None, commission=1.0, min_commission=1.0, max_commission=1.0)))
    ticket = draft_aapl(stack, limit=round(aapl_spot(stack) * 0.8, 2) + 0.005)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
    assert sent.state == TicketState.REJECTED
    assert "minimum price variation" in sent.last_message
    [order] = stack.sim_orders(ticket.ticket_id)
    assert order.status == "Cancelled"
    events = stack.events(ticket.ticket_id)
    assert events[-2:] == ["sent", "rejected"]
    detail = json.loads(stack.audit.audit(ticket.ticket_id).row(-1, named=True)["detail"])
    assert "minimum price variation" in detail["reason"]


def _done(value):
    future = Future()
    future.set_result(value)
    return future


def test_cancel_one_working_order(stack):
    ticket = draft_aapl(stack)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
    wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.WORKING)
    assert sent.order_id is not None
    stack.desk.cancel(ticket.ticket_id, "sess-c")
    wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.CANCELLED)
    [order] = stack.sim_orders(ticket.ticket_id)
    assert order.status == "Cancelled"
    trail = stack.audit.audit(ticket.ticket_id)
    requested = trail.filter(trail["event"] == "cancel_requested").row(0, named=True)
    assert requested["session_id"] == "sess-c" and requested["order_id"] == order.order_id
    assert trail.filter(trail["event"] == "status")["status"].to_list()[-1] == "Cancelled"
    with pytest.raises(OrderDeskError, match="no working order"):
        stack.desk.cancel(ticket.ticket_id, "sess-c")


def test_cancel_all_cancels_every_working_order(stack):
    placed = []
    for _ in range(2):
        ticket = draft_aapl(stack)
        stack.desk.preview(ticket.ticket_id, "sess-a")
        placed.append(stack.desk.confirm(ticket.ticket_id, "sess-a").ticket_id)
    wait_until(lambda: all(stack.desk.ticket(t).state == TicketState.WORKING for t in placed))
    stack.desk.cancel_all("sess-a")
    wait_until(lambda: all(stack.desk.ticket(t).state == TicketState.CANCELLED for t in placed))
    assert all(o.status not in ("Submitted", "PreSubmitted") for o in stack.gw.orders())
    assert "cancel_all_requested" in stack.audit.audit()["event"].to_list()


def test_combo_close_reaches_the_sim_with_its_legs(stack):
    snapshot = stack.snapshot()
    condor = next(s for s in snapshot.strategies if s.underlying == "SPY" and len(s.con_ids) == 4)
    [ticket] = stack.desk.draft_close(condor, as_combo=True, session_id="sess-a")
    # A resting price (far from the net mark) so the position stays for other tests.
    resting = round(ticket.limit_price - 3.0, 2)
    stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=resting)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    [order] = stack.sim_orders(ticket.ticket_id)
    assert (order.action, order.quantity, order.order_type, order.limit_price) == ("BUY", 2, "LMT", resting)
    assert {(leg.con_id, leg.ratio, leg.action) for leg in order.combo_legs} == {
        (leg.contract.con_id, leg.ratio, leg.action) for leg in ticket.combo_legs}
    stack.desk.cancel(ticket.ticket_id, "sess-a")
    wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.CANCELLED)


def test_market_order_fill_is_audited_after_sent_with_its_commission(stack):
    ticket = draft_aapl(stack)
    stack.desk.edit(ticket.ticket_id, "sess-a", order_type="MKT", limit_price=None)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    [order] = stack.sim_orders(ticket.ticket_id)
    assert (order.order_type, order.limit_price, order.quantity) == ("MKT", None, 1)
    wait_until(lambda: "fill" in stack.events(ticket.ticket_id), timeout=15)
    events = stack.events(ticket.ticket_id)
    assert events.index("confirmed") < events.index("sent") < events.index("fill")
    fill = stack.audit.fills().filter(stack.audit.fills()["ticket_id"] == ticket.ticket_id).row(0, named=True)
    assert fill["commission"] == pytest.approx(1.0) and fill["quantity"] == 1


def test_cancel_by_ib_order_id(stack):
    ticket = draft_aapl(stack)
    stack.desk.preview(ticket.ticket_id, "sess-a")
    sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
    stack.desk.cancel_order(sent.order_id, "sess-d")
    wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.CANCELLED)
    assert stack.sim_orders(ticket.ticket_id)[0].status == "Cancelled"
