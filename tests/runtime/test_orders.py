"""Order commands through the runtime against the simulator's order book."""

from __future__ import annotations

import polars as pl
import pytest

from v6core.models import ConnState, OrderLegSpec, OrderSpec, WhatIfResult
from tests.runtime.helpers import wait_ready

TIMEOUT = 15


def _far_limit_buy(gw, symbol="SPY", quantity=3):
    stock = gw.lookup(symbol)
    return OrderSpec(contract=stock, action="BUY", quantity=quantity, order_type="LMT",
                     limit_price=round(gw.spot(symbol) * 0.5, 2), tif="GTC")


def _vertical(gw, symbol="SPY"):
    expiry = gw.expiries(symbol)[1]
    spot = gw.spot(symbol)
    strikes = sorted(gw.strikes(symbol), key=lambda k: abs(k - spot))[:6]
    low, high = sorted(strikes)[2], sorted(strikes)[3]
    long_leg = gw.lookup(symbol, expiry, low, "C")
    short_leg = gw.lookup(symbol, expiry, high, "C")
    bag = type(long_leg)(con_id=0, symbol=symbol, sec_type="BAG")
    return OrderSpec(contract=bag, action="BUY", quantity=1, order_type="LMT", limit_price=0.01,
                     tif="DAY", combo_legs=(OrderLegSpec(long_leg, 1, "BUY"),
                                            OrderLegSpec(short_leg, 1, "SELL")))


def test_place_follow_and_cancel_a_limit_order(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    spec = _far_limit_buy(gw)
    view = rt.place_order(spec, "T-limit-1").result(TIMEOUT)
    assert view.status in ("Submitted", "PreSubmitted") and view.perm_id > 0
    assert view.order_ref == "T-limit-1" and view.account == gw.account_id
    # the simulator's own book holds exactly the confirmed fields
    sim_order = next(o for o in gw.orders() if o.order_ref == "T-limit-1")
    assert (sim_order.con_id, sim_order.action, sim_order.quantity, sim_order.order_type,
            sim_order.limit_price, sim_order.tif) == (spec.contract.con_id, "BUY", 3.0, "LMT",
                                                      spec.limit_price, "GTC")
    snap = rt.wait_for(lambda s: any(o.order_ref == "T-limit-1" and o.is_working for o in s.orders), 5)
    assert snap is not None
    rt.cancel_order(view.order_id).result(TIMEOUT)
    cancelled = rt.wait_for(lambda s: any(o.order_ref == "T-limit-1" and o.status == "Cancelled"
                                          for o in s.orders), 5)
    assert cancelled is not None
    assert next(o for o in gw.orders() if o.order_ref == "T-limit-1").status == "Cancelled"


def test_rejection_carries_ibs_reason(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    stock = gw.lookup("SPY")
    spec = OrderSpec(contract=stock, action="BUY", quantity=1.5, order_type="LMT",
                     limit_price=1.0)   # the sim refuses fractional quantities, as IB does
    view = rt.place_order(spec, "T-reject-1").result(TIMEOUT)
    assert view.status in ("Cancelled", "Inactive")
    assert "201" in view.last_message and "Fractional" in view.last_message
    snap = rt.wait_for(lambda s: any(o.order_ref == "T-reject-1" and "Fractional" in o.last_message
                                     for o in s.orders), 5)
    assert snap is not None


def test_market_order_fills_with_commission_and_updates_positions(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    before = wait_ready(rt, gw)
    stock = gw.lookup("IWM")
    held = sum(l.quantity for l in before.legs if l.contract.con_id == stock.con_id)
    view = rt.place_order(OrderSpec(contract=stock, action="BUY", quantity=7, order_type="MKT"),
                          "T-mkt-1").result(TIMEOUT)
    assert view.order_ref == "T-mkt-1"
    snap = rt.wait_for(
        lambda s: any(f.order_ref == "T-mkt-1" and f.commission is not None for f in s.fills)
        and any(l.contract.con_id == stock.con_id and l.quantity == held + 7 for l in s.legs), TIMEOUT)
    assert snap is not None, rt.snapshot().fills
    fill = next(f for f in snap.fills if f.order_ref == "T-mkt-1")
    assert fill.side == "BOT" and fill.quantity == 7 and fill.price > 0 and fill.commission > 0
    assert snap.positions_version > before.positions_version
    assert any(o.order_ref == "T-mkt-1" and o.status == "Filled" for o in snap.orders)


def test_combo_what_if_and_placement(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    spec = _vertical(gw)
    result = rt.what_if(spec).result(TIMEOUT)
    assert isinstance(result, WhatIfResult)
    assert result.init_margin_change is not None and result.commission is not None
    assert not [o for o in gw.orders() if o.order_ref == ""], "what-if must not create an order"
    view = rt.place_order(spec, "T-combo-1").result(TIMEOUT)
    assert view.status in ("Submitted", "PreSubmitted")
    sim_order = next(o for o in gw.orders() if o.order_ref == "T-combo-1")
    assert [(l.con_id, l.ratio, l.action) for l in sim_order.combo_legs] == [
        (leg.contract.con_id, 1, leg.action) for leg in spec.combo_legs]


def test_find_orders_by_ref_after_a_restart(gateway, make_runtime):
    gw = gateway
    first = make_runtime(gw)
    wait_ready(first, gw)
    placed = first.place_order(_far_limit_buy(gw, "QQQ", 2), "T-crash-1").result(TIMEOUT)
    first.place_order(_far_limit_buy(gw, "QQQ", 1), "T-other").result(TIMEOUT)
    first.stop()                      # the app dies; the order stays at the gateway
    second = make_runtime(gw)
    wait_ready(second, gw)
    found = second.find_orders_by_ref("T-crash-1").result(TIMEOUT)
    assert [(o.perm_id, o.order_ref, o.quantity) for o in found] == [(placed.perm_id, "T-crash-1", 2.0)]
    assert found[0].is_working
    assert second.find_orders_by_ref("T-never-sent").result(TIMEOUT) == []


def test_orders_are_validated_before_they_reach_the_gateway(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    stock = gw.lookup("SPY")
    with pytest.raises(ValueError, match="limit price"):
        rt.place_order(OrderSpec(stock, "BUY", 1, "LMT"), "T-bad-1").result(TIMEOUT)
    with pytest.raises(ValueError, match="order_ref"):
        rt.place_order(OrderSpec(stock, "BUY", 1, "MKT"), "").result(TIMEOUT)
    assert not [o for o in gw.orders() if o.order_ref.startswith("T-bad")]


def test_historical_bars_frame(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    frame = rt.historical_bars("AAPL", "1 day", "3 M").result(TIMEOUT)
    assert frame.columns == ["time", "open", "high", "low", "close", "volume"]
    assert frame.schema["time"] == pl.Datetime("us", "UTC")
    assert frame.height > 40
    assert (frame["high"] >= frame["low"]).all() and frame["time"].is_sorted()
    with pytest.raises(Exception):
        rt.historical_bars("NOPE").result(TIMEOUT)


def test_watched_contracts_are_quoted_and_survive_a_reconnect(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    expiry = gw.expiries("TSLA")[0]
    strike = sorted(gw.strikes("TSLA"), key=lambda k: abs(k - gw.spot("TSLA")))[0]
    option = gw.lookup("TSLA", expiry, strike, "P")
    rt.watch([option]).result(TIMEOUT)
    assert rt.wait_for(lambda s: (q := s.quote(option.con_id)) is not None and q.bid is not None, 5)
    first_session = rt.snapshot().connection.connected_since
    gw.faults.drop_all_clients()
    back = rt.wait_for(lambda s: s.connection.connected_since is not None
                       and s.connection.connected_since > first_session
                       and (q := s.quote(option.con_id)) is not None and q.time is not None
                       and q.time > s.connection.connected_since, 15)
    assert back is not None


def test_a_filled_order_found_after_a_restart_reports_its_fill(gateway, make_runtime):
    gw = gateway
    first = make_runtime(gw)
    wait_ready(first, gw)
    stock = gw.lookup("IWM")
    first.place_order(OrderSpec(contract=stock, action="BUY", quantity=3, order_type="MKT"),
                      "T-filled-1").result(TIMEOUT)
    assert first.wait_for(lambda s: any(o.order_ref == "T-filled-1" and o.status == "Filled"
                                        for o in s.orders), TIMEOUT) is not None
    first.stop()
    second = make_runtime(gw)            # the book now differs from the seeded one: connected is enough
    assert second.wait_for(lambda s: s.connection.state == ConnState.CONNECTED, TIMEOUT) is not None
    found = second.find_orders_by_ref("T-filled-1").result(TIMEOUT)
    assert [(o.status, o.filled, o.remaining) for o in found] == [("Filled", 3.0, 0.0)]
