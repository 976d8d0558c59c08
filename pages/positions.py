"""Positions: every leg, grouped by strategy, with P&L, Greeks, their source and quote age.

What the page shows is built once per snapshot and shared by every session (`common.per_snapshot`):
one frame and one Arrow table for all legs (500 legs stay fast); each strategy's expander shows a
slice of it as an HTML table. Only the live part (`live`: caption, expanders or the All legs
table) is a fragment rerun on the sidebar's interval; it draws no widget, so a refresh costs a
session little. The controls (filters, view, strategy page, and the panel that closes or rolls
the strategy picked in it with `pages.components.tickets.close_buttons` and `roll_button`) are
drawn once per operator action: a click on them is never overtaken by a refresh, and when the
held legs change the live part reruns the page so the controls match the body.
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
    return [rows_html(values, SHOWN_COLUMNS, group.rows, stale, group.explanation) for group in groups]


STRUCTURE_KEY = "positions_drawn_structure"   # the book the controls outside the live part were drawn from


def structure(snapshot: PortfolioSnapshot, book: Book | None) -> tuple:
    """What the controls around the live part are drawn from: each held leg's strategy, contract
    and quantity (the filters' choices, the strategies to close or roll and their legs)."""
    if book is None:
        return ()
    frame = book.frame
    # None for a missing figure: NaN never equals itself, and the page would rerun on every refresh
    con_ids = [None if pd.isna(c) else int(c) for c in frame["con_id"].tolist()]
    quantities = [None if pd.isna(q) else int(q) for q in frame["Qty"].tolist()]
    return tuple(zip(frame["strategy_id"].tolist(), con_ids, quantities))


def book_and_structure(snapshot: PortfolioSnapshot) -> tuple[Book | None, tuple]:
    """The snapshot's Book (None without legs) and its `structure`, both built once per snapshot."""
    book = (common.per_snapshot("positions", snapshot, None, lambda: build_book(snapshot))
            if snapshot.legs else None)
    return book, common.per_snapshot("positions.structure", snapshot, None, lambda: structure(snapshot, book))


def page_count(groups: list[Group]) -> int:
    """How many pages of STRATEGIES_PER_PAGE strategies the list has."""
    return max(1, math.ceil(len(groups) / STRATEGIES_PER_PAGE))


def positions(services) -> None:
    """The page around the live part: filters, view, strategy page and the close/roll panel.

    They are drawn once per operator action, not on every refresh: a session's refresh then costs
    only the live figures (issue #12, shared work). When the held legs change (a fill, a new
    strategy), the live part reruns the page so that these controls show what the body shows."""
    st.title("Positions")
    snapshot = common.live_snapshot(services.runtime)
    book, st.session_state[STRUCTURE_KEY] = book_and_structure(snapshot)
    if book is not None:
        left, right = st.columns(2)
        left.multiselect("Underlying", book.underlyings, key="positions_underlying")
        right.multiselect("Strategy", book.kinds, key="positions_strategy")
        view = st.segmented_control("View", ["By strategy", "All legs"], default="By strategy",
                                    key="positions_view", label_visibility="collapsed")
        options = _options()
        frame = common.per_snapshot("positions.filtered", snapshot, options, lambda: filtered(book, *options))
        groups = common.per_snapshot("positions.groups", snapshot, options,
                                     lambda: build_groups(snapshot, book, frame))
        if view != "All legs":
            pages = page_count(groups)
            if pages > 1:
                st.number_input(f"Strategy page (of {pages})", min_value=1, max_value=pages, step=1,
                                key="positions_page")
        action_panel(groups)
    common.live_fragment(live, services)


def _options() -> tuple[tuple[str, ...], tuple[str, ...]]:
    state = st.session_state
    return (tuple(state.get("positions_underlying") or ()), tuple(state.get("positions_strategy") or ()))


def panel_label(group: Group) -> str:
    """A strategy as the close/roll picker names it: kind, underlying, legs, expiries and strikes
    (no live figure: the label must not change under the operator's pointer)."""
    strategy = group.strategy
    expiries = sorted({leg.contract.expiry for leg in group.legs if leg.contract.expiry})
    strikes = sorted({leg.contract.strike for leg in group.legs if leg.contract.strike})
    parts = [strategy.kind, strategy.underlying, f"{len(group.legs)} leg(s)"]    # plain text: no markdown
    if expiries:
        parts.append(" / ".join(str(e) for e in expiries))
    if strikes:
        parts.append("/".join(f"{k:g}" for k in strikes))
    return " · ".join(parts)


def action_panel(groups: list[Group]) -> None:
    """Close or roll one strategy: pick it, then the close buttons and Roll…. Outside the live
    part, so a refresh never redraws them under the operator's pointer."""
    actionable = {g.strategy_id: g for g in groups if g.strategy is not None and g.legs}
    if not actionable:
        return
    with st.container(border=True):
        chosen = st.selectbox("Close or roll a strategy", list(actionable),
                              format_func=lambda sid: panel_label(actionable[sid]), key="positions_act")
        group = actionable.get(chosen) or next(iter(actionable.values()))
        with st.container(horizontal=True, vertical_alignment="center"):
            close_buttons(group.strategy, list(group.legs))
            if any(leg.contract.is_option for leg in group.legs):
                roll_button(group.strategy)


def live(services) -> None:
    """The live part, rerun on the sidebar's interval: the caption and the strategies (or all legs)."""
    snapshot = common.live_snapshot(services.runtime)
    book, drawn = book_and_structure(snapshot)
    if drawn != st.session_state.get(STRUCTURE_KEY):
        st.rerun()                        # the legs changed: redraw the controls with the body
    if book is None:
        common.no_legs_notice(snapshot)
        return
    options = _options()
    frame = common.per_snapshot("positions.filtered", snapshot, options, lambda: filtered(book, *options))
    st.caption(f"{len(frame)} leg(s) in {frame['strategy_id'].nunique()} group(s) · Greeks are position "
               "Greeks (per-contract × quantity × multiplier); theta in $/day, vega in $ per vol point · "
               f"P&L is IB's{_v6_pnl_note(snapshot)} · snapshot #{snapshot.seq}")
    if st.session_state.get("positions_view") == "All legs":
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
    """One expander per strategy, a page of them at a time (the page number is a control outside
    the live part); `tables_of(first, groups)` gives the HTML tables of the groups shown (built
    once per snapshot and page, shared by sessions). No widget here: closing and rolling are in
    the panel above, so a refresh redraws text only."""
    pages = page_count(groups)
    first = 0
    if pages > 1:
        page = min(max(int(st.session_state.get("positions_page") or 1), 1), pages)
        first = (page - 1) * STRATEGIES_PER_PAGE
        shown = groups[first:first + STRATEGIES_PER_PAGE]
        st.caption(f"Strategies {first + 1}–{first + len(shown)} of {len(groups)}; "
                   "the All legs view shows every leg in one table.")
        groups = shown
    shown_tables = tables_of(first, groups)
    for position, (group, table) in enumerate(zip(groups, shown_tables)):
        # Keyed: the live figures in the label change every refresh, the open/closed state must not.
        # (Not tracked with on_change="rerun": Streamlit then forgets the state when the label changes.)
        with st.expander(group.title, expanded=position < EXPANDED_BY_DEFAULT, key=f"strategy_{group.strategy_id}"):
            st.markdown(table, unsafe_allow_html=True)      # the grouping's explanation is inside


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(positions, refresh=False)
