"""The structure engine against independent calculations: strikes chosen by brute force over
the chain's deltas, payoffs by a plain loop over legs on a fine grid (scipy Black-Scholes for
later legs), the risk graphs against `v6core.risk` on the merged book."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy.stats import norm

from v6core import risk
from v6core.greeks import position_greeks, year_fraction
from v6core.models import Greeks, GreekSource, Leg
from v6core.structures import (
    RollPlan, StructureError, TemplateSpec, analyse, build, draft_roll, structure_legs, ticket_risk,
)
from tests.chain.synthetic import (
    FAR, NEAR, NOW, RATE, SPOT, make_chain, nearest_delta_strike, payoff_at,
)

CHAIN = make_chain(NEAR)
FAR_CHAIN = make_chain(FAR)

SPECS = [
    TemplateSpec("single", side="buy", right="C", delta=0.30),
    TemplateSpec("single", side="sell", right="P", delta=0.25),
    TemplateSpec("vertical", side="sell", right="P", delta=0.30, width=5),
    TemplateSpec("vertical", side="buy", right="C", delta=0.40, width=5),
    TemplateSpec("strangle", side="sell", delta=0.20),
    TemplateSpec("strangle", side="buy", delta=0.25),
    TemplateSpec("straddle", side="sell", delta=None),
    TemplateSpec("iron condor", side="sell", delta=0.20, width=5, units=3),
    TemplateSpec("iron condor", side="buy", delta=0.25, width=4),
    TemplateSpec("butterfly", side="buy", right="C", delta=None, width=5),
    TemplateSpec("butterfly", side="sell", right="P", delta=None, strike=95, width=3),
    TemplateSpec("calendar", side="buy", right="C", delta=0.50),
    TemplateSpec("calendar", side="sell", right="P", delta=0.40),
    TemplateSpec("diagonal", side="buy", right="C", delta=0.30, width=5),
    TemplateSpec("covered call", delta=0.30, units=2),
    TemplateSpec("cash-secured put", delta=0.30),
]


def _ids(spec):
    return f"{spec.side}-{spec.kind}-{spec.right}"


def strikes_of(structure):
    return [(leg.contract.right or "S", leg.contract.strike, leg.quantity,
             leg.contract.expiry) for leg in structure.legs]


@pytest.mark.parametrize("right,target", [("C", 0.30), ("P", 0.30), ("C", 0.16), ("P", 0.10)])
def test_single_leg_lands_on_the_nearest_delta(right, target):
    s = build(TemplateSpec("single", side="sell", right=right, delta=target), CHAIN)
    assert s.legs[0].contract.strike == nearest_delta_strike(CHAIN, right, target)
    assert s.legs[0].quantity == -1


def test_templates_place_the_right_legs_at_the_right_strikes():
    put30, call30 = nearest_delta_strike(CHAIN, "P", 0.30), nearest_delta_strike(CHAIN, "C", 0.30)
    put20, call20 = nearest_delta_strike(CHAIN, "P", 0.20), nearest_delta_strike(CHAIN, "C", 0.20)
    assert put30 < SPOT < call30
    ic = build(TemplateSpec("iron condor", delta=0.20, width=5), CHAIN)
    assert strikes_of(ic) == [("P", put20 - 5, 1, NEAR), ("P", put20, -1, NEAR),
                              ("C", call20, -1, NEAR), ("C", call20 + 5, 1, NEAR)]
    credit_put = build(TemplateSpec("vertical", side="sell", right="P", delta=0.30, width=5), CHAIN)
    assert strikes_of(credit_put) == [("P", put30, -1, NEAR), ("P", put30 - 5, 1, NEAR)]
    debit_call = build(TemplateSpec("vertical", side="buy", right="C", delta=0.30, width=5), CHAIN)
    assert strikes_of(debit_call) == [("C", call30, 1, NEAR), ("C", call30 + 5, -1, NEAR)]
    strangle = build(TemplateSpec("strangle", side="sell", delta=0.30), CHAIN)
    assert strikes_of(strangle) == [("P", put30, -1, NEAR), ("C", call30, -1, NEAR)]
    straddle = build(TemplateSpec("straddle", side="buy", delta=None), CHAIN)
    assert strikes_of(straddle) == [("P", 100.0, 1, NEAR), ("C", 100.0, 1, NEAR)]
    fly = build(TemplateSpec("butterfly", side="buy", right="C", delta=None, width=5), CHAIN)
    assert strikes_of(fly) == [("C", 95.0, 1, NEAR), ("C", 100.0, -2, NEAR), ("C", 105.0, 1, NEAR)]
    cal = build(TemplateSpec("calendar", side="buy", right="C", delta=0.30), CHAIN, FAR_CHAIN)
    assert strikes_of(cal) == [("C", call30, -1, NEAR), ("C", call30, 1, FAR)]
    diag = build(TemplateSpec("diagonal", side="buy", right="P", delta=0.30, width=5), CHAIN, FAR_CHAIN)
    assert strikes_of(diag) == [("P", put30, -1, NEAR), ("P", put30 + 5, 1, FAR)]
    cc = build(TemplateSpec("covered call", delta=0.30), CHAIN)
    assert strikes_of(cc) == [("S", None, 100, None), ("C", call30, -1, NEAR)]
    csp = build(TemplateSpec("cash-secured put", delta=0.30), CHAIN)
    assert strikes_of(csp) == [("P", put30, -1, NEAR)]
    by_strike = build(TemplateSpec("vertical", side="sell", right="C", delta=None, strike=104, width=3), CHAIN)
    assert strikes_of(by_strike) == [("C", 104.0, -1, NEAR), ("C", 107.0, 1, NEAR)]


def test_bad_specs_are_refused_with_a_reason():
    with pytest.raises(StructureError, match="later second expiry"):
        build(TemplateSpec("calendar", right="C", delta=0.3), CHAIN)
    with pytest.raises(StructureError, match="not listed"):
        build(TemplateSpec("single", right="C", delta=None, strike=100.5), CHAIN)
    with pytest.raises(StructureError):
        TemplateSpec("vertical", delta=1.5)
    with pytest.raises(StructureError, match="no strike above"):
        build(TemplateSpec("vertical", side="sell", right="C", delta=None, strike=130, width=5), CHAIN)


def independent_figures(structure):
    """Max profit/loss and breakevens from a plain fine grid over [0.01, 4 x spot]."""
    legs, units = structure.legs, structure.units
    horizon = min(leg.contract.expiry for leg in legs if leg.contract.expiry)
    premium = sum(leg.quantity * leg.quote.mid * (100 if leg.contract.sec_type == "OPT" else 1)
                  for leg in legs) * units
    multi = len({leg.contract.expiry for leg in legs if leg.contract.expiry}) > 1
    strikes = [leg.contract.strike for leg in legs if leg.contract.strike]
    S = (np.union1d(np.linspace(0.01, 4 * SPOT, 4_000), strikes) if multi
         else np.linspace(0.0, 4 * SPOT, 400_001))
    pnl = payoff_at(legs, S, horizon, units) - premium
    far = payoff_at(legs, np.array([40 * SPOT, 80 * SPOT]), horizon, units) - premium
    growth = (far[1] - far[0]) / (40 * SPOT)
    pnl[np.abs(pnl) < 1e-7] = 0.0
    crossings = np.flatnonzero(np.sign(pnl[:-1]) * np.sign(pnl[1:]) < 0)
    breakevens = sorted([S[i] - pnl[i] * (S[i + 1] - S[i]) / (pnl[i + 1] - pnl[i]) for i in crossings]
                        + [S[i] for i in np.flatnonzero(pnl == 0)])
    return (None if growth > 1e-6 else pnl.max(), None if growth < -1e-6 else pnl.min(),
            breakevens, premium)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_max_profit_loss_and_breakevens_match_an_independent_payoff(spec):
    structure = build(spec, CHAIN, FAR_CHAIN)
    summary = analyse(structure, SPOT, NOW, RATE)
    max_profit, max_loss, breakevens, premium = independent_figures(structure)
    assert summary.premium == pytest.approx(premium, abs=1e-6)
    multi = len(structure.expiries) > 1
    tol = 1.0 if multi else 0.05        # the independent grid is 0.1 wide for time spreads
    for got, want in ((summary.max_profit, max_profit), (summary.max_loss, max_loss)):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, abs=tol)
    assert len(summary.breakevens) == len(breakevens)
    for got, want in zip(summary.breakevens, breakevens):
        assert got == pytest.approx(want, abs=0.01 if not multi else 0.05)
    assert 0.0 < summary.pop < 1.0


def test_unlimited_sides_are_named():
    short_call = analyse(build(TemplateSpec("single", side="sell", right="C", delta=0.3), CHAIN), SPOT, NOW, RATE)
    long_call = analyse(build(TemplateSpec("single", side="buy", right="C", delta=0.3), CHAIN), SPOT, NOW, RATE)
    assert short_call.max_loss is None and short_call.max_profit > 0
    assert long_call.max_profit is None and long_call.max_loss < 0
    ic = analyse(build(TemplateSpec("iron condor", delta=0.2, width=5), CHAIN), SPOT, NOW, RATE)
    assert ic.is_credit and ic.max_profit == pytest.approx(-ic.premium)
    assert ic.max_loss == pytest.approx(-(500 + ic.premium), abs=1e-6)


def test_pop_of_a_short_put_is_the_lognormal_probability_above_its_breakeven():
    structure = build(TemplateSpec("single", side="sell", right="P", delta=0.3), CHAIN)
    leg = structure.legs[0]
    summary = analyse(structure, SPOT, NOW, RATE)
    (be,) = summary.breakevens
    assert be == pytest.approx(leg.contract.strike - leg.quote.mid)
    t = year_fraction(NEAR, NOW)
    iv = leg.quote.iv          # one leg: the smile is flat at its IV
    d2 = (math.log(SPOT / be) + (RATE - iv * iv / 2) * t) / (iv * math.sqrt(t))
    assert summary.pop == pytest.approx(norm.cdf(d2), abs=1e-9)


def test_at_a_combo_price_the_premium_follows_the_price():
    structure = build(TemplateSpec("iron condor", delta=0.2, width=5, units=2), CHAIN)
    summary = analyse(structure, SPOT, NOW, RATE, price=-1.25)
    assert summary.premium == pytest.approx(-250.0)
    assert summary.max_profit == pytest.approx(250.0)


# ---- risk graphs

def held(structure, account="DU1"):
    return [replace(leg, account=account, strategy_id="") for leg in
            structure_legs(structure, NOW, SPOT, {"XYZ": 1.2}, 600.0)]


def test_after_ticket_graph_is_the_risk_of_the_portfolio_with_the_legs_added():
    book = held(build(TemplateSpec("strangle", side="sell", delta=0.15), CHAIN))
    ticket = build(TemplateSpec("iron condor", delta=0.25, width=5), CHAIN)
    tr = ticket_risk(ticket, book, SPOT, NOW, RATE, {"XYZ": 1.2}, 600.0)
    merged = book + list(structure_legs(ticket, NOW, SPOT, {"XYZ": 1.2}, 600.0))
    direct = risk.risk_curves(merged, tr.grid, NOW, RATE, spots={"XYZ": SPOT})
    np.testing.assert_allclose(tr.after["t0_pnl"], direct["t0_pnl"], atol=1e-9)
    np.testing.assert_allclose(tr.after["expiry_pnl"], direct["expiry_pnl"], atol=1e-9)
    np.testing.assert_allclose(tr.after["t0_pnl"], tr.before["t0_pnl"] + tr.ticket["t0_pnl"], atol=1e-6)
    # the ticket alone at expiry is its payoff after premium, as the independent loop says
    _, _, _, premium = independent_figures(ticket)
    want = payoff_at(ticket.legs, tr.grid, NEAR, 1) - premium
    np.testing.assert_allclose(tr.ticket["expiry_pnl"], want, atol=1e-6)
    assert tr.greeks_after.delta == pytest.approx(tr.greeks_before.delta + sum(
        leg.position_greeks.delta for leg in tr.ticket_legs))


def test_at_expiry_names_the_expiry_and_values_later_legs_there():
    calendar = held(build(TemplateSpec("calendar", side="buy", right="C", delta=0.5), CHAIN, FAR_CHAIN))
    book = risk.prepare_risk(calendar, NOW, RATE, {"XYZ": SPOT})
    assert risk.expiries(book) == [NEAR, FAR]
    grid = np.array([90.0, 100.0, 110.0])
    at_near = risk.risk_curves(book, grid, NOW, RATE, expiry=NEAR)["expiry_pnl"]
    at_far = risk.risk_curves(book, grid, NOW, RATE, expiry=FAR)["expiry_pnl"]
    # at the far expiry every leg is at its payoff
    marks = {leg.contract.con_id: leg.mark for leg in calendar}
    want_far = sum(leg.quantity * 100 * (np.maximum(grid - leg.contract.strike, 0) - marks[leg.contract.con_id])
                   for leg in calendar)
    np.testing.assert_allclose(at_far, want_far, atol=1e-9)
    far_leg = next(leg for leg in calendar if leg.contract.expiry == FAR)
    near_leg = next(leg for leg in calendar if leg.contract.expiry == NEAR)
    t_left = year_fraction(FAR, risk.close_of(NEAR))
    from tests.chain.synthetic import bs
    want_near = [near_leg.quantity * 100 * (max(s - near_leg.contract.strike, 0) - near_leg.mark)
                 + far_leg.quantity * 100 * (bs(s, far_leg.contract.strike, t_left, RATE,
                                                far_leg.greeks.iv, True)[0] - far_leg.mark) for s in grid]
    np.testing.assert_allclose(at_near, want_near, atol=1e-4)
    # T+n at the near expiry's close is the same valuation as "at the near expiry"
    tn = risk.risk_curves(book, grid, NOW, RATE, at=risk.close_of(NEAR))["at_pnl"]
    np.testing.assert_allclose(tn, at_near, atol=1e-9)


def test_beta_weighted_scenario_moves_each_underlying_by_its_beta():
    from v6core.greeks import STOCK_GREEKS
    from v6core.models import ContractInfo

    def stock(symbol, qty, price):
        return Leg("DU1", ContractInfo(hash(symbol) % 10_000, symbol, "STK"), qty, price, price,
                   price * qty, 0.0, 0.0, 0.0, None, STOCK_GREEKS,
                   position_greeks(STOCK_GREEKS, qty, 1.0, price), None)

    legs = [stock("AAA", 100, 50.0), stock("BBB", -10, 200.0)]
    betas = {"SPY": 1.0, "QQQ": 1.25, "AAA": 2.0, "BBB": 0.5}
    curves = risk.portfolio_risk_curves(legs, [-10, 0, 10], NOW, RATE, betas=betas)
    want = [100 * 50 * 2.0 * m / 100 - 10 * 200 * 0.5 * m / 100 for m in (-10, 0, 10)]
    np.testing.assert_allclose(curves["t0_pnl"], want, atol=1e-9)
    rebased = risk.rebase_betas(betas, "QQQ")
    assert rebased["QQQ"] == 1.0 and rebased["AAA"] == pytest.approx(1.6)
    flat = risk.portfolio_risk_curves(legs, [10], NOW, RATE)
    assert flat["t0_pnl"][0] == pytest.approx(100 * 5 - 10 * 20)


# ---- rolls

def test_roll_same_strikes_closes_exactly_what_is_held_and_reopens_it_later():
    ic = build(TemplateSpec("iron condor", delta=0.2, width=5, units=3), CHAIN)
    legs = held(ic)
    roll = draft_roll(legs, RollPlan({NEAR: FAR_CHAIN}, "same strikes"))
    assert roll.units == 3
    trades = {(leg.contract.expiry, leg.contract.strike, leg.contract.right): leg.quantity * roll.units
              for leg in roll.legs}
    for leg in legs:
        c = leg.contract
        assert trades[(NEAR, c.strike, c.right)] == -leg.quantity
        assert trades[(FAR, c.strike, c.right)] == leg.quantity
    assert len(trades) == 8


def test_roll_same_delta_reopens_at_the_held_deltas():
    legs = held(build(TemplateSpec("vertical", side="sell", right="P", delta=0.3, width=5), CHAIN))
    roll = draft_roll(legs, RollPlan({NEAR: FAR_CHAIN}, "same delta"))
    opened = {leg.contract.strike for leg in roll.legs if leg.contract.expiry == FAR}
    want = {nearest_delta_strike(FAR_CHAIN, "P", abs(leg.greeks.delta)) for leg in legs}
    assert opened == want


def test_roll_up_in_strike_within_the_same_expiry_nets_nothing_away():
    legs = held(build(TemplateSpec("single", side="sell", right="C", delta=0.3), CHAIN))
    roll = draft_roll(legs, RollPlan({NEAR: CHAIN}, "same strikes", strike_shift=5))
    strike = legs[0].contract.strike
    assert [(leg.contract.strike, leg.quantity) for leg in roll.legs] == [(strike, 1), (strike + 5, -1)]
    assert roll.units == 1


def test_a_target_delta_beyond_the_strikes_shown_is_refused_not_guessed():
    narrow = CHAIN.around(SPOT, 6)            # 97 ... 102
    with pytest.raises(StructureError, match="beyond the P strikes shown"):
        narrow.by_delta("P", 0.10)
    with pytest.raises(StructureError, match="beyond the C strikes shown"):
        narrow.by_delta("C", 0.05)
    assert narrow.by_delta("C", 0.5).contract.strike == nearest_delta_strike(CHAIN, "C", 0.5)


def test_awaiting_quotes_names_the_legs_without_a_two_sided_quote_or_greeks():
    from v6core.structures.drafting import awaiting_quotes

    ic = build(TemplateSpec("iron condor", side="sell", delta=0.20, width=5), CHAIN)
    assert awaiting_quotes(ic) == []
    first, second, *rest = ic.legs
    late = replace(ic, legs=(replace(first, quote=replace(first.quote, iv=None, delta=None)),
                             replace(second, quote=replace(second.quote, ask=None)), *rest))
    assert awaiting_quotes(late) == [first.contract.label, second.contract.label]
    unquoted = replace(ic, legs=(replace(first, quote=None), second, *rest))
    assert awaiting_quotes(unquoted) == [first.contract.label]
