"""Order tickets: the confirm-to-trade state machine.

A ticket is drafted (from a signal, or to close positions), edited, checked against the limits,
previewed (IB what-if, live quote, portfolio Greeks before -> after), confirmed by a human and
then placed exactly once, with its ticket id as IB's `orderRef`. Every transition is appended to
the durable audit log *before* the next step runs.

Modules, one job each (import public names from this package):
- `tickets`   the ticket, its states, refusals, and the gateway's status mapped onto states
- `codec`     tickets and specs as the audit log's JSON
- `book`      the shared ticket table under one lock, and the audit writer
- `claims`    per-ticket create-if-absent claims in the store (exactly-once across processes)
- `checks`    tick grid, field validation, limits against the live snapshot
- `drafts`    drafting from a signal or to close legs, and edits
- `preview`   check + IB what-if, Greeks before -> after
- `placement` confirm once, send once, resend an uncertain ticket, cancels
- `follow`    sync with the gateway's orders and fills, recovery after a restart
- `desk`      `OrderDesk`, the facade that composes them
"""

from v6core.orders.book import AFTER_AUDIT_HOOKS, TicketBook
from v6core.orders.checks import (
    PENNY_PILOT,
    CheckResult,
    evaluate,
    min_tick,
    on_tick_grid,
    order_legs,
    quote_for,
    round_to_tick,
    strategy_legs,
    validate_fields,
)
from v6core.orders.claims import ClaimStore, LocalClaimStore
from v6core.orders.codec import spec_from_json, spec_to_json
from v6core.orders.desk import OrderDesk
from v6core.orders.tickets import (
    ACTIONS,
    CANCELLED_STATUSES,
    EDITABLE_STATES,
    FINAL_STATES,
    FOLLOWED_STATES,
    LIVE_WORD,
    ORDER_CANCELLED_CODE,
    ORDER_TYPES,
    TIFS,
    WORKING_STATUSES,
    AlreadyConfirmed,
    OrderDeskError,
    Preview,
    Ticket,
    TicketBlocked,
    TicketNotFound,
    TicketState,
    TradingUnavailable,
    new_ticket_id,
)

__all__ = [
    "ACTIONS", "AFTER_AUDIT_HOOKS", "CANCELLED_STATUSES", "EDITABLE_STATES", "FINAL_STATES",
    "FOLLOWED_STATES", "LIVE_WORD", "ORDER_CANCELLED_CODE", "ORDER_TYPES", "PENNY_PILOT", "TIFS",
    "WORKING_STATUSES", "AlreadyConfirmed", "CheckResult", "ClaimStore", "LocalClaimStore", "OrderDesk", "OrderDeskError", "Preview",
    "Ticket", "TicketBlocked", "TicketBook", "TicketNotFound", "TicketState", "TradingUnavailable",
    "evaluate", "min_tick", "new_ticket_id", "on_tick_grid", "order_legs", "quote_for",
    "round_to_tick", "spec_from_json", "spec_to_json", "strategy_legs", "validate_fields",
]
