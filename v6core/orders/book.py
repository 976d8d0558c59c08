"""The desk's shared state: every ticket of this process under one lock, and the audit writer.

Every transition is appended to the durable audit log *before* the next step runs; the parts of
the desk (drafting, checks, preview, placement, following) all write through `TicketBook.write`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from v6core.orders.tickets import Ticket, TicketNotFound, TradingUnavailable, utc_now

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
                  detail: dict[str, Any] | None = None) -> None:
        from v6core.lake import AuditEvent

        row = AuditEvent(
            ticket_id=ticket_id, event=event, ts=utc_now(), session_id=session_id or "",
            order_id=order_id, perm_id=perm_id, status=status,
            detail=json.dumps(detail or {}, default=str, sort_keys=True),
        )
        with self._audit_lock:
            self.audit.append_audit([row])
        for hook in list(AFTER_AUDIT_HOOKS):
            hook(event, ticket_id)
