"""Positions: every leg, grouped by strategy, with P&L, Greeks, their source and quote age.

One dataframe is built for all legs (500 legs stay fast); each strategy's expander shows its slice.
At the end of each expander the orders helper's `pages.tickets.close_buttons(strategy, legs)`
is called when `pages/tickets.py` exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
from datetime import datetime

import pandas as pd
import pyarrow as pa
import streamlit as st

from pages import common
from v6core.models import PortfolioSnapshot, Strategy

log = logging.getLogger("v6.pages.positions")

UNGROUPED = "ungrouped"
# Each expander costs a styled dataframe and the close widgets: page them so 500 legs stay fast.
STRATEGIES_PER_PAGE = 20
EXPANDED_BY_DEFAULT = 4          # the first strategies of a page open; the rest on a click
PNL_COLUMNS = ("P&L", "P&L %", "Day P&L")
SHOWN_COLUMNS = (
    "Contract", "Qty", "Avg cost", "Mark", "Mkt value", "P&L", "P&L %", "Day P&L",
    "Delta", "Gamma", "Theta $/day", "Vega $/vol pt", "Delta/contract", "IV %", "DTE",
    "Greeks", "Quote age", "Flags",
)
COLUMN_CONFIG = common.LEG_COLUMN_CONFIG


def legs_frame(snapshot: PortfolioSnapshot, now: datetime | None = None) -> pd.DataFrame:
    """One row per leg, sorted by underlying, expiry (stock first), strike, right."""
    now = now or common.utcnow()
    rows = []
    for leg in snapshot.legs:
        c, g, pg = leg.contract, leg.greeks, leg.position_greeks
        rows.append((
            leg.strategy_id or UNGROUPED, c.symbol, c.expiry, c.strike, c.right or "",
            c.label, leg.quantity, leg.avg_price, leg.mark, leg.market_value, leg.unrealized_pnl,
            leg.pnl_pct, leg.daily_pnl, pg.delta, pg.gamma, pg.theta, pg.vega,
            g.delta if g is not None else None,
            g.iv * 100.0 if g is not None and g.iv is not None else None,
            leg.dte, g.source.value if g is not None else "NONE",
            common.age_seconds(leg.quote_time, now), ", ".join(leg.flags), leg.stale, c.con_id,
        ))
    frame = pd.DataFrame.from_records(rows, columns=[
        "strategy_id", "Underlying", "Expiry", "Strike", "Right", "Contract", "Qty", "Avg cost",
        "Mark", "Mkt value", "P&L", "P&L %", "Day P&L", "Delta", "Gamma", "Theta $/day",
        "Vega $/vol pt", "Delta/contract", "IV %", "DTE", "Greeks", "Quote age", "Flags", "Stale",
        "con_id",
    ])
    frame["Expiry"] = pd.to_datetime(frame["Expiry"])
    for name in ("Strike", "Avg cost", "Mark", "Mkt value", "P&L", "P&L %", "Day P&L",
                 "Delta/contract", "IV %", "Quote age"):
        frame[name] = common.displayable(pd.to_numeric(frame[name], errors="coerce").astype("float64"))
    frame["DTE"] = frame["DTE"].astype("Int64")
    # NaN, inf or 1e306 shares cannot be an integer column: blank, the leg's flag says why
    frame["Qty"] = common.displayable(frame["Qty"].astype("float64")).round().astype("Int64")
    frame = frame.sort_values(["Underlying", "Expiry", "Strike", "Right"], na_position="first", kind="stable")
    return frame.reset_index(drop=True)


def _pnl_color(value) -> str:
    if pd.isna(value) or value == 0:
        return ""
    return "color: #21c354" if value > 0 else "color: #ff4b4b"


def styled(frame: pd.DataFrame, with_strategy: bool = False):
    """Red/green P&L; stale legs greyed. Number formats come from COLUMN_CONFIG."""
    shown = frame.loc[:, (["Strategy"] if with_strategy else []) + list(SHOWN_COLUMNS)]
    style = shown.style.map(_pnl_color, subset=list(PNL_COLUMNS))
    stale = frame["Stale"].to_numpy()
    if stale.any():
        style = style.apply(lambda col: ["opacity: 0.55" if s else "" for s in stale], subset=["Quote age"])
    return style


def colored(text: str, value: float | None) -> str:
    """Markdown red/green for a signed figure (our own formatted number, safe to mark up)."""
    if value is None or value == 0:
        return text
    return f":green[{text}]" if value > 0 else f":red[{text}]"


def strategy_title(strategy: Strategy, legs: int) -> str:
    """Expander label (markdown: dollar signs escaped so they never start LaTeX)."""
    g = strategy.greeks

    def money(value: float) -> str:
        return common.fmt_money(value, signed=True).replace("$", r"\$")

    return (f"{strategy.kind} · {strategy.underlying} · {legs} leg(s) — "
            f"P&L {colored(money(strategy.unrealized_pnl), strategy.unrealized_pnl)} · "
            f"Δ {common.fmt_greek('delta', g.delta)} · Θ {money(g.theta)}/day · Vega {money(g.vega)}/pt")


def close_buttons_hook():
    """The orders helper's close-ticket widgets (`pages/tickets.py`), or None until it exists."""
    if importlib.util.find_spec("pages.tickets") is None:
        return None
    try:
        tickets = importlib.import_module("pages.tickets")
    except Exception:  # a broken tickets module must not take the positions view down
        log.exception("pages.tickets failed to import")
        return None
    return getattr(tickets, "close_buttons", None)


def positions(services) -> None:
    snapshot = services.runtime.snapshot()
    st.title("Positions")
    if common.no_legs_notice(snapshot):
        return

    frame = legs_frame(snapshot)
    strategies = {s.strategy_id: s for s in snapshot.strategies}
    kind_of = {sid: s.kind for sid, s in strategies.items()}
    frame["Strategy"] = frame["strategy_id"].map(kind_of).fillna(UNGROUPED)

    left, right = st.columns(2)
    underlyings = left.multiselect("Underlying", sorted(frame["Underlying"].unique()), key="positions_underlying")
    kinds = right.multiselect("Strategy", sorted(frame["Strategy"].unique()), key="positions_strategy")
    if underlyings:
        frame = frame[frame["Underlying"].isin(underlyings)]
    if kinds:
        frame = frame[frame["Strategy"].isin(kinds)]

    st.caption(f"{len(frame)} leg(s) in {frame['strategy_id'].nunique()} group(s) · Greeks are position "
               "Greeks (per-contract × quantity × multiplier); theta in $/day, vega in $ per vol point · "
               f"P&L is IB's{_v6_pnl_note(snapshot)} · snapshot #{snapshot.seq}")
    view = st.segmented_control("View", ["By strategy", "All legs"], default="By strategy",
                                key="positions_view", label_visibility="collapsed")
    if view == "All legs":
        st.dataframe(styled(frame, with_strategy=True), column_config=COLUMN_CONFIG, hide_index=True,
                     key="legs_all")
        return
    strategy_expanders(snapshot, frame, strategies)


def _v6_pnl_note(snapshot: PortfolioSnapshot) -> str:
    computed = sum(1 for leg in snapshot.legs if leg.pnl_source != "IB")
    return f", except {computed} leg(s) computed by v6 from the quote (IB sent none)" if computed else ""


def strategy_expanders(snapshot: PortfolioSnapshot, frame: pd.DataFrame, strategies: dict[str, Strategy]) -> None:
    """One expander per strategy (snapshot order, ungrouped last), a page of them at a time."""
    order = {sid: i for i, sid in enumerate(strategies)}
    frame = frame.reset_index(drop=True)
    groups = sorted(frame.groupby("strategy_id", sort=False).indices.items(),
                    key=lambda item: order.get(item[0], len(order)))
    pages = max(1, math.ceil(len(groups) / STRATEGIES_PER_PAGE))
    if pages > 1:
        page = st.number_input(f"Strategy page (of {pages})", min_value=1, max_value=pages, step=1,
                               key="positions_page")
        first = (min(int(page), pages) - 1) * STRATEGIES_PER_PAGE
        groups = groups[first:first + STRATEGIES_PER_PAGE]
        st.caption(f"Strategies {first + 1}–{first + len(groups)} of {len(order) or len(groups)}; "
                   "the All legs view shows every leg in one table.")
    close_buttons = close_buttons_hook()
    legs_by_con_id = {leg.contract.con_id: leg for leg in snapshot.legs}
    # One pandas -> Arrow conversion for every leg; each expander shows a slice of it (a conversion
    # per expander costs ~20 ms, most of this page's time at 500 legs).
    table = pa.Table.from_pandas(frame.loc[:, list(SHOWN_COLUMNS)], preserve_index=False)
    con_ids = frame["con_id"].to_numpy()
    for position, (strategy_id, rows) in enumerate(groups):
        strategy = strategies.get(strategy_id)
        title = strategy_title(strategy, len(rows)) if strategy else f"Ungrouped · {len(rows)} leg(s)"
        # Keyed: the live figures in the label change every refresh, the open/closed state must not.
        # (Not tracked with on_change="rerun": Streamlit then forgets the state when the label changes.)
        with st.expander(title, expanded=position < EXPANDED_BY_DEFAULT, key=f"strategy_{strategy_id}"):
            if strategy is not None and strategy.explanation:
                st.caption(common.plain(strategy.explanation))
            st.dataframe(table.take(rows), column_config=COLUMN_CONFIG, hide_index=True,
                         key=f"legs_{strategy_id}")
            if close_buttons is not None and strategy is not None:
                close_buttons(strategy, [legs_by_con_id[c] for c in con_ids[rows] if c in legs_by_con_id])


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(positions)
