"""Brackets and OCA groups for the order engine (a mixin of `OrderEngine`), as IB runs them:
a child (`parentId`) works only once its parent has filled; the order of a group sent with
`transmit=1` transmits the orders held with it; children of one parent, and orders sharing an
`ocaGroup`, cancel each other when one fills (the engine calls `_oca_peers` after a fill)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from v6core.sim.orders import LiveOrder

WORKING = ("PreSubmitted", "Submitted", "PendingCancel")


class BracketRules:
    """Needs `orders` ({(client_id, order_id): LiveOrder}), `sink` and `_try_fill`."""

    def _parent(self, order: LiveOrder) -> LiveOrder | None:
        return self.orders.get((order.client_id, order.parent_id)) if order.parent_id else None

    def _children(self, order: LiveOrder) -> list[LiveOrder]:
        return [o for o in self.orders.values()
                if o.parent_id == order.order_id and o.client_id == order.client_id and o is not order]

    def _transmit_children(self, parent: LiveOrder) -> None:
        for child in self._children(parent):
            child.transmitted = True

    def _live(self, order: LiveOrder) -> bool:
        """Transmitted and not waiting for a parent to fill: the order may execute."""
        parent = self._parent(order)
        return order.transmitted and (parent is None or parent.status == "Filled")

    def _activate(self, child: LiveOrder) -> None:
        """A child whose parent has filled starts working."""
        if child.status != "PreSubmitted" or not self._live(child):
            return
        child.status = "Submitted"
        self.sink.order_status(child)
        self._try_fill(child)

    def _oca_peers(self, order: LiveOrder) -> list[LiveOrder]:
        """Orders cancelled when `order` fills: its OCA group, and its bracket siblings."""
        return [o for o in self.orders.values() if o is not order and o.status in WORKING and (
            (order.oca_group and o.oca_group == order.oca_group)
            or (order.parent_id and o.parent_id == order.parent_id and o.client_id == order.client_id))]
