"""Strategy grouping on real-looking positions: names, sizes, splits, determinism, aggregation."""

from __future__ import annotations

import random
from datetime import date

import pytest

from v6core.greeks import STOCK_GREEKS, position_greeks
from v6core.models import ContractInfo, Greeks, GreekSource, Leg
from v6core.strategies import group_and_tag, group_strategies

DEC = date(2026, 12, 18)
JAN = date(2027, 1, 15)
FEB = date(2027, 2, 19)
SPOTS = {"SPY": 600.0, "QQQ": 510.0, "IWM": 230.0, "AAPL": 230.0, "TSLA": 350.0, "MSFT": 480.0}
_ids = iter(range(700_000, 800_000))


def opt(symbol, expiry, strike, right, qty, delta=0.3, account="DU123456", flags=(), greeks=True, con_id=None):
    c = ContractInfo(con_id or next(_ids), symbol, "OPT", expiry=expiry, strike=strike, right=right,
                     multiplier=100.0, local_symbol=f"{symbol} {expiry:%y%m%d}{right}{strike:g}")
    g = Greeks(delta if right == "C" else -delta, 0.01, -0.05, 0.2, iv=0.22, und_price=SPOTS[symbol],
               source=GreekSource.IB) if greeks else None
    pos = position_greeks(g, qty, 100.0, SPOTS[symbol], 1.0, SPOTS["SPY"])
    mark = 2.5
    return Leg(account, c, qty, 2.0, mark, mark * qty * 100, 50.0 * qty, 0.0, 10.0 * qty, 27, g, pos, None,
               flags=tuple(flags))


def stock(symbol, qty, account="DU123456", con_id=None):
    c = ContractInfo(con_id or next(_ids), symbol, "STK")
    pos = position_greeks(STOCK_GREEKS, qty, 1.0, SPOTS[symbol], 1.25, SPOTS["SPY"])
    price = SPOTS[symbol]
    return Leg(account, c, qty, price - 5, price, price * qty, 5.0 * qty, 0.0, 1.0 * qty, None,
               STOCK_GREEKS, pos, None)


def kinds(strategies):
    return sorted(s.kind for s in strategies)


def only(strategies):
    assert len(strategies) == 1, [(s.kind, s.explanation) for s in strategies]
    return strategies[0]


def test_iron_condor_of_size_two():
    legs = [opt("SPY", DEC, 570, "P", 2), opt("SPY", DEC, 580, "P", -2),
            opt("SPY", DEC, 620, "C", -2), opt("SPY", DEC, 630, "C", 2)]
    s = only(group_strategies(legs))
    assert s.kind == "iron condor" and s.underlying == "SPY"
    assert sorted(s.con_ids) == sorted(leg.contract.con_id for leg in legs)
    assert dict(zip(s.con_ids, s.quantities)) == {leg.contract.con_id: leg.quantity for leg in legs}
    assert s.explanation.startswith("2x 570/580P put credit vertical + 620/630C call credit vertical")
    assert s.strategy_id.startswith("iron-condor:SPY:")


def test_iron_butterfly_and_reverse_condor():
    fly = [opt("QQQ", DEC, 490, "P", 1), opt("QQQ", DEC, 510, "P", -1),
           opt("QQQ", DEC, 510, "C", -1), opt("QQQ", DEC, 530, "C", 1)]
    assert only(group_strategies(fly)).kind == "iron butterfly"
    reverse = [opt("IWM", DEC, 210, "P", -1), opt("IWM", DEC, 220, "P", 1),
               opt("IWM", DEC, 240, "C", 1), opt("IWM", DEC, 250, "C", -1)]
    assert only(group_strategies(reverse)).kind == "reverse iron condor"


@pytest.mark.parametrize("right, long_k, short_k, kind", [
    ("P", 570, 580, "put credit vertical"),      # sold the dearer (higher) put
    ("P", 580, 570, "put debit vertical"),
    ("C", 620, 610, "call credit vertical"),     # sold the dearer (lower) call
    ("C", 610, 620, "call debit vertical"),
])
def test_verticals_credit_or_debit(right, long_k, short_k, kind):
    legs = [opt("SPY", DEC, long_k, right, 3), opt("SPY", DEC, short_k, right, -3)]
    s = only(group_strategies(legs))
    assert s.kind == kind
    assert ("credit" in s.explanation) == ("credit" in kind)
    assert s.explanation.startswith("3x ")


def test_calendars_and_diagonals():
    cal = [opt("AAPL", DEC, 230, "C", -1), opt("AAPL", FEB, 230, "C", 1)]
    assert only(group_strategies(cal)).kind == "long call calendar"
    short_cal = [opt("AAPL", DEC, 220, "P", 1), opt("AAPL", JAN, 220, "P", -1)]
    assert only(group_strategies(short_cal)).kind == "short put calendar"
    diag = [opt("MSFT", DEC, 500, "C", -2), opt("MSFT", FEB, 480, "C", 2)]
    s = only(group_strategies(diag))
    assert s.kind == "long call diagonal" and "500C near / 480C far" in s.explanation


def test_butterflies():
    legs = [opt("SPY", DEC, 590, "C", 1), opt("SPY", DEC, 600, "C", -2), opt("SPY", DEC, 610, "C", 1)]
    s = only(group_strategies(legs))
    assert s.kind == "long call butterfly" and sorted(s.quantities) == [-2.0, 1.0, 1.0]
    short = [opt("SPY", DEC, 580, "P", -2), opt("SPY", DEC, 600, "P", 4), opt("SPY", DEC, 620, "P", -2)]
    s = only(group_strategies(short))
    assert s.kind == "short put butterfly" and s.explanation.startswith("2x 1-2-1 580/600/620P")
    unequal = [opt("SPY", DEC, 590, "C", 1), opt("SPY", DEC, 600, "C", -2), opt("SPY", DEC, 615, "C", 1)]
    assert "long call butterfly" not in kinds(group_strategies(unequal))


def test_straddles_and_strangles():
    assert only(group_strategies([opt("TSLA", DEC, 350, "P", 1), opt("TSLA", DEC, 350, "C", 1)])).kind == "long straddle"
    assert only(group_strategies([opt("TSLA", DEC, 300, "P", -2), opt("TSLA", DEC, 400, "C", -2)])).kind == "short strangle"
    # Different expiries are not a straddle: two single legs.
    assert kinds(group_strategies([opt("TSLA", DEC, 350, "P", 1), opt("TSLA", JAN, 350, "C", 1)])) == ["long call", "long put"]


def test_covered_call_uses_100_shares_per_contract():
    shares = stock("AAPL", 250)
    calls = opt("AAPL", DEC, 240, "C", -2)
    strategies = group_strategies([shares, calls])
    assert kinds(strategies) == ["covered call", "long stock"]
    cc = next(s for s in strategies if s.kind == "covered call")
    assert dict(zip(cc.con_ids, cc.quantities)) == {shares.contract.con_id: 200.0, calls.contract.con_id: -2.0}
    rest = next(s for s in strategies if s.kind == "long stock")
    assert rest.quantities == (50.0,)
    # Not enough shares to cover even one call: a naked short call beside the stock.
    assert kinds(group_strategies([stock("AAPL", 60), opt("AAPL", DEC, 240, "C", -1)])) == ["long stock", "short call"]


def test_collar_and_protective_put():
    legs = [stock("MSFT", 100), opt("MSFT", DEC, 450, "P", 1), opt("MSFT", DEC, 520, "C", -1)]
    assert only(group_strategies(legs)).kind == "collar"
    assert only(group_strategies([stock("MSFT", 100), opt("MSFT", JAN, 450, "P", 1)])).kind == "protective put"


def test_single_legs_stock_and_custom():
    legs = [opt("SPY", DEC, 550, "P", -1), opt("QQQ", JAN, 540, "C", 3), stock("IWM", -40),
            Leg("DU123456", ContractInfo(next(_ids), "ES", "FUT", multiplier=50.0), 1, 6000.0, 6010.0,
                300500.0, 500.0, 0.0, 100.0, None, None, position_greeks(None, 1, 50, None), None)]
    strategies = group_strategies(legs)
    assert kinds(strategies) == ["custom", "long call", "short put", "short stock"]
    custom = next(s for s in strategies if s.kind == "custom")
    assert "'FUT'" in custom.explanation


def test_partial_sizes_leave_single_legs_and_tag_the_main_owner():
    legs = [opt("SPY", DEC, 570, "P", 2), opt("SPY", DEC, 580, "P", -3),
            opt("SPY", DEC, 620, "C", -2), opt("SPY", DEC, 630, "C", 2)]
    strategies, tagged = group_and_tag(legs)
    assert kinds(strategies) == ["iron condor", "short put"]
    condor = next(s for s in strategies if s.kind == "iron condor")
    single = next(s for s in strategies if s.kind == "short put")
    short_put = legs[1].contract.con_id
    assert dict(zip(condor.con_ids, condor.quantities))[short_put] == -2.0
    assert single.con_ids == (short_put,) and single.quantities == (-1.0,)
    assert [leg.strategy_id for leg in tagged] == [condor.strategy_id] * 4
    # The split leg's Greeks and P&L are shared pro rata; nothing is counted twice.
    total_delta = sum(leg.position_greeks.delta for leg in legs)
    assert condor.greeks.delta + single.greeks.delta == pytest.approx(total_delta)
    assert single.greeks.delta == pytest.approx(legs[1].position_greeks.delta / 3)
    assert condor.unrealized_pnl + single.unrealized_pnl == pytest.approx(sum(leg.unrealized_pnl for leg in legs))
    assert single.market_value == pytest.approx(legs[1].market_value / 3)


def test_ratio_spread_is_a_vertical_plus_a_naked_leg():
    legs = [opt("QQQ", DEC, 500, "C", 1), opt("QQQ", DEC, 520, "C", -2)]
    strategies = group_strategies(legs)
    assert kinds(strategies) == ["call debit vertical", "short call"]


def portfolio():
    return [
        opt("SPY", DEC, 570, "P", 2), opt("SPY", DEC, 580, "P", -2), opt("SPY", DEC, 620, "C", -2),
        opt("SPY", DEC, 630, "C", 2), opt("SPY", JAN, 560, "P", -1),
        opt("QQQ", DEC, 500, "C", 1), opt("QQQ", DEC, 510, "C", -2), opt("QQQ", DEC, 520, "C", 1),
        opt("IWM", DEC, 225, "P", -1), opt("IWM", FEB, 225, "P", 1),
        stock("AAPL", 300), opt("AAPL", DEC, 240, "C", -3),
        opt("TSLA", DEC, 350, "C", 1), opt("TSLA", DEC, 350, "P", 1),
        opt("TSLA", JAN, 300, "P", -1), opt("TSLA", JAN, 400, "C", -1),
        opt("MSFT", DEC, 470, "P", 1), opt("MSFT", DEC, 490, "P", -1),
        opt("SPY", DEC, 600, "C", 5, account="DU999999"),
    ]


@pytest.fixture
def book():
    return portfolio()


def held_quantities(strategies):
    held: dict[int, float] = {}
    for s in strategies:
        for cid, q in zip(s.con_ids, s.quantities):
            held[cid] = held.get(cid, 0.0) + q
    return held


def test_mixed_portfolio_names_everything(book):
    strategies = group_strategies(book)
    assert kinds(strategies) == sorted([
        "iron condor", "short put", "long call butterfly", "long put calendar", "covered call",
        "long straddle", "short strangle", "put credit vertical", "long call"])
    assert len({s.strategy_id for s in strategies}) == len(strategies)
    # Every leg of the book is held in full by the strategies, exactly once.
    assert held_quantities(strategies) == {
leg.contract.con_id: leg.quantity for leg in book}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_order_does_not_change_ids_or_grouping(book, seed):
    reference = group_strategies(book)
    shuffled = book[:]
    random.Random(seed).shuffle(shuffled)
    assert group_strategies(shuffled) == reference
    assert group_and_tag(shuffled)[1] == [dict(zip(map(id, book), group_and_tag(book)[1]))[id(leg)]
                                          for leg in shuffled]


def test_ids_are_stable_across_size_changes_and_separate_accounts():
    small = [opt("SPY", DEC, 570, "P", 1, con_id=11), opt("SPY", DEC, 580, "P", -1, con_id=12)]
    large = [opt("SPY", DEC, 570, "P", 4, con_id=11), opt("SPY", DEC, 580, "P", -4, con_id=12)]
    assert only(group_strategies(small)).strategy_id == only(group_strategies(large)).strategy_id
    other = [opt("SPY", DEC, 570, "P", 1, con_id=11, account="DU2"),
             opt("SPY", DEC, 580, "P", -1, con_id=12, account="DU3")]
    assert kinds(group_strategies(other)) == ["long put", "short put"]     # never across accounts


def test_flagged_legs_stay_out_of_strategy_greeks_but_not_pnl():
    good = opt("SPY", DEC, 570, "P", 1)
    bad = opt("SPY", DEC, 580, "P", -1, flags=("IB delta 1.7 out of [-1, 1]",))
    s = only(group_strategies([good, bad]))
    assert s.kind == "put credit vertical"
    assert s.greeks.delta == pytest.approx(good.position_greeks.delta)
    assert s.greeks.vega == pytest.approx(good.position_greeks.vega)
    assert s.unrealized_pnl == pytest.approx(good.unrealized_pnl + bad.unrealized_pnl)
    missing = opt("SPY", DEC, 580, "P", -1, greeks=False)
    s = only(group_strategies([good, missing]))
    assert s.greeks.delta == pytest.approx(good.position_greeks.delta)


def test_zero_quantity_legs_are_ignored():
    closed = opt("SPY", DEC, 570, "P", 0)
    strategies, tagged = group_and_tag([closed, opt("SPY", DEC, 600, "C", 1)])
    assert kinds(strategies) == ["long call"]
    assert tagged[0].strategy_id == ""


def test_five_hundred_legs_group_completely():
    rng = random.Random(9)
    legs = []
    for i in range(500):
        symbol = rng.choice(list(SPOTS))
        expiry = rng.choice([DEC, JAN, FEB])
        strike = round(SPOTS[symbol] * rng.uniform(0.85, 1.15) / 5) * 5
        legs.append(opt(symbol, expiry, strike, rng.choice("CP"), rng.choice([-3, -2, -1, 1, 2, 3])))
    strategies = group_strategies(legs)
    assert held_quantities(strategies) == pytest.approx({leg.contract.con_id: leg.quantity for leg in legs})
    assert sum(s.greeks.delta for s in strategies) == pytest.approx(sum(l.position_greeks.delta for l in legs))
