"""Risk curves and scenario grids against hand-computed payoffs and an independent Black-Scholes."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest
from scipy.stats import norm

from v6core.greeks import NEW_YORK, STOCK_GREEKS, bs_greeks, position_greeks, year_fraction
from v6core.models import ContractInfo, Greeks, GreekSource, Leg, PositionGreeks
from v6core.risk import (
    PRICE_SHOCKS_PCT, VOL_SHOCKS_PTS, portfolio_risk_curves, prepare_risk, risk_curves,
    scenario_grid, scenario_matrix, spot_grid,
)

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
DEC = date(2026, 12, 18)
JAN = date(2027, 1, 15)
RATE = 0.04
_ids = iter(range(900_000, 999_999))


def ref_price(S, K, t, r, sigma, call):
    d1 = (np.log(S / K) + (r + 0.5 * sigma**2) * t) / (sigma * np.sqrt(t))
    d2 = d1 - sigma * np.sqrt(t)
    if call:
        return S * norm.cdf(d1) - K * np.exp(-r * t) * norm.cdf(d2)
    return K * np.exp(-r * t) * norm.cdf(-d2) - S * norm.cdf(-d1)


def opt(symbol, expiry, strike, right, qty, spot, iv=0.25, mark=None, with_iv=True):
    c = ContractInfo(next(_ids), symbol, "OPT", expiry=expiry, strike=strike, right=right, multiplier=100.0)
    t = year_fraction(expiry, NOW)
    computed = bs_greeks(spot, strike, t, RATE, iv, right == "C")
    if mark is None:
        mark = float(computed["price"][0]) + 0.03            # quotes never sit exactly on the model
    g = Greeks(*(float(computed[k][0]) for k in ("delta", "gamma", "theta", "vega")),
               iv=iv if with_iv else None, und_price=spot, source=GreekSource.IB)
    return Leg("DU1", c, qty, mark, mark, mark * qty * 100, 0.0, 0.0, 0.0, (expiry - NOW.date()).days, g,
               position_greeks(g, qty, 100.0, spot, 1.0, 600.0), None)


def stock(symbol, qty, price):
    c = ContractInfo(next(_ids), symbol, "STK")
    return Leg("DU1", c, qty, price, price, price * qty, 0.0, 0.0, 0.0, None, STOCK_GREEKS,
               position_greeks(STOCK_GREEKS, qty, 1.0, price, 1.0, 600.0), None)


def test_zero_shock_is_zero_pnl_today():
    legs = [opt("SPY", DEC, 580, "P", -2, 600.0), opt("SPY", DEC, 570, "P", 2, 600.0),
            opt("SPY", JAN, 620, "C", 1, 600.0), stock("SPY", 50, 600.0)]
    curves = risk_curves(legs, [600.0], NOW, RATE)
    assert curves["t0_pnl"][0] == pytest.approx(0.0, abs=1e-9)
    grid = scenario_matrix(legs, PRICE_SHOCKS_PCT, VOL_SHOCKS_PTS, NOW, RATE)
    assert grid[PRICE_SHOCKS_PCT.index(0), VOL_SHOCKS_PTS.index(0)] == pytest.approx(0.0, abs=1e-9)


def test_vertical_expiry_pnl_is_its_hand_computed_payoff():
    short_put = opt("SPY", DEC, 580, "P", -2, 600.0, mark=6.00)
    long_put = opt("SPY", DEC, 570, "P", 2, 600.0, mark=3.50)
    curves = risk_curves([short_put, long_put], [600, 580, 577.5, 575, 570, 560], NOW, RATE)
    # 2 contracts x 100 of a 10-wide put credit vertical opened for 2.50: +500 max, -1500 max,
    # break-even at 577.50.
    np.testing.assert_allclose(curves["expiry_pnl"], [500, 500, 0, -500, -1500, -1500], atol=1e-9)
    # Today the spread is worth less than its maximum either way.
    assert np.all(np.abs(curves["t0_pnl"][[0, 5]]) < np.abs(curves["expiry_pnl"][[0, 5]]))


def test_calendar_at_near_expiry_values_the_far_leg_by_black_scholes():
    near = opt("AAPL", DEC, 230, "C", -1, 230.0, iv=0.28, mark=5.10)
    far = opt("AAPL", JAN, 230, "C", 1, 230.0, iv=0.26, mark=8.40)
    spots = np.array([200.0, 230.0, 260.0])
    curves = risk_curves([near, far], spots, NOW, RATE)
    t_left = (date(2027, 1, 15) - date(2026, 12, 18)).days / 365.0
    far_value = np.array([ref_price(s, 230.0, t_left, RATE, 0.26, True) for s in spots])
    expected = (-(np.maximum(spots - 230.0, 0) - 5.10) + (far_value - 8.40)) * 100
    np.testing.assert_allclose(curves["expiry_pnl"], expected, rtol=1e-7, atol=1e-6)
    assert curves["expiry_pnl"][1] == curves["expiry_pnl"].max()     # a calendar peaks at its strike


def test_small_moves_today_follow_the_position_greeks():
    legs = [opt("QQQ", DEC, 500, "C", 3, 510.0), opt("QQQ", JAN, 480, "P", -2, 510.0, iv=0.3)]
    delta = sum(leg.position_greeks.delta for leg in legs)
    vega = sum(leg.position_greeks.vega for leg in legs)
    move = risk_curves(legs, [509.0, 511.0], NOW, RATE)["t0_pnl"]
    assert (move[1] - move[0]) / 2.0 == pytest.approx(delta, rel=1e-3)
    up = risk_curves(legs, [510.0], NOW, RATE, iv_shift=1.0)["t0_pnl"][0]
    down = risk_curves(legs, [510.0], NOW, RATE, iv_shift=-1.0)["t0_pnl"][0]
    assert (up - down) / 2.0 == pytest.approx(vega, rel=1e-6)     # vega: $ per vol point


def test_long_call_grid_rises_with_price_and_vol():
    grid = scenario_matrix([opt("TSLA", DEC, 360, "C", 1, 350.0, iv=0.55)], PRICE_SHOCKS_PCT, VOL_SHOCKS_PTS, NOW, RATE)
    assert grid.shape == (len(PRICE_SHOCKS_PCT), len(VOL_SHOCKS_PTS))
    assert np.all(np.diff(grid, axis=0) > 0)
    assert np.all(np.diff(grid, axis=1) > 0)


def test_stock_is_linear_everywhere():
    legs = [stock("IWM", 200, 230.0)]
    curves = risk_curves(legs, [207.0, 230.0, 253.0], NOW, RATE)
    np.testing.assert_allclose(curves["t0_pnl"], [-4600, 0, 4600])
    np.testing.assert_allclose(curves["expiry_pnl"], [-4600, 0, 4600])
    assert prepare_risk(legs, NOW, RATE).horizon is None                 # no option, no expiry
    grid = scenario_matrix(legs, [-10, 10], [-5, 5], NOW, RATE)
    np.testing.assert_allclose(grid, [[-4600, -4600], [4600, 4600]])


def test_portfolio_moves_every_underlying_by_the_same_percent():
    spy = [opt("SPY", DEC, 590, "P", -1, 600.0), stock("SPY", 30, 600.0)]
    aapl = [opt("AAPL", JAN, 240, "C", 2, 230.0), stock("AAPL", -100, 230.0)]
    moves = np.array([-10.0, -3.0, 0.0, 4.0, 10.0])
    whole = portfolio_risk_curves(spy + aapl, moves, NOW, RATE)
    per_spy = risk_curves(spy, 600.0 * (1 + moves / 100), NOW, RATE)
    per_aapl = risk_curves(aapl, 230.0 * (1 + moves / 100), NOW, RATE)
    np.testing.assert_allclose(whole["t0_pnl"], per_spy["t0_pnl"] + per_aapl["t0_pnl"], atol=1e-8)
    # The portfolio's expiry is the nearest of all (DEC), where AAPL's JAN call is still alive.
    assert whole["expiry_pnl"][2] != pytest.approx(0.0)
    frame = scenario_grid(spy + aapl, moves, [0.0, 2.0], NOW, RATE)
    assert frame.columns == ["price_shock_pct", "vol_shock_pts", "pnl"]
    at_zero = frame.filter((frame["price_shock_pct"] == 0.0) & (frame["vol_shock_pts"] == 0.0))["pnl"][0]
    assert at_zero == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(frame.filter(frame["vol_shock_pts"] == 0.0)["pnl"].to_numpy(), whole["t0_pnl"], atol=1e-8)


def test_vol_is_implied_from_the_mark_when_ib_sent_none():
    t = year_fraction(DEC, NOW)
    mark = float(ref_price(600.0, 610.0, t, RATE, 0.2, True))
    leg = opt("SPY", DEC, 610, "C", 1, 600.0, iv=0.2, mark=mark, with_iv=False)
    book = prepare_risk([leg], NOW, RATE)
    assert book.iv[0] == pytest.approx(0.2, rel=1e-6) and book.skipped == ()


def test_unpriceable_legs_are_listed_not_guessed():
    no_vol = opt("SPY", DEC, 610, "C", 1, 600.0, mark=None, with_iv=False)
    no_vol = Leg(**{**{f: getattr(no_vol, f) for f in Leg.__slots__}, "mark": None})
    future = Leg("DU1", ContractInfo(next(_ids), "ES", "FUT", multiplier=50.0), 1, 6000.0, 6000.0, None,
                 None, None, None, None, None, PositionGreeks(), None)
    priced = opt("SPY", DEC, 590, "P", -1, 600.0)
    book = prepare_risk([no_vol, future, priced], NOW, RATE)
    assert len(book) == 1 and book.con_ids[0] == priced.contract.con_id
    assert dict(book.skipped) == {no_vol.contract.con_id: "no implied vol (IB sent none, mark implies none)",
                                  future.contract.con_id: "FUT is not a stock or a complete option"}
    # A prepared book can be reused for every view of the page.
    assert risk_curves(book, [600.0], NOW, RATE)["t0_pnl"][0] == pytest.approx(0.0)


def test_spots_mapping_overrides_the_legs_underlying_price():
    legs = [stock("SPY", 10, 600.0)]
    curves = risk_curves(legs, [610.0], NOW, RATE, spots={"SPY": 605.0})
    assert curves["t0_pnl"][0] == pytest.approx(50.0)


def test_curves_are_per_underlying_and_empty_books_are_flat():
    with pytest.raises(ValueError, match="per underlying"):
        risk_curves([stock("SPY", 1, 600.0), stock("QQQ", 1, 510.0)], [1.0], NOW, RATE)
    empty = risk_curves([], [90.0, 100.0], NOW, RATE)
    np.testing.assert_array_equal(empty["t0_pnl"], [0.0, 0.0])
    assert scenario_matrix([], [0, 1], [0], NOW, RATE).shape == (2, 1)
    grid = spot_grid(600.0, 10.0, 21)
    assert grid[10] == 600.0 and grid[0] == pytest.approx(540.0) and grid[-1] == pytest.approx(660.0)


def test_expiring_today_legs_are_priced():
    now = datetime(2026, 12, 18, 18, 0, tzinfo=timezone.utc)        # expiry day, 3 h before the close
    c = ContractInfo(next(_ids), "SPY", "OPT", expiry=DEC, strike=600.0, right="C", multiplier=100.0)
    g = Greeks(0.5, 0.1, -1.0, 0.05, iv=0.15, und_price=600.0, source=GreekSource.IB)
    leg = Leg("DU1", c, 1, 1.2, 1.2, 120.0, 0.0, 0.0, 0.0, 0, g, position_greeks(g, 1, 100.0, 600.0), None)
    curves = risk_curves([leg], [590.0, 600.0, 610.0], now, RATE)
    np.testing.assert_allclose(curves["expiry_pnl"], np.array([-1.2, -1.2, 8.8]) * 100)
    assert np.all(np.isfinite(curves["t0_pnl"])) and curves["t0_pnl"][1] == pytest.approx(0.0)


def test_a_leg_already_expired_does_not_pull_the_horizon_into_the_past():
    expired = opt("SPY", DEC, 590, "P", -1, 600.0)                  # priced on NOW, held past expiry
    live_c = ContractInfo(next(_ids), "SPY", "OPT", expiry=JAN, strike=600.0, right="C", multiplier=100.0)
    g = Greeks(0.5, 0.01, -0.2, 0.6, iv=0.2, und_price=600.0, source=GreekSource.IB)
    later = datetime(2026, 12, 21, 15, 0, tzinfo=timezone.utc)        # three days after DEC expired
    t_live = year_fraction(JAN, later)
    mark = float(ref_price(600.0, 600.0, t_live, RATE, 0.2, True))
    live = Leg("DU1", live_c, 1, mark, mark, mark * 100, 0.0, 0.0, 0.0, 25, g,
               position_greeks(g, 1, 100.0, 600.0), None)
    book = prepare_risk([expired, live], later, RATE)
    assert book.horizon == datetime(2027, 1, 15, 16, 0, tzinfo=NEW_YORK)
    # Now only the January call is alive: at its expiry, both legs are at their payoff.
    spots = np.array([580.0, 620.0])
    curves = risk_curves(book, spots, later, RATE)
    short_put = -(np.maximum(590.0 - spots, 0) - expired.mark) * 100
    long_call = (np.maximum(spots - 600.0, 0) - mark) * 100
    expected = short_put + long_call
    np.testing.assert_allclose(curves["expiry_pnl"], expected, atol=1e-9)
