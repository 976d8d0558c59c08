"""Greeks & risk: Greeks by underlying and by strategy, risk graphs and price x vol scenario grids.

The curves and grids come from `v6core.risk` (vectorised); this page only formats them.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from pages.components import common  # noqa: E402
from v6core import risk  # noqa: E402
from v6core.models import PortfolioSnapshot  # noqa: E402

PORTFOLIO = "Portfolio"

GREEK_COLUMNS = {
    "Delta": st.column_config.NumberColumn(format="%+,.1f", help="Share-equivalents"),
    "Gamma": st.column_config.NumberColumn(format="%+,.2f", help="Shares per $1"),
    "Theta $/day": st.column_config.NumberColumn(format="%+,.2f"),
    "Vega $/vol pt": st.column_config.NumberColumn(format="%+,.2f"),
    "Dollar delta": st.column_config.NumberColumn(format="%+,.0f"),
    "Beta-weighted delta (SPY sh)": st.column_config.NumberColumn(format="%+,.1f"),
    "P&L": st.column_config.NumberColumn(format="%+,.2f", help="Unrealized P&L ($)"),
    "Day P&L": st.column_config.NumberColumn(format="%+,.2f"),
    "Underlying price": st.column_config.NumberColumn(format="%,.2f"),
    "Beta": st.column_config.NumberColumn(format="%.2f"),
}


def _greek_values(g) -> tuple[float, ...]:
    return (g.delta, g.gamma, g.theta, g.vega, g.dollar_delta, g.beta_delta)


_GREEK_NAMES = ["Delta", "Gamma", "Theta $/day", "Vega $/vol pt", "Dollar delta", "Beta-weighted delta (SPY sh)"]


def underlyings_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(u.symbol, u.spot, u.beta, *_greek_values(u.greeks), u.unrealized_pnl, u.daily_pnl)
            for u in snapshot.underlyings]
    rows.append(("Portfolio", None, None, *_greek_values(snapshot.totals), snapshot.unrealized_pnl,
                 snapshot.daily_pnl))
    return pd.DataFrame.from_records(
        rows, columns=["Underlying", "Underlying price", "Beta", *_GREEK_NAMES, "P&L", "Day P&L"])


def strategies_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(s.kind, s.underlying, len(s.con_ids), *_greek_values(s.greeks), s.unrealized_pnl, s.daily_pnl)
            for s in snapshot.strategies]
    frame = pd.DataFrame.from_records(
        rows, columns=["Strategy", "Underlying", "Legs", *_GREEK_NAMES, "P&L", "Day P&L"])
    return frame.sort_values(["Underlying", "Strategy"], kind="stable").reset_index(drop=True)


def greeks_risk(services) -> None:
    snapshot = common.live_snapshot(services.runtime)
    st.title("Greeks & risk")
    if common.no_legs_notice(snapshot):
        return
    st.caption("Position Greeks: delta in shares, gamma in shares per $1, theta in $ per day, "
               "vega in $ per vol point, beta-weighted delta in SPY shares.")
    tables = common.per_snapshot("greeks_risk.tables", snapshot, None,
                                 lambda: (styled(underlyings_frame(snapshot)), styled(strategies_frame(snapshot))))
    st.subheader("By underlying")
    st.dataframe(tables[0], column_config=GREEK_COLUMNS, hide_index=True, key="by_underlying")
    st.subheader("By strategy")
    st.dataframe(tables[1], column_config=GREEK_COLUMNS, hide_index=True, key="by_strategy")
    risk_section(snapshot, services.settings.risk_free_rate)


def styled(frame: pd.DataFrame):
    return common.frozen_style(common.style_pnl(frame, ("P&L", "Day P&L")))


@dataclass(frozen=True, slots=True)
class RiskView:
    """The risk graph, the scenario grid and their notes for one scope of one snapshot."""

    graph: go.Figure | None
    grid: go.Figure | None
    note: str
    skipped: str


def build_risk(snapshot: PortfolioSnapshot, scope: str, rate: float) -> RiskView:
    spots = {u.symbol: u.spot for u in snapshot.underlyings if u.spot}
    # The snapshot's time, not the clock: the result depends on the snapshot alone and is shared.
    now = snapshot.built_at
    book = risk.prepare_risk(snapshot.legs, now, rate, spots)
    if scope != PORTFOLIO:
        book = book.underlying(scope)
    if len(book) == 0:
        return RiskView(None, None, f"No legs of {scope} can be valued (no underlying price or implied vol yet).", "")
    horizon = book.horizon
    note = ("P&L in $ against today's value. T+0: today at each leg's implied vol; at expiry: "
            f"{common.fmt_time(horizon, seconds=False, exchange=True)} (nearest expiry; later legs valued by "
            "Black-Scholes). Grid: T+0 with every underlying moved by the same % and every option's vol "
            "by the same number of points." if horizon else "P&L in $ against today's value (stock only).")
    labels = {leg.contract.con_id: leg.contract.label for leg in snapshot.legs}
    skipped = ""
    if book.skipped:
        reasons = "; ".join(f"{labels.get(con_id, 'a leg')}: {why}" for con_id, why in book.skipped[:5])
        skipped = f"{len(book.skipped)} leg(s) left out of the risk figures ({reasons})"
    return RiskView(risk_graph(book, scope, now, rate, spots), scenario_heatmap(book, scope, now, rate, spots),
                    note, skipped)


def risk_section(snapshot: PortfolioSnapshot, rate: float) -> None:
    st.subheader("Risk graph and scenarios")
    symbols = sorted({leg.contract.symbol for leg in snapshot.legs})
    scope = st.segmented_control("Scope", [PORTFOLIO, *symbols], default=PORTFOLIO, key="risk_scope",
                                 label_visibility="collapsed") or PORTFOLIO
    view = common.per_snapshot("greeks_risk.risk", snapshot, (scope, rate),
                               lambda: build_risk(snapshot, scope, rate))
    if view.graph is None:
        st.info(view.note)
        return
    left, right = st.columns(2)
    with left:
        st.plotly_chart(view.graph, key="risk_graph")
    with right:
        st.plotly_chart(view.grid, key="scenario_grid")
    st.caption(view.note)
    if view.skipped:
        st.warning(common.plain(view.skipped))


def risk_graph(book, scope: str, now, rate: float, spots) -> go.Figure:
    if scope == PORTFOLIO:
        moves = np.linspace(-15.0, 15.0, 41)   # 0.75 % steps: smooth enough, half the pricing work
        curves = risk.portfolio_risk_curves(book, moves, now, rate, spots=spots)
        x, x_title, marker = curves["move_pct"], "Every underlying moved by (%)", 0.0
        hover = "%{x:+.1f}%: %{y:+,.0f} $<extra>%{fullData.name}</extra>"
    else:
        spot = spots.get(scope) or float(book.spot[0])
        curves = risk.risk_curves(book, risk.spot_grid(spot, points=61), now, rate, spots=spots)
        x, x_title, marker = curves["spot"], f"{scope} price", spot
        hover = "%{x:,.2f}: %{y:+,.0f} $<extra>%{fullData.name}</extra>"
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=x, y=curves["t0_pnl"], name="T+0 (today)", hovertemplate=hover))
    figure.add_trace(go.Scatter(x=x, y=curves["expiry_pnl"], name="At expiry", line=dict(dash="dash"),
                                hovertemplate=hover))
    figure.add_hline(y=0, line_width=1, line_color="gray")
    figure.add_vline(x=marker, line_width=1, line_dash="dot", line_color="gray")
    figure.update_layout(title=f"{scope}: P&L ($) vs underlying", xaxis_title=x_title, yaxis_title="P&L ($)",
                         height=420, margin=dict(l=10, r=10, t=50, b=10),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return figure


def scenario_heatmap(book, scope: str, now, rate: float, spots) -> go.Figure:
    prices, vols = risk.PRICE_SHOCKS_PCT, risk.VOL_SHOCKS_PTS
    matrix = risk.scenario_matrix(book, prices, vols, now, rate, spots=spots)
    text = [[common.fmt_number(v, decimals=0) for v in row] for row in matrix]
    limit = float(np.nanmax(np.abs(matrix))) or 1.0
    figure = go.Figure(go.Heatmap(
        z=matrix, x=[f"{v:+d}" for v in vols], y=[f"{p:+d}%" for p in prices], text=text,
        texttemplate="%{text}", colorscale="RdYlGn", zmid=0, zmin=-limit, zmax=limit,
        hovertemplate="price %{y}, vol %{x} pts: %{text} $<extra></extra>", colorbar=dict(title="$")))
    figure.update_layout(title=f"{scope}: T+0 P&L ($), price × implied vol", xaxis_title="Vol shock (points)",
                         yaxis_title="Price shock", height=420, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis_type="category", yaxis_type="category")
    return figure


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(greeks_risk)
