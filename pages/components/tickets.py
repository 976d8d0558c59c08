"""Ticket widgets shared by the Positions, Signals and Orders pages (not a page itself).

Everything that decides anything lives in `v6core.orders.OrderDesk`; these widgets only draft
tickets, show them, and pass the operator's edits and confirmation to the desk. The review
dialog and its live status run in fragments, so a refresh never closes the dialog.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from pages.components import common
from pages.components import structure_risk
from pages.components.common import DASH, fmt_age, fmt_greek, fmt_money, plain, session_id
from v6core.orders import (
    ORDER_TYPES,
    TIFS,
    AlreadyConfirmed,
    OrderDeskError,
    Ticket,
    TicketBlocked,
    TicketState,
    order_legs,
    strategy_legs,
)

log = logging.getLogger("v6.pages.tickets")

TICKET_KEY = "ticket_id"              # the ticket the Orders page edits (set by Signals and Positions)
TICKET_LIST_KEY = "ticket_ids"        # every ticket drafted together (close as separate legs)
REVIEW_KEY = "v6_review_ticket"       # the ticket whose review dialog is open
OUTCOME_KEY = "v6_confirm_outcome"    # what the last confirm attempt said, per ticket
DRAFTED_FROM_KEY = "v6_drafted_from"  # (strategy id, ticket ids) of the last close-button draft
ORDERS_PAGE = "pages/orders.py"

STATE_COLOR = {
    "drafted": "gray", "checked": "blue", "previewed": "blue", "confirmed": "orange",
    "sent": "orange", "working": "orange", "filled": "green", "cancelled": "gray",
    "rejected": "red", "uncertain": "red", "discarded": "gray",
}


# ---------------------------------------------------------------- handing tickets to the Orders page


def open_tickets(tickets: list[Ticket], origin: str = "") -> None:
    """Make these tickets the Orders page's current ones and go there."""
    st.session_state[TICKET_KEY] = tickets[0].ticket_id
    st.session_state[TICKET_LIST_KEY] = [t.ticket_id for t in tickets]
    if origin:
        st.session_state[DRAFTED_FROM_KEY] = (origin, [t.ticket_id for t in tickets])
    try:
        st.switch_page(ORDERS_PAGE)
    except st.errors.StreamlitAPIException:
        # Outside st.navigation (e.g. a page run on its own) the ticket still waits on the Orders page.
        st.success(f"Ticket {tickets[0].ticket_id} drafted: open the Orders page to review it.")


def _drafted_link(origin: str) -> None:
    """A way to the tickets just drafted here, in case a page refresh overtook the page switch."""
    drafted = st.session_state.get(DRAFTED_FROM_KEY)
    if not drafted or drafted[0] != origin:
        return
    ids = ", ".join(drafted[1])
    try:
        st.page_link(ORDERS_PAGE, label=f"Review ticket {ids} on the Orders page", icon=":material/receipt_long:")
    except st.errors.StreamlitAPIException:
        st.caption(f"Ticket {plain(ids)} drafted: review it on the Orders page.")


def close_buttons(strategy: Any, legs: list[Any]) -> None:
    """Close a whole strategy (one combo order, or one ticket per leg) or one of its legs."""
    if not legs:
        return
    desk = common.get_services().orders
    key = strategy.strategy_id
    if not desk.trading_available:
        st.caption("Closing is unavailable: the audit log is held by another v6 process.")
        return
    legs = strategy_legs(strategy, legs)
    _drafted_link(key)
    try:                                   # drawn into the caller's container (one row on Positions)
        if len(legs) > 1 and st.button("Close strategy as one combo", key=f"close_combo_{key}",
                                       help="One BAG order that closes every leg together"):
            open_tickets(desk.draft_close(legs, as_combo=True, session_id=session_id()), key)
        if len(legs) > 1 and st.button("Close as separate legs", key=f"close_legs_{key}",
                                       help="One ticket per leg, each reviewed on its own"):
            open_tickets(desk.draft_close(legs, as_combo=False, session_id=session_id()), key)
        labels = {leg.contract.con_id: f"{leg.contract.label} ({leg.quantity:+g})" for leg in legs}
        chosen = st.selectbox("Leg", list(labels), format_func=labels.get, key=f"close_pick_{key}",
                              label_visibility="collapsed", width=280)
        if st.button("Close this leg", key=f"close_leg_{key}"):
            leg = next(leg for leg in legs if leg.contract.con_id == chosen)
            open_tickets(desk.draft_close([leg], as_combo=False, session_id=session_id()), key)
    except OrderDeskError as exc:
        st.error(plain(exc))


# ---------------------------------------------------------------- showing a ticket


def ticket_table(ticket: Ticket) -> pd.DataFrame:
    rows = [
        ("Ticket", ticket.ticket_id),
        ("State", ticket.state.value),
        ("Contract", ticket.description or ticket.contract.label),
        ("Action", ticket.action),
        ("Quantity", f"{ticket.quantity:g}"),
        ("Order type", ticket.order_type),
        ("Limit price", common.fmt_price(ticket.limit_price) if ticket.order_type == "LMT" and ticket.limit_price is not None
         else (DASH if ticket.order_type == "LMT" else "market")),
        ("Time in force", ticket.tif),
    ]
    for leg in ticket.combo_legs:
        rows.append(("Combo leg", f"{leg.action} {leg.ratio} x {leg.contract.label}"))
    if ticket.bracket:
        exit_action = "SELL" if ticket.action == "BUY" else "BUY"
        rows.append(("Bracket take profit (sent)", f"{exit_action} LMT {_price(ticket.target)} GTC"))
        rows.append(("Bracket stop (sent)", f"{exit_action} STP {_price(ticket.stop)} GTC"))
    elif ticket.stop is not None or ticket.target is not None:
        where = " on the underlying" if ticket.is_combo else ""
        rows.append((f"Signal stop / target{where} (not sent)",
                     f"{_price(ticket.stop)} / {_price(ticket.target)}"))
    if ticket.order_id is not None:
        rows.append(("IB order id / perm id", f"{ticket.order_id} / {ticket.perm_id or DASH}"))
    if ticket.child_order_ids:
        rows.append(("Bracket exit order ids", " / ".join(str(i) for i in ticket.child_order_ids)))
    if ticket.status:
        rows.append(("IB status", ticket.status))
        rows.append(("Filled", f"{ticket.filled:g}" + (f" @ {ticket.avg_fill_price:.2f}"
                                                       if ticket.avg_fill_price else "")))
    if ticket.last_message:
        rows.append(("Gateway message", ticket.last_message))
    return pd.DataFrame(rows, columns=["Field", "Value"])


def _price(value: float | None) -> str:
    return common.fmt_price(value)


def show_ticket(ticket: Ticket) -> None:
    st.badge(ticket.state.value, color=STATE_COLOR.get(ticket.state.value, "gray"))
    common.show_table(ticket_table(ticket), hide_index=True, width="stretch")
    if ticket.child_order_ids:
        _bracket_exits(ticket)


def exit_rows(ticket: Ticket, orders) -> list[dict]:
    """The bracket's exits as the gateway reports them now (empty until it does)."""
    by_id = {o.order_id: o for o in orders if o.order_id in ticket.child_order_ids}
    return [{"Order id": i, "Exit": "take profit" if o.order_type == "LMT" else "stop",
             "Action": o.action, "Type": o.order_type,
             "Price": _price(o.aux_price if o.order_type == "STP" else o.limit_price),
             "Status": common.text(o.status), "Filled": f"{o.filled:g}"}
            for i in ticket.child_order_ids if (o := by_id.get(i)) is not None]


def _bracket_exits(ticket: Ticket) -> None:
    try:
        orders = common.get_services().runtime.snapshot().orders
    except Exception:          # no runtime (a test of the table alone): the ids above say enough
        return
    rows = exit_rows(ticket, orders)
    if rows:
        st.caption("Bracket exits at the gateway")
        common.show_table(pd.DataFrame(rows), hide_index=True, width="stretch")


def show_preview(ticket: Ticket) -> None:
    preview = ticket.preview
    if preview is None:
        return
    for warning in preview.warnings:       # naked/uncovered shorts and stale prices, before anything else
        st.warning(plain(warning))
    w = preview.what_if
    cols = st.columns(4)
    cols[0].metric("Initial margin change", fmt_money(w.init_margin_change, signed=True))
    cols[1].metric("Maintenance margin change", fmt_money(w.maint_margin_change, signed=True))
    cols[2].metric("Commission", fmt_money(w.commission))
    cols[3].metric("Notional", fmt_money(preview.notional, decimals=0))
    if w.warning:
        st.warning("IB: " + plain(w.warning))
    # Named by contract, aged by the quote's own tick time: at preview and now (the dialog stays
    # open while the quote it was made on grows old).
    contract_names = {c.con_id: c.label for c, _ in order_legs(preview.spec)}
    now = _utcnow()
    quote_rows = [{"Contract": contract_names.get(q.con_id) or preview.spec.contract.label,
                   "Bid": _price(q.bid), "Ask": _price(q.ask), "Last": _price(q.last),
                   "Age at preview": fmt_age((preview.made_at - q.time).total_seconds()) if q.time else DASH,
                   "Age now": fmt_age((now - q.time).total_seconds()) if q.time else DASH}
                  for q in preview.quotes]
    if quote_rows:
        st.caption("Quote at preview")
        common.show_table(pd.DataFrame(quote_rows), hide_index=True, width="stretch")
    names = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")
    greeks = pd.DataFrame({
        "Greek": [common.GREEK_LABELS[n] for n in names],
        "Before": [fmt_greek(n, getattr(preview.greeks_before, n)) for n in names],
        "This order": [fmt_greek(n, getattr(preview.order_greeks, n)) for n in names],
        "After": [fmt_greek(n, getattr(preview.greeks_after, n)) for n in names],
    })
    st.caption("Portfolio Greeks before → after")
    common.show_table(greeks, hide_index=True, width="stretch")
    account = plain(preview.account) + (" (paper)" if preview.is_paper else " (LIVE)")
    st.caption(f"Account {account} · previewed {fmt_age((_utcnow() - preview.made_at).total_seconds())} ago")


def _utcnow():
    from pages.components.common import utcnow

    return utcnow()


# ---------------------------------------------------------------- editing


def ticket_editor(ticket: Ticket) -> None:
    """The editable fields; applying an edit sends the ticket back to "drafted"."""
    desk = common.get_services().orders
    if not ticket.editable:
        return
    tid = ticket.ticket_id
    with st.form(key=f"edit_{tid}"):
        cols = st.columns(5)
        action = cols[0].selectbox("Action", ("BUY", "SELL"), index=("BUY", "SELL").index(ticket.action),
                                   key=f"edit_action_{tid}")
        quantity = cols[1].number_input("Quantity", value=float(ticket.quantity), step=1.0, min_value=0.0,
                                        format="%g", key=f"edit_qty_{tid}")
        order_type = cols[2].selectbox("Order type", ORDER_TYPES, index=ORDER_TYPES.index(ticket.order_type),
                                       key=f"edit_type_{tid}")
        limit = cols[3].number_input("Limit price", value=ticket.limit_price, step=0.01, format="%.2f",
                                     key=f"edit_limit_{tid}",
                                     help="Used for LMT orders; a combo's limit is per combo unit "
                                          "(negative: a credit)")
        tif = cols[4].selectbox("Time in force", TIFS, index=TIFS.index(ticket.tif), key=f"edit_tif_{tid}")
        exits = {}
        if not ticket.is_combo:     # a combo gets no bracket (see v6core.orders.checks.bracket_problems)
            cols = st.columns([2, 1, 1])
            exits["bracket"] = cols[0].checkbox(
                "Bracket: send the target as a take-profit LMT and the stop as a STP (GTC, one cancels "
                "the other)", value=ticket.bracket, key=f"edit_bracket_{tid}")
            exits["stop"] = cols[1].number_input("Stop", value=ticket.stop, step=0.01, format="%.2f",
                                                 key=f"edit_stop_{tid}")
            exits["target"] = cols[2].number_input("Target", value=ticket.target, step=0.01,
                                                   format="%.2f", key=f"edit_target_{tid}")
        if st.form_submit_button("Apply changes"):
            try:
                desk.edit(tid, session_id(), action=action, quantity=quantity, order_type=order_type,
                          limit_price=limit, tif=tif, **exits)
            except OrderDeskError as exc:
                st.error(plain(exc))
    if ticket.problems:
        for problem in ticket.problems:
            st.error(plain(problem))
    if st.button("Discard draft", key=f"discard_{tid}", help="Throw this ticket away (recorded in the audit)"):
        try:
            desk.discard(tid, session_id())
            st.rerun()
        except OrderDeskError as exc:
            st.error(plain(exc))
    if st.button("Review", key=f"review_{tid}", type="primary",
                 help="Checks the limits, asks IB what-if, then shows the whole order to confirm"):
        try:
            desk.preview(tid, session_id())
        except TicketBlocked as exc:
            for problem in exc.problems:
                st.error(plain(problem))
            return
        except OrderDeskError as exc:
            st.error(plain(exc))
            return
        st.session_state[REVIEW_KEY] = tid
        st.session_state.get(OUTCOME_KEY, {}).pop(tid, None)


# ---------------------------------------------------------------- review and confirm


def _close_review() -> None:
    st.session_state.pop(REVIEW_KEY, None)


def _confirm_clicked(ticket_id: str, typed_key: str) -> None:
    """Button callback: runs once per click, before the dialog re-renders."""
    desk = common.get_services().orders
    outcomes = st.session_state.setdefault(OUTCOME_KEY, {})
    try:
        desk.confirm(ticket_id, session_id(), typed=st.session_state.get(typed_key) or None)
        outcomes.pop(ticket_id, None)
    except AlreadyConfirmed as exc:
        # Repeated clicks of this session are not news; another session's confirmation is.
        if desk.ticket(ticket_id).confirmed_by != session_id():
            outcomes[ticket_id] = ("info", f"{exc} (confirmed in another browser session)")
    except TicketBlocked as exc:
        outcomes[ticket_id] = ("error", "Blocked: " + "; ".join(exc.problems))
    except OrderDeskError as exc:
        outcomes[ticket_id] = ("error", str(exc))


def _placement_line(ticket: Ticket) -> str | None:
    """What this session's confirmation achieved, from the desk (not from click bookkeeping)."""
    if not ticket.confirmed_by or ticket.confirmed_by != session_id():
        return None
    if ticket.state == TicketState.CONFIRMED:
        return "Confirmed: sending to the gateway…"
    return f"Sent once as order {ticket.order_id if ticket.order_id is not None else '(no id yet)'}: {ticket.state.value}."


# Not dismissible by a click outside or Escape: quick repeated clicks on Confirm must never close
# it by landing on the backdrop; the operator closes it with its own button.
@st.dialog("Review order", width="large", dismissible=False)
def review_dialog(ticket_id: str) -> None:
    # Live status at the sidebar's interval (none while the operator paused refresh).
    st.fragment(_review_body, run_every=common.refresh_seconds())(ticket_id)


def _review_body(ticket_id: str) -> None:
    desk = common.get_services().orders
    try:
        ticket = desk.ticket(ticket_id)
    except OrderDeskError as exc:
        st.error(plain(exc))
        return
    # What the operator's last action achieved or why it was refused comes first, where they look.
    placement = _placement_line(ticket)
    if placement is not None:
        st.success(plain(placement))
    outcome = st.session_state.get(OUTCOME_KEY, {}).get(ticket_id)
    if outcome is not None and placement is None:
        getattr(st, outcome[0])(plain(outcome[1]))
    if ticket.audit_pending:
        st.warning(plain(ticket.last_message))
    show_ticket(ticket)
    show_preview(ticket)
    structure_risk.review_risk(ticket)
    typed_key = f"typed_{ticket_id}"
    if ticket.state == TicketState.PREVIEWED and ticket.preview is not None \
            and ticket.preview.needs_typed_confirmation:
        st.warning(f"LIVE account {plain(ticket.preview.account)}: type the account id or LIVE to confirm.")
        st.text_input("Typed confirmation", key=typed_key)
    cols = st.columns(2)
    # The button stays in place (disabled once confirmed) so extra clicks land on nothing live.
    cols[0].button("Confirm and place", key=f"confirm_{ticket_id}", type="primary",
                   disabled=ticket.state != TicketState.PREVIEWED,
                   on_click=_confirm_clicked, args=(ticket_id, typed_key))
    if cols[1].button("Close", key=f"close_review_{ticket_id}"):
        _close_review()
        st.rerun()
    if ticket.state in (TicketState.SENT, TicketState.WORKING):
        st.info(f"Working at the gateway: {plain(ticket.status or ticket.state.value)}, "
                f"filled {ticket.filled:g} of {ticket.quantity:g}.")
        if st.button("Cancel this order", key=f"dialog_cancel_{ticket_id}"):
            try:
                desk.cancel(ticket_id, session_id())
            except OrderDeskError as exc:
                st.error(plain(exc))
        if ticket.order_type == "LMT" and not ticket.cancel_requested:
            _modify_limit(desk, ticket)
    elif ticket.state == TicketState.FILLED:
        st.success(f"Filled {ticket.filled:g} @ {_price(ticket.avg_fill_price)}.")
    elif ticket.state == TicketState.REJECTED:
        st.error("Rejected by the gateway: " + plain(ticket.last_message or ticket.status))
    elif ticket.state == TicketState.CANCELLED:
        st.info("Cancelled.")
    elif ticket.state == TicketState.UNCERTAIN:
        st.error("Uncertain: the order may or may not have reached the gateway. "
                 "It is never re-sent automatically; see the Orders page.")
    elif ticket.state in (TicketState.DRAFTED, TicketState.CHECKED):
        st.warning("The ticket changed after its preview: close this and review it again.")


def _modify_limit(desk, ticket: Ticket) -> None:
    """A new limit for the working order: checked like a new order, confirmed by this click,
    audited, sent under the same IB order id."""
    cols = st.columns([2, 3])
    new_limit = cols[0].number_input("New limit price", value=ticket.limit_price, step=0.01, format="%.2f",
                                     key=f"modify_limit_{ticket.ticket_id}")
    if cols[1].button("Confirm new limit", key=f"modify_{ticket.ticket_id}",
                      help="Modifies the working order at the gateway (same order id)"):
        try:
            modified = desk.modify_limit(ticket.ticket_id, session_id(), new_limit)
            st.success(f"Limit changed to {modified.limit_price:.2f} on order {modified.order_id}.")
        except TicketBlocked as exc:
            for problem in exc.problems:
                st.error(plain(problem))
        except OrderDeskError as exc:
            st.error(plain(exc))


def maybe_show_review() -> None:
    """Re-open the review dialog on every rerun while it is meant to be open."""
    ticket_id = st.session_state.get(REVIEW_KEY)
    if ticket_id:
        review_dialog(ticket_id)
