"""Builders for server->client messages (tws_protocol.md §3-§4), by negotiated version where
the layout changed between versions 157 and 178 (order messages: order_messages.py).

Each returns the field list (message id first); the session encodes and frames it.
Field counts that ib_async unpacks exactly are noted where it matters.
"""

from __future__ import annotations

from v6core.models import ContractInfo
from v6core.sim import versions as v
from v6core.sim.chains import market_rule_id
from v6core.sim.trading_hours import TIME_ZONE_ID
from v6core.sim.order_messages import (  # noqa: F401 - re-exported for the handlers
    _expiry, _multiplier, combo_description, commission_report, completed_order, contract_c11x,
    execution, open_order, order_status, primary_exchange, quantity_text,
)
from v6core.sim.versions import SERVER_VERSION  # noqa: F401


def contract_c11p(info: ContractInfo) -> list:
    """PORTFOLIO_VALUE's block: primaryExchange in place of exchange."""
    block = contract_c11x(info)
    block[7] = primary_exchange(info)
    return block


def error(req_id: int, code: int, message: str, version: int = v.SERVER_VERSION) -> list:
    """ERR_MSG; advancedOrderRejectJson only from version 166."""
    fields: list = [4, 2, req_id, code, message]
    if version >= v.ADVANCED_ORDER_REJECT:
        fields.append("")
    return fields


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


def contract_data(req_id: int, info: ContractInfo, long_name: str, min_tick: float,
                  under_con_id: int, hours: tuple[str, str], version: int) -> list:
    """CONTRACT_DATA: from v164 no version field and no mdSizeMultiplier, and the size rules
    (minSize, sizeIncrement, suggestedSizeIncrement) close it; v163 has sizeMinTick instead."""
    is_option = info.sec_type == "OPT"
    trading, liquid = hours
    head: list = [10, req_id] if version >= v.SIZE_RULES else [10, 8, req_id]
    size_block: list = ([1, 1, 1] if version >= v.SIZE_RULES
                        else [1] if version >= v.FRACTIONAL_SIZE_SUPPORT else [])
    return [
        *head, info.symbol, info.sec_type, _expiry(info), float(info.strike or 0.0),
        info.right or "", info.exchange, info.currency, info.local_symbol,
        info.trading_class, info.trading_class, info.con_id, min_tick,
        *([] if version >= v.SIZE_RULES else [1]),           # mdSizeMultiplier
        _multiplier(info),
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,"
        "LIMIT,LMT,MKT,NONALGO,OCA,WHATIF",
        "SMART,CBOE,ISE,PHLX,AMEX,ARCA,BOX" if is_option else "SMART,ARCA,NASDAQ,NYSE,BATS,IEX",
        1, under_con_id if is_option else 0, long_name, primary_exchange(info),
        info.expiry.strftime("%Y%m") if info.expiry else "",
        "" if is_option else "Equity", "", "", TIME_ZONE_ID, trading, liquid,
        "", 1 if is_option else "",                          # evRule, evMultiplier
        1, "ISIN", _isin(info),
        1, info.symbol if is_option else "", "STK" if is_option else "",
        str(market_rule_id(info)), _expiry(info), "ETF" if info.symbol in ("SPY", "QQQ", "IWM")
        and not is_option else ("COMMON" if not is_option else ""),
        *size_block,
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
