"""Conformance: the official IB client (ibapi-stable 10.5x, strict decoder, its own threads) drives
every request the simulator serves. Each test is one request (or a request and its cancel); any
decode error, unread field or client-side error code fails it (see tests/sim/official.py).

Expected behaviour is TWS's, from IB's API documentation and real captured messages.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from ibapi.account_summary_tags import AccountSummaryTags
from ibapi.const import UNSET_DOUBLE, UNSET_INTEGER
from ibapi.contract import ComboLeg, Contract
from ibapi.execution import ExecutionFilter
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel

from tests.sim.official import OfficialClient

WAIT = 10.0


@pytest.fixture
def client(gw):
    c = OfficialClient().start(gw.port, client_id=11)
    try:
        yield c
        assert c.problems == [], c.problems
    finally:
        c.stop()


def stock(gw, symbol: str = "AAPL") -> Contract:
    c = Contract()
    c.conId = gw.lookup(symbol).con_id
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", "SMART", "USD"
    return c


def option_info(gw, symbol: str = "SPY", right: str = "C"):
    expiry = gw.expiries(symbol)[3]
    spot = gw.spot(symbol)
    strike = min(gw.strikes(symbol), key=lambda k: abs(k - spot))
    return gw.lookup(symbol, expiry, strike, right)


def option(gw, symbol: str = "SPY", right: str = "C") -> Contract:
    info = option_info(gw, symbol, right)
    c = Contract()
    c.conId, c.symbol, c.secType, c.exchange, c.currency = info.con_id, symbol, "OPT", "SMART", "USD"
    return c


def limit(action: str, quantity: float, price: float, **extra) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType, o.lmtPrice = action, Decimal(str(quantity)), "LMT", price
    for key, value in extra.items():
        setattr(o, key, value)
    return o


def market(action: str, quantity: float, **extra) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType = action, Decimal(str(quantity)), "MKT"
    for key, value in extra.items():
        setattr(o, key, value)
    return o


def next_id(c: OfficialClient) -> int:
    before = len(c.named("nextValidId"))
    c.reqIds(-1)
    c.wait_for(lambda: len(c.named("nextValidId")) > before, WAIT, "nextValidId")
    return c.named("nextValidId")[-1][0]


# ---- connection
def test_connect_start_api(gw, client):
    assert client.serverVersion() == 178
    assert client.first("managedAccounts") == (gw.account_id,)
    assert client.first("nextValidId")[0] >= 1
    client.wait_for(lambda: {2104, 2106, 2158} <= {c for _, c, _ in client.named("error")}, WAIT)


def test_req_ids_and_managed_accounts(gw, client):
    assert next_id(client) >= 1
    client.reqManagedAccts()
    client.wait_for(lambda: len(client.named("managedAccounts")) >= 2, WAIT)
    assert client.named("managedAccounts")[-1] == (gw.account_id,)


def test_req_current_time(client):
    client.reqCurrentTime()
    (stamp,) = client.wait_for(lambda: client.first("currentTime"), WAIT)
    assert abs(stamp - time.time()) < 3 * 86400


# ---- contracts
def test_contract_details_stock_and_option(gw, client):
    client.reqContractDetails(1, stock(gw))
    client.reqContractDetails(2, option(gw))
    client.wait_for(lambda: client.first("contractDetailsEnd", 2) and client.first("contractDetailsEnd", 1), WAIT)
    (_, stk), = client.named("contractDetails", 1)
    (_, opt), = client.named("contractDetails", 2)
    assert stk.contract.conId == gw.lookup("AAPL").con_id and stk.minTick == 0.01
    assert opt.contract.secType == "OPT" and opt.underConId == gw.lookup("SPY").con_id
    for details in (stk, opt):
        assert details.timeZoneId == "US/Eastern"
        assert details.tradingHours and details.liquidHours
        sessions = details.tradingHours.split(";")
        assert len(sessions) >= 5
        assert all(":CLOSED" in s or "-" in s for s in sessions), sessions


def test_contract_details_unknown_is_error_200(client):
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "NOPE", "STK", "SMART", "USD"
    client.reqContractDetails(3, c)
    client.wait_for(lambda: 200 in client.errors(3), WAIT)


def test_sec_def_opt_params(gw, client):
    client.reqSecDefOptParams(4, "SPY", "", "STK", gw.lookup("SPY").con_id)
    client.wait_for(lambda: client.first("securityDefinitionOptionParameterEnd", 4), WAIT)
    (_, exchange, under, trading_class, multiplier, expirations, strikes), = \
        client.named("securityDefinitionOptionParameter", 4)
    assert (exchange, under, multiplier) == ("SMART", gw.lookup("SPY").con_id, "100")
    assert len(expirations) == len(gw.expiries("SPY")) and len(strikes) == len(gw.strikes("SPY"))


def test_market_rule(client):
    client.reqMarketRule(26)
    (rule_id, increments) = client.wait_for(lambda: client.first("marketRule"), WAIT)
    assert rule_id == 26 and increments[0].increment == 0.01


# ---- market data
def test_stock_quotes_stream_and_stop_after_cancel(gw, client):
    client.reqMktData(5, stock(gw), "", False, False, [])
    client.wait_for(lambda: {1, 2, 4} <= {a[1] for a in client.named("tickPrice", 5)}, WAIT, "bid/ask/last")
    assert client.first("marketDataType", 5) == (5, 1)
    assert client.first("tickReqParams", 5) is not None
    client.wait_for(lambda: len(client.named("tickSize", 5)) > 3, WAIT, "volume ticks")
    client.cancelMktData(5)
    client.reqCurrentTime()                     # everything sent before the cancel is read by now
    client.wait_for(lambda: client.first("currentTime"), WAIT)
    count = len(client.names(5))
    time.sleep(0.6)                             # several market steps at tick_rate 5
    assert len(client.names(5)) == count, client.events[-5:]


def test_option_quotes_carry_bid_ask_last_and_model_computations(gw, client):
    client.reqMktData(6, option(gw), "", False, False, [])
    client.wait_for(lambda: {10, 11, 12, 13} <= {a[1] for a in client.named("tickOptionComputation", 6)},
                    WAIT, "option computations 10-13")
    for args in client.named("tickOptionComputation", 6):
        _, tick_type, _, iv, delta, price, _, gamma, vega, theta, und = args
        assert 0 < iv < 5 and 0 < delta < 1 and gamma >= 0 and und > 0, args


def test_snapshot_ends_after_a_short_delay(gw, client):
    start = time.monotonic()
    client.reqMktData(7, stock(gw), "", True, False, [])
    client.wait_for(lambda: client.first("tickSnapshotEnd", 7), WAIT)
    elapsed = time.monotonic() - start
    assert 0.05 <= elapsed < 5.0
    assert {1, 2, 4} <= {a[1] for a in client.named("tickPrice", 7)}
    names = client.names(7)
    assert names.index("tickSnapshotEnd") == len(names) - 1      # nothing after the end


@pytest.mark.parametrize("data_type", [1, 2, 3, 4])
def test_market_data_type_live_when_available(gw, client, data_type):
    """TWS: 'If live data is available, it will always be returned instead of delayed data.'"""
    client.reqMarketDataType(data_type)
    client.reqMktData(8, stock(gw), "", False, False, [])
    client.wait_for(lambda: {1, 2} <= {a[1] for a in client.named("tickPrice", 8)}, WAIT)
    types = {a[1] for a in client.named("tickPrice", 8)}
    assert not types & {66, 67, 68}
    assert 10167 not in client.errors(8)
    assert client.first("marketDataType", 8) in ((8, 1), (8, 2))


def test_option_calculators(gw, client):
    opt = option(gw)
    spot = gw.spot("SPY")
    client.calculateOptionPrice(9, opt, 0.2, spot, [])
    client.calculateImpliedVolatility(10, opt, 5.0, spot, [])
    client.wait_for(lambda: client.first("tickOptionComputation", 9) and client.first("tickOptionComputation", 10), WAIT)
    assert client.first("tickOptionComputation", 9)[3] == pytest.approx(0.2)
    assert 0 < client.first("tickOptionComputation", 10)[3] < 5
    client.cancelCalculateOptionPrice(9)
    client.cancelCalculateImpliedVolatility(10)


def test_historical_bars(gw, client):
    client.reqHistoricalData(12, stock(gw), "", "2 D", "1 hour", "TRADES", 1, 1, False, [])
    client.wait_for(lambda: client.first("historicalDataEnd", 12), WAIT)
    bars = [b for _, b in client.named("historicalData", 12)]
    assert len(bars) >= 7 and all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


# ---- account
def test_positions(gw, client):
    client.reqPositions()
    client.wait_for(lambda: client.first("positionEnd") is not None, WAIT)
    rows = client.named("position")
    assert len(rows) == len(gw.seeded_positions())
    assert all(account == gw.account_id for account, *_ in rows)
    client.cancelPositions()


def test_account_updates(gw, client):
    client.reqAccountUpdates(True, gw.account_id)
    client.wait_for(lambda: client.first("accountDownloadEnd"), WAIT)
    keys = {key for key, *_ in client.named("updateAccountValue")}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "AccountCode"} <= keys
    assert len(client.named("updatePortfolio")) == len(gw.seeded_positions())
    assert client.first("updateAccountTime")
    client.reqAccountUpdates(False, gw.account_id)


def test_account_updates_multi(gw, client):
    client.reqAccountUpdatesMulti(13, gw.account_id, "", True)
    client.wait_for(lambda: client.first("accountUpdateMultiEnd", 13), WAIT)
    assert {row[3] for row in client.named("accountUpdateMulti", 13)} >= {"NetLiquidation"}
    client.cancelAccountUpdatesMulti(13)


def test_account_summary_all_tags(gw, client):
    client.reqAccountSummary(14, "All", AccountSummaryTags.AllTags)
    client.wait_for(lambda: client.first("accountSummaryEnd", 14), WAIT)
    rows = {tag: (value, currency) for _, account, tag, value, currency in client.named("accountSummary", 14)}
    wanted = set(AccountSummaryTags.AllTags.split(","))
    assert wanted <= set(rows), sorted(wanted - set(rows))
    assert float(rows["NetLiquidation"][0]) > 0
    client.cancelAccountSummary(14)


def test_pnl_and_pnl_single(gw, client):
    held = gw.seeded_positions()[0].contract.con_id
    client.reqPnL(15, gw.account_id, "")
    client.reqPnLSingle(16, gw.account_id, "", held)
    client.wait_for(lambda: client.first("pnl", 15) and client.first("pnlSingle", 16), WAIT)
    client.cancelPnL(15)
    client.cancelPnLSingle(16)


# ---- orders
def _far_bid(gw) -> tuple[Contract, float]:
    return stock(gw), round(gw.quote(gw.lookup("AAPL").con_id)["bid"] * 0.8, 2)


def test_place_order_then_cancel(gw, client):
    contract, price = _far_bid(gw)
    oid = next_id(client)
    client.placeOrder(oid, contract, limit("BUY", 3, price, orderRef="conf-1"))
    client.wait_for(lambda: any(a[1] == "Submitted" for a in client.named("orderStatus", oid)), WAIT)
    _, _, order, state = client.first("openOrder", oid)
    assert order.orderRef == "conf-1" and order.lmtPrice == price and order.auxPrice == UNSET_DOUBLE
    assert float(state.initMarginBefore) == UNSET_DOUBLE and state.commissionAndFees == UNSET_DOUBLE
    client.cancelOrder(oid, OrderCancel())
    client.wait_for(lambda: any(a[1] == "Cancelled" for a in client.named("orderStatus", oid)), WAIT)
    status = [a for a in client.named("orderStatus", oid) if a[1] == "Cancelled"][0]
    assert status[2] == 0 and status[3] == 3           # filled 0, remaining = the unfilled 3
    assert 202 in client.errors(oid)


def test_what_if_order(gw, client):
    contract, price = _far_bid(gw)
    oid = next_id(client)
    client.placeOrder(oid, contract, limit("BUY", 10, price, whatIf=True))
    _, _, order, state = client.wait_for(lambda: client.first("openOrder", oid), WAIT)
    assert order.whatIf and state.status == "PreSubmitted"
    assert float(state.initMarginAfter) > 0 and state.commissionAndFees > 0
    time.sleep(0.2)
    assert client.named("orderStatus", oid) == []
    assert not [o for o in gw.orders() if o.order_id == oid]


def test_fill_execution_and_commission(gw, client):
    oid = next_id(client)
    client.placeOrder(oid, stock(gw, "SPY"), market("BUY", 5, orderRef="conf-fill"))
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", oid)), WAIT)
    client.wait_for(lambda: client.named("commissionAndFeesReport"), WAIT)
    (_, contract, execution), = [a for a in client.named("execDetails") if a[2].orderId == oid]
    assert execution.side == "BOT" and execution.shares == 5 and execution.orderRef == "conf-fill"
    (report,) = [r for (r,) in client.named("commissionAndFeesReport") if r.execId == execution.execId]
    assert report.commissionAndFees > 0
    assert report.realizedPNL == UNSET_DOUBLE and report.yield_ == UNSET_DOUBLE   # an opening fill
    filled = [a for a in client.named("orderStatus", oid) if a[1] == "Filled"][-1]
    assert filled[2] == 5 and filled[3] == 0


def test_combo_order_fills_per_leg(gw, client):
    spy = gw.lookup("SPY").con_id
    call, put = option_info(gw, "SPY", "C"), option_info(gw, "SPY", "P")
    bag = Contract()
    bag.symbol, bag.secType, bag.exchange, bag.currency = "SPY", "BAG", "SMART", "USD"
    bag.comboLegs = []
    for info in (call, put):
        leg = ComboLeg()
        leg.conId, leg.ratio, leg.action, leg.exchange = info.con_id, 1, "BUY", "SMART"
        bag.comboLegs.append(leg)
    assert spy
    oid = next_id(client)
    client.placeOrder(oid, bag, market("BUY", 1))
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", oid)), WAIT)
    legs = {a[1].conId for a in client.named("execDetails") if a[2].orderId == oid}
    assert legs == {call.con_id, put.con_id}


def test_open_orders_all_open_orders_and_auto_open(gw, client):
    contract, price = _far_bid(gw)
    oid = next_id(client)
    client.placeOrder(oid, contract, limit("BUY", 1, price))
    client.wait_for(lambda: client.named("orderStatus", oid), WAIT)
    client.reqOpenOrders()
    client.wait_for(lambda: client.first("openOrderEnd") is not None, WAIT)
    client.reqAllOpenOrders()
    client.wait_for(lambda: len(client.named("openOrderEnd")) >= 2, WAIT)
    assert sum(1 for a in client.named("openOrder") if a[0] == oid) >= 3
    client.reqAutoOpenOrders(False)           # client id 11: TWS answers nothing


def test_completed_orders(gw, client):
    oid = next_id(client)
    client.placeOrder(oid, stock(gw, "QQQ"), market("SELL", 2))
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", oid)), WAIT)
    client.reqCompletedOrders(False)
    client.wait_for(lambda: client.first("completedOrdersEnd") is not None, WAIT)
    done = [(c, o, s) for c, o, s in client.named("completedOrder") if o.permId]
    assert any(s.status == "Filled" and c.symbol == "QQQ" and o.filledQuantity == 2 for c, o, s in done)


def test_executions_filter(gw, client):
    oid = next_id(client)
    client.placeOrder(oid, stock(gw, "IWM"), market("BUY", 1))
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", oid)), WAIT)
    f = ExecutionFilter()
    f.symbol = "IWM"
    client.reqExecutions(17, f)
    client.wait_for(lambda: client.first("execDetailsEnd", 17), WAIT)
    rows = client.named("execDetails", 17)
    assert rows and all(c.symbol == "IWM" for _, c, _ in rows)


def test_global_cancel(gw, client):
    contract, price = _far_bid(gw)
    oid = next_id(client)
    client.placeOrder(oid, contract, limit("BUY", 2, price))
    client.wait_for(lambda: client.named("orderStatus", oid), WAIT)
    client.reqGlobalCancel(OrderCancel())
    client.wait_for(lambda: any(a[1] == "Cancelled" for a in client.named("orderStatus", oid)), WAIT)


def test_unset_integers_in_open_order(gw, client):
    contract, price = _far_bid(gw)
    oid = next_id(client)
    client.placeOrder(oid, contract, limit("BUY", 1, price))
    _, _, order, _ = client.wait_for(lambda: client.first("openOrder", oid), WAIT)
    assert order.minQty == UNSET_INTEGER and order.percentOffset == UNSET_DOUBLE
    assert order.trailStopPrice == UNSET_DOUBLE and order.trailingPercent == UNSET_DOUBLE


def test_open_and_completed_order_carry_only_what_was_set(gw, client):
    """Every Order field the simulator does not use decodes to the official client's own default
    (its 'unset'), so nothing reads as a zero that TWS would have sent as unset."""
    oid = next_id(client)
    placed = market("BUY", 1, orderRef="defaults")
    client.placeOrder(oid, stock(gw, "IWM"), placed)
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", oid)), WAIT)
    client.reqCompletedOrders(False)
    client.wait_for(lambda: client.first("completedOrdersEnd") is not None, WAIT)
    _, _, opened, _ = client.first("openOrder", oid)
    (_, completed, _), = [a for a in client.named("completedOrder") if a[1].orderRef == "defaults"]
    set_by_us = {"orderId", "clientId", "permId", "action", "totalQuantity", "orderType", "tif",
                 "account", "orderRef", "filledQuantity", "openClose"}
    # a bool field cannot carry ibapi's None default on the wire; a tier compares by identity
    not_on_the_wire = {"usePriceMgmtAlgo", "routeMarketableToBbo", "softDollarTier"}
    default = vars(Order())
    for decoded in (opened, completed):
        differences = {k: (v, default[k]) for k, v in vars(decoded).items()
                       if k not in set_by_us | not_on_the_wire and v != default[k]}
        assert differences == {}, differences


def test_cancelled_snapshot_sends_nothing_more(gw, client):
    client.reqMktData(18, stock(gw), "", True, False, [])
    client.cancelMktData(18)
    client.reqCurrentTime()
    client.wait_for(lambda: client.first("currentTime"), WAIT)
    time.sleep(0.5)                              # past the snapshot's end delay
    assert client.first("tickSnapshotEnd", 18) is None


def test_bracket_parent_children_oca_and_stop(gw, client):
    gw.freeze()
    contract = stock(gw)
    spot = gw.spot("AAPL")
    parent_id = next_id(client)
    tp_id, sl_id = parent_id + 1, parent_id + 2
    client.placeOrder(parent_id, contract, limit("BUY", 4, round(spot + 1.0, 2), orderRef="off-br",
                                                 transmit=False))
    client.placeOrder(tp_id, contract, limit("SELL", 4, round(spot + 5.0, 2), orderRef="off-br:tp",
                                             parentId=parent_id, ocaGroup="off-br:oca", ocaType=1,
                                             transmit=False))
    stop = Order()
    stop.action, stop.totalQuantity, stop.orderType = "SELL", Decimal(4), "STP"
    stop.auxPrice, stop.parentId, stop.orderRef = round(spot - 3.0, 2), parent_id, "off-br:sl"
    stop.ocaGroup, stop.ocaType = "off-br:oca", 1
    client.placeOrder(sl_id, contract, stop)
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", parent_id)), WAIT)
    client.wait_for(lambda: any(a[1] == "Submitted" for a in client.named("orderStatus", sl_id)), WAIT)
    opened = {a[0]: a[2] for a in client.named("openOrder") if a[0] in (tp_id, sl_id)}
    assert opened[sl_id].orderType == "STP" and opened[sl_id].auxPrice == round(spot - 3.0, 2)
    assert opened[sl_id].parentId == parent_id and opened[tp_id].parentId == parent_id
    assert opened[tp_id].ocaGroup == "off-br:oca" and opened[tp_id].ocaType == 1
    assert [a for a in client.named("orderStatus", tp_id)][-1][6] == parent_id    # parentId field
    gw.set_spot("AAPL", spot - 4.0)
    client.wait_for(lambda: any(a[1] == "Filled" for a in client.named("orderStatus", sl_id)), WAIT)
    client.wait_for(lambda: any(a[1] == "Cancelled" for a in client.named("orderStatus", tp_id)), WAIT)
    assert 202 in client.errors(tp_id)      # the OCA cancel, as IB reports it
