"""Trade: the option chain of a watchlist underlying, legs by click or by template, the ticket's
risk against the portfolio, and review → confirm through the order desk. Rolls from Positions
land here too.

Refresh rule: the chain's numbers refresh inside a fragment (and renew the chain's market-data
lease); the rest of the page reruns only when the operator acts. The ticket's risk is computed
at each action from the quotes of that moment, and again at Review.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

import math  # noqa: E402
from datetime import date  # noqa: E402
from functools import reduce  # noqa: E402

import streamlit as st  # noqa: E402

from pages.components import common  # noqa: E402
from pages.components import tickets as tw  # noqa: E402
from pages.components.common import plain, refresh_seconds, render_page, session_id  # noqa: E402
from pages.components import structure_risk as sr  # noqa: E402
from v6core.chainfeed import ChainLineLimit  # noqa: E402
from v6core.models import ConnState  # noqa: E402
from v6core.orders import OrderDeskError, TicketBlocked  # noqa: E402
from v6core.structures import (  # noqa: E402
    TEMPLATES, OptionQuote, Structure, StructureError, StructureLeg, TemplateSpec, build, held_quotes,
    ticket_risk,
)
from v6core.structures.drafting import awaiting_quotes, discard_draft, draft_structure  # noqa: E402
from pages.components.roll_panel import roll_panel  # noqa: E402
from pages.components.trade_chain import (  # noqa: E402
    CHAIN_COLUMNS, KIND_KEY, LEGS_KEY, ORIGIN_KEY, STRIKE_STEPS, add_legs, chain_frame, shown_strikes,
)
from pages.components.trade_chain import spot_of as _spot, stock_quote as _stock_quote  # noqa: E402
from pages.components.trade_chain import today as _today, view_id as _view  # noqa: E402

RISK_KEY = "v6_trade_risk"          # (ticket id, TicketRisk, limit) shown in the review dialog
SHOWN_KEY = "v6_chain_shown"        # this session holds chain lines (released on other pages)
PRICE_MODES = ("Mid", "Natural", "Custom")
DEFAULT_DTE = 30



# ---------------------------------------------------------------- the page


def body(services) -> None:
    st.title("Trade")
    feed = services.chains
    snapshot = services.runtime.snapshot()
    if feed is None or not _connected(snapshot):
        st.info("Waiting for the gateway: the chain streams once it is connected.")
        st.fragment(_rerun_when_ready, run_every=1.0)(services, "")
        return
    held_symbols = {leg.contract.symbol for leg in snapshot.legs}
    symbols = list(dict.fromkeys([*services.settings.watchlist, *sorted(held_symbols)]))
    roll_id = st.session_state.get(sr.ROLL_KEY)
    roll_strategy = snapshot.strategy(roll_id) if roll_id else None
    if roll_strategy is not None and st.session_state.get("trade_symbol") != roll_strategy.underlying:
        st.session_state["trade_symbol"] = roll_strategy.underlying
    cols = st.columns([1, 2, 1, 1])
    symbol = cols[0].selectbox("Underlying", symbols, key="trade_symbol")
    try:
        listing = feed.listing(symbol).result(timeout=15)
    except Exception as exc:
        st.error(f"No option chain for {plain(symbol)}: {plain(exc)}")
        return
    today = _today()
    expiries = list(listing.expiries)
    default = min(range(len(expiries)), key=lambda i: abs((expiries[i] - today).days - DEFAULT_DTE))
    expiry = cols[1].selectbox("Expiry", expiries, index=default, key=f"trade_expiry_{symbol}",
                               format_func=lambda d: f"{d:%Y-%m-%d} · {(d - today).days} DTE")
    count = int(cols[2].number_input("Strikes shown", min_value=6, max_value=60, value=40, step=2,
                                     key="trade_strikes",
                                     help="Each strike is two market-data lines (IB allows ~100 in all)"))
    every = cols[3].selectbox("Strike step", tuple(STRIKE_STEPS), key="trade_every",
                              format_func=STRIKE_STEPS.get)
    spot = _spot(snapshot, listing)
    if not spot:
        st.info(f"Waiting for a {plain(symbol)} price.")
        st.fragment(_rerun_when_ready, run_every=1.0)(services, symbol)
        return
    strikes = shown_strikes(listing.strikes, spot, count, every)
    st.session_state[SHOWN_KEY] = True
    if roll_strategy is not None:
        roll_panel(services, roll_strategy, listing, strikes)
    st.fragment(chain_view, run_every=refresh_seconds())(services, listing, expiry, strikes, every)
    template_form(services, listing, expiry, strikes)
    draft_section(services, listing)
    saved_drafts(services)
    if st.session_state.get(tw.REVIEW_KEY):
        review_dialog(st.session_state[tw.REVIEW_KEY])


def _connected(snapshot) -> bool:
    return snapshot.connection.state in (ConnState.CONNECTED, ConnState.DEGRADED)


def _rerun_when_ready(services, symbol: str) -> None:
    """While the page waits for the gateway (or a price), look again each second; draw the page
    once it can (no operator action is pending while the page shows nothing to act on)."""
    snapshot = services.runtime.snapshot()
    if not _connected(snapshot):
        return
    if symbol:
        und = snapshot.underlying(symbol)
        if not (und is not None and und.spot):
            listing = services.chains.listing(symbol)
            if not listing.done() or listing.exception() is not None:
                return
            q = snapshot.quote(listing.result().stock.con_id)
            if q is None or q.mark is None:
                return
    st.rerun()


def chain_view(services, listing, expiry: date, strikes: list[float], every: int = 1) -> None:
    feed = services.chains
    try:
        feed.show(_view(), listing.symbol, expiry, strikes).result(timeout=15)
    except ChainLineLimit as exc:
        st.warning(plain(exc))
    except Exception as exc:
        st.error(f"The chain could not be streamed: {plain(exc)}")
        return
    snapshot = services.runtime.snapshot()
    spot = _spot(snapshot, listing) or 0.0
    chain = feed.slice(listing.symbol, expiry, strikes, spot)
    held = {leg.contract.con_id: leg.quantity for leg in snapshot.legs if leg.contract.symbol == listing.symbol}
    frame = chain_frame(chain, held)
    st.caption(f"{plain(listing.symbol)} {common.fmt_money(spot)} · {expiry:%Y-%m-%d} · {len(strikes)} strikes "
               f"({STRIKE_STEPS[every]}, {strikes[0]:g} to {strikes[-1]:g}) · "
               f"{feed.lines} chain lines · select a row, then buy at the ask or sell at the bid")
    shown, config = common.without_nulls(frame, CHAIN_COLUMNS)      # an unquoted cell is a dash
    event = st.dataframe(shown, key="trade_chain", on_select="rerun", selection_mode="single-row",
                         hide_index=True, column_config=config, height=420)
    rows = event.selection.rows if event is not None else []
    if not rows:
        return
    strike = float(frame.iloc[rows[0]]["Strike"])
    buttons = st.columns(4)
    for i, (label, right, qty) in enumerate((("Buy call @ ask", "C", 1), ("Sell call @ bid", "C", -1),
                                             ("Buy put @ ask", "P", 1), ("Sell put @ bid", "P", -1))):
        if buttons[i].button(f"{label} {strike:g}", key=f"leg_{right}_{qty}"):
            quote = chain.option(strike, right)
            if quote is not None:
                add_legs(listing.symbol, {quote.contract.con_id: qty}, kind="custom", replace=False)
                st.rerun()


def template_form(services, listing, expiry: date, strikes: list[float]) -> None:
    feed = services.chains
    snapshot = services.runtime.snapshot()
    later = [e for e in listing.expiries if e > expiry]
    with st.form("trade_template"):
        st.markdown("**Strategy template**")
        c = st.columns(4)
        kind = c[0].selectbox("Template", TEMPLATES, index=TEMPLATES.index("iron condor"), key="tpl_kind")
        side = c[1].selectbox("Side", ("sell", "buy"), key="tpl_side",
                              help="sell: short the structure (a credit for condors and verticals)")
        right = c[2].selectbox("Right", ("P", "C"), key="tpl_right",
                               help="For single, vertical, butterfly, calendar and diagonal")
        units = int(c[3].number_input("Units", min_value=1, max_value=50, value=1, step=1, key="tpl_units"))
        c = st.columns(4)
        by = c[0].selectbox("Place by", ("delta", "strike"), key="tpl_by")
        delta = c[1].number_input("Target delta", min_value=0.01, max_value=0.99, value=0.30, step=0.05,
                                  key="tpl_delta", help="|delta| of the short (key) leg")
        strike = c[2].selectbox("Strike", strikes, index=len(strikes) // 2, key="tpl_strike")
        width = c[3].number_input("Width ($)", min_value=0.5, value=5.0, step=0.5, key="tpl_width")
        far = st.selectbox("Second expiry (calendar, diagonal)", later or [expiry], key="tpl_far",
                           format_func=lambda d: f"{d:%Y-%m-%d} · {(d - _today()).days} DTE")
        submitted = st.form_submit_button("Build from template")
    if not submitted:
        return
    try:
        spec = TemplateSpec(kind, side=side, right=right, delta=delta if by == "delta" else None,
                            strike=float(strike) if by == "strike" else None, width=float(width), units=units)
        spot = _spot(snapshot, listing)
        near = feed.wait_slice(listing.symbol, expiry, strikes, spot, _stock_quote(snapshot, listing))
        far_chain = None
        if kind in ("calendar", "diagonal"):
            feed.show(_view("far"), listing.symbol, far, strikes).result(timeout=15)
            far_chain = feed.wait_slice(listing.symbol, far, strikes, spot)
        structure = build(spec, near, far_chain)
    except (StructureError, ChainLineLimit) as exc:
        st.error(plain(exc))
        return
    add_legs(listing.symbol, {leg.contract.con_id: leg.quantity for leg in structure.legs},
             kind=structure.kind, replace=True)
    st.session_state["trade_units"] = structure.units
    st.session_state.pop("v6_trade_ticket", None)


def _forget_placed_ticket(desk) -> None:
    """Once the ticket drafted here is confirmed (or dropped), the Trade page starts afresh."""
    saved = st.session_state.get("v6_trade_ticket")
    if not saved or st.session_state.get(tw.REVIEW_KEY) == saved:
        return
    try:
        placed = not desk.ticket(saved).editable
    except OrderDeskError:
        placed = True
    if placed:
        for key in (LEGS_KEY, KIND_KEY, "v6_trade_ticket", ORIGIN_KEY):
            st.session_state.pop(key, None)


def current_structure(services, listing) -> Structure | None:
    _forget_placed_ticket(services.orders)
    legs: dict[int, int] = st.session_state.get(LEGS_KEY) or {}
    if not legs or st.session_state.get("v6_trade_symbol_of_legs") != listing.symbol:
        return None
    feed, snapshot = services.chains, services.runtime.snapshot()
    held = {leg.contract.con_id: leg for leg in snapshot.legs}
    contracts = []
    for con_id in legs:
        info = feed.contract_by_id(con_id) or (held[con_id].contract if con_id in held else None)
        if info is None and con_id == listing.stock.con_id:
            info = listing.stock
        if info is None:
            return None
        contracts.append(info)
    try:   # the ticket's legs stay streamed whatever strikes the chain shows
        feed.show_contracts(_view("ticket"), contracts).result(timeout=15)
    except ChainLineLimit as exc:
        st.warning(plain(exc))
    live = held_quotes([held[c] for c in legs if c in held],
                       {c: snapshot.quote(c) for c in legs if snapshot.quote(c) is not None})
    unit = reduce(math.gcd, (abs(q) for q in legs.values()))
    out = []
    for info, qty in zip(contracts, legs.values()):
        quote = _stock_quote(snapshot, listing) if not info.is_option else (
            feed.quote(info.con_id) or live.get(info.con_id) or OptionQuote(info))
        out.append(StructureLeg(info, qty // unit, quote))
    units = unit * int(st.session_state.get("trade_units", 1) or 1)
    kind = st.session_state.get(KIND_KEY, "custom")
    return Structure(kind, listing.symbol, tuple(out), units=units,
                     description=f"{kind}: " + ", ".join(leg.label for leg in out))


def _natural(structure: Structure) -> float | None:
    total = 0.0
    for leg in structure.legs:
        q = leg.quote
        price = (q.ask if leg.quantity > 0 else q.bid) if q is not None else None
        if price is None:
            return None
        total += leg.quantity * price
    return total


def draft_section(services, listing) -> None:
    st.subheader("Ticket")
    structure = current_structure(services, listing)
    if structure is None:
        st.info("Add legs from the chain (select a strike) or build a template.")
        return
    st.caption(plain(structure.description))
    common.show_table(sr.legs_frame(structure), hide_index=True, column_config=sr.LEG_COLUMNS, width="stretch")
    c = st.columns(4)
    mode = c[0].segmented_control("Limit price", PRICE_MODES, default="Mid", key="trade_price_mode") or "Mid"
    mid, natural = structure.net_mid(), _natural(structure)
    single = len(structure.legs) == 1
    if mode == "Custom":
        limit = c[1].number_input("Limit (per unit, − = credit)", value=round(mid or 0.0, 2), step=0.01,
                                  format="%.2f", key="trade_limit")
    else:
        raw = mid if mode == "Mid" else natural
        limit = None if raw is None else round(abs(raw) if single else raw, 2)
        c[1].metric("Limit", common.DASH if limit is None else f"{limit:+.2f}",
                    help="Per combo unit and share; a single leg is priced per share")
    c[2].metric("Mid", common.DASH if mid is None else f"{mid:+.2f}")
    c[3].metric("Natural", common.DASH if natural is None else f"{natural:+.2f}")
    snapshot = services.runtime.snapshot()
    spot = _spot(snapshot, listing)
    options = sorted({leg.contract.expiry for leg in structure.legs if leg.contract.expiry})
    waiting = awaiting_quotes(structure)
    if waiting:
        st.info(f"Waiting for quotes/Greeks of {len(waiting)} leg{'s' if len(waiting) > 1 else ''} "
                f"({plain(', '.join(waiting))}): the ticket's risk and Review follow once they arrive.",
                icon=":material/hourglass_top:")
        st.fragment(_rerun_when_quoted, run_every=1.0)(services, listing)
        ticket_buttons(services, structure, limit, None, waiting=len(waiting))
        return
    try:
        spy = snapshot.underlying("SPY").spot if snapshot.underlying("SPY") else None
        risk_price = None if single or limit is None else limit
        horizon = st.select_slider(
            "Value the risk graph at", options=["today", *options], value=options[0] if options else "today",
            format_func=lambda d: "today only" if d == "today" else f"{d:%Y-%m-%d} expiry",
            key="trade_horizon", help="Legs expiring later are valued by Black-Scholes at that date")
        tr = ticket_risk(structure, snapshot.legs, spot, common.utcnow(), services.settings.risk_free_rate,
                         services.settings.betas, spy, price=risk_price,
                         expiry=None if horizon == "today" else horizon, portfolio_greeks=snapshot.totals)
    except StructureError as exc:
        st.warning(plain(exc))
        tr = None
    if tr is not None:
        sr.show(tr, limit if not single else (mid and math.copysign(limit or 0, mid)))
    ticket_buttons(services, structure, limit, tr)


def _rerun_when_quoted(services, listing) -> None:
    """While the ticket's legs wait for their quotes/Greeks, look each second; draw the risk and
    enable Review once they are all there (nothing is clickable on the ticket meanwhile but
    Save and Clear, which do not need them)."""
    structure = current_structure(services, listing)
    if structure is not None and not awaiting_quotes(structure):
        st.rerun()


def ticket_buttons(services, structure: Structure, limit: float | None, tr, waiting: int = 0) -> None:
    desk = services.orders
    if not desk.trading_available:
        st.caption("Trading is unavailable: the audit log is held by another v6 process.")
        return
    origin = st.session_state.get(ORIGIN_KEY, "chain")
    c = st.columns(3)
    saved_id = st.session_state.get("v6_trade_ticket")
    try:
        if c[0].button("Save draft", key="trade_save", help="Keep it unconfirmed (audited); edit it on Orders"):
            ticket = draft_structure(desk, structure, session_id(), origin=origin, limit=limit)
            st.session_state["v6_trade_ticket"] = ticket.ticket_id
            st.success(f"Saved as draft {ticket.ticket_id}.")
        if c[1].button("Review", key="trade_review", type="primary", disabled=bool(waiting),
                       help=f"Waiting for quotes/Greeks of {waiting} leg(s)" if waiting else
                       "Checks the limits, asks IB what-if (buying-power effect), then shows it to confirm"):
            ticket = None
            if saved_id:
                try:
                    ticket = desk.ticket(saved_id)
                    if not ticket.editable:
                        ticket = None
                    elif ticket.limit_price != limit:
                        ticket = desk.edit(saved_id, session_id(), limit_price=limit)
                except OrderDeskError:
                    ticket = None
            if ticket is None:
                ticket = draft_structure(desk, structure, session_id(), origin=origin, limit=limit)
                st.session_state["v6_trade_ticket"] = ticket.ticket_id
            desk.preview(ticket.ticket_id, session_id())
            st.session_state[RISK_KEY] = (ticket.ticket_id, tr, limit)
            st.session_state[tw.REVIEW_KEY] = ticket.ticket_id
            st.session_state.get(tw.OUTCOME_KEY, {}).pop(ticket.ticket_id, None)
        if c[2].button("Clear", key="trade_clear"):
            for key in (LEGS_KEY, KIND_KEY, "v6_trade_ticket", sr.ROLL_KEY, ORIGIN_KEY):
                st.session_state.pop(key, None)
            services.chains.release(_view("ticket"))
            st.rerun()
    except TicketBlocked as exc:
        for problem in exc.problems:
            st.error(plain(problem))
    except OrderDeskError as exc:
        st.error(plain(exc))


@st.dialog("Review order", width="large", dismissible=False)
def review_dialog(ticket_id: str) -> None:
    # the ticket's risk (portfolio before -> after) is part of the review body, as on Orders
    st.fragment(tw._review_body, run_every=refresh_seconds())(ticket_id)


def saved_drafts(services) -> None:
    desk = services.orders
    drafts = [t for t in desk.tickets() if t.origin in ("chain", "roll") and t.editable]
    if not drafts:
        return
    with st.expander(f"Saved drafts ({len(drafts)})"):
        for t in drafts:
            c = st.columns([4, 1, 1])
            c[0].write(plain(f"{t.ticket_id} · {t.label}"))
            if c[1].button("Edit on Orders", key=f"draft_open_{t.ticket_id}"):
                tw.open_tickets([t])
            if c[2].button("Discard", key=f"draft_discard_{t.ticket_id}"):
                try:
                    discard_draft(desk, t.ticket_id, session_id())
                    st.rerun()
                except OrderDeskError as exc:
                    st.error(plain(exc))


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    render_page(body, refresh=False)
