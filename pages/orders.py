"""Orders: the current ticket (edit → review → confirm), working orders, today's fills, audit trail.

The page itself does not refresh whole (that would close the review dialog); its live parts are
fragments that rerun on the sidebar's interval.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

from datetime import datetime  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from pages.components import common  # noqa: E402
from pages.components import tickets as tw  # noqa: E402
from pages.components.common import DASH, fmt_money, plain, refresh_seconds, render_page, session_id  # noqa: E402
from v6core.orders import AlreadyConfirmed, OrderDeskError, TicketBlocked, TicketState  # noqa: E402

CANCEL_ALL_KEY = "v6_cancel_all_open"
RESEND_KEY = "v6_resend_ticket"


def body(services) -> None:
    desk = services.orders
    st.title("Orders")
    if not desk.trading_available:
        st.warning("Trading is unavailable: " + plain(services.lake_error or "the audit log is not open")
                   + ". Working orders and fills are shown read-only.")
    interval = refresh_seconds()
    _changed_while_down(desk)
    _current_ticket(desk)
    st.divider()
    st.fragment(_all_tickets, run_every=interval)(desk)
    st.divider()
    st.fragment(_working_orders, run_every=interval)(services)
    st.divider()
    st.fragment(_fills, run_every=interval)(services)
    st.divider()
    _audit_trail(desk)
    tw.maybe_show_review()
    if st.session_state.get(CANCEL_ALL_KEY):
        _cancel_all_dialog()
    if st.session_state.get(RESEND_KEY):
        _resend_dialog(st.session_state[RESEND_KEY])


# ---------------------------------------------------------------- after a restart, and every ticket


def _changed_while_down(desk) -> None:
    """What the gateway did with v6's orders while v6 was not running (read from the desk)."""
    changes = desk.changes_since_restart()
    if not changes:
        return
    started = desk.recovered_at
    when = started.astimezone().strftime("%H:%M:%S") if started else "start"
    lines = []
    for ticket, before in changes:
        fill = (f", {ticket.filled:g} @ {ticket.avg_fill_price:.2f}"
                if ticket.filled and ticket.avg_fill_price else "")
        lines.append(f"- {ticket.ticket_id} · {ticket.label}: {before} → **{ticket.state.value}**{fill}")
    st.warning(f"While v6 was down (recovered at {when}), the gateway changed {len(changes)} "
               "ticket(s):\n" + "\n".join(lines))


def _all_tickets(desk) -> None:
    """Every ticket this desk knows, with its state: drafts from earlier runs and filled ones too."""
    tickets = desk.tickets()
    st.subheader(f"All tickets ({len(tickets)})")
    if not tickets:
        st.caption("No tickets yet.")
        return
    started = desk.recovered_at
    rows = [{
        "Ticket": t.ticket_id,
        "State": t.state.value,
        "Order": t.label,
        "IB order id": str(t.order_id) if t.order_id else DASH,
        "Filled": f"{t.filled:g}" + (f" @ {t.avg_fill_price:.2f}" if t.avg_fill_price else ""),
        "Drafted": t.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
                   + (" (earlier run)" if started and t.created_at < started else ""),
        "Note": (t.last_message or DASH)[:160],
    } for t in tickets]
    common.show_table(pd.DataFrame(rows), hide_index=True, width="stretch")


# ---------------------------------------------------------------- the ticket being edited


PICK_KEY = "v6_ticket_pick"


def _picked() -> None:
    # The browser sends the label it showed; if the ticket changed since, that label no longer maps
    # to an option and arrives as text: its first field is the ticket id.
    st.session_state[tw.TICKET_KEY] = str(st.session_state[PICK_KEY]).split(" · ")[0]


def _current_ticket(desk) -> None:
    st.subheader("Ticket")
    open_tickets = [t for t in desk.tickets() if t.editable or t.state == TicketState.UNCERTAIN]
    current = st.session_state.get(tw.TICKET_KEY)
    ids = [t.ticket_id for t in open_tickets]
    if current and current not in ids:
        ids.insert(0, current)
    if not ids:
        st.info("No ticket: create one from an actionable signal (Signals) or a close button (Positions).")
        return
    chosen = current if current in ids else ids[0]
    st.session_state[tw.TICKET_KEY] = chosen
    # The picker sits above the ticket but is drawn after it: an edit, a review or a confirmation
    # below changes the ticket in this same run, and the picker's labels must show the result.
    picker = st.container()
    try:
        ticket = desk.ticket(chosen)
    except OrderDeskError as exc:
        st.error(plain(exc))
        return
    tw.show_ticket(ticket)
    if ticket.state == TicketState.UNCERTAIN:
        _uncertain_actions(desk, ticket)
    elif ticket.editable:
        tw.ticket_editor(ticket)
    elif st.button("Show live status", key=f"status_{chosen}"):
        st.session_state[tw.REVIEW_KEY] = chosen
    with picker:
        st.session_state[PICK_KEY] = chosen          # the picker shows the ticket the body shows
        labels = {tid: _ticket_label(desk, tid) for tid in ids}
        st.selectbox("Ticket", ids, format_func=labels.get, key=PICK_KEY, on_change=_picked)


def _ticket_label(desk, tid: str) -> str:
    """`T-… · SELL 2 AAPL … @ 1.25 · previewed`, read from the desk when the picker is drawn."""
    try:
        ticket = desk.ticket(tid)
    except OrderDeskError:
        return tid
    price = (f"{common.fmt_price(ticket.limit_price)} LMT" if ticket.order_type == "LMT"
             and ticket.limit_price is not None else ticket.order_type)
    contract = ticket.description or ticket.contract.label
    return (f"{tid} · {ticket.action} {ticket.quantity:g} {contract} @ {price} {ticket.tif} · "
            f"{ticket.state.value}")


def _uncertain_actions(desk, ticket) -> None:
    st.error("Uncertain: this ticket was confirmed but v6 stopped before recording that it was sent. "
             "It is never re-sent automatically. Ask the gateway for an order with this ticket id first.")
    cols = st.columns(2)
    if cols[0].button("Check the gateway for this order", key=f"reconcile_{ticket.ticket_id}"):
        updated = desk.reconcile(ticket.ticket_id, session_id())
        if updated.state == TicketState.UNCERTAIN:
            st.warning("The gateway has no order with this ticket id.")
        else:
            st.success(f"Found at the gateway: order {updated.order_id} ({plain(updated.status)}).")
    if cols[1].button("Re-send this order…", key=f"resend_{ticket.ticket_id}"):
        st.session_state[RESEND_KEY] = ticket.ticket_id


def _dismiss_resend() -> None:
    st.session_state.pop(RESEND_KEY, None)


@st.dialog("Re-send an uncertain order", on_dismiss=_dismiss_resend)
def _resend_dialog(ticket_id: str) -> None:
    desk = common.get_services().orders
    ticket = desk.ticket(ticket_id)
    tw.show_ticket(ticket)
    st.warning("v6 asks the gateway for this ticket id again right before sending; "
               "if an order exists it is adopted and nothing is sent.")
    typed = st.text_input("Typed confirmation (live accounts only)", key=f"resend_typed_{ticket_id}")
    if st.button("Re-send", type="primary", key=f"resend_go_{ticket_id}"):
        try:
            updated = desk.resend(ticket_id, session_id(), typed=typed or None)
            st.success(f"Ticket {ticket_id}: {updated.state.value}.")
        except (AlreadyConfirmed, TicketBlocked, OrderDeskError) as exc:
            st.error(plain(exc))


# ---------------------------------------------------------------- working orders and cancel


CANCEL_SENT_KEY = "v6_cancel_sent"          # order ids this session asked to cancel
CANCEL_ALL_RESULT_KEY = "v6_cancel_all_result"


def _cancel_clicked(order_id: int) -> None:
    """Button callback (runs before the redraw): the order's buttons go as soon as it is sent."""
    desk = common.get_services().orders
    try:
        desk.cancel_order(order_id, session_id())
    except OrderDeskError as exc:
        st.session_state[CANCEL_ALL_RESULT_KEY] = ("error", plain(exc))
        return
    st.session_state.setdefault(CANCEL_SENT_KEY, set()).add(order_id)
    st.toast(f"Cancel sent for order {order_id}")


def _cancel_picked() -> None:
    _cancel_clicked(st.session_state["cancel_pick"])


def _working_orders(services) -> None:
    desk = services.orders
    snapshot = services.runtime.snapshot()
    working = [o for o in snapshot.orders if o.is_working]
    sent = st.session_state.setdefault(CANCEL_SENT_KEY, set())
    sent &= {o.order_id for o in working}          # forget orders the gateway has closed
    st.subheader(f"Working orders ({len(working)})")
    result = st.session_state.pop(CANCEL_ALL_RESULT_KEY, None)
    if result is not None:                          # our own text (gateway text made plain already)
        getattr(st, result[0])(result[1])
    if not working:
        st.caption("No working orders.")
        return
    table = pd.DataFrame([{
        "Order id": o.order_id, "Ticket": o.order_ref or DASH, "Contract": o.contract.label,
        "Action": o.action, "Qty": o.quantity, "Type": o.order_type,
        "Limit": o.limit_price, "Stop": o.aux_price, "Parent": o.parent_id or None, "TIF": o.tif,
        "Status": "cancel sent" if o.order_id in sent else common.text(o.status), "Filled": o.filled,
        "Remaining": o.remaining, "Message": common.text(o.last_message),
    } for o in working])
    common.show_table(table, hide_index=True, width="stretch",
                      column_config={"Limit": st.column_config.NumberColumn(format="%.2f"),
                                     "Stop": st.column_config.NumberColumn(format="%.2f"),
                                     "Parent": st.column_config.NumberColumn(format="%d")})
    if not desk.trading_available:
        return
    cancellable = [o for o in working if o.order_id not in sent]
    cols = st.columns(min(len(cancellable), 4) + 1)
    for i, order in enumerate(cancellable[:4]):
        cols[i].button(f"Cancel {order.order_id}", key=f"cancel_{order.order_id}",
                       on_click=_cancel_clicked, args=(order.order_id,))
    if len(cancellable) > 4:
        st.selectbox("Cancel another order", [o.order_id for o in cancellable[4:]], key="cancel_pick")
        st.button("Cancel selected", key="cancel_selected", on_click=_cancel_picked)
    if cols[-1].button("Cancel all…", key="cancel_all_open", type="primary"):
        st.session_state[CANCEL_ALL_KEY] = True
        st.rerun()


def _dismiss_cancel_all() -> None:
    st.session_state.pop(CANCEL_ALL_KEY, None)


def _cancel_all_clicked() -> None:
    """Button callback: send the global cancel and close the dialog in the same click."""
    desk = common.get_services().orders
    try:
        desk.cancel_all(session_id())
        st.session_state[CANCEL_ALL_RESULT_KEY] = ("success", "Global cancel sent.")
    except OrderDeskError as exc:
        st.session_state[CANCEL_ALL_RESULT_KEY] = ("error", f"Global cancel failed: {plain(exc)}")
    st.session_state.pop(CANCEL_ALL_KEY, None)


@st.dialog("Cancel every working order?", on_dismiss=_dismiss_cancel_all)
def _cancel_all_dialog() -> None:
    if not st.session_state.get(CANCEL_ALL_KEY):
        # The confirm click's callback sent the cancel (or failed): close by redrawing the page,
        # which shows the outcome under Working orders; the dialog's button is never live again.
        st.rerun()
    st.warning("This sends IB a global cancel: every working order of the account is cancelled, "
               "including orders not placed by v6.")
    st.button("Yes, cancel all orders", type="primary", key="cancel_all_confirm", on_click=_cancel_all_clicked)


# ---------------------------------------------------------------- fills and audit


def _fills(services) -> None:
    snapshot = services.runtime.snapshot()
    today = datetime.now(common.operator_zone()).date()        # the operator's day
    fills = [f for f in snapshot.fills if common.local(f.time).date() == today]
    st.subheader(f"Today's fills ({len(fills)})")
    if not fills:
        st.caption("No fills today.")
        return
    table = pd.DataFrame([{
        "Time": common.fmt_time(f.time, exchange=True), "Contract": f.contract.label, "Side": f.side,
        "Qty": f.quantity, "Price": f.price, "Realized P&L": f.realized_pnl, "Commission": f.commission,
        "Ticket": f.order_ref or DASH, "Order id": f.order_id, "Exec id": f.exec_id,
    } for f in sorted(fills, key=lambda f: f.time, reverse=True)])
    common.show_table(table, pnl=("Realized P&L",), hide_index=True, width="stretch",
                 column_config={"Price": st.column_config.NumberColumn(format="%,.2f"),
                                "Realized P&L": st.column_config.NumberColumn(format="%+,.2f"),
                                "Commission": st.column_config.NumberColumn(format="%,.2f")})


def _audit_trail(desk) -> None:
    st.subheader("Audit trail")
    if not desk.trading_available:
        st.caption("The audit log is not open in this process.")
        return
    known = [t.ticket_id for t in desk.tickets()]
    if not known:
        st.caption("No tickets yet.")
        return
    current = st.session_state.get(tw.TICKET_KEY)
    chosen = st.selectbox("Ticket", known, index=known.index(current) if current in known else 0,
                          key="v6_audit_pick")
    trail = desk.audit_trail(chosen)
    if trail.height == 0:
        st.caption("No audit rows for this ticket.")
        return
    frame = trail.sort("ts").select("ts", "event", "status", "order_id", "perm_id", "session_id", "detail").to_pandas()
    frame["ts"] = [common.fmt_time(t) for t in frame["ts"]]
    common.show_table(frame, hide_index=True, width="stretch",      # a dash where a row has no id
                      column_config={"ts": st.column_config.TextColumn(f"Time ({common.zone_name()})"),
                                     "order_id": st.column_config.NumberColumn("Order id", format="%d"),
                                     "perm_id": st.column_config.NumberColumn("Perm id", format="%d")})


render_page(body, refresh=False)
