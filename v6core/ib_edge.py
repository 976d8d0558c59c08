"""The edge between ib_async objects and v6 values: everything IB sends is validated here.

Each converter takes the duck-typed ib_async object (Contract, Ticker, OptionComputation,
Position, PortfolioItem, AccountValue, PnL, PnLSingle, Execution, ...) and returns plain v6
values plus a tuple of human-readable flags. Nothing here raises on bad data: a value that
fails validation becomes None and the reason becomes a flag, so the runtime can show it on the
leg and keep it out of the totals. Only the runtime thread calls these functions.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import date, datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from v6core.models import ContractInfo, FillView, Greeks, GreekSource, OrderView, Quote

log = logging.getLogger(__name__)

KNOWN_SEC_TYPES = frozenset({"STK", "OPT"})
# IB sends sys.float_info.max for "unset" doubles; anything this large is not a price.
UNSET_LIMIT = 1e300
# ib_async leaves vega/theta at IB's "not computed" sentinel -2 (it converts the others to None).
IB_GREEK_SENTINEL = -2.0
# No account holds more than this many shares or contracts of one thing; beyond it a position
# is a broker glitch (IB has sent 1e306), shown flagged and kept out of every total.
MAX_PLAUSIBLE_QUANTITY = 1e9
# Per-share (or per-contract, IB style) average cost beyond this is a glitch too.
MAX_PLAUSIBLE_COST = 1e9


def clean_number(value: Any) -> float | None:
    """A finite float, or None for IB's empty/NaN/UNSET values and anything non-numeric."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or abs(number) >= UNSET_LIMIT:
        return None
    return number


def _price(value: Any, name: str, flags: list[str]) -> float | None:
    """A price field of a quote: NaN/unset -> None; IB's -1 "no quote" -> None; other negatives flagged."""
    number = clean_number(value)
    if number is None:
        return None
    if number == -1.0:
        return None
    if number < 0:
        flags.append(f"negative {name} {number:g} ignored")
        return None
    return number


class _Edge(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class EdgeContract(_Edge):
    con_id: int = Field(gt=0)
    symbol: str = Field(min_length=1)
    sec_type: str = Field(min_length=1)
    currency: str = "USD"
    expiry: date | None = None
    strike: float | None = None
    right: str | None = None
    multiplier: float = 1.0            # a non-positive one is flagged by contract_from_ib, not replaced
    local_symbol: str = ""
    exchange: str = ""
    trading_class: str = ""

    @field_validator("expiry", mode="before")
    @classmethod
    def _ib_date(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            match = re.match(r"^(\d{4})(\d{2})(\d{2})", value.strip())
            if not match:
                raise ValueError(f"expiry {value!r} is not YYYYMMDD")
            return date(int(match[1]), int(match[2]), int(match[3]))
        return value

    @field_validator("right", mode="before")
    @classmethod
    def _right(cls, value: Any) -> Any:
        if value in (None, "", "?", "0"):
            return None
        text = str(value).upper()
        return {"CALL": "C", "PUT": "P"}.get(text, text)


def _multiplier(contract: Any, sec_type: str, flags: list[str]) -> float:
    """IB's multiplier; empty means the usual (100 for options, 1 otherwise). A non-positive one
    is kept as sent and flagged: replacing it would hide that IB's data is wrong."""
    raw = getattr(contract, "multiplier", None)
    usual = 100.0 if sec_type == "OPT" else 1.0
    if raw in (None, ""):
        return usual
    multiplier = clean_number(raw)
    if multiplier is None:
        flags.append(f"unreadable multiplier {str(raw)[:20]!r}")
        return usual
    if multiplier <= 0:
        flags.append(f"non-positive multiplier {multiplier:g}")
    return multiplier


def contract_from_ib(contract: Any) -> tuple[ContractInfo | None, tuple[str, ...]]:
    """ContractInfo from an ib_async Contract; None only when it cannot be identified (no conId).

    A contract with an unreadable field (an expiry that is not a date) is still returned, without
    that field and flagged "contract rejected: ...", so the position shows instead of vanishing.
    """
    flags: list[str] = []
    sec_type = str(getattr(contract, "secType", "") or "")
    multiplier = _multiplier(contract, sec_type, flags)
    strike = clean_number(getattr(contract, "strike", None))
    fields = dict(
        con_id=int(clean_number(getattr(contract, "conId", 0)) or 0),
        symbol=str(getattr(contract, "symbol", "") or ""),
        sec_type=sec_type,
        currency=str(getattr(contract, "currency", "") or "USD"),
        expiry=getattr(contract, "lastTradeDateOrContractMonth", "") or None,
        strike=strike if strike else None,
        right=getattr(contract, "right", None),
        multiplier=multiplier,
        local_symbol=str(getattr(contract, "localSymbol", "") or ""),
        exchange=str(getattr(contract, "exchange", "") or ""),
        trading_class=str(getattr(contract, "tradingClass", "") or ""),
    )
    try:
        edge = EdgeContract(**fields)
    except (ValidationError, TypeError, ValueError) as exc:
        reason = f"contract rejected: {_short(exc)}"
        log.warning("contract rejected at the edge: %r (%s)", contract, _short(exc))
        try:   # keep what identifies it, drop the unreadable fields
            edge = EdgeContract(**{**fields, "expiry": None, "right": None})
        except (ValidationError, TypeError, ValueError):
            return None, (reason,)
        flags.append(reason)
    if edge.sec_type not in KNOWN_SEC_TYPES:
        flags.append(f"unknown security type {edge.sec_type}")
    if edge.sec_type == "OPT":
        if edge.expiry is None or edge.strike is None or edge.right not in ("C", "P"):
            flags.append("option contract lacks expiry, strike or right")
    info = ContractInfo(
        con_id=edge.con_id, symbol=edge.symbol, sec_type=edge.sec_type, currency=edge.currency,
        expiry=edge.expiry if edge.sec_type == "OPT" else None,
        strike=edge.strike if edge.sec_type == "OPT" else None,
        right=edge.right if edge.sec_type == "OPT" else None,
        multiplier=edge.multiplier, local_symbol=edge.local_symbol,
        exchange=edge.exchange or "SMART", trading_class=edge.trading_class,
    )
    return info, tuple(flags)


def quote_from_ticker(ticker: Any, received_at: datetime,
                      fallback_iv: float | None = None) -> tuple[Quote, tuple[str, ...]]:
    """A Quote from an ib_async Ticker; negative prices and non-finite values are dropped and flagged.

    `fallback_iv` (the IV of IB's validated model Greeks) fills in when the IV tick is missing.
    """
    flags: list[str] = []
    con_id = int(getattr(getattr(ticker, "contract", None), "conId", 0) or 0)
    iv = clean_number(getattr(ticker, "impliedVolatility", None))
    if iv is not None and not 0 < iv < 20:
        flags.append(f"implied vol {iv:g} out of range ignored")
        iv = None
    if iv is None:
        iv = fallback_iv
    volume = clean_number(getattr(ticker, "volume", None))
    quote = Quote(
        con_id=con_id,
        bid=_price(getattr(ticker, "bid", None), "bid", flags),
        ask=_price(getattr(ticker, "ask", None), "ask", flags),
        last=_price(getattr(ticker, "last", None), "last", flags),
        close=_price(getattr(ticker, "close", None), "close", flags),
        volume=volume if volume is not None and volume >= 0 else None,
        iv=iv,
        time=received_at,
    )
    if flags:
        log.warning("quote %s: %s", con_id, "; ".join(flags))
    return quote, tuple(flags)


class EdgeOptionComputation(_Edge):
    """IB's TICK_OPTION_COMPUTATION after ib_async's sentinel handling; every Greek must be finite."""

    delta: float
    gamma: float
    theta: float
    vega: float
    implied_vol: float | None = None
    und_price: float | None = None

    @field_validator("delta", "gamma", "theta", "vega")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value


def greeks_from_ib(computation: Any) -> tuple[Greeks | None, tuple[str, ...]]:
    """Greeks(source=IB) from ib_async's OptionComputation, before market-semantics checks.

    Returns (None, ()) when IB sent nothing, (None, flags) when it sent something unusable.
    """
    if computation is None:
        return None, ()
    raw = {
        "delta": getattr(computation, "delta", None),
        "gamma": getattr(computation, "gamma", None),
        "theta": getattr(computation, "theta", None),
        "vega": getattr(computation, "vega", None),
    }
    if all(v is None for v in raw.values()):
        return None, ()
    for name in ("theta", "vega"):
        if raw[name] == IB_GREEK_SENTINEL:
            raw[name] = None
    missing = [k for k, v in raw.items() if v is None]
    if missing:
        return None, (f"IB Greeks incomplete (no {', '.join(missing)})",)
    try:
        edge = EdgeOptionComputation(
            **raw,
            implied_vol=clean_number(getattr(computation, "impliedVol", None)),
            und_price=clean_number(getattr(computation, "undPrice", None)),
        )
    except (ValidationError, TypeError, ValueError) as exc:
        log.warning("IB Greeks rejected: %r (%s)", computation, _short(exc))
        return None, (f"IB Greeks malformed: {_short(exc)}",)
    iv = edge.implied_vol if edge.implied_vol is not None and 0 < edge.implied_vol < 20 else None
    und = edge.und_price if edge.und_price is not None and edge.und_price > 0 else None
    return Greeks(edge.delta, edge.gamma, edge.theta, edge.vega, iv=iv, und_price=und,
                  source=GreekSource.IB), ()


class EdgePosition(_Edge):
    account: str = Field(min_length=1)
    quantity: float                    # as IB sent it: may be NaN or absurd, then flagged
    avg_cost: float


def _plausible(name: str, raw: Any, limit: float, flags: list[str]) -> float:
    """The number as sent (NaN when unreadable); a flag says why it cannot be trusted."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        flags.append(f"position rejected: {name} {str(raw)[:20]!r} is not a number")
        return math.nan
    if not math.isfinite(number):
        flags.append(f"position rejected: {name} {number} is not a finite number")
    elif abs(number) > limit:
        flags.append(f"implausible {name} {number:.3g}")
    return number


def position_from_ib(account: Any, quantity: Any, avg_cost: Any) -> tuple[EdgePosition | None, tuple[str, ...]]:
    """Validated (account, signed quantity, IB-style avgCost). Absurd numbers (NaN, inf, 1e306)
    are kept as sent and flagged so the position shows, out of every total; only a position
    without an account is dropped (None). A negative average cost is flagged too."""
    flags: list[str] = []
    number = _plausible("quantity", quantity, MAX_PLAUSIBLE_QUANTITY, flags)
    cost = _plausible("average cost", avg_cost, MAX_PLAUSIBLE_COST, flags)
    try:
        edge = EdgePosition(account=str(account or ""), quantity=number, avg_cost=cost)
    except (ValidationError, TypeError, ValueError) as exc:
        log.warning("position rejected: account=%r qty=%r avgCost=%r (%s)", account, quantity,
                    avg_cost, _short(exc))
        return None, (f"position rejected: {_short(exc)}",)
    if cost < 0:
        flags.append(f"negative average cost {cost:g}")
    return edge, tuple(flags)


class EdgePortfolioItem(_Edge):
    market_price: float | None = None
    market_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None


def portfolio_item_from_ib(item: Any) -> tuple[EdgePortfolioItem, tuple[str, ...]]:
    flags: list[str] = []
    price = clean_number(getattr(item, "marketPrice", None))
    if price is not None and price < 0:
        flags.append(f"negative market price {price:g} ignored")
        price = None
    return EdgePortfolioItem(
        market_price=price,
        market_value=clean_number(getattr(item, "marketValue", None)),
        unrealized_pnl=clean_number(getattr(item, "unrealizedPNL", None)),
        realized_pnl=clean_number(getattr(item, "realizedPNL", None)),
    ), tuple(flags)


# AccountValue tag -> AccountValues field
ACCOUNT_TAGS = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "total_cash",
    "BuyingPower": "buying_power",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "InitMarginReq": "init_margin",
    "MaintMarginReq": "maint_margin",
    "GrossPositionValue": "gross_position_value",
    "UnrealizedPnL": "unrealized_pnl",
    "RealizedPnL": "realized_pnl",
}


def account_value_from_ib(value: Any) -> tuple[str, str, float, str] | None:
    """(account, field name, number, currency) for the tags v6 shows; None for the rest or bad numbers."""
    name = ACCOUNT_TAGS.get(str(getattr(value, "tag", "")))
    if name is None:
        return None
    currency = str(getattr(value, "currency", "") or "")
    if currency not in ("USD", "BASE", ""):
        return None
    number = clean_number(getattr(value, "value", None))
    if number is None:
        log.warning("account value %s=%r is not a number", getattr(value, "tag", ""),
                    getattr(value, "value", None))
        return None
    return str(getattr(value, "account", "") or ""), name, number, currency


def pnl_from_ib(pnl: Any) -> tuple[float | None, float | None, float | None]:
    """(daily, unrealized, realized) of a PnL or PnLSingle; IB's unset values become None."""
    return (clean_number(getattr(pnl, "dailyPnL", None)),
            clean_number(getattr(pnl, "unrealizedPnL", None)),
            clean_number(getattr(pnl, "realizedPnL", None)))


def _utc(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def order_view_from_trade(trade: Any, contract: ContractInfo, last_message: str = "",
                          updated_at: datetime | None = None) -> OrderView:
    """OrderView from an ib_async Trade (order + orderStatus), numbers cleaned."""
    order, status = trade.order, trade.orderStatus
    quantity = clean_number(getattr(order, "totalQuantity", 0)) or 0.0
    filled = clean_number(getattr(status, "filled", 0)) or 0.0
    remaining = clean_number(getattr(status, "remaining", None))
    if not filled:
        # an order known only from reqCompletedOrders carries its fills in order.filledQuantity
        filled = clean_number(getattr(order, "filledQuantity", None)) or 0.0
        if filled:
            remaining = None
    avg_fill = clean_number(getattr(status, "avgFillPrice", None))
    return OrderView(
        order_id=int(getattr(order, "orderId", 0) or 0),
        perm_id=int(getattr(order, "permId", 0) or getattr(status, "permId", 0) or 0),
        client_id=int(getattr(order, "clientId", 0) or 0),
        order_ref=str(getattr(order, "orderRef", "") or ""),
        account=str(getattr(order, "account", "") or ""),
        contract=contract,
        action=str(getattr(order, "action", "") or ""),
        quantity=quantity,
        order_type=str(getattr(order, "orderType", "") or ""),
        limit_price=clean_number(getattr(order, "lmtPrice", None)),
        tif=str(getattr(order, "tif", "") or ""),
        status=str(getattr(status, "status", "") or ""),
        filled=filled,
        remaining=remaining if remaining is not None else max(quantity - filled, 0.0),
        avg_fill_price=avg_fill if avg_fill else None,
        last_message=last_message,
        updated_at=updated_at,
        aux_price=clean_number(getattr(order, "auxPrice", None)),
        parent_id=int(getattr(order, "parentId", 0) or 0),
    )


def fill_view_from_ib(fill: Any, contract: ContractInfo, order_ref: str = "") -> FillView | None:
    """FillView from an ib_async Fill; None (logged) when the execution is unusable."""
    execution = fill.execution
    price = clean_number(getattr(execution, "price", None))
    shares = clean_number(getattr(execution, "shares", None))
    exec_id = str(getattr(execution, "execId", "") or "")
    if not exec_id or price is None or price < 0 or shares is None or shares <= 0:
        log.warning("execution rejected at the edge: %r", execution)
        return None
    report = getattr(fill, "commissionReport", None)
    commission = clean_number(getattr(report, "commission", None)) if report is not None else None
    realized = clean_number(getattr(report, "realizedPNL", None)) if report is not None else None
    has_report = report is not None and getattr(report, "execId", "")
    return FillView(
        exec_id=exec_id,
        order_id=int(getattr(execution, "orderId", 0) or 0),
        perm_id=int(getattr(execution, "permId", 0) or 0),
        order_ref=str(getattr(execution, "orderRef", "") or order_ref or ""),
        contract=contract,
        side=str(getattr(execution, "side", "") or ""),
        quantity=shares,
        price=price,
        time=_utc(getattr(execution, "time", None) or getattr(fill, "time", None))
        or datetime.now(timezone.utc),
        commission=commission if has_report else None,
        realized_pnl=(realized if realized else None) if has_report else None,
    )


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    return str(exc)
