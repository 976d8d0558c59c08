"""Order pricing for the order engine (a mixin of `OrderEngine`): executable prices and whatIf.

Each leg trades at the side of the quote it takes (a buy at the ask, a sell at the bid); an order
is marketable when its net price reaches its limit (or its stop). whatIf reports the margin and
commission an order would cost, without placing it.
"""

from __future__ import annotations

from v6core.models import ContractInfo
from v6core.sim.account import commission_for
from v6core.sim.order_records import LiveOrder


class OrderPricing:
    """Needs `market` and `account`."""

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
