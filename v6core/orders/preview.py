"""Review before confirmation: run the checks, then ask IB what-if; Greeks before -> after."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from v6core.config import Settings
from v6core.models import ConnState, PositionGreeks
from v6core.orders.book import TicketBook
from v6core.orders.checks import CheckResult, evaluate, legs_awaiting_data
from v6core.orders.codec import greeks_json, spec_to_json
from v6core.orders.tickets import (
    OrderDeskError,
    Preview,
    Ticket,
    TicketBlocked,
    TicketState,
    error_text,
    utc_now,
)


LEG_DATA_WAIT = 6.0     # s the check waits for a just-subscribed leg's quote and Greeks


class Reviewer:
    """Checks a ticket against the limits and previews it; both steps are audited."""

    leg_data_wait = LEG_DATA_WAIT

    def __init__(self, book: TicketBook, settings: Settings, runtime: Any, request_timeout: float) -> None:
        self.book = book
        self.settings = settings
        self.runtime = runtime
        self.request_timeout = request_timeout

    def check(self, ticket_id: str, session_id: str) -> CheckResult:
        """Run the checks and record the outcome; a passing ticket moves to "checked"."""
        self.book.require_audit()
        self._await_leg_data(ticket_id)
        with self.book.lock:
            ticket = self.book.get(ticket_id)
            if not ticket.editable:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}: nothing to check.")
            result = evaluate(self.settings, ticket, self.runtime.snapshot())
            state = TicketState.CHECKED if result.ok else TicketState.DRAFTED
            checked = replace(ticket, state=state, problems=result.problems, preview=None, updated_at=utc_now())
            self.book.write(checked, "checked", session_id, status="ok" if result.ok else "blocked",
                            detail={"problems": list(result.problems), "notional": result.notional,
                                    "order_delta": result.order_greeks.delta if result.order_greeks else None})
            self.book.put(checked)
            return result

    def _await_leg_data(self, ticket_id: str) -> None:
        """A leg subscribed a moment ago (a ticket drafted from the chain) has no quote or IV in
        the snapshot yet: wait up to `leg_data_wait` seconds for the runtime to stream them, so
        the checks judge the ticket on its data rather than block it for arriving late. The
        checks run unchanged afterwards and still block whatever did not arrive."""
        ticket, snapshot = self.book.get(ticket_id), self.runtime.snapshot()
        if (not ticket.editable or snapshot.connection.state != ConnState.CONNECTED
                or not legs_awaiting_data(self.settings, ticket, snapshot)):
            return
        wait_for = getattr(self.runtime, "wait_for", None)
        if wait_for is not None and self.leg_data_wait > 0:
            wait_for(lambda snap: not legs_awaiting_data(self.settings, ticket, snap), self.leg_data_wait)

    def preview(self, ticket_id: str, session_id: str) -> Ticket:
        """Check, then ask IB what-if for margin and commission; Greeks before -> after."""
        result = self.check(ticket_id, session_id)
        if not result.ok:
            raise TicketBlocked(result.problems)
        ticket = self.book.get(ticket_id)
        spec = ticket.spec
        try:
            what_if = self.runtime.what_if(spec).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"IB what-if failed: {error_text(exc)}") from exc
        snapshot = self.runtime.snapshot()
        order_greeks = result.order_greeks or PositionGreeks()
        preview = Preview(
            spec=spec, what_if=what_if, quotes=result.quotes, notional=result.notional or 0.0,
            order_greeks=order_greeks, greeks_before=snapshot.totals,
            greeks_after=snapshot.totals + order_greeks,
            account=snapshot.connection.account or snapshot.account.account,
            is_paper=snapshot.connection.is_paper,
            needs_typed_confirmation=result.needs_typed_confirmation, made_at=utc_now(),
            snapshot_seq=snapshot.seq, warnings=result.warnings,
        )
        with self.book.lock:
            current = self.book.get(ticket_id)
            if current.spec != spec or current.state != TicketState.CHECKED:
                raise OrderDeskError("The ticket changed while the preview was being made; review it again.")
            previewed = replace(current, state=TicketState.PREVIEWED, preview=preview, updated_at=utc_now())
            self.book.write(previewed, "previewed", session_id, detail={
                "spec": spec_to_json(spec), "init_margin_change": what_if.init_margin_change,
                "maint_margin_change": what_if.maint_margin_change, "commission": what_if.commission,
                "warning": what_if.warning, "notional": preview.notional,
                "greeks_before": greeks_json(preview.greeks_before),
                "greeks_after": greeks_json(preview.greeks_after), "warnings": list(preview.warnings)})
            self.book.put(previewed)
            return previewed
