"""Greeks & risk: Greeks by underlying and by strategy, risk graphs and price x vol scenario grids.

The curves and grids come from `v6core.risk` (vectorised); this page only formats them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import common
from v6core.models import PortfolioSnapshot

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
    if not snapshot.legs:
        st.info("No positions yet." if snapshot.connection.state.value == "connected"
                else f"Connecting to the gateway ({common.connection_line(snapshot.connection)}).")
        return
    st.caption("Position Greeks: delta in shares, gamma in shares per $1, theta in $ per day, "
               "vega in $ per vol point, beta-weighted delta in SPY shares.")
    st.subheader("By underlying")
    st.dataframe(underlyings_frame(snapshot), column_config=GREEK_COLUMNS, hide_index=True, key="by_underlying")
    st.subheader("By strategy")
    st.dataframe(strategies_frame(snapshot), column_config=GREEK_COLUMNS, hide_index=True, key="by_strategy")


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(greeks_risk)
