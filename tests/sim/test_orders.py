"""Orders through the real client: lifecycle, whatIf, cancel, rejections, combos, several clients."""

from __future__ import annotations

import asyncio

from ib_async import ComboLeg, Contract, LimitOrder, MarketOrder, Option, Stock

from tests.sim.conftest import ErrorLog, connect, run, until


def test_limit_order_whole_life_filled_by_market_movement(gw):
    gw.freeze()
    start_cash = gw.account_values()["TotalCashValue"]
    held_before = next(p for p in gw.seeded_positions() if p.contract.sec_type == "STK")

    async def go():
        ib = await connect(gw.port, client_id=5)
        try:
            stock = Stock("AAPL", "SMART", "USD")
            await ib.qualifyContractsAsync(stock)
            statuses: list[str] = []
            limit = round(gw.spot("AAPL") - 2.0, 2)
            order = LimitOrder("BUY", 10, limit, orderRef="ticket-42", tif="GTC")
            trade = ib.placeOrder(stock, order)
            trade.statusEvent += lambda t: statuses.append(t.orderStatus.status)
            await until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
            assert trade.fills == []
            gw.set_spot("AAPL", limit - 1.0)       # the ask drops through the limit
            await until(lambda: trade.isDone() and trade.fills
                        and trade.fills[-1].commissionReport.commission > 0, what="fill")
            executions = await ib.reqExecutionsAsync()
            await ib.reqCompletedOrdersAsync(apiOnly=False)
            position = next(p for p in ib.positions() if p.contract.conId == stock.conId)
            return trade, statuses, executions, position, limit
        finally:
            ib.disconnect()

    trade, statuses, executions, position, limit = run(go)
    assert statuses[0] == "Submitted" and statuses[-1] == "Filled"
    assert trade.orderStatus.filled == 10 and trade.orderStatus.avgFillPrice <= limit
    fill = trade.fills[0]
    assert fill.execution.side == "BOT" and fill.execution.shares == 10
    assert fill.execution.orderRef == "ticket-42" and fill.execution.clientId == 5
    assert fill.execution.price <= limit
    assert fill.commissionReport.commission == 1.0
    assert any(f.execution.execId == fill.execution.execId for f in executions)
    assert position.position == held_before.quantity + 10
    sim_order = next(o for o in gw.orders() if o.order_ref == "ticket-42")
    assert (sim_order.status, sim_order.client_id, sim_order.filled) == ("Filled", 5, 10)
    cash = gw.account_values()["TotalCashValue"]
    assert abs(start_cash - cash - (10 * fill.execution.price + 1.0)) < 1e-6


def test_what_if_reports_margin_and_commission_without_an_order(gw):
    held = next(p.contract for p in gw.seeded_positions()
                if p.contract.symbol == "TSLA" and p.contract.right == "P")

    async def go():
        ib = await connect(gw.port)
        try:
            contract = Option(conId=held.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(contract)
            state = await ib.whatIfOrderAsync(contract, MarketOrder("SELL", 3))
            return state, ib.openTrades()
        finally:
            ib.disconnect()

    state, open_trades = run(go)
    numeric = state.numeric()
    assert numeric.initMarginChange > 0                 # selling more naked puts adds margin
    assert abs(numeric.initMarginAfter - numeric.initMarginBefore - numeric.initMarginChange) < 0.02
    assert state.commission == 1.95 and state.commissionCurrency == "USD"
    assert open_trades == [] and gw.orders() == []


def test_cancel_and_global_cancel(gw):
    async def go():
        ib = await connect(gw.port)
        try:
            stock = Stock("SPY", "SMART", "USD")
            await ib.qualifyContractsAsync(stock)
            low = round(gw.spot("SPY") * 0.5, 2)
            trades = [ib.placeOrder(stock, LimitOrder("BUY", 1, low + i * 0.01)) for i in range(3)]
            await until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
            open_ids = {t.order.orderId for t in await ib.reqOpenOrdersAsync()}
            ib.cancelOrder(trades[0].order)
            await until(lambda: trades[0].orderStatus.status == "Cancelled", what="cancel")
            ib.reqGlobalCancel()
            await until(lambda: all(t.orderStatus.status == "Cancelled" for t in trades),
                        what="global cancel")
            return open_ids, {t.order.orderId for t in trades}, await ib.reqOpenOrdersAsync()
        finally:
            ib.disconnect()

    open_ids, ids, still_open = run(go)
    assert open_ids == ids and still_open == []
    assert {o.status for o in gw.orders()} == {"Cancelled"}


def test_rejections_use_ib_codes(gw):
    expiry = gw.expiries("TSLA")[2]
    deep_itm = min(gw.strikes("TSLA"), key=lambda k: abs(k - gw.spot("TSLA") * 0.8))

    async def go():
        ib = await connect(gw.port)
        errors = ErrorLog(ib)
        try:
            stock = Stock("AAPL", "SMART", "USD")
            tsla_call = Option("TSLA", expiry.strftime("%Y%m%d"), deep_itm, "C", "SMART")
            await ib.qualifyContractsAsync(stock, tsla_call)
            ghost = Stock("AAPL", "SMART", "USD")
            ghost.conId = 999                                           # not listed
            cases = {
                "unknown": ib.placeOrder(ghost, LimitOrder("BUY", 1, 10.0)),
                "off_grid": ib.placeOrder(stock, LimitOrder("BUY", 1, 100.005)),
                "nickel_grid": ib.placeOrder(tsla_call, LimitOrder("BUY", 1, 60.02)),
                "zero_qty": ib.placeOrder(stock, LimitOrder("BUY", 0, 100.0)),
                "no_price": ib.placeOrder(stock, LimitOrder("BUY", 1, 0.0)),
            }
            await until(lambda: all(t.isDone() for t in cases.values()), what="rejections")
            return {k: errors.codes(t.order.orderId) for k, t in cases.items()}, errors.items
        finally:
            ib.disconnect()

    codes, items = run(go)
    assert codes == {"unknown": [200], "off_grid": [110], "nickel_grid": [110],
                     "zero_qty": [201], "no_price": [201]}
    messages = {code: text for _, code, text in items}
    assert messages[110] == "The price does not conform to the minimum price variation for this contract."
    assert messages[201].startswith("Order rejected - reason:")
    assert all(o.status == "Cancelled" and o.last_message for o in gw.orders())


def test_market_option_order_and_combo_close_of_a_strategy(gw):
    condor = [p for p in gw.seeded_positions() if p.contract.symbol == "SPY"]
    assert len(condor) == 4

    async def go():
        ib = await connect(gw.port, client_id=9)
        try:
            leg = Option(conId=condor[0].contract.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(leg)
            single = ib.placeOrder(leg, MarketOrder("BUY", 1, orderRef="single"))
            await until(lambda: single.orderStatus.status == "Filled", what="MKT fill")
            legs = [ComboLeg(conId=p.contract.con_id, ratio=1, exchange="SMART",
                             action="SELL" if p.quantity > 0 else "BUY") for p in condor]
            bag = Contract(symbol="SPY", secType="BAG", exchange="SMART", currency="USD",
                           comboLegs=legs)
            ticker = ib.reqMktData(bag)
            await until(lambda: ticker.ask == ticker.ask and ticker.bid == ticker.bid, what="combo quote")
            sizes = {p.contract.con_id: abs(p.quantity) for p in condor}
            assert len(set(sizes.values())) == 1
            combo = ib.placeOrder(bag, LimitOrder("BUY", 2, round(ticker.ask + 0.5, 2),
                                                  orderRef="close-condor"))
            await until(lambda: combo.orderStatus.status == "Filled" and len(combo.fills) == 4
                        and all(f.commissionReport.execId for f in combo.fills), what="combo fill")
            await ib.reqOpenOrdersAsync()
            return single, combo, [p for p in ib.positions() if p.contract.symbol == "SPY"]
        finally:
            ib.disconnect()

    single, combo, spy_positions = run(go)
    assert single.fills[0].execution.shares == 1
    # qty 2 closes the original condor; the extra single leg bought first remains
    assert condor[0].quantity == 2
    assert [(p.contract.conId, p.position) for p in spy_positions] == \
        [(condor[0].contract.con_id, condor[0].quantity + 1 - 2)]
    net = sum((1 if f.execution.side == "BOT" else -1) * f.execution.price for f in combo.fills)
    assert abs(combo.orderStatus.avgFillPrice - net) < 0.011
    assert all(f.execution.orderRef == "close-condor" for f in combo.fills)
    assert any(f.commissionReport.realizedPNL != 0 for f in combo.fills)
    sim = next(o for o in gw.orders() if o.order_ref == "close-condor")
    assert len(sim.combo_legs) == 4 and sim.status == "Filled"


def test_two_clients_share_the_account_and_keep_their_orders(gw):
    async def go():
        a = await connect(gw.port, client_id=1)
        b = await connect(gw.port, client_id=2)
        try:
            stock = Stock("IWM", "SMART", "USD")
            await a.qualifyContractsAsync(stock)
            low = round(gw.spot("IWM") * 0.5, 2)
            ta = a.placeOrder(stock, LimitOrder("BUY", 1, low, orderRef="from-a"))
            tb = b.placeOrder(stock, LimitOrder("BUY", 2, low, orderRef="from-b"))
            await until(lambda: ta.orderStatus.status == tb.orderStatus.status == "Submitted")
            open_a = await a.reqOpenOrdersAsync()
            open_b = await b.reqOpenOrdersAsync()
            fill = b.placeOrder(stock, MarketOrder("BUY", 5))
            await until(lambda: fill.orderStatus.status == "Filled")
            await until(lambda: next((p.position for p in a.positions()
                                      if p.contract.conId == stock.conId), 0) == 5,
                        what="shared position")
            return ta, tb, open_a, open_b
        finally:
            a.disconnect()
            b.disconnect()

    ta, tb, open_a, open_b = run(go)
    assert ta.orderStatus.clientId == 1 and tb.orderStatus.clientId == 2
    assert [t.order.orderRef for t in open_a] == ["from-a"]
    assert [t.order.orderRef for t in open_b] == ["from-b"]
    by_ref = {o.order_ref: o for o in gw.orders()}
    assert by_ref["from-a"].client_id == 1 and by_ref["from-b"].client_id == 2
    assert by_ref["from-a"].perm_id != by_ref["from-b"].perm_id


def test_realized_pnl_on_closing_fill(gw):
    gw.freeze()
    stock_position = next(p for p in gw.seeded_positions() if p.contract.sec_type == "STK")

    async def go():
        ib = await connect(gw.port)
        try:
            stock = Stock(conId=stock_position.contract.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(stock)
            trade = ib.placeOrder(stock, MarketOrder("SELL", 40))
            await until(lambda: trade.isDone() and trade.fills
                        and trade.fills[0].commissionReport.execId)
            await asyncio.sleep(0)
            return trade.fills[0]
        finally:
            ib.disconnect()

    fill = run(go)
    expected = 40 * (fill.execution.price - stock_position.avg_cost) - fill.commissionReport.commission
    assert abs(fill.commissionReport.realizedPNL - expected) < 1e-6
    left = next(p for p in gw.positions() if p.contract.sec_type == "STK")
    assert left.quantity == 60 and left.avg_cost == stock_position.avg_cost
    assert abs(gw.account_values()["RealizedPnL"] - expected) < 1e-6


def test_option_limit_sell_fills_when_bid_reaches_it_and_modify(gw):
    gw.freeze()
    put = next(p.contract for p in gw.seeded_positions()
               if p.contract.symbol == "QQQ" and p.quantity > 0)    # long put of the vertical

    async def go():
        ib = await connect(gw.port)
        try:
            contract = Option(conId=put.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(contract)
            bid = gw.quote(put.con_id)["bid"]
            order = LimitOrder("SELL", 1, round(bid + 1.0, 2), orderRef="sell-put")
            trade = ib.placeOrder(contract, order)
            await until(lambda: trade.orderStatus.status == "Submitted")
            order.lmtPrice = round(bid + 2.0, 2)                  # modify: same order id
            ib.placeOrder(contract, order)
            await until(lambda: any(o.limit_price == order.lmtPrice for o in gw.orders()))
            assert trade.orderStatus.status == "Submitted"
            gw.set_spot("QQQ", gw.spot("QQQ") * 0.97)            # puts gain, bid crosses the limit
            await until(lambda: trade.orderStatus.status == "Filled" and trade.fills, what="fill")
            return trade
        finally:
            ib.disconnect()

    trade = run(go)
    fill = trade.fills[0].execution
    assert fill.side == "SLD" and fill.price >= trade.order.lmtPrice
    [sim_order] = [o for o in gw.orders() if o.order_ref == "sell-put"]
    assert sim_order.limit_price == trade.order.lmtPrice and sim_order.status == "Filled"


def test_reconnect_sees_working_and_completed_orders(gw):
    async def go():
        ib = await connect(gw.port, client_id=7)
        stock = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(stock)
        working = ib.placeOrder(stock, LimitOrder("BUY", 1, 100.0, orderRef="keep-me"))
        done = ib.placeOrder(stock, MarketOrder("BUY", 1, orderRef="done-one"))
        await until(lambda: working.orderStatus.status == "Submitted" and done.isDone())
        used = max(working.order.orderId, done.order.orderId)
        ib.disconnect()
        await asyncio.sleep(0.1)
        again = await connect(gw.port, client_id=7)
        try:
            completed = await again.reqCompletedOrdersAsync(apiOnly=False)
            return used, again.client.getReqId(), again.openTrades(), completed
        finally:
            again.disconnect()

    used, next_id, open_trades, completed = run(go)
    assert next_id > used                               # ids continue above those already used
    assert [t.order.orderRef for t in open_trades] == ["keep-me"]
    assert open_trades[0].orderStatus.status == "Submitted"
    refs = {t.order.orderRef: t.orderStatus.status for t in completed}
    assert refs == {"done-one": "Filled"}
