"""Indicators against hand-checked values and independent plain-Python references."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from tests.signals.conftest import make_bars
from v6core.signals.indicators import (add_indicators, atr, check_bars, ema, last_macd_cross,
                                       resample_weekly, rsi, sma, summarize)

# StockCharts' RSI worked example (Wilder, 14 periods): closes and the published RSI values,
# the first one on the 15th close.
STOCKCHARTS_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.2778, 44.8320, 45.0850, 45.4170, 45.8442, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]
STOCKCHARTS_RSI = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71,
                   50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77]


def _col(values, expr) -> list:
    return pl.DataFrame({"x": values}).select(expr.alias("out"))["out"].to_list()


def _wilder_reference(values: list[float], period: int) -> list[float | None]:
    """Wilder's smoothing written out by hand: values[0] is ignored (a diff has none)."""
    out: list[float | None] = [None] * len(values)
    if len(values) <= period:
        return out
    avg = sum(values[1:period + 1]) / period
    out[period] = avg
    for i in range(period + 1, len(values)):
        avg = (avg * (period - 1) + values[i]) / period
        out[i] = avg
    return out


def _rsi_reference(closes: list[float], period: int = 14) -> list[float | None]:
    changes = [0.0] + [b - a for a, b in zip(closes, closes[1:])]
    gains = _wilder_reference([max(c, 0.0) for c in changes], period)
    losses = _wilder_reference([max(-c, 0.0) for c in changes], period)
    return [None if g is None else (100.0 if l == 0 else 100 - 100 / (1 + g / l))
            for g, l in zip(gains, losses)]


def _ema_reference(values: list[float], span: int) -> list[float]:
    alpha, out = 2 / (span + 1), [values[0]]
    for v in values[1:]:
        out.append(alpha * v + (1 - alpha) * out[-1])
    return out


def test_sma_on_a_tiny_array():
    assert _col([1.0, 2.0, 3.0, 4.0, 5.0], sma("x", 3)) == [None, None, 2.0, 3.0, 4.0]


def test_ema_on_a_tiny_array_by_hand():
    # span 3 -> alpha 0.5: 1, 1.5, 2.25, 3.125 (null until 3 values exist)
    assert _col([1.0, 2.0, 3.0, 4.0], ema("x", 3)) == [None, None, 2.25, 3.125]


def test_rsi_matches_the_stockcharts_worked_example():
    got = _col(STOCKCHARTS_CLOSES, rsi("x"))
    assert got[:14] == [None] * 14
    assert got[14:] == pytest.approx(STOCKCHARTS_RSI, abs=0.006)


def test_rsi_matches_a_hand_written_wilder_on_a_random_walk():
    rng = random.Random(3)
    closes = [100.0]
    for _ in range(200):
        closes.append(closes[-1] + rng.gauss(0, 1))
    got = _col(closes, rsi("x"))
    want = _rsi_reference(closes)
    assert [g is None for g in got] == [w is None for w in want]
    assert [g for g in got if g is not None] == pytest.approx([w for w in want if w is not None], rel=1e-9)


def test_rsi_edges_only_gains_is_100_and_no_movement_is_50():
    assert _col([float(i) for i in range(20)], rsi("x"))[-1] == 100.0
    assert _col([5.0] * 20, rsi("x"))[-1] == 50.0
    assert _col([float(20 - i) for i in range(20)], rsi("x"))[-1] == 0.0


def test_macd_signal_and_histogram_follow_the_ema_recursion():
    rng = random.Random(5)
    closes = [50 + math.sin(i / 4) * 3 + rng.random() for i in range(120)]
    frame = add_indicators(make_bars(closes))
    macd_ref = [a - b for a, b in zip(_ema_reference(closes, 12), _ema_reference(closes, 26))]
    macd = frame["macd"].to_list()
    assert macd[:25] == [None] * 25
    assert macd[25:] == pytest.approx(macd_ref[25:], rel=1e-9, abs=1e-12)
    # The signal line is an EMA of MACD from MACD's first value, null for its first 9 values.
    signal = frame["macd_signal"].to_list()
    assert signal[:33] == [None] * 33
    signal_from_first_macd = _ema_reference(macd_ref[25:], 9)
    assert signal[33:] == pytest.approx(signal_from_first_macd[8:], rel=1e-9, abs=1e-12)
    assert frame["macd_hist"].to_list()[33:] == pytest.approx(
        [m - s for m, s in zip(macd[33:], signal[33:])], abs=1e-12)


def test_bollinger_uses_population_std_on_1_to_20():
    frame = add_indicators(make_bars([float(i) for i in range(1, 21)]))
    last = frame.row(-1, named=True)
    std = math.sqrt((20 ** 2 - 1) / 12)          # population std of 1..20
    assert last["bb_middle"] == pytest.approx(10.5)
    assert last["bb_upper"] == pytest.approx(10.5 + 2 * std)
    assert last["bb_lower"] == pytest.approx(10.5 - 2 * std)
    assert frame["bb_upper"].to_list()[:19] == [None] * 19


def test_atr_is_wilder_smoothed_true_range():
    bars = make_bars([10, 11, 10.5, 12, 11, 13, 12.5, 12, 14, 13, 15, 14, 16, 15, 17, 16, 18, 17.5],
                     spread=0.02)
    frame = check_bars(bars)
    highs, lows, closes = frame["high"].to_list(), frame["low"].to_list(), frame["close"].to_list()
    tr = [0.0] + [max(h - l, abs(h - pc), abs(l - pc))
                  for h, l, pc in zip(highs[1:], lows[1:], closes[:-1])]
    want = _wilder_reference(tr, 14)
    got = frame.select(atr(14).alias("atr"))["atr"].to_list()
    assert got[:14] == [None] * 14
    assert got[14:] == pytest.approx(want[14:])


def test_volume_average_and_range_columns():
    bars = make_bars([float(100 + i) for i in range(25)]).with_columns(
        pl.Series("volume", [float(1000 * (i + 1)) for i in range(25)]))
    frame = add_indicators(bars)
    # mean of 6000..25000 step 1000 = 15500
    assert frame["volume_sma_20"][-1] == pytest.approx(15_500.0)
    assert frame["high_20"][-1] == pytest.approx(frame["high"].tail(20).max())
    assert frame["low_20"][-1] == pytest.approx(frame["low"].tail(20).min())


def test_weekly_resample_aggregates_ohlcv_by_monday_weeks():
    bars = make_bars([float(i) for i in range(1, 11)])     # two Mon-Fri weeks
    weekly = resample_weekly(bars)
    assert weekly.height == 2
    first = weekly.row(0, named=True)
    assert first["time"] == datetime(2024, 11, 18, tzinfo=timezone.utc)
    assert first["open"] == 1.0 and first["close"] == 5.0
    assert first["high"] == pytest.approx(5.0 * 1.01) and first["low"] == pytest.approx(1.0 * 0.99)
    assert first["volume"] == 5_000_000.0
    assert weekly.row(1, named=True)["close"] == 10.0


def test_bars_must_have_utc_time_and_all_columns():
    bars = make_bars([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="lacks columns: volume"):
        check_bars(bars.drop("volume"))
    naive = bars.with_columns(pl.col("time").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="UTC"):
        check_bars(naive)
    shuffled = bars.reverse()
    assert check_bars(shuffled)["close"].to_list() == [1.0, 2.0, 3.0]


def test_macd_cross_detection_reads_the_histogram_sign_change():
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    frame = pl.DataFrame({"time": [base + timedelta(days=i) for i in range(4)],
                          "macd_hist": [-0.2, -0.1, 0.05, 0.1]})
    assert last_macd_cross(frame) == "bullish"
    assert last_macd_cross(frame.with_columns(-pl.col("macd_hist"))) == "bearish"
    assert last_macd_cross(frame.with_columns(pl.lit(0.3).alias("macd_hist"))) == "none"


def test_summary_reports_latest_values_and_none_without_history():
    frame = add_indicators(make_bars([float(100 + i % 7) for i in range(60)]))
    summary = summarize(frame)
    last = frame.row(-1, named=True)
    assert summary["bars"] == 60 and summary["close"] == last["close"]
    assert summary["sma_200"] is None and summary["close_vs_sma_200_pct"] is None
    assert summary["sma_50"] == pytest.approx(last["sma_50"], abs=1e-4)
    expected_b = (last["close"] - last["bb_lower"]) / (last["bb_upper"] - last["bb_lower"])
    assert summary["bb_percent_b"] == pytest.approx(expected_b, abs=1e-3)
    assert summary["rsi_14"] == pytest.approx(last["rsi_14"], abs=0.01)
