"""Positions: every leg, grouped by strategy, with P&L, Greeks, their source and quote age.

What the page shows is built once per snapshot and shared by every session (`common.per_snapshot`):
one frame and one Arrow table for all legs (500 legs stay fast); each strategy's expander shows a
slice of it. At the end of each expander the close-ticket widgets
(`pages.components.tickets.close_buttons`) are drawn. The body is a fragment that reruns on the
sidebar's interval; a click on a control or a close button is never overtaken by a refresh.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

import math  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from pages.components import common  # noqa: E402
from pages.components.leg_table import FORMATS as LEG_FORMATS  # noqa: E402
from pages.components.leg_table import TEXT_COLUMNS as LEG_TEXT_COLUMNS  # noqa: E402
from pages.components.leg_table import cell as leg_cell, column_values, rows_html  # noqa: E402
from pages.components.structure_risk import roll_button  # noqa: E402
from pages.components.tickets import close_buttons  # noqa: E402
from v6core.models import PortfolioSnapshot, Strategy  # noqa: E402

UNGROUPED = "ungrouped"
# Each expander costs a dataframe and the close widgets: page them so 500 legs stay fast.
STRATEGIES_PER_PAGE = 12
EXPANDED_BY_DEFAULT = 4          # the first strategies of a page open; the rest on a click
PNL_COLUMNS = ("P&L", "P&L %", "Day P&L")
# The columns a trader reads first come first; the whole row fits 1600 px.
SHOWN_COLUMNS = (
    "Contract", "Qty", "Underlying price", "Mark", "P&L", "Day P&L", "Delta", "Gamma", "Theta $/day",
    "Vega $/vol pt", "DTE", "IV %", "Avg cost", "Mkt value", "P&L %", "Delta/contract",
    "Greeks", "Quote age", "Flags",
)
COLUMN_CONFIG = common.LEG_COLUMN_CONFIG


def legs_frame(snapshot: PortfolioSnapshot, now: datetime | None = None) -> pd.DataFrame:
    """One row per leg, sorted by underlying, expiry (stock first), strike, right.

    Quote ages are taken at the snapshot's build time (`now` by default), so the frame depends on
    the snapshot alone and can be shared by every session."""
    now = now or snapshot.built_at
    spots = {u.symbol: u.spot for u in snapshot.underlyings}
    rows = []
    for leg in snapshot.legs:
        c, g, pg = leg.contract, leg.greeks, leg.position_greeks
        rows.append((
            leg.strategy_id or UNGROUPED, c.symbol, c.expiry, c.strike, c.right or "",
            c.label, leg.quantity, spots.get(c.symbol), leg.avg_price, leg.mark, leg.market_value, leg.unrealized_pnl,
            leg.pnl_pct, leg.daily_pnl, pg.delta, pg.gamma, pg.theta, pg.vega,
            g.delta if g is not None else None,
            g.iv * 100.0 if g is not None and g.iv is not None else None,
            leg.dte, g.source.value if g is not None else "NONE",
            common.age_seconds(leg.quote_time, now), ", ".join(leg.flags), leg.stale, c.con_id,
        ))
    frame = pd.DataFrame.from_records(rows, columns=[
        "strategy_id", "Underlying", "Expiry", "Strike", "Right", "Contract", "Qty", "Underlying price", "Avg cost",
        "Mark", "Mkt value", "P&L", "P&L %", "Day P&L", "Delta", "Gamma", "Theta $/day",
        "Vega $/vol pt", "Delta/contract", "IV %", "DTE", "Greeks", "Quote age", "Flags", "Stale",
        "con_id",
    ])
    frame["Expiry"] = pd.to_datetime(frame["Expiry"])
    for name in ("Strike", "Underlying price", "Avg cost", "Mark", "Mkt value", "P&L", "P&L %", "Day P&L",
                 "Delta/contract", "IV %", "Quote age"):
        frame[name] = common.displayable(pd.to_numeric(frame[name], errors="coerce").astype("float64"))
    frame["DTE"] = frame["DTE"].astype("Int64")
    # NaN, inf or 1e306 shares cannot be an integer column: blank, the leg's flag says why
    frame["Qty"] = common.displayable(frame["Qty"].astype("float64")).round().astype("Int64")
    frame = frame.sort_values(["Underlying", "Expiry", "Strike", "Right"], na_position="first", kind="stable")
    return frame.reset_index(drop=True)


def styled(frame: pd.DataFrame, columns: tuple[str, ...] = SHOWN_COLUMNS):
    """(Styler, column config) of the All legs table: red/green P&L, stale quotes greyed.

    A null number shows as the word "None" in st.dataframe whatever a Styler says, so a column
    with a missing figure (a stock leg has no DTE or IV) is shown as text, formatted like the
    strategy tables with a dash; the other columns stay numbers with COLUMN_CONFIG's formats."""
    shown = frame.loc[:, list(columns)].copy()
    config = dict(COLUMN_CONFIG)
    for name in columns:
        if name in LEG_TEXT_COLUMNS or not pd.api.types.is_numeric_dtype(shown[name]):
            continue
        if shown[name].isna().any():
            shown[name] = [leg_cell(name, value) for value in frame[name].tolist()]
            config[name] = st.column_config.TextColumn(LEG_FORMATS[name][0], alignment="right",
                                                       help=LEG_FORMATS[name][2] or None)
    present = [c for c in PNL_COLUMNS if c in columns]
    style = shown.style.apply(lambda col: [common.pnl_css(v) for v in frame[col.name].tolist()], subset=present)
    stale = frame["Stale"].to_numpy()
    if stale.any():
        style = style.apply(lambda col: ["opacity: 0.55" if s else "" for s in stale], subset=["Quote age"])
    return common.frozen_style(style), config


def strategy_title(strategy: Strategy, legs: int) -> str:
    """Expander label (markdown: dollar signs escaped so they never start LaTeX)."""
    g = strategy.greeks

    def money(value: float) -> str:
        return common.fmt_money(value, signed=True).replace("$", r"\$")

    return (f"{common.plain(strategy.kind)} · {common.plain(strategy.underlying)} · {legs} leg(s) — "
            f"P&L {common.colored(money(strategy.unrealized_pnl), strategy.unrealized_pnl)} · "
            f"Delta {common.fmt_greek('delta', g.delta)} · Theta {money(g.theta)}/day · "
            f"Vega {money(g.vega)}/pt")


@dataclass(frozen=True, slots=True)
class Book:
    """Everything the page draws from one snapshot, shared by every session (read-only)."""

    frame: pd.DataFrame                       # every leg, with its strategy's kind
    strategies: dict[str, Strategy]
    underlyings: list[str]
    kinds: list[str]


@dataclass(frozen=True, slots=True)
class Group:
    strategy_id: str
    title: str
    explanation: str
    rows: tuple[int, ...]                     # this strategy's legs: positions in the filtered frame
    strategy: Strategy | None
    legs: tuple                               # the snapshot's Leg objects, for the close buttons


def build_book(snapshot: PortfolioSnapshot) -> Book:
    frame = legs_frame(snapshot)
    strategies = {s.strategy_id: s for s in snapshot.strategies}
    kind_of = {sid: s.kind for sid, s in strategies.items()}
    frame["Strategy"] = frame["strategy_id"].map(kind_of).fillna(UNGROUPED)
    return Book(frame, strategies, sorted(frame["Underlying"].unique()), sorted(frame["Strategy"].unique()))


def filtered(book: Book, underlyings: tuple[str, ...], kinds: tuple[str, ...]) -> pd.DataFrame:
    frame = book.frame
    if underlyings:
        frame = frame[frame["Underlying"].isin(underlyings)]
    if kinds:
        frame = frame[frame["Strategy"].isin(kinds)]
    return frame.reset_index(drop=True)


def build_groups(snapshot: PortfolioSnapshot, book: Book, frame: pd.DataFrame) -> list[Group]:
    """One Group per strategy (snapshot order, ungrouped last); its table is drawn by `tables`,
    for the strategies on screen only."""
    con_ids = frame["con_id"].to_numpy()
    order = {sid: i for i, sid in enumerate(book.strategies)}
    legs_by_con_id = {leg.contract.con_id: leg for leg in snapshot.legs}
    groups = sorted(frame.groupby("strategy_id", sort=False).indices.items(),
                    key=lambda item: order.get(item[0], len(order)))
    out = []
    for strategy_id, rows in groups:
        strategy = book.strategies.get(strategy_id)
        title = strategy_title(strategy, len(rows)) if strategy else f"Ungrouped · {len(rows)} leg(s)"
        legs = tuple(legs_by_con_id[c] for c in con_ids[rows] if c in legs_by_con_id)
        out.append(Group(strategy_id, title, strategy.explanation if strategy else "",
                         tuple(int(r) for r in rows), strategy, legs))
    return out


def tables(frame: pd.DataFrame, groups: list[Group]) -> list[str]:
    """Each group's legs as an HTML table (red/green P&L, a dash for a missing figure).

    Not st.dataframe Stylers: Streamlit re-marshals a Styler's display values on every draw of
    every session (50–70 ms per table here), which would undo the sharing; an unstyled table
    cannot colour P&L and shows a missing figure as "None"."""
    values = column_values(frame, SHOWN_COLUMNS)
    stale = frame["Stale"].tolist()
    return [rows_html(values, SHOWN_COLUMNS, group.rows, stale) for group in groups]


def positions(services) -> None:
    snapshot = common.live_snapshot(services.runtime)
    st.title("Positions")
    if common.no_legs_notice(snapshot):
        return
    book = common.per_snapshot("positions", snapshot, None, lambda: build_book(snapshot))

    left, right = st.columns(2)
    underlyings = left.multiselect("Underlying", book.underlyings, key="positions_underlying")
    kinds = right.multiselect("Strategy", book.kinds, key="positions_strategy")
    options = (tuple(underlyings), tuple(kinds))
    frame = common.per_snapshot("positions.filtered", snapshot, options,
                                lambda: filtered(book, *options))

    st.caption(f"{len(frame)} leg(s) in {frame['strategy_id'].nunique()} group(s) · Greeks are position "
               "Greeks (per-contract × quantity × multiplier); theta in $/day, vega in $ per vol point · "
               f"P&L is IB's{_v6_pnl_note(snapshot)} · snapshot #{snapshot.seq}")
    view = st.segmented_control("View", ["By strategy", "All legs"], default="By strategy",
                                key="positions_view", label_visibility="collapsed")
    if view == "All legs":
        style, config = common.per_snapshot("positions.all", snapshot, options,
                                            lambda: styled(frame, ("Strategy", *SHOWN_COLUMNS)))
        st.dataframe(style, column_config=config, hide_index=True, key="legs_all")
        return
    groups = common.per_snapshot("positions.groups", snapshot, options,
                                 lambda: build_groups(snapshot, book, frame))
    strategy_expanders(groups, lambda first, shown: common.per_snapshot(
        "positions.tables", snapshot, (*options, first), lambda: tables(frame, shown)))


def _v6_pnl_note(snapshot: PortfolioSnapshot) -> str:
    computed = sum(1 for leg in snapshot.legs if leg.pnl_source != "IB")
    return f", except {computed} leg(s) computed by v6 from the quote (IB sent none)" if computed else ""


def strategy_expanders(groups: list[Group], tables_of) -> None:
    """One expander per strategy, a page of them at a time; `tables_of(first, groups)` gives the
    HTML tables of the groups shown (built once per snapshot and page, shared by sessions)."""
    pages = max(1, math.ceil(len(groups) / STRATEGIES_PER_PAGE))
    first = 0
    if pages > 1:
        page = st.number_input(f"Strategy page (of {pages})", min_value=1, max_value=pages, step=1,
                               key="positions_page")
        first = (min(int(page), pages) - 1) * STRATEGIES_PER_PAGE
        shown = groups[first:first + STRATEGIES_PER_PAGE]
        st.caption(f"Strategies {first + 1}–{first + len(shown)} of {len(groups)}; "
                   "the All legs view shows every leg in one table.")
        groups = shown
    shown_tables = tables_of(first, groups)
    for position, (group, table) in enumerate(zip(groups, shown_tables)):
        # Keyed: the live figures in the label change every refresh, the open/closed state must not.
        # (Not tracked with on_change="rerun": Streamlit then forgets the state when the label changes.)
        with st.expander(group.title, expanded=position < EXPANDED_BY_DEFAULT, key=f"strategy_{group.strategy_id}"):
            if group.explanation:
                st.caption(common.plain(group.explanation))
            st.markdown(table, unsafe_allow_html=True)
            if group.strategy is not None and group.legs:
                close_buttons(group.strategy, list(group.legs))
                if any(leg.contract.is_option for leg in group.legs):
                    roll_button(group.strategy)


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(positions)
