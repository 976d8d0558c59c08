"""Overview: account, portfolio Greeks, Greeks by underlying, alerts."""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

from dataclasses import dataclass  # noqa: E402

import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from pages.components import common, pnl_explain  # noqa: E402
from v6core.models import GreekSource, PortfolioSnapshot  # noqa: E402

GREEK_NAMES = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")
_ALERT_WRITERS = {"error": st.error, "warning": st.warning, "info": st.info}


def has_data(snapshot: PortfolioSnapshot) -> bool:
    """True once the gateway delivered positions or account values (before that: connecting)."""
    return bool(snapshot.legs) or snapshot.account.updated_at is not None


def account_metrics(snapshot: PortfolioSnapshot) -> dict[str, str]:
    """Label -> shown value for the account row (the AppTests compare against this mapping)."""
    account, live = snapshot.account, has_data(snapshot)
    daily = snapshot.daily_pnl if snapshot.daily_pnl is not None else account.daily_pnl

    def money(value, signed=False):
        return common.fmt_money(value, signed=signed) if live else common.DASH

    return {
        "Net liquidation": money(account.net_liquidation),
        "Daily P&L": money(daily, signed=True),
        "Unrealized P&L": money(snapshot.unrealized_pnl, signed=True),
        "Realized P&L": money(snapshot.realized_pnl, signed=True),
        "Buying power": money(account.buying_power),
        "Margin use": common.fmt_pct(account.margin_use_pct) if live else common.DASH,
    }


def pnl_source_note(snapshot: PortfolioSnapshot) -> str:
    """Where the P&L figures come from: IB's own, or v6's computation where IB sent none."""
    sources = {"Daily": snapshot.daily_pnl_source, "Unrealized": snapshot.unrealized_pnl_source,
               "Realized": snapshot.realized_pnl_source}
    if len(set(sources.values())) == 1:
        return f"Daily, unrealized and realized P&L: {snapshot.daily_pnl_source}"
    return " · ".join(f"{name} P&L: {source}" for name, source in sources.items())


def closed_today_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    """Legs closed (wholly or partly) today: IB's realized P&L and the day's commissions on each."""
    return pd.DataFrame([(c.contract.label, c.quantity_closed, c.realized_pnl, c.commissions, c.fills,
                          "partly" if c.still_held else "closed")
                         for c in snapshot.closed_today],
                        columns=["Leg", "Qty closed", "Realized P&L", "Commissions", "Fills", "Status"])


def greek_metrics(snapshot: PortfolioSnapshot) -> dict[str, str]:
    live = has_data(snapshot)
    return {
        common.GREEK_LABELS[name]: common.fmt_greek(name, getattr(snapshot.totals, name)) if live else common.DASH
        for name in GREEK_NAMES
    }


def attention_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    """The legs behind the runtime's leg alerts, by name: stale quote, Greeks computed, flagged."""
    rows = []
    for leg in snapshot.legs:
        issues = []
        if leg.stale:
            issues.append("stale quote")
        if leg.greeks is not None and leg.greeks.source == GreekSource.COMPUTED:
            issues.append("Greeks computed by v6 (not IB's)")
        issues.extend(leg.flags)
        if issues:
            rows.append((leg.contract.label, "; ".join(issues)))
    return pd.DataFrame(rows, columns=["Leg", "Why"])


def greeks_by_underlying_figure(snapshot: PortfolioSnapshot) -> go.Figure:
    names = ("delta", "gamma", "theta", "vega")
    symbols = [u.symbol for u in snapshot.underlyings]
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=[common.GREEK_LABELS[n] for n in names])
    for col, name in enumerate(names, start=1):
        values = [getattr(u.greeks, name) for u in snapshot.underlyings]
        figure.add_trace(
            go.Bar(x=symbols, y=values, name=name,
                   marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in values],
                   hovertemplate="%{x}: %{y:+,.2f}<extra></extra>"),
            row=1, col=col,
        )
    figure.update_layout(showlegend=False, height=320, margin=dict(l=10, r=10, t=40, b=10))
    return figure


PNL_METRICS = ("Daily P&L", "Unrealized P&L", "Realized P&L")


def _metric_rows(values: dict[str, str], per_row: int = 3) -> None:
    items = list(values.items())
    for start in range(0, len(items), per_row):
        for column, (label, value) in zip(st.columns(per_row), items[start:start + per_row]):
            column.metric(label, common.pnl_metric(value) if label in PNL_METRICS else value, border=True)


@dataclass(frozen=True, slots=True)
class OverviewData:
    """What the page draws from one snapshot, shared by every session (read-only)."""

    account: dict[str, str]
    greeks: dict[str, str]
    attention: pd.DataFrame
    figure: go.Figure | None


def build(snapshot: PortfolioSnapshot) -> OverviewData:
    figure = greeks_by_underlying_figure(snapshot) if snapshot.underlyings else None
    return OverviewData(account_metrics(snapshot), greek_metrics(snapshot), attention_frame(snapshot), figure)


def overview(services) -> None:
    st.title("Overview")
    snapshot = common.live_snapshot(services.runtime)
    data = common.per_snapshot("overview", snapshot, None, lambda: build(snapshot))
    if not has_data(snapshot):
        st.info(f"Connecting to the gateway ({common.connection_line(snapshot.connection)}); "
                "figures appear as data arrives.")

    st.subheader("Account")
    _metric_rows(data.account)
    if has_data(snapshot):
        st.caption(common.plain(pnl_source_note(snapshot)))
    closed = closed_today_frame(snapshot)
    if not closed.empty:
        st.subheader(f"Closed today ({len(closed)})")
        common.show_table(closed, pnl=("Realized P&L",), hide_index=True, key="closed_today", column_config={
            "Qty closed": st.column_config.NumberColumn(format="%,g"),
            "Realized P&L": st.column_config.NumberColumn(format="%+,.2f", help="IB's, from the commission reports"),
            "Commissions": st.column_config.NumberColumn(format="%,.2f", help="Every fill of this leg today"),
        })
    st.subheader("Portfolio Greeks")
    _metric_rows(data.greeks)

    pnl_explain.today_section(getattr(services, "lake", None), services.settings.risk_free_rate)

    st.subheader("Alerts")
    # The runtime raises the alerts (disconnected, stale, computed Greeks, flags, limits); the page
    # only shows them, and names the legs behind them.
    lake_alerts = common.lake_alerts(services)       # history / audit recording, from the services
    for alert in (*lake_alerts, *snapshot.alerts):
        _ALERT_WRITERS.get(alert.level, st.info)(common.plain(alert.message))
    attention = data.attention
    if not attention.empty:
        with st.expander(f"Legs needing attention ({len(attention)})"):
            common.show_table(attention, hide_index=True, key="attention")
    if not snapshot.alerts and not lake_alerts and attention.empty:
        st.success("No alerts.")

    st.subheader("Greeks by underlying")
    if data.figure is not None:
        st.plotly_chart(data.figure, key="greeks_by_underlying")
    else:
        st.caption("No positions yet.")


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(overview)
