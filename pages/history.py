"""History: the portfolio as of any recorded version or moment, diffs, long-range charts, maintenance.

Everything comes from `services.lake` (a v6core.lake.LakeReader); a date-time is mapped to the
version current at that moment from the snapshot times recorded in the commits. The page does not
refresh by itself: the operator is reading the past.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

from datetime import datetime, time, timezone  # noqa: E402

import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import polars as pl  # noqa: E402
import streamlit as st  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from pages.components import common  # noqa: E402
from pages.components import pnl_explain  # noqa: E402
from pages.components.leg_table import legs_html  # noqa: E402

UTC = timezone.utc
VERSION_KEY = "history_version"
SLIDER_KEY = "history_version_slider"
GREEKS = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")

# The same columns, in the same order, as the live Positions table.
LEG_COLUMNS = {
    "label": "Contract", "quantity": "Qty", "und_price": "Underlying price", "mark": "Mark",
    "unrealized_pnl": "P&L", "daily_pnl": "Day P&L", "delta": "Delta", "gamma": "Gamma",
    "theta": "Theta $/day", "vega": "Vega $/vol pt", "dte": "DTE", "iv": "IV %", "avg_price": "Avg cost",
    "market_value": "Mkt value", "contract_delta": "Delta/contract", "greeks_source": "Greeks", "stale": "Stale",
}
CHANGE_CONFIG = {
    **{f"{g}_change": st.column_config.NumberColumn(common.GREEK_LABELS[g] + " change", format="%+,.2f")
       for g in GREEKS},
    "unrealized_pnl_change": st.column_config.NumberColumn("P&L change", format="%+,.2f"),
    "daily_pnl_change": st.column_config.NumberColumn("Day P&L change", format="%+,.2f"),
    "market_value_change": st.column_config.NumberColumn("Mkt value change", format="%+,.2f"),
}


# ---------------------------------------------------------------- formatting helpers

def fmt_time(value: datetime | None) -> str:
    """Recorded times in the operator's time zone (the lake stores UTC)."""
    return common.fmt_time(value)


def _moment(day, moment) -> datetime | None:
    """The operator's date and time (in their zone) as an aware time; None while a field is cleared."""
    if day is None:
        return None
    return datetime.combine(day, moment or time(0), tzinfo=common.operator_zone())


def legs_display(legs: pl.DataFrame) -> pd.DataFrame:
    """Recorded legs renamed for display (flags joined to text)."""
    frame = legs.select(*LEG_COLUMNS, pl.col("flags").list.join(", ").alias("Flags"),
                        "strategy_id", "strategy_kind", "symbol")
    return frame.rename(LEG_COLUMNS).with_columns(pl.col("IV %") * 100).to_pandas()


def history_figure(greeks: pl.DataFrame, account: pl.DataFrame, shown: list[str],
                   marked: datetime | None) -> go.Figure:
    """Total position Greeks (top) and net liquidation (bottom) over time, a line at `marked`."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Portfolio Greeks (totals)", "Net liquidation ($)"))
    for name in shown:
        fig.add_trace(go.Scatter(x=greeks["snapshot_time"].to_list(), y=greeks[name].to_list(),
                                 mode="lines", name=common.GREEK_LABELS[name]), row=1, col=1)
    fig.add_trace(go.Scatter(x=account["snapshot_time"].to_list(), y=account["net_liquidation"].to_list(),
                             mode="lines", name="Net liquidation", line={"color": "#888"}), row=2, col=1)
    if marked is not None:
        fig.add_vline(x=marked, line_dash="dot", line_color="#d62728")
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.12})
    return fig


# ---------------------------------------------------------------- sections

BOUNDS_KEY = "history_version_bounds"
SELECTED_KEY = "history_selected"     # survives the version widgets being off screen (date-time mode)


def _set_version(version: int) -> None:
    st.session_state[SELECTED_KEY] = version
    st.session_state[VERSION_KEY] = version
    st.session_state[SLIDER_KEY] = version


def _sync(source: str) -> None:
    _set_version(int(st.session_state[source]))


def _show_newest(last: int) -> None:
    """Button callback: take in the versions recorded since the controls were drawn."""
    first = st.session_state[BOUNDS_KEY][0]
    st.session_state[BOUNDS_KEY] = (first, last)
    _set_version(last)


def choose_version(lake, versions: pl.DataFrame) -> int | None:
    """The version the operator picked, by number or by date-time (mapped on recorded times).

    The slider's and the number's bounds stay as they were when this session first drew them: a
    new snapshot must not move the controls (a slider whose maximum changes is a new widget, and
    it jumped to 0 while the body showed another version). Newer versions are offered by a button.
    """
    first, last = int(versions["version"][0]), int(versions["version"][-1])
    low, high = st.session_state.setdefault(BOUNDS_KEY, (first, last))
    if high > last or low > last:                # the lake was replaced (another path, a vacuum)
        low, high = st.session_state[BOUNDS_KEY] = (first, last)
        _set_version(last)
    selected = min(max(int(st.session_state.setdefault(SELECTED_KEY, high)), low), high)
    st.session_state.setdefault(VERSION_KEY, selected)
    st.session_state.setdefault(SLIDER_KEY, selected)
    zone = common.zone_name()
    mode = st.radio("Choose by", ["Version", f"Date-time ({zone})"], horizontal=True, key="history_mode")
    if mode == "Version":
        left, right = st.columns([3, 1])
        if low < high:
            left.slider("Version", low, high, key=SLIDER_KEY, on_change=_sync, args=(SLIDER_KEY,))
        right.number_input("Version number", low, high, step=1, key=VERSION_KEY,
                           on_change=_sync, args=(VERSION_KEY,))
        if last > high:
            st.button(f"Show the newest ({last - high} newer version(s) recorded)", key="history_newest",
                      on_click=_show_newest, args=(last,))
        # Maintenance commits (vacuum) sit between snapshots: show the snapshot current at them.
        return int(versions.filter(pl.col("version") <= st.session_state[VERSION_KEY])["version"][-1])
    newest = common.local(versions["snapshot_time"][-1])
    left, right = st.columns(2)
    day = left.date_input(f"Date ({zone})", value=newest.date(), key="history_date")
    moment = right.time_input(f"Time ({zone})", value=newest.time().replace(microsecond=0), key="history_time",
                              step=60)
    when = _moment(day, moment)
    if when is None:
        st.info("Pick a date.")
        return None
    version = lake.version_at(when)
    if version is None:
        st.warning(f"{fmt_time(when)} is before the first snapshot ({fmt_time(versions['snapshot_time'][0])}).")
    else:
        st.caption(f"{fmt_time(when)} maps to version {version}, the snapshot current at that moment.")
        if low <= version <= high:
            st.session_state[SELECTED_KEY] = version
    return version


def portfolio_section(lake, version: int) -> None:
    info = lake.snapshot_info(version)
    legs = lake.portfolio(version)
    st.subheader(f"Portfolio as of version {version}")
    st.caption(f"Snapshot {common.plain(info['snapshot_id'])} · recorded {fmt_time(info['snapshot_time'])} · "
               f"app {common.plain(info['app_version'])}")
    account = info["account"]
    cols = st.columns(5)
    cols[0].metric("Net liquidation", common.fmt_money(account.get("net_liquidation")))
    cols[1].metric("Unrealized P&L", common.pnl_metric(common.fmt_money(
        legs["unrealized_pnl"].sum() if legs.height else 0.0, signed=True)))
    cols[2].metric("Delta (shares)", common.fmt_greek("delta", legs["delta"].sum() if legs.height else 0.0))
    cols[3].metric("Theta ($/day)", common.fmt_money(legs["theta"].sum() if legs.height else 0.0, signed=True))
    cols[4].metric("Vega ($/pt)", common.fmt_money(legs["vega"].sum() if legs.height else 0.0, signed=True))
    if legs.height == 0:
        st.info("No positions at this version.")
        return
    frame = legs_display(legs)
    shown = [c for c in frame.columns if c not in ("strategy_id", "strategy_kind", "symbol")]
    for strategy_id, group in frame.groupby("strategy_id", sort=False):
        kind = group["strategy_kind"].iloc[0] or "ungrouped"
        pnl = group["P&L"].sum()
        title = (f"{common.plain(kind)} · {common.plain(group['symbol'].iloc[0])} · {len(group)} leg(s) — "
                 f"P&L {common.colored(common.fmt_money(pnl, signed=True).replace('$', chr(92) + '$'), pnl)} · "
                 f"Delta {common.fmt_greek('delta', group['Delta'].sum())}")
        with st.expander(title, expanded=True):
            # as on Positions: P&L red/green, a dash where a leg has no figure (never "None")
            st.markdown(legs_html(group, shown), unsafe_allow_html=True)


def _pick_pair(lake, versions: pl.DataFrame, selected: int) -> tuple[int | None, int | None]:
    """From the version before the selected one to the selected one, unless the operator picks
    others. The inputs are keyed by the selection, so choosing another version above moves them."""
    first, last = int(versions["version"][0]), int(versions["version"][-1])
    earlier = versions.filter(pl.col("version") < selected)["version"]
    zone = common.zone_name()
    mode = st.radio("Compare", ["Versions", f"Date-times ({zone})"], horizontal=True, key="history_diff_mode")
    left, right = st.columns(2)
    if mode == "Versions":
        v1 = left.number_input("From version", first, max(last, selected),
                               value=int(earlier[-1]) if len(earlier) else first,
                               step=1, key=f"history_diff_v1_{selected}")
        v2 = right.number_input("To version", first, max(last, selected), value=selected, step=1,
                                key=f"history_diff_v2_{selected}")
        return tuple(int(versions.filter(pl.col("version") <= v)["version"][-1]) for v in (v1, v2))
    t0 = common.local(lake.snapshot_info(int(earlier[-1]) if len(earlier) else first)["snapshot_time"])
    t1 = common.local(lake.snapshot_info(selected)["snapshot_time"])
    d1 = left.date_input("From date", value=t0.date(), key=f"history_diff_d1_{selected}")
    h1 = left.time_input("From time", value=t0.time().replace(microsecond=0), step=60,
                         key=f"history_diff_t1_{selected}")
    d2 = right.date_input("To date", value=t1.date(), key=f"history_diff_d2_{selected}")
    h2 = right.time_input("To time", value=t1.time().replace(microsecond=0), step=60,
                          key=f"history_diff_t2_{selected}")
    when1, when2 = _moment(d1, h1), _moment(d2, h2)
    return (lake.version_at(when1) if when1 else None, lake.version_at(when2) if when2 else None)


def diff_section(lake, versions: pl.DataFrame, selected: int) -> None:
    st.subheader("What changed")
    v1, v2 = _pick_pair(lake, versions, selected)
    if v1 is None or v2 is None:
        st.warning("Pick both moments, each after the first snapshot.")
        return
    diff = lake.diff(v1, v2)
    st.caption(f"Version {v1} ({fmt_time(diff.time1)}) → version {v2} ({fmt_time(diff.time2)})")
    totals = diff.totals.row(0, named=True)
    cols = st.columns(5)
    cols[0].metric("Delta", common.fmt_greek("delta", totals["delta_after"]),
                   common.fmt_greek("delta", totals["delta_change"]))
    cols[1].metric("Gamma", common.fmt_greek("gamma", totals["gamma_after"]),
                   common.fmt_greek("gamma", totals["gamma_change"]))
    cols[2].metric("Theta $/day", common.fmt_money(totals["theta_after"], signed=True),
                   common.fmt_money(totals["theta_change"], signed=True))
    cols[3].metric("Vega $/pt", common.fmt_money(totals["vega_after"], signed=True),
                   common.fmt_money(totals["vega_change"], signed=True))
    cols[4].metric("Unrealized P&L", common.fmt_money(totals["unrealized_pnl_after"], signed=True),
                   common.fmt_money(totals["unrealized_pnl_change"], signed=True))
    if diff.legs.height:
        st.markdown("**Legs opened, closed, resized**")
        common.show_table(diff.legs.drop("strategy_id").to_pandas(), hide_index=True, key="history_diff_legs",
                     column_config={"label": st.column_config.TextColumn("Contract"),
                                    "quantity_before": st.column_config.NumberColumn("Qty before", format="%+,.0f"),
                                    "quantity_after": st.column_config.NumberColumn("Qty after", format="%+,.0f"),
                                    "quantity_change": st.column_config.NumberColumn("Qty change", format="%+,.0f"),
                                    "change": st.column_config.TextColumn("Change")})
    else:
        st.caption("No leg was opened, closed or resized.")
    change_cols = [f"{g}_change" for g in GREEKS] + ["unrealized_pnl_change", "daily_pnl_change",
                                                     "market_value_change"]
    st.markdown("**By strategy**")
    common.show_table(diff.by_strategy.select("strategy_id", "kind", "underlying", "status", *change_cols).to_pandas(),
                 hide_index=True, column_config=CHANGE_CONFIG, key="history_diff_strategy")
    st.markdown("**By underlying**")
    common.show_table(diff.by_underlying.select("underlying", "status", *change_cols).to_pandas(),
                 hide_index=True, column_config=CHANGE_CONFIG, key="history_diff_underlying")


def chart_section(lake, marked: datetime | None) -> None:
    st.subheader("Greeks and net liquidation over time")
    shown = st.multiselect("Greeks", list(GREEKS), default=["delta", "theta", "vega"],
                           format_func=lambda g: common.GREEK_LABELS[g], key="history_chart_greeks")
    greeks, account = lake.greeks_history(), lake.account_history()
    if greeks.height == 0:
        st.caption("No aggregate rows yet (they are appended in batches).")
        return
    st.plotly_chart(history_figure(greeks, account, shown, marked), key="history_chart")
    st.caption(f"{greeks.height:,} snapshots from {fmt_time(greeks['snapshot_time'][0])} to "
               f"{fmt_time(greeks['snapshot_time'][-1])}; the dotted line marks the selected version.")


def versions_section(versions: pl.DataFrame) -> None:
    st.subheader(f"Recorded versions ({versions.height:,})")
    shown = versions.reverse().head(500).select("version", "snapshot_time", "snapshot_id", "seq", "legs",
                                                "app_version")
    frame = shown.to_pandas()
    frame["snapshot_time"] = frame["snapshot_time"].dt.tz_convert(common.operator_zone())
    st.dataframe(frame, hide_index=True, key="history_versions",
                 column_config={"snapshot_time": st.column_config.DatetimeColumn(f"Snapshot time ({common.zone_name()})",
                                                                                 format="YYYY-MM-DD HH:mm:ss"),
                                "snapshot_id": st.column_config.TextColumn("Snapshot id")})
    if versions.height > 500:
        st.caption("Newest 500 shown; pick any version above by number or date-time.")


def _run(action: str, call) -> None:
    with st.status(f"{action} ...", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(i: int, n: int, name: str) -> None:
            bar.progress(i / n if n else 1.0, text=f"{name} ({i}/{n})")

        try:
            results = call(progress)
        except Exception as exc:  # a concurrent commit or a locked file: tell the operator, keep the page
            status.update(label=f"{action} failed", state="error")
            st.error(f"{action} failed: {common.plain(exc)}")
            return
        frame = pl.DataFrame([{"table": r.table, "detail": r.detail, "log bytes before": r.log_bytes_before,
                               "log bytes after": r.log_bytes_after} for r in results])
        common.show_table(frame.to_pandas(), hide_index=True, key=f"history_maint_{action}")
        before = sum(r.log_bytes_before for r in results)
        after = sum(r.log_bytes_after for r in results)
        status.update(label=f"{action} done: _delta_log {before:,} → {after:,} bytes", state="complete")


def maintenance_section(lake) -> None:
    st.subheader("Maintenance")
    maintenance = lake.maintenance
    retention = maintenance.retention()
    st.caption("What each table keeps (vacuum deletes unreferenced files older than its retention; "
               "log cleanup drops entries older than the log retention):")
    common.show_table(retention.to_pandas(), hide_index=True, key="history_retention",
                 column_config={"deleted_file_retention_hours": st.column_config.NumberColumn(
                     "Vacuum keeps (h)", format="%,.0f"),
                     "log_retention_hours": st.column_config.NumberColumn("Log kept (h)", format="%,.0f"),
                     "log_bytes": st.column_config.NumberColumn("_delta_log bytes", format="%,d")})
    left, middle, right = st.columns(3)
    if left.button("Checkpoint", key="history_checkpoint", help="Checkpoint every table, drop expired log"):
        _run("Checkpoint", lambda p: maintenance.checkpoint(progress=p))
    if middle.button("Compact", key="history_compact", help="Merge small files of appended tables"):
        _run("Compact", lambda p: maintenance.compact(progress=p))
    with right:
        custom = st.checkbox("Override retention", key="history_vacuum_custom")
        hours = st.number_input("Retention (h)", min_value=0.0, value=168.0, step=24.0,
                                key="history_vacuum_hours", disabled=not custom)
        dry_run = st.checkbox("Dry run (list only)", value=True, key="history_vacuum_dry")
        keeps = (f"{hours:g} h (audit tables keep their own longer retention)" if custom
                 else "each table's own retention (table above)")
        st.caption(f"Vacuum will keep files removed in the last {keeps}. Older portfolio versions "
                   "become unreadable; Greeks and account history stay.")
        if st.button("Vacuum", key="history_vacuum"):
            _run("Vacuum (dry run)" if dry_run else "Vacuum",
                 lambda p: maintenance.vacuum(hours if custom else None, dry_run=dry_run, progress=p))


def history(services) -> None:
    lake = services.lake
    st.title("History")
    if getattr(services, "lake_error", ""):
        st.caption("Read-only: " + common.plain(services.lake_error))
    versions = lake.versions()
    if versions.height == 0:
        st.info("No snapshots recorded yet: the lake writer records one a minute while connected "
                "and one on every position change.")
        maintenance_section(lake)
        return
    st.caption(f"{versions.height:,} versions from {fmt_time(versions['snapshot_time'][0])} "
               f"to {fmt_time(versions['snapshot_time'][-1])}")
    version = choose_version(lake, versions)
    marked = None
    tabs = st.tabs(["Portfolio", "Diff", "P&L explained", "Over time", "Versions", "Maintenance"])
    with tabs[0]:
        if version is None:
            st.info("Pick a moment after the first snapshot.")
        else:
            portfolio_section(lake, version)
            marked = lake.snapshot_info(version)["snapshot_time"]
    with tabs[1]:
        diff_section(lake, versions, version if version is not None else int(versions["version"][-1]))
    with tabs[2]:
        pnl_explain.history_section(lake, versions, services.settings.risk_free_rate)
    with tabs[3]:
        chart_section(lake, marked)
    with tabs[4]:
        versions_section(versions)
    with tabs[5]:
        maintenance_section(lake)


if __name__ == "__main__":  # run as a page by st.navigation
    common.render_page(history, refresh=False)
