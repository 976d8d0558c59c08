"""Limit prices reach the gateway on the tick grid or not at all (issue #11, defect 9): a price
below one tick is refused, a price off the grid by float noise is rounded (and the operator told),
any other off-grid price is refused."""

from __future__ import annotations

from datetime import date

import pytest

from tests.orders.conftest import signal_record
from v6core.models import ContractInfo
from v6core.orders import TicketState, validate_fields

AAPL = ContractInfo(con_id=265598, symbol="AAPL", sec_type="STK", local_symbol="AAPL")
AAPL_CALL = ContractInfo(con_id=1, symbol="AAPL", sec_type="OPT", expiry=date(2026, 12, 18), strike=230.0,
                         right="C", multiplier=100)


@pytest.mark.parametrize("price", [1e-09, 0.004, 1e-300])
def test_a_limit_below_one_tick_is_refused(price):
    problems = validate_fields("BUY", 1, "LMT", price, "DAY", AAPL)
    assert problems == [f"Limit price {price!r} is below one tick: AAPL trades in steps of $0.01."]


@pytest.mark.parametrize("price", [184.050000001, 184.0500001, 12.350000001])
def test_a_limit_off_the_grid_by_a_hair_is_not_on_the_grid(price):
    [problem] = validate_fields("BUY", 1, "LMT", price, "DAY", AAPL_CALL if price < 20 else AAPL)
    assert problem.startswith(f"Limit price {price!r} is not on the tick grid")


def test_grid_prices_pass():
    assert validate_fields("BUY", 1, "LMT", 184.05, "DAY", AAPL) == []
    assert validate_fields("BUY", 1, "LMT", 0.01, "DAY", AAPL) == []
    assert validate_fields("BUY", 1, "LMT", 12.35, "DAY", AAPL_CALL) == []


def test_an_entered_price_with_float_noise_is_rounded_told_and_sent_rounded(stack):
    spot = stack.gw.spot("AAPL")
    on_grid = round(spot * 0.8, 2)
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    edited = stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=on_grid + 1e-9)
    assert edited.limit_price == on_grid
    assert "rounded to" in edited.last_message and f"{on_grid:.2f}" in edited.last_message
    stack.desk.preview(ticket.ticket_id, "sess-a")
    sent = stack.desk.confirm(ticket.ticket_id, "sess-a")
    assert sent.state in (TicketState.SENT, TicketState.WORKING)
    [order] = stack.sim_orders(ticket.ticket_id)
    assert order.limit_price == on_grid
    stack.desk.cancel(ticket.ticket_id, "sess-a")


def test_a_price_below_one_tick_never_reaches_the_gateway(stack):
    spot = stack.gw.spot("AAPL")
    ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
    edited = stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=1e-09)
    assert edited.limit_price == 1e-09
    result = stack.desk.check(ticket.ticket_id, "sess-a")
    assert "Limit price 1e-09 is below one tick: AAPL trades in steps of $0.01." in result.problems
    assert stack.desk.ticket(ticket.ticket_id).state == TicketState.DRAFTED
    assert stack.sim_orders(ticket.ticket_id) == []
