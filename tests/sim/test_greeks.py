"""The model Greeks the sim sends agree with an independent Black-Scholes (scipy) from the
inputs the sim reports, in IB units (theta per calendar day, vega per vol point)."""

from __future__ import annotations

import math

import pytest
from ib_async import Option
from scipy.stats import norm

from tests.sim.conftest import connect, run


def reference_bs(spot, strike, t, rate, iv, right):
    d1 = (math.log(spot / strike) + (rate + iv * iv / 2) * t) / (iv * math.sqrt(t))
    d2 = d1 - iv * math.sqrt(t)
    disc = strike * math.exp(-rate * t)
    if right == "C":
        price = spot * norm.cdf(d1) - disc * norm.cdf(d2)
        delta = norm.cdf(d1)
        theta_year = -spot * norm.pdf(d1) * iv / (2 * math.sqrt(t)) - rate * disc * norm.cdf(d2)
    else:
        price = disc * norm.cdf(-d2) - spot * norm.cdf(-d1)
        delta = -norm.cdf(-d1)
        theta_year = -spot * norm.pdf(d1) * iv / (2 * math.sqrt(t)) + rate * disc * norm.cdf(-d2)
    return {
        "price": price, "delta": delta, "gamma": norm.pdf(d1) / (spot * iv * math.sqrt(t)),
        "vega": spot * norm.pdf(d1) * math.sqrt(t) / 100, "theta": theta_year / 365,
    }


def pick_options(gw):
    picks = []
    for symbol, days, moneyness, right in [("SPY", 0, 1.0, "C"), ("SPY", 40, 0.9, "P"),
                                           ("QQQ", 20, 1.05, "C"), ("TSLA", 60, 0.8, "P"),
                                           ("AAPL", 85, 1.1, "C"), ("IWM", 7, 1.0, "P")]:
        expiries = gw.expiries(symbol)
        expiry = min(expiries, key=lambda d: abs((d - gw.today).days - days))
        strike = min(gw.strikes(symbol), key=lambda k: abs(k - gw.spot(symbol) * moneyness))
        picks.append(gw.lookup(symbol, expiry, strike, right))
    return picks


def test_model_greeks_match_independent_black_scholes(gw):
    gw.freeze()
    options = pick_options(gw)

    async def go():
        ib = await connect(gw.port)
        try:
            contracts = [Option(conId=o.con_id, exchange="SMART") for o in options]
            await ib.qualifyContractsAsync(*contracts)
            return await ib.reqTickersAsync(*contracts)
        finally:
            ib.disconnect()

    tickers = run(go)
    for info, ticker in zip(options, tickers):
        inputs = gw.option_inputs(info.con_id)
        ref = reference_bs(inputs["spot"], inputs["strike"], inputs["t_years"], inputs["rate"],
                           inputs["iv"], inputs["right"])
        g = ticker.modelGreeks
        assert g is not None, info.label
        assert g.impliedVol == pytest.approx(inputs["iv"], rel=1e-9)
        assert g.undPrice == pytest.approx(inputs["spot"], rel=1e-12)
        assert g.optPrice == pytest.approx(ref["price"], rel=1e-6, abs=1e-8), info.label
        assert g.delta == pytest.approx(ref["delta"], rel=1e-6, abs=1e-9), info.label
        assert g.gamma == pytest.approx(ref["gamma"], rel=1e-6, abs=1e-12), info.label
        assert g.vega == pytest.approx(ref["vega"], rel=1e-6, abs=1e-10), info.label
        assert g.theta == pytest.approx(ref["theta"], rel=1e-6, abs=1e-10), info.label
        assert inputs["price"] == pytest.approx(ref["price"], rel=1e-6, abs=1e-8)
        assert ticker.bid <= g.optPrice + 0.05 and g.optPrice <= ticker.ask + 0.05


def test_surface_has_put_skew_and_term_structure(gw):
    spot = gw.spot("SPY")
    expiries = gw.expiries("SPY")
    near = min(expiries, key=lambda d: abs((d - gw.today).days - 30))
    far = expiries[-1]
    atm = min(gw.strikes("SPY"), key=lambda k: abs(k - spot))
    otm_put = min(gw.strikes("SPY"), key=lambda k: abs(k - spot * 0.92))
    iv = lambda e, k, r: gw.option_inputs(gw.lookup("SPY", e, k, r).con_id)["iv"]  # noqa: E731
    assert iv(near, otm_put, "P") > iv(near, atm, "P") + 0.01
    assert iv(far, atm, "C") > iv(near, atm, "C")
    assert 0.08 < iv(near, atm, "C") < 0.3
    tsla = gw.lookup("TSLA", gw.expiries("TSLA")[4],
                     min(gw.strikes("TSLA"), key=lambda k: abs(k - gw.spot("TSLA"))), "C")
    assert gw.option_inputs(tsla.con_id)["iv"] > 0.4


def test_calculate_option_price_and_implied_vol(gw):
    gw.freeze()
    info = pick_options(gw)[1]
    inputs = gw.option_inputs(info.con_id)

    async def go():
        ib = await connect(gw.port)
        try:
            contract = Option(conId=info.con_id, exchange="SMART")
            await ib.qualifyContractsAsync(contract)
            priced = await ib.calculateOptionPriceAsync(contract, 0.25, inputs["spot"])
            implied = await ib.calculateImpliedVolatilityAsync(contract, priced.optPrice,
                                                               inputs["spot"])
            return priced, implied
        finally:
            ib.disconnect()

    priced, implied = run(go)
    ref = reference_bs(inputs["spot"], inputs["strike"], inputs["t_years"], inputs["rate"], 0.25,
                       inputs["right"])
    assert priced.optPrice == pytest.approx(ref["price"], rel=1e-6)
    assert priced.delta == pytest.approx(ref["delta"], rel=1e-6)
    assert implied.impliedVol == pytest.approx(0.25, rel=1e-6)
