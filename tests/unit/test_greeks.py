"""v6core.greeks against an independent closed-form Black-Scholes written here with scipy."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
import pytest
from scipy.stats import norm

from v6core.greeks import (
    STOCK_GREEKS, GreekRequest, bs_greeks, bs_price, fill_greeks, fill_greeks_explained,
    implied_vol, position_greeks, position_greeks_arrays, sum_position_greeks, validate_greeks,
    year_fraction,
)
from v6core.models import Greeks, GreekSource, PositionGreeks

RATE = 0.04
DAY = 1.0 / 365.0


def ref_price(S, K, t, r, sigma, call):
    S, K, t, sigma = map(np.asarray, (S, K, t, sigma))
    d1 = (np.log(S / K) + (r + 0.5 * sigma**2) * t) / (sigma * np.sqrt(t))
    d2 = d1 - sigma * np.sqrt(t)
    c = S * norm.cdf(d1) - K * np.exp(-r * t) * norm.cdf(d2)
    p = K * np.exp(-r * t) * norm.cdf(-d2) - S * norm.cdf(-d1)
    return np.where(call, c, p)


def ref_greeks(S, K, t, r, sigma, call):
    """Analytic delta, gamma, vega per vol point, annual theta / 365."""
    S, K, t, sigma = map(np.asarray, (S, K, t, sigma))
    sq = np.sqrt(t)
    d1 = (np.log(S / K) + (r + 0.5 * sigma**2) * t) / (sigma * sq)
    d2 = d1 - sigma * sq
    delta = np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    gamma = norm.pdf(d1) / (S * sigma * sq)
    vega = S * norm.pdf(d1) * sq / 100.0
    decay = -S * norm.pdf(d1) * sigma / (2 * sq)
    theta_c = decay - r * K * np.exp(-r * t) * norm.cdf(d2)
    theta_p = decay + r * K * np.exp(-r * t) * norm.cdf(-d2)
    theta = np.where(call, theta_c, theta_p) / 365.0
    return dict(delta=delta, gamma=gamma, vega=vega, theta=theta)


@pytest.fixture(scope="module")
def book():
    """A spread of real-looking contracts: 5..500 underlyings, 1 week..2 years, 8%..120% vol."""
    rng = np.random.default_rng(11)
    n = 400
    S = rng.uniform(5, 500, n)
    K = S * rng.uniform(0.7, 1.3, n)
    t = rng.uniform(7, 730, n) / 365.0
    iv = rng.uniform(0.08, 1.2, n)
    call = rng.random(n) < 0.5
    return S, K, t, iv, call


def test_price_delta_gamma_vega_match_closed_form(book):
    S, K, t, iv, call = book
    got = bs_greeks(S, K, t, RATE, iv, call)
    ref = ref_greeks(S, K, t, RATE, iv, call)
    np.testing.assert_allclose(got["price"], ref_price(S, K, t, RATE, iv, call), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(got["delta"], ref["delta"], atol=1e-5)
    np.testing.assert_allclose(got["gamma"], ref["gamma"], rtol=1e-3, atol=1e-7)
    # Vega is the symmetric +/-1 vol point difference: the analytic vega to within 1% of
    # the at-the-money vega of the same contract (closer still near the money).
    central = (ref_price(S, K, t, RATE, iv + 0.01, call) - ref_price(S, K, t, RATE, iv - 0.01, call)) / 2
    np.testing.assert_allclose(got["vega"], central, rtol=1e-6, atol=1e-9)
    atm_vega = S * np.sqrt(t) * norm.pdf(0) / 100
    assert np.all(np.abs(got["vega"] - ref["vega"]) <= 0.01 * atm_vega)


def test_theta_is_one_calendar_day_of_decay(book):
    S, K, t, iv, call = book
    got = bs_greeks(S, K, t, RATE, iv, call)["theta"]
    one_day = ref_price(S, K, t - DAY, RATE, iv, call) - ref_price(S, K, t, RATE, iv, call)
    np.testing.assert_allclose(got, one_day, rtol=1e-6, atol=1e-9)
    # ... which, away from expiry, is the analytic theta per year divided by 365 (IB's unit).
    far = t > 60 / 365
    ref = ref_greeks(S, K, t, RATE, iv, call)["theta"]
    np.testing.assert_allclose(got[far], ref[far], rtol=0.05, atol=2e-4)


def test_units_theta_per_day_vega_per_vol_point():
    S, K, t, iv = 100.0, 100.0, 0.25, 0.25
    g = bs_greeks(S, K, t, RATE, iv, True)
    p0 = ref_price(S, K, t, RATE, iv, True)
    # A one-vol-point rise moves the price by about vega; a day passing by about theta.
    assert ref_price(S, K, t, RATE, iv + 0.01, True) - p0 == pytest.approx(g["vega"][0], rel=0.01)
    assert ref_price(S, K, t - DAY, RATE, iv, True) - p0 == pytest.approx(g["theta"][0], rel=1e-6)
    assert 0.1 < g["vega"][0] < 0.3      # $ per share per vol point, not per 100 points
    assert -0.1 < g["theta"][0] < -0.01  # $ per share per day, not per year


def test_put_call_parity(book):
    S, K, t, iv, _ = book
    c = bs_greeks(S, K, t, RATE, iv, np.ones_like(S, dtype=bool))
    p = bs_greeks(S, K, t, RATE, iv, np.zeros_like(S, dtype=bool))
    np.testing.assert_allclose(c["price"] - p["price"], S - K * np.exp(-RATE * t), atol=1e-8)
    np.testing.assert_allclose(c["delta"] - p["delta"], 1.0, atol=1e-5)
    np.testing.assert_allclose(c["gamma"], p["gamma"], rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(c["vega"], p["vega"], rtol=1e-4, atol=1e-8)


def test_year_fraction_counts_to_new_york_close():
    expiry = date(2026, 12, 18)
    # 16:00 New York in December is 21:00 UTC; one 365-day year has 31,536,000 s.
    assert year_fraction(expiry, datetime(2026, 12, 18, 21, 0, tzinfo=timezone.utc)) == 0.0
    assert year_fraction(expiry, datetime(2026, 12, 17, 21, 0, tzinfo=timezone.utc)) == pytest.approx(DAY)
    # Summer time: the close is 20:00 UTC.
    summer = date(2026, 7, 17)
    assert year_fraction(summer, datetime(2026, 7, 17, 19, 0, tzinfo=timezone.utc)) == pytest.approx(3600 / 31_536_000)
    assert year_fraction(expiry, datetime(2026, 12, 19, 1, 0, tzinfo=timezone.utc)) == 0.0
    with pytest.raises(ValueError):
        year_fraction(expiry, datetime(2026, 12, 1, 12, 0))


def test_expiring_today_is_legal_and_decays_to_intrinsic():
    now = datetime(2026, 11, 20, 20, 59, 30, tzinfo=timezone.utc)     # 30 s before the close
    t = year_fraction(date(2026, 11, 20), now)
    assert 0 < t < 1e-5
    g = bs_greeks([100, 100, 100, 100], [95, 105, 95, 105], t, RATE, 0.3, [True, True, False, False])
    for key, values in g.items():
        assert np.all(np.isfinite(values)), key
    np.testing.assert_allclose(g["price"], [5, 0, 0, 5], atol=1e-3)
    np.testing.assert_allclose(g["delta"], [1, 0, 0, -1], atol=1e-6)
    assert np.all(g["gamma"] >= 0) and np.all(g["vega"] >= 0)
    # The last seconds' decay is what time value is left: about nothing here. (A deep
    # in-the-money European put is worth a hair under intrinsic, so its theta is a hair > 0.)
    intrinsic = np.array([5.0, 0.0, 0.0, 5.0])
    np.testing.assert_allclose(g["theta"], intrinsic - g["price"], atol=1e-12)
    assert np.all(np.abs(g["theta"]) < 1e-4)


def test_last_day_theta_is_all_the_remaining_time_value():
    t = 0.3 * DAY
    g = bs_greeks(100.0, 100.0, t, RATE, 0.3, True)
    assert g["theta"][0] == pytest.approx(-g["price"][0], rel=1e-9)


def test_expired_legs_are_intrinsic_without_nan():
    g = bs_greeks([110, 90, 110, 90, 100], [100, 100, 100, 100, 100], 0.0, RATE,
                  np.nan, [True, True, False, False, True])
    np.testing.assert_array_equal(g["price"], [10, 0, 0, 10, 0])
    np.testing.assert_array_equal(g["delta"], [1, 0, 0, -1, 0])
    for key in ("gamma", "theta", "vega"):
        np.testing.assert_array_equal(g[key], 0.0)


def test_unusable_inputs_are_nan_rows_not_errors():
    g = bs_greeks([100, np.nan, 100, 100, -5, 100], [100, 100, 0, 100, 100, 100],
                  [0.5, 0.5, 0.5, -0.1, 0.5, 0.5], RATE, [0.2, 0.2, 0.2, 0.2, 0.2, np.inf], True)
    assert np.isfinite(g["price"][0])
    for key in g:
        assert np.all(np.isnan(g[key][1:])), key
    assert np.all(np.isnan(bs_price([100], [100], [0.5], RATE, [0.0], [True])))


def test_implied_vol_round_trip(book):
    S, K, t, iv, call = book
    prices = ref_price(S, K, t, RATE, iv, call)
    # Only prices carrying at least a cent of time value pin a vol down to 1e-4.
    meaningful = prices - np.where(call, np.maximum(S - K * np.exp(-RATE * t), 0),
                                   np.maximum(K * np.exp(-RATE * t) - S, 0)) > 0.01
    solved = implied_vol(prices, S, K, t, RATE, call)
    np.testing.assert_allclose(solved[meaningful], iv[meaningful], rtol=1e-4)


def test_implied_vol_is_nan_outside_no_arbitrage_bounds():
    S, K, t = 100.0, 90.0, 0.5
    intrinsic = S - K * math.exp(-RATE * t)
    iv = implied_vol([intrinsic - 0.5, 0.0, -1.0, S + 1, np.nan, 5.0, 5.0],
                     S, K, [t, t, t, t, t, 0.0, t], RATE, [True] * 7)
    # below intrinsic, zero, negative, above the spot, NaN, expired, 5.0 < intrinsic 11.8
    assert np.all(np.isnan(iv))
    put = implied_vol([K * math.exp(-RATE * t) + 1, 2.0], S, K, t, RATE, False)
    assert np.isnan(put[0]) and 0 < put[1] < 1


NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
EXPIRY = date(2026, 12, 18)


def test_fill_greeks_uses_ib_vol_first_then_mid_and_explains_failures():
    t = year_fraction(EXPIRY, NOW)
    mid = float(ref_price(100.0, 95.0, t, RATE, 0.35, False))
    requests = [
        GreekRequest(1, spot=100.0, strike=105.0, is_call=True, expiry=EXPIRY, iv=0.25, mid=9.99),
        GreekRequest(2, spot=100.0, strike=95.0, is_call=False, expiry=EXPIRY, iv=-1.0, mid=mid),
        GreekRequest(3, spot=None, strike=95.0, is_call=False, expiry=EXPIRY, iv=0.3),
        GreekRequest(4, spot=100.0, strike=95.0, is_call=False, expiry=EXPIRY),
        GreekRequest(5, spot=100.0, strike=95.0, is_call=False, expiry=EXPIRY, mid=0.0),
        GreekRequest(6, spot=100.0, strike=80.0, is_call=True, expiry=EXPIRY, mid=1.0),   # below intrinsic
        GreekRequest(7, spot=100.0, strike=95.0, is_call=False, expiry=date(2026, 11, 20)),  # expired
        GreekRequest(8, spot=100.0, strike=95.0, is_call=True, t=0.5, iv=float("nan"), mid=8.0),
    ]
    filled = fill_greeks_explained(requests, NOW, RATE)
    assert [f.con_id for f in filled] == list(range(1, 9))
    g1 = filled[0].greeks
    ref1 = ref_greeks(100.0, 105.0, t, RATE, 0.25, True)
    assert g1.source is GreekSource.COMPUTED and g1.iv == 0.25 and g1.und_price == 100.0
    assert g1.delta == pytest.approx(float(ref1["delta"]), abs=1e-5)
    assert g1.vega == pytest.approx(float(ref1["vega"]), rel=1e-3)
    g2 = filled[1].greeks
    assert g2.iv == pytest.approx(0.35, rel=1e-6)
    assert g2.delta == pytest.approx(float(ref_greeks(100.0, 95.0, t, RATE, 0.35, False)["delta"]), abs=1e-5)
    assert filled[2].greeks is None and "underlying price" in filled[2].reason
    assert filled[3].greeks is None and "no vol" in filled[3].reason
    assert filled[4].greeks is None and "no vol" in filled[4].reason
    assert filled[5].greeks is None and "mid 1" in filled[5].reason
    g7 = filled[6].greeks
    assert (g7.delta, g7.gamma, g7.theta, g7.vega) == (0.0, 0.0, 0.0, 0.0)
    assert filled[7].greeks is not None and filled[7].greeks.iv > 0
    assert fill_greeks(requests, NOW, RATE) == [f.greeks for f in filled]
    assert fill_greeks([], NOW, RATE) == []


def ib(delta=0.5, gamma=0.02, theta=-0.05, vega=0.1, iv=0.3, und=100.0):
    return Greeks(delta, gamma, theta, vega, iv=iv, und_price=und, source=GreekSource.IB)


def test_validate_accepts_market_semantics():
    g, flags = validate_greeks(ib(delta=-0.98, theta=3.5))      # deep ITM puts can have theta > 0
    assert flags == () and g.delta == -0.98 and g.theta == 3.5
    g, flags = validate_greeks(ib(gamma=-1e-12, vega=-5e-10))    # rounding below zero
    assert flags == () and g.gamma == 0.0 and g.vega == 0.0
    g, flags = validate_greeks(ib(iv=-1.0, und=-1.0))             # IB "unknown" iv/und: kept as None
    assert flags == () and g.iv is None and g.und_price is None
    assert validate_greeks(None) == (None, ())
    assert validate_greeks(STOCK_GREEKS) == (STOCK_GREEKS, ())


@pytest.mark.parametrize("bad, flag", [
    (dict(delta=1.7), "IB delta 1.7 out of [-1, 1]"),
    (dict(delta=float("nan")), "IB delta is NaN"),
    (dict(gamma=-0.01), "IB gamma -0.01 is negative"),
    (dict(vega=-2.0), "IB vega unknown (IB sentinel -2)"),
    (dict(theta=-2.0), "IB theta unknown (IB sentinel -2)"),
    (dict(theta=float("inf")), "IB theta is unset/infinite (inf)"),
    (dict(gamma=1.7976931348623157e308), "IB gamma is unset/infinite (1.79769e+308)"),
    (dict(iv=0.0), "IB iv 0 out of (0, 10]"),
    (dict(iv=25.0), "IB iv 25 out of (0, 10]"),
    (dict(iv=float("nan")), "IB iv nan is not finite"),
    (dict(delta="x"), "IB delta is not a number ('x')"),
])
def test_validate_rejects_with_clear_flag(bad, flag):
    g, flags = validate_greeks(ib(**bad))
    assert g is None
    assert flag in flags


def test_validate_names_the_source():
    g = Greeks(-1.2, 0.1, -0.1, 0.1, source=GreekSource.COMPUTED)
    assert validate_greeks(g) == (None, ("COMPUTED delta -1.2 out of [-1, 1]",))


def test_position_greeks_units_and_beta_weighting():
    g = ib(delta=0.4, gamma=0.03, theta=-0.06, vega=0.12)
    pos = position_greeks(g, quantity=-3, multiplier=100, spot=200.0, beta=1.25, spy_price=500.0)
    assert pos.delta == pytest.approx(-120.0)
    assert pos.gamma == pytest.approx(-9.0)
    assert pos.theta == pytest.approx(18.0)
    assert pos.vega == pytest.approx(-36.0)
    assert pos.dollar_delta == pytest.approx(-120.0 * 200.0)
    assert pos.beta_delta == pytest.approx(-120.0 * 1.25 * 200.0 / 500.0)
    stock = position_greeks(STOCK_GREEKS, 250, 1, spot=180.0, beta=2.0, spy_price=600.0)
    assert (stock.delta, stock.gamma, stock.theta, stock.vega) == (250.0, 0.0, 0.0, 0.0)
    assert stock.beta_delta == pytest.approx(250 * 2.0 * 180.0 / 600.0)
    assert position_greeks(None, 5, 100, 100.0, 1.0, 500.0) == PositionGreeks()
    no_spy = position_greeks(g, 1, 100, spot=None, beta=1.0, spy_price=None)
    assert no_spy.dollar_delta == pytest.approx(40.0 * 100.0) and no_spy.beta_delta == 0.0


def test_vectorised_position_greeks_match_the_scalar_function():
    rng = np.random.default_rng(3)
    n = 50
    d, gm, th, vg = rng.uniform(-1, 1, n), rng.uniform(0, 0.1, n), rng.uniform(-0.2, 0, n), rng.uniform(0, 0.3, n)
    q, m, s, b = rng.integers(-10, 10, n).astype(float), np.full(n, 100.0), rng.uniform(10, 500, n), rng.uniform(0.5, 2, n)
    d[7] = np.nan                                    # a flagged leg: stays out of the totals
    arrays = position_greeks_arrays(d, gm, th, vg, q, m, s, b, 550.0)
    total = PositionGreeks()
    for i in range(n):
        gi = None if np.isnan(d[i]) else Greeks(d[i], gm[i], th[i], vg[i])
        pi = position_greeks(gi, q[i], m[i], s[i], b[i], 550.0)
        for key in ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta"):
            assert arrays[key][i] == pytest.approx(getattr(pi, key), abs=1e-9)
        total = total + pi
    summed = sum_position_greeks(arrays)
    for key in ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta"):
        assert getattr(summed, key) == pytest.approx(getattr(total, key))
    assert np.all(position_greeks_arrays(d, gm, th, vg, q, m, s, b, None)["beta_delta"] == 0)


def test_expiring_leg_round_trip_through_fill_and_validate():
    now = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)     # expiry day, 3 h to the close
    t = year_fraction(date(2026, 11, 20), now)
    mid = float(ref_price(100.0, 101.0, t, RATE, 0.4, True))
    (g,) = fill_greeks([GreekRequest(9, 100.0, 101.0, True, expiry=date(2026, 11, 20), mid=mid)], now, RATE)
    checked, flags = validate_greeks(g)
    assert flags == () and checked is not None
    assert checked.iv == pytest.approx(0.4, rel=1e-4)
    assert 0 < checked.delta < 0.5 and checked.theta < 0 and checked.gamma > 0
