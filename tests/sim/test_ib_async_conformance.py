"""The conformance probes of test_official_client.py, through ib_async (the client v6 runs on)."""

from __future__ import annotations

import asyncio
import logging

from ib_async import Contract, LimitOrder, MarketOrder, Option, Stock

from tests.sim.conftest import ErrorLog, connect, run, until
from tests.sim.test_official_client import option_info
from v6core.sim.chains import is_trading_day

ALL_TAGS = {"AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash",
            "BuyingPower", "EquityWithLoanValue", "PreviousDayEquityWithLoanValue",
            "GrossPositionValue", "RegTEquity", "RegTMargin", "SMA", "InitMarginReq",
            "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "Cushion", "FullInitMarginReq",
            "FullMaintMarginReq", "FullAvailableFunds", "FullExcessLiquidity", "LookAheadNextChange",
            "LookAheadInitMarginReq", "LookAheadMaintMarginReq", "LookAheadAvailableFunds",
            "LookAheadExcessLiquidity", "HighestSeverity", "DayTradesRemaining", "Leverage"}


class _Unknown(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_option_ticker_gets_bid_ask_last_and_model_greeks(gw):
    info = option_info(gw)

    async def go():
        ib = await connect(gw.port)
        try:
            ticker = ib.reqMktData(Option(conId=info.con_id, exchange="SMART"))
            await until(lambda: ticker.bidGreeks and ticker.askGreeks and ticker.lastGreeks
                        and ticker.modelGreeks, what="all four option computations")
            return ticker
        finally:
            ib.disconnect()

    ticker = run(go)
    assert ticker.bidGreeks.impliedVol < ticker.askGreeks.impliedVol      # bid < ask, same option
    assert ticker.bidGreeks.optPrice == ticker.bid and ticker.askGreeks.optPrice == ticker.ask


def test_snapshot_waits_for_its_end_and_cancel_stops_the_stream(gw):
    logger = logging.getLogger("ib_async.wrapper")
    unknown = _Unknown()
    logger.addHandler(unknown)

    async def go():
        ib = await connect(gw.port)
        try:
            aapl = Stock(conId=gw.lookup("AAPL").con_id, exchange="SMART")
            loop = asyncio.get_running_loop()
            start = loop.time()
            [snap] = await ib.reqTickersAsync(aapl)
            waited = loop.time() - start
            ticker = ib.reqMktData(Stock(conId=gw.lookup("SPY").con_id, exchange="SMART"))
            await until(lambda: ticker.bid == ticker.bid and ticker.bid > 0, what="SPY quote")
            ib.cancelMktData(ticker.contract)
            await asyncio.sleep(0.8)             # four market steps at tick_rate 5
            return snap, waited
        finally:
            ib.disconnect()

    try:
        snap, waited = run(go)
    finally:
        logger.removeHandler(unknown)
    assert waited >= 0.2 and snap.bid > 0 and snap.ask > 0
    assert [m for m in unknown.messages if "Unknown reqId" in m] == []


def test_account_summary_answers_all_tags(gw):
    async def go():
        ib = await connect(gw.port)
        try:
            ib.client.reqAccountSummary(9001, "All", ",".join(sorted(ALL_TAGS)))
            await until(lambda: {v.tag for v in ib.wrapper.acctSummary.values()} >= ALL_TAGS,
                        what="every AllTags tag")
            return {v.tag: v for v in ib.wrapper.acctSummary.values()}
        finally:
            ib.disconnect()

    rows = run(go)
    assert float(rows["Leverage"].value) > 0 and rows["DayTradesRemaining"].value == "-1"
    assert float(rows["LookAheadInitMarginReq"].value) == float(rows["InitMarginReq"].value)


def test_contract_details_trading_sessions_follow_the_sim_calendar(gw):
    async def go():
        ib = await connect(gw.port)
        try:
            [stock] = await ib.reqContractDetailsAsync(Contract(conId=gw.lookup("SPY").con_id))
            [opt] = await ib.reqContractDetailsAsync(Contract(conId=option_info(gw).con_id))
            return stock, opt
        finally:
            ib.disconnect()

    stock, opt = run(go)
    for details, open_hour in ((stock, 4), (opt, 9)):
        sessions = details.tradingSessions()
        assert sessions and all(is_trading_day(s.start.date()) for s in sessions)
        assert all(s.start.hour == open_hour and s.start.tzinfo is not None for s in sessions)
        liquid = details.liquidSessions()
        assert all((s.start.hour, s.start.minute, s.end.hour) == (9, 30, 16) for s in liquid)
    closed = [d for d in stock.tradingHours.split(";") if d.endswith("CLOSED")]
    assert len(closed) + len(stock.tradingSessions()) == 7


def test_cancelled_order_reports_the_unfilled_remaining_and_opening_fill_has_unset_pnl(gw):
    async def go():
        ib = await connect(gw.port)
        errors = ErrorLog(ib)
        try:
            aapl = Stock(conId=gw.lookup("AAPL").con_id, exchange="SMART")
            price = round(gw.quote(aapl.conId)["bid"] * 0.8, 2)
            resting = ib.placeOrder(aapl, LimitOrder("BUY", 7, price))
            await until(lambda: resting.orderStatus.status == "Submitted", what="resting")
            ib.cancelOrder(resting.order)
            await until(lambda: resting.orderStatus.status == "Cancelled", what="cancelled")
            filled = ib.placeOrder(Stock(conId=gw.lookup("QQQ").con_id, exchange="SMART"),
                                   MarketOrder("BUY", 2))
            await until(lambda: filled.fills and filled.fills[0].commissionReport.execId,
                        what="commission report")
            return resting, filled, errors.codes()
        finally:
            ib.disconnect()

    resting, filled, codes = run(go)
    assert resting.orderStatus.remaining == 7 and resting.orderStatus.filled == 0
    report = filled.fills[0].commissionReport
    # the wire carries IB's unset (checked with the official client); ib_async's wrapper maps
    # that unset to 0.0, so an opening fill reads 0 here
    assert report.commission > 0 and report.realizedPNL == 0.0 and report.yield_ == 0.0
    assert 202 in codes
