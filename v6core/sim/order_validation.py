"""Order validation for the order engine (a mixin of `OrderEngine`), answered with IB's error codes.

A request is refused before it becomes an order: unknown contracts, bad combo legs, actions,
quantities, order types, prices off the tick grid, a parent that is not working, a foreign account.
"""

from __future__ import annotations

from v6core.sim.brackets import WORKING
from v6core.sim.chains import option_tick
from v6core.sim.market import on_tick_grid
from v6core.sim.order_records import OrderRequest

ERR_NO_SECURITY = (200, "No security definition has been found for the request")
ERR_TICK = (110, "The price does not conform to the minimum price variation for this contract.")
ERR_REJECTED = 201
ERR_CANCELLED = (202, "Order Canceled - reason:")
ERR_DUPLICATE_ID = (103, "Duplicate order id")
ERR_CANCEL_NOT_FOUND = 10147
ERR_NOT_CANCELLABLE = (161, "Cancel attempted when order is not in a cancellable state.")


def _rejected(reason: str) -> tuple[int, str]:
    return ERR_REJECTED, f"Order rejected - reason:{reason}"


class OrderValidation:
    """Needs `orders` ({(client_id, order_id): LiveOrder}) and `account`."""

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
