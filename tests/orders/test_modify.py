"""Modifying a working order's limit price (issue #12, defect 8): checked like a new order,
confirmed once, audited, and sent under the same IB order id (the simulator's book shows it)."""

from __future__ import annotations

import pytest

from tests.orders.conftest import signal_record, wait_until
from v6core.orders import OrderDesk, OrderDeskError, TicketBlocked, TicketState


def test_a_working_orders_limit_is_modified_under_the_same_order_id(stack):
    spot = stack.gw.spot("AAPL")
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    working = wait_until(lambda: (t := stack.desk.ticket(ticket.ticket_id)).state == TicketState.WORKING and t)
    [before] = stack.sim_orders(ticket.ticket_id)

    with pytest.raises(TicketBlocked, match="not on the tick grid"):
        stack.desk.modify_limit(ticket.ticket_id, "sess-a", round(spot * 0.81, 2) + 0.005)
    new_limit = round(spot * 0.81, 2)
    modified = stack.desk.modify_limit(ticket.ticket_id, "sess-a", new_limit)
    assert modified.limit_price == new_limit and modified.modifications == 1
    wait_until(lambda: stack.sim_orders(ticket.ticket_id)[0].limit_price == new_limit)
    [after] = stack.sim_orders(ticket.ticket_id)
    assert (after.order_id, after.perm_id) == (before.order_id, before.perm_id) == (working.order_id,
                                                                                   working.perm_id)
    events = stack.events(ticket.ticket_id)
    assert events[events.index("modify_confirmed") + 1:].count("modify_sent") == 1
    # A desk rebuilt from the audit knows the modified limit.
    rebuilt = OrderDesk(stack.settings, stack.runtime, stack.audit)
    rebuilt.recover()
    assert rebuilt.ticket(ticket.ticket_id).limit_price == new_limit

    stack.desk.cancel(ticket.ticket_id, "sess-a")
    wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.CANCELLED)
    with pytest.raises(OrderDeskError, match="no working limit order"):
        stack.desk.modify_limit(ticket.ticket_id, "sess-a", new_limit)
    assert len(stack.sim_orders(ticket.ticket_id)) == 1
