"""The desk's shared state: every ticket of this process under one lock, and the audit writer.

Every transition is appended to the durable audit log *before* the next step runs; the parts of
the desk (drafting, checks, preview, placement, following) all write through `TicketBook.write`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from v6core.orders.tickets import Ticket, TicketNotFound, TradingUnavailable, error_text, utc_now

log = logging.getLogger(__name__)

# Functions called with (event, ticket id) just after each audit event is durably written. Empty
# in production; the crash test registers one that kills the process between "confirmed" and "sent".
AFTER_AUDIT_HOOKS: list[Callable[[str, str], None]] = []


class TicketBook:
    """Tickets by id, the ids confirmed here, the fills already audited, and the audit log."""

    def __init__(self, audit: Any | None) -> None:
        self.audit = audit
        self.lock = threading.RLock()
        self._audit_lock = threading.Lock()
        self.tickets: dict[str, Ticket] = {}
        self.reserved: set[str] = set()        # ticket ids confirmed (or being confirmed) here
        self.recorded_fills: set[str] = set()  # exec ids already in the audit
        # Rows that happened (an order was placed) but could not be written yet, oldest first.
        # Nothing newer is written ahead of them; `flush_pending` retries them in order.
        self._pending: list[Any] = []
        self.audit_error = ""                  # why the backlog exists, for the operator

    def get(self, ticket_id: str) -> Ticket:
        with self.lock:
            t = self.tickets.get(ticket_id)
        if t is None:
            raise TicketNotFound(f"No ticket {ticket_id!r}.")
        return t

    def all(self) -> list[Ticket]:
        with self.lock:
            return sorted(self.tickets.values(), key=lambda t: t.created_at, reverse=True)

    def put(self, ticket: Ticket) -> None:
        with self.lock:
            self.tickets[ticket.ticket_id] = ticket

    def require_audit(self) -> None:
        if self.audit is None:
            raise TradingUnavailable("Trading is unavailable: the audit log is held by another v6 process "
                                     "(orders are only placed when every step can be recorded).")

    def write(self, ticket: Ticket, event: str, session_id: str, *, status: str | None = None,
              detail: dict[str, Any] | None = None, order_id: int | None = None,
              perm_id: int | None = None) -> None:
        self.write_raw(ticket.ticket_id, event, session_id,
                       order_id=order_id if order_id is not None else ticket.order_id,
                       perm_id=perm_id if perm_id is not None else ticket.perm_id,
                       status=status, detail=detail)

    def write_raw(self, ticket_id: str, event: str, session_id: str, *, order_id: int | None = None,
                  perm_id: int | None = None, status: str | None = None,
                  detail: dict[str, Any] | None = None, defer_on_failure: bool = False) -> bool:
        """Append one audit row durably. Raises if it cannot be written, unless
        `defer_on_failure` (for facts that already happened, like a placed order): then the row
        is kept, in order, for `flush_pending`, and False is returned."""
        from v6core.lake import AuditEvent

        row = AuditEvent(
            ticket_id=ticket_id, event=event, ts=utc_now(), session_id=session_id or "",
            order_id=order_id, perm_id=perm_id, status=status,
            detail=json.dumps(detail or {}, default=str, sort_keys=True),
        )
        with self._audit_lock:
            try:
                self._flush_locked()
                self.audit.append_audit([row])
            except Exception as exc:
                if not defer_on_failure:
                    raise
                self._pending.append(row)
                self.audit_error = error_text(exc)
                log.error("audit row %s/%s kept in memory until the lake accepts writes: %s",
                          ticket_id, event, self.audit_error)
                return False
        for hook in list(AFTER_AUDIT_HOOKS):
            hook(event, ticket_id)
        return True

    def write_or_defer(self, ticket: Ticket, event: str, session_id: str, **fields: Any) -> bool:
        """`write` for what already happened at the gateway: never lost, never raised."""
        return self.write_raw(ticket.ticket_id, event, session_id,
                              order_id=fields.pop("order_id", None) or ticket.order_id,
                              perm_id=fields.pop("perm_id", None) or ticket.perm_id,
                              defer_on_failure=True, **fields)

    @property
    def backlog(self) -> int:
        """Audit rows waiting for the lake to accept writes."""
        return len(self._pending)

    def pending_ticket_ids(self) -> set[str]:
        with self._audit_lock:
            return {row.ticket_id for row in self._pending}

    def flush_pending(self) -> bool:
        """Write the backlog, oldest first. True when nothing is left waiting."""
        with self._audit_lock:
            try:
                self._flush_locked()
            except Exception as exc:
                self.audit_error = error_text(exc)
                return False
        return True

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        # Rows keep their own event id and time: a retry after an unknown outcome is deduplicated.
        self.audit.append_audit(list(self._pending))
        written, self._pending = self._pending, []
        self.audit_error = ""
        log.warning("audit backlog of %d row(s) written", len(written))
        for row in written:
            for hook in list(AFTER_AUDIT_HOOKS):
                hook(row.event, row.ticket_id)
