"""The rule analyst on constructed series and on hand-made indicator summaries."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.signals.conftest import downtrend, flat, make_bars, uptrend
from v6core.signals.indicators import add_indicators, resample_weekly, summarize
from v6core.signals.rules import InsufficientData, analyse_with_rules, evaluate_rules
from v6core.signals.schema import Action, AnalystInput, Confidence


def input_from_closes(closes, symbol="SPY") -> AnalystInput:
    bars = make_bars(closes)
    daily = add_indicators(bars)
    weekly = add_indicators(resample_weekly(bars))
    return AnalystInput(symbol=symbol, as_of=datetime.now(timezone.utc),
                        reference_price=float(closes[-1]), price_source="last daily close",
                        daily=summarize(daily), weekly=summarize(weekly), recent_bars=(), exposure={})


def input_from_summary(**daily) -> AnalystInput:
    base = {"close": 100.0, "sma_20": 100.0, "sma_50": 100.0, "sma_200": 100.0, "rsi_14": 50.0,
            "macd_hist": 0.0, "macd_cross_recent": "none", "bb_percent_b": 0.5, "atr_14": 2.0,
            "low_20": 95.0, "high_20": 105.0}
    base.update(daily)
    return AnalystInput(symbol="SPY", as_of=datetime.now(timezone.utc), reference_price=100.0,
                        price_source="last daily close", daily=base, weekly={}, recent_bars=(),
                        exposure={})


def test_uptrend_is_a_buy_with_coherent_prices():
    inp = input_from_closes(uptrend())
    signal = analyse_with_rules(inp)
    assert signal.action is Action.BUY and signal.trend == "UP"
    assert signal.confidence in (Confidence.MEDIUM, Confidence.HIGH)
    assert signal.stop < signal.entry < signal.target
    assert signal.entry == pytest.approx(inp.reference_price, abs=0.005)   # the price, in cents
    atr = inp.daily["atr_14"]
    assert signal.entry - signal.stop == pytest.approx(2 * atr, abs=0.011)
    assert signal.target - signal.entry == pytest.approx(3 * atr, abs=0.011)
    assert all(round(p, 2) == p for p in (signal.entry, signal.stop, signal.target))
    assert signal.risk_reward == pytest.approx(1.5)
    assert signal.reasoning.startswith("Rule-based analysis (not an LLM)")
    assert any("SMA stack bullish" in f for f in signal.key_factors)


def test_downtrend_is_a_sell_with_coherent_prices():
    signal = analyse_with_rules(input_from_closes(downtrend()))
    assert signal.action is Action.SELL and signal.trend == "DOWN"
    assert signal.target < signal.entry < signal.stop
    assert any("SMA stack bearish" in f for f in signal.key_factors)


def test_flat_market_is_a_low_confidence_hold_without_prices():
    signal = analyse_with_rules(input_from_closes(flat()))
    assert signal.action is Action.HOLD and signal.confidence is Confidence.LOW
    assert signal.trend == "SIDEWAYS"
    assert (signal.entry, signal.stop, signal.target) == (None, None, None)


def test_rsi_extremes_count_against_the_stretch():
    overbought = evaluate_rules(input_from_summary(rsi_14=82.0))
    oversold = evaluate_rules(input_from_summary(rsi_14=18.0))
    assert [(h.rule, h.points) for h in overbought] == [("rsi", -1.0)]
    assert [(h.rule, h.points) for h in oversold] == [("rsi", 1.0)]
    assert "overbought" in overbought[0].text and "oversold" in oversold[0].text


def test_a_sharp_drop_after_a_flat_stretch_reads_oversold():
    closes = flat(250) + [100.0 - 2.0 * (i + 1) for i in range(8)]
    inp = input_from_closes(closes)
    assert inp.daily["rsi_14"] < 30
    hits = {h.rule: h for h in evaluate_rules(inp)}
    assert hits["rsi"].points == 1.0
    assert hits["bollinger"].points == 0.5            # closed below the lower band


def test_net_score_maps_to_action_and_confidence():
    # full bullish stack (+2) + bullish MACD cross (+1) = +3 -> BUY, 45 + 15 = 60 MEDIUM
    inp = input_from_summary(close=110.0, sma_20=106.0, sma_50=103.0, sma_200=100.0,
                             macd_cross_recent="bullish")
    signal = analyse_with_rules(inp)
    assert signal.action is Action.BUY and signal.confidence_score == 60.0
    assert signal.confidence is Confidence.MEDIUM
    # bearish stack (-2) + bearish cross (-1) + close below the lower band (+0.5) = -2.5
    # -> SELL, 45 + 15 * 0.5 = 52.5
    inp = input_from_summary(close=90.0, sma_20=94.0, sma_50=97.0, sma_200=100.0,
                             macd_cross_recent="bearish", bb_percent_b=-0.1)
    signal = analyse_with_rules(inp)
    assert signal.action is Action.SELL and signal.confidence_score == 52.5


def test_without_enough_bars_the_rules_refuse():
    with pytest.raises(InsufficientData):
        analyse_with_rules(input_from_closes(uptrend(30)))


def test_rules_atr_floor_keeps_a_plan_on_a_perfectly_smooth_series():
    inp = input_from_summary(close=110.0, sma_20=106.0, sma_50=103.0, sma_200=100.0, atr_14=0.0,
                             macd_cross_recent="bullish")
    signal = analyse_with_rules(inp)
    assert signal.entry - signal.stop == pytest.approx(2 * 0.01 * 100.0, abs=0.011)
