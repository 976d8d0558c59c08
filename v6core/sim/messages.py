"""Builders for server->client messages at server version 178 (tws_protocol.md §3-§4).

Each returns the field list (message id first); the session encodes and frames it.
Field counts that ib_async unpacks exactly are noted where it matters.
"""

from __future__ import annotations

from datetime import timezone

from v6core.models import ContractInfo
from v6core.sim.chains import SPEC_BY_SYMBOL, market_rule_id
from v6core.sim.orders import Fill, LiveOrder

SERVER_VERSION = 178


def _expiry(info: ContractInfo) -> str:
    return info.expiry.strftime("%Y%m%d") if info.expiry else ""


def _multiplier(info: ContractInfo) -> str:
    return f"{info.multiplier:g}" if info.sec_type == "OPT" else ""


def contract_c11x(info: ContractInfo) -> list:
    """conId..tradingClass without primaryExchange (POSITION, EXECUTION, OPEN/COMPLETED_ORDER)."""
    return [info.con_id, info.symbol, info.sec_type, _expiry(info), float(info.strike or 0.0),
            info.right or "", _multiplier(info), info.exchange, info.currency, info.local_symbol,
            info.trading_class]


def primary_exchange(info: ContractInfo) -> str:
    spec = SPEC_BY_SYMBOL.get(info.symbol)
    return spec.primary_exchange if spec and info.sec_type == "STK" else ""


def contract_c11p(info: ContractInfo) -> list:
    """PORTFOLIO_VALUE's block: primaryExchange in place of exchange."""
    block = contract_c11x(info)
    block[7] = primary_exchange(info)
    return block


def error(req_id: int, code: int, message: str) -> list:
    return [4, 2, req_id, code, message, ""]


def managed_accounts(account: str) -> list:
    return [15, 1, account]


def next_valid_id(order_id: int) -> list:
    return [9, 1, order_id]


def position(account: str, info: ContractInfo, quantity: float, avg_cost: float) -> list:
    return [61, 3, account, *contract_c11x(info), quantity_text(quantity), avg_cost]


def portfolio_value(account: str, info: ContractInfo, quantity: float, row: dict,
                    avg_cost: float, realized: float) -> list:
    return [7, 8, *contract_c11p(info), quantity_text(quantity), row["market_price"], row["market_value"],
            avg_cost, row["unrealized"], realized, account]


def account_value(key: str, value: object, currency: str, account: str) -> list:
    return [6, 2, key, value, currency, account]


def quantity_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _price(value: float | None) -> str:
    return "" if value is None else repr(round(float(value), 6))


def combo_description(order: LiveOrder) -> str:
    return ",".join(f"{info.con_id}|{ratio if action == 'BUY' else -ratio}"
                    for info, ratio, action in order.legs)


def _combo_legs(order: LiveOrder) -> list:
    fields: list = [len(order.legs)]
    for info, ratio, action in order.legs:
        fields += [info.con_id, ratio, action, "SMART", 0, 0, "", -1]
    return fields


def open_order(order: LiveOrder, what_if: dict | None = None) -> list:
    """OPEN_ORDER: 127 fields for a plain order, +8 per combo leg."""
    status = "PreSubmitted" if what_if else order.status
    state = ["", "", "", "", "", "", "", "", "", "", "", "", "", ""]
    if what_if:
        state = [
            _money(what_if["init_before"]), _money(what_if["maint_before"]),
            _money(what_if["equity_before"]), _money(what_if["init_change"]),
            _money(what_if["maint_change"]), _money(what_if["equity_change"]),
            _money(what_if["init_after"]), _money(what_if["maint_after"]),
            _money(what_if["equity_after"]), what_if["commission"], what_if["min_commission"],
            what_if["max_commission"], "USD", "",
        ]
    return [
        5, order.order_id, *contract_c11x(order.contract),
        order.action, quantity_text(order.quantity), order.order_type, _price(order.limit_price), "",
        order.tif, "", order.account, "O", 0, order.order_ref, order.client_id, order.perm_id,
        0, 0, 0, "", "", "", "", "",
        "", "", "", "", "", 0, "", -1, 0, "", "", "", "", "", "", 0, 0, 0, "", 0, 0, 0, "", 0, 0,
        "", "", "", "",
        0, "", "", "", "", "", combo_description(order) if order.legs else "",
        *_combo_legs(order), 0, 0,
        "", "", "",
        "",
        0, "", "", 0, 0,
        "",
        0, 1 if what_if else 0,
        status, *state,
        0, 0,
        0,
        "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, 0, "",
        "", "", 0,
        "", "", "", "", "",
    ]


def _money(value: float) -> str:
    return f"{value:.2f}"


def completed_order(order: LiveOrder) -> list:
    """COMPLETED_ORDER: 96 fields for a plain order, +8 per combo leg."""
    return [
        101, *contract_c11x(order.contract),
        order.action, quantity_text(order.quantity), order.order_type, _price(order.limit_price), "",
        order.tif, "", order.account, "O", 0, order.order_ref, order.perm_id, 0, 0, 0, "",
        "", "", "",
        "", "", "", "", "", 0, "", -1, "", "", "", "", "", "", 0, 0, "", 0, 0, "", "", "", "",
        0, "", "", "", combo_description(order) if order.legs else "",
        *_combo_legs(order), 0, 0,
        "", "", "",
        "",
        "", "", 0, 0,
        "",
        0, order.status, 0, 0,
        0,
        "", "", "", 0, 0, "", quantity_text(order.filled), 0, 0, "", 0, 0, 0, order.completed_time,
        f"{order.status}" + (f": {order.last_message}" if order.last_message else ""),
        "", "", "", "", "",
    ]


def order_status(order: LiveOrder) -> list:
    remaining = order.quantity - order.filled if order.status not in ("Cancelled", "Inactive") else 0
    return [3, order.order_id, order.status, quantity_text(order.filled), quantity_text(remaining),
            order.avg_fill_price, order.perm_id, 0, order.last_fill_price, order.client_id, "", 0]


def execution(req_id: int, fill: Fill) -> list:
    """EXECUTION_DATA: 32 fields."""
    exchange = "CBOE" if fill.contract.sec_type == "OPT" else primary_exchange(fill.contract)
    return [11, req_id, fill.order_id, *contract_c11x(fill.contract), fill.exec_id,
            fill.time.astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC"), fill.account,
            exchange, fill.side, quantity_text(fill.quantity), fill.price, fill.perm_id, fill.client_id, 0,
            quantity_text(fill.cum_qty), fill.avg_price, fill.order_ref, "", "", "", 2, 0]


def commission_report(fill: Fill) -> list:
    """COMMISSION_REPORT: exactly 8 fields; realized P&L only on closing fills."""
    realized = fill.realized if fill.realized else 1.7976931348623157e308
    return [59, 1, fill.exec_id, fill.commission, "USD", realized, 1.7976931348623157e308, ""]


def contract_data(req_id: int, info: ContractInfo, long_name: str, min_tick: float,
                  under_con_id: int) -> list:
    """CONTRACT_DATA at v>=164: 42 fields with one secId."""
    is_option = info.sec_type == "OPT"
    return [
        10, req_id, info.symbol, info.sec_type, _expiry(info), float(info.strike or 0.0),
        info.right or "", info.exchange, info.currency, info.local_symbol,
        info.trading_class, info.trading_class, info.con_id, min_tick, _multiplier(info),
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,"
        "LIMIT,LMT,MKT,NONALGO,OCA,WHATIF",
        "SMART,CBOE,ISE,PHLX,AMEX,ARCA,BOX" if is_option else "SMART,ARCA,NASDAQ,NYSE,BATS,IEX",
        1, under_con_id if is_option else 0, long_name, primary_exchange(info),
        info.expiry.strftime("%Y%m") if info.expiry else "",
        "" if is_option else "Equity", "", "", "US/Eastern",
        "", "", "", 1 if is_option else "",
        1, "ISIN", _isin(info),
        1, info.symbol if is_option else "", "STK" if is_option else "",
        str(market_rule_id(info)), _expiry(info), "ETF" if info.symbol in ("SPY", "QQQ", "IWM")
        and not is_option else ("COMMON" if not is_option else ""),
        "1", "1", "1",
    ]


def _isin(info: ContractInfo) -> str:
    return f"US{info.con_id:010d}"[:12]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list:
    return [1, 6, req_id, tick_type, price, quantity_text(size), 0]


def tick_size(req_id: int, tick_type: int, size: float) -> list:
    return [2, 6, req_id, tick_type, quantity_text(size)]


def tick_generic(req_id: int, tick_type: int, value: float) -> list:
    return [45, 6, req_id, tick_type, value]


def option_computation(req_id: int, tick_type: int, iv: object, delta: object, price: object,
                       gamma: object, vega: object, theta: object, und_price: object) -> list:
    """TICK_OPTION_COMPUTATION: exactly 12 fields, no version, no empty numerics."""
    return [21, req_id, tick_type, 1, iv, delta, price, 0.0, gamma, vega, theta, und_price]
