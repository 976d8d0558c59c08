"""The live picture against the real simulator: legs, Greeks, totals, fallbacks, bad input."""

from __future__ import annotations

import math
import time

import pytest

from v6core.models import ConnState, GreekSource, PositionGreeks
from tests.runtime.helpers import seeded_ids, wait_ready


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def reference_greeks(spot, strike, t_years, rate, iv, right) -> dict[str, float]:
    """Black-Scholes in IB units, written out here independently of v6core and the simulator."""
    sqrt_t = math.sqrt(t_years)
    d1 = (math.log(spot / strike) + (rate + iv * iv / 2.0) * t_years) / (iv * sqrt_t)
    d2 = d1 - iv * sqrt_t
    density = math.exp(-d1 * d1 / 2.0) / math.sqrt(2.0 * math.pi)
    carry = rate * strike * math.exp(-rate * t_years)
    if right == "C":
        delta = _norm_cdf(d1)
        theta_year = -spot * density * iv / (2 * sqrt_t) - carry * _norm_cdf(d2)
    else:
        delta = _norm_cdf(d1) - 1.0
        theta_year = -spot * density * iv / (2 * sqrt_t) + carry * _norm_cdf(-d2)
    return {"delta": delta, "gamma": density / (spot * iv * sqrt_t),
            "theta": theta_year / 365.0, "vega": spot * density * sqrt_t / 100.0}


def test_snapshot_shows_every_seeded_leg_with_greeks(make_runtime, tmp_path):
    rt = make_runtime(mode="sim", lake_path=tmp_path / "lake")   # its own paper account
    gw = rt.sim
    snap = wait_ready(rt, gw)
    seeded = {p.contract.con_id: p for p in gw.seeded_positions()}
    legs = {leg.contract.con_id: leg for leg in snap.legs}
    assert set(legs) == set(seeded)
    for con_id, pos in seeded.items():
        leg = legs[con_id]
        assert leg.quantity == pos.quantity
        assert leg.contract.multiplier == pos.contract.multiplier
        assert leg.avg_price == pytest.approx(pos.avg_cost / pos.contract.multiplier)
        assert leg.mark is not None and leg.mark > 0
        assert leg.quote_time is not None and not leg.stale
        if leg.contract.is_option:
            assert leg.greeks.source == GreekSource.IB
            assert -1.0 <= leg.greeks.delta <= 1.0 and leg.greeks.gamma >= 0
            assert leg.dte is not None and leg.dte >= 0
        else:
            assert leg.greeks.source == GreekSource.STOCK
        assert leg.strategy_id, f"{leg.contract.label} belongs to no strategy"
    # every leg is grouped exactly once
    grouped = [cid for s in snap.strategies for cid in s.con_ids]
    assert sorted(grouped) == sorted(seeded)
    status = snap.connection
    assert status.mode == "sim" and status.badge == "SIM"
    assert status.server_version == 178 and status.port == gw.port
    assert status.account == gw.account_id and status.is_paper
    assert status.last_message_at is not None and status.breaker == "closed"
    assert any(n.startswith("2104") for n in status.notices)
    # the quotes cover every leg and every underlying (plus SPY for beta weighting)
    quoted = {q.con_id for q in snap.quotes}
    assert set(seeded) <= quoted
    for symbol in {p.contract.symbol for p in seeded.values()} | {"SPY"}:
        assert snap.underlying(symbol) is not None or symbol == "SPY"
        assert gw.lookup(symbol).con_id in quoted
    # account values and daily P&L arrive
    done = rt.wait_for(lambda s: s.account.net_liquidation is not None and s.daily_pnl is not None
                       and all(l.daily_pnl is not None for l in s.legs), 15)
    assert done is not None, rt.snapshot().account


def test_totals_equal_an_independent_computation(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    gw.freeze()
    time.sleep(0.6)          # let the last ticks sent before the freeze arrive
    seq = rt.snapshot().seq
    snap = rt.wait_for(lambda s: s.seq > seq + 1, 5)
    assert snap is not None
    spy = gw.spot("SPY")
    betas = rt.settings.betas
    expected = dict(delta=0.0, gamma=0.0, theta=0.0, vega=0.0, dollar_delta=0.0, beta_delta=0.0)
    for pos in gw.seeded_positions():
        info = pos.contract
        size = pos.quantity * info.multiplier
        if info.sec_type == "OPT":
            inputs = gw.option_inputs(info.con_id)
            g = reference_greeks(inputs["spot"], inputs["strike"], inputs["t_years"],
                                 inputs["rate"], inputs["iv"], inputs["right"])
        else:
            g = {"delta": 1.0, "gamma": 0.0, "theta": 0.0, "vega": 0.0}
        spot = gw.spot(info.symbol)
        for key in ("delta", "gamma", "theta", "vega"):
            expected[key] += g[key] * size
        expected["dollar_delta"] += g["delta"] * size * spot
        expected["beta_delta"] += g["delta"] * size * betas.get(info.symbol, 1.0) * spot / spy
    totals = snap.totals
    for key in ("delta", "gamma", "theta", "vega"):
        assert getattr(totals, key) == pytest.approx(expected[key], rel=1e-4, abs=1e-3), key
    # dollar/beta delta use the quoted underlying mid, which sits within a cent or two of the spot
    assert totals.dollar_delta == pytest.approx(expected["dollar_delta"], rel=2e-3, abs=1.0)
    assert totals.beta_delta == pytest.approx(expected["beta_delta"], rel=2e-3, abs=0.1)


def test_withheld_greeks_are_computed_locally(gateway, make_runtime):
    gw = gateway
    options = [p.contract for p in gw.seeded_positions() if p.contract.sec_type == "OPT"]
    withheld = {c.con_id for c in options[:3]}
    gw.faults.withhold_greeks(withheld)
    rt = make_runtime(gw)
    snap = wait_ready(rt, gw)
    for leg in snap.legs:
        if leg.contract.con_id in withheld:
            assert leg.greeks.source == GreekSource.COMPUTED
            inputs = gw.option_inputs(leg.contract.con_id)
            ref = reference_greeks(inputs["spot"], inputs["strike"], inputs["t_years"],
                                   inputs["rate"], inputs["iv"], inputs["right"])
            # computed from IB's implied vol (tick 106) and the quoted underlying
            assert leg.greeks.delta == pytest.approx(ref["delta"], abs=0.02)
            assert leg.position_greeks.delta != 0.0
        elif leg.contract.is_option:
            assert leg.greeks.source == GreekSource.IB
    assert any("computed locally" in a.message for a in snap.alerts)


@pytest.mark.parametrize("kind", ["nan", "out_of_range", "malformed"])
def test_malformed_greeks_are_flagged_and_kept_out_of_totals(gateway, make_runtime, kind):
    gw = gateway
    victim = next(p.contract for p in gw.seeded_positions() if p.contract.sec_type == "OPT")
    gw.faults.bad_greeks(victim.con_id, kind=kind)
    rt = make_runtime(gw)
    snap = wait_ready(rt, gw)
    leg = next(l for l in snap.legs if l.contract.con_id == victim.con_id)
    # IB's garbage never becomes the leg's Greeks; the fallback computes sane ones instead
    assert leg.greeks.source == GreekSource.COMPUTED
    assert -1.0 <= leg.greeks.delta <= 1.0 and leg.greeks.gamma >= 0 and leg.greeks.vega >= 0
    if kind == "malformed":
        # ib_async's decoder drops the unparsable message: to us IB simply sent no Greeks
        assert not leg.flags and leg.position_greeks.delta != 0.0
    else:
        # NaN and out-of-range values arrive: flagged on the leg, alerted, out of the totals
        assert any("IB" in f for f in leg.flags), leg.flags
        assert any(leg.contract.label in a.message for a in snap.alerts)
        assert leg.position_greeks == PositionGreeks()
    total_delta = sum(l.position_greeks.delta for l in snap.legs)
    assert snap.totals.delta == pytest.approx(total_delta)
    assert all(math.isfinite(getattr(snap.totals, k)) for k in ("delta", "gamma", "theta", "vega"))
    # still alive and streaming
    seq = snap.seq
    assert rt.wait_for(lambda s: s.seq > seq and s.connection.state == ConnState.CONNECTED, 5)


def test_unknown_account_positions_are_flagged_not_totalled(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw, account="DU0000000")
    snap = rt.wait_for(lambda s: len(s.legs) == len(seeded_ids(gw)), 20)
    assert snap is not None
    assert "not managed" in snap.connection.last_error
    assert all(any(f.startswith("unknown account") for f in l.flags) for l in snap.legs)
    assert snap.totals.delta == 0.0 and snap.unrealized_pnl == 0.0


def test_the_embedded_simulators_port_is_on_screen_from_the_first_snapshot(make_runtime, tmp_path):
    """In mode sim the simulator listens on a free port: the very first snapshot (before any
    connection) must name it, never V6_IB_PORT's 4002 (a page drawn then showed 127.0.0.1:4002
    in the sidebar and the body a moment later drew the simulator's book)."""
    rt = make_runtime(mode="sim", lake_path=tmp_path / "lake", ib_port=4002)
    first = rt.snapshot()
    assert rt.sim.port != 4002
    assert (first.connection.host, first.connection.port) == ("127.0.0.1", rt.sim.port)
