"""Absurd broker numbers (issue #11, defect 7): every such position appears, flagged with the
reason, kept out of every total; one leg never fails a snapshot build.

Through the real simulator (its fault controls report positions verbatim, as a broken gateway
would) and the real ib_async client, then on the builder with input no edge would pass.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from v6core.models import ContractInfo, PositionGreeks
from v6core.state import LiveState, PositionRecord, QuoteRecord, SnapshotBuilder
from tests.runtime.helpers import seeded_ids
from tests.runtime.test_state_builder import NOW, CONNECTED, Settings, Quote, base_state, build


def _row(con_id, symbol, sec_type, quantity, avg_cost, expiry="", strike="0", right="",
         multiplier=""):
    return (con_id, symbol, sec_type, expiry, strike, right, multiplier, "SMART", "USD", symbol, "",
            quantity, avg_cost)


def _sum(greeks) -> PositionGreeks:
    total = PositionGreeks()
    for g in greeks:
        total = total + g
    return total


def test_absurd_positions_from_the_gateway_show_flagged_and_stay_out_of_totals(gateway, make_runtime):
    gw = gateway
    expiry = f"{gw.today + timedelta(days=30):%Y%m%d}"
    absurd = {
        990001: (_row(990001, "ZZLONG", "STK", "1e306", "10"), "implausible quantity"),
        990002: (_row(990002, "ZZSHORT", "STK", "-1e306", "10"), "implausible quantity"),
        990003: (_row(990003, "SPY", "OPT", "nan", "150", expiry, "500", "C", "100"),
                 "position rejected: quantity nan"),
        990004: (_row(990004, "SPY", "OPT", "inf", "150", expiry, "510", "C", "100"),
                 "position rejected: quantity inf"),
        990005: (_row(990005, "ZZCOST", "STK", "10", "nan"), "position rejected: average cost nan"),
        990006: (_row(990006, "SPY", "OPT", "2", "150", "NOTADATE", "520", "C", "100"),
                 "contract rejected: expiry"),
        990007: (_row(990007, "SPY", "OPT", "1", "250", expiry, "530", "P", "-100"),
                 "non-positive multiplier -100"),
    }
    gw.faults.inject_positions(row for row, _ in absurd.values())
    gw.faults.override_account_values({"InitMarginReq": "-5000"})
    rt = make_runtime(gw)
    wanted = seeded_ids(gw) | set(absurd)
    snap = rt.wait_for(lambda s: {l.contract.con_id for l in s.legs} == wanted
                       and s.account.init_margin is not None, 30)
    assert snap is not None, f"absurd legs missing or no snapshot built: {rt.snapshot().legs}"
    legs = {l.contract.con_id: l for l in snap.legs}
    for con_id, (_, reason) in absurd.items():
        leg = legs[con_id]
        assert any(f.startswith(reason) for f in leg.flags), (con_id, leg.flags)
        assert leg.position_greeks == PositionGreeks() and not leg.strategy_id
        for money in (leg.market_value, leg.unrealized_pnl, leg.daily_pnl):
            assert money is None or math.isfinite(money)
    assert legs[990007].contract.multiplier == -100.0          # flagged, not replaced
    # the totals are those of the clean book, finite
    clean = [l for l in snap.legs if l.contract.con_id not in absurd]
    assert snap.totals == _sum(l.position_greeks for l in clean)
    assert math.isfinite(snap.unrealized_pnl) and math.isfinite(snap.totals.delta)
    # a negative margin is shown as sent and called out, never turned into a margin use
    assert snap.account.init_margin == -5000.0 and snap.account.margin_use_pct is None
    assert any("negative initial margin" in a.message for a in snap.alerts)
    assert all(any(str(c) in a.message or legs[c].contract.label in a.message for a in snap.alerts)
               for c in absurd)


def test_one_leg_that_cannot_be_evaluated_never_fails_the_build():
    state = base_state()
    broken = ContractInfo(77, "SPY", "OPT", expiry="20261218", strike=600.0, right="C",  # type: ignore[arg-type]
                          multiplier=100.0)
    state.set_position(PositionRecord("DU1", broken, 1, 250.0))
    state.quotes[77] = QuoteRecord(Quote(77, bid=1.0, ask=1.2, time=NOW), epoch=1)
    snap = build(state)
    leg = next(l for l in snap.legs if l.contract.con_id == 77)
    assert any(f.startswith("position rejected: could not be evaluated") for f in leg.flags)
    assert snap.totals.delta == pytest.approx(100.0)            # the SPY shares alone


def test_huge_numbers_that_bypass_the_edge_cannot_poison_the_sums():
    state = LiveState(managed_accounts=("DU1",), account_name="DU1", epoch=1)
    for con_id, quantity in ((1, 1e306), (2, -1e306), (3, 100.0)):
        state.set_position(PositionRecord("DU1", ContractInfo(con_id, f"S{con_id}", "STK"), quantity, 10.0))
        state.quotes[con_id] = QuoteRecord(Quote(con_id, bid=600.0, ask=600.2, time=NOW), epoch=1)
        state.underlying_ids[f"S{con_id}"] = con_id
    snap = SnapshotBuilder(Settings()).build(state, CONNECTED, 1, NOW)
    legs = {l.contract.con_id: l for l in snap.legs}
    assert all(any(f.startswith("implausible quantity") for f in legs[c].flags) for c in (1, 2))
    assert legs[1].market_value is None and legs[2].unrealized_pnl is None
    assert snap.unrealized_pnl == pytest.approx((600.1 - 10.0) * 100)
    assert snap.totals.delta == pytest.approx(100.0)
