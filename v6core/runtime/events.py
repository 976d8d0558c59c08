"""Event handlers: turn ib_async's objects into `LiveState` records (runtime thread only)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from v6core import greeks as greek_math
from v6core.ib_edge import (
    account_value_from_ib, contract_from_ib, fill_view_from_ib, greeks_from_ib,
    order_view_from_trade, pnl_from_ib, portfolio_item_from_ib, position_from_ib,
    quote_from_ticker,
)
from v6core.models import ConnState, ContractInfo, OrderView
from v6core.runtime._common import _now
from v6core.state import PositionRecord, QuoteRecord, order_key

log = logging.getLogger(__name__)

FARM_OK = {2104, 2106, 2158}
FARM_BROKEN = {2103, 2105, 2157}
CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
MAX_NOTICES = 8


def _guarded(handler: Callable) -> Callable:
    """An event handler that logs instead of raising: bad input never kills the runtime."""

    def wrapper(self: Any, *args: Any) -> None:
        try:
            handler(self, *args)
        except Exception:
            log.exception("event handler %s failed on %r", handler.__name__, args)

    wrapper.__name__ = handler.__name__
    return wrapper


class EventHandlers:
    """ib_async event subscribers; each one only updates state and marks it dirty."""

    # -- events (runtime thread) --------------------------------------------------------------

    def _hook_events(self, ib: Any) -> None:
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        ib.updateEvent += self._on_any_message
        ib.pendingTickersEvent += self._on_tickers
        ib.positionEvent += self._on_position
        ib.updatePortfolioEvent += self._on_portfolio
        ib.accountValueEvent += self._on_account_value
        ib.pnlEvent += self._on_pnl
        ib.pnlSingleEvent += self._on_pnl_single
        ib.openOrderEvent += self._on_trade
        ib.orderStatusEvent += self._on_trade
        ib.newOrderEvent += self._on_trade
        ib.execDetailsEvent += self._on_fill
        ib.commissionReportEvent += self._on_commission

    @_guarded
    def _on_any_message(self) -> None:
        self._last_message_at = _now()

    @_guarded
    def _on_disconnected(self) -> None:
        if self._stopped:
            return
        log.warning("disconnected from %s:%s", self._host, self._port)
        self._session_ready = False
        self._frames.reset()
        self._ingest_tickers()           # what arrived before the drop belongs to the old session
        self._tickers.clear()
        self._pnl_singles.clear()
        self._pnl_account = ""
        self._set_status(state=ConnState.DISCONNECTED,
                         last_error=self._status.last_error or "connection to the gateway lost")
        if self._session_lost is not None:
            self._session_lost.set()

    @_guarded
    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        text = f"{code}: {message}"
        if code in FARM_OK or code in FARM_BROKEN:
            farm = message.rsplit(":", 1)[-1].strip() or str(code)
            self._farms[farm] = (code, message)
            notices = tuple(f"{c} {m}" for c, m in self._farms.values())[-MAX_NOTICES:]
            broken = any(c in FARM_BROKEN for c, _ in self._farms.values())
            changes: dict[str, Any] = {"notices": notices}
            if self._status.state in (ConnState.CONNECTED, ConnState.DEGRADED):
                changes["state"] = ConnState.DEGRADED if broken else ConnState.CONNECTED
            self._set_status(**changes)
            return
        if code in (CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            notices = (self._status.notices + (f"{code} {message}",))[-MAX_NOTICES:]
            if code == CONNECTIVITY_LOST:
                self._set_status(state=ConnState.DEGRADED, notices=notices, last_error=text)
            else:
                self._set_status(state=ConnState.CONNECTED, notices=notices)
                if code == RESTORED_DATA_LOST:
                    # IB dropped our market data: subscribe everything again
                    for ticker in self._tickers.values():
                        self._ib.cancelMktData(ticker.contract)
                    self._tickers.clear()
                    self._ingest_tickers()
                    self._state.epoch += 1
                    self._schedule_sync()
            return
        is_order = any(key[1] == req_id for key in self._state.orders) if req_id > 0 else False
        if req_id > 0 and (is_order or self._is_live_order(req_id)):
            self._state.order_messages[req_id] = text
            for key, view in list(self._state.orders.items()):
                if key[1] == req_id:
                    self._state.orders[key] = dataclasses.replace(view, last_message=text)
            self._mark_dirty()
            return
        if 2100 <= code < 2200 or code in (10167,):
            return
        if code >= 100:
            self._set_status(last_error=text if req_id <= 0 else f"request {req_id}: {text}")

    def _is_live_order(self, order_id: int) -> bool:
        return any(t.order.orderId == order_id for t in self._ib.wrapper.trades.values())

    @_guarded
    def _on_tickers(self, tickers: Any) -> None:
        # Only remember which tickers moved: they are converted once per rebuild, so a contract
        # that ticks five times between two snapshots costs one conversion, not five.
        now = _now()
        pending = self._pending_tickers
        for ticker in tickers:
            con_id = int(getattr(getattr(ticker, "contract", None), "conId", 0) or 0)
            # a tick trailing a cancelled subscription (quotes released on demand) is dropped:
            # its quote left the snapshot and must not come back as if live
            if con_id and con_id in self._tickers:
                pending[con_id] = (ticker, now)
        self._mark_dirty()

    def _ingest_tickers(self) -> None:
        """Convert the tickers that moved since the last rebuild into QuoteRecords."""
        pending, self._pending_tickers = self._pending_tickers, {}
        state = self._state
        for con_id, (ticker, received_at) in pending.items():
            try:
                ib_greeks, greek_flags = None, ()
                if getattr(ticker.contract, "secType", "") == "OPT":
                    ib_greeks, greek_flags = self._checked_greeks(
                        con_id, getattr(ticker, "modelGreeks", None))
                quote, flags = quote_from_ticker(ticker, received_at,
                                                 ib_greeks.iv if ib_greeks is not None else None)
                state.quotes[con_id] = QuoteRecord(quote, flags, ib_greeks, greek_flags, state.epoch)
            except Exception:
                log.exception("ticker for conId %s could not be read", con_id)

    def _checked_greeks(self, con_id: int, computation: Any) -> tuple[Any, tuple[str, ...]]:
        """IB's model Greeks through edge and market-semantics checks, once per computation
        (a bid/ask tick re-delivers the same OptionComputation object)."""
        cached = self._greeks_seen.get(con_id)
        if cached is not None and cached[0] is computation:
            return cached[1], cached[2]
        raw, flags = greeks_from_ib(computation)
        checked = None
        if raw is not None:
            checked, problems = greek_math.validate_greeks(raw)
            flags = tuple(flags) + problems
        if flags:
            log.warning("conId %s: %s", con_id, "; ".join(flags))
        self._greeks_seen[con_id] = (computation, checked, tuple(flags))
        return checked, tuple(flags)

    @_guarded
    def _on_position(self, position: Any) -> None:
        self._apply_position(position.account, position.contract, position.position, position.avgCost)
        self._schedule_sync()

    def _apply_position(self, account: str, ib_contract: Any, quantity: Any, avg_cost: Any) -> bool:
        contract, contract_flags = contract_from_ib(ib_contract)
        if contract is None:
            return False
        edge, position_flags = position_from_ib(account, quantity, avg_cost)
        if edge is None:
            return False
        allowed = self.settings.account or None
        if allowed and edge.account != allowed:
            log.warning("position in unknown account %s (%s): flagged, kept out of totals",
                        edge.account, contract.label)
        if contract_flags or position_flags:
            log.warning("position %s: %s", contract.label, "; ".join(contract_flags + position_flags))
        if contract.sec_type in ("STK", "OPT") and not contract_flags:
            # a contract with unreadable fields is shown, flagged, but never sent back to IB
            self._ib_contracts.setdefault(contract.con_id, ib_contract)
            if contract.sec_type == "STK":
                self._state.underlying_ids.setdefault(contract.symbol, contract.con_id)
        self._state.set_position(PositionRecord(
            account=edge.account, contract=contract, quantity=edge.quantity,
            avg_cost=edge.avg_cost, flags=contract_flags + position_flags))
        self._mark_dirty()
        return True

    def _reconcile_positions(self, positions: list[Any]) -> None:
        """After a (re)connect IB's position list is the truth: drop what closed meanwhile."""
        seen: set[tuple[str, int]] = set()
        for position in positions:
            if self._apply_position(position.account, position.contract, position.position,
                                    position.avgCost):
                seen.add((position.account, int(position.contract.conId)))
        for key in list(self._state.positions):
            if key not in seen:
                record = self._state.positions[key]
                self._state.set_position(dataclasses.replace(record, quantity=0.0))

    @_guarded
    def _on_portfolio(self, item: Any) -> None:
        key = (item.account, int(getattr(item.contract, "conId", 0) or 0))
        record = self._state.positions.get(key)
        if record is None:
            if not self._apply_position(item.account, item.contract, item.position, item.averageCost):
                return
            record = self._state.positions.get(key)
            if record is None:
                return
        values, flags = portfolio_item_from_ib(item)
        record.market_price, record.market_value = values.market_price, values.market_value
        record.unrealized_pnl, record.realized_pnl = values.unrealized_pnl, values.realized_pnl
        record.portfolio_flags = flags
        self._mark_dirty()

    @_guarded
    def _on_account_value(self, value: Any) -> None:
        parsed = account_value_from_ib(value)
        if parsed is None:
            return
        account, name, number, currency = parsed
        if self._state.account_name and account and account != self._state.account_name:
            return
        if currency == "BASE" and name in self._state.account_fields:
            return  # the USD figure wins when both arrive
        self._state.account_fields[name] = number
        self._state.account_updated_at = _now()
        self._mark_dirty()

    @_guarded
    def _on_pnl(self, pnl: Any) -> None:
        self._state.pnl = pnl_from_ib(pnl)
        self._mark_dirty()

    @_guarded
    def _on_pnl_single(self, pnl: Any) -> None:
        record = self._state.positions.get((pnl.account, int(pnl.conId)))
        if record is not None:
            daily, unrealized, realized = pnl_from_ib(pnl)
            record.daily_pnl = daily
            # IB's own figures (its marks) win over anything computed from quote mids
            if unrealized is not None:
                record.unrealized_pnl = unrealized
            if realized is not None:
                record.realized_pnl = realized
            self._mark_dirty()

    @_guarded
    def _on_trade(self, trade: Any) -> None:
        view = self._order_view(trade)
        if view.order_id <= 0 and view.perm_id <= 0:
            return
        self._state.orders[order_key(view)] = view
        self._mark_dirty()

    def _order_view(self, trade: Any) -> OrderView:
        contract, _ = contract_from_ib(trade.contract)
        if contract is None:
            contract = ContractInfo(con_id=0, symbol=str(getattr(trade.contract, "symbol", "")),
                                    sec_type=str(getattr(trade.contract, "secType", "")))
        order_id = int(getattr(trade.order, "orderId", 0) or 0)
        message = self._state.order_messages.get(order_id, "")
        if not message:
            message = next((f"{e.errorCode}: {e.message.split(': ', 1)[-1]}" if e.errorCode else e.message
                            for e in reversed(trade.log) if e.errorCode), "")
        return order_view_from_trade(trade, contract, message, _now())

    @_guarded
    def _on_fill(self, trade: Any, fill: Any) -> None:
        contract, _ = contract_from_ib(fill.contract)
        if contract is None:
            return
        order_ref = getattr(getattr(trade, "order", None), "orderRef", "") if trade is not None else ""
        view = fill_view_from_ib(fill, contract, order_ref)
        if view is not None:
            self._state.fills[view.exec_id] = view
            self._mark_dirty()

    @_guarded
    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        self._on_fill(trade, fill)
