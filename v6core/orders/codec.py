"""Tickets and order specs as the JSON the audit log stores (and recovery reads back)."""

from __future__ import annotations

from datetime import date
from typing import Any

from v6core.models import ContractInfo, OrderLegSpec, OrderSpec, PositionGreeks
from v6core.orders.tickets import Ticket


def contract_to_json(c: ContractInfo) -> dict[str, Any]:
    return {
        "con_id": c.con_id, "symbol": c.symbol, "sec_type": c.sec_type, "currency": c.currency,
        "expiry": c.expiry.isoformat() if c.expiry else None, "strike": c.strike, "right": c.right,
        "multiplier": c.multiplier, "local_symbol": c.local_symbol, "exchange": c.exchange,
        "trading_class": c.trading_class,
    }


def contract_from_json(d: dict[str, Any]) -> ContractInfo:
    d = dict(d)
    d["expiry"] = date.fromisoformat(d["expiry"]) if d.get("expiry") else None
    return ContractInfo(**d)


def spec_to_json(spec: OrderSpec) -> dict[str, Any]:
    return {
        "contract": contract_to_json(spec.contract), "action": spec.action,
        "quantity": spec.quantity, "order_type": spec.order_type,
        "limit_price": spec.limit_price, "tif": spec.tif,
        "combo_legs": [{"contract": contract_to_json(leg.contract), "ratio": leg.ratio,
                        "action": leg.action} for leg in spec.combo_legs],
        **({"take_profit": spec.take_profit, "stop_loss": spec.stop_loss} if spec.is_bracket else {}),
    }


def spec_from_json(d: dict[str, Any]) -> OrderSpec:
    return OrderSpec(
        contract=contract_from_json(d["contract"]), action=d["action"], quantity=float(d["quantity"]),
        order_type=d["order_type"], limit_price=d.get("limit_price"), tif=d.get("tif", "DAY"),
        combo_legs=tuple(OrderLegSpec(contract=contract_from_json(leg["contract"]),
                                      ratio=int(leg["ratio"]), action=leg["action"])
                         for leg in d.get("combo_legs", ())),
        take_profit=d.get("take_profit"), stop_loss=d.get("stop_loss"),
    )


def greeks_json(g: PositionGreeks) -> dict[str, float]:
    return {"delta": g.delta, "gamma": g.gamma, "theta": g.theta, "vega": g.vega,
            "dollar_delta": g.dollar_delta, "beta_delta": g.beta_delta}


def ticket_detail(ticket: Ticket) -> dict[str, Any]:
    """What a "drafted"/"edited" row records: enough to rebuild the ticket after a restart."""
    return {"spec": spec_to_json(ticket.spec), "limit_price": ticket.limit_price,
            "origin": ticket.origin, "description": ticket.description,
            "signal_id": ticket.signal_id, "stop": ticket.stop, "target": ticket.target,
            "bracket": ticket.bracket}
