"""Greeks & risk: Greeks by underlying and by strategy, risk graphs and price x vol scenario grids.

The curves and grids come from `v6core.risk` (vectorised); this page only formats them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages import common
from v6core import risk
from v6core.models import PortfolioSnapshot

PORTFOLIO = "Portfolio"

GREEK_COLUMNS = {
    "Delta": st.column_config.NumberColumn(format="%+,.1f", help="Share-equivalents"),
    "Gamma": st.column_config.NumberColumn(format="%+,.2f", help="Shares per $1"),
    "Theta $/day": st.column_config.NumberColumn(format="%+,.2f"),
    "Vega $/vol pt": st.column_config.NumberColumn(format="%+,.2f"),
    "Dollar delta": st.column_config.NumberColumn(format="%+,.0f"),
    "Beta delta (SPY sh)": st.column_config.NumberColumn(format="%+,.1f"),
    "P&L": st.column_config.NumberColumn(format="%+,.2f", help="Unrealized P&L ($)"),
    "Day P&L": st.column_config.NumberColumn(format="%+,.2f"),
    "Spot": st.column_config.NumberColumn(format="%,.2f"),
    "Beta": st.column_config.NumberColumn(format="%.2f"),
}


def _greek_values(g) -> tuple[float, ...]:
    return (g.delta, g.gamma, g.theta, g.vega, g.dollar_delta, g.beta_delta)


_GREEK_NAMES = ["Delta", "Gamma", "Theta $/day", "Vega $/vol pt", "Dollar delta", "Beta delta (SPY sh)"]


def underlyings_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(u.symbol, u.spot, u.beta, *_greek_values(u.greeks), u.unrealized_pnl, u.daily_pnl)
            for u in snapshot.underlyings]
    rows.append(("Portfolio", None, None, *_greek_values(snapshot.totals), snapshot.unrealized_pnl,
                 snapshot.daily_pnl))
    return pd.DataFrame.from_records(
        rows, columns=["Underlying", "Spot", "Beta", *_GREEK_NAMES, "P&L", "Day P&L"])


def strategies_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(s.kind, s.underlying, len(s.con_ids), *_greek_values(s.greeks), s.unrealized_pnl, s.daily_pnl)
            for s in snapshot.strategies]
    frame = pd.DataFrame.from_records(
        rows, columns=["Strategy", "Underlying", "Legs", *_GREEK_NAMES, "P&L", "Day P&L"])
    return frame.sort_values(["Underlying", "Strategy"], kind="stable").reset_index(drop=True)


def greeks_risk(services) -> None:
    snapshot = services.runtime.snapshot()
    st.title("Greeks & risk")
    if common.no_legs_notice(snapshot):
        return
    st.caption("Position Greeks: delta in shares, gamma in shares per $1, theta in $ per day, "
               "vega in $ per vol point, beta-weighted delta in SPY shares.")
    st.subheader("By underlying")
    st.dataframe(underlyings_frame(snapshot), column_config=GREEK_COLUMNS, hide_index=True, key="by_underlying")
    st.subheader("By strategy")
    st.dataframe(strategies_frame(snapshot), column_config=GREEK_COLUMNS, hide_index=True, key="by_strategy")
    risk_section(snapshot, services.settings.risk_free_rate)


def risk_section(snapshot: PortfolioSnapshot, rate: float) -> None:
    st.subheader("Risk graph and scenarios")
    symbols = sorted({leg.contract.symbol for leg in snapshot.legs})
    scope = st.segmented_control("Scope", [PORTFOLIO, *symbols], default=PORTFOLIO, key="risk_scope",
                                 label_visibility="collapsed") or PORTFOLIO
    spots = {u.symbol: u.spot for u in snapshot.underlyings if u.spot}
    now = common.utcnow()
    book = risk.prepare_risk(snapshot.legs, now, rate, spots)
    if scope != PORTFOLIO:
        book = book.underlying(scope)
    if len(book) == 0:
        st.info(f"No legs of {scope} can be valued (no underlying price or implied vol yet).")
        return
    left, right = st.columns(2)
    with left:
        st.plotly_chart(risk_graph(book, scope, now, rate, spots), key="risk_graph")
    with right:
        st.plotly_chart(scenario_heatmap(book, scope, now, rate, spots), key="scenario_grid")
    horizon = book.horizon
    st.caption("P&L in $ against today's value. T+0: today at each leg's implied vol; at expiry: "
               f"{horizon:%Y-%m-%d %H:%M %Z} (nearest expiry; later legs valued by Black-Scholes). "
               "Grid: T+0 with every underlying moved by the same % and every option's vol by the "
               "same number of points." if horizon else "P&L in $ against today's value (stock only).")
    skipped = [con_id for con_id, _ in book.skipped]
    if skipped:
        reasons = "; ".join(f"{con_id}: {why}" for con_id, why in book.skipped[:5])
        st.warning(common.plain(f"{len(skipped)} leg(s) left out of the risk figures ({reasons})"))


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
