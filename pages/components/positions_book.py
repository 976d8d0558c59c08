"""What Positions shows, built once per snapshot and shared by every session and by the live feed.

The page (`pages/positions.py`) draws the controls; the live list of strategies is an HTML body
(`live_body`) that both the page's first draw and the live feed's endpoint
(`pages.components.live_feed`) build from here, through `per_snapshot`, so ten tabs cost one build.
"""

from __future__ import annotations

import hashlib
import html
import math
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from pages.components import common
from pages.components.leg_table import FORMATS as LEG_FORMATS
from pages.components.leg_table import TEXT_COLUMNS as LEG_TEXT_COLUMNS
from pages.components.leg_table import cell as leg_cell, column_values, rows_html
from v6core.models import PortfolioSnapshot, Strategy

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
    """A strategy's summary line (HTML, escaped): kind, underlying, legs, P&L coloured, Greeks."""
    g = strategy.greeks
    pnl = strategy.unrealized_pnl
    tone = common.pnl_css(pnl)
    pnl_html = html.escape(common.fmt_money(pnl, signed=True))
    if tone:
        pnl_html = f'<span style="{tone}">{pnl_html}</span>'
    return (f"{html.escape(common.text(strategy.kind))} · {html.escape(common.text(strategy.underlying))} · "
            f"{legs} leg(s) — P&amp;L {pnl_html} · "
            f"Delta {html.escape(common.fmt_greek('delta', g.delta))} · "
            f"Theta {html.escape(common.fmt_money(g.theta, signed=True))}/day · "
            f"Vega {html.escape(common.fmt_money(g.vega, signed=True))}/pt")


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




def structure_key(snapshot: PortfolioSnapshot) -> str:
    """A short digest of `structure` (built once per snapshot): the live feed compares it with the
    one the page's controls were drawn from, and reruns the page when they differ."""
    def build() -> str:
        _, drawn = book_and_structure(snapshot)
        return hashlib.blake2b(repr(drawn).encode(), digest_size=8).hexdigest()
    return common.per_snapshot("positions.structure_key", snapshot, None, build)


def _v6_pnl_note(snapshot: PortfolioSnapshot) -> str:
    computed = sum(1 for leg in snapshot.legs if leg.pnl_source != "IB")
    return f", except {computed} leg(s) computed by v6 from the quote (IB sent none)" if computed else ""


def caption(snapshot: PortfolioSnapshot, frame: pd.DataFrame) -> str:
    return (f"{len(frame)} leg(s) in {frame['strategy_id'].nunique()} group(s) · Greeks are position "
            "Greeks (per-contract × quantity × multiplier); theta in $/day, vega in $ per vol point · "
            f"P&L is IB's{_v6_pnl_note(snapshot)} · snapshot #{snapshot.seq}")


def live_body(snapshot: PortfolioSnapshot, options: tuple[tuple[str, ...], tuple[str, ...]], page: int) -> str:
    """The live list of strategies as one HTML body (caption, page note, one <details> per
    strategy of `page`), built once per snapshot, options and page and shared by every session."""
    return common.per_snapshot("positions.body", snapshot, (*options, page),
                               lambda: _build_live_body(snapshot, options, page))


def _build_live_body(snapshot: PortfolioSnapshot, options, page: int) -> str:
    book, _ = book_and_structure(snapshot)
    if book is None:
        return f'<p class="v6-notice">{html.escape(common.no_legs_text(snapshot))}</p>'
    frame = common.per_snapshot("positions.filtered", snapshot, options, lambda: filtered(book, *options))
    groups = common.per_snapshot("positions.groups", snapshot, options,
                                 lambda: build_groups(snapshot, book, frame))
    parts = [f'<p class="v6-caption">{html.escape(caption(snapshot, frame))}</p>']
    pages = page_count(groups)
    first = 0
    if pages > 1:
        page = min(max(int(page or 1), 1), pages)
        first = (page - 1) * STRATEGIES_PER_PAGE
        shown = groups[first:first + STRATEGIES_PER_PAGE]
        parts.append(f'<p class="v6-caption">Strategies {first + 1}–{first + len(shown)} of {len(groups)}; '
                     "the All legs view shows every leg in one table.</p>")
        groups = shown
    shown_tables = common.per_snapshot("positions.tables", snapshot, (*options, first),
                                       lambda: tables(frame, groups))
    for position, (group, table) in enumerate(zip(groups, shown_tables)):
        # keyed by strategy: the feed keeps what the operator opened or closed across refreshes
        opened = " open" if position < EXPANDED_BY_DEFAULT else ""
        parts.append(f'<details class="v6-strategy" data-key="{html.escape(group.strategy_id)}"{opened}>'
                     f"<summary>{group.title}</summary>{table}</details>")
    return "".join(parts)
