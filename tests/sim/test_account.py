"""Account bookkeeping with IB semantics, without a socket."""

from __future__ import annotations

import pytest

from v6core.sim.account import Account, commission_for
from v6core.sim.market import Market


@pytest.fixture
def account() -> Account:
    market = Market(seed=5)
    market.clock.freeze()
    return Account("DU0000005", market, seed=5)


def test_seeded_book_has_the_promised_strategies(account):
    book = account.positions()
    by_symbol: dict[str, list] = {}
    for p in book:
        by_symbol.setdefault(p.contract.symbol, []).append(p)
    spy = by_symbol["SPY"]                                   # iron condor
    assert sorted(p.quantity for p in spy) == [-2, -2, 2, 2]
    assert {p.contract.right for p in spy} == {"C", "P"}
    qqq = by_symbol["QQQ"]                                   # put credit vertical
    short_put = next(p for p in qqq if p.quantity < 0)
    long_put = next(p for p in qqq if p.quantity > 0)
    assert short_put.contract.strike > long_put.contract.strike
    assert short_put.avg_cost > long_put.avg_cost           # a credit was collected
    iwm = by_symbol["IWM"]                                   # calendar: same strike, two expiries
    assert len({p.contract.strike for p in iwm}) == 1 and len({p.contract.expiry for p in iwm}) == 2
    aapl_opts = sorted((p for p in by_symbol["AAPL"] if p.contract.sec_type == "OPT"
                        and p.contract.expiry == max(q.contract.expiry for q in by_symbol["AAPL"]
                                                     if q.contract.sec_type == "OPT")),
                       key=lambda p: p.contract.strike)
    assert [p.quantity for p in aapl_opts] == [1, -2, 1]   # butterfly
    assert any(p.contract.sec_type == "STK" and p.quantity == 100 for p in by_symbol["AAPL"])
    tsla = by_symbol["TSLA"]                                 # short strangle
    assert sorted(p.contract.right for p in tsla) == ["C", "P"] and all(p.quantity == -1 for p in tsla)
    for p in book:
        if p.contract.sec_type == "OPT":
            assert p.avg_cost > 1.0                          # includes the multiplier


def test_fills_update_cash_average_cost_and_realized(account):
    stock = account.market.universe.stock("SPY")
    cash = account.cash
    assert account.apply_fill(stock, 10, 100.0, 1.0) == 0.0
    assert account.holdings[stock.con_id].avg_cost == pytest.approx(100.1)
    account.apply_fill(stock, 10, 110.0, 1.0)
    assert account.holdings[stock.con_id].avg_cost == pytest.approx(105.1)
    realized = account.apply_fill(stock, -5, 120.0, 1.0)
    assert realized == pytest.approx(5 * (120.0 - 105.1) - 1.0)
    assert account.holdings[stock.con_id].quantity == 15
    flip = account.apply_fill(stock, -20, 90.0, 1.0)        # closes 15, opens 5 short
    assert flip == pytest.approx(15 * (90.0 - 105.1) - 1.0)
    h = account.holdings[stock.con_id]
    assert h.quantity == -5 and h.avg_cost == 90.0
    assert account.cash == pytest.approx(cash - 1000 - 1100 + 600 + 1800 - 4.0)


def test_daily_pnl_of_a_new_trade_is_mark_minus_fill(account):
    option = next(h.contract for h in account.holdings.values() if h.contract.sec_type == "OPT")
    before = account.summary()["DailyPnL"]
    mark = account.market.mark(option)
    account.apply_fill(option, 1, round(mark + 0.5, 2), commission_for(option, 1))
    after = account.summary()["DailyPnL"]
    assert after - before == pytest.approx((mark - round(mark + 0.5, 2)) * 100 - 1.0, abs=1e-6)


def test_defined_risk_needs_less_margin_than_naked(account):
    u = account.market.universe
    spot = account.market.spots["SPY"]
    expiry = u.nearest_expiry("SPY", 30)
    short = u.option("SPY", expiry, u.nearest_strike("SPY", spot * 0.95), "P")
    wing = u.option("SPY", expiry, u.nearest_strike("SPY", spot * 0.93), "P")
    base, _ = account.margin()
    naked, _ = account.margin({short.con_id: -1})
    spread, _ = account.margin({short.con_id: -1, wing.con_id: 1})
    assert naked > spread > base
