"""Following placed orders: sync with the gateway's orders and fills, and recovery at start.

A crash leaves a trail that `recover()` finishes: a ticket confirmed but never recorded as sent
is "uncertain" until the gateway is asked for an order carrying its ticket id; it is never
re-sent on its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from v6core.models import FillView, OrderView, PortfolioSnapshot, parent_ref
from v6core.orders.book import TicketBook
from v6core.orders.claims import ClaimStore, claim_record, confirm_key
from v6core.orders.codec import spec_from_json
from v6core.orders.tickets import (
    FINAL_STATES,
    FOLLOWED_STATES,
    WORKING_STATUSES,
    Ticket,
    TicketState,
    apply_view,
    error_text,
    utc_now,
)

log = logging.getLogger(__name__)


class Follower:
    """Keeps every placed ticket in step with the gateway and audits each change."""

    def __init__(self, book: TicketBook, runtime: Any, claims: ClaimStore | None, *,
                 request_timeout: float, commission_grace: float, ack_timeout: float = 15.0) -> None:
        self.book = book
        self.runtime = runtime
        self.claims = claims
        self.request_timeout = request_timeout
        self.commission_grace = commission_grace
        self.ack_timeout = ack_timeout       # how long a sent order may stay unacknowledged
        self.recovered = threading.Event()
        self._first_seen_fill: dict[str, float] = {}
        self._unacknowledged_since: dict[str, float] = {}
        # Each recovered ticket's state as the audit log left it when v6 last stopped, to tell
        # the operator what changed at the gateway while v6 was down.
        self.states_at_restart: dict[str, TicketState] = {}
        self.recovered_at: datetime | None = None

    # ----------------------------------------------------------------- sync

    def sync(self, snapshot: PortfolioSnapshot | None = None) -> None:
        """Bring followed tickets up to date with the gateway's orders and fills; audit changes."""
        if self.book.audit is None:
            return
        recorded = self._flush_backlog()
        snapshot = snapshot or self.runtime.snapshot()
        with self.book.lock:
            followed = {t.ticket_id: t for t in self.book.tickets.values()
                        if t.state in FOLLOWED_STATES or (t.state in FINAL_STATES and t.order_id is not None)}
        by_ref: dict[str, OrderView] = {}
        for view in snapshot.orders:
            ticket = followed.get(view.order_ref)
            if ticket is None:
                self._adopt_child(followed.get(parent_ref(view.order_ref)), view)
                continue
            # A resent ticket also has its first, never-acknowledged order on record: follow the
            # order the ticket was placed as.
            known = by_ref.get(view.order_ref)
            if known is None or (view.order_id == ticket.order_id) >= (known.order_id == ticket.order_id):
                by_ref[view.order_ref] = view
        self._adopt_uncertain(snapshot)
        for ticket_id, view in by_ref.items():
            ticket = followed[ticket_id]
            if ticket.state in FINAL_STATES and ticket.status == view.status and ticket.filled == view.filled:
                continue
            with self.book.lock:
                current = self.book.tickets[ticket_id]
                if current.state not in FOLLOWED_STATES and current.state not in FINAL_STATES:
                    continue
                updated = apply_view(current, view)
                if (updated.state, updated.status, updated.filled, updated.last_message) == (
                        current.state, current.status, current.filled, current.last_message):
                    continue
                if updated.filled and not updated.avg_fill_price:
                    price = execution_average(snapshot.fills, updated)
                    if price is None and self._waiting_for_executions(ticket_id):
                        continue      # the row waits (briefly) for the executions' price
                    updated = replace(updated, avg_fill_price=price)
                # A fact from the gateway: followed in memory even while the lake refuses writes.
                if not self.book.write_or_defer(updated, "status", "", status=view.status, detail={
                        "state": updated.state.value, "filled": view.filled, "remaining": view.remaining,
                        "avg_fill_price": updated.avg_fill_price, "last_message": view.last_message}):
                    updated, recorded = replace(updated, audit_pending=True), False
                self.book.put(updated)
        if recorded:      # fills wait behind the rows of the steps that placed their orders
            self._record_fills(snapshot.fills)
        self._check_unacknowledged()

    def _check_unacknowledged(self) -> None:
        """A sent order the gateway has not acknowledged within `ack_timeout` is looked up by its
        orderRef (open and completed orders, executions). The query travels on the connection
        that carried the placement, after it, so the gateway has read the placement before it
        answers: not listed means not placed, and the ticket becomes uncertain (resend allowed
        once). Listed means the acknowledgement was lost: the ticket follows the listed order."""
        now = time.monotonic()
        with self.book.lock:
            waiting = [t for t in self.book.tickets.values() if t.state == TicketState.SENT and not t.perm_id]
        waiting_ids = {t.ticket_id for t in waiting}
        for ticket_id in list(self._unacknowledged_since):
            if ticket_id not in waiting_ids:
                del self._unacknowledged_since[ticket_id]
        for ticket in waiting:
            since = self._unacknowledged_since.setdefault(ticket.ticket_id, now)
            if now - since < self.ack_timeout:
                continue
            try:
                views = self.runtime.find_orders_by_ref(ticket.ticket_id).result(timeout=self.request_timeout)
            except Exception as exc:          # not connected: ask again on a later pass
                log.info("could not ask the gateway about %s yet: %s", ticket.ticket_id, error_text(exc))
                continue
            self._unacknowledged_since.pop(ticket.ticket_id, None)
            with self.book.lock:
                current = self.book.get(ticket.ticket_id)
                if current.state != TicketState.SENT or current.perm_id:
                    continue
                if views:
                    view = sorted(views, key=lambda v: (v.perm_id or 0, v.order_id))[-1]
                    updated = apply_view(current, view)
                    self.book.write_or_defer(updated, "status", "", status=view.status, detail={
                        "state": updated.state.value, "filled": view.filled, "remaining": view.remaining,
                        "avg_fill_price": view.avg_fill_price, "last_message": "acknowledgement lost; "
                        "order found at the gateway by its orderRef"})
                    self.book.put(updated)
                    continue
                reason = (f"The gateway never acknowledged order {current.order_id} (waited "
                          f"{self.ack_timeout:g} s) and lists no order with this ticket's orderRef, open or "
                          "completed: it was not placed. Re-send it (once) if you still want it.")
                self.book.write_or_defer(current, "gateway_checked", "", detail={"found": 0, "after": "no ack"})
                uncertain = replace(current, state=TicketState.UNCERTAIN, last_message=reason, updated_at=utc_now())
                self.book.write_or_defer(uncertain, "uncertain", "", detail={"reason": reason})
                self.book.put(uncertain)

    def _waiting_for_executions(self, ticket_id: str) -> bool:
        first = self._first_seen_fill.setdefault("avg:" + ticket_id, time.monotonic())
        if time.monotonic() - first < self.commission_grace:
            return True
        self._first_seen_fill.pop("avg:" + ticket_id, None)
        return False

    def _flush_backlog(self) -> bool:
        """Write what could not be written before; clear the tickets' "not recorded" marks."""
        waiting = {t.ticket_id for t in self.book.tickets.values() if t.audit_pending}
        if not self.book.flush_pending():
            return False
        with self.book.lock:
            for ticket_id in waiting:
                ticket = self.book.tickets[ticket_id]
                self.book.tickets[ticket_id] = replace(
                    ticket, audit_pending=False,
                    last_message="" if ticket.last_message.startswith("Sent to the gateway") else ticket.last_message)
        return True

    def _adopt_uncertain(self, snapshot: PortfolioSnapshot) -> None:
        """An uncertain ticket whose order shows up in the live order book is reconciled to it."""
        with self.book.lock:
            uncertain = {t.ticket_id for t in self.book.tickets.values() if t.state == TicketState.UNCERTAIN}
        if not uncertain:
            return
        for view in snapshot.orders:
            if view.order_ref in uncertain and (view.perm_id or view.status not in WORKING_STATUSES):
                self.reconcile_to(view.order_ref, [view], "")
                uncertain.discard(view.order_ref)

    def _adopt_child(self, ticket: Ticket | None, view: OrderView) -> None:
        """A bracket's exit the ticket does not list yet (reconciled after a crash): listed now,
        so the ticket shows it and a cancel reaches it."""
        if ticket is None or not ticket.bracket or view.order_ref == ticket.ticket_id or not view.order_id:
            return
        with self.book.lock:
            current = self.book.tickets.get(ticket.ticket_id)
            if current is None or view.order_id in current.child_order_ids:
                return
            adopted = replace(current, child_order_ids=current.child_order_ids + (view.order_id,))
            self.book.put(adopted)
        # on record, so a later restart lists the exit too (and its fills stay the ticket's)
        self.book.write_or_defer(adopted, "exit_adopted", "", status=view.status, order_id=view.order_id,
                                 perm_id=view.perm_id or None,
                                 detail={"order_ref": view.order_ref, "order_type": view.order_type,
                                         "child_order_ids": list(adopted.child_order_ids)})

    def _record_fills(self, fills: Iterable[FillView]) -> None:
        book = self.book
        with book.lock:
            # Only tickets whose "sent" (or "reconciled") row is written: a fill is never audited
            # ahead of the step that placed its order.
            placed = [t for t in book.tickets.values() if t.state in FOLLOWED_STATES | FINAL_STATES]
            ids = {t.ticket_id for t in placed}
            by_order = {t.order_id: t.ticket_id for t in placed if t.order_id}
            by_order.update({child: t.ticket_id for t in placed for child in t.child_order_ids})
            by_perm = {t.perm_id: t.ticket_id for t in placed if t.perm_id}
        now = time.monotonic()
        ready: list[tuple[FillView, str]] = []
        for fill in fills:
            if fill.exec_id in book.recorded_fills:
                continue
            # Executions loaded at connect may lack the orderRef; the perm id is IB's own key.
            # A bracket's exits fill under the ticket too (their orderRef is the ticket id + ":tp"/":sl").
            ticket_id = (parent_ref(fill.order_ref) if parent_ref(fill.order_ref) in ids
                         else by_perm.get(fill.perm_id) or by_order.get(fill.order_id))
            if ticket_id is None:
                continue
            first = self._first_seen_fill.setdefault(fill.exec_id, now)
            # The commission report follows the execution; wait a little so the row carries it.
            if fill.commission is None and now - first < self.commission_grace:
                continue
            ready.append((fill, ticket_id))
        if not ready:
            return
        snapshot = self.runtime.snapshot()
        book.audit.append_fills([replace(f, order_ref=f.order_ref if parent_ref(f.order_ref) == tid else tid)
                                 for f, tid in ready],
                                account=snapshot.connection.account or snapshot.account.account)
        for fill, ticket_id in ready:
            ticket = book.get(ticket_id)
            book.write(ticket, "fill", "", status=ticket.status, order_id=fill.order_id,
                       perm_id=fill.perm_id, detail={
                           "exec_id": fill.exec_id, "side": fill.side, "quantity": fill.quantity,
                           "price": fill.price, "commission": fill.commission,
                           "realized_pnl": fill.realized_pnl, "contract": fill.contract.label})
            book.recorded_fills.add(fill.exec_id)
            self._first_seen_fill.pop(fill.exec_id, None)

    # ----------------------------------------------------------------- recovery

    def recover(self) -> list[Ticket]:
        """Rebuild tickets from the audit log; reconcile every confirmed-but-not-sent ticket.

        Returns the tickets that were uncertain at start (after reconciliation)."""
        book = self.book
        if book.audit is None:
            self.recovered.set()
            return []
        trail = book.audit.audit()
        uncertain: list[Ticket] = []
        if trail.height:
            trail = trail.sort("ts")
            for ticket_id, rows in trail.group_by("ticket_id", maintain_order=True):
                tid = ticket_id[0] if isinstance(ticket_id, tuple) else ticket_id
                if not tid:
                    continue
                ticket = self._rebuild(tid, rows.to_dicts())
                if ticket is None:
                    continue
                with book.lock:
                    known = book.tickets.get(tid)
                    if known is not None and known.updated_at and ticket.updated_at and \
                            known.updated_at > ticket.updated_at:
                        continue
                    book.tickets[tid] = ticket
                    if any(r["event"] == "confirmed" for r in rows.to_dicts()):
                        book.reserved.add(tid)
                        self._backfill_claim(tid)
                    book.recorded_fills.update(
                        json.loads(r["detail"] or "{}").get("exec_id", "")
                        for r in rows.to_dicts() if r["event"] == "fill")
                if ticket.state == TicketState.UNCERTAIN:
                    uncertain.append(ticket)
        with book.lock:
            self.states_at_restart = {tid: t.state for tid, t in book.tickets.items()}
        self.recovered_at = utc_now()
        results = [self.reconcile(ticket.ticket_id, "") for ticket in uncertain]
        self.recovered.set()
        return results

    def _backfill_claim(self, ticket_id: str) -> None:
        """A ticket confirmed before claims existed gets its claim now, so that a desk that never
        recovered (another process) is refused by the store too."""
        if self.claims is not None:
            self.claims.claim(confirm_key(ticket_id), claim_record("confirm", ticket_id=ticket_id,
                                                                  backfilled_from="audit log"))

    def _rebuild(self, ticket_id: str, rows: list[dict[str, Any]]) -> Ticket | None:
        ticket: Ticket | None = None
        sent = False
        marked_uncertain = False
        for row in rows:
            detail = json.loads(row.get("detail") or "{}")
            event = row["event"]
            if "spec" in detail:
                spec = spec_from_json(detail["spec"])
                base = dict(contract=spec.contract, action=spec.action, quantity=spec.quantity,
                            order_type=spec.order_type,
                            limit_price=detail.get("limit_price", spec.limit_price) if event != "confirmed"
                            else spec.limit_price,
                            tif=spec.tif, combo_legs=spec.combo_legs)
                if ticket is None:
                    ticket = Ticket(ticket_id=ticket_id, created_at=row["ts"], created_by=row["session_id"] or "",
                                    origin=detail.get("origin", ""), description=detail.get("description", ""),
                                    signal_id=detail.get("signal_id", ""), stop=detail.get("stop"),
                                    target=detail.get("target"), **base)
                else:
                    ticket = replace(ticket, **base)
                if "bracket" in detail or event == "confirmed":
                    ticket = replace(ticket, bracket=bool(detail.get("bracket", spec.is_bracket)))
                if "stop" in detail:                  # drafted / edited rows carry the levels
                    ticket = replace(ticket, stop=detail.get("stop"), target=detail.get("target"))
                if spec.is_bracket:                   # what was confirmed is what was sent
                    ticket = replace(ticket, stop=spec.stop_loss, target=spec.take_profit)
            if ticket is None:
                continue
            ids = {}
            if row.get("order_id") is not None:
                ids["order_id"] = int(row["order_id"])
            if row.get("perm_id") is not None:
                ids["perm_id"] = int(row["perm_id"])
            if event in ("drafted", "edited"):
                ticket = replace(ticket, state=TicketState.DRAFTED)
            elif event == "confirmed":
                ticket = replace(ticket, state=TicketState.CONFIRMED, confirmed_by=row["session_id"] or "")
                sent = False
            elif event in ("sent", "reconciled"):
                sent = True
                ticket = replace(ticket, state=TicketState.SENT, status=row.get("status") or "", **ids)
                if detail.get("child_order_ids"):
                    ticket = replace(ticket, child_order_ids=tuple(int(i) for i in detail["child_order_ids"]))
            elif event == "status":
                ticket = replace(ticket, state=TicketState(detail.get("state", "working")),
                                 status=row.get("status") or "", filled=float(detail.get("filled") or 0),
                                 remaining=detail.get("remaining"), avg_fill_price=detail.get("avg_fill_price"),
                                 last_message=detail.get("last_message") or "", **ids)
            elif event in ("filled", "cancelled", "rejected", "discarded"):
                ticket = replace(ticket, state=TicketState(event), **ids)
            elif event == "uncertain":
                marked_uncertain = True
                ticket = replace(ticket, state=TicketState.UNCERTAIN, last_message=detail.get("reason", ""))
            elif event == "cancel_requested":
                ticket = replace(ticket, cancel_requested=True)
            elif event == "exit_adopted" and detail.get("child_order_ids"):
                ticket = replace(ticket, child_order_ids=tuple(int(i) for i in detail["child_order_ids"]))
            elif event == "modify_confirmed":
                ticket = replace(ticket, limit_price=detail.get("limit_price", ticket.limit_price),
                                 modifications=int(detail.get("modification") or ticket.modifications + 1))
            ticket = replace(ticket, updated_at=row["ts"])
        if ticket is None:
            return None
        if ticket.state == TicketState.CONFIRMED and not sent:
            reason = "confirmed but not recorded as sent before the app stopped"
            ticket = replace(ticket, state=TicketState.UNCERTAIN, last_message=reason)
            self.book.write(ticket, "uncertain", "", detail={"reason": reason})
        elif ticket.state == TicketState.UNCERTAIN and not marked_uncertain:
            self.book.write(ticket, "uncertain", "", detail={"reason": ticket.last_message})
        if ticket.state in (TicketState.CHECKED, TicketState.PREVIEWED):
            ticket = replace(ticket, state=TicketState.DRAFTED)  # previews are not kept across restarts
        return ticket

    def reconcile(self, ticket_id: str, session_id: str) -> Ticket:
        """Ask the gateway for orders carrying this ticket's orderRef; adopt one if it exists."""
        ticket = self.book.get(ticket_id)
        try:
            views = self.runtime.find_orders_by_ref(ticket_id).result(timeout=self.request_timeout)
        except Exception as exc:
            self.book.write(ticket, "gateway_checked", session_id, detail={"error": error_text(exc)})
            return ticket
        if not views:
            self.book.write(ticket, "gateway_checked", session_id, detail={"found": 0})
            return ticket
        return self.reconcile_to(ticket_id, views, session_id)

    def reconcile_to(self, ticket_id: str, views: Sequence[OrderView], session_id: str) -> Ticket:
        view = sorted(views, key=lambda v: (v.perm_id or 0, v.order_id))[-1]
        if not view.order_id and view.perm_id:
            # A completed order as IB lists it carries no order id; its executions do.
            fill = next((f for f in self.runtime.snapshot().fills if f.perm_id == view.perm_id), None)
            if fill is not None:
                view = replace(view, order_id=fill.order_id)
        with self.book.lock:
            ticket = self.book.get(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                return ticket
            reconciled = apply_view(ticket, view)
            self.book.write(reconciled, "reconciled", session_id, status=view.status,
                            detail={"found": len(views), "state": reconciled.state.value})
            self.book.put(reconciled)
            self.book.reserved.add(ticket_id)
            return reconciled


def execution_average(fills: Iterable[FillView], ticket: Ticket) -> float | None:
    """Average price of the ticket's order from the gateway's executions, once they cover what
    the order says is filled (IB's completed orders may carry no average price)."""
    mine = [f for f in fills if (ticket.perm_id and f.perm_id == ticket.perm_id)
            or (not ticket.perm_id and f.order_ref == ticket.ticket_id)]
    quantity = sum(f.quantity for f in mine)
    if not mine or quantity + 1e-9 < ticket.filled:
        return None
    return sum(f.quantity * f.price for f in mine) / quantity
