"""P&L explained: the waterfall, the table by strategy (drill to legs) and "today so far".

Pages call `history_section` (History) and `today_section` (Overview). The numbers come from
`v6core.explain` over the lake's recorded versions; explanations are kept in one process-wide
cache keyed by the versions, so reruns and other tabs asking the same question cost nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timezone

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from pages.components import common
from v6core.explain import COMPONENT_LABELS, COMPONENTS, ExplainCache, Explanation, Mode, trading_day_span
from v6core.lake import LakeError

UTC = timezone.utc
GREEN, RED, BLUE = "#2ca02c", "#d62728", "#1f77b4"
MODES = {"Greeks (start Greeks × recorded changes)": Mode.GREEKS,
         "Full revaluation (Black–Scholes repricing)": Mode.REVALUATION}

_CACHE = ExplainCache(size=32)


def _components(result: Explanation) -> list[str]:
    return [c for c in COMPONENTS if c != "approximation" or result.mode is Mode.REVALUATION]


# ---------------------------------------------------------------- figures and tables

def waterfall_figure(result: Explanation, height: int = 420) -> go.Figure:
    """Start P&L → each component → end P&L, gains green, losses red, the two totals blue."""
    steps = result.waterfall()
    labels = [label for label, _ in steps]
    values = [value for _, value in steps]
    measures = ["absolute", *["relative"] * (len(steps) - 2), "total"]
    figure = go.Figure(go.Waterfall(
        x=labels, y=values, measure=measures, text=[common.fmt_money(v, signed=True) for v in values],
        textposition="outside", cliponaxis=False, connector={"line": {"color": "#999", "dash": "dot"}},
        increasing={"marker": {"color": GREEN}}, decreasing={"marker": {"color": RED}},
        totals={"marker": {"color": BLUE}}, hovertemplate="%{x}: %{y:$,.2f}<extra></extra>"))
    figure.update_layout(height=height, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 40},
                         yaxis={"tickprefix": "$", "tickformat": ",.0f", "automargin": True},
                         xaxis={"automargin": True})
    return figure


def _colour(value: float) -> str:
    if not isinstance(value, float) or abs(value) < 0.005:       # float dust shows as $0.00: no colour
        return ""
    return f"color: {GREEN}" if value > 0 else f"color: {RED}"


def money_table(frame: pl.DataFrame, keys: dict[str, str], components: list[str]):
    """A pandas Styler: key columns renamed, money as signed dollars, gains green, losses red."""
    money = {"actual": "Actual", **{c: COMPONENT_LABELS[c] for c in components}, "commissions": "Commissions"}
    shown = frame.select(*keys, *money).rename({**keys, **money}).to_pandas()
    signed = [v for k, v in money.items() if k != "commissions"]
    return (shown.style.format(lambda v: common.fmt_money(v, signed=True), subset=signed)
            .format(common.fmt_money, subset=["Commissions"]).map(_colour, subset=signed))


LEG_KEYS = {"label": "Contract", "status": "Change", "quantity_start": "Qty start", "quantity_end": "Qty end"}


def legs_table(result: Explanation, strategy_id: str):
    legs = result.legs.filter(pl.col("strategy_id") == strategy_id)
    styler = money_table(legs, LEG_KEYS, _components(result))
    styler.data["Notes"] = legs["notes"].to_list()
    return styler.format("{:+,g}", subset=["Qty start", "Qty end"])


# ---------------------------------------------------------------- shared body

def _get(lake, v0: int, v1: int, mode: Mode, rate: float, path: bool) -> Explanation:
    return _CACHE.get(lake, v0, v1, mode=mode, rate=rate, path=path)


def _headline(result: Explanation) -> None:
    explained = result.actual - result.residual
    cols = st.columns(4)
    cols[0].metric("P&L change", common.pnl_metric(common.fmt_money(result.actual, signed=True)), border=True)
    cols[1].metric("Explained", common.pnl_metric(common.fmt_money(explained, signed=True)), border=True)
    cols[2].metric("Trades", common.pnl_metric(common.fmt_money(result.component("trades"), signed=True)), border=True)
    cols[3].metric("Residual", common.pnl_metric(common.fmt_money(result.residual, signed=True)), border=True,
                   help="Actual minus explained, never hidden")
    for warning in result.warnings:
        st.warning(common.plain(warning), icon="⚠️")


def explanation_body(result: Explanation, key: str) -> None:
    """Headline, warnings, waterfall, by strategy (drill to legs), by underlying."""
    _headline(result)
    st.plotly_chart(waterfall_figure(result), key=f"{key}_waterfall")
    components = _components(result)
    st.markdown("**By strategy**")
    st.dataframe(money_table(result.by_strategy, {"strategy_id": "Strategy", "kind": "Kind",
                                                  "underlying": "Underlying", "legs": "Legs",
                                                  "large_residual": "Large residual"}, components),
                 hide_index=True, key=f"{key}_strategies")
    strategies = result.by_strategy["strategy_id"].to_list()
    if strategies:
        chosen = st.selectbox("Legs of strategy", strategies, key=f"{key}_drill")
        st.dataframe(legs_table(result, chosen), hide_index=True, key=f"{key}_legs")
    st.markdown("**By underlying**")
    st.dataframe(money_table(result.by_underlying, {"underlying": "Underlying", "legs": "Legs",
                                                    "large_residual": "Large residual"}, components),
                 hide_index=True, key=f"{key}_underlyings")
    if result.mode is Mode.REVALUATION:
        row = result.book.row(0, named=True)
        st.caption("What the Greeks approximation missed, by repricing: "
                   f"spot {common.fmt_money(row['approx_spot'], signed=True)}, "
                   f"IV {common.fmt_money(row['approx_vol'], signed=True)}, "
                   f"time {common.fmt_money(row['approx_time'], signed=True)}. "
                   "The residual left is marks against the model (quote mids, rates, stale ticks).")


# ---------------------------------------------------------------- History

def _version_of(versions: pl.DataFrame, v: int) -> int:
    return int(versions.filter(pl.col("version") <= v)["version"][-1])


def _pick(lake, versions: pl.DataFrame) -> tuple[int | None, int | None]:
    first, last = int(versions["version"][0]), int(versions["version"][-1])
    day = trading_day_span(lake)
    mode = st.radio("Between", ["Versions", "Date-times (UTC)"], horizontal=True, key="explain_pick")
    left, right = st.columns(2)
    if mode == "Versions":
        v0 = left.number_input("From version", first, last, value=day[0] if day else first, step=1,
                               key="explain_v1")
        v1 = right.number_input("To version", first, last, value=last, step=1, key="explain_v2")
        return _version_of(versions, int(v0)), _version_of(versions, int(v1))
    t0, t1 = versions["snapshot_time"][0], versions["snapshot_time"][-1]
    d0 = left.date_input("From date", value=t0.date(), key="explain_d1")
    h0 = left.time_input("From time", value=t0.time().replace(microsecond=0), step=60, key="explain_t1")
    d1 = right.date_input("To date", value=t1.date(), key="explain_d2")
    h1 = right.time_input("To time", value=t1.time().replace(microsecond=0), step=60, key="explain_t2")
    return (lake.version_at(datetime.combine(d0, h0 or time(0), tzinfo=UTC)),
            lake.version_at(datetime.combine(d1, h1 or time(0), tzinfo=UTC)))


def history_section(lake, versions: pl.DataFrame, rate: float) -> None:
    """Pick two recorded points; show why the P&L moved between them."""
    st.subheader("P&L explained")
    v0, v1 = _pick(lake, versions)
    if v0 is None or v1 is None:
        st.warning("One of the moments is before the first snapshot.")
        return
    if v1 < v0:
        st.warning(f"The end (version {v1}) is before the start (version {v0}).")
        return
    left, right = st.columns(2)
    mode = MODES[left.radio("Method", list(MODES), key="explain_mode")]
    path = right.checkbox("Step through every recorded version in between", key="explain_path",
                          help="Each step uses the Greeks recorded at its own start: fresher Greeks, "
                               "smaller residual, one read per version")
    try:
        result = _get(lake, v0, v1, mode, rate, path)
    except (LakeError, ValueError) as exc:       # a vacuumed version, a moment before the history
        st.error(f"Cannot explain version {v0} → {v1}: {common.plain(exc)}")
        return
    steps = f" in {result.steps} steps" if result.steps > 1 else ""
    st.caption(f"Version {v0} ({result.start.time:%Y-%m-%d %H:%M:%S} UTC) → version {v1} "
               f"({result.end.time:%Y-%m-%d %H:%M:%S} UTC){steps}; from the recorded versions and fills only.")
    explanation_body(result, "explain")


# ---------------------------------------------------------------- Overview

def today_section(lake, rate: float) -> None:
    """'Today so far': the first recorded version of the trading day against the latest."""
    st.subheader("P&L today so far, explained")
    try:
        span = trading_day_span(lake) if lake is not None else None
    except LakeError as exc:     # a damaged portfolio table: the alerts name it; the page goes on
        st.caption(f"Today so far is unavailable: {common.plain(exc)}")
        return
    if span is None or span[0] == span[1]:
        st.caption("Needs two recorded versions today (the lake records one a minute while connected).")
        return
    try:
        result = _get(lake, span[0], span[1], Mode.GREEKS, rate, False)
    except (LakeError, ValueError) as exc:
        st.caption(f"Today so far is unavailable: {common.plain(exc)}")
        return
    st.caption(f"Since {result.start.time:%H:%M} UTC (version {span[0]}) to {result.end.time:%H:%M} UTC "
               f"(version {span[1]}); the History page explains any other span.")
    _headline(result)
    st.plotly_chart(waterfall_figure(result, height=320), key="today_waterfall")

