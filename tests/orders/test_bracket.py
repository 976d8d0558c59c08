"""Brackets through the real desk, runtime and simulator: a signal's stop and target as attached
take-profit and stop orders, placed with the entry under the ticket's one confirmation, checked,
audited with every order id, cancelled with the entry, and never placed twice."""

from __future__ import annotations

import json

import pytest

from tests.orders.conftest import signal_record, start_stack, wait_until
from v6core.orders import AlreadyConfirmed, TicketBlocked, TicketState


def bracket_ticket(stack, action="BUY", limit=None):
    spot = stack.gw.spot("AAPL")
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", action, spot), "sess-a", bracket=True)
    if limit is not None:
        ticket = stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=limit)
    return ticket


def refs(stack, ticket_id):
    return {o.order_ref: o for o in stack.gw.orders() if o.order_ref.startswith(ticket_id)}


# ---------------------------------------------------------------- checks

def test_a_bracket_ticket_carries_its_exits_on_the_tick_grid(stack):
    ticket = bracket_ticket(stack)
    assert ticket.bracket and ticket.stop < ticket.limit_price < ticket.target
    assert (ticket.spec.take_profit, ticket.spec.stop_loss) == (ticket.target, ticket.stop)
    assert stack.desk.check(ticket.ticket_id, "sess-a").ok
    drafted = json.loads(stack.audit.audit(ticket.ticket_id)["detail"][0])
    assert drafted["bracket"] is True and drafted["spec"]["take_profit"] == ticket.target
    plain = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", stack.gw.spot("AAPL")), "sess-a")
    assert not plain.bracket and plain.spec.take_profit is None and plain.spec.stop_loss is None


@pytest.mark.parametrize("action, changes, message", [
    ("BUY", lambda t: dict(stop=t.limit_price + 1), "A BUY bracket needs stop < limit < target"),
    ("BUY", lambda t: dict(target=t.limit_price - 1), "A BUY bracket needs stop < limit < target"),
    ("SELL", lambda t: dict(stop=t.limit_price - 1), "A SELL bracket needs target < limit < stop"),
    ("BUY", lambda t: dict(target=t.target + 0.005), "Bracket target"),
    ("BUY", lambda t: dict(stop=None), "A bracket needs a positive stop price"),
    ("BUY", lambda t: dict(order_type="MKT", limit_price=None), "A bracket needs a LMT entry"),
])
def test_a_bracket_with_its_prices_on_the_wrong_side_or_off_the_grid_is_blocked(stack, action, changes, message):
    ticket = bracket_ticket(stack, action)
    stack.desk.edit(ticket.ticket_id, "sess-a", **changes(ticket))
    with pytest.raises(TicketBlocked) as blocked:
        stack.desk.preview(ticket.ticket_id, "sess-a")
    assert any(message in p for p in blocked.value.problems), blocked.value.problems
    assert refs(stack, ticket.ticket_id) == {}


# ---------------------------------------------------------------- placement

def test_one_confirmation_places_entry_take_profit_and_stop_exactly_once(own_gw, tmp_path):
    stack = start_stack(own_gw, tmp_path / "lake")
    try:
        spot = own_gw.spot("AAPL")
        ticket = bracket_ticket(stack, limit=round(spot * 1.02, 2))          # marketable entry
        stack.desk.preview(ticket.ticket_id, "sess-a")
        sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
        with pytest.raises(AlreadyConfirmed):
            stack.desk.confirm(ticket.ticket_id, "sess-b")
        orders = refs(stack, ticket.ticket_id)
        tid = ticket.ticket_id
        assert set(orders) == {tid, f"{tid}:tp", f"{tid}:sl"}
        parent, tp, sl = orders[tid], orders[f"{tid}:tp"], orders[f"{tid}:sl"]
        assert (parent.action, parent.order_type, parent.limit_price) == ("BUY", "LMT", ticket.limit_price)
        assert (tp.action, tp.order_type, tp.limit_price, tp.parent_id) == ("SELL", "LMT", ticket.target, parent.order_id)
        assert (sl.action, sl.order_type, sl.aux_price, sl.parent_id) == ("SELL", "STP", ticket.stop, parent.order_id)
        assert tp.oca_group == sl.oca_group == f"{tid}:oca" and tp.tif == sl.tif == "GTC"
        assert sent.child_order_ids == (tp.order_id, sl.order_id)
        wait_until(lambda: stack.desk.ticket(tid).state == TicketState.FILLED)
        wait_until(lambda: refs(stack, tid)[f"{tid}:sl"].status == "Submitted")
        # the exits are working orders the runtime follows
        working = wait_until(lambda: {o.order_ref for o in stack.snapshot().orders if o.is_working}
                             >= {f"{tid}:tp", f"{tid}:sl"})
        assert working
        trail = stack.audit.audit(tid)
        sent_row = trail.filter(trail["event"] == "sent").row(0, named=True)
        detail = json.loads(sent_row["detail"])
        assert sent_row["order_id"] == parent.order_id
        assert detail["child_order_ids"] == [tp.order_id, sl.order_id]
        assert [c["order_ref"] for c in detail["children"]] == [f"{tid}:tp", f"{tid}:sl"]
        # the take-profit fills, the stop is cancelled with it; the exit's fill is audited
        own_gw.set_spot("AAPL", round(ticket.target * 1.01, 2))
        wait_until(lambda: refs(stack, tid)[f"{tid}:tp"].status == "Filled")
        wait_until(lambda: refs(stack, tid)[f"{tid}:sl"].status == "Cancelled")
        def fill_order_ids():
            trail = stack.audit.audit(tid)
            return trail.filter(trail["event"] == "fill")["order_id"].to_list()
        wait_until(lambda: tp.order_id in fill_order_ids(), timeout=15)
        assert len([o for o in own_gw.orders() if o.order_ref.startswith(tid)]) == 3
        draft = bracket_ticket(stack)
        draft = stack.desk.edit(draft.ticket_id, "sess-a", stop=round(draft.stop - 0.5, 2), bracket=False)
    finally:
        stack.close()
    # after a restart the ticket still knows it is a bracket and which orders are its exits
    again = start_stack(own_gw, tmp_path / "lake")
    try:
        recovered = again.desk.ticket(tid)
        assert recovered.bracket and recovered.child_order_ids == (tp.order_id, sl.order_id)
        assert (recovered.stop, recovered.target) == (ticket.stop, ticket.target)
        kept = again.desk.ticket(draft.ticket_id)           # an edited draft keeps its edits
        assert (kept.bracket, kept.stop, kept.target) == (False, draft.stop, draft.target)
    finally:
        again.close()


def test_cancelling_a_working_bracket_cancels_its_exits(stack):
    spot = stack.gw.spot("AAPL")
    ticket = bracket_ticket(stack, limit=round(spot * 0.8, 2))              # rests
    stack.desk.edit(ticket.ticket_id, "sess-a", stop=round(spot * 0.7, 2))
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    tid = ticket.ticket_id
    wait_until(lambda: stack.desk.ticket(tid).state == TicketState.WORKING)
    stack.desk.cancel(tid, "sess-a")
    wait_until(lambda: {o.status for o in refs(stack, tid).values()} == {"Cancelled"})
    wait_until(lambda: stack.desk.ticket(tid).state == TicketState.CANCELLED)
    assert len(refs(stack, tid)) == 3


def test_a_filled_entrys_working_exits_are_what_cancel_cancels(stack):
    spot = stack.gw.spot("AAPL")
    ticket = bracket_ticket(stack, limit=round(spot * 1.02, 2))
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    tid = ticket.ticket_id
    wait_until(lambda: stack.desk.ticket(tid).state == TicketState.FILLED)
    wait_until(lambda: sum(o.is_working for o in stack.snapshot().orders if o.order_ref.startswith(tid)) == 2)
    stack.desk.cancel(tid, "sess-a")
    wait_until(lambda: [refs(stack, tid)[f"{tid}:{k}"].status for k in ("tp", "sl")] == ["Cancelled"] * 2)
    assert refs(stack, tid)[tid].status == "Filled"
    assert stack.events(tid).count("cancel_requested") == 1


def test_modifying_a_working_brackets_entry_keeps_it_working_and_inside_its_exits(stack):
    spot = stack.gw.spot("AAPL")
    ticket = bracket_ticket(stack, limit=round(spot * 0.8, 2))
    stack.desk.edit(ticket.ticket_id, "sess-a", stop=round(spot * 0.7, 2))
    stack.desk.preview(ticket.ticket_id, "sess-a")
    stack.desk.confirm(ticket.ticket_id, "sess-a")
    tid = ticket.ticket_id
    wait_until(lambda: stack.desk.ticket(tid).state == TicketState.WORKING)
    with pytest.raises(TicketBlocked, match="stop < limit < target"):
        stack.desk.modify_limit(tid, "sess-a", round(spot * 0.65, 2))       # below its own stop
    stack.desk.modify_limit(tid, "sess-a", round(spot * 0.81, 2))
    wait_until(lambda: refs(stack, tid)[tid].limit_price == round(spot * 0.81, 2))
    assert refs(stack, tid)[tid].status == "Submitted"                       # transmitted, not held
    assert [refs(stack, tid)[f"{tid}:{k}"].status for k in ("tp", "sl")] == ["PreSubmitted"] * 2
    stack.desk.cancel(tid, "sess-a")
    wait_until(lambda: {o.status for o in refs(stack, tid).values()} == {"Cancelled"})


def test_an_exit_found_at_the_gateway_is_audited_and_known_after_a_restart(own_gw, tmp_path):
    """A bracket whose exits the ticket does not list (v6 stopped between placing them and
    recording "sent") adopts them from the gateway's order book by orderRef: each adoption is an
    audit row, so the next restart knows the exits too and a cancel still reaches them."""
    from dataclasses import replace

    stack = start_stack(own_gw, tmp_path / "lake")
    try:
        spot = own_gw.spot("AAPL")
        ticket = bracket_ticket(stack)                                          # rests below spot
        ticket = stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2),
                                 stop=round(spot * 0.7, 2))
        stack.desk.preview(ticket.ticket_id, "sess-a")
        sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
        tid, exits = ticket.ticket_id, sent.child_order_ids
        assert len(exits) == 2
        book = stack.desk._book                 # as if "sent" had been recorded without its exits
        with book.lock:
            book.put(replace(book.get(tid), child_order_ids=()))
        wait_until(lambda: set(stack.desk.ticket(tid).child_order_ids) == set(exits), timeout=20)
        def adopted():
            trail = stack.audit.audit(tid)
            return set(trail.filter(trail["event"] == "exit_adopted")["order_id"].to_list())
        wait_until(lambda: adopted() == set(exits), timeout=20)
    finally:
        stack.close()
    again = start_stack(own_gw, tmp_path / "lake")
    try:
        assert set(again.desk.ticket(tid).child_order_ids) == set(exits)
        again.desk.cancel(tid, "sess-a")
        wait_until(lambda: {o.status for o in own_gw.orders() if o.order_ref.startswith(tid)} == {"Cancelled"})
    finally:
        again.close()
