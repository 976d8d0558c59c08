"""A placement the gateway never receives (issue #11, defect 5): a real TCP proxy between the
client and the simulator swallows the placeOrder frame. After a bounded wait the desk asks the
gateway for the ticket's orderRef (open and completed orders, executions); it is not there, so
the ticket becomes uncertain, and the operator may resend it, once."""

from __future__ import annotations

import time

import pytest

from tests.orders.conftest import signal_record, start_stack, wait_until
from tests.orders.frame_proxy import PLACE_ORDER, FrameProxy
from v6core.orders import AlreadyConfirmed, OrderDeskError, TicketState


class _Port:
    def __init__(self, port: int) -> None:
        self.port = port


def test_a_swallowed_placement_becomes_uncertain_and_may_be_resent_once(own_gw, tmp_path):
    proxy = FrameProxy(own_gw.port)
    stack = start_stack(_Port(proxy.port), tmp_path / "lake", connect_timeout=2.0)
    try:
        stack.desk.ack_timeout = 3.0
        spot = own_gw.spot("AAPL")
        ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
        stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
        stack.desk.preview(ticket.ticket_id, "sess-a")

        proxy.drop_ids = {PLACE_ORDER}
        sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
        proxy.drop_ids = set()
        assert len(proxy.dropped) == 1
        assert sent.state == TicketState.SENT and not sent.perm_id
        assert [o for o in own_gw.orders() if o.order_ref == ticket.ticket_id] == []

        uncertain = wait_until(lambda: (t := stack.desk.ticket(ticket.ticket_id)).state
                               == TicketState.UNCERTAIN and t, timeout=60)
        assert "never acknowledged" in uncertain.last_message
        assert "no order with this ticket's orderRef" in uncertain.last_message
        assert stack.events(ticket.ticket_id)[-2:] == ["gateway_checked", "uncertain"]

        resent = stack.desk.resend(ticket.ticket_id, "sess-a")
        assert resent.state in (TicketState.SENT, TicketState.WORKING)
        [order] = [o for o in own_gw.orders() if o.order_ref == ticket.ticket_id]
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.WORKING, timeout=30)
        time.sleep(2.0)        # the swallowed order's stale record must not take the ticket over
        working = stack.desk.ticket(ticket.ticket_id)
        assert working.state == TicketState.WORKING and working.order_id == order.order_id
        with pytest.raises(OrderDeskError):
            stack.desk.resend(ticket.ticket_id, "sess-a")
        stack.desk.cancel(ticket.ticket_id, "sess-a")
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.CANCELLED, timeout=30)
    finally:
        stack.close()
        proxy.close()


def test_a_ticket_resent_once_is_never_resent_again(own_gw, tmp_path):
    proxy = FrameProxy(own_gw.port)
    stack = start_stack(_Port(proxy.port), tmp_path / "lake", connect_timeout=2.0)
    try:
        stack.desk.ack_timeout = 2.0
        spot = own_gw.spot("AAPL")
        ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
        stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
        stack.desk.preview(ticket.ticket_id, "sess-a")
        proxy.drop_ids = {PLACE_ORDER}
        stack.desk.confirm(ticket.ticket_id, "sess-a")
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.UNCERTAIN, timeout=60)
        stack.desk.resend(ticket.ticket_id, "sess-a")          # swallowed again
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.UNCERTAIN, timeout=60)
        proxy.drop_ids = set()
        with pytest.raises(AlreadyConfirmed, match="already re-sent once"):
            stack.desk.resend(ticket.ticket_id, "sess-b")
        assert [o for o in own_gw.orders() if o.order_ref == ticket.ticket_id] == []
        assert len(proxy.dropped) == 2
    finally:
        stack.close()
        proxy.close()
