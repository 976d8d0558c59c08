"""Order requests: place (incl. what-if), cancel, global cancel, open/completed orders, executions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.models import ContractInfo
from v6core.sim import messages as msg
from v6core.sim import versions
from v6core.sim.fields import Fields
from v6core.sim.orders import LiveOrder, OrderRequest

if TYPE_CHECKING:
    from v6core.sim.session import Session


class OrderRequests:
    """Mixin of Session: orders go to the shared OrderEngine; its answers come back via SimServer."""

    def place_order(self, f: Fields) -> None:
        order_id = f.int()
        spec = f.contract()
        f.skip(2)
        action = f.text().upper()
        quantity = f.float()
        order_type = f.text().upper()
        limit_price = f.float()
        aux_price = f.float()
        tif = f.text()
        oca_group = f.text()
        account = f.text()
        f.skip(2)
        order_ref = f.text()
        transmit = f.text() != "0"
        parent_id = f.int()
        f.skip(6)                         # blockOrder .. hidden
        legs: list[tuple[ContractInfo | None, int, str]] = []
        is_bag = spec["sec_type"].upper() == "BAG"
        if is_bag:
            for _ in range(f.int()):
                con_id, ratio, leg_action = f.int(), f.int(), f.text().upper()
                f.skip(5)
                legs.append((self.server.market.universe.by_id.get(con_id), ratio, leg_action))
            for _ in range(f.int()):
                f.text()
            f.skip(2 * f.int())
        f.skip(7)                         # sharesAllocation .. faPercentage
        if self.version < versions.FA_PROFILE_DESUPPORT:
            f.skip(1)                     # faProfile
        f.skip(22)                        # modelCode .. volatilityType
        delta_neutral_type = f.text()
        f.skip(1)                         # deltaNeutralAuxPrice
        if delta_neutral_type:
            f.skip(8)
        f.skip(6)                         # continuousUpdate .. scaleSubsLevelSize
        increment = f.float()
        if increment is not None and 0 < increment:
            f.skip(7)
        f.skip(3)                         # scaleTable, activeStartTime, activeStopTime
        if f.text():                      # hedgeType
            f.skip(1)
        f.skip(4)                         # optOutSmartRouting .. notHeld
        if f.bool():                      # delta-neutral contract
            f.skip(3)
        if f.text():                      # algoStrategy
            f.skip(2 * f.int())
        f.skip(1)                         # algoId
        what_if = f.bool()
        contract = None if is_bag else self.server.resolve(spec)
        request = OrderRequest(
            order_id=order_id, contract=contract, sec_type="BAG" if is_bag else (
                contract.sec_type if contract else spec["sec_type"]),
            symbol=spec["symbol"], action=action, quantity=quantity, order_type=order_type,
            limit_price=limit_price, aux_price=aux_price, tif=tif, account=account,
            order_ref=order_ref, transmit=transmit, what_if=what_if, legs=legs,
            parent_id=parent_id, oca_group=oca_group,
        )
        self.server.engine.place(self.client_id, request)

    def cancel_order(self, f: Fields) -> None:
        f.skip()
        self.server.engine.cancel(self.client_id, f.int())

    def req_global_cancel(self, f: Fields) -> None:
        self.server.engine.global_cancel()

    def _send_open(self, orders: list[LiveOrder]) -> None:
        for order in orders:
            self.send(msg.open_order(order, None, self.version))
            self.send(msg.order_status(order))
        self.send([53, 1])

    def req_open_orders(self, f: Fields) -> None:
        self._send_open([o for o in self.server.engine.orders.values()
                         if o.status in ("PreSubmitted", "Submitted", "PendingCancel")
                         and (self.client_id == 0 or o.client_id == self.client_id)])

    def req_all_open_orders(self, f: Fields) -> None:
        self._send_open([o for o in self.server.engine.orders.values()
                         if o.status in ("PreSubmitted", "Submitted", "PendingCancel")])

    def req_completed_orders(self, f: Fields) -> None:
        for order in self.server.engine.orders.values():
            if order.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
                self.send(msg.completed_order(order, self.version))
        self.send([102])

    def req_executions(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        client_filter = f.int()
        account = f.text()
        f.text()
        symbol, sec_type, _exchange, side = (f.text().upper() for _ in range(4))
        for fill in self.server.engine.fills:
            if client_filter and fill.client_id != client_filter:
                continue
            if account and account != fill.account:
                continue
            if symbol and fill.contract.symbol != symbol:
                continue
            if sec_type and fill.contract.sec_type != sec_type:
                continue
            if side and side[0] != fill.side[0]:          # BUY/BOT, SELL/SLD
                continue
            self.send(msg.execution(req_id, fill, self.version))
            self.send(msg.commission_report(fill))
        self.send([55, 1, req_id])


HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    3: OrderRequests.place_order, 4: OrderRequests.cancel_order,
    58: OrderRequests.req_global_cancel, 5: OrderRequests.req_open_orders,
    16: OrderRequests.req_all_open_orders, 99: OrderRequests.req_completed_orders,
    7: OrderRequests.req_executions,
}
