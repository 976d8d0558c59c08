"""Technical indicators on bars frames (polars, no I/O).

A bars frame has columns `time` (Datetime UTC), `open`, `high`, `low`, `close`, `volume`, sorted
by time. Conventions (stated because indicator libraries differ):
- SMA n: plain mean of the last n closes, null until n bars exist.
- EMA n: alpha = 2 / (n + 1), seeded with the first value (pandas `ewm(adjust=False)`), null for
  the first n - 1 bars.
- RSI 14 and ATR 14: Wilder's smoothing, seeded with the simple mean of the first 14 values,
  then avg = (prev * 13 + current) / 14 (StockCharts' worked example).
- MACD 12/26/9: EMA12 - EMA26, signal EMA9 of MACD, histogram MACD - signal.
- Bollinger 20/2: SMA20 +- 2 population standard deviations (ddof 0, as Bollinger defines it).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")
SMA_WINDOWS = (20, 50, 200)
RSI_PERIOD = 14
ATR_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_WINDOW, BB_STDS = 20, 2.0
VOLUME_WINDOW = 20
RANGE_WINDOW = 20
RSI_OVERBOUGHT, RSI_OVERSOLD = 70.0, 30.0


def check_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """The bars with float prices, sorted by time; raises ValueError naming what is wrong."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns: {', '.join(missing)}")
    dtype = bars.schema["time"]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone != "UTC":
        raise ValueError(f"bars 'time' must be Datetime in UTC, got {dtype}")
    return (bars.select(BAR_COLUMNS)
            .with_columns(pl.col("open", "high", "low", "close", "volume").cast(pl.Float64))
            .sort("time"))


def sma(column: str | pl.Expr, window: int) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.rolling_mean(window, min_samples=window)


def ema(column: str | pl.Expr, span: int) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.ewm_mean(span=span, adjust=False, min_samples=span)


def wilder(values: pl.Expr, period: int) -> pl.Expr:
    """Wilder's smoothing of a series whose first element is null (a diff), seeded with the SMA.

    The seed sits at index `period` (the mean of values 1..period); from there it is an EMA with
    alpha = 1 / period. Writing the seed into an otherwise-null prefix lets polars' ewm do the
    recursion.
    """
    index = pl.int_range(pl.len())
    seed = values.slice(1, period).mean()
    seeded = (pl.when(index < period).then(None)
              .when(index == period).then(seed)
              .otherwise(values))
    return seeded.ewm_mean(alpha=1.0 / period, adjust=False, ignore_nulls=True, min_samples=1)


def rsi(column: str = "close", period: int = RSI_PERIOD) -> pl.Expr:
    change = pl.col(column).diff()
    avg_gain = wilder(change.clip(lower_bound=0.0), period)
    avg_loss = wilder((-change).clip(lower_bound=0.0), period)
    return (pl.when(avg_gain.is_null()).then(None)
            .when((avg_loss == 0) & (avg_gain == 0)).then(50.0)
            .when(avg_loss == 0).then(100.0)
            .otherwise(100.0 - 100.0 / (1.0 + avg_gain / avg_loss)))


def true_range() -> pl.Expr:
    prev_close = pl.col("close").shift(1)
    return pl.max_horizontal(pl.col("high") - pl.col("low"),
                             (pl.col("high") - prev_close).abs(),
                             (pl.col("low") - prev_close).abs())


def atr(period: int = ATR_PERIOD) -> pl.Expr:
    # The first bar has no previous close, so its TR is left out like a diff's first element.
    tr = pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(true_range())
    return wilder(tr, period)


def add_indicators(bars: pl.DataFrame) -> pl.DataFrame:
    """The bars plus every indicator column used by the analysts and charts."""
    frame = check_bars(bars)
    frame = frame.with_columns(
        *(sma("close", n).alias(f"sma_{n}") for n in SMA_WINDOWS),
        rsi().alias("rsi_14"),
        (ema("close", MACD_FAST) - ema("close", MACD_SLOW)).alias("macd"),
        pl.col("close").rolling_std(BB_WINDOW, min_samples=BB_WINDOW, ddof=0).alias("_bb_std"),
        sma("volume", VOLUME_WINDOW).alias("volume_sma_20"),
        atr().alias("atr_14"),
        pl.col("low").rolling_min(RANGE_WINDOW, min_samples=1).alias("low_20"),
        pl.col("high").rolling_max(RANGE_WINDOW, min_samples=1).alias("high_20"),
    )
    return frame.with_columns(
        ema("macd", MACD_SIGNAL).alias("macd_signal"),
        pl.col("sma_20").alias("bb_middle"),
        (pl.col("sma_20") + BB_STDS * pl.col("_bb_std")).alias("bb_upper"),
        (pl.col("sma_20") - BB_STDS * pl.col("_bb_std")).alias("bb_lower"),
    ).with_columns(
        (pl.col("macd") - pl.col("macd_signal")).alias("macd_hist"),
    ).drop("_bb_std")


def resample_weekly(daily: pl.DataFrame) -> pl.DataFrame:
    """Weekly bars (weeks starting Monday, labelled by their Monday) from daily bars."""
    frame = check_bars(daily)
    return (frame.group_by_dynamic("time", every="1w", label="left", closed="left")
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum())
            .sort("time"))


def _num(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def last_macd_cross(frame: pl.DataFrame, lookback: int = 5) -> str:
    """"bullish" / "bearish" if MACD crossed its signal within the last `lookback` bars, else "none"."""
    hist = frame["macd_hist"].drop_nulls().tail(lookback + 1).to_list()
    for prev, cur in reversed(list(zip(hist, hist[1:]))):
        if prev <= 0 < cur:
            return "bullish"
        if prev >= 0 > cur:
            return "bearish"
    return "none"


def summarize(frame: pl.DataFrame) -> dict[str, Any]:
    """The latest values of an indicator frame, as plain numbers (None where not enough bars)."""
    if frame.height == 0:
        return {"bars": 0}
    last = frame.row(-1, named=True)
    close = float(last["close"])
    summary: dict[str, Any] = {
        "bars": frame.height,
        "last_bar": last["time"].strftime("%Y-%m-%d"),
        "close": _num(close),
    }
    for n in SMA_WINDOWS:
        value = _num(last[f"sma_{n}"])
        summary[f"sma_{n}"] = value
        summary[f"close_vs_sma_{n}_pct"] = None if value is None else _num((close / value - 1) * 100, 2)
    summary["rsi_14"] = _num(last["rsi_14"], 2)
    summary["macd"] = _num(last["macd"])
    summary["macd_signal"] = _num(last["macd_signal"])
    summary["macd_hist"] = _num(last["macd_hist"])
    summary["macd_cross_recent"] = last_macd_cross(frame) if last["macd_hist"] is not None else "none"
    summary["bb_upper"] = _num(last["bb_upper"])
    summary["bb_middle"] = _num(last["bb_middle"])
    summary["bb_lower"] = _num(last["bb_lower"])
    upper, lower = last["bb_upper"], last["bb_lower"]
    summary["bb_percent_b"] = (None if upper is None or lower is None or upper == lower
                               else _num((close - lower) / (upper - lower), 3))
    summary["volume"] = _num(last["volume"], 0)
    vol_avg = last["volume_sma_20"]
    summary["volume_vs_avg_20"] = None if not vol_avg else _num(last["volume"] / vol_avg, 2)
    summary["atr_14"] = _num(last["atr_14"])
    summary["low_20"] = _num(last["low_20"])
    summary["high_20"] = _num(last["high_20"])
    return summary
