"""What must never go wrong: placing twice, trading on stale data or without a connection,
trading a live account unasked, and losing track of an order across a crash."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tests.orders.conftest import signal_record, start_stack, wait_until
from v6core.models import ConnState
from v6core.orders import AlreadyConfirmed, OrderDesk, OrderDeskError, TicketBlocked, TicketState

ROOT = Path(__file__).resolve().parents[2]


def previewed_aapl(stack, session="sess-a", quantity=1):
    spot = stack.gw.spot("AAPL")
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), session)
    stack.desk.edit(ticket.ticket_id, session, limit_price=round(spot * 0.8, 2), quantity=quantity)
    return stack.desk.preview(ticket.ticket_id, session)


# ---------------------------------------------------------------- exactly once


def test_ten_concurrent_confirms_place_exactly_one_order(stack):
    ticket = previewed_aapl(stack)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def confirm(i: int) -> None:
        barrier.wait()
        try:
            stack.desk.confirm(ticket.ticket_id, f"tab-{i}")
            result = "placed"
        except AlreadyConfirmed:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["placed"] + ["refused"] * 9
    assert len(stack.sim_orders(ticket.ticket_id)) == 1
    assert stack.events(ticket.ticket_id).count("confirmed") == 1
    assert stack.events(ticket.ticket_id).count("sent") == 1


def test_a_second_session_confirming_the_same_ticket_is_refused(stack):
    ticket = previewed_aapl(stack)
    stack.desk.confirm(ticket.ticket_id, "tab-1")
    with pytest.raises(AlreadyConfirmed, match="already confirmed"):
        stack.desk.confirm(ticket.ticket_id, "tab-2")
    with pytest.raises(OrderDeskError, match="can no longer be edited"):
        stack.desk.edit(ticket.ticket_id, "tab-2", quantity=5)
    assert len(stack.sim_orders(ticket.ticket_id)) == 1


def test_the_audit_log_refuses_a_confirmed_ticket_even_without_the_in_memory_reservation(stack):
    """A desk that lost its memory (restart, second process) reads "confirmed" from the audit."""
    ticket = previewed_aapl(stack)
    stack.desk.confirm(ticket.ticket_id, "tab-1")
    other = OrderDesk(stack.settings, stack.runtime, stack.audit)
    other.recover()
    assert other.ticket(ticket.ticket_id).state in (TicketState.WORKING, TicketState.SENT)
    with pytest.raises(AlreadyConfirmed):
        other.confirm(ticket.ticket_id, "tab-3")
    # A desk that never recovered, handed the ticket as "previewed", is refused by the durable record.
    blank = OrderDesk(stack.settings, stack.runtime, stack.audit)
    with blank._lock:
        blank._tickets[ticket.ticket_id] = replace(ticket, state=TicketState.PREVIEWED)
    with pytest.raises(AlreadyConfirmed, match="audit log"):
        blank.confirm(ticket.ticket_id, "tab-3")
    assert len(stack.sim_orders(ticket.ticket_id)) == 1


# ---------------------------------------------------------------- blocked states


def test_disconnected_gateway_blocks_checks_and_confirm_and_a_reconnect_never_resends(own_gw, tmp_path):
    stack = start_stack(own_gw, tmp_path / "lake")
    try:
        placed = previewed_aapl(stack)
        stack.desk.confirm(placed.ticket_id, "tab-1")
        waiting = previewed_aapl(stack)
        own_gw.stop_listening()
        own_gw.faults.drop_all_clients()
        stack.runtime.wait_for(lambda s: s.connection.state != ConnState.CONNECTED, timeout=15)
        problems = stack.desk.evaluate(stack.desk.ticket(waiting.ticket_id)).problems
        assert any(p.startswith("Gateway is ") and "orders are blocked until it is connected" in p
                   for p in problems)
        with pytest.raises(TicketBlocked, match="orders are blocked until it is connected"):
            stack.desk.confirm(waiting.ticket_id, "tab-1")
        own_gw.start_listening()
        assert stack.runtime.wait_for(lambda s: s.connection.state == ConnState.CONNECTED, timeout=30)
        with pytest.raises(AlreadyConfirmed):
            stack.desk.confirm(placed.ticket_id, "tab-1")
        assert len(stack.sim_orders(placed.ticket_id)) == 1
        assert stack.sim_orders(waiting.ticket_id) == []
    finally:
        stack.close()


def test_stale_quote_blocks_the_order(tmp_path):
    from v6core.sim import SimGateway

    # Ticks every ~100 s: after the first quote, nothing moves, as with a stuck feed.
    gw = SimGateway(seed=5, port=0, tick_rate=0.01)
    gw.start()
    stack = start_stack(gw, tmp_path / "lake", stale_after=1.0)
    try:
        ticket = previewed_aapl(stack)
        quote = stack.snapshot().quote(ticket.contract.con_id)
        wait_until(lambda: (stack.desk.evaluate(ticket).problems), timeout=10)
        problems = stack.desk.evaluate(ticket).problems
        assert any(p.startswith("The quote for AAPL is ") and "stale after 1 s" in p for p in problems), problems
        with pytest.raises(TicketBlocked, match="stale after 1 s"):
            stack.desk.confirm(ticket.ticket_id, "tab-1")
        assert stack.sim_orders(ticket.ticket_id) == []
        assert stack.snapshot().quote(ticket.contract.con_id).time == quote.time
    finally:
        stack.close()
        gw.stop()


class LiveAccountRuntime:
    """The real runtime, its (paper) account reported as a live one (the sim has only paper)."""

    ACCOUNT = "U7654321"

    def __init__(self, runtime) -> None:
        self._runtime = runtime

    def __getattr__(self, name):
        return getattr(self._runtime, name)

    def snapshot(self):
        snapshot = self._runtime.snapshot()
        return replace(snapshot, connection=replace(snapshot.connection, is_paper=False, account=self.ACCOUNT))


def test_live_account_is_locked_unless_enabled(stack):
    desk = OrderDesk(stack.settings, LiveAccountRuntime(stack.runtime), stack.audit)
    spot = stack.gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-live")
    problems = desk.check(ticket.ticket_id, "sess-live").problems
    assert ("Account U7654321 is a LIVE account and live trading is locked "
            "(set V6_LIVE_TRADING_ENABLED=true to unlock it).") in problems
    with pytest.raises(TicketBlocked, match="live trading is locked"):
        desk.preview(ticket.ticket_id, "sess-live")


@pytest.mark.parametrize("typed", ["U7654321", "LIVE"])
def test_live_account_unlocked_needs_the_typed_confirmation(stack, typed):
    settings = stack.settings.model_copy(update={"live_trading_enabled": True})
    desk = OrderDesk(settings, LiveAccountRuntime(stack.runtime), stack.audit)
    spot = stack.gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-live")
    desk.edit(ticket.ticket_id, "sess-live", limit_price=round(spot * 0.8, 2))
    previewed = desk.preview(ticket.ticket_id, "sess-live")
    assert previewed.preview.needs_typed_confirmation and not previewed.preview.is_paper
    for wrong in (None, "", "live please", "DU0000000"):
        with pytest.raises(TicketBlocked, match="type the account id or LIVE"):
            desk.confirm(ticket.ticket_id, "sess-live", typed=wrong)
    assert stack.sim_orders(ticket.ticket_id) == []
    sent = desk.confirm(ticket.ticket_id, "sess-live", typed=typed)
    assert sent.state in (TicketState.SENT, TicketState.WORKING)
    assert len(stack.sim_orders(ticket.ticket_id)) == 1
    desk.cancel(ticket.ticket_id, "sess-live")


# ---------------------------------------------------------------- uncertainty and recovery


def test_a_placement_without_answer_is_uncertain_and_reconciled_when_the_order_shows_up(own_gw, tmp_path):
    stack = start_stack(own_gw, tmp_path / "lake")
    try:
        ticket = previewed_aapl(stack)
        stack.desk.request_timeout = 0.5
        own_gw.faults.delay_replies(2.0)
        uncertain = stack.desk.confirm(ticket.ticket_id, "tab-1")
        assert uncertain.state == TicketState.UNCERTAIN
        assert stack.events(ticket.ticket_id)[-2:] == ["confirmed", "uncertain"]
        with pytest.raises(AlreadyConfirmed):
            stack.desk.confirm(ticket.ticket_id, "tab-1")
        own_gw.faults.delay_replies(0)
        reconciled = wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state != TicketState.UNCERTAIN
                                and stack.desk.ticket(ticket.ticket_id), timeout=20)
        [order] = stack.sim_orders(ticket.ticket_id)
        assert reconciled.order_id == order.order_id and reconciled.state == TicketState.WORKING
        assert "reconciled" in stack.events(ticket.ticket_id)
        assert "sent" not in stack.events(ticket.ticket_id)
        with pytest.raises(OrderDeskError, match="not uncertain"):
            stack.desk.resend(ticket.ticket_id, "tab-1")
        assert len(stack.sim_orders(ticket.ticket_id)) == 1
    finally:
        stack.close()


def _crash_child(port: int, lake: Path) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-m", "tests.orders.crash_child", str(port), str(lake)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, f"child did not die by SIGKILL: {proc.returncode}\n{proc.stderr[-3000:]}"
    sent_by_hand, killed = proc.stdout.strip().splitlines()[-1].split()
    return sent_by_hand, killed


def test_kill_9_between_confirmed_and_sent_recovers_by_asking_the_gateway_and_never_resends(own_gw, tmp_path):
    lake = tmp_path / "lake"
    at_gateway, lost = _crash_child(own_gw.port, lake)
    from v6core.lake import AuditLog

    audit = AuditLog(lake)
    for ticket_id in (at_gateway, lost):
        trail = audit.audit(ticket_id)
        assert trail["event"].to_list() == ["drafted", "edited", "checked", "previewed", "confirmed"]
        assert set(trail["session_id"].to_list()) == {"crash-session"}
    [order] = [o for o in own_gw.orders() if o.order_ref == at_gateway]
    assert [o for o in own_gw.orders() if o.order_ref == lost] == []
    # While v6 is down the market falls through the limit: the order fills at the gateway.
    own_gw.set_spot("AAPL", round(order.limit_price * 0.95, 2))
    wait_until(lambda: next(o for o in own_gw.orders() if o.order_ref == at_gateway).status == "Filled")

    stack = start_stack(own_gw, lake)            # the restart: recover() runs before anything else
    try:
        # The order that reached the gateway is found by its orderRef and adopted, filled.
        adopted = stack.desk.ticket(at_gateway)
        assert adopted.state == TicketState.FILLED
        assert (adopted.order_id, adopted.perm_id) == (order.order_id, order.perm_id)
        assert stack.events(at_gateway)[5:7] == ["uncertain", "reconciled"]
        wait_until(lambda: "fill" in stack.events(at_gateway), timeout=15)
        [fill] = stack.audit.fills().filter(stack.audit.fills()["ticket_id"] == at_gateway).rows(named=True)
        assert fill["quantity"] == 2 and fill["commission"] == pytest.approx(1.0)
        # The one that never left stays uncertain: the gateway was asked, nothing was re-sent.
        ticket = stack.desk.ticket(lost)
        assert ticket.state == TicketState.UNCERTAIN
        assert stack.events(lost)[5:] == ["uncertain", "gateway_checked"]
        assert stack.sim_orders(lost) == []
        with pytest.raises(AlreadyConfirmed):
            stack.desk.confirm(lost, "tab-after-restart")
        for ticket_id in (at_gateway, lost):
            with pytest.raises(AlreadyConfirmed):
                stack.desk.confirm(ticket_id, "tab-after-restart")
        with pytest.raises(OrderDeskError, match="not uncertain"):
            stack.desk.resend(at_gateway, "tab-after-restart")
        # Only the operator's explicit re-send places it, once; it asks the gateway again first.
        sent = stack.desk.resend(lost, "tab-after-restart")
        assert sent.state in (TicketState.SENT, TicketState.WORKING, TicketState.FILLED)  # the market fell
        [resent] = stack.sim_orders(lost)
        assert (resent.action, resent.quantity, resent.limit_price) == ("BUY", 3, ticket.limit_price)
        assert stack.events(lost)[7:10] == ["gateway_checked", "confirmed", "sent"]
        with pytest.raises(OrderDeskError, match="not uncertain"):
            stack.desk.resend(lost, "tab-after-restart")
        assert len(stack.sim_orders(lost)) == 1 and len(stack.sim_orders(at_gateway)) == 1
    finally:
        stack.close()


def test_an_order_that_filled_while_v6_was_down_is_followed_up_after_restart(own_gw, tmp_path):
    lake = tmp_path / "lake"
    first = start_stack(own_gw, lake)
    try:
        ticket = previewed_aapl(first, quantity=2)
        sent = first.desk.confirm(ticket.ticket_id, "tab-1")
        wait_until(lambda: first.desk.ticket(ticket.ticket_id).state == TicketState.WORKING)
    finally:
        first.close()
    own_gw.set_spot("AAPL", round(ticket.limit_price * 0.95, 2))
    wait_until(lambda: first.sim_orders(ticket.ticket_id)[0].status == "Filled")
    second = start_stack(own_gw, lake)
    try:
        wait_until(lambda: second.desk.ticket(ticket.ticket_id).state == TicketState.FILLED, timeout=20)
        wait_until(lambda: "fill" in second.events(ticket.ticket_id), timeout=20)
        assert second.desk.ticket(ticket.ticket_id).perm_id == sent.perm_id
        fills = second.audit.fills().filter(second.audit.fills()["ticket_id"] == ticket.ticket_id)
        assert fills["quantity"].sum() == 2 and fills["commission"].sum() == pytest.approx(1.0)
        assert len(second.sim_orders(ticket.ticket_id)) == 1
    finally:
        second.close()
