"""`OrderDesk`: the one place orders are made, composing drafting, checks, preview, placement
and following over one shared ticket book. Thread-safe; shared by every browser session."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from v6core.config import Settings
from v6core.models import ConnState, Leg, PortfolioSnapshot, Strategy
from v6core.orders.book import TicketBook
from v6core.orders.checks import CheckResult, evaluate
from v6core.orders.claims import ClaimStore, claim_record, claims_for_lake, confirm_key, describe_holder
from v6core.orders.drafts import Drafts
from v6core.orders.follow import Follower
from v6core.orders.placement import Placement
from v6core.orders.preview import Reviewer
from v6core.orders.tickets import FOLLOWED_STATES, AlreadyConfirmed, Ticket, TicketState

log = logging.getLogger("v6core.orders")


class OrderDesk:
    """The one place orders are made. Thread-safe; shared by every browser session."""

    def __init__(self, settings: Settings, runtime: Any, audit: Any | None, *,
                 follow_interval: float = 0.5, request_timeout: float = 15.0,
                 commission_grace: float = 5.0, claims: ClaimStore | None = None,
                 ack_timeout: float = 15.0) -> None:
        self.runtime = runtime
        if claims is None and audit is not None and getattr(audit, "root", None) is not None:
            claims = claims_for_lake(audit.root)   # claims live in the audit's own store
        self.claims = claims
        self.follow_interval = follow_interval
        self._book = TicketBook(audit)
        self._drafts = Drafts(self._book, runtime)
        self._reviewer = Reviewer(self._book, settings, runtime, request_timeout)
        self._follower = Follower(self._book, runtime, claims, request_timeout=request_timeout,
                                  commission_grace=commission_grace, ack_timeout=ack_timeout)
        self._placement = Placement(self._book, settings, runtime, self._follower, claims,
                                    request_timeout=request_timeout)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Limits and timeouts may be changed on a running desk (tests do); every part sees the change.

    @property
    def settings(self) -> Settings:
        return self._reviewer.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._reviewer.settings = self._placement.settings = settings

    @property
    def request_timeout(self) -> float:
        return self._placement.request_timeout

    @request_timeout.setter
    def request_timeout(self, seconds: float) -> None:
        self._reviewer.request_timeout = self._placement.request_timeout = seconds
        self._follower.request_timeout = seconds

    @property
    def commission_grace(self) -> float:
        return self._follower.commission_grace

    @commission_grace.setter
    def commission_grace(self, seconds: float) -> None:
        self._follower.commission_grace = seconds

    @property
    def ack_timeout(self) -> float:
        return self._follower.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, seconds: float) -> None:
        self._follower.ack_timeout = seconds

    @property
    def _lock(self):
        return self._book.lock

    @property
    def audit(self) -> Any | None:
        return self._book.audit

    @property
    def _tickets(self) -> dict[str, Ticket]:
        """The live ticket table (tests plant tickets in it to play a second, blank desk)."""
        return self._book.tickets

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the follower thread: recovers once connected, then follows sent orders."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="v6-order-desk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.recovered and self._connected(self.runtime.snapshot()):
                    self.recover()
                if self.recovered:
                    self.sync()
                self._drafts.release_final_quotes(self._tickets)
            except Exception:  # the follower must outlive one bad update; the next pass retries
                log.exception("order follower pass failed")
            self._stop.wait(self.follow_interval)

    @property
    def recovered(self) -> bool:
        return self._follower.recovered.is_set()

    @property
    def audit_backlog(self) -> int:
        """Audit rows of things that happened (orders placed, statuses) not yet in the lake."""
        return self._book.backlog

    @property
    def audit_error(self) -> str:
        """Why the audit log refused the last write, while it still does ("" once it accepts)."""
        return self._book.audit_error

    def attach_audit(self, audit: Any) -> None:
        """Start trading on a desk that opened without the audit log (another process held the
        lake) once this process has taken the writer role over: the claims live in the audit's
        store, and the follower recovers again, now from the audit log, so tickets the previous
        writer left confirmed-but-not-sent are reconciled with the gateway before anything else."""
        with self._book.lock:
            if self._book.audit is not None:
                return
            claims = self.claims or claims_for_lake(audit.root)
            self.claims = self._follower.claims = self._placement.claims = claims
            self._book.audit = audit
            self._follower.recovered.clear()

    @property
    def trading_available(self) -> bool:
        return self.audit is not None

    @staticmethod
    def _connected(snapshot: PortfolioSnapshot) -> bool:
        return snapshot.connection.state in (ConnState.CONNECTED, ConnState.DEGRADED)

    # ----------------------------------------------------------------- reading

    def ticket(self, ticket_id: str) -> Ticket:
        return self._book.get(ticket_id)

    def tickets(self) -> list[Ticket]:
        return self._book.all()

    def changes_since_restart(self) -> list[tuple[Ticket, str]]:
        """Tickets whose state moved since the audit log's last word before this start (an order
        that filled or was cancelled while v6 was down, an uncertain one reconciled), with the
        state they had then."""
        before = self._follower.states_at_restart
        placed = FOLLOWED_STATES | {TicketState.CONFIRMED, TicketState.UNCERTAIN}
        return [(t, before[t.ticket_id].value) for t in self.tickets()
                if before.get(t.ticket_id) in placed and t.state != before[t.ticket_id]]

    @property
    def recovered_at(self):
        """When this desk rebuilt its tickets from the audit log (None before)."""
        return self._follower.recovered_at

    def audit_trail(self, ticket_id: str):
        self._book.require_audit()
        return self.audit.audit(ticket_id)

    # ----------------------------------------------------------------- drafting and editing

    def draft_from_signal(self, record: Any, session_id: str, quantity: float = 1,
                          bracket: bool = False) -> Ticket:
        """A stock/ETF LMT ticket at the signal's entry; with `bracket`, its stop and target go
        with it as attached take-profit and stop orders."""
        return self._drafts.draft_from_signal(record, session_id, quantity, bracket)

    def draft_close(self, legs_or_strategy: Strategy | Leg | Sequence[Leg], as_combo: bool,
                    session_id: str) -> list[Ticket]:
        """Tickets that close legs: one BAG combo for all of them, or one ticket per leg."""
        return self._drafts.draft_close(legs_or_strategy, as_combo, session_id)

    def edit(self, ticket_id: str, session_id: str, **changes: Any) -> Ticket:
        """Change action, quantity, order_type, limit_price or tif; invalidates check and preview."""
        return self._drafts.edit(ticket_id, session_id, **changes)

    def discard(self, ticket_id: str, session_id: str) -> Ticket:
        """Throw a draft away (audited as "discarded"); confirmed tickets cannot be discarded.

        The discard takes the ticket's confirmation claim in the store, so no other process or
        host holding the same draft can confirm what the operator threw away here."""
        key = confirm_key(ticket_id)
        won = False
        if self.claims is not None:
            won = self.claims.claim(key, claim_record("discard", ticket_id=ticket_id, session_id=session_id))
            holder = None if won else self.claims.holder(key)
            if not won and (holder or {}).get("purpose") != "discard":
                raise AlreadyConfirmed(f"Ticket {ticket_id} was confirmed ({describe_holder(holder)}); "
                                       "it cannot be discarded.")
        try:
            return self._drafts.discard(ticket_id, session_id)
        except Exception:
            if won:                      # refused here (not a draft): the claim was never needed
                self.claims.release(key)
            raise

    def draft_ticket(self, ticket: Ticket, session_id: str) -> Ticket:
        """Add a ticket drafted elsewhere (option structures, rolls) as a draft: audited, and
        from here on checked, previewed and confirmed like every other ticket."""
        self._book.require_audit()
        return self._drafts._add(ticket, session_id)

    # ----------------------------------------------------------------- checks and preview

    def evaluate(self, ticket: Ticket, snapshot: PortfolioSnapshot | None = None) -> CheckResult:
        """Every pre-trade rule against the current snapshot. Pure apart from reading the snapshot."""
        return evaluate(self.settings, ticket, snapshot or self.runtime.snapshot())

    def check(self, ticket_id: str, session_id: str) -> CheckResult:
        """Run the checks and record the outcome; a passing ticket moves to "checked"."""
        return self._reviewer.check(ticket_id, session_id)

    def preview(self, ticket_id: str, session_id: str) -> Ticket:
        """Check, then ask IB what-if for margin and commission; Greeks before -> after."""
        return self._reviewer.preview(ticket_id, session_id)

    # ----------------------------------------------------------------- placement and cancels

    def confirm(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """Place the previewed ticket exactly once. Refuses any second confirm, from anywhere."""
        return self._placement.confirm(ticket_id, session_id, typed)

    def resend(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """The operator's explicit re-confirmation of an uncertain ticket (asks the gateway first)."""
        return self._placement.resend(ticket_id, session_id, typed)

    def modify_limit(self, ticket_id: str, session_id: str, limit_price: float) -> Ticket:
        """Change a working order's limit price: checked, confirmed once, audited, same IB order id."""
        return self._placement.modify_limit(ticket_id, session_id, limit_price)

    def cancel(self, ticket_id: str, session_id: str) -> Ticket:
        """Cancel the working order of a ticket."""
        return self._placement.cancel(ticket_id, session_id)

    def cancel_order(self, order_id: int, session_id: str) -> None:
        """Cancel any working order by IB order id (orders v6 did not place included)."""
        self._placement.cancel_order(order_id, session_id)

    def cancel_all(self, session_id: str) -> None:
        """Global cancel of every working order (the page asks for its own confirmation first)."""
        self._placement.cancel_all(session_id)

    # ----------------------------------------------------------------- following and recovery

    def sync(self, snapshot: PortfolioSnapshot | None = None) -> None:
        """Bring followed tickets up to date with the gateway's orders and fills; audit changes."""
        self._follower.sync(snapshot)

    def recover(self) -> list[Ticket]:
        """Rebuild tickets from the audit log; reconcile every confirmed-but-not-sent ticket."""
        return self._follower.recover()

    def reconcile(self, ticket_id: str, session_id: str) -> Ticket:
        """Ask the gateway for orders carrying this ticket's orderRef; adopt one if it exists."""
        return self._follower.reconcile(ticket_id, session_id)
