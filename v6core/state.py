"""The live picture of the account and the immutable snapshots built from it.

`LiveState` is plain mutable data owned by the runtime thread: event handlers write into it
and mark it dirty. `SnapshotBuilder` turns it into a frozen `PortfolioSnapshot` (legs with
Greeks, strategies, underlyings, totals, alerts) and `SnapshotStore` hands the latest one to
any thread, swapping the reference under a lock so a reader never sees half an update.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from v6core import greeks as greek_math, greeks_warmup
from v6core.alerts import account_alerts, connection_and_leg_alerts, limit_alerts  # noqa: F401 (re-export)
from v6core.config import Settings
from v6core.ib_edge import MAX_PLAUSIBLE_COST, MAX_PLAUSIBLE_QUANTITY
from v6core.models import (
    AccountValues, ConnectionStatus, ConnState, ContractInfo, FillView, Greeks,
    Leg, OrderView, PortfolioSnapshot, PositionGreeks, Quote, UnderlyingSummary,
)
from v6core.pnl import account_pnl, closed_legs_today
from v6core.strategies import group_and_tag

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
GREEKS_PENDING = "no Greeks: pending (the local Greeks model is still compiling)"
# Any flag keeps a leg's Greeks out of the totals (as `group_strategies` does for strategies).
# These flags make a leg untrustworthy as a whole: its P&L stays out too and it joins no strategy.
EXCLUDING_FLAG_PREFIXES = ("unknown security type", "unknown account", "position rejected",
                           "option contract lacks", "contract rejected", "implausible",
                           "non-positive multiplier", "unreadable multiplier")


@dataclass
class PositionRecord:
    account: str
    contract: ContractInfo
    quantity: float
    avg_cost: float                    # IB style: option avgCost includes the multiplier
    flags: tuple[str, ...] = ()
    market_price: float | None = None  # from PORTFOLIO_VALUE, per share
    market_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    portfolio_flags: tuple[str, ...] = ()
    daily_pnl: float | None = None     # from PnL single


@dataclass
class QuoteRecord:
    quote: Quote
    flags: tuple[str, ...] = ()        # rejected prices / IV
    ib_greeks: Greeks | None = None    # valid per market semantics, else None
    greek_flags: tuple[str, ...] = ()  # why IB's Greeks were rejected
    epoch: int = 0                     # connection epoch the last tick arrived in


@dataclass
class LiveState:
    """Everything the runtime knows, keyed for cheap updates; touched only on the runtime thread."""

    positions: dict[tuple[str, int], PositionRecord] = field(default_factory=dict)
    quotes: dict[int, QuoteRecord] = field(default_factory=dict)
    underlying_ids: dict[str, int] = field(default_factory=dict)   # symbol -> stock conId
    account_fields: dict[str, float] = field(default_factory=dict)
    account_name: str = ""
    account_updated_at: datetime | None = None
    managed_accounts: tuple[str, ...] = ()
    pnl: tuple[float | None, float | None, float | None] = (None, None, None)
    orders: dict[tuple[int, int], OrderView] = field(default_factory=dict)
    order_messages: dict[int, str] = field(default_factory=dict)    # orderId -> IB's last error
    fills: dict[str, FillView] = field(default_factory=dict)
    positions_version: int = 0
    epoch: int = 0                     # bumps on every (re)connect: older quotes are stale
    dirty: bool = True

    def set_position(self, record: PositionRecord) -> None:
        key = (record.account, record.contract.con_id)
        old = self.positions.get(key)
        if record.quantity == 0:
            if old is not None:
                del self.positions[key]
                self.positions_version += 1
        else:
            if old is None or old.quantity != record.quantity:
                self.positions_version += 1
            if old is not None:
                # PORTFOLIO_VALUE and PnL single arrive separately; keep them across POSITION_DATA
                record.market_price, record.market_value = old.market_price, old.market_value
                record.unrealized_pnl, record.realized_pnl = old.unrealized_pnl, old.realized_pnl
                record.portfolio_flags, record.daily_pnl = old.portfolio_flags, old.daily_pnl
            self.positions[key] = record
        self.dirty = True


def order_key(order: OrderView) -> tuple[int, int]:
    """(clientId, orderId) like ib_async, or (-1, permId) for orders without an API id."""
    return (order.client_id, order.order_id) if order.order_id > 0 else (-1, order.perm_id)


def today_new_york(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()


def _finite_sum(values) -> float:
    # a non-finite figure never reaches a total (fsum raises on inf - inf; one leg must not
    # take the snapshot down): the leg carrying it is flagged and excluded anyway
    return math.fsum(v for v in values if v is not None and math.isfinite(v))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _implausible(pos: PositionRecord) -> list[str]:
    """The edge flags absurd numbers; this catches any that reach the builder another way."""
    flags = []
    for name, value, limit in (("quantity", pos.quantity, MAX_PLAUSIBLE_QUANTITY),
                               ("average cost", pos.avg_cost, MAX_PLAUSIBLE_COST)):
        if not math.isfinite(value) or abs(value) > limit:
            flags.append(f"implausible {name} {value:.3g}")
    return flags


def _unevaluated_leg(pos: PositionRecord, exc: Exception) -> Leg:
    """A leg whose figures could not be computed: shown with the reason, out of every total."""
    return Leg(account=pos.account, contract=pos.contract, quantity=pos.quantity,
               avg_price=math.nan, mark=None, market_value=None, unrealized_pnl=None,
               realized_pnl=None, daily_pnl=None, dte=None, greeks=None,
               position_greeks=PositionGreeks(), quote_time=None,
               flags=tuple(pos.flags) + (f"position rejected: could not be evaluated "
                                         f"({type(exc).__name__}: {exc})",), stale=True)


class SnapshotBuilder:
    """Pure transformation LiveState -> PortfolioSnapshot (runs on the runtime thread)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.last_build_seconds = 0.0

    def build(self, state: LiveState, connection: ConnectionStatus, seq: int,
              now: datetime | None = None) -> PortfolioSnapshot:
        started = time.perf_counter()
        now = now or datetime.now(timezone.utc)
        snapshot = self._build(state, connection, seq, now)
        self.last_build_seconds = time.perf_counter() - started
        return snapshot

    # -- pieces -------------------------------------------------------------------------------

    def _spot(self, state: LiveState, symbol: str) -> tuple[float | None, datetime | None]:
        con_id = state.underlying_ids.get(symbol)
        record = state.quotes.get(con_id) if con_id else None
        if record is None:
            return None, None
        return record.quote.mark, record.quote.time

    def _is_stale(self, record: QuoteRecord | None, state: LiveState, connected: bool,
                  now: datetime) -> bool:
        if record is None or record.quote.time is None or not connected:
            return True
        if record.epoch != state.epoch:
            return True
        return (now - record.quote.time).total_seconds() > self.settings.stale_after

    def _allowed_accounts(self, state: LiveState) -> set[str] | None:
        if self.settings.account:
            return {self.settings.account}
        return set(state.managed_accounts) or None

    def _build(self, state: LiveState, connection: ConnectionStatus, seq: int,
               now: datetime) -> PortfolioSnapshot:
        connected = connection.state == ConnState.CONNECTED
        today = today_new_york(now)
        allowed = self._allowed_accounts(state)
        rate = self.settings.risk_free_rate
        spy_price, _ = self._spot(state, "SPY")
        spots: dict[str, float | None] = {}

        # pass 1: everything but the Greeks that need computing
        rows = []
        broken: list[Leg] = []
        fallback_rows: list[int] = []
        requests = []
        for (account, con_id), pos in sorted(state.positions.items(), key=lambda kv: kv[0]):
            try:
                contract = pos.contract
                flags = list(pos.flags) + list(pos.portfolio_flags)
                if not any(f.startswith(EXCLUDING_FLAG_PREFIXES) for f in flags):
                    flags.extend(_implausible(pos))
                if allowed is not None and account not in allowed:
                    flags.append(f"unknown account {account}")
                record = state.quotes.get(con_id)
                quote = record.quote if record else None
                if record is not None:
                    flags.extend(record.flags)
                stale = self._is_stale(record, state, connected, now)
                symbol = contract.symbol
                if symbol not in spots:
                    spots[symbol] = self._spot(state, symbol)[0]
                spot = spots[symbol]
                dte = (contract.expiry - today).days if contract.expiry is not None else None
                if dte is not None and dte < 0:
                    flags.append("expired")
                greeks: Greeks | None = None
                if contract.sec_type == "STK":
                    greeks = greek_math.STOCK_GREEKS
                elif contract.is_option and contract.expiry is not None and contract.strike:
                    if record is not None and record.ib_greeks is not None:
                        greeks = record.ib_greeks
                    else:
                        if record is not None:
                            flags.extend(record.greek_flags)
                        fallback_rows.append(len(rows))
                        requests.append(greek_math.GreekRequest(
                            con_id=con_id, spot=spot, strike=contract.strike,
                            is_call=contract.right == "C", expiry=contract.expiry,
                            iv=quote.iv if quote is not None else None,
                            mid=quote.mark if quote is not None else None,
                        ))
                rows.append([pos, contract, flags, quote, stale, spot, dte, greeks])
            except Exception as exc:   # one leg never fails the build
                log.exception("leg %s could not be evaluated", pos.contract.label)
                broken.append(_unevaluated_leg(pos, exc))

        # one vectorised call for every option IB gave no usable Greeks for
        if requests and greeks_warmup.is_warming():
            for row_index in fallback_rows:      # never wait for the compiler on the loop
                rows[row_index][2].append(GREEKS_PENDING)
        elif requests:
            try:
                computed = greek_math.fill_greeks_explained(requests, now, rate)
            except Exception:  # a bad batch must not take the snapshot down
                log.exception("fill_greeks failed for %d legs", len(requests))
                computed = [greek_math.FilledGreeks(r.con_id, None, "Greeks computation failed")
                            for r in requests]
            for row_index, result in zip(fallback_rows, computed):
                checked, problems = greek_math.validate_greeks(result.greeks)
                rows[row_index][7] = checked
                if result.reason:
                    rows[row_index][2].append(f"no Greeks: {result.reason}")
                rows[row_index][2].extend(problems)

        legs: list[Leg] = []
        included: list[bool] = []
        for pos, contract, flags, quote, stale, spot, dte, greeks in rows:
            try:
                excluded = any(f.startswith(EXCLUDING_FLAG_PREFIXES) for f in flags)
                multiplier = contract.multiplier
                if greeks is None and not excluded and not any(f.startswith("no Greeks") for f in flags):
                    flags.append("no Greeks: kept out of totals")
                if flags or greeks is None:
                    position = PositionGreeks()
                else:
                    if spot is None:
                        spot = greeks.und_price
                    position = greek_math.position_greeks(
                        greeks, pos.quantity, multiplier, spot,
                        self.settings.betas.get(contract.symbol, 1.0), spy_price)
                mark = quote.mark if quote is not None else None
                if mark is None:
                    mark = pos.market_price
                avg_price = pos.avg_cost / multiplier if multiplier else pos.avg_cost
                if mark is not None:
                    market_value = mark * pos.quantity * multiplier
                else:
                    market_value = pos.market_value
                # IB's unrealized P&L (its marks, to the cent); computed from the quote only when
                # IB sent none, and labelled so
                pnl_source = "IB"
                unrealized = pos.unrealized_pnl
                if unrealized is None and mark is not None:
                    unrealized = market_value - avg_price * pos.quantity * multiplier
                    pnl_source = "v6"
                elif unrealized is None:
                    pnl_source = "v6"
                legs.append(Leg(
                    account=pos.account, contract=contract, quantity=pos.quantity,
                    avg_price=avg_price, mark=mark, market_value=_finite(market_value),
                    unrealized_pnl=_finite(unrealized), realized_pnl=_finite(pos.realized_pnl),
                    daily_pnl=_finite(pos.daily_pnl), dte=dte, greeks=greeks, position_greeks=position,
                    quote_time=quote.time if quote is not None else None,
                    flags=tuple(dict.fromkeys(flags)), stale=stale, pnl_source=pnl_source,
                ))
                included.append(not excluded)
            except Exception as exc:   # one leg never fails the build
                log.exception("leg %s could not be evaluated", contract.label)
                legs.append(_unevaluated_leg(pos, exc))
                included.append(False)
        legs.extend(broken)
        included.extend(False for _ in broken)

        # strategies over the legs that are trustworthy as a whole
        trusted_index = [i for i, ok in enumerate(included) if ok]
        try:
            strategy_list, tagged = group_and_tag([legs[i] for i in trusted_index])
            strategies = tuple(strategy_list)
            for i, leg in zip(trusted_index, tagged):
                legs[i] = leg
        except Exception:
            log.exception("strategy grouping failed")
            strategies = ()

        totals = PositionGreeks()
        for leg in legs:
            totals = totals + leg.position_greeks
        underlyings = self._underlyings(state, legs, included)
        closed_today = closed_legs_today(
            state.fills.values(), {con_id for _, con_id in state.positions}, today)
        # IB's account P&L counts only for an account this login manages (else its legs are
        # flagged "unknown account" and nothing of it belongs in the totals)
        managed = not state.managed_accounts or state.account_name in state.managed_accounts
        pnl = account_pnl(state.pnl if managed else (None, None, None),
                          [l for l, ok in zip(legs, included) if ok], closed_today)
        daily, unrealized, realized = pnl[0]

        account = self._account(state)
        quotes = tuple(r.quote for _, r in sorted(state.quotes.items()))
        orders = tuple(sorted(state.orders.values(), key=lambda o: (o.order_id, o.perm_id)))
        fills = tuple(sorted(state.fills.values(), key=lambda f: (f.time, f.exec_id)))
        return PortfolioSnapshot(
            seq=seq, built_at=now, connection=connection, account=account,
            legs=tuple(legs), strategies=strategies, underlyings=underlyings, totals=totals,
            unrealized_pnl=unrealized, realized_pnl=realized, daily_pnl=daily,
            daily_pnl_source=pnl[1][0], unrealized_pnl_source=pnl[1][1],
            realized_pnl_source=pnl[1][2], closed_today=closed_today,
            quotes=quotes, orders=orders, fills=fills,
            alerts=(connection_and_leg_alerts(connection, legs) + account_alerts(account)
                    + limit_alerts(self.settings, totals, account, daily)),
            positions_version=state.positions_version,
        )

    def _underlyings(self, state: LiveState, legs: list[Leg], included: list[bool]
                     ) -> tuple[UnderlyingSummary, ...]:
        by_symbol: dict[str, list[Leg]] = {}
        for leg, ok in zip(legs, included):
            by_symbol.setdefault(leg.contract.symbol, [])
            if ok:
                by_symbol[leg.contract.symbol].append(leg)
        summaries = []
        for symbol in sorted(by_symbol):
            group = by_symbol[symbol]
            greeks = PositionGreeks()
            for leg in group:
                greeks = greeks + leg.position_greeks
            spot, quote_time = self._spot(state, symbol)
            summaries.append(UnderlyingSummary(
                symbol=symbol, spot=spot, beta=self.settings.betas.get(symbol, 1.0),
                greeks=greeks,
                unrealized_pnl=_finite_sum(l.unrealized_pnl for l in group),
                daily_pnl=_finite_sum(l.daily_pnl for l in group),
                market_value=_finite_sum(l.market_value for l in group),
                quote_time=quote_time,
            ))
        return tuple(summaries)

    def _account(self, state: LiveState) -> AccountValues:
        fields = state.account_fields
        daily, unrealized, realized = state.pnl
        return AccountValues(
            account=state.account_name,
            net_liquidation=fields.get("net_liquidation"),
            total_cash=fields.get("total_cash"),
            buying_power=fields.get("buying_power"),
            available_funds=fields.get("available_funds"),
            excess_liquidity=fields.get("excess_liquidity"),
            init_margin=fields.get("init_margin"),
            maint_margin=fields.get("maint_margin"),
            gross_position_value=fields.get("gross_position_value"),
            daily_pnl=daily,
            unrealized_pnl=unrealized if unrealized is not None else fields.get("unrealized_pnl"),
            realized_pnl=realized if realized is not None else fields.get("realized_pnl"),
            updated_at=state.account_updated_at,
        )


class SnapshotStore:
    """The current snapshot, swapped by reference under a lock; readers wait on a condition."""

    def __init__(self, initial: PortfolioSnapshot) -> None:
        self._cond = threading.Condition()
        self._current = initial

    def current(self) -> PortfolioSnapshot:
        with self._cond:
            return self._current

    @property
    def next_seq(self) -> int:
        with self._cond:
            return self._current.seq + 1

    def publish(self, snapshot: PortfolioSnapshot) -> None:
        with self._cond:
            if snapshot.seq <= self._current.seq:
                raise ValueError(f"snapshot seq {snapshot.seq} does not follow {self._current.seq}")
            self._current = snapshot
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[PortfolioSnapshot], bool],
                 timeout: float) -> PortfolioSnapshot | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self._current):
                    return self._current
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)


def empty_snapshot(connection: ConnectionStatus, account: str = "") -> PortfolioSnapshot:
    return PortfolioSnapshot(seq=0, built_at=datetime.now(timezone.utc), connection=connection,
                             account=AccountValues(account=account))

