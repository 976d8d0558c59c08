"""Plotly figures of an indicator frame: candlesticks with SMA and Bollinger overlays, and
volume, RSI and MACD panels. Built in the core; pages only display them."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from v6core.signals.indicators import RSI_OVERBOUGHT, RSI_OVERSOLD, SMA_WINDOWS

DEFAULT_BARS_SHOWN = {"daily": 250, "weekly": 156}
SMA_COLOURS = {20: "#1f77b4", 50: "#ff7f0e", 200: "#9467bd"}
UP_COLOUR, DOWN_COLOUR = "#26a69a", "#ef5350"
PANEL_TITLES = ("Price", "Volume", "RSI 14", "MACD 12/26/9")


def _values(frame: pl.DataFrame, column: str) -> list:
    return frame[column].to_list()


def build_chart(frame: pl.DataFrame, symbol: str, timeframe: str,
                bars: int | None = None) -> go.Figure:
    """The chart of the last `bars` rows of an indicator frame (see indicators.add_indicators)."""
    shown = frame.tail(bars or DEFAULT_BARS_SHOWN.get(timeframe, 250))
    x = _values(shown, "time")
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[0.55, 0.12, 0.15, 0.18], subplot_titles=PANEL_TITLES)

    fig.add_trace(go.Candlestick(
        x=x, open=_values(shown, "open"), high=_values(shown, "high"), low=_values(shown, "low"),
        close=_values(shown, "close"), name=symbol,
        increasing_line_color=UP_COLOUR, decreasing_line_color=DOWN_COLOUR), row=1, col=1)
    for n in SMA_WINDOWS:
        fig.add_trace(go.Scatter(x=x, y=_values(shown, f"sma_{n}"), name=f"SMA {n}", mode="lines",
                                 line={"width": 1.2, "color": SMA_COLOURS[n]}), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=_values(shown, "bb_upper"), name="BB upper", mode="lines",
                             line={"width": 0.8, "color": "#888", "dash": "dot"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=_values(shown, "bb_lower"), name="BB lower", mode="lines",
                             line={"width": 0.8, "color": "#888", "dash": "dot"},
                             fill="tonexty", fillcolor="rgba(136,136,136,0.08)"), row=1, col=1)

    closes, opens = _values(shown, "close"), _values(shown, "open")
    colours = [UP_COLOUR if c >= o else DOWN_COLOUR for c, o in zip(closes, opens)]
    fig.add_trace(go.Bar(x=x, y=_values(shown, "volume"), name="Volume", marker_color=colours),
                  row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=_values(shown, "volume_sma_20"), name="Volume SMA 20",
                             mode="lines", line={"width": 1, "color": "#555"}), row=2, col=1)

    fig.add_trace(go.Scatter(x=x, y=_values(shown, "rsi_14"), name="RSI 14", mode="lines",
                             line={"width": 1.2, "color": "#8c564b"}), row=3, col=1)
    for level in (RSI_OVERBOUGHT, RSI_OVERSOLD):
        fig.add_hline(y=level, line={"width": 0.8, "dash": "dash", "color": "#999"}, row=3, col=1)

    hist = _values(shown, "macd_hist")
    fig.add_trace(go.Bar(x=x, y=hist, name="MACD hist",
                         marker_color=[UP_COLOUR if (h or 0) >= 0 else DOWN_COLOUR for h in hist]),
                  row=4, col=1)
    fig.add_trace(go.Scatter(x=x, y=_values(shown, "macd"), name="MACD", mode="lines",
                             line={"width": 1.2, "color": "#1f77b4"}), row=4, col=1)
    fig.add_trace(go.Scatter(x=x, y=_values(shown, "macd_signal"), name="Signal", mode="lines",
                             line={"width": 1.2, "color": "#ff7f0e"}), row=4, col=1)

    fig.update_yaxes(range=[0, 100], row=3, col=1)
    fig.update_layout(title=f"{symbol} {timeframe}", height=820, showlegend=True,
                      xaxis_rangeslider_visible=False, margin={"l": 40, "r": 20, "t": 60, "b": 30},
                      legend={"orientation": "h", "y": -0.05})
    return fig
