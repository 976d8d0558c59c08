"""Order book and matching: validation with IB's codes, whatIf, working orders, fills.

Order types MKT, LMT and STP (a stop becomes a market order once the executable price reaches
it). Brackets as IB runs them: an order with `transmit=0` is held until an order of its group
arrives with `transmit=1`; a child (`parentId`) works only once its parent has filled; children
of one parent, and orders sharing an `ocaGroup`, cancel each other when one fills; cancelling a
parent cancels its children.

The engine is transport-agnostic: it reports through an `OrderSink` (the server), which turns
events into OPEN_ORDER / ORDER_STATUS / EXECUTION_DATA / COMMISSION_REPORT / ERR_MSG frames.

The engine's parts, one job each: `order_records` (the records and `OrderSink`), `order_validation`
(IB's error codes and request checks), `order_pricing` (executable prices and whatIf), `brackets`
(brackets and OCA groups) and this module (requests, fills and the engine's state); every name is
importable from here.
"""

from __future__ import annotations

from v6core.models import ContractInfo
from v6core.sim.account import Account, commission_for
from v6core.sim.chains import option_tick  # noqa: F401 - the module's names before the split
from v6core.sim.brackets import WORKING, BracketRules  # noqa: F401 (WORKING re-exported)
from v6core.sim.market import Market, on_tick_grid  # noqa: F401
from v6core.sim.order_pricing import OrderPricing
from v6core.sim.order_records import (  # noqa: F401 - re-exported
    BAG_CON_ID, DONE, Fill, LiveOrder, OrderRequest, OrderSink, SimComboLeg, SimOrder,
)
from v6core.sim.order_validation import (  # noqa: F401 - re-exported
    ERR_CANCEL_NOT_FOUND, ERR_CANCELLED, ERR_DUPLICATE_ID, ERR_NO_SECURITY, ERR_NOT_CANCELLABLE, ERR_REJECTED,
    ERR_TICK, OrderValidation, _rejected,
)


class OrderEngine(OrderValidation, OrderPricing, BracketRules):
    def __init__(self, market: Market, account: Account, sink: OrderSink, seed: int) -> None:
        self.market = market
        self.account = account
        self.sink = sink
        self.orders: dict[tuple[int, int], LiveOrder] = {}
        self.fills: list[Fill] = []
        self._next_perm_id = 1_000_000 + seed * 1000 + 1
        self._next_exec_seq = 1

    # ---- id sequences (kept across restarts by v6core.sim.persistence)
    def _take_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id - 1

    def _take_exec_seq(self) -> int:
        self._next_exec_seq += 1
        return self._next_exec_seq - 1

    def peek_perm_id(self) -> int:
        return self._next_perm_id

    def peek_exec_seq(self) -> int:
        return self._next_exec_seq

    def resume_ids(self, next_perm_id: int, next_exec_seq: int) -> None:
        self._next_perm_id = max(self._next_perm_id, next_perm_id)
        self._next_exec_seq = max(self._next_exec_seq, next_exec_seq)

    # ---- requests
    def place(self, client_id: int, req: OrderRequest) -> None:
        key = (client_id, req.order_id)
        existing = self.orders.get(key)
        if existing is not None and not req.what_if:
            self._modify(existing, req)
            return
        error = self._validate(req, client_id)
        if error is not None:
            if not req.what_if:
                self._record_rejection(client_id, req, error[1])
            self.sink.order_error(client_id, req.order_id, *error)
            return
        order = self._build(client_id, req)
        if req.what_if:
            self.sink.order_open(order, what_if=self.what_if(order))
            return
        self.orders[key] = order
        parent = self._parent(order)
        order.transmitted = req.transmit
        order.status = "Submitted" if req.transmit and parent is None else "PreSubmitted"
        self.sink.order_open(order)
        self.sink.order_status(order)
        if not req.transmit:
            return
        if parent is None:
            self._transmit_children(order)
            self._try_fill(order)
            return
        # The group's transmit=1 order transmits the parent and every child held with it.
        parent_held = not parent.transmitted
        parent.transmitted = True
        self._transmit_children(parent)
        if parent.status == "Filled":
            self._activate(order)
        elif parent_held and parent.status in WORKING:
            parent.status = "Submitted"
            self.sink.order_status(parent)
            self._try_fill(parent)

    def _build(self, client_id: int, req: OrderRequest) -> LiveOrder:
        if req.sec_type == "BAG":
            legs = [(info, ratio, action) for info, ratio, action in req.legs]
            contract = ContractInfo(con_id=BAG_CON_ID, symbol=legs[0][0].symbol, sec_type="BAG",
                                    local_symbol="", trading_class="COMB")
        else:
            legs = []
            contract = req.contract
        return LiveOrder(
            order_id=req.order_id, client_id=client_id,
            perm_id=0 if req.what_if else self._take_perm_id(), order_ref=req.order_ref,
            contract=contract, legs=legs, action=req.action, quantity=float(req.quantity),
            order_type=req.order_type, limit_price=req.limit_price, tif=req.tif or "DAY",
            account=self.account.account_id, aux_price=req.aux_price if req.order_type == "STP" else None,
            parent_id=req.parent_id, oca_group=req.oca_group,
        )

    def _record_rejection(self, client_id: int, req: OrderRequest, message: str) -> None:
        contract = req.contract or ContractInfo(con_id=0, symbol=req.symbol, sec_type=req.sec_type)
        if req.sec_type == "BAG":
            contract = ContractInfo(con_id=BAG_CON_ID, symbol=req.symbol, sec_type="BAG")
        order = LiveOrder(
            order_id=req.order_id, client_id=client_id, perm_id=self._take_perm_id(),
            order_ref=req.order_ref, contract=contract,
            legs=[leg for leg in req.legs if leg[0] is not None], action=req.action,
            quantity=float(req.quantity or 0), order_type=req.order_type,
            limit_price=req.limit_price, tif=req.tif or "DAY", account=self.account.account_id,
            status="Cancelled", last_message=message,
            completed_time=self._now_text(),
        )
        self.orders.setdefault((client_id, req.order_id), order)

    def _modify(self, order: LiveOrder, req: OrderRequest) -> None:
        if order.status not in WORKING:
            self.sink.order_error(order.client_id, order.order_id, *ERR_DUPLICATE_ID)
            return
        error = self._validate(req, order.client_id)
        if error is not None:
            self.sink.order_error(order.client_id, order.order_id, *error)
            return
        order.quantity = float(req.quantity)
        order.limit_price = req.limit_price
        order.aux_price = req.aux_price if req.order_type == "STP" else None
        order.order_type = req.order_type
        order.order_ref = req.order_ref or order.order_ref
        order.transmitted = order.transmitted or req.transmit
        order.status = "Submitted" if self._live(order) else "PreSubmitted"
        self.sink.order_open(order)
        self.sink.order_status(order)
        if order.status == "Submitted":
            self._try_fill(order)

    def cancel(self, client_id: int, order_id: int) -> None:
        order = self.orders.get((client_id, order_id))
        if order is None:
            self.sink.order_error(client_id, order_id, ERR_CANCEL_NOT_FOUND,
                                  f"OrderId {order_id} that needs to be cancelled is not found.")
            return
        if order.status not in WORKING:
            self.sink.order_error(client_id, order_id, *ERR_NOT_CANCELLABLE)
            return
        self._cancel(order)

    def _cancel(self, order: LiveOrder) -> None:
        order.status = "Cancelled"
        order.completed_time = self._now_text()
        self.sink.order_status(order)
        self.sink.order_error(order.client_id, order.order_id, *ERR_CANCELLED)
        for child in self._children(order):       # IB cancels a parent's children with it
            if child.status in WORKING:
                self._cancel(child)

    def global_cancel(self) -> None:
        for order in list(self.orders.values()):
            if order.status in WORKING:
                self._cancel(order)

    def on_market(self) -> None:
        for order in list(self.orders.values()):
            if order.status == "Submitted":
                self._try_fill(order)

    # ---- fills
    def _try_fill(self, order: LiveOrder) -> None:
        legs = self._marketable(order)
        if legs is None:
            return
        qty = order.quantity - order.filled
        net = self._net_price(legs, order.action)
        now = self.market.clock.now()
        touched: list[int] = []
        for info, per_unit, price in legs:
            signed = per_unit * qty
            commission = commission_for(info, signed)
            realized = self.account.apply_fill(info, signed, price, commission)
            self.market.add_volume(info.con_id, int(abs(signed)))
            fill = Fill(
                exec_id=f"{order.perm_id:08x}.{self._take_exec_seq():08x}.01.01",
                order_id=order.order_id, client_id=order.client_id, perm_id=order.perm_id,
                contract=info, side="BOT" if signed > 0 else "SLD", quantity=abs(signed),
                price=price, time=now, commission=commission, realized=realized,
                order_ref=order.order_ref, cum_qty=abs(signed), avg_price=price,
                account=self.account.account_id,
            )
            self.fills.append(fill)
            touched.append(info.con_id)
            self.sink.order_fill(order, fill)
        order.filled = order.quantity
        order.avg_fill_price = net
        order.last_fill_price = net
        order.status = "Filled"
        order.completed_time = self._now_text()
        self.sink.order_status(order)
        self.sink.positions_changed(touched)
        for peer in self._oca_peers(order):
            self._cancel(peer)
        for child in self._children(order):
            self._activate(child)

    # ---- views
    def _now_text(self) -> str:
        return self.market.clock.now().strftime("%Y%m%d %H:%M:%S UTC")

    def public_orders(self) -> list[SimOrder]:
        return [o.public() for o in self.orders.values()]
