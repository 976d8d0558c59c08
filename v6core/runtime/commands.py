"""Commands: what-if, place, cancel, look-ups by orderRef and historical bars (coroutines on the loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from typing import Any

import polars as pl

from v6core.ib_edge import clean_number, contract_from_ib
from v6core.models import OCA_REF, ContractInfo, OrderSpec, OrderView, WhatIfResult, bracket_refs
from v6core.runtime._common import _now
from v6core.runtime.convert import bars_frame, contract_to_ib
from v6core.state import order_key

WORKING_STATES = {"PendingSubmit", "ApiPending"}


class Commands:
    """The public command methods (any thread) and the coroutines they run on the loop."""

    # ------------------------------------------------------------------ commands (any thread)

    def what_if(self, spec: OrderSpec) -> concurrent.futures.Future[WhatIfResult]:
        return self._submit(lambda: self._what_if(spec))

    def place_order(self, spec: OrderSpec, order_ref: str) -> concurrent.futures.Future[OrderView]:
        return self._submit(lambda: self._place_order(spec, order_ref))

    def place_bracket(self, spec: OrderSpec, order_ref: str) -> concurrent.futures.Future[list[OrderView]]:
        """The LMT entry and its take-profit LMT and stop STP children, as IB's bracket: the
        entry and the take-profit held (transmit=False) until the stop, last, transmits the
        group; the children in one OCA group, GTC so the exits outlive the entry's day. Views of
        [entry, take-profit, stop]."""
        return self._submit(lambda: self._place_bracket(spec, order_ref))

    def cancel_order(self, order_id: int) -> concurrent.futures.Future[None]:
        return self._submit(lambda: self._cancel_order(order_id))

    def modify_limit(self, order_id: int, limit_price: float) -> concurrent.futures.Future[None]:
        """Re-send a working order with a new limit price under the same order id (IB's modify)."""
        return self._submit(lambda: self._modify_limit(order_id, limit_price))

    def cancel_all(self) -> concurrent.futures.Future[None]:
        return self._submit(self._cancel_all)

    def find_orders_by_ref(self, order_ref: str) -> concurrent.futures.Future[list[OrderView]]:
        return self._submit(lambda: self._find_orders_by_ref(order_ref))

    def historical_bars(self, symbol: str, bar_size: str = "1 day",
                        duration: str = "1 Y") -> concurrent.futures.Future[pl.DataFrame]:
        return self._submit(lambda: self._historical_bars(symbol, bar_size, duration))

    # -- commands (coroutines on the runtime loop) ---------------------------------------------

    def _require_connected(self) -> None:
        if self._ib is None or not self._ib.isConnected():
            why = f" ({self._status.last_error})" if self._status.last_error else ""
            raise ConnectionError(f"not connected to the gateway{why}")

    def _account_for_orders(self) -> str:
        return self.settings.account or self._state.account_name

    async def _ib_contract(self, info: ContractInfo, legs: tuple = ()) -> Any:
        from ib_async import ComboLeg, Contract

        if info.sec_type == "BAG":
            if not legs:
                raise ValueError("a BAG order needs combo legs")
            combo = []
            for leg in legs:
                leg_contract = await self._ib_contract(leg.contract)
                combo.append(ComboLeg(conId=leg_contract.conId, ratio=int(leg.ratio),
                                      action=leg.action, exchange="SMART"))
            return Contract(symbol=info.symbol, secType="BAG", currency=info.currency,
                            exchange="SMART", comboLegs=combo)
        contract = contract_to_ib(info)
        if not info.con_id:
            qualified = await self._ib.qualifyContractsAsync(contract)
            if not qualified or qualified[0] is None:
                raise ValueError(f"unknown contract {info.label}")
        return contract

    def _ib_order(self, spec: OrderSpec, order_ref: str) -> Any:
        from ib_async import Order

        action = spec.action.upper()
        order_type = spec.order_type.upper()
        if action not in ("BUY", "SELL"):
            raise ValueError(f"action must be BUY or SELL, got {spec.action!r}")
        if not spec.quantity or spec.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {spec.quantity!r}")
        if order_type not in ("LMT", "MKT"):
            raise ValueError(f"order type must be LMT or MKT, got {spec.order_type!r}")
        order = Order(action=action, totalQuantity=spec.quantity, orderType=order_type,
                      tif=spec.tif.upper(), orderRef=order_ref, account=self._account_for_orders(),
                      transmit=True)
        if order_type == "LMT":
            if spec.limit_price is None:
                raise ValueError("a LMT order needs a limit price")
            order.lmtPrice = spec.limit_price
        return order

    async def _what_if(self, spec: OrderSpec) -> WhatIfResult:
        self._require_connected()
        contract = await self._ib_contract(spec.contract, spec.combo_legs)
        order = self._ib_order(spec, "")
        timeout = max(self.settings.connect_timeout * 2, 5.0)
        state = await asyncio.wait_for(self._ib.whatIfOrderAsync(contract, order), timeout)
        if not state:
            raise RuntimeError("the gateway returned no what-if result")

        def number(value: Any) -> float | None:
            return clean_number(value)

        return WhatIfResult(
            init_margin_change=number(state.initMarginChange),
            maint_margin_change=number(state.maintMarginChange),
            init_margin_after=number(state.initMarginAfter),
            maint_margin_after=number(state.maintMarginAfter),
            equity_with_loan_after=number(state.equityWithLoanAfter),
            commission=number(state.commission),
            min_commission=number(state.minCommission),
            max_commission=number(state.maxCommission),
            commission_currency=state.commissionCurrency or "USD",
            warning=state.warningText or "",
        )

    async def _place_order(self, spec: OrderSpec, order_ref: str) -> OrderView:
        self._require_connected()
        if not order_ref:
            raise ValueError("order_ref (the ticket id) is required")
        contract = await self._ib_contract(spec.contract, spec.combo_legs)
        order = self._ib_order(spec, order_ref)
        trade = self._ib.placeOrder(contract, order)
        self._on_trade(trade)
        return (await self._acknowledged([trade]))[0]

    async def _place_bracket(self, spec: OrderSpec, order_ref: str) -> list[OrderView]:
        from ib_async import Order

        self._require_connected()
        if not order_ref:
            raise ValueError("order_ref (the ticket id) is required")
        if spec.take_profit is None or spec.stop_loss is None or spec.order_type.upper() != "LMT":
            raise ValueError("a bracket needs a LMT entry, a take-profit and a stop price")
        contract = await self._ib_contract(spec.contract, spec.combo_legs)
        parent = self._ib_order(spec, order_ref)
        parent.orderId = self._ib.client.getReqId()
        parent.transmit = False
        exit_action = "SELL" if parent.action == "BUY" else "BUY"
        tp_ref, sl_ref = bracket_refs(order_ref)
        common = dict(action=exit_action, totalQuantity=spec.quantity, tif="GTC",
                      account=parent.account, parentId=parent.orderId,
                      ocaGroup=order_ref + OCA_REF, ocaType=1)
        take_profit = Order(orderType="LMT", lmtPrice=spec.take_profit, orderRef=tp_ref,
                            transmit=False, orderId=self._ib.client.getReqId(), **common)
        stop_loss = Order(orderType="STP", auxPrice=spec.stop_loss, orderRef=sl_ref,
                          transmit=True, orderId=self._ib.client.getReqId(), **common)
        trades = []
        for order in (parent, take_profit, stop_loss):
            trade = self._ib.placeOrder(contract, order)
            self._on_trade(trade)
            trades.append(trade)
        return await self._acknowledged(trades)

    async def _acknowledged(self, trades: list[Any]) -> list[OrderView]:
        """Wait (bounded) until the gateway has answered every order, then their views."""
        deadline = asyncio.get_running_loop().time() + max(self.settings.connect_timeout * 2, 5.0)

        def answered(trade: Any) -> bool:
            return (trade.orderStatus.status not in WORKING_STATES or bool(trade.order.permId)
                    or trade.order.orderId in self._state.order_messages)

        while asyncio.get_running_loop().time() < deadline:
            if all(answered(t) for t in trades) or not self._ib.isConnected():
                break
            await asyncio.sleep(0.02)
        views = []
        for trade in trades:
            view = self._order_view(trade)
            if view.status in WORKING_STATES and not view.perm_id and not view.last_message:
                view = dataclasses.replace(
                    view, last_message="no acknowledgement from the gateway yet; check before re-sending")
            self._state.orders[order_key(view)] = view
            views.append(view)
        self._mark_dirty()
        return views

    async def _cancel_order(self, order_id: int) -> None:
        from ib_async import Order

        self._require_connected()
        trade = next((t for t in self._ib.wrapper.trades.values() if t.order.orderId == order_id), None)
        self._ib.cancelOrder(trade.order if trade is not None else Order(orderId=order_id))

    async def _modify_limit(self, order_id: int, limit_price: float) -> None:
        self._require_connected()
        trade = next((t for t in self._ib.wrapper.trades.values() if t.order.orderId == order_id), None)
        if trade is None:
            raise ValueError(f"order {order_id} is not known to this connection")
        trade.order.lmtPrice = limit_price
        trade.order.transmit = True     # a bracket's entry went out held (transmit=False): a modify must not hold it
        self._on_trade(self._ib.placeOrder(trade.contract, trade.order))

    async def _cancel_all(self) -> None:
        self._require_connected()
        self._ib.reqGlobalCancel()

    async def _find_orders_by_ref(self, order_ref: str) -> list[OrderView]:
        self._require_connected()
        timeout = max(self.settings.connect_timeout * 2, 5.0)
        open_trades = await asyncio.wait_for(self._ib.reqAllOpenOrdersAsync(), timeout)
        completed = await asyncio.wait_for(self._ib.reqCompletedOrdersAsync(False), timeout)
        fills = await asyncio.wait_for(self._ib.reqExecutionsAsync(), timeout)
        views: dict[Any, OrderView] = {}
        for trade in list(open_trades) + list(completed):
            if getattr(trade.order, "orderRef", "") != order_ref:
                continue
            view = self._order_view(trade)
            views[view.perm_id or ("id", view.client_id, view.order_id)] = view
        by_perm: dict[int, list[Any]] = {}
        for fill in fills:
            if getattr(fill.execution, "orderRef", "") == order_ref:
                by_perm.setdefault(int(fill.execution.permId), []).append(fill)
        for perm_id, group in by_perm.items():
            if perm_id in views:
                continue
            # an order IB no longer lists (e.g. filled in an earlier session) still left executions
            execution = group[-1].execution
            contract, _ = contract_from_ib(group[-1].contract)
            filled = sum(float(f.execution.shares) for f in group)
            views[perm_id] = OrderView(
                order_id=int(execution.orderId), perm_id=perm_id, client_id=int(execution.clientId),
                order_ref=order_ref, account=execution.acctNumber,
                contract=contract or ContractInfo(0, "", ""),
                action="BUY" if execution.side == "BOT" else "SELL", quantity=filled,
                order_type="", limit_price=None, tif="", status="Filled", filled=filled,
                remaining=0.0, avg_fill_price=clean_number(execution.avgPrice),
                last_message="reconstructed from executions", updated_at=_now())
        return sorted(views.values(), key=lambda v: (v.order_id, v.perm_id))

    async def _historical_bars(self, symbol: str, bar_size: str, duration: str) -> pl.DataFrame:
        from ib_async import Stock

        self._require_connected()
        contract = Stock(symbol.upper(), "SMART", "USD")
        qualified = await self._ib.qualifyContractsAsync(contract)
        if not qualified or qualified[0] is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        bars = await self._ib.reqHistoricalDataAsync(
            contract, endDateTime="", durationStr=duration, barSizeSetting=bar_size,
            whatToShow="TRADES", useRTH=True, formatDate=2, timeout=30)
        return bars_frame(bars)
