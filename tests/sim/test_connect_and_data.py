"""Connect sequence, account, contracts, market data and history through the real ib_async client."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ib_async import Option, Stock

from tests.sim.conftest import ErrorLog, connect, run, until

ACCOUNT_TAGS = ("NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds",
                "ExcessLiquidity", "InitMarginReq", "MaintMarginReq", "GrossPositionValue",
                "UnrealizedPnL", "RealizedPnL")


def test_connect_completes_every_startup_request(gw):
    async def go():
        # raiseSyncErrors: a single missing End message would raise instead of logging
        ib = await connect(gw.port, timeout=2)
        try:
            assert ib.isConnected()
            assert ib.client.serverVersion() == 178
            assert ib.wrapper.accounts == [gw.account_id]
            assert gw.account_id.startswith("DU")
            return {(p.contract.conId, p.position, p.avgCost) for p in ib.positions()}
        finally:
            ib.disconnect()

    positions = run(go)
    seeded = {(p.contract.con_id, p.quantity, p.avg_cost) for p in gw.seeded_positions()}
    assert positions == seeded
    kinds = {p.contract.sec_type for p in gw.seeded_positions()}
    assert kinds == {"STK", "OPT"}
    assert {p.contract.symbol for p in gw.seeded_positions()} == {"SPY", "QQQ", "IWM", "AAPL", "TSLA"}


def test_account_values_and_portfolio_follow_ib_semantics(gw):
    gw.freeze()

    async def go():
        ib = await connect(gw.port)
        try:
            values = {v.tag: v for v in ib.accountValues() if v.currency == "USD"}
            return values, ib.portfolio()
        finally:
            ib.disconnect()

    values, portfolio = run(go)
    for tag in ACCOUNT_TAGS:
        assert tag in values, tag
        float(values[tag].value)
    assert float(values["NetLiquidation"].value) > float(values["InitMarginReq"].value) > 0
    expected = gw.account_values()
    assert abs(float(values["NetLiquidation"].value) - expected["NetLiquidation"]) < 0.01
    assert len(portfolio) == len(gw.seeded_positions())
    unrealized = 0.0
    for item in portfolio:
        mult = float(item.contract.multiplier or 1)
        assert abs(item.marketValue - item.marketPrice * item.position * mult) < 1e-6
        assert abs(item.unrealizedPNL - (item.marketValue - item.averageCost * item.position)) < 1e-6
        if item.contract.secType == "OPT":
            assert mult == 100 and item.averageCost > 5      # avgCost includes the multiplier
            assert item.marketPrice < 100                     # marketPrice is per share
        unrealized += item.unrealizedPNL
    assert abs(unrealized) > 1.0                              # seeded costs differ from marks
    assert abs(unrealized - float(values["UnrealizedPnL"].value)) < 0.05


def test_account_summary_pnl_and_pnl_single(gw):
    stock = gw.lookup("AAPL")

    async def go():
        ib = await connect(gw.port)
        try:
            summary = await ib.accountSummaryAsync()
            pnl = ib.reqPnL(gw.account_id)
            single = ib.reqPnLSingle(gw.account_id, "", stock.con_id)
            await until(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and single.position,
                        what="pnl")
            return summary, pnl, single
        finally:
            ib.disconnect()

    summary, pnl, single = run(go)
    tags = {v.tag for v in summary}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds"} <= tags
    assert pnl.account == gw.account_id and pnl.unrealizedPnL != 0
    assert single.position == 100 and single.value > 0


def test_qualify_stocks_and_options_and_unknown_contract_error(gw):
    expiry = gw.expiries("AAPL")[3]
    strike = min(gw.strikes("AAPL"), key=lambda k: abs(k - gw.spot("AAPL")))

    async def go():
        ib = await connect(gw.port)
        errors = ErrorLog(ib)
        try:
            stock = Stock("SPY", "SMART", "USD")
            option = Option("AAPL", expiry.strftime("%Y%m%d"), strike, "P", "SMART")
            unknown = Stock("NOPE", "SMART", "USD")
            result = await ib.qualifyContractsAsync(stock, option, unknown)
            details = await ib.reqContractDetailsAsync(option)
            return result, details, errors.codes()
        finally:
            ib.disconnect()

    (stock, option, unknown), details, codes = run(go)
    assert stock.conId == gw.lookup("SPY").con_id
    sim_option = gw.lookup("AAPL", expiry, strike, "P")
    assert option.conId == sim_option.con_id and option.multiplier == "100"
    assert option.localSymbol == sim_option.local_symbol
    assert unknown is None and 200 in codes
    assert details[0].minTick == 0.01 and details[0].underConId == gw.lookup("AAPL").con_id


def test_option_chain_params(gw):
    async def go():
        ib = await connect(gw.port)
        try:
            return await ib.reqSecDefOptParamsAsync("TSLA", "", "STK", gw.lookup("TSLA").con_id)
        finally:
            ib.disconnect()

    (chain,) = run(go)
    expiries = sorted(datetime.strptime(e, "%Y%m%d").date() for e in chain.expirations)
    assert expiries == gw.expiries("TSLA")
    assert all(d.weekday() in (3, 4) for d in expiries)          # Fridays (Thursday on holidays)
    assert (expiries[-1] - gw.today).days >= 80
    steps = {round(b - a, 4) for a, b in zip(chain.strikes, chain.strikes[1:])}
    assert steps == {5.0}
    assert min(chain.strikes) < gw.spot("TSLA") < max(chain.strikes)


def test_expiries_include_monthlies_and_daily_spy():
    from v6core.sim.chains import SPEC_BY_SYMBOL, expiries_for, third_friday

    today = date(2026, 11, 23)                                    # a Monday
    spy = expiries_for(SPEC_BY_SYMBOL["SPY"], today)
    assert spy[0] == today                                        # 0DTE listed on expiry day
    assert date(2026, 12, 24) in spy and date(2026, 12, 25) not in spy   # Christmas Friday
    aapl = expiries_for(SPEC_BY_SYMBOL["AAPL"], today)
    assert third_friday(2026, 12) in aapl and third_friday(2027, 1) in aapl
    assert all(d.weekday() in (3, 4) for d in aapl)


def test_streaming_market_data_moves_and_cancels(gw):
    async def go():
        ib = await connect(gw.port)
        try:
            stock = Stock("QQQ", "SMART", "USD")
            await ib.qualifyContractsAsync(stock)
            ib.reqMarketDataType(1)
            ticker = ib.reqMktData(stock, "106")
            await until(lambda: ticker.bid > 0 and ticker.volume > 0 and ticker.close > 0,
                        what="first quote")
            first = (ticker.bid, ticker.ask, ticker.last)
            await until(lambda: (ticker.bid, ticker.ask, ticker.last) != first, what="movement")
            quote = (ticker.bid, ticker.ask, ticker.last, ticker.close, ticker.volume,
                     ticker.marketDataType, ticker.impliedVolatility, ticker.minTick)
            ib.cancelMktData(stock)
            return quote
        finally:
            ib.disconnect()

    bid, ask, last, close, volume, data_type, iv, min_tick = run(go)
    assert 0 < bid < ask and ask - bid < 0.05
    assert abs(last - gw.spot("QQQ")) < 25 and close > 0 and volume > 0
    assert data_type == 1 and 0.05 < iv < 1 and min_tick == 0.01


def test_snapshot_option_has_quotes_iv_and_model_greeks(gw):
    held = next(p.contract for p in gw.seeded_positions() if p.contract.symbol == "TSLA")

    async def go():
        ib = await connect(gw.port)
        try:
            contract = Option(conId=held.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(contract)
            (ticker,) = await ib.reqTickersAsync(contract)
            return ticker
        finally:
            ib.disconnect()

    ticker = run(go)
    assert 0 <= ticker.bid < ticker.ask and ticker.close > 0
    g = ticker.modelGreeks
    assert g is not None and -1 <= g.delta <= 1 and g.gamma > 0 and g.vega > 0
    assert g.impliedVol == ticker.impliedVolatility > 0
    assert abs(g.undPrice - gw.spot("TSLA")) < 20


def test_option_tick_grid_penny_and_nickel():
    from v6core.sim.chains import option_tick
    assert option_tick("SPY", 12.0) == 0.01
    assert option_tick("TSLA", 2.5) == 0.01 and option_tick("TSLA", 12.0) == 0.05


def test_current_time_and_history_end_at_live_price(gw):
    gw.freeze()
    stock = Stock("IWM", "SMART", "USD")

    async def go():
        ib = await connect(gw.port)
        try:
            await ib.qualifyContractsAsync(stock)
            now = await ib.reqCurrentTimeAsync()
            daily = await ib.reqHistoricalDataAsync(stock, "", "1 Y", "1 day", "TRADES", True)
            hourly = await ib.reqHistoricalDataAsync(stock, "", "30 D", "1 hour", "TRADES", True)
            weekly = await ib.reqHistoricalDataAsync(stock, "", "2 Y", "1 week", "TRADES", True)
            return now, daily, hourly, weekly
        finally:
            ib.disconnect()

    now, daily, hourly, weekly = run(go)
    assert abs((now - datetime.now(now.tzinfo)).total_seconds()) < 120
    spot = round(gw.spot("IWM"), 2)
    assert len(daily) >= 245 and (daily[-1].date - daily[0].date).days >= 360
    assert daily[-1].close == spot and hourly[-1].close == spot and weekly[-1].close == spot
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in daily)
    assert len({b.date.date() for b in hourly}) >= 18 and hourly[0].date.tzinfo is not None
    assert hourly[-1].date - hourly[0].date >= timedelta(days=25)
    assert 95 <= len(weekly) <= 106


def test_same_seed_same_market_other_seed_differs():
    from v6core.sim import SimGateway
    a, b, c = SimGateway(seed=11), SimGateway(seed=11), SimGateway(seed=12)
    assert a.spot("SPY") == b.spot("SPY") != c.spot("SPY")
    assert [(p.contract.con_id, p.avg_cost) for p in a.seeded_positions()] == \
        [(p.contract.con_id, p.avg_cost) for p in b.seeded_positions()]
    assert 560 < a.spot("SPY") < 620 and 200 < a.spot("AAPL") < 260


def test_market_rules_give_the_option_tick_grid(gw):
    tsla = gw.lookup("TSLA", gw.expiries("TSLA")[1], gw.strikes("TSLA")[10], "C")
    spy = gw.lookup("SPY", gw.expiries("SPY")[1], gw.strikes("SPY")[10], "C")

    async def go():
        ib = await connect(gw.port)
        try:
            (tsla_details,) = await ib.reqContractDetailsAsync(Option(conId=tsla.con_id))
            (spy_details,) = await ib.reqContractDetailsAsync(Option(conId=spy.con_id))
            rules = {}
            for details in (tsla_details, spy_details):
                rule_id = int(details.marketRuleIds.split(",")[0])
                rules[details.contract.symbol] = await ib.reqMarketRuleAsync(rule_id)
            return rules
        finally:
            ib.disconnect()

    rules = run(go)
    assert [(r.lowEdge, r.increment) for r in rules["TSLA"]] == [(0.0, 0.01), (3.0, 0.05)]
    assert [(r.lowEdge, r.increment) for r in rules["SPY"]] == [(0.0, 0.01)]


def test_option_and_implied_vol_history(gw):
    gw.freeze()
    held = next(p.contract for p in gw.seeded_positions() if p.contract.symbol == "IWM")

    async def go():
        ib = await connect(gw.port)
        try:
            option = Option(conId=held.con_id, exchange="SMART")
            stock = Stock("IWM", "SMART", "USD")
            await ib.qualifyContractsAsync(option, stock)
            option_bars = await ib.reqHistoricalDataAsync(option, "", "10 D", "1 hour", "MIDPOINT", True)
            iv_bars = await ib.reqHistoricalDataAsync(stock, "", "1 Y", "1 day",
                                                      "OPTION_IMPLIED_VOLATILITY", True)
            return option_bars, iv_bars
        finally:
            ib.disconnect()

    option_bars, iv_bars = run(go)
    mark = gw.option_inputs(held.con_id)["price"]
    assert len(option_bars) > 20 and option_bars[-1].close == round(mark, 2)
    assert all(b.close > 0 for b in option_bars)
    assert len(iv_bars) >= 245 and all(0.03 < b.close < 2 for b in iv_bars)
    assert len({round(b.close, 3) for b in iv_bars}) > 50


def test_option_con_ids_unique_and_stable_across_days_and_seeds():
    from v6core.sim.chains import Universe
    spots = {"SPY": 590.0, "QQQ": 510.0, "IWM": 225.0, "AAPL": 230.0, "TSLA": 340.0}
    monday = Universe(spots, date(2026, 11, 23))
    friday = Universe({**spots, "SPY": 600.0}, date(2026, 11, 27))
    assert len(monday.by_id) == len({i.con_id for i in monday.by_id.values()})
    assert all(0 < con_id < 2**31 for con_id in monday.by_id)
    shared = [k for k in monday.options if k in friday.options]
    assert len(shared) > 1000
    assert all(monday.options[k].con_id == friday.options[k].con_id for k in shared)


def test_delayed_market_data_type_still_gets_live_data_when_live_is_available(gw):
    """TWS: under reqMarketDataType(3) 'if live data is available, it will always be returned
    instead of delayed data' - the sim has live data, so ticks 1/2 (not 66/67), type 1, no 10167."""
    held = next(p.contract for p in gw.seeded_positions() if p.contract.symbol == "QQQ")

    async def go():
        ib = await connect(gw.port)
        errors = ErrorLog(ib)
        try:
            ib.reqMarketDataType(3)
            contract = Option(conId=held.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(contract)
            types: set[int] = set()
            ticker = ib.reqMktData(contract)
            ticker.updateEvent += lambda t: types.update(tick.tickType for tick in t.ticks)
            await until(lambda: ticker.bid == ticker.bid and ticker.modelGreeks and ticker.close > 0
                        and {1, 2} <= types, what="live quotes")
            return ticker, types, errors.codes()
        finally:
            ib.disconnect()

    ticker, types, codes = run(go)
    assert ticker.marketDataType == 1 and 10167 not in codes
    assert {1, 2} <= types and not {66, 67, 68} & types
    assert ticker.modelGreeks.delta < 0
