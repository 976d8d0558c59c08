"""Order tickets: the confirm-to-trade state machine.

A ticket is drafted (from a signal or to close positions), edited, checked against the limits,
previewed (IB what-if, live quote, portfolio Greeks before -> after), confirmed by a human and then
placed exactly once, with its ticket id as IB's `orderRef`. Every transition is appended to the
durable audit log *before* the next step runs, so a crash leaves a trail that `recover()` can
finish: a ticket confirmed but never recorded as sent is "uncertain" until the gateway is asked
for an order carrying its ticket id; it is never re-sent on its own.

    drafted -> checked -> previewed -> confirmed -> sent -> working -> filled / cancelled / rejected
                                             \\-> uncertain -> (reconciled to the gateway's order)

Editing a ticket before confirmation sends it back to "drafted": a preview only ever describes
the exact order that will be sent.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from enum import Enum
from functools import reduce
from typing import Any

from v6core.config import Settings
from v6core.models import (
    ConnState,
    ContractInfo,
    FillView,
    Greeks,
    GreekSource,
    Leg,
    OrderLegSpec,
    OrderSpec,
    OrderView,
    PortfolioSnapshot,
    PositionGreeks,
    Quote,
    Strategy,
    WhatIfResult,
)

log = logging.getLogger(__name__)

ACTIONS = ("BUY", "SELL")
ORDER_TYPES = ("LMT", "MKT")
TIFS = ("DAY", "GTC")
PENNY_PILOT = frozenset({"SPY", "QQQ", "IWM"})
LIVE_WORD = "LIVE"

# Functions called with (event, ticket id) just after each audit event is durably written. Empty
# in production; the crash test registers one that kills the process between "confirmed" and "sent".
AFTER_AUDIT_HOOKS: list[Callable[[str, str], None]] = []


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


@dataclass(slots=True, frozen=True)
class CheckResult:
    problems: tuple[str, ...]
    notional: float | None = None
    order_greeks: PositionGreeks | None = None
    quotes: tuple[Quote, ...] = ()
    needs_typed_confirmation: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


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
    stop: float | None = None          # shown with signal tickets; not sent (v6 sends one order)
    target: float | None = None
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

    @property
    def spec(self) -> OrderSpec:
        return OrderSpec(
            contract=self.contract, action=self.action, quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price if self.order_type == "LMT" else None,
            tif=self.tif, combo_legs=self.combo_legs,
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
        return f"{self.action} {self.quantity:g} {self.description or self.contract.label} @ {price} {self.tif}"


# ---------------------------------------------------------------------------------------------
# Pure rules: tick grid, validation, order Greeks


def min_tick(contract: ContractInfo, price: float | None) -> float:
    """Minimum price increment: stocks $0.01; options $0.01 below $3 and $0.05 from $3, except the
    penny-pilot names (SPY, QQQ, IWM) at $0.01 throughout; combos trade in $0.01."""
    if contract.sec_type != "OPT":
        return 0.01
    if contract.symbol.upper() in PENNY_PILOT:
        return 0.01
    return 0.05 if price is not None and abs(price) >= 3.0 else 0.01


def on_tick_grid(price: float, tick: float) -> bool:
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 2)


def validate_fields(action: str, quantity: float, order_type: str, limit_price: float | None,
                    tif: str, contract: ContractInfo) -> list[str]:
    """Field-level problems, each a sentence the operator can act on."""
    problems: list[str] = []
    if action not in ACTIONS:
        problems.append(f"Action must be BUY or SELL (got {action!r}).")
    if quantity is None or not math.isfinite(quantity) or quantity <= 0:
        problems.append("Quantity must be a positive number.")
    elif quantity != int(quantity):
        problems.append(f"Quantity must be a whole number (got {quantity:g}).")
    if order_type not in ORDER_TYPES:
        problems.append(f"Order type must be LMT or MKT (got {order_type!r}).")
    if tif not in TIFS:
        problems.append(f"Time in force must be DAY or GTC (got {tif!r}).")
    if order_type == "LMT":
        if limit_price is None or not math.isfinite(limit_price):
            problems.append("A limit price is required for a LMT order.")
        elif contract.sec_type != "BAG" and limit_price <= 0:
            problems.append(f"Limit price must be positive (got {limit_price:g}).")
        else:
            tick = min_tick(contract, limit_price)
            if not on_tick_grid(limit_price, tick):
                problems.append(
                    f"Limit price {limit_price:g} is not on the tick grid: {contract.label} trades in "
                    f"steps of ${tick:.2f} at this price (nearest {round_to_tick(limit_price, tick):.2f}).")
    return problems


def _sign(action: str) -> int:
    return 1 if action == "BUY" else -1


def order_legs(spec: OrderSpec) -> list[tuple[ContractInfo, float]]:
    """(contract, signed quantity in contracts/shares) for each leg the order would trade."""
    if spec.contract.sec_type == "BAG":
        return [(leg.contract, _sign(spec.action) * _sign(leg.action) * leg.ratio * spec.quantity)
                for leg in spec.combo_legs]
    return [(spec.contract, _sign(spec.action) * spec.quantity)]


def _leg_greeks(snapshot: PortfolioSnapshot, contract: ContractInfo, rate: float = 0.0) -> Greeks | None:
    if contract.sec_type == "STK":
        from v6core.greeks import STOCK_GREEKS

        return STOCK_GREEKS
    held = next((leg for leg in snapshot.legs if leg.contract.con_id == contract.con_id), None)
    if held is not None:
        return held.greeks if not held.flags else None
    return _quoted_greeks(snapshot, contract, rate)


def _quoted_greeks(snapshot: PortfolioSnapshot, contract: ContractInfo, rate: float) -> Greeks | None:
    """An option not held (a ticket opening it): Black-Scholes at its quoted IV and the spot."""
    from v6core.greeks import bs_greeks, year_fraction

    quote = snapshot.quote(contract.con_id) if contract.con_id else None
    spot = _spot(snapshot, contract.symbol)
    if (quote is None or not quote.iv or not spot or contract.expiry is None or not contract.strike
            or contract.right not in ("C", "P")):
        return None
    g = bs_greeks(spot, contract.strike, year_fraction(contract.expiry, _now()), rate, quote.iv,
                  contract.right == "C")
    values = [float(g[k][0]) for k in ("delta", "gamma", "theta", "vega")]
    if not all(math.isfinite(v) for v in values):
        return None
    return Greeks(*values, iv=quote.iv, und_price=spot, source=GreekSource.COMPUTED)


def strategy_legs(strategy: Strategy, legs: Iterable[Leg]) -> list[Leg]:
    """The strategy's legs, each with the quantity this strategy holds (a leg can be split
    between strategies, e.g. 2 of 3 short puts in a condor)."""
    by_con_id = {leg.contract.con_id: leg for leg in legs}
    quantities = strategy.quantities if len(strategy.quantities) == len(strategy.con_ids) else (
        tuple(by_con_id[c].quantity if c in by_con_id else 0.0 for c in strategy.con_ids))
    return [replace(by_con_id[c], quantity=q) for c, q in zip(strategy.con_ids, quantities)
            if c in by_con_id and q]


def quote_for(snapshot: PortfolioSnapshot, contract: ContractInfo) -> Quote | None:
    """The contract's live quote; a stock not held is quoted through its underlying summary."""
    quote = snapshot.quote(contract.con_id) if contract.con_id else None
    if quote is None and contract.sec_type == "STK":
        und = snapshot.underlying(contract.symbol)
        if und is not None and und.spot:
            quote = Quote(con_id=contract.con_id, last=und.spot, time=und.quote_time)
    return quote


def _spot(snapshot: PortfolioSnapshot, symbol: str) -> float | None:
    und = snapshot.underlying(symbol)
    if und is not None and und.spot:
        return und.spot
    for leg in snapshot.legs:
        if leg.contract.sec_type == "STK" and leg.contract.symbol == symbol:
            return leg.mark
    return None


# ---------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_ticket_id() -> str:
    return "T-" + uuid.uuid4().hex[:12]


def _contract_to_json(c: ContractInfo) -> dict[str, Any]:
    return {
        "con_id": c.con_id, "symbol": c.symbol, "sec_type": c.sec_type, "currency": c.currency,
        "expiry": c.expiry.isoformat() if c.expiry else None, "strike": c.strike, "right": c.right,
        "multiplier": c.multiplier, "local_symbol": c.local_symbol, "exchange": c.exchange,
        "trading_class": c.trading_class,
    }


def _contract_from_json(d: dict[str, Any]) -> ContractInfo:
    d = dict(d)
    d["expiry"] = date.fromisoformat(d["expiry"]) if d.get("expiry") else None
    return ContractInfo(**d)


def spec_to_json(spec: OrderSpec) -> dict[str, Any]:
    return {
        "contract": _contract_to_json(spec.contract), "action": spec.action,
        "quantity": spec.quantity, "order_type": spec.order_type,
        "limit_price": spec.limit_price, "tif": spec.tif,
        "combo_legs": [{"contract": _contract_to_json(leg.contract), "ratio": leg.ratio,
                        "action": leg.action} for leg in spec.combo_legs],
    }


def spec_from_json(d: dict[str, Any]) -> OrderSpec:
    return OrderSpec(
        contract=_contract_from_json(d["contract"]), action=d["action"], quantity=float(d["quantity"]),
        order_type=d["order_type"], limit_price=d.get("limit_price"), tif=d.get("tif", "DAY"),
        combo_legs=tuple(OrderLegSpec(contract=_contract_from_json(leg["contract"]),
                                      ratio=int(leg["ratio"]), action=leg["action"])
                         for leg in d.get("combo_legs", ())),
    )


def _greeks_json(g: PositionGreeks) -> dict[str, float]:
    return {"delta": g.delta, "gamma": g.gamma, "theta": g.theta, "vega": g.vega,
            "dollar_delta": g.dollar_delta, "beta_delta": g.beta_delta}


class OrderDesk:
    """The one place orders are made. Thread-safe; shared by every browser session."""

    def __init__(self, settings: Settings, runtime: Any, audit: Any | None, *,
                 follow_interval: float = 0.5, request_timeout: float = 15.0,
                 commission_grace: float = 5.0) -> None:
        self.settings = settings
        self.runtime = runtime
        self.audit = audit
        self.follow_interval = follow_interval
        self.request_timeout = request_timeout
        self.commission_grace = commission_grace
        self._lock = threading.RLock()
        self._audit_lock = threading.Lock()
        self._tickets: dict[str, Ticket] = {}
        self._reserved: set[str] = set()        # ticket ids confirmed (or being confirmed) here
        self._recorded_fills: set[str] = set()  # exec ids already in the audit
        self._first_seen_fill: dict[str, float] = {}
        self._recovered = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
                if not self._recovered.is_set() and self._connected(self.runtime.snapshot()):
                    self.recover()
                if self._recovered.is_set():
                    self.sync()
            except Exception:  # the follower must outlive one bad update; the next pass retries
                log.exception("order follower pass failed")
            self._stop.wait(self.follow_interval)

    @property
    def recovered(self) -> bool:
        return self._recovered.is_set()

    @property
    def trading_available(self) -> bool:
        return self.audit is not None

    # ----------------------------------------------------------------- reading

    def ticket(self, ticket_id: str) -> Ticket:
        with self._lock:
            t = self._tickets.get(ticket_id)
        if t is None:
            raise TicketNotFound(f"No ticket {ticket_id!r}.")
        return t

    def tickets(self) -> list[Ticket]:
        with self._lock:
            return sorted(self._tickets.values(), key=lambda t: t.created_at, reverse=True)

    def audit_trail(self, ticket_id: str):
        self._require_audit()
        return self.audit.audit(ticket_id)

    # ----------------------------------------------------------------- drafting

    def draft_from_signal(self, record: Any, session_id: str, quantity: float = 1) -> Ticket:
        """A stock/ETF LMT ticket at the signal's suggested entry; stop and target shown, not sent."""
        self._require_audit()
        if not getattr(record, "actionable", False):
            raise OrderDeskError("This signal is not actionable (HOLD or LOW confidence): no ticket.")
        action = str(getattr(record.action, "value", record.action)).upper()
        if action not in ACTIONS:
            raise OrderDeskError(f"Signal action {action!r} cannot become an order.")
        symbol = str(record.symbol).upper()
        contract = self._stock_contract(symbol)
        entry = float(record.entry)
        limit = round_to_tick(entry, min_tick(contract, entry))
        ticket = Ticket(
            ticket_id=new_ticket_id(), created_at=_now(), created_by=session_id, origin="signal",
            contract=contract, action=action, quantity=float(quantity), order_type="LMT",
            limit_price=limit, tif="DAY", description=f"{symbol} stock",
            signal_id=str(getattr(record, "record_id", None) or getattr(record, "id", "") or ""),
            stop=_opt_float(getattr(record, "stop", None)), target=_opt_float(getattr(record, "target", None)),
        )
        return self._add_draft(ticket, session_id)

    def draft_close(self, legs_or_strategy: Strategy | Leg | Sequence[Leg], as_combo: bool,
                    session_id: str) -> list[Ticket]:
        """Tickets that close legs: one BAG combo for all of them, or one ticket per leg."""
        self._require_audit()
        legs = self._resolve_legs(legs_or_strategy)
        if not legs:
            raise OrderDeskError("Nothing to close: no open legs.")
        if as_combo and len(legs) > 1:
            return [self._add_draft(self._combo_close_ticket(legs, session_id), session_id)]
        return [self._add_draft(self._leg_close_ticket(leg, session_id), session_id) for leg in legs]

    def _resolve_legs(self, what: Strategy | Leg | Sequence[Leg]) -> list[Leg]:
        if isinstance(what, Leg):
            legs = [what]
        elif isinstance(what, Strategy):
            legs = strategy_legs(what, self.runtime.snapshot().legs)
        else:
            legs = list(what)
        return [leg for leg in legs if leg.quantity]

    def _leg_close_ticket(self, leg: Leg, session_id: str) -> Ticket:
        action = "SELL" if leg.quantity > 0 else "BUY"
        limit = None
        if leg.mark:
            limit = round_to_tick(leg.mark, min_tick(leg.contract, leg.mark))
        return Ticket(
            ticket_id=new_ticket_id(), created_at=_now(), created_by=session_id, origin="close",
            contract=leg.contract, action=action, quantity=abs(float(leg.quantity)),
            order_type="LMT", limit_price=limit, tif="DAY",
            description=f"close {leg.contract.label}",
        )

    def _combo_close_ticket(self, legs: Sequence[Leg], session_id: str) -> Ticket:
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
            net = sum(_sign(cl.action) * cl.ratio * leg.mark for cl, leg in zip(combo_legs, legs))
            limit = round_to_tick(net, 0.01)
        symbol = symbols.pop()
        multiplier = max(leg.contract.multiplier for leg in legs)
        contract = ContractInfo(con_id=0, symbol=symbol, sec_type="BAG",
                                currency=legs[0].contract.currency, multiplier=multiplier,
                                exchange="SMART", local_symbol=f"{symbol} combo")
        kinds = ", ".join(f"{'-' if cl.action == 'SELL' else '+'}{cl.ratio} {cl.contract.label}"
                          for cl in combo_legs)
        return Ticket(
            ticket_id=new_ticket_id(), created_at=_now(), created_by=session_id, origin="close",
            contract=contract, action="BUY", quantity=float(unit), order_type="LMT",
            limit_price=limit, tif="DAY", combo_legs=combo_legs, description=f"close combo {kinds}",
        )

    def _stock_contract(self, symbol: str) -> ContractInfo:
        """The held stock's contract, else one the runtime qualifies by symbol when it places it."""
        snapshot = self.runtime.snapshot()
        for leg in snapshot.legs:
            if leg.contract.sec_type == "STK" and leg.contract.symbol == symbol:
                return leg.contract
        return ContractInfo(con_id=0, symbol=symbol, sec_type="STK", local_symbol=symbol)

    def _add_draft(self, ticket: Ticket, session_id: str) -> Ticket:
        ticket = replace(ticket, updated_at=ticket.created_at)
        self._write(ticket, "drafted", session_id, detail=self._ticket_detail(ticket))
        with self._lock:
            self._tickets[ticket.ticket_id] = ticket
        return ticket

    @staticmethod
    def _ticket_detail(ticket: Ticket) -> dict[str, Any]:
        return {"spec": spec_to_json(ticket.spec), "limit_price": ticket.limit_price,
                "origin": ticket.origin, "description": ticket.description,
                "signal_id": ticket.signal_id, "stop": ticket.stop, "target": ticket.target}

    # ----------------------------------------------------------------- editing

    def edit(self, ticket_id: str, session_id: str, **changes: Any) -> Ticket:
        """Change action, quantity, order_type, limit_price or tif; invalidates check and preview."""
        allowed = {"action", "quantity", "order_type", "limit_price", "tif"}
        unknown = set(changes) - allowed
        if unknown:
            raise OrderDeskError(f"Cannot edit {', '.join(sorted(unknown))}; editable: {', '.join(sorted(allowed))}.")
        with self._lock:
            ticket = self.ticket(ticket_id)
            if not ticket.editable:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}: it can no longer be edited.")
            normalised = dict(changes)
            if "action" in normalised:
                normalised["action"] = str(normalised["action"]).upper()
            if "order_type" in normalised:
                normalised["order_type"] = str(normalised["order_type"]).upper()
            if "tif" in normalised:
                normalised["tif"] = str(normalised["tif"]).upper()
            if "quantity" in normalised:
                normalised["quantity"] = _opt_float(normalised["quantity"])
            if "limit_price" in normalised:
                normalised["limit_price"] = _opt_float(normalised["limit_price"])
            if all(getattr(ticket, k) == v for k, v in normalised.items()):
                return ticket
            edited = replace(ticket, **normalised, state=TicketState.DRAFTED, problems=(),
                             preview=None, updated_at=_now())
            self._write(edited, "edited", session_id, detail={**self._ticket_detail(edited), "changes": {
                k: v for k, v in normalised.items()}})
            self._tickets[ticket_id] = edited
            return edited

    # ----------------------------------------------------------------- checks

    def evaluate(self, ticket: Ticket, snapshot: PortfolioSnapshot | None = None) -> CheckResult:
        """Every pre-trade rule against the current snapshot. Pure apart from reading the snapshot."""
        s = self.settings
        snapshot = snapshot or self.runtime.snapshot()
        problems = validate_fields(ticket.action, ticket.quantity, ticket.order_type,
                                   ticket.limit_price, ticket.tif, ticket.contract)
        conn = snapshot.connection
        if conn.state != ConnState.CONNECTED:
            problems.append(f"Gateway is {conn.state.value}: orders are blocked until it is connected"
                            + (f" (last error: {conn.last_error})." if conn.last_error else "."))
        needs_typed = False
        if not conn.is_paper:
            if not s.live_trading_enabled:
                problems.append(f"Account {conn.account or snapshot.account.account} is a LIVE account and "
                                "live trading is locked (set V6_LIVE_TRADING_ENABLED=true to unlock it).")
            else:
                needs_typed = True
        symbol = ticket.contract.symbol.upper()
        if symbol not in s.allowed_symbols:
            problems.append(f"{symbol} is not an allowed symbol (allowed: {', '.join(s.allowed_symbols)}).")
        if ticket.is_combo and not ticket.combo_legs:
            problems.append("A combo order needs its legs.")
        if ticket.quantity and ticket.quantity > s.max_order_quantity:
            problems.append(f"Quantity {ticket.quantity:g} is above the limit of {s.max_order_quantity:g}.")
        if ticket.is_combo and ticket.combo_legs:
            biggest = max(leg.ratio for leg in ticket.combo_legs) * (ticket.quantity or 0)
            if biggest > s.max_order_quantity:
                problems.append(f"A leg of this combo trades {biggest:g} contracts, above the limit of "
                                f"{s.max_order_quantity:g}.")

        now = _now()
        quotes: list[Quote] = []
        leg_contracts = [c for c, _ in order_legs(ticket.spec)] if ticket.quantity else [ticket.contract]
        for contract in leg_contracts:
            quote = quote_for(snapshot, contract)
            if quote is None or quote.time is None:
                problems.append(f"No live quote for {contract.label}: orders on it are blocked.")
                continue
            quotes.append(quote)
            age = (now - quote.time).total_seconds()
            if age > s.stale_after:
                problems.append(f"The quote for {contract.label} is {age:.1f} s old (stale after "
                                f"{s.stale_after:g} s): orders are blocked until it is fresh.")

        notional = None
        order_greeks = None
        if ticket.quantity and ticket.quantity > 0 and ticket.action in ACTIONS:
            notional = self._notional(ticket, quotes)
            if notional is None:
                problems.append("The order's notional cannot be computed (no limit price and no quote).")
            elif notional > s.max_order_notional:
                problems.append(f"Notional ${notional:,.0f} is above the limit of ${s.max_order_notional:,.0f}.")
            order_greeks, missing = self._order_greeks(ticket, snapshot)
            if missing:
                problems.append("No Greeks for " + ", ".join(missing)
                                + ": the change in portfolio delta cannot be checked.")
            elif abs(order_greeks.delta) > s.max_delta_change:
                problems.append(f"This order changes portfolio delta by {order_greeks.delta:+,.1f} shares, "
                                f"above the limit of {s.max_delta_change:g}.")
        return CheckResult(problems=tuple(problems), notional=notional, order_greeks=order_greeks,
                           quotes=tuple(quotes), needs_typed_confirmation=needs_typed)

    def _notional(self, ticket: Ticket, quotes: Sequence[Quote]) -> float | None:
        """Premium at risk: |price| x quantity x multiplier (gross over a combo's legs)."""
        marks = {q.con_id: q.mark for q in quotes}
        if not ticket.is_combo:
            price = ticket.limit_price if ticket.order_type == "LMT" else marks.get(ticket.contract.con_id)
            if price is None:
                return None
            return abs(price) * ticket.quantity * ticket.contract.multiplier
        total = 0.0
        for leg in ticket.combo_legs:
            mark = marks.get(leg.contract.con_id)
            if mark is None:
                return None
            total += abs(mark) * leg.ratio * ticket.quantity * leg.contract.multiplier
        if ticket.order_type == "LMT" and ticket.limit_price is not None:
            total = max(total, abs(ticket.limit_price) * ticket.quantity * ticket.contract.multiplier)
        return total

    def _order_greeks(self, ticket: Ticket, snapshot: PortfolioSnapshot) -> tuple[PositionGreeks, list[str]]:
        from v6core.greeks import position_greeks

        total = PositionGreeks()
        missing: list[str] = []
        spy = _spot(snapshot, "SPY")
        for contract, quantity in order_legs(ticket.spec):
            greeks = _leg_greeks(snapshot, contract, self.settings.risk_free_rate)
            spot = _spot(snapshot, contract.symbol)
            if spot is None and contract.sec_type == "STK":
                quote = quote_for(snapshot, contract)
                spot = quote.mark if quote else None
            if greeks is None:
                missing.append(contract.label)
                continue
            beta = self.settings.betas.get(contract.symbol, 1.0)
            total = total + position_greeks(greeks, quantity, contract.multiplier, spot, beta, spy)
        return total, missing

    def check(self, ticket_id: str, session_id: str) -> CheckResult:
        """Run the checks and record the outcome; a passing ticket moves to "checked"."""
        self._require_audit()
        with self._lock:
            ticket = self.ticket(ticket_id)
            if not ticket.editable:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}: nothing to check.")
            result = self.evaluate(ticket)
            state = TicketState.CHECKED if result.ok else TicketState.DRAFTED
            checked = replace(ticket, state=state, problems=result.problems, preview=None, updated_at=_now())
            self._write(checked, "checked", session_id, status="ok" if result.ok else "blocked",
                        detail={"problems": list(result.problems), "notional": result.notional,
                                "order_delta": result.order_greeks.delta if result.order_greeks else None})
            self._tickets[ticket_id] = checked
            return result

    # ----------------------------------------------------------------- preview

    def preview(self, ticket_id: str, session_id: str) -> Ticket:
        """Check, then ask IB what-if for margin and commission; Greeks before -> after."""
        result = self.check(ticket_id, session_id)
        if not result.ok:
            raise TicketBlocked(result.problems)
        ticket = self.ticket(ticket_id)
        spec = ticket.spec
        try:
            what_if = self.runtime.what_if(spec).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"IB what-if failed: {_reason(exc)}") from exc
        snapshot = self.runtime.snapshot()
        order_greeks = result.order_greeks or PositionGreeks()
        preview = Preview(
            spec=spec, what_if=what_if, quotes=result.quotes, notional=result.notional or 0.0,
            order_greeks=order_greeks, greeks_before=snapshot.totals,
            greeks_after=snapshot.totals + order_greeks,
            account=snapshot.connection.account or snapshot.account.account,
            is_paper=snapshot.connection.is_paper,
            needs_typed_confirmation=result.needs_typed_confirmation, made_at=_now(),
            snapshot_seq=snapshot.seq,
        )
        with self._lock:
            current = self.ticket(ticket_id)
            if current.spec != spec or current.state != TicketState.CHECKED:
                raise OrderDeskError("The ticket changed while the preview was being made; review it again.")
            previewed = replace(current, state=TicketState.PREVIEWED, preview=preview, updated_at=_now())
            self._write(previewed, "previewed", session_id, detail={
                "spec": spec_to_json(spec), "init_margin_change": what_if.init_margin_change,
                "maint_margin_change": what_if.maint_margin_change, "commission": what_if.commission,
                "warning": what_if.warning, "notional": preview.notional,
                "greeks_before": _greeks_json(preview.greeks_before),
                "greeks_after": _greeks_json(preview.greeks_after)})
            self._tickets[ticket_id] = previewed
            return previewed

    # ----------------------------------------------------------------- confirmation and placement

    def confirm(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """Place the previewed ticket exactly once. Refuses any second confirm, from anywhere."""
        self._require_audit()
        with self._lock:
            ticket = self.ticket(ticket_id)
            if ticket_id in self._reserved or ticket.state not in EDITABLE_STATES:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already confirmed ({ticket.state.value}); "
                                       "it is never placed twice.")
            if self._confirmed_in_audit(ticket_id):
                self._reserved.add(ticket_id)
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already confirmed (audit log); "
                                       "it is never placed twice.")
            if ticket.state != TicketState.PREVIEWED or ticket.preview is None:
                raise OrderDeskError("Review the ticket (checks and preview) before confirming it.")
            if ticket.preview.spec != ticket.spec:
                raise OrderDeskError("The ticket changed after its preview; review it again.")
            result = self.evaluate(ticket)
            if not result.ok:
                raise TicketBlocked(result.problems)
            if result.needs_typed_confirmation:
                self._require_typed(typed)
            self._reserved.add(ticket_id)
            confirmed = replace(ticket, state=TicketState.CONFIRMED, confirmed_by=session_id, updated_at=_now())
            try:
                self._write(confirmed, "confirmed", session_id, detail={
                    "spec": spec_to_json(confirmed.spec), "typed_confirmation": bool(typed),
                    "account": ticket.preview.account, "is_paper": ticket.preview.is_paper})
            except Exception:
                # Nothing was sent and nothing durable says "confirmed": the operator may retry.
                self._reserved.discard(ticket_id)
                raise
            self._tickets[ticket_id] = confirmed
        return self._place(confirmed, session_id)

    def resend(self, ticket_id: str, session_id: str, typed: str | None = None) -> Ticket:
        """The operator's explicit re-confirmation of an uncertain ticket.

        Asks the gateway for an order with this ticket's orderRef first: if one exists the ticket
        is reconciled to it and nothing is sent."""
        self._require_audit()
        resend_key = ticket_id + "#resend"
        with self._lock:
            ticket = self.ticket(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                raise OrderDeskError(f"Ticket {ticket_id} is {ticket.state.value}, not uncertain: nothing to re-send.")
            if resend_key in self._reserved:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is already being re-sent.")
            self._reserved.add(resend_key)
        try:
            return self._resend(ticket_id, session_id, typed)
        finally:
            with self._lock:
                self._reserved.discard(resend_key)

    def _resend(self, ticket_id: str, session_id: str, typed: str | None) -> Ticket:
        try:
            views = self.runtime.find_orders_by_ref(ticket_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"The gateway could not be asked for this ticket's order ({_reason(exc)}); "
                                 "nothing was sent.") from exc
        if views:
            return self._reconcile_to(ticket_id, views, session_id)
        ticket = self.ticket(ticket_id)
        self._write(ticket, "gateway_checked", session_id, detail={"found": 0, "before": "resend"})
        result = self.evaluate(ticket)
        if not result.ok:
            raise TicketBlocked(result.problems)
        if result.needs_typed_confirmation:
            self._require_typed(typed)
        with self._lock:
            ticket = self.ticket(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                raise AlreadyConfirmed(f"Ticket {ticket_id} is {ticket.state.value}: nothing to re-send.")
            confirmed = replace(ticket, state=TicketState.CONFIRMED, confirmed_by=session_id, updated_at=_now())
            self._write(confirmed, "confirmed", session_id,
                        detail={"spec": spec_to_json(confirmed.spec), "resend": True,
                                "typed_confirmation": bool(typed)})
            self._tickets[ticket_id] = confirmed
        return self._place(confirmed, session_id)

    def _require_typed(self, typed: str | None) -> None:
        snapshot = self.runtime.snapshot()
        account = snapshot.connection.account or snapshot.account.account
        entered = (typed or "").strip()
        if not entered or entered not in {account, LIVE_WORD}:
            raise TicketBlocked([f"Live account {account}: type the account id or {LIVE_WORD} "
                                 "to confirm this order."])

    def _place(self, ticket: Ticket, session_id: str) -> Ticket:
        try:
            view: OrderView = self.runtime.place_order(ticket.spec, ticket.ticket_id).result(
                timeout=self.request_timeout)
        except Exception as exc:
            # The order may or may not have reached the gateway: never guess, never re-send.
            uncertain = replace(ticket, state=TicketState.UNCERTAIN, last_message=_reason(exc),
                                updated_at=_now())
            self._write(uncertain, "uncertain", session_id, detail={"reason": _reason(exc)})
            with self._lock:
                self._tickets[ticket.ticket_id] = uncertain
            return uncertain
        sent = self._apply_view(ticket, view)
        self._write(sent, "sent", session_id, status=view.status,
                    detail={"last_message": view.last_message, "filled": view.filled})
        with self._lock:
            self._tickets[ticket.ticket_id] = sent
        if sent.state in FINAL_STATES:
            self._write(sent, sent.state.value, session_id, status=view.status,
                        detail={"reason": view.last_message})
        return sent

    def _confirmed_in_audit(self, ticket_id: str) -> bool:
        trail = self.audit.audit(ticket_id)
        return trail.height > 0 and "confirmed" in set(trail["event"].to_list())

    # ----------------------------------------------------------------- following

    def _apply_view(self, ticket: Ticket, view: OrderView) -> Ticket:
        if view.status == "Filled" or (view.remaining == 0 and view.filled > 0):
            state = TicketState.FILLED
        elif view.status in CANCELLED_STATUSES:
            # Cancelled with an error and nobody asked for it: the gateway refused the order.
            # Code 202 is IB's own "order cancelled" notice (e.g. cancelled in TWS), not a refusal.
            message = view.last_message or ""
            rejected = (not ticket.cancel_requested and view.filled == 0 and bool(message)
                        and not message.startswith(f"{ORDER_CANCELLED_CODE}:"))
            state = TicketState.REJECTED if rejected else TicketState.CANCELLED
        elif view.status == "Inactive" or _refused_unacknowledged(view):
            state = TicketState.REJECTED
        elif not view.perm_id and view.status in ("PendingSubmit", "ApiPending"):
            state = TicketState.SENT        # not acknowledged by the gateway yet
        else:
            state = TicketState.WORKING
        return replace(ticket, state=state, order_id=view.order_id, perm_id=view.perm_id or ticket.perm_id,
                       status=view.status, filled=view.filled, remaining=view.remaining,
                       avg_fill_price=view.avg_fill_price, last_message=view.last_message or ticket.last_message,
                       updated_at=_now())

    def sync(self, snapshot: PortfolioSnapshot | None = None) -> None:
        """Bring followed tickets up to date with the gateway's orders and fills; audit changes."""
        if self.audit is None:
            return
        snapshot = snapshot or self.runtime.snapshot()
        with self._lock:
            followed = {t.ticket_id: t for t in self._tickets.values()
                        if t.state in FOLLOWED_STATES or (t.state in FINAL_STATES and t.order_id is not None)}
        by_ref = {o.order_ref: o for o in snapshot.orders if o.order_ref in followed}
        self._adopt_uncertain(snapshot)
        for ticket_id, view in by_ref.items():
            ticket = followed[ticket_id]
            if ticket.state in FINAL_STATES and ticket.status == view.status and ticket.filled == view.filled:
                continue
            with self._lock:
                current = self._tickets[ticket_id]
                if current.state not in FOLLOWED_STATES and current.state not in FINAL_STATES:
                    continue
                updated = self._apply_view(current, view)
                if (updated.state, updated.status, updated.filled, updated.last_message) == (
                        current.state, current.status, current.filled, current.last_message):
                    continue
                self._write(updated, "status", "", status=view.status, detail={
                    "state": updated.state.value, "filled": view.filled, "remaining": view.remaining,
                    "avg_fill_price": view.avg_fill_price, "last_message": view.last_message})
                self._tickets[ticket_id] = updated
        self._record_fills(snapshot.fills)

    def _adopt_uncertain(self, snapshot: PortfolioSnapshot) -> None:
        """An uncertain ticket whose order shows up in the live order book is reconciled to it."""
        with self._lock:
            uncertain = {t.ticket_id for t in self._tickets.values() if t.state == TicketState.UNCERTAIN}
        if not uncertain:
            return
        for view in snapshot.orders:
            if view.order_ref in uncertain and (view.perm_id or view.status not in WORKING_STATUSES):
                self._reconcile_to(view.order_ref, [view], "")
                uncertain.discard(view.order_ref)

    def _record_fills(self, fills: Iterable[FillView]) -> None:
        with self._lock:
            # Only tickets whose "sent" (or "reconciled") row is written: a fill is never audited
            # ahead of the step that placed its order.
            placed = [t for t in self._tickets.values() if t.state in FOLLOWED_STATES | FINAL_STATES]
            ids = {t.ticket_id for t in placed}
            by_order = {t.order_id: t.ticket_id for t in placed if t.order_id}
            by_perm = {t.perm_id: t.ticket_id for t in placed if t.perm_id}
        now = time.monotonic()
        ready: list[tuple[FillView, str]] = []
        for fill in fills:
            if fill.exec_id in self._recorded_fills:
                continue
            # Executions loaded at connect may lack the orderRef; the perm id is IB's own key.
            ticket_id = (fill.order_ref if fill.order_ref in ids
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
        self.audit.append_fills([replace(f, order_ref=tid) for f, tid in ready],
                                account=snapshot.connection.account or snapshot.account.account)
        for fill, ticket_id in ready:
            ticket = self.ticket(ticket_id)
            self._write(ticket, "fill", "", status=ticket.status, order_id=fill.order_id,
                        perm_id=fill.perm_id, detail={
                            "exec_id": fill.exec_id, "side": fill.side, "quantity": fill.quantity,
                            "price": fill.price, "commission": fill.commission,
                            "realized_pnl": fill.realized_pnl, "contract": fill.contract.label})
            self._recorded_fills.add(fill.exec_id)
            self._first_seen_fill.pop(fill.exec_id, None)

    # ----------------------------------------------------------------- cancel

    def cancel(self, ticket_id: str, session_id: str) -> Ticket:
        """Cancel the working order of a ticket."""
        self._require_audit()
        with self._lock:
            ticket = self.ticket(ticket_id)
            if ticket.order_id is None or ticket.state not in FOLLOWED_STATES:
                raise OrderDeskError(f"Ticket {ticket_id} has no working order to cancel ({ticket.state.value}).")
            ticket = replace(ticket, cancel_requested=True, updated_at=_now())
            self._tickets[ticket_id] = ticket
        self._write(ticket, "cancel_requested", session_id, status=ticket.status)
        try:
            self.runtime.cancel_order(ticket.order_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel failed: {_reason(exc)}") from exc
        return ticket

    def cancel_order(self, order_id: int, session_id: str) -> None:
        """Cancel any working order by IB order id (orders v6 did not place included)."""
        self._require_audit()
        ticket = next((t for t in self.tickets() if t.order_id == order_id), None)
        if ticket is not None and ticket.state in FOLLOWED_STATES:
            self.cancel(ticket.ticket_id, session_id)
            return
        self._write_raw("", "cancel_requested", session_id, order_id=order_id)
        try:
            self.runtime.cancel_order(order_id).result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel failed: {_reason(exc)}") from exc

    def cancel_all(self, session_id: str) -> None:
        """Global cancel of every working order (the page asks for its own confirmation first)."""
        self._require_audit()
        with self._lock:
            for tid, t in list(self._tickets.items()):
                if t.state in FOLLOWED_STATES:
                    self._tickets[tid] = replace(t, cancel_requested=True)
        self._write_raw("", "cancel_all_requested", session_id)
        try:
            self.runtime.cancel_all().result(timeout=self.request_timeout)
        except Exception as exc:
            raise OrderDeskError(f"Cancel-all failed: {_reason(exc)}") from exc

    # ----------------------------------------------------------------- recovery

    def recover(self) -> list[Ticket]:
        """Rebuild tickets from the audit log; reconcile every confirmed-but-not-sent ticket.

        Returns the tickets that were uncertain at start (after reconciliation)."""
        if self.audit is None:
            self._recovered.set()
            return []
        trail = self.audit.audit()
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
                with self._lock:
                    if tid in self._tickets and self._tickets[tid].updated_at and ticket.updated_at and \
                            self._tickets[tid].updated_at > ticket.updated_at:
                        continue
                    self._tickets[tid] = ticket
                    if any(r["event"] == "confirmed" for r in rows.to_dicts()):
                        self._reserved.add(tid)
                    self._recorded_fills.update(
                        json.loads(r["detail"] or "{}").get("exec_id", "")
                        for r in rows.to_dicts() if r["event"] == "fill")
                if ticket.state == TicketState.UNCERTAIN:
                    uncertain.append(ticket)
        results = [self.reconcile(ticket.ticket_id, "") for ticket in uncertain]
        self._recovered.set()
        return results

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
            elif event == "status":
                ticket = replace(ticket, state=TicketState(detail.get("state", "working")),
                                 status=row.get("status") or "", filled=float(detail.get("filled") or 0),
                                 remaining=detail.get("remaining"), avg_fill_price=detail.get("avg_fill_price"),
                                 last_message=detail.get("last_message") or "", **ids)
            elif event in ("filled", "cancelled", "rejected"):
                ticket = replace(ticket, state=TicketState(event), **ids)
            elif event == "uncertain":
                marked_uncertain = True
                ticket = replace(ticket, state=TicketState.UNCERTAIN, last_message=detail.get("reason", ""))
            elif event == "cancel_requested":
                ticket = replace(ticket, cancel_requested=True)
            ticket = replace(ticket, updated_at=row["ts"])
        if ticket is None:
            return None
        if ticket.state == TicketState.CONFIRMED and not sent:
            reason = "confirmed but not recorded as sent before the app stopped"
            ticket = replace(ticket, state=TicketState.UNCERTAIN, last_message=reason)
            self._write(ticket, "uncertain", "", detail={"reason": reason})
        elif ticket.state == TicketState.UNCERTAIN and not marked_uncertain:
            self._write(ticket, "uncertain", "", detail={"reason": ticket.last_message})
        if ticket.state in (TicketState.CHECKED, TicketState.PREVIEWED):
            ticket = replace(ticket, state=TicketState.DRAFTED)  # previews are not kept across restarts
        return ticket

    def reconcile(self, ticket_id: str, session_id: str) -> Ticket:
        """Ask the gateway for orders carrying this ticket's orderRef; adopt one if it exists."""
        ticket = self.ticket(ticket_id)
        try:
            views = self.runtime.find_orders_by_ref(ticket_id).result(timeout=self.request_timeout)
        except Exception as exc:
            self._write(ticket, "gateway_checked", session_id, detail={"error": _reason(exc)})
            return ticket
        if not views:
            self._write(ticket, "gateway_checked", session_id, detail={"found": 0})
            return ticket
        return self._reconcile_to(ticket_id, views, session_id)

    def _reconcile_to(self, ticket_id: str, views: Sequence[OrderView], session_id: str) -> Ticket:
        view = sorted(views, key=lambda v: (v.perm_id or 0, v.order_id))[-1]
        if not view.order_id and view.perm_id:
            # A completed order as IB lists it carries no order id; its executions do.
            fill = next((f for f in self.runtime.snapshot().fills if f.perm_id == view.perm_id), None)
            if fill is not None:
                view = replace(view, order_id=fill.order_id)
        with self._lock:
            ticket = self.ticket(ticket_id)
            if ticket.state != TicketState.UNCERTAIN:
                return ticket
            reconciled = self._apply_view(ticket, view)
            self._write(reconciled, "reconciled", session_id, status=view.status,
                        detail={"found": len(views), "state": reconciled.state.value})
            self._tickets[ticket_id] = reconciled
            self._reserved.add(ticket_id)
            return reconciled

    # ----------------------------------------------------------------- audit

    def _require_audit(self) -> None:
        if self.audit is None:
            raise TradingUnavailable("Trading is unavailable: the audit log is held by another v6 process "
                                     "(orders are only placed when every step can be recorded).")

    def _write(self, ticket: Ticket, event: str, session_id: str, *, status: str | None = None,
               detail: dict[str, Any] | None = None, order_id: int | None = None,
               perm_id: int | None = None) -> None:
        self._write_raw(ticket.ticket_id, event, session_id,
                        order_id=order_id if order_id is not None else ticket.order_id,
                        perm_id=perm_id if perm_id is not None else ticket.perm_id,
                        status=status, detail=detail)

    def _write_raw(self, ticket_id: str, event: str, session_id: str, *, order_id: int | None = None,
                   perm_id: int | None = None, status: str | None = None,
                   detail: dict[str, Any] | None = None) -> None:
        from v6core.lake import AuditEvent

        row = AuditEvent(
            ticket_id=ticket_id, event=event, ts=_now(), session_id=session_id or "",
            order_id=order_id, perm_id=perm_id, status=status,
            detail=json.dumps(detail or {}, default=str, sort_keys=True),
        )
        with self._audit_lock:
            self.audit.append_audit([row])
        for hook in list(AFTER_AUDIT_HOOKS):
            hook(event, ticket_id)

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _connected(snapshot: PortfolioSnapshot) -> bool:
        return snapshot.connection.state in (ConnState.CONNECTED, ConnState.DEGRADED)


_ERROR_MESSAGE = re.compile(r"^(\d+):")
_WARNING_CODES = frozenset({105, 165, 321, 329, 399, 404, 434, 492, 10167}) | frozenset(range(2100, 2200))


def _refused_unacknowledged(view: OrderView) -> bool:
    """The gateway answered the order with an error and never acknowledged it (no perm id).

    IB rejects e.g. an off-grid price with code 110, which ib_async files as a warning and so
    never marks the order cancelled; the order is dead all the same."""
    match = _ERROR_MESSAGE.match(view.last_message or "")
    return (view.perm_id == 0 and view.filled == 0 and match is not None
            and int(match.group(1)) not in _WARNING_CODES)


def _opt_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
