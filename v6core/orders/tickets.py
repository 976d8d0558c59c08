"""The ticket: its fields, its states and the gateway's order status mapped onto them.

    drafted -> checked -> previewed -> confirmed -> sent -> working -> filled / cancelled / rejected
                                             \\-> uncertain -> (reconciled to the gateway's order)

Editing a ticket before confirmation sends it back to "drafted": a preview only ever describes
the exact order that will be sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from v6core.models import ContractInfo, OrderLegSpec, OrderSpec, OrderView, PositionGreeks, Quote, WhatIfResult

ACTIONS = ("BUY", "SELL")
ORDER_TYPES = ("LMT", "MKT")
TIFS = ("DAY", "GTC")
LIVE_WORD = "LIVE"


class TicketState(str, Enum):
    DRAFTED = "drafted"
    CHECKED = "checked"
    PREVIEWED = "previewed"
    CONFIRMED = "confirmed"
    SENT = "sent"
    WORKING = "working"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNCERTAIN = "uncertain"
    DISCARDED = "discarded"            # a draft the operator threw away (never sent)


EDITABLE_STATES = frozenset({TicketState.DRAFTED, TicketState.CHECKED, TicketState.PREVIEWED})
FOLLOWED_STATES = frozenset({TicketState.SENT, TicketState.WORKING})
FINAL_STATES = frozenset({TicketState.FILLED, TicketState.CANCELLED, TicketState.REJECTED})
WORKING_STATUSES = frozenset({"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"})
CANCELLED_STATUSES = frozenset({"Cancelled", "ApiCancelled"})
ORDER_CANCELLED_CODE = 202


class OrderDeskError(Exception):
    """Base of everything the desk refuses; the message is meant for the operator."""


class TicketNotFound(OrderDeskError):
    """No ticket with that id in this desk (drafted elsewhere, or not recovered yet)."""


class AlreadyConfirmed(OrderDeskError):
    """The ticket was confirmed before (here, in another session, or per the audit log)."""


class TicketBlocked(OrderDeskError):
    """One or more pre-trade checks failed; `problems` lists them, one sentence each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class TradingUnavailable(OrderDeskError):
    """No audit log in this process: nothing may be placed that cannot be recorded."""


@dataclass(slots=True, frozen=True)
class Preview:
    """What the operator sees before confirming: made for exactly `spec`."""

    spec: OrderSpec
    what_if: WhatIfResult
    quotes: tuple[Quote, ...]
    notional: float
    order_greeks: PositionGreeks
    greeks_before: PositionGreeks
    greeks_after: PositionGreeks
    account: str
    is_paper: bool
    needs_typed_confirmation: bool
    made_at: datetime
    snapshot_seq: int
    warnings: tuple[str, ...] = ()     # naked/uncovered shorts, a limit far from the live mid


@dataclass(slots=True, frozen=True)
class Ticket:
    ticket_id: str
    created_at: datetime
    created_by: str                    # browser session that drafted it
    origin: str                        # "signal" or "close"
    contract: ContractInfo
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str = "DAY"
    combo_legs: tuple[OrderLegSpec, ...] = ()
    description: str = ""
    signal_id: str = ""
    stop: float | None = None          # the signal's stop and target: shown, and sent only as a
    target: float | None = None        # bracket's children when `bracket` is set
    bracket: bool = False
    child_order_ids: tuple[int, ...] = ()   # a bracket's take-profit and stop orders, once placed
    state: TicketState = TicketState.DRAFTED
    problems: tuple[str, ...] = ()
    preview: Preview | None = None
    order_id: int | None = None
    perm_id: int | None = None
    status: str = ""                   # IB's order status once sent
    filled: float = 0.0
    remaining: float | None = None
    avg_fill_price: float | None = None
    last_message: str = ""
    cancel_requested: bool = False
    confirmed_by: str = ""             # browser session whose confirmation placed it
    updated_at: datetime | None = None
    audit_pending: bool = False        # what happened to it is not in the audit log yet (lake failing)
    modifications: int = 0             # limit-price modifications confirmed on the working order

    @property
    def spec(self) -> OrderSpec:
        return OrderSpec(
            contract=self.contract, action=self.action, quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price if self.order_type == "LMT" else None,
            tif=self.tif, combo_legs=self.combo_legs,
            take_profit=self.target if self.bracket else None,
            stop_loss=self.stop if self.bracket else None,
        )

    @property
    def is_combo(self) -> bool:
        return self.contract.sec_type == "BAG"

    @property
    def editable(self) -> bool:
        return self.state in EDITABLE_STATES

    @property
    def label(self) -> str:
        price = f"{self.limit_price:g} LMT" if self.order_type == "LMT" and self.limit_price is not None else "MKT"
        text = f"{self.action} {self.quantity:g} {self.description or self.contract.label} @ {price} {self.tif}"
        if self.bracket:
            text += f" · bracket: take profit {_price(self.target)}, stop {_price(self.stop)}"
        return text


def _price(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def apply_view(ticket: Ticket, view: OrderView) -> Ticket:
    """The ticket as the gateway's view of its order says it is now."""
    if view.status == "Filled" or (view.remaining == 0 and view.filled > 0):
        state = TicketState.FILLED
    elif view.status in CANCELLED_STATUSES:
        # Cancelled with an error and nobody asked for it: the gateway refused the order.
        # Code 202 is IB's own "order cancelled" notice (e.g. cancelled in TWS), not a refusal.
        message = view.last_message or ""
        rejected = (not ticket.cancel_requested and view.filled == 0 and bool(message)
                    and not message.startswith(f"{ORDER_CANCELLED_CODE}:"))
        state = TicketState.REJECTED if rejected else TicketState.CANCELLED
    elif view.status == "Inactive" or refused_unacknowledged(view):
        state = TicketState.REJECTED
    elif not view.perm_id and view.status in ("PendingSubmit", "ApiPending"):
        state = TicketState.SENT        # not acknowledged by the gateway yet
    else:
        state = TicketState.WORKING
    # A completed order as IB lists it after a restart carries order id 0 and may carry no
    # average price: IB's ids and price already known are kept, never overwritten by blanks.
    return replace(ticket, state=state, order_id=view.order_id or ticket.order_id,
                   perm_id=view.perm_id or ticket.perm_id,
                   status=view.status, filled=view.filled, remaining=view.remaining,
                   avg_fill_price=view.avg_fill_price or ticket.avg_fill_price,
                   last_message=view.last_message or ticket.last_message,
                   updated_at=utc_now())


_ERROR_MESSAGE = re.compile(r"^(\d+):")
_WARNING_CODES = frozenset({105, 165, 321, 329, 399, 404, 434, 492, 10167}) | frozenset(range(2100, 2200))


def refused_unacknowledged(view: OrderView) -> bool:
    """The gateway answered the order with an error and never acknowledged it (no perm id).

    IB rejects e.g. an off-grid price with code 110, which ib_async files as a warning and so
    never marks the order cancelled; the order is dead all the same."""
    match = _ERROR_MESSAGE.match(view.last_message or "")
    return (view.perm_id == 0 and view.filled == 0 and match is not None
            and int(match.group(1)) not in _WARNING_CODES)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_ticket_id() -> str:
    return "T-" + uuid.uuid4().hex[:12]


def opt_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def error_text(exc: BaseException) -> str:
    """An exception as one line for the operator: its type, then its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
