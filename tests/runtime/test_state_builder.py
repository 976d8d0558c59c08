"""SnapshotBuilder and the edge converters on hand-made input (no gateway)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from ib_async import Contract, OptionComputation, Ticker

from v6core import greeks as greek_math
from v6core.config import Settings
from v6core.ib_edge import contract_from_ib, greeks_from_ib, position_from_ib, quote_from_ticker
from v6core.models import ConnectionStatus, ConnState, ContractInfo, Greeks, GreekSource, Quote
from v6core.state import LiveState, PositionRecord, QuoteRecord, SnapshotBuilder, SnapshotStore, empty_snapshot

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
CONNECTED = ConnectionStatus(state=ConnState.CONNECTED)


def option(con_id=11, strike=600.0, right="C", days=30, symbol="SPY") -> ContractInfo:
    return ContractInfo(con_id, symbol, "OPT", expiry=(NOW + timedelta(days=days)).date(),
                        strike=strike, right=right, multiplier=100.0)


def ib_greeks(delta=0.5, gamma=0.01, theta=-0.2, vega=0.6) -> Greeks:
    return Greeks(delta, gamma, theta, vega, iv=0.2, und_price=600.0, source=GreekSource.IB)


def base_state() -> LiveState:
    state = LiveState(managed_accounts=("DU1",), account_name="DU1", epoch=1)
    state.underlying_ids["SPY"] = 1
    state.quotes[1] = QuoteRecord(Quote(1, bid=599.99, ask=600.01, time=NOW), epoch=1)
    state.set_position(PositionRecord("DU1", ContractInfo(1, "SPY", "STK"), 100, 590.0))
    return state


def add_option(state: LiveState, info: ContractInfo, qty: float, greeks: Greeks | None,
               greek_flags=(), time=NOW, epoch=1, iv=0.2) -> None:
    state.set_position(PositionRecord("DU1", info, qty, 250.0))
    state.quotes[info.con_id] = QuoteRecord(Quote(info.con_id, bid=10.0, ask=10.4, iv=iv, time=time),
                                            ib_greeks=greeks, greek_flags=tuple(greek_flags), epoch=epoch)


def build(state, status=CONNECTED, seq=1):
    return SnapshotBuilder(Settings()).build(state, status, seq, NOW)


def test_totals_are_position_greeks_of_clean_legs():
    state = base_state()
    add_option(state, option(11), -2, ib_greeks())
    snap = build(state)
    leg = next(l for l in snap.legs if l.contract.con_id == 11)
    assert leg.position_greeks.delta == pytest.approx(0.5 * -2 * 100)
    assert leg.position_greeks.dollar_delta == pytest.approx(-100 * 600.0)
    assert leg.avg_price == pytest.approx(2.5) and leg.mark == pytest.approx(10.2)
    assert leg.unrealized_pnl == pytest.approx((10.2 - 2.5) * -2 * 100)
    assert snap.totals.delta == pytest.approx(100 - 100)
    assert snap.underlying("SPY").greeks == snap.totals
    assert leg.dte == 30 and not leg.stale


def test_missing_ib_greeks_are_computed_in_one_batch_and_marked():
    state = base_state()
    add_option(state, option(11), 1, None)
    add_option(state, option(12, strike=620), 1, None, iv=None)       # implied from the mid
    snap = build(state)
    for con_id in (11, 12):
        leg = next(l for l in snap.legs if l.contract.con_id == con_id)
        assert leg.greeks.source == GreekSource.COMPUTED and not leg.flags
        assert 0 < leg.greeks.delta < 1 and leg.position_greeks.delta != 0
    ref = greek_math.bs_greeks([600.0], [600.0], [greek_math.year_fraction(option().expiry, NOW)],
                               0.04, [0.2], [True])
    leg = next(l for l in snap.legs if l.contract.con_id == 11)
    assert leg.greeks.delta == pytest.approx(float(ref["delta"][0]), rel=1e-6)


def test_rejected_ib_greeks_are_flagged_and_kept_out_of_totals():
    state = base_state()
    add_option(state, option(11), 5, None, greek_flags=("IB delta 1.8 out of [-1, 1]",))
    snap = build(state)
    leg = next(l for l in snap.legs if l.contract.con_id == 11)
    assert "IB delta 1.8 out of [-1, 1]" in leg.flags
    assert leg.greeks.source == GreekSource.COMPUTED          # an estimate for the operator ...
    assert leg.position_greeks.delta == 0.0                   # ... but not in the totals
    assert snap.totals.delta == pytest.approx(100.0)
    assert any("out of [-1, 1]" in a.message for a in snap.alerts)


def test_unknown_security_type_and_account_stay_out_of_everything():
    state = base_state()
    fut, flags = contract_from_ib(Contract(conId=50, symbol="ES", secType="FUT",
                                           lastTradeDateOrContractMonth="20261218", multiplier="50"))
    assert flags == ("unknown security type FUT",)
    state.set_position(PositionRecord("DU1", fut, 1, 300000.0, flags))
    state.set_position(PositionRecord("U999", option(13), 4, 100.0))
    state.quotes[13] = QuoteRecord(Quote(13, bid=1, ask=1.2, time=NOW), ib_greeks=ib_greeks(), epoch=1)
    snap = build(state)
    bad = {l.contract.con_id: l for l in snap.legs if l.contract.con_id in (50, 13)}
    assert any(f.startswith("unknown security type") for f in bad[50].flags)
    assert any(f.startswith("unknown account U999") for f in bad[13].flags)
    assert all(l.position_greeks.delta == 0 and not l.strategy_id for l in bad.values())
    assert snap.totals.delta == pytest.approx(100.0)
    assert snap.unrealized_pnl == pytest.approx((600.0 - 590.0) * 100)


def test_stale_when_old_from_a_previous_session_or_disconnected():
    state = base_state()
    add_option(state, option(11), 1, ib_greeks(), time=NOW - timedelta(seconds=60))
    add_option(state, option(12), 1, ib_greeks(), epoch=0)
    snap = build(state)
    stale = {l.contract.con_id: l.stale for l in snap.legs}
    assert stale == {1: False, 11: True, 12: True}
    down = build(state, ConnectionStatus(state=ConnState.DISCONNECTED, last_error="boom"))
    assert all(l.stale for l in down.legs)
    assert down.totals == snap.totals                          # last known values stay visible
    assert any(a.level == "error" and "boom" in a.message for a in down.alerts)


def test_positions_version_bumps_on_set_or_size_changes_only():
    state = base_state()
    v = state.positions_version
    state.set_position(PositionRecord("DU1", ContractInfo(1, "SPY", "STK"), 100, 591.0))
    assert state.positions_version == v
    state.set_position(PositionRecord("DU1", ContractInfo(1, "SPY", "STK"), 150, 591.0))
    assert state.positions_version == v + 1
    state.set_position(PositionRecord("DU1", ContractInfo(1, "SPY", "STK"), 0, 0.0))
    assert state.positions_version == v + 2 and not state.positions


def test_edge_rejects_bad_prices_and_greeks_without_raising():
    ticker = Ticker(contract=Contract(conId=7, secType="OPT"))
    ticker.bid, ticker.ask, ticker.last, ticker.close = -1.0, -3.5, float("nan"), 2.0
    ticker.impliedVolatility = float("inf")
    quote, flags = quote_from_ticker(ticker, NOW)
    assert (quote.bid, quote.ask, quote.last, quote.close, quote.iv) == (None, None, None, 2.0, None)
    assert flags == ("negative ask -3.5 ignored",)
    nan = float("nan")
    assert greeks_from_ib(None) == (None, ())
    g, flags = greeks_from_ib(OptionComputation(0, 0.3, nan, 1.0, 0, 0.01, 0.2, -0.1, 100))
    assert g is None and "malformed" in flags[0]
    g, flags = greeks_from_ib(OptionComputation(0, 0.3, 0.4, 1.0, 0, 0.01, -2.0, -0.1, 100))
    assert g is None and "incomplete" in flags[0]
    g, flags = greeks_from_ib(OptionComputation(0, 0.3, -0.4, 1.0, 0, 0.01, 0.2, -0.1, 100))
    assert g.source == GreekSource.IB and g.delta == -0.4 and not flags
    edge, flags = position_from_ib("DU1", nan, 1.0)       # kept and flagged, never dropped
    assert math.isnan(edge.quantity) and flags[0].startswith("position rejected: quantity nan")
    assert position_from_ib("DU1", 2, -5.0)[1] == ("negative average cost -5",)
    assert contract_from_ib(Contract(conId=0, symbol="X", secType="STK"))[0] is None


def test_store_swaps_whole_snapshots_and_refuses_going_back():
    store = SnapshotStore(empty_snapshot(CONNECTED))
    first = build(base_state(), seq=1)
    store.publish(first)
    assert store.current() is first and store.next_seq == 2
    with pytest.raises(ValueError):
        store.publish(first)
    assert store.wait_for(lambda s: s.seq == 2, 0.05) is None
    assert store.wait_for(lambda s: s.seq == 1, 0.05) is first
    assert math.isfinite(first.totals.delta)
