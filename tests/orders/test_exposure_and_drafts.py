"""Honest tickets (issue #12, defects 3 and 4): a close ticket edited into a larger opposite
position is blocked and the naked short named; review re-prices against the live quote; drafts
can be discarded (audited) and stay discarded after a restart. Real desk, runtime, simulator."""

from __future__ import annotations

import pytest

from tests.orders.conftest import signal_record
from v6core.orders import OrderDesk, OrderDeskError, TicketState

SPY_627C = 1199602508        # seed 7 holds +2 of it, and no SPY shares


def held_leg(stack, con_id):
    return next(leg for leg in stack.snapshot().legs if leg.contract.con_id == con_id)


def test_a_close_edited_into_a_larger_opposite_position_is_blocked_and_the_naked_short_named(stack):
    leg = held_leg(stack, SPY_627C)
    assert leg.quantity == 2
    [ticket] = stack.desk.draft_close([leg], as_combo=False, session_id="sess-a")
    assert stack.desk.check(ticket.ticket_id, "sess-a").ok           # closing 2 is what it says
    stack.desk.edit(ticket.ticket_id, "sess-a", quantity=5)
    result = stack.desk.check(ticket.ticket_id, "sess-a")
    assert any(p.startswith(f"This close ticket would leave you short 3 {leg.contract.label} (held +2, "
                            "the order sells 5)") for p in result.problems), result.problems
    assert result.warnings[0].startswith("Naked short call: this order leaves calls on 300 SPY shares short "
                                         "with 0 shares held")
    with pytest.raises(OrderDeskError):
        stack.desk.preview(ticket.ticket_id, "sess-a")
    assert stack.sim_orders(ticket.ticket_id) == []
    stack.desk.discard(ticket.ticket_id, "sess-a")


def test_a_close_of_the_held_quantity_passes_and_an_opposite_close_is_blocked(stack):
    leg = held_leg(stack, SPY_627C)
    [ticket] = stack.desk.draft_close([leg], as_combo=False, session_id="sess-a")
    stack.desk.edit(ticket.ticket_id, "sess-a", action="BUY")          # "close" a long by buying more
    problems = stack.desk.check(ticket.ticket_id, "sess-a").problems
    assert any("would leave you long 4" in p for p in problems), problems
    stack.desk.discard(ticket.ticket_id, "sess-a")


def test_review_reprices_against_the_live_quote(stack):
    spot = stack.gw.spot("AAPL")
    far = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    stack.desk.edit(far.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
    previewed = stack.desk.preview(far.ticket_id, "sess-a")
    [warning] = [w for w in previewed.preview.warnings if "live mid" in w]
    assert warning.startswith(f"Limit {round(spot * 0.8, 2):.2f} is ") and "below the live mid" in warning
    near = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    previewed = stack.desk.preview(near.ticket_id, "sess-a")
    assert not [w for w in previewed.preview.warnings if "live mid" in w]
    for t in (far, near):
        stack.desk.discard(t.ticket_id, "sess-a")


def test_a_discarded_draft_is_audited_never_confirmed_and_stays_discarded_after_a_restart(stack):
    spot = stack.gw.spot("AAPL")
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
    stack.desk.preview(ticket.ticket_id, "sess-a")
    discarded = stack.desk.discard(ticket.ticket_id, "sess-a")
    assert discarded.state == TicketState.DISCARDED
    assert stack.events(ticket.ticket_id)[-1] == "discarded"
    with pytest.raises(OrderDeskError):
        stack.desk.confirm(ticket.ticket_id, "sess-a")
    with pytest.raises(OrderDeskError, match="only a draft can be discarded"):
        stack.desk.discard(ticket.ticket_id, "sess-a")
    restarted = OrderDesk(stack.settings, stack.runtime, stack.audit)
    restarted.recover()
    assert restarted.ticket(ticket.ticket_id).state == TicketState.DISCARDED
    assert stack.sim_orders(ticket.ticket_id) == []
