"""Brackets, stops and OCA groups through the real client (ib_async's own `bracketOrder`): held
until transmitted, children working only after the parent fills, one child filling cancels the
other, a parent's cancel takes its children with it."""

from __future__ import annotations

from ib_async import IB, Stock, StopOrder

from tests.sim.conftest import ErrorLog, connect, run, until


async def _aapl(ib: IB) -> Stock:
    stock = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(stock)
    return stock


def _bracket(ib: IB, action: str, limit: float, tp: float, sl: float, ref: str):
    bracket = ib.bracketOrder(action, 10, limit, tp, sl)
    for order, suffix in zip(bracket, ("", ":tp", ":sl")):
        order.orderRef = ref + suffix
    IB.oneCancelsAll([bracket.takeProfit, bracket.stopLoss], ref + ":oca", 1)
    return bracket


def test_stop_order_triggers_at_market(gw):
    gw.freeze()
    spot = gw.spot("AAPL")

    async def go():
        ib = await connect(gw.port)
        try:
            stock = await _aapl(ib)
            stop = round(spot - 5.0, 2)
            trade = ib.placeOrder(stock, StopOrder("SELL", 3, stop, orderRef="stp-1"))
            await until(lambda: trade.orderStatus.status == "Submitted", what="submitted")
            assert trade.fills == []
            gw.set_spot("AAPL", stop - 1.0)              # the bid falls through the stop
            await until(lambda: trade.orderStatus.status == "Filled", what="stop fill")
            return trade
        finally:
            ib.disconnect()

    trade = run(go)
    assert trade.fills[0].execution.side == "SLD" and trade.fills[0].execution.shares == 3
    sim = next(o for o in gw.orders() if o.order_ref == "stp-1")
    assert (sim.order_type, sim.aux_price, sim.status) == ("STP", round(spot - 5.0, 2), "Filled")


def test_bracket_is_held_until_the_last_child_transmits_then_the_take_profit_cancels_the_stop(gw):
    gw.freeze()
    spot = gw.spot("AAPL")

    async def go():
        ib = await connect(gw.port)
        try:
            stock = await _aapl(ib)
            limit = round(spot - 2.0, 2)
            b = _bracket(ib, "BUY", limit, round(spot + 3.0, 2), round(spot - 6.0, 2), "T-br1")
            parent = ib.placeOrder(stock, b.parent)
            tp = ib.placeOrder(stock, b.takeProfit)
            await until(lambda: {o.order_ref for o in gw.orders()} >= {"T-br1", "T-br1:tp"}, what="held")
            held = {o.order_ref: o.status for o in gw.orders()}
            gw.set_spot("AAPL", limit - 1.0)             # marketable, but not transmitted yet
            await until(lambda: True)
            not_filled = [o.status for o in gw.orders() if o.order_ref == "T-br1"]
            sl = ib.placeOrder(stock, b.stopLoss)        # transmit=True: the group goes
            await until(lambda: parent.orderStatus.status == "Filled", what="parent fill")
            await until(lambda: tp.orderStatus.status == "Submitted"
                        and sl.orderStatus.status == "Submitted", what="children working")
            gw.set_spot("AAPL", spot + 4.0)              # the bid reaches the take-profit
            await until(lambda: tp.orderStatus.status == "Filled", what="take-profit fill")
            await until(lambda: sl.orderStatus.status == "Cancelled", what="stop cancelled (OCA)")
            return held, not_filled, parent, tp, sl
        finally:
            ib.disconnect()

    held, not_filled, parent, tp, sl = run(go)
    assert held == {"T-br1": "PreSubmitted", "T-br1:tp": "PreSubmitted"}
    assert not_filled == ["PreSubmitted"]
    assert tp.order.parentId == parent.order.orderId == sl.order.parentId
    orders = {o.order_ref: o for o in gw.orders()}
    assert orders["T-br1:tp"].parent_id == orders["T-br1"].order_id
    assert orders["T-br1:sl"].oca_group == "T-br1:oca" and orders["T-br1:sl"].aux_price == round(spot - 6.0, 2)
    assert [orders[r].status for r in ("T-br1", "T-br1:tp", "T-br1:sl")] == ["Filled", "Filled", "Cancelled"]


def test_stop_child_fills_and_cancels_the_take_profit(gw):
    gw.freeze()
    spot = gw.spot("AAPL")

    async def go():
        ib = await connect(gw.port)
        try:
            stock = await _aapl(ib)
            b = _bracket(ib, "BUY", round(spot + 1.0, 2), round(spot + 5.0, 2), round(spot - 3.0, 2), "T-br2")
            trades = [ib.placeOrder(stock, o) for o in b]
            await until(lambda: trades[0].orderStatus.status == "Filled", what="parent fill")
            gw.set_spot("AAPL", spot - 4.0)
            await until(lambda: trades[2].orderStatus.status == "Filled", what="stop fill")
            await until(lambda: trades[1].orderStatus.status == "Cancelled", what="take-profit cancelled")
            return ib.positions()
        finally:
            ib.disconnect()

    run(go)
    orders = {o.order_ref: o.status for o in gw.orders()}
    assert orders == {"T-br2": "Filled", "T-br2:tp": "Cancelled", "T-br2:sl": "Filled"}


def test_cancelling_the_parent_cancels_its_children_and_a_child_needs_a_working_parent(gw):
    gw.freeze()
    spot = gw.spot("AAPL")

    async def go():
        ib = await connect(gw.port)
        errors = ErrorLog(ib)
        try:
            stock = await _aapl(ib)
            b = _bracket(ib, "BUY", round(spot * 0.5, 2), round(spot + 5.0, 2), round(spot * 0.4, 2), "T-br3")
            trades = [ib.placeOrder(stock, o) for o in b]
            await until(lambda: trades[0].orderStatus.status == "Submitted", what="parent working")
            ib.cancelOrder(trades[0].order)
            await until(lambda: all(t.orderStatus.status == "Cancelled" for t in trades), what="all cancelled")
            orphan = StopOrder("SELL", 1, round(spot - 9.0, 2), parentId=trades[0].order.orderId,
                               orderRef="orphan")
            late = ib.placeOrder(stock, orphan)
            await until(lambda: late.isDone(), what="orphan refused")
            return errors.codes(late.order.orderId)
        finally:
            ib.disconnect()

    assert run(go) == [201]
    assert {o.order_ref: o.status for o in gw.orders() if o.order_ref.startswith("T-br3")} == {
        "T-br3": "Cancelled", "T-br3:tp": "Cancelled", "T-br3:sl": "Cancelled"}


def test_sell_bracket_mirrors(gw):
    gw.freeze()
    spot = gw.spot("AAPL")

    async def go():
        ib = await connect(gw.port)
        try:
            stock = await _aapl(ib)
            b = _bracket(ib, "SELL", round(spot - 1.0, 2), round(spot - 5.0, 2), round(spot + 3.0, 2), "T-br4")
            trades = [ib.placeOrder(stock, o) for o in b]
            await until(lambda: trades[0].orderStatus.status == "Filled", what="parent fill")
            gw.set_spot("AAPL", spot + 4.0)
            await until(lambda: trades[2].orderStatus.status == "Filled", what="buy stop fill")
            await until(lambda: trades[1].orderStatus.status == "Cancelled", what="take-profit cancelled")
            return trades
        finally:
            ib.disconnect()

    trades = run(go)
    assert [t.order.action for t in trades] == ["SELL", "BUY", "BUY"]
    assert trades[2].fills[0].execution.side == "BOT"
