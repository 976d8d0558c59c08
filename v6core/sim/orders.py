"""Order book and matching: validation with IB's codes, whatIf, working orders, fills.

Order types MKT, LMT and STP (a stop becomes a market order once the executable price reaches
it). Brackets as IB runs them: an order with `transmit=0` is held until an order of its group
arrives with `transmit=1`; a child (`parentId`) works only once its parent has filled; children
of one parent, and orders sharing an `ocaGroup`, cancel each other when one fills; cancelling a
parent cancels its children.

The engine is transport-agnostic: it reports through an `OrderSink` (the server), which turns
events into OPEN_ORDER / ORDER_STATUS / EXECUTION_DATA / COMMISSION_REPORT / ERR_MSG frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from v6core.models import ContractInfo
from v6core.sim.account import Account, commission_for
from v6core.sim.chains import option_tick
from v6core.sim.brackets import WORKING, BracketRules  # noqa: F401 (WORKING re-exported)
from v6core.sim.market import Market, on_tick_grid

BAG_CON_ID = 28812380
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")

ERR_NO_SECURITY = (200, "No security definition has been found for the request")
ERR_TICK = (110, "The price does not conform to the minimum price variation for this contract.")
ERR_REJECTED = 201
ERR_CANCELLED = (202, "Order Canceled - reason:")
ERR_DUPLICATE_ID = (103, "Duplicate order id")
ERR_CANCEL_NOT_FOUND = 10147
ERR_NOT_CANCELLABLE = (161, "Cancel attempted when order is not in a cancellable state.")


@dataclass(frozen=True, slots=True)
class SimComboLeg:
    con_id: int
    ratio: int
    action: str


@dataclass(frozen=True, slots=True)
class SimOrder:
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str
    con_id: int                     # BAG_CON_ID for combos
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    status: str
    filled: float
    avg_fill_price: float | None
    combo_legs: tuple[SimComboLeg, ...] = ()
    symbol: str = ""
    last_message: str = ""
    aux_price: float | None = None
    parent_id: int = 0
    oca_group: str = ""


@dataclass(slots=True)
class OrderRequest:
    """placeOrder as parsed from the wire."""

    order_id: int
    contract: ContractInfo | None          # None: unknown contract (or a BAG, see legs)
    sec_type: str
    symbol: str
    action: str
    quantity: float | None
    order_type: str
    limit_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    what_if: bool
    legs: list[tuple[ContractInfo | None, int, str]] = field(default_factory=list)
    parent_id: int = 0
    oca_group: str = ""


@dataclass(slots=True)
class Fill:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: ContractInfo
    side: str                        # BOT / SLD
    quantity: float
    price: float
    time: datetime
    commission: float
    realized: float
    order_ref: str
    cum_qty: float
    avg_price: float
    account: str


@dataclass(slots=True)
class LiveOrder:
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str
    contract: ContractInfo            # the leg contract, or a synthetic BAG contract
    legs: list[tuple[ContractInfo, int, str]]
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    account: str
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    last_message: str = ""
    completed_time: str = ""
    aux_price: float | None = None    # a STP order's stop price
    parent_id: int = 0                # a bracket child's parent (same client)
    oca_group: str = ""
    transmitted: bool = True          # False: held at the "gateway" until its group is transmitted

    @property
    def is_combo(self) -> bool:
        return bool(self.legs)

    def public(self) -> SimOrder:
        return SimOrder(
            order_id=self.order_id, client_id=self.client_id, perm_id=self.perm_id,
            order_ref=self.order_ref, con_id=self.contract.con_id, action=self.action,
            quantity=self.quantity, order_type=self.order_type, limit_price=self.limit_price,
            tif=self.tif, status=self.status, filled=self.filled,
            avg_fill_price=self.avg_fill_price if self.filled else None,
            combo_legs=tuple(SimComboLeg(i.con_id, r, a) for i, r, a in self.legs),
            symbol=self.contract.symbol, last_message=self.last_message,
            aux_price=self.aux_price, parent_id=self.parent_id, oca_group=self.oca_group,
        )


class OrderSink(Protocol):
    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None: ...
    def order_open(self, order: LiveOrder, what_if: dict | None = None) -> None: ...
    def order_status(self, order: LiveOrder) -> None: ...
    def order_fill(self, order: LiveOrder, fill: Fill) -> None: ...
    def positions_changed(self, con_ids: list[int]) -> None: ...


def _rejected(reason: str) -> tuple[int, str]:
    return ERR_REJECTED, f"Order rejected - reason:{reason}"


class OrderEngine(BracketRules):
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

    # ---- validation
    def _validate(self, req: OrderRequest, client_id: int) -> tuple[int, str] | None:
        if req.sec_type == "BAG":
            if not req.legs or any(info is None for info, _, _ in req.legs):
                return ERR_NO_SECURITY
            if any(ratio <= 0 or action not in ("BUY", "SELL") for _, ratio, action in req.legs):
                return _rejected("Invalid combo leg")
        elif req.contract is None:
            return ERR_NO_SECURITY
        if req.action not in ("BUY", "SELL"):
            return _rejected("Invalid action " + repr(req.action))
        if req.quantity is None or req.quantity <= 0:
            return _rejected("Order quantity must be positive")
        if req.quantity != int(req.quantity):
            return _rejected("Fractional quantity is not supported for this contract")
        if req.order_type not in ("MKT", "LMT", "STP"):
            return _rejected(f"Order type {req.order_type or '(empty)'} is not supported")
        if req.order_type == "LMT":
            error = self._price_error(req, req.limit_price, "limit")
            if error is not None:
                return error
        if req.order_type == "STP":
            error = self._price_error(req, req.aux_price, "stop")
            if error is not None:
                return error
        if req.parent_id:
            parent = self.orders.get((client_id, req.parent_id))
            if parent is None or parent.status not in WORKING:
                return _rejected(f"Parent order {req.parent_id} is not a working order")
        if req.account and req.account != self.account.account_id:
            return _rejected(f"Account {req.account} is not a managed account")
        return None

    @staticmethod
    def _price_error(req: OrderRequest, price: float | None, what: str) -> tuple[int, str] | None:
        if price is None:
            return _rejected(f"Missing or invalid {what} price")
        if req.sec_type == "BAG":
            return None if on_tick_grid(abs(price), 0.01) else ERR_TICK
        if price <= 0:
            return _rejected(f"Missing or invalid {what} price")
        tick = 0.01 if req.contract.sec_type == "STK" else option_tick(req.contract.symbol, price)
        return None if on_tick_grid(price, tick) else ERR_TICK

    # ---- pricing
    def _leg_side_prices(self, order: LiveOrder) -> list[tuple[ContractInfo, float, float]]:
        """(contract, signed quantity per order unit, executable price) for each leg."""
        buying = order.action == "BUY"
        if not order.is_combo:
            q = self.market.quote(order.contract)
            return [(order.contract, 1.0 if buying else -1.0, q.ask if buying else q.bid)]
        out = []
        for info, ratio, leg_action in order.legs:
            leg_buy = (leg_action == "BUY") == buying
            q = self.market.quote(info)
            out.append((info, ratio * (1.0 if leg_buy else -1.0), q.ask if leg_buy else q.bid))
        return out

    def _net_price(self, legs: list[tuple[ContractInfo, float, float]], action: str) -> float:
        """Price per order unit, in the order's own terms (BUY pays it, SELL receives it)."""
        cash = sum(q * p for _, q, p in legs)
        return round(cash if action == "BUY" else -cash, 2)

    def _marketable(self, order: LiveOrder) -> list[tuple[ContractInfo, float, float]] | None:
        legs = self._leg_side_prices(order)
        if any(p <= 0 and q > 0 for _, q, p in legs):
            return None              # nothing offered
        if order.order_type == "MKT":
            return legs
        net = self._net_price(legs, order.action)
        if order.order_type == "STP":      # triggered: executes at market
            if order.action == "BUY" and net >= order.aux_price - 1e-9:
                return legs
            if order.action == "SELL" and net <= order.aux_price + 1e-9:
                return legs
            return None
        if order.action == "BUY" and net <= order.limit_price + 1e-9:
            return legs
        if order.action == "SELL" and net >= order.limit_price - 1e-9:
            return legs
        return None

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

    # ---- whatIf
    def what_if(self, order: LiveOrder) -> dict:
        sign = 1.0 if order.action == "BUY" else -1.0
        if order.is_combo:
            delta = {info.con_id: sign * (1 if a == "BUY" else -1) * r * order.quantity
                     for info, r, a in order.legs}
            commission = sum(commission_for(info, r * order.quantity) for info, r, _ in order.legs)
        else:
            delta = {order.contract.con_id: sign * order.quantity}
            commission = commission_for(order.contract, order.quantity)
        init_before, maint_before = self.account.margin()
        init_after, maint_after = self.account.margin(delta)
        equity = self.account.summary()["EquityWithLoanValue"]
        equity_after = equity - commission        # trading at the mark changes only fees
        return {
            "init_before": init_before, "maint_before": maint_before, "equity_before": equity,
            "init_change": init_after - init_before, "maint_change": maint_after - maint_before,
            "equity_change": equity_after - equity,
            "init_after": init_after, "maint_after": maint_after, "equity_after": equity_after,
            "commission": commission, "min_commission": commission, "max_commission": commission,
        }

    # ---- views
    def _now_text(self) -> str:
        return self.market.clock.now().strftime("%Y%m%d %H:%M:%S UTC")

    def public_orders(self) -> list[SimOrder]:
        return [o.public() for o in self.orders.values()]
