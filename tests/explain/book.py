"""Synthetic books priced exactly by Black-Scholes, written as real Delta tables.

Each snapshot marks every option at `bs_greeks` of its own spot, IV and time to expiry (the same
16:00 New York close `v6core.greeks.year_fraction` uses) and records those Greeks, so the true
P&L between two snapshots is known in closed form. Stocks are marked at the spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from v6core.greeks import bs_greeks, year_fraction
from v6core.lake import AuditLog, FillRow, LakeWriter
from v6core.models import (
    AccountValues, ConnectionStatus, ConnState, ContractInfo, Greeks, GreekSource, Leg,
    PortfolioSnapshot, PositionGreeks, Strategy,
)

UTC = timezone.utc
RATE = 0.04
EXPIRY = date(2026, 12, 18)


@dataclass(frozen=True)
class Holding:
    con_id: int
    symbol: str
    quantity: float
    strike: float | None = None
    right: str | None = None          # None: stock
    expiry: date = EXPIRY
    strategy_id: str = ""

    @property
    def is_option(self) -> bool:
        return self.right is not None

    @property
    def multiplier(self) -> float:
        return 100.0 if self.is_option else 1.0


@dataclass(frozen=True)
class Market:
    """What prices a book at one moment: a spot per symbol, an IV per symbol."""

    when: datetime
    spots: dict[str, float]
    ivs: dict[str, float]


def price(h: Holding, market: Market) -> dict[str, float]:
    """Per-share price and per-contract Greeks of a holding (IB units)."""
    spot = market.spots[h.symbol]
    if not h.is_option:
        return {"price": spot, "delta": 1.0, "gamma": 0.0, "theta": 0.0, "vega": 0.0}
    t = year_fraction(h.expiry, market.when)
    g = bs_greeks([spot], [h.strike], [t], RATE, [market.ivs[h.symbol]], [h.right == "C"])
    return {k: float(v[0]) for k, v in g.items()}


def leg(h: Holding, market: Market, avg_price: float | None = None) -> Leg:
    p = price(h, market)
    spot = market.spots[h.symbol]
    contract = ContractInfo(con_id=h.con_id, symbol=h.symbol, sec_type="OPT" if h.is_option else "STK",
                            expiry=h.expiry if h.is_option else None, strike=h.strike, right=h.right,
                            multiplier=h.multiplier,
                            local_symbol=f"{h.symbol} {h.expiry:%y%m%d}{h.right}{h.strike:08.3f}"
                            if h.is_option else h.symbol)
    greeks = Greeks(p["delta"], p["gamma"], p["theta"], p["vega"],
                    iv=market.ivs[h.symbol] if h.is_option else None, und_price=spot,
                    source=GreekSource.IB if h.is_option else GreekSource.STOCK)
    size = h.quantity * h.multiplier
    avg = p["price"] if avg_price is None else avg_price
    value = p["price"] * size
    return Leg(account="DU1", contract=contract, quantity=h.quantity, avg_price=avg, mark=p["price"],
               market_value=value, unrealized_pnl=value - avg * size, realized_pnl=0.0, daily_pnl=0.0,
               dte=(h.expiry - market.when.date()).days if h.is_option else None, greeks=greeks,
               position_greeks=PositionGreeks(p["delta"] * size, p["gamma"] * size, p["theta"] * size,
                                              p["vega"] * size, p["delta"] * size * spot, 0.0),
               quote_time=market.when, strategy_id=h.strategy_id or f"{h.symbol}:{h.con_id}")


def snapshot(seq: int, holdings: list[Holding], market: Market,
             avg_prices: dict[int, float] | None = None) -> PortfolioSnapshot:
    avg_prices = avg_prices or {}
    legs = tuple(leg(h, market, avg_prices.get(h.con_id)) for h in holdings if h.quantity)
    strategies = tuple(
        Strategy(sid, sid.split(":")[0] if ":" in sid else "custom", next(l.contract.symbol for l in legs if l.strategy_id == sid),
                 tuple(l.contract.con_id for l in legs if l.strategy_id == sid), PositionGreeks(), 0.0, 0.0, 0.0)
        for sid in dict.fromkeys(l.strategy_id for l in legs))
    return PortfolioSnapshot(
        seq=seq, built_at=market.when, connection=ConnectionStatus(state=ConnState.CONNECTED, account="DU1"),
        account=AccountValues(account="DU1", net_liquidation=100_000.0, updated_at=market.when),
        legs=legs, strategies=strategies, totals=PositionGreeks(),
        unrealized_pnl=sum(l.unrealized_pnl or 0.0 for l in legs), positions_version=seq)


def write_history(root: Path, points: list[tuple[list[Holding], Market]], fills: list[FillRow] = (),
                  avg_prices: dict[int, float] | None = None) -> None:
    """One portfolio version per point (version i = point i), then the fills, as real Delta tables.
    `avg_prices` (per con_id) sets the cost basis, hence the recorded unrealized P&L."""
    writer = LakeWriter(root)
    try:
        for i, (holdings, market) in enumerate(points):
            writer.write_snapshot(snapshot(i, holdings, market, avg_prices))
    finally:
        writer.stop()
    if fills:
        AuditLog(root).append_fills(list(fills))


def fill(when: datetime, h: Holding, side: str, quantity: float, price_: float, commission: float = 0.0,
         realized: float | None = None, exec_id: str | None = None) -> FillRow:
    return FillRow(ts=when, exec_id=exec_id or f"{h.con_id}-{when:%H%M%S}-{side}", ticket_id="t", order_id=1,
                   perm_id=1, con_id=h.con_id, symbol=h.symbol, local_symbol=str(h.con_id), side=side,
                   quantity=quantity, price=price_, commission=commission, realized_pnl=realized, account="DU1")
