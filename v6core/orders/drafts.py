"""Drafting tickets (from a signal, or to close legs) and editing them before confirmation."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from functools import reduce
from typing import Any

from v6core.models import ContractInfo, Leg, OrderLegSpec, Strategy
from v6core.orders.book import TicketBook
from v6core.orders.checks import min_tick, round_to_tick, sign, snap_limit_price, strategy_legs
from v6core.orders.codec import ticket_detail
from v6core.orders.tickets import (
    ACTIONS,
    FINAL_STATES,
    OrderDeskError,
    Ticket,
    TicketState,
    new_ticket_id,
    opt_float,
    utc_now,
)

log = logging.getLogger(__name__)

EDITABLE_FIELDS = frozenset({"action", "quantity", "order_type", "limit_price", "tif", "bracket", "stop", "target"})


class Drafts:
    """Makes new tickets and applies the operator's edits; every change is audited first."""

    def __init__(self, book: TicketBook, runtime: Any) -> None:
        self.book = book
        self.runtime = runtime
        self.quoting: set[str] = set()     # tickets holding on-demand quotes (runtime.ensure_quotes)

    def draft_from_signal(self, record: Any, session_id: str, quantity: float = 1,
                          bracket: bool = False) -> Ticket:
        """A stock/ETF LMT ticket at the signal's suggested entry. Its stop and target are shown;
        with `bracket` they are sent too, as a take-profit LMT and a stop STP attached to the entry
        (on the tick grid; the checks refuse a bracket whose prices are on the wrong side)."""
        self.book.require_audit()
        action, symbol = actionable_signal(record)
        ticket_id = new_ticket_id()
        contract = self._quoted(self._stock_contract(symbol), ticket_id)
        entry = float(record.entry)
        limit = round_to_tick(entry, min_tick(contract, entry))
        stop, target = opt_float(getattr(record, "stop", None)), opt_float(getattr(record, "target", None))
        if bracket:
            stop, target = (None if p is None else round_to_tick(p, min_tick(contract, p)) for p in (stop, target))
        ticket = Ticket(
            ticket_id=ticket_id, created_at=utc_now(), created_by=session_id, origin="signal",
            contract=contract, action=action, quantity=float(quantity), order_type="LMT",
            limit_price=limit, tif="DAY", description=f"{symbol} stock",
            signal_id=str(getattr(record, "record_id", None) or getattr(record, "id", "") or ""),
            stop=stop, target=target, bracket=bool(bracket),
        )
        return self._add(ticket, session_id)

    def draft_close(self, legs_or_strategy: Strategy | Leg | Sequence[Leg], as_combo: bool,
                    session_id: str) -> list[Ticket]:
        """Tickets that close legs: one BAG combo for all of them, or one ticket per leg."""
        self.book.require_audit()
        legs = self._resolve_legs(legs_or_strategy)
        if not legs:
            raise OrderDeskError("Nothing to close: no open legs.")
        if as_combo and len(legs) > 1:
            return [self._add(combo_close_ticket(legs, session_id), session_id)]
        return [self._add(leg_close_ticket(leg, session_id), session_id) for leg in legs]

    def edit(self, ticket_id: str, session_id: str, **changes: Any) -> Ticket:
        """Change action, quantity, order_type, limit_price or tif; invalidates check and preview."""
        unknown = set(changes) - EDITABLE_FIELDS
        if unknown:
            raise OrderDeskError(f"Cannot edit {', '.join(sorted(unknown))}; "
                                 f"editable: {', '.join(sorted(EDITABLE_FIELDS))}.")
        with self.book.lock:
            ticket = self.book.get(ticket_id)
            if not ticket.editable:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}: it can no longer be edited.")
            normalised = dict(changes)
            for key in ("action", "order_type", "tif"):
                if key in normalised:
                    normalised[key] = str(normalised[key]).upper()
            for key in ("quantity", "limit_price", "stop", "target"):
                if key in normalised:
                    normalised[key] = opt_float(normalised[key])
            if "bracket" in normalised:
                normalised["bracket"] = bool(normalised["bracket"])
            note = ""
            if normalised.get("limit_price") is not None:
                entered = normalised["limit_price"]
                normalised["limit_price"], note = snap_limit_price(ticket.contract, entered)
            if all(getattr(ticket, k) == v for k, v in normalised.items()):
                return replace(ticket, last_message=note) if note else ticket
            edited = replace(ticket, **normalised, state=TicketState.DRAFTED, problems=(),
                             preview=None, updated_at=utc_now(), last_message=note or ticket.last_message)
            changes: dict[str, Any] = dict(normalised)
            if note:
                changes["limit_price_entered"] = entered
            self.book.write(edited, "edited", session_id,
                            detail={**ticket_detail(edited), "changes": changes, "note": note})
            self.book.put(edited)
            return edited

    def discard(self, ticket_id: str, session_id: str) -> Ticket:
        """Throw a draft away (audited); only a ticket not yet confirmed can be discarded."""
        self.book.require_audit()
        with self.book.lock:
            ticket = self.book.get(ticket_id)
            if not ticket.editable or ticket_id in self.book.reserved:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}: only a draft can be discarded.")
            discarded = replace(ticket, state=TicketState.DISCARDED, preview=None, problems=(), updated_at=utc_now())
            self.book.write(discarded, "discarded", session_id)
            self.book.put(discarded)
            return discarded

    def _resolve_legs(self, what: Strategy | Leg | Sequence[Leg]) -> list[Leg]:
        if isinstance(what, Leg):
            legs = [what]
        elif isinstance(what, Strategy):
            legs = strategy_legs(what, self.runtime.snapshot().legs)
        else:
            legs = list(what)
        return [leg for leg in legs if leg.quantity]

    def _stock_contract(self, symbol: str) -> ContractInfo:
        """The held stock's contract, else one the runtime qualifies by symbol when it places it."""
        snapshot = self.runtime.snapshot()
        for leg in snapshot.legs:
            if leg.contract.sec_type == "STK" and leg.contract.symbol == symbol:
                return leg.contract
        return ContractInfo(con_id=0, symbol=symbol, sec_type="STK", local_symbol=symbol)

    def _quoted(self, contract: ContractInfo, ticket_id: str) -> ContractInfo:
        """The contract, live-quoted for this ticket: a symbol the book does not hold is
        subscribed on demand (and qualified, so the ticket carries its conId); released when the
        ticket is final (`release_final_quotes`). Without a quote the checks block the ticket."""
        if contract.con_id and self.runtime.snapshot().quote(contract.con_id) is not None:
            return contract
        ensure = getattr(self.runtime, "ensure_quotes", None)
        if ensure is None:
            return contract
        try:
            qualified = ensure([contract], ticket_id).result(timeout=10.0)
        except Exception as exc:       # the ticket still drafts; its checks say why it is blocked
            log.warning("no on-demand quote for %s: %s", contract.label, exc)
            return contract
        self.quoting.add(ticket_id)
        return qualified[0] if qualified else contract

    def release_final_quotes(self, tickets: dict[str, Ticket]) -> None:
        """Give back the on-demand quotes of tickets that are final. (A ticket being drafted is
        not in the table yet: it keeps its quotes.)"""
        for ticket_id in list(self.quoting):
            ticket = tickets.get(ticket_id)
            if ticket is not None and ticket.state in FINAL_STATES:
                self.quoting.discard(ticket_id)
                self.runtime.release_quotes(ticket_id)

    def _add(self, ticket: Ticket, session_id: str) -> Ticket:
        ticket = replace(ticket, updated_at=ticket.created_at)
        self.book.write(ticket, "drafted", session_id, detail=ticket_detail(ticket))
        self.book.put(ticket)
        return ticket


def actionable_signal(record: Any) -> tuple[str, str]:
    """(BUY/SELL, symbol) of a signal that may become a ticket; OrderDeskError for any other
    (suspect, rejected, HOLD or LOW confidence). Shared by every way a signal is drafted."""
    state = str(getattr(getattr(record, "state", None), "value", getattr(record, "state", "")))
    if getattr(record, "suspect", False) or state != "ACCEPTED":
        # A suspect answer (order structures, tool calls, order text) or a rejected one: the
        # check does not rest on `actionable` alone, so no future edit there can open this.
        reason = getattr(record, "not_actionable_reason", "") or state or "not accepted"
        raise OrderDeskError(f"This signal is not actionable ({reason}): no ticket.")
    if not getattr(record, "actionable", False):
        raise OrderDeskError("This signal is not actionable (HOLD or LOW confidence): no ticket.")
    action = str(getattr(record.action, "value", record.action)).upper()
    if action not in ACTIONS:
        raise OrderDeskError(f"Signal action {action!r} cannot become an order.")
    return action, str(record.symbol).upper()


def leg_close_ticket(leg: Leg, session_id: str) -> Ticket:
    action = "SELL" if leg.quantity > 0 else "BUY"
    limit = None
    if leg.mark:
        limit = round_to_tick(leg.mark, min_tick(leg.contract, leg.mark))
    return Ticket(
        ticket_id=new_ticket_id(), created_at=utc_now(), created_by=session_id, origin="close",
        contract=leg.contract, action=action, quantity=abs(float(leg.quantity)),
        order_type="LMT", limit_price=limit, tif="DAY",
        description=f"close {leg.contract.label}",
    )


def combo_close_ticket(legs: Sequence[Leg], session_id: str) -> Ticket:
    symbols = {leg.contract.symbol for leg in legs}
    if len(symbols) != 1:
        raise OrderDeskError("A combo order needs legs on one underlying; close these as separate legs.")
    sizes = [int(abs(leg.quantity)) for leg in legs]
    if any(abs(leg.quantity) != int(abs(leg.quantity)) for leg in legs):
        raise OrderDeskError("Fractional positions cannot be closed as a combo; close them as legs.")
    unit = reduce(math.gcd, sizes)
    combo_legs = tuple(
        OrderLegSpec(contract=leg.contract, ratio=size // unit,
                     action="SELL" if leg.quantity > 0 else "BUY")
        for leg, size in zip(legs, sizes))
    # Price of one combo unit, per share: positive = we pay (debit), negative = we receive.
    limit = None
    if all(leg.mark for leg in legs):
        net = sum(sign(cl.action) * cl.ratio * leg.mark for cl, leg in zip(combo_legs, legs))
        limit = round_to_tick(net, 0.01)
    symbol = symbols.pop()
    multiplier = max(leg.contract.multiplier for leg in legs)
    contract = ContractInfo(con_id=0, symbol=symbol, sec_type="BAG",
                            currency=legs[0].contract.currency, multiplier=multiplier,
                            exchange="SMART", local_symbol=f"{symbol} combo")
    kinds = ", ".join(f"{'-' if cl.action == 'SELL' else '+'}{cl.ratio} {cl.contract.label}"
                      for cl in combo_legs)
    return Ticket(
        ticket_id=new_ticket_id(), created_at=utc_now(), created_by=session_id, origin="close",
        contract=contract, action="BUY", quantity=float(unit), order_type="LMT",
        limit_price=limit, tif="DAY", combo_legs=combo_legs, description=f"close combo {kinds}",
    )
