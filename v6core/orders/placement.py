"""Confirmation and placement: a ticket is claimed once in the store, audited as confirmed, then
sent once with its ticket id as IB's `orderRef`. Also the cancels, which act on placed orders.

A bracket ticket is one placement too: its entry and both exits go out together under the one
claim (the exits' orderRefs are the ticket id + ":tp" / ":sl"), so a second confirm, a resend
refused by the claim or a crash never sends any of the three twice.

The claim (`ClaimStore.claim`, a create-if-absent exactly one caller wins) is what makes the
placement exactly-once across threads, browser tabs, processes and hosts; the in-memory
reservation only spares a second click the trip to the store.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from v6core.config import Settings
from v6core.models import OrderView
from v6core.orders.book import TicketBook
from v6core.orders.checks import evaluate
from v6core.orders.claims import ClaimStore, claim_record, confirm_key, describe_holder, resend_key
from v6core.orders.codec import spec_to_json
from v6core.orders.follow import Follower
from v6core.orders.tickets import (
    EDITABLE_STATES,
    FINAL_STATES,
    FOLLOWED_STATES,
    LIVE_WORD,
    AlreadyConfirmed,
    OrderDeskError,
    Ticket,
    TicketBlocked,
    TicketState,
    apply_view,
    error_text,
    utc_now,
)


class Placement:
    """Places a previewed ticket exactly once; resends an uncertain one only on request."""

    def __init__(self, book: TicketBook, settings: Settings, runtime: Any, follower: Follower,
                 claims: ClaimStore | None, *, request_timeout: float) -> None:
        self.book = book
        self.claims = claims
        self.settings = settings
        self.runtime = runtime
        self.follower = follower
        self.request_timeout = request_timeout

    def confirm(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """Place the previewed ticket exactly once. Refuses any second confirm, from anywhere."""
        book = self.book
        book.require_audit()
        with book.lock:
            ticket = book.get(ticket_id)
            if ticket_id in book.reserved or ticket.state not in EDITABLE_STATES:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already confirmed ({ticket.state.value}); "
                                       "it is never placed twice.")
            holder = self._claim_holder(confirm_key(ticket_id))
            if holder is not None and holder.get("purpose") == "discard":
                raise OrderDeskError(f"Ticket {ticket_id} was discarded ({describe_holder(holder)}); "
                                     "it is never placed.")
            if holder is not None:
                book.reserved.add(ticket_id)
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already confirmed (audit log claim by "
                                       f"{describe_holder(holder)}); it is never placed twice.")
            if ticket.state != TicketState.PREVIEWED or ticket.preview is None:
                raise OrderDeskError("Review the ticket (checks and preview) before confirming it.")
            if ticket.preview.spec != ticket.spec:
                raise OrderDeskError("The ticket changed after its preview; review it again.")
            result = evaluate(self.settings, ticket, self.runtime.snapshot())
            if not result.ok:
                raise TicketBlocked(result.problems)
            if result.needs_typed_confirmation:
                self._require_typed(typed)
            self._claim(confirm_key(ticket_id), ticket_id, session_id)
            book.reserved.add(ticket_id)
            confirmed = replace(ticket, state=TicketState.CONFIRMED, confirmed_by=session_id, updated_at=utc_now())
            try:
                book.write(confirmed, "confirmed", session_id, detail={
                    "spec": spec_to_json(confirmed.spec), "typed_confirmation": bool(typed),
                    "account": ticket.preview.account, "is_paper": ticket.preview.is_paper})
            except Exception as exc:
                # Nothing was sent and nothing durable says "confirmed": give the claim back so
                # the operator may retry.
                self.claims.release(confirm_key(ticket_id))
                book.reserved.discard(ticket_id)
                raise OrderDeskError(f"The audit log could not record the confirmation ({error_text(exc)}): "
                                     "nothing was sent. Try again when the lake accepts writes.") from exc
            book.put(confirmed)
        return self._place(confirmed, session_id)

    def resend(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """The operator's explicit re-confirmation of an uncertain ticket.

        Asks the gateway for an order with this ticket's orderRef first: if one exists the ticket
        is reconciled to it and nothing is sent."""
        book = self.book
        book.require_audit()
        resend_key = ticket_id + "#resend"
        with book.lock:
            ticket = book.get(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}, not uncertain: nothing to re-send.")
            if resend_key in book.reserved:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already being re-sent.")
            book.reserved.add(resend_key)
        try:
            return self._resend(ticket_id, session_id, typed)
        finally:
            with book.lock:
                book.reserved.discard(resend_key)

    def _resend(self, ticket_id: str, session_id: str, typed: str | None) -> Ticket:
        book = self.book
        try:
            views = self.runtime.find_orders_by_ref(ticket_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"The gateway could not be asked for this ticket's order ({error_text(exc)}); "
                                 "nothing was sent.") from exc
        if views:
            return self.follower.reconcile_to(ticket_id, views, session_id)
        ticket = book.get(ticket_id)
        book.write(ticket, "gateway_checked", session_id, detail={"found": 0, "before": "resend"})
        result = evaluate(self.settings, ticket, self.runtime.snapshot())
        if not result.ok:
            raise TicketBlocked(result.problems)
        if result.needs_typed_confirmation:
            self._require_typed(typed)
        with book.lock:
            ticket = book.get(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is {ticket.state.value}: nothing to re-send.")
            # One resend per ticket, claimed like the confirmation: never twice, from anywhere.
            self._claim(resend_key(ticket_id), ticket_id, session_id, already="already re-sent once")
            confirmed = replace(ticket, state=TicketState.CONFIRMED, confirmed_by=session_id, updated_at=utc_now())
            try:
                book.write(confirmed, "confirmed", session_id,
                           detail={"spec": spec_to_json(confirmed.spec), "resend": True,
                                   "typed_confirmation": bool(typed)})
            except Exception:
                self.claims.release(resend_key(ticket_id))
                raise
            book.put(confirmed)
        return self._place(confirmed, session_id)

    def _require_typed(self, typed: str | None) -> None:
        snapshot = self.runtime.snapshot()
        account = snapshot.connection.account or snapshot.account.account
        entered = (typed or "").strip()
        if not entered or entered not in {account, LIVE_WORD}:
            raise TicketBlocked([f"Live account {account}: type the account id or {LIVE_WORD} "
                                 "to confirm this order."])

    def _place(self, ticket: Ticket, session_id: str) -> Ticket:
        book = self.book
        children: list[OrderView] = []
        try:
            if ticket.spec.is_bracket:
                view, *children = self.runtime.place_bracket(ticket.spec, ticket.ticket_id).result(
                    timeout=self.request_timeout)
            else:
                view = self.runtime.place_order(ticket.spec, ticket.ticket_id).result(
                    timeout=self.request_timeout)
        except Exception as exc:
            # The order may or may not have reached the gateway: never guess, never re-send.
            uncertain = replace(ticket, state=TicketState.UNCERTAIN, last_message=error_text(exc),
                                updated_at=utc_now())
            recorded = book.write_or_defer(uncertain, "uncertain", session_id, detail={"reason": error_text(exc)})
            book.put(self._unrecorded(uncertain) if not recorded else uncertain)
            return book.get(ticket.ticket_id)
        sent = replace(apply_view(ticket, view), child_order_ids=tuple(c.order_id for c in children))
        detail: dict[str, Any] = {"last_message": view.last_message, "filled": view.filled}
        if children:
            detail["child_order_ids"] = list(sent.child_order_ids)
            detail["children"] = [{"order_id": c.order_id, "perm_id": c.perm_id, "order_ref": c.order_ref,
                                   "order_type": c.order_type, "action": c.action, "status": c.status,
                                   "price": c.aux_price if c.order_type == "STP" else c.limit_price,
                                   "last_message": c.last_message} for c in children]
        # The order is at the gateway now: what follows is a fact to record, never a reason to fail.
        recorded = book.write_or_defer(sent, "sent", session_id, status=view.status, detail=detail)
        if sent.state in FINAL_STATES:     # queued behind "sent" if that one had to wait
            recorded = book.write_or_defer(sent, sent.state.value, session_id, status=view.status,
                                           detail={"reason": view.last_message}) and recorded
        book.put(sent if recorded else self._unrecorded(sent))
        return book.get(ticket.ticket_id)

    def _unrecorded(self, ticket: Ticket) -> Ticket:
        where = f" as order {ticket.order_id}" if ticket.order_id else ""
        return replace(ticket, audit_pending=True, last_message=(
            f"Sent to the gateway{where}, but the audit log could not record it ({self.book.audit_error}). "
            "v6 keeps following the order and writes the record as soon as the lake accepts writes "
            "again; do not send it again."))

    def _claim_holder(self, key: str) -> dict[str, Any] | None:
        return self.claims.holder(key) if self.claims is not None else None

    def _claim(self, key: str, ticket_id: str, session_id: str, already: str = "already confirmed") -> None:
        """Win the ticket's claim in the store, or refuse: someone else (anywhere) has it."""
        if self.claims is None:
            raise OrderDeskError("Trading is unavailable: no claim store to make placement exactly-once.")
        record = claim_record(key.rpartition(".")[2], ticket_id=ticket_id, session_id=session_id,
                              client_id=getattr(self.settings, "client_id", None))
        try:
            won = self.claims.claim(key, record)
        except OSError as exc:
            raise OrderDeskError(f"The audit log could not record the confirmation ({error_text(exc)}): "
                                 "nothing was sent. Try again when the lake accepts writes.") from exc
        if not won:
            raise AlreadyConfirmed(f"Ticket {ticket_id} is {already} (audit log claim by "
                                   f"{describe_holder(self.claims.holder(key))}); it is never placed twice.")

    # ----------------------------------------------------------------- modify

    def modify_limit(self, ticket_id: str, session_id: str, limit_price: float) -> Ticket:
        """The operator's confirmed change of a working order's limit price: checked like a new
        order, claimed once per modification, audited, sent under the same IB order id."""
        book = self.book
        book.require_audit()
        with book.lock:
            ticket = book.get(ticket_id)
            if ticket.state not in FOLLOWED_STATES or not ticket.order_id or ticket.order_type != "LMT":
                raise OrderDeskError(f"Ticket {ticket_id} has no working limit order to modify ({ticket.state.value}).")
            if ticket.cancel_requested:
                raise OrderDeskError(f"Ticket {ticket_id} is being cancelled: it cannot be modified.")
            modified = replace(ticket, limit_price=float(limit_price))
            result = evaluate(self.settings, modified, self.runtime.snapshot())
            if not result.ok:
                raise TicketBlocked(result.problems)
            number = ticket.modifications + 1
            self._claim(f"{ticket_id}.modify-{number}", ticket_id, session_id,
                        already=f"already modified (modification {number})")
            book.write(ticket, "modify_confirmed", session_id, detail={
                "modification": number, "limit_price_before": ticket.limit_price,
                "limit_price": modified.limit_price, "warnings": list(result.warnings)})
            modified = replace(modified, modifications=number, updated_at=utc_now())
            book.put(modified)
        try:
            self.runtime.modify_limit(ticket.order_id, modified.limit_price).result(timeout=self.request_timeout)
        except Exception as exc:
            book.write_or_defer(modified, "modify_failed", session_id, detail={"reason": error_text(exc)})
            raise OrderDeskError(f"The modification may not have reached the gateway ({error_text(exc)}); "
                                 "the order's status shows which limit it works at.") from exc
        book.write_or_defer(modified, "modify_sent", session_id, detail={"limit_price": modified.limit_price})
        return book.get(ticket_id)

    # ----------------------------------------------------------------- cancel

    def cancel(self, ticket_id: str, session_id: str) -> Ticket:
        """Cancel the working order of a ticket."""
        book = self.book
        book.require_audit()
        with book.lock:
            ticket = book.get(ticket_id)
            # The entry working: cancelling it cancels its bracket's exits (the gateway does).
            # The entry filled: the exits still working are what is left to cancel.
            exits = [] if ticket.state in FOLLOWED_STATES else self._working_exits(ticket)
            if ticket.order_id is None or (ticket.state not in FOLLOWED_STATES and not exits):
                raise OrderDeskError(f"Ticket {ticket_id} has no working order to cancel ({ticket.state.value}).")
            if ticket.state in FOLLOWED_STATES:
                ticket = replace(ticket, cancel_requested=True, updated_at=utc_now())
                book.put(ticket)
        book.write(ticket, "cancel_requested", session_id, status=ticket.status,
                   detail={"order_ids": exits or [ticket.order_id]})
        try:
            for order_id in exits or [ticket.order_id]:
                self.runtime.cancel_order(order_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel failed: {error_text(exc)}") from exc
        return ticket

    def _working_exits(self, ticket: Ticket) -> list[int]:
        """Order ids of the ticket's bracket exits the gateway still works."""
        if not ticket.child_order_ids:
            return []
        return [o.order_id for o in self.runtime.snapshot().orders
                if o.order_id in ticket.child_order_ids and o.is_working]

    def cancel_order(self, order_id: int, session_id: str) -> None:
        """Cancel any working order by IB order id (orders v6 did not place included)."""
        self.book.require_audit()
        ticket = next((t for t in self.book.all() if t.order_id == order_id), None)
        if ticket is not None and ticket.state in FOLLOWED_STATES:
            self.cancel(ticket.ticket_id, session_id)
            return
        self.book.write_raw("", "cancel_requested", session_id, order_id=order_id)
        try:
            self.runtime.cancel_order(order_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel failed: {error_text(exc)}") from exc

    def cancel_all(self, session_id: str) -> None:
        """Global cancel of every working order (the page asks for its own confirmation first)."""
        book = self.book
        book.require_audit()
        with book.lock:
            for tid, t in list(book.tickets.items()):
                if t.state in FOLLOWED_STATES:
                    book.tickets[tid] = replace(t, cancel_requested=True)
        book.write_raw("", "cancel_all_requested", session_id)
        try:
            self.runtime.cancel_all().result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel-all failed: {error_text(exc)}") from exc
