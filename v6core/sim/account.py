"""The paper account: cash, holdings (IB-style average cost), realized P&L and margin."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from v6core.models import ContractInfo
from v6core.sim.chains import SPEC_BY_SYMBOL, option_tick
from v6core.sim.market import RISK_FREE_RATE, Market, black_scholes, round_to_tick

STARTING_CASH = 250_000.0
BUYING_POWER_LEVERAGE = 4.0


@dataclass(slots=True)
class Holding:
    contract: ContractInfo
    quantity: float
    avg_cost: float            # IB style: per contract, multiplier and opening commissions included
    realized: float = 0.0
    start_quantity: float = 0.0   # held at the previous close (the seeded book)
    day_cash: float = 0.0         # paid today for trades in this contract, commissions included


@dataclass(frozen=True, slots=True)
class SimPosition:
    contract: ContractInfo
    quantity: float
    avg_cost: float


def commission_for(info: ContractInfo, quantity: float) -> float:
    """IB Pro fixed-style schedule: stock $0.005/share, options $0.65/contract, $1 minimum."""
    qty = abs(quantity)
    if info.sec_type == "STK":
        return round(max(1.0, 0.005 * qty), 2)
    return round(max(1.0, 0.65 * qty), 2)


class Account:
    def __init__(self, account_id: str, market: Market, seed: int) -> None:
        self.account_id = account_id
        self.market = market
        self.cash = STARTING_CASH
        self.holdings: dict[int, Holding] = {}
        self._seed_portfolio(random.Random(seed + 2))
        self.seeded = self.positions()

    # ---- seeded book
    def _seed_portfolio(self, rng: random.Random) -> None:
        u = self.market.universe
        spots = self.market.spots

        def opt(symbol: str, days: int, moneyness: float, right: str) -> ContractInfo:
            expiry = u.nearest_expiry(symbol, days)
            strike = u.nearest_strike(symbol, spots[symbol] * moneyness)
            info = u.option(symbol, expiry, strike, right)
            assert info is not None
            return info

        def add(info: ContractInfo, qty: float) -> None:
            assert info.con_id not in self.holdings, f"seeded twice: {info.label}"
            fair = self.market.mark(info)
            # opened earlier at a different price: P&L is not zero from the start
            paid = fair * rng.uniform(0.75, 1.3)
            if info.sec_type == "OPT":
                paid = max(0.05, round_to_tick(paid, option_tick(info.symbol, paid)))
                avg = paid * info.multiplier + commission_for(info, qty) / abs(qty)
            else:
                paid = round(paid, 2)
                avg = paid + commission_for(info, qty) / abs(qty)
            self.holdings[info.con_id] = Holding(info, qty, round(avg, 4), start_quantity=qty)
            self.cash -= avg * qty

        # SPY iron condor x2
        spy_days = 45
        add(opt("SPY", spy_days, 0.93, "P"), 2)
        add(opt("SPY", spy_days, 0.95, "P"), -2)
        add(opt("SPY", spy_days, 1.05, "C"), -2)
        add(opt("SPY", spy_days, 1.07, "C"), 2)
        # QQQ put credit vertical x3
        add(opt("QQQ", 30, 0.97, "P"), -3)
        add(opt("QQQ", 30, 0.95, "P"), 3)
        # IWM call calendar x2
        add(opt("IWM", 20, 1.0, "C"), -2)
        add(opt("IWM", 55, 1.0, "C"), 2)
        # AAPL call butterfly 1x-2x1 (10 wide)
        add(opt("AAPL", 30, 0.956, "C"), 1)
        add(opt("AAPL", 30, 1.0, "C"), -2)
        add(opt("AAPL", 30, 1.044, "C"), 1)
        # TSLA short strangle x1
        add(opt("TSLA", 30, 0.88, "P"), -1)
        add(opt("TSLA", 30, 1.12, "C"), -1)
        # 100 AAPL and a covered call on them
        add(u.stock("AAPL"), 100)
        add(opt("AAPL", 10, 1.06, "C"), -1)     # >= a week from the butterfly's expiry

    # ---- fills
    def apply_fill(self, info: ContractInfo, signed_qty: float, price: float,
                   commission: float) -> float:
        """Books one execution; returns the realized P&L it produced (commission included)."""
        mult = self.multiplier(info)
        cash_out = signed_qty * price * mult + commission
        self.cash -= cash_out
        held = self.holdings.get(info.con_id)
        if held is None:
            held = self.holdings[info.con_id] = Holding(info, 0.0, 0.0)
        held.day_cash += cash_out
        if held.quantity == 0 or math.copysign(1, held.quantity) == math.copysign(1, signed_qty):
            new_qty = held.quantity + signed_qty
            held.avg_cost = (held.avg_cost * held.quantity + cash_out) / new_qty
            held.quantity = new_qty
            return 0.0
        closing = min(abs(signed_qty), abs(held.quantity)) * math.copysign(1, signed_qty)
        # closing a long (closing < 0) realizes (price - avg) per unit; a short the reverse
        realized = -closing * (price * mult - held.avg_cost) - commission
        held.realized += realized
        held.quantity += closing
        rest = signed_qty - closing
        if rest:
            held.quantity = rest
            held.avg_cost = price * mult
        return realized

    # ---- valuation
    def multiplier(self, info: ContractInfo) -> float:
        return info.multiplier if info.sec_type == "OPT" else 1.0

    def positions(self) -> list[SimPosition]:
        return [SimPosition(h.contract, h.quantity, h.avg_cost) for h in self.holdings.values()]

    def portfolio_row(self, h: Holding) -> dict:
        mark = self.market.mark(h.contract)
        mult = self.multiplier(h.contract)
        value = mark * h.quantity * mult
        return {
            "market_price": mark,
            "market_value": value,
            "unrealized": value - h.avg_cost * h.quantity,
            "daily": self.daily_pnl(h, mark),
        }

    def daily_pnl(self, h: Holding, mark: float | None = None) -> float:
        """Value now - value at the previous close - cash paid for today's trades."""
        mult = self.multiplier(h.contract)
        mark = self.market.mark(h.contract) if mark is None else mark
        at_close = self.market.close_price(h.contract) * h.start_quantity * mult if h.start_quantity else 0.0
        return mark * h.quantity * mult - at_close - h.day_cash

    def margin(self, extra: dict[int, float] | None = None) -> tuple[float, float]:
        """Risk-based (portfolio-margin style) requirement: worst loss over spot scenarios."""
        book: dict[int, float] = {cid: h.quantity for cid, h in self.holdings.items() if h.quantity}
        for cid, qty in (extra or {}).items():
            book[cid] = book.get(cid, 0.0) + qty
        by_symbol: dict[str, list[tuple[ContractInfo, float]]] = {}
        for cid, qty in book.items():
            if qty:
                info = self.market.universe.by_id[cid]
                by_symbol.setdefault(info.symbol, []).append((info, qty))
        requirement = 0.0
        for symbol, legs in by_symbol.items():
            spec = SPEC_BY_SYMBOL[symbol]
            spot = self.market.spots[symbol]
            span = min(0.3, max(0.08, 2.5 * spec.vol * math.sqrt(30 / 365)))
            now = [self._value(info, qty, spot) for info, qty in legs]
            worst = 0.0
            for step in range(-4, 5):
                moved = spot * (1 + span * step / 4)
                pnl = sum(self._value(info, qty, moved) for info, qty in legs) - sum(now)
                worst = min(worst, pnl)
            short_contracts = sum(-qty for info, qty in legs if info.sec_type == "OPT" and qty < 0)
            requirement += -worst + 37.5 * short_contracts
        init = round(requirement * 1.1, 2)
        return init, round(requirement, 2)

    def _value(self, info: ContractInfo, qty: float, spot: float) -> float:
        if info.sec_type == "STK":
            return spot * qty
        t = self.market.t_years(info.expiry)
        iv = self.market.implied_vol(info.symbol, info.strike, t, spot)
        price = black_scholes(spot, info.strike, t, RISK_FREE_RATE, iv, info.right == "C")["price"]
        return price * qty * info.multiplier

    def summary(self) -> dict[str, float]:
        gross = 0.0
        net_value = 0.0
        unrealized = 0.0
        daily = 0.0
        for h in self.holdings.values():
            if not h.quantity:
                daily += self.daily_pnl(h, 0.0)
                continue
            row = self.portfolio_row(h)
            net_value += row["market_value"]
            gross += abs(row["market_value"])
            unrealized += row["unrealized"]
            daily += row["daily"]
        init, maint = self.margin()
        net_liq = self.cash + net_value
        return {
            "NetLiquidation": net_liq,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "EquityWithLoanValue": net_liq,
            "GrossPositionValue": gross,
            "InitMarginReq": init,
            "MaintMarginReq": maint,
            "FullInitMarginReq": init,
            "FullMaintMarginReq": maint,
            "AvailableFunds": net_liq - init,
            "ExcessLiquidity": net_liq - maint,
            "FullAvailableFunds": net_liq - init,
            "FullExcessLiquidity": net_liq - maint,
            "BuyingPower": max(0.0, (net_liq - init) * BUYING_POWER_LEVERAGE),
            "Cushion": (net_liq - maint) / net_liq if net_liq else 0.0,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.realized_today(),
            "DailyPnL": daily,
        }

    def realized_today(self) -> float:
        return sum(h.realized for h in self.holdings.values())
