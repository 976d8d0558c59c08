"""Values that travel inside v6: frozen dataclasses, built once and never mutated.

Units (the same as IB's modelGreeks, and labelled so in the UI):
- per-contract Greeks are per share of underlying: delta in [-1, 1], gamma per $1 move,
  theta in $ per share per calendar day, vega in $ per share per 1 vol point;
- position Greeks = per-contract Greeks x quantity x multiplier: delta in share-equivalents,
  gamma in share-equivalents per $1, theta in $ per day, vega in $ per vol point;
- dollar delta = position delta x underlying price; beta-weighted delta is in SPY shares.

Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum


class GreekSource(str, Enum):
    IB = "IB"              # IB's modelGreeks (TICK_OPTION_COMPUTATION type 13)
    COMPUTED = "COMPUTED"  # py_vollib_vectorized from IB's implied vol or one implied from mid
    STOCK = "STOCK"        # stock/ETF: delta 1 per share, no other Greeks
    NONE = "NONE"          # nothing usable (no quote, no vol): kept out of the totals


class ConnState(str, Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"          # connected, but farms down / data stale / IB code 1100
    DISCONNECTED = "disconnected"


@dataclass(slots=True, frozen=True)
class ContractInfo:
    con_id: int
    symbol: str
    sec_type: str                      # "STK" or "OPT" (others are flagged, not totalled)
    currency: str = "USD"
    expiry: date | None = None         # options only
    strike: float | None = None
    right: str | None = None           # "C" or "P"
    multiplier: float = 1.0            # 100 for US equity options
    local_symbol: str = ""
    exchange: str = "SMART"
    trading_class: str = ""

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    @property
    def label(self) -> str:
        if self.is_option and self.expiry is not None:
            try:
                return f"{self.symbol} {self.expiry:%Y-%m-%d} {self.strike:g}{self.right}"
            except (TypeError, ValueError):    # malformed fields must not break a page or a build
                return f"{self.symbol} conId {self.con_id}"
        return self.symbol


@dataclass(slots=True, frozen=True)
class Greeks:
    """Per-contract Greeks (per share), in IB units."""

    delta: float
    gamma: float
    theta: float
    vega: float
    iv: float | None = None
    und_price: float | None = None
    source: GreekSource = GreekSource.NONE


@dataclass(slots=True, frozen=True)
class PositionGreeks:
    """Greeks of a holding: per-contract x quantity x multiplier (see module doc for units)."""

    delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    dollar_delta: float = 0.0
    beta_delta: float = 0.0            # SPY-share equivalents

    def __add__(self, other: PositionGreeks) -> PositionGreeks:
        return PositionGreeks(
            self.delta + other.delta, self.gamma + other.gamma, self.theta + other.theta,
            self.vega + other.vega, self.dollar_delta + other.dollar_delta,
            self.beta_delta + other.beta_delta,
        )


@dataclass(slots=True, frozen=True)
class Quote:
    con_id: int
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    close: float | None = None
    volume: float | None = None
    iv: float | None = None
    time: datetime | None = None       # when the last tick arrived

    @property
    def mid(self) -> float | None:
        if self.bid is not None and self.ask is not None and self.bid > 0 and self.ask >= self.bid:
            return (self.bid + self.ask) / 2
        return None

    @property
    def mark(self) -> float | None:
        """Mid if the market is two-sided, else last, else previous close."""
        return next((p for p in (self.mid, self.last, self.close) if p is not None and p > 0), None)


@dataclass(slots=True, frozen=True)
class Leg:
    account: str
    contract: ContractInfo
    quantity: float                    # signed: negative is short
    avg_price: float                   # per share (IB's avgCost / multiplier)
    mark: float | None                 # per share
    market_value: float | None
    unrealized_pnl: float | None
    realized_pnl: float | None
    daily_pnl: float | None
    dte: int | None                    # calendar days to expiry, 0 on expiry day
    greeks: Greeks | None              # per contract
    position_greeks: PositionGreeks    # zero when greeks are missing/invalid (see flags)
    quote_time: datetime | None
    strategy_id: str = ""
    flags: tuple[str, ...] = ()        # validation problems, shown on the leg, kept out of totals
    stale: bool = False
    pnl_source: str = "IB"             # "IB": unrealized P&L is IB's (PnL single / portfolio);
                                       # "v6": computed here from the quote mark (IB sent none)

    @property
    def cost_basis(self) -> float:
        return self.avg_price * self.quantity * self.contract.multiplier

    @property
    def pnl_pct(self) -> float | None:
        if self.unrealized_pnl is None or not self.cost_basis:
            return None
        return self.unrealized_pnl / abs(self.cost_basis) * 100.0


@dataclass(slots=True, frozen=True)
class Strategy:
    strategy_id: str                   # deterministic: kind + underlying + legs' conIds
    kind: str                          # "iron condor", "credit vertical", "calendar", ... "custom"
    underlying: str
    con_ids: tuple[int, ...]
    greeks: PositionGreeks
    unrealized_pnl: float
    daily_pnl: float
    market_value: float
    explanation: str = ""              # why these legs were grouped under this name
    quantities: tuple[float, ...] = () # signed quantity of each con_id held by this strategy
                                       # (a leg can be split: 2 of 3 short puts in a condor)


@dataclass(slots=True, frozen=True)
class UnderlyingSummary:
    symbol: str
    spot: float | None
    beta: float
    greeks: PositionGreeks
    unrealized_pnl: float
    daily_pnl: float
    market_value: float
    quote_time: datetime | None = None


@dataclass(slots=True, frozen=True)
class AccountValues:
    account: str = ""
    currency: str = "USD"
    net_liquidation: float | None = None
    total_cash: float | None = None
    buying_power: float | None = None
    available_funds: float | None = None
    excess_liquidity: float | None = None
    init_margin: float | None = None
    maint_margin: float | None = None
    gross_position_value: float | None = None
    daily_pnl: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    updated_at: datetime | None = None

    @property
    def margin_use_pct(self) -> float | None:
        # a negative margin is a broker glitch (flagged by an alert), not a margin use
        if (self.net_liquidation and self.init_margin is not None and self.net_liquidation > 0
                and self.init_margin >= 0):
            return self.init_margin / self.net_liquidation * 100.0
        return None


@dataclass(slots=True, frozen=True)
class ConnectionStatus:
    state: ConnState = ConnState.CONNECTING
    mode: str = "sim"                  # "sim" or "ib"
    host: str = ""
    port: int = 0
    client_id: int = 0
    server_version: int | None = None
    account: str = ""
    is_paper: bool = True
    last_error: str = ""
    attempts: int = 0
    next_retry_at: datetime | None = None
    connected_since: datetime | None = None
    last_message_at: datetime | None = None
    breaker: str = "closed"            # circuit breaker: closed / open / half-open
    notices: tuple[str, ...] = ()      # farm notices: "2104 Market data farm connection is OK:usfarm"

    @property
    def badge(self) -> str:
        return "SIM" if self.mode == "sim" else ("PAPER" if self.is_paper else "LIVE")


@dataclass(slots=True, frozen=True)
class OrderView:
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str                     # v6 ticket id
    account: str
    contract: ContractInfo
    action: str                        # BUY / SELL
    quantity: float
    order_type: str                    # LMT / MKT
    limit_price: float | None
    tif: str
    status: str                        # IB status: Submitted, Filled, Cancelled, Inactive, ...
    filled: float
    remaining: float
    avg_fill_price: float | None
    last_message: str = ""             # IB's rejection reason / last error for this order
    updated_at: datetime | None = None
    aux_price: float | None = None     # a STP order's stop price
    parent_id: int = 0                 # a bracket child's parent order id

    @property
    def is_working(self) -> bool:
        return self.status in {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}


@dataclass(slots=True, frozen=True)
class FillView:
    exec_id: str
    order_id: int
    perm_id: int
    order_ref: str
    contract: ContractInfo
    side: str                          # BOT / SLD
    quantity: float
    price: float
    time: datetime
    commission: float | None = None
    realized_pnl: float | None = None


# Where the snapshot's account P&L figures come from, best first.
PNL_FROM_IB_ACCOUNT = "IB account P&L"
PNL_FROM_IB_POSITIONS = "IB per-position P&L"
PNL_FROM_V6 = "v6, computed from quotes"


@dataclass(slots=True, frozen=True)
class ClosedLeg:
    """A contract with a closing trade today: IB's realized P&L and the day's commissions on it."""
    contract: ContractInfo
    quantity_closed: float             # shares/contracts closed today (closing fills only)
    realized_pnl: float                # IB's realizedPNL from the commission reports, summed
    commissions: float                 # every fill of this contract today
    fills: int
    last_fill_at: datetime
    still_held: bool = False           # partly closed: some of the position remains


@dataclass(slots=True, frozen=True)
class Alert:
    level: str                         # "error" / "warning" / "info"
    message: str


@dataclass(slots=True, frozen=True)
class PortfolioSnapshot:
    """The whole live picture, consistent as of one sequence number."""

    seq: int
    built_at: datetime
    connection: ConnectionStatus
    account: AccountValues
    legs: tuple[Leg, ...] = ()
    strategies: tuple[Strategy, ...] = ()
    underlyings: tuple[UnderlyingSummary, ...] = ()
    totals: PositionGreeks = field(default_factory=PositionGreeks)
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    daily_pnl: float | None = None
    quotes: tuple[Quote, ...] = ()     # underlyings and every leg, by con_id
    orders: tuple[OrderView, ...] = ()
    fills: tuple[FillView, ...] = ()
    alerts: tuple[Alert, ...] = ()
    positions_version: int = 0         # bumps when the set or size of positions changes
    daily_pnl_source: str = PNL_FROM_V6
    unrealized_pnl_source: str = PNL_FROM_V6
    realized_pnl_source: str = PNL_FROM_V6
    closed_today: tuple[ClosedLeg, ...] = ()
    # lookup tables built once per snapshot, so pages resolving 1,000 legs stay O(n)
    _quotes_by_id: dict[int, Quote] = field(init=False, repr=False, compare=False)
    _underlyings_by_symbol: dict[str, UnderlyingSummary] = field(init=False, repr=False, compare=False)
    _strategies_by_id: dict[str, Strategy] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_quotes_by_id", {q.con_id: q for q in self.quotes})
        object.__setattr__(self, "_underlyings_by_symbol", {u.symbol: u for u in self.underlyings})
        object.__setattr__(self, "_strategies_by_id", {s.strategy_id: s for s in self.strategies})

    def quote(self, con_id: int) -> Quote | None:
        return self._quotes_by_id.get(con_id)

    def underlying(self, symbol: str) -> UnderlyingSummary | None:
        return self._underlyings_by_symbol.get(symbol)

    def strategy(self, strategy_id: str) -> Strategy | None:
        return self._strategies_by_id.get(strategy_id)


@dataclass(slots=True, frozen=True)
class OrderLegSpec:
    """One leg of a combo (BAG) order."""

    contract: ContractInfo
    ratio: int
    action: str                        # BUY / SELL


@dataclass(slots=True, frozen=True)
class OrderSpec:
    """What the operator confirmed: exactly these fields reach the gateway."""

    contract: ContractInfo             # for a combo: sec_type "BAG" with symbol = underlying
    action: str                        # BUY / SELL
    quantity: float
    order_type: str                    # LMT / MKT
    limit_price: float | None = None
    tif: str = "DAY"
    combo_legs: tuple[OrderLegSpec, ...] = ()
    # A bracket (both set): the LMT entry goes with a take-profit LMT child at `take_profit` and
    # a stop STP child at `stop_loss`, one OCA group, placed together under the one confirmation.
    take_profit: float | None = None
    stop_loss: float | None = None

    @property
    def is_bracket(self) -> bool:
        return self.take_profit is not None or self.stop_loss is not None


TAKE_PROFIT_REF, STOP_LOSS_REF, OCA_REF = ":tp", ":sl", ":oca"


def bracket_refs(order_ref: str) -> tuple[str, str]:
    """The orderRefs of a bracket's take-profit and stop children: the ticket id and a suffix,
    so a look-up by orderRef after a crash finds them."""
    return order_ref + TAKE_PROFIT_REF, order_ref + STOP_LOSS_REF


def parent_ref(order_ref: str) -> str:
    """The ticket id a (child) orderRef belongs to."""
    for suffix in (TAKE_PROFIT_REF, STOP_LOSS_REF):
        if order_ref.endswith(suffix):
            return order_ref[: -len(suffix)]
    return order_ref


@dataclass(slots=True, frozen=True)
class WhatIfResult:
    init_margin_change: float | None
    maint_margin_change: float | None
    init_margin_after: float | None
    maint_margin_after: float | None
    equity_with_loan_after: float | None
    commission: float | None
    min_commission: float | None
    max_commission: float | None
    commission_currency: str = "USD"
    warning: str = ""
