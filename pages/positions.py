"""Positions: every leg, grouped by strategy, with P&L, Greeks, their source and quote age.

What the page shows is built once per snapshot and shared by every session
(`pages.components.positions_book`, through `common.per_snapshot`). The strategies (one summary
line and one HTML table of legs each) are a live feed (`pages.components.live_feed`): drawn with
the page, then refreshed in the browser from the shared body, with no script run per session and
refresh. The All legs view (one grid) is a fragment rerun on the sidebar's interval. The controls
(filters, view, strategy page, and the panel that closes or rolls the strategy picked in it with
`pages.components.tickets.close_buttons` and `roll_button`) are drawn once per operator action: a
click on them is never overtaken by a refresh, and when the held legs change the live part reruns
the page so the controls match the body.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

import streamlit as st  # noqa: E402

from pages.components import common, live_feed  # noqa: E402
from pages.components.positions_book import (  # noqa: E402,F401 (re-exported for tests and benches)
    COLUMN_CONFIG,
    EXPANDED_BY_DEFAULT,
    SHOWN_COLUMNS,
    STRATEGIES_PER_PAGE,
    UNGROUPED,
    Book,
    Group,
    book_and_structure,
    build_book,
    build_groups,
    caption,
    filtered,
    legs_frame,
    live_body,
    page_count,
    strategy_title,
    structure,
    structure_key,
    styled,
    tables,
)
from pages.components.structure_risk import roll_button  # noqa: E402
from pages.components.tickets import close_buttons  # noqa: E402

STRUCTURE_KEY = "positions_drawn_structure"   # the book the controls outside the live part were drawn from
STRUCTURE_KEY_DIGEST = "positions_drawn_structure_key"


def positions(services) -> None:
    """The page around the live part: filters, view, strategy page and the close/roll panel.

    They are drawn once per operator action, not on every refresh: a session's refresh then costs
    only the live figures (issue #12, shared work). When the held legs change (a fill, a new
    strategy), the live part reruns the page so that these controls show what the body shows."""
    st.title("Positions")
    snapshot = common.live_snapshot(services.runtime)
    book, st.session_state[STRUCTURE_KEY] = book_and_structure(snapshot)
    st.session_state[STRUCTURE_KEY_DIGEST] = structure_key(snapshot)
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
    live(services)


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
    """The live part: the strategies as a live feed, or the All legs grid as a fragment."""
    if st.session_state.get("positions_view") == "All legs":
        common.live_fragment(all_legs, services)
        return
    snapshot = common.live_snapshot(services.runtime)
    options = _options()
    page = int(st.session_state.get("positions_page") or 1)
    every = common.refresh_seconds()
    slot = st.session_state.get(common.STATUS_SLOT_KEY)
    if slot is not None:             # the sidebar's status, carried by the same requests
        with slot.container():
            live_feed.listener("positions_status", "status", live_feed.status_html(services), every=every)
    live_feed.mount("positions_feed", "positions", live_body(snapshot, options, page),
                    structure=st.session_state.get(STRUCTURE_KEY_DIGEST, ""), every=every,
                    with_parts=("status",) if slot is not None else (),
                    u=list(options[0]), k=list(options[1]), page=page)


def all_legs(services) -> None:
    """The All legs view, rerun on the sidebar's interval: the caption and one grid of every leg."""
    snapshot = common.live_snapshot(services.runtime)
    book, drawn = book_and_structure(snapshot)
    if drawn != st.session_state.get(STRUCTURE_KEY):
        st.rerun()                        # the legs changed: redraw the controls with the body
    if book is None:
        common.no_legs_notice(snapshot)
        return
    options = _options()
    frame = common.per_snapshot("positions.filtered", snapshot, options, lambda: filtered(book, *options))
    st.caption(caption(snapshot, frame))
    style, config = common.per_snapshot("positions.all", snapshot, options,
                                        lambda: styled(frame, ("Strategy", *SHOWN_COLUMNS)))
    st.dataframe(style, column_config=config, hide_index=True, key="legs_all")


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(positions, refresh=False)
