"""Pure ticket rules: tick grid, field validation, order legs, spec serialisation for the audit."""

from datetime import date

import pytest

from v6core.models import ContractInfo, OrderLegSpec, OrderSpec
from v6core.orders import (
    min_tick,
    order_legs,
    round_to_tick,
    spec_from_json,
    spec_to_json,
    validate_fields,
)

AAPL = ContractInfo(con_id=265598, symbol="AAPL", sec_type="STK")
AAPL_CALL = ContractInfo(con_id=9001, symbol="AAPL", sec_type="OPT", expiry=date(2026, 12, 18),
                         strike=230.0, right="C", multiplier=100.0)
SPY_PUT = ContractInfo(con_id=9002, symbol="SPY", sec_type="OPT", expiry=date(2026, 12, 18),
                       strike=580.0, right="P", multiplier=100.0)
BAG = ContractInfo(con_id=0, symbol="SPY", sec_type="BAG", multiplier=100.0)


@pytest.mark.parametrize("contract, price, tick", [
    (AAPL, 231.37, 0.01),
    (AAPL_CALL, 2.99, 0.01),
    (AAPL_CALL, 3.00, 0.05),
    (AAPL_CALL, 12.35, 0.05),
    (SPY_PUT, 12.37, 0.01),          # penny pilot: $0.01 at every price
    (BAG, -1.23, 0.01),
])
def test_min_tick_follows_stock_option_and_penny_pilot_rules(contract, price, tick):
    assert min_tick(contract, price) == tick


def test_round_to_tick_snaps_to_the_grid():
    assert round_to_tick(231.3749, 0.01) == 231.37
    assert round_to_tick(12.37, 0.05) == 12.35
    assert round_to_tick(12.38, 0.05) == 12.40


def test_valid_ticket_has_no_problems():
    assert validate_fields("BUY", 10, "LMT", 231.37, "DAY", AAPL) == []
    assert validate_fields("SELL", 1, "MKT", None, "GTC", AAPL_CALL) == []


@pytest.mark.parametrize("kwargs, expected", [
    (dict(limit_price=None), "A limit price is required for a LMT order."),
    (dict(quantity=0), "Quantity must be a positive number."),
    (dict(quantity=-3), "Quantity must be a positive number."),
    (dict(quantity=1.5), "Quantity must be a whole number (got 1.5)."),
    (dict(action="HOLD"), "Action must be BUY or SELL (got 'HOLD')."),
    (dict(order_type="STP"), "Order type must be LMT or MKT (got 'STP')."),
    (dict(tif="IOC"), "Time in force must be DAY or GTC (got 'IOC')."),
    (dict(limit_price=-1.0), "Limit price must be positive (got -1)."),
])
def test_each_field_problem_has_a_clear_message(kwargs, expected):
    fields = dict(action="BUY", quantity=10, order_type="LMT", limit_price=231.37, tif="DAY", contract=AAPL)
    fields.update(kwargs)
    assert expected in validate_fields(**fields)


def test_off_grid_limit_names_the_tick_and_the_nearest_price():
    problems = validate_fields("BUY", 1, "LMT", 12.37, "DAY", AAPL_CALL)
    assert problems == ["Limit price 12.37 is not on the tick grid: AAPL 2026-12-18 230C trades in steps "
                        "of $0.05 at this price (nearest 12.35)."]
    assert validate_fields("BUY", 1, "LMT", 231.375, "DAY", AAPL)[0].startswith("Limit price 231.375 is not")


def test_combo_limit_may_be_a_credit():
    assert validate_fields("BUY", 1, "LMT", -1.25, "DAY", BAG) == []


def test_combo_legs_sign_follows_combo_and_leg_actions():
    spec = OrderSpec(contract=BAG, action="BUY", quantity=2, order_type="LMT", limit_price=-1.0,
                     combo_legs=(OrderLegSpec(SPY_PUT, 1, "SELL"), OrderLegSpec(AAPL_CALL, 2, "BUY")))
    assert [(c.con_id, q) for c, q in order_legs(spec)] == [(9002, -2), (9001, 4)]
    sell = OrderSpec(contract=BAG, action="SELL", quantity=1, order_type="MKT",
                     combo_legs=(OrderLegSpec(SPY_PUT, 1, "SELL"),))
    assert [q for _, q in order_legs(sell)] == [1]


def test_spec_survives_the_audit_json_round_trip():
    spec = OrderSpec(contract=BAG, action="BUY", quantity=2, order_type="LMT", limit_price=-1.05, tif="GTC",
                     combo_legs=(OrderLegSpec(SPY_PUT, 1, "SELL"), OrderLegSpec(AAPL_CALL, 2, "BUY")))
    assert spec_from_json(spec_to_json(spec)) == spec


def test_strategy_legs_take_the_strategy_share_of_a_split_leg():
    from v6core.models import Leg, PositionGreeks, Strategy
    from v6core.orders import strategy_legs

    def leg(contract, quantity):
        return Leg(account="DU1", contract=contract, quantity=quantity, avg_price=1.0, mark=1.0,
                   market_value=None, unrealized_pnl=None, realized_pnl=None, daily_pnl=None, dte=30,
                   greeks=None, position_greeks=PositionGreeks(), quote_time=None)

    legs = [leg(SPY_PUT, -3), leg(AAPL_CALL, 1)]
    condor_part = Strategy(strategy_id="s", kind="custom", underlying="SPY", con_ids=(9002,),
                           greeks=PositionGreeks(), unrealized_pnl=0, daily_pnl=0, market_value=0,
                           quantities=(-2.0,))
    [only] = strategy_legs(condor_part, legs)
    assert (only.contract.con_id, only.quantity) == (9002, -2.0)
    whole = Strategy(strategy_id="t", kind="custom", underlying="SPY", con_ids=(9002, 9001),
                     greeks=PositionGreeks(), unrealized_pnl=0, daily_pnl=0, market_value=0)
    assert [(x.contract.con_id, x.quantity) for x in strategy_legs(whole, legs)] == [(9002, -3), (9001, 1)]
