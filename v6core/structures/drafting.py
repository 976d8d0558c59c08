"""Structures become order-desk tickets: one option order for a single leg, one combo (BAG) for
several, with a net limit price at the mid on the tick grid. Drafting only: the desk's checks,
what-if, single confirmation and audit apply unchanged (there is no other way to an order).

Combo convention (as the desk's close combos): the order is BUY `units` of the combo whose legs
carry their own BUY/SELL and ratio; the limit is per unit, per share: positive = a debit paid,
negative = a credit received.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from v6core.models import ContractInfo, OrderLegSpec
from v6core.orders import (
    OrderDesk, Ticket, min_tick, new_ticket_id, round_to_tick,
)
from dataclasses import replace

from v6core.structures.chain import ChainSlice, StructureError
from v6core.structures.templates import Structure, TemplateSpec, build

STRUCTURE_ORIGINS = ("chain", "roll", "signal structure")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def default_limit(structure: Structure) -> float | None:
    """The mid on the tick grid: the option's grid for one leg, $0.01 for a combo."""
    mid = structure.net_mid()
    if mid is None:
        return None
    if len(structure.legs) == 1:
        leg = structure.legs[0]
        price = abs(mid / leg.quantity)
        return round_to_tick(price, min_tick(leg.contract, price))
    return round_to_tick(mid, 0.01)


def structure_ticket(structure: Structure, session_id: str, origin: str = "chain",
                     limit: float | None = None, signal_id: str = "",
                     stop: float | None = None, target: float | None = None) -> Ticket:
    """The ticket for `structure` (not yet added to any desk)."""
    if not structure.legs:
        raise StructureError("an empty structure is no order")
    price = default_limit(structure) if limit is None else limit
    if len(structure.legs) == 1:
        leg = structure.legs[0]
        qty = leg.quantity * structure.units
        return Ticket(ticket_id=new_ticket_id(), created_at=_now(), created_by=session_id,
                      origin=origin, contract=leg.contract, action="BUY" if qty > 0 else "SELL",
                      quantity=float(abs(qty)), order_type="LMT", limit_price=price, tif="DAY",
                      description=structure.description or leg.label, signal_id=signal_id,
                      stop=stop, target=target)
    options = [leg for leg in structure.legs if leg.is_option]
    multiplier = max((leg.contract.multiplier for leg in options), default=1.0)
    combo = ContractInfo(con_id=0, symbol=structure.underlying, sec_type="BAG",
                         currency=structure.legs[0].contract.currency, multiplier=multiplier,
                         exchange="SMART", local_symbol=f"{structure.underlying} combo")
    legs = tuple(OrderLegSpec(contract=leg.contract, ratio=abs(int(leg.quantity)),
                              action="BUY" if leg.quantity > 0 else "SELL") for leg in structure.legs)
    return Ticket(ticket_id=new_ticket_id(), created_at=_now(), created_by=session_id, origin=origin,
                  contract=combo, action="BUY", quantity=float(structure.units), order_type="LMT",
                  limit_price=price, tif="DAY", combo_legs=legs,
                  description=structure.description or structure.kind, signal_id=signal_id,
                  stop=stop, target=target)


def draft_structure(desk: OrderDesk, structure: Structure, session_id: str, origin: str = "chain",
                    limit: float | None = None, **extra: Any) -> Ticket:
    """Add the structure's ticket to the desk as a draft (audited), and have the runtime quote
    its legs so the desk's checks and preview see live prices."""
    ticket = structure_ticket(structure, session_id, origin, limit, **extra)
    watching = desk.runtime.watch([leg.contract for leg in structure.legs if leg.contract.con_id])
    try:        # subscribed before the ticket exists, so a Review right after finds them streaming
        watching.result(timeout=10)
    except Exception:     # the ticket still drafts; its checks say what is missing
        pass
    return desk.draft_ticket(ticket, session_id)


SIGNAL_STYLES = ("credit", "debit")


def signal_structure(record: Any, chain: ChainSlice, *, delta: float = 0.30, width: float = 5.0,
                     style: str = "credit", units: int = 1) -> Structure:
    """An actionable signal as a defined-risk vertical on its underlying's chain: bullish (BUY)
    a put credit or call debit vertical, bearish (SELL) a call credit or put debit vertical,
    the short (credit) or long (debit) leg at `delta`, the other `width` dollars further out."""
    from v6core.orders.drafts import actionable_signal

    action, symbol = actionable_signal(record)
    if chain.symbol.upper() != symbol:
        raise StructureError(f"the chain is {chain.symbol}'s, the signal is on {symbol}")
    if style not in SIGNAL_STYLES:
        raise StructureError(f"style must be one of {', '.join(SIGNAL_STYLES)}, not {style!r}")
    bullish = action == "BUY"
    right = ("P" if bullish else "C") if style == "credit" else ("C" if bullish else "P")
    spec = TemplateSpec("vertical", side="sell" if style == "credit" else "buy", right=right,
                        delta=delta, width=width, units=units)
    structure = build(spec, chain)
    return replace(structure, description=f"{symbol} {action} signal: {structure.description}")


def draft_signal_structure(desk: OrderDesk, record: Any, chain: ChainSlice, session_id: str, *,
                           bracket: bool = False, limit: float | None = None, **options: Any) -> Ticket:
    """Draft the signal's vertical (`signal_structure`) as a desk ticket (origin "signal
    structure", the signal's id kept). `bracket`: carry the signal's stop and target on the
    ticket, as its shares ticket does; without it the ticket has none. Checks, what-if, the
    single confirmation and the audit apply as to every ticket."""
    structure = signal_structure(record, chain, **options)
    record_id = str(getattr(record, "record_id", None) or getattr(record, "id", "") or "")
    stop = getattr(record, "stop", None) if bracket else None
    target = getattr(record, "target", None) if bracket else None
    return draft_structure(desk, structure, session_id, origin="signal structure", limit=limit,
                           signal_id=record_id, stop=None if stop is None else float(stop),
                           target=None if target is None else float(target))


def awaiting_quotes(structure: Structure) -> list[str]:
    """Labels of the legs whose quote (bid and ask) or, for options, Greeks and IV have not
    streamed yet: the ticket's risk and the desk's checks need them."""
    waiting = []
    for leg in structure.legs:
        q = leg.quote
        if q is None or q.mid is None or (leg.is_option and (q.delta is None or not q.iv)):
            waiting.append(leg.contract.label)
    return waiting


def discard_draft(desk: OrderDesk, ticket_id: str, session_id: str) -> Ticket:
    """Drop an unconfirmed draft through the desk (audited as "discarded", gone after a restart)."""
    return desk.discard(ticket_id, session_id)


def net_label(price: float | None) -> str:
    if price is None or not math.isfinite(price):
        return "no price"
    return f"{abs(price):.2f} {'debit' if price > 0 else 'credit' if price < 0 else 'even'}"
