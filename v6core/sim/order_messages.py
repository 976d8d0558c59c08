"""Order messages by negotiated version: OPEN_ORDER, COMPLETED_ORDER, ORDER_STATUS, EXECUTION_DATA,
COMMISSION_REPORT (tws_protocol.md §4; field order as IB's own decoder reads it).

What the simulator does not use is sent as TWS sends it: unset doubles as 1.7976931348623157E308
(`UNSET_DOUBLE`), unset ints as 2147483647 (`UNSET_INTEGER`), so a strict client ends up with its
own "unset" defaults rather than 0.
"""

from __future__ import annotations

from datetime import timezone

from v6core.models import ContractInfo
from v6core.sim import versions as v
from v6core.sim.chains import SPEC_BY_SYMBOL
from v6core.sim.codec import UNSET_DOUBLE, UNSET_INTEGER
from v6core.sim.orders import Fill, LiveOrder

U, I = UNSET_DOUBLE, UNSET_INTEGER


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


def quantity_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _price(value: float | None) -> object:
    return U if value is None else round(float(value), 6)


def _money(value: float) -> str:
    return f"{value:.2f}"


def combo_description(order: LiveOrder) -> str:
    return ",".join(f"{info.con_id}|{ratio if action == 'BUY' else -ratio}"
                    for info, ratio, action in order.legs)


def _combo_legs(order: LiveOrder) -> list:
    fields: list = [combo_description(order) if order.legs else "", len(order.legs)]
    for info, ratio, action in order.legs:
        fields += [info.con_id, ratio, action, "SMART", 0, 0, "", -1]
    return fields + [0]                                   # no per-leg prices


def _open_close(order: LiveOrder) -> str:
    return "O" if order.contract.sec_type in ("OPT", "BAG") else ""


def _oca_type(order: LiveOrder) -> int:
    """1 (cancel the rest with block) for an order in an OCA group, as IB reports bracket children."""
    return 1 if order.oca_group else 0


def _fa_params(version: int) -> list:
    fields: list = ["", "", ""]                            # faGroup, faMethod, faPercentage
    if version < v.FA_PROFILE_DESUPPORT:
        fields.append("")                                  # faProfile
    return fields


def _peg_best(version: int) -> list:
    # minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole, midOffsetAtHalf
    return [I, I, U, U, U] if version >= v.PEGBEST_PEGMID_OFFSETS else []


def _order_state(what_if: dict | None) -> list:
    """initMarginBefore .. commissionCurrency: margins as text, commissions as doubles."""
    if not what_if:
        return [U] * 12 + [""]
    return [
        _money(what_if["init_before"]), _money(what_if["maint_before"]),
        _money(what_if["equity_before"]), _money(what_if["init_change"]),
        _money(what_if["maint_change"]), _money(what_if["equity_change"]),
        _money(what_if["init_after"]), _money(what_if["maint_after"]),
        _money(what_if["equity_after"]), what_if["commission"], what_if["min_commission"],
        what_if["max_commission"], "USD",
    ]


def open_order(order: LiveOrder, what_if: dict | None, version: int) -> list:
    """OPEN_ORDER in the field order of IB's decoder, at `version`."""
    status = "PreSubmitted" if what_if else order.status
    return [
        5, order.order_id, *contract_c11x(order.contract),
        order.action, quantity_text(order.quantity), order.order_type, _price(order.limit_price),
        _price(order.aux_price), order.tif, order.oca_group, order.account, _open_close(order), 0,
        order.order_ref, order.client_id,
        order.perm_id, 0, 0, 0, "",                        # outsideRth, hidden, discretionaryAmt, goodAfterTime
        "", *_fa_params(version),                          # sharesAllocation, FA
        "", "", "", U, "",                                 # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1,                                         # shortSaleSlot, designatedLocation, exemptCode
        0,                                                 # auctionStrategy
        U, U, U, U, U,                                     # startingPrice .. stockRangeUpper
        0, 0, 0, 0, I, _oca_type(order),                   # displaySize, block, sweep, allOrNone, minQty, ocaType
        0, 0, U,                                           # eTradeOnly, firmQuoteOnly, nbboPriceCap
        order.parent_id, 0,                                # parentId, triggerMethod
        U, I, "", U,                                       # volatility, volatilityType, deltaNeutral type, aux
        0, I,                                              # continuousUpdate, referencePriceType
        U, U,                                              # trailStopPrice, trailingPercent
        U, I,                                              # basisPoints, basisPointsType
        *_combo_legs(order),
        0,                                                 # smartComboRoutingParams
        I, I, U,                                           # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",                                                # hedgeType
        0, "", "", 0, 0,                                   # optOutSmartRouting, clearing x2, notHeld, deltaNeutralContract
        "",                                                # algoStrategy
        0, 1 if what_if else 0,                            # solicited, whatIf
        status, *_order_state(what_if),
        "",                                                # warningText
        0, 0,                                              # randomizeSize, randomizePrice
        0,                                                 # conditions
        "", U, U, U, U, U, U, 0,                           # adjustedOrderType .. adjustableTrailingUnit
        "", "", "",                                        # softDollarTier
        U, 0, 0, 0, "",                                    # cashQty, dontUseAutoPriceForHedge, isOms, discretionaryUpTo, usePriceMgmtAlgo
        *([I] if version >= v.DURATION else []),
        *([I] if version >= v.POST_TO_ATS else []),
        *([0] if version >= v.AUTO_CANCEL_PARENT else []),
        *_peg_best(version),
    ]


def completed_order(order: LiveOrder, version: int) -> list:
    """COMPLETED_ORDER in the field order of IB's decoder, at `version`."""
    status_text = order.status + (f": {order.last_message}" if order.last_message else "")
    return [
        101, *contract_c11x(order.contract),
        order.action, quantity_text(order.quantity), order.order_type, _price(order.limit_price),
        _price(order.aux_price), order.tif, order.oca_group, order.account, _open_close(order), 0,
        order.order_ref, order.perm_id,
        0, 0, 0, "",                                       # outsideRth, hidden, discretionaryAmt, goodAfterTime
        *_fa_params(version),
        "", "", "", U, "",                                 # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1,                                         # shortSaleSlot, designatedLocation, exemptCode
        U, U, U, U, U,                                     # startingPrice .. stockRangeUpper
        0, 0, 0, I, _oca_type(order), 0,                   # displaySize, sweep, allOrNone, minQty, ocaType, triggerMethod
        U, I, "", U,                                       # volatility, volatilityType, deltaNeutral type, aux
        0, I,                                              # continuousUpdate, referencePriceType
        U, U,                                              # trailStopPrice, trailingPercent
        *_combo_legs(order),
        0,                                                 # smartComboRoutingParams
        I, I, U,                                           # scale
        "",                                                # hedgeType
        "", "", 0, 0, "", 0,                               # clearing x2, notHeld, deltaNeutralContract, algo, solicited
        order.status,
        0, 0,                                              # randomizeSize, randomizePrice
        0,                                                 # conditions
        U, U,                                              # trailStopPrice, lmtPriceOffset
        U, 0, 0,                                           # cashQty, dontUseAutoPriceForHedge, isOmsContainer
        "", quantity_text(order.filled), 0, 0, "", 0, 0, 0,  # autoCancelDate .. parentPermId
        order.completed_time, status_text,
        *_peg_best(version),
    ]


def order_status(order: LiveOrder) -> list:
    """ORDER_STATUS: remaining is what is left unfilled, whatever the status (TWS)."""
    remaining = max(order.quantity - order.filled, 0.0)
    return [3, order.order_id, order.status, quantity_text(order.filled), quantity_text(remaining),
            order.avg_fill_price, order.perm_id, order.parent_id, order.last_fill_price,
            order.client_id, "", 0]


def execution(req_id: int, fill: Fill, version: int) -> list:
    """EXECUTION_DATA: 31 fields, 32 from PENDING_PRICE_REVISION (178)."""
    exchange = "CBOE" if fill.contract.sec_type == "OPT" else primary_exchange(fill.contract)
    fields = [11, req_id, fill.order_id, *contract_c11x(fill.contract), fill.exec_id,
              fill.time.astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC"), fill.account,
              exchange, fill.side, quantity_text(fill.quantity), fill.price, fill.perm_id,
              fill.client_id, 0, quantity_text(fill.cum_qty), fill.avg_price, fill.order_ref,
              "", "", "", 2]
    if version >= v.PENDING_PRICE_REVISION:
        fields.append(0)
    return fields


def commission_report(fill: Fill) -> list:
    """COMMISSION_REPORT: exactly 8 fields; realized P&L only on closing fills, yield unset."""
    realized = fill.realized if fill.realized else U
    return [59, 1, fill.exec_id, fill.commission, "USD", realized, U, ""]
