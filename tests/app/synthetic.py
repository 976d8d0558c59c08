"""Synthetic portfolio snapshots and a services stand-in, for page unit tests and bench_pages only.

The Done-when AppTests run against the real runtime and simulator (see test_pages_sim.py); these
stand-ins let the page code be exercised with exact, hand-built numbers and at 500 legs.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from v6core.config import Settings, load_settings
from v6core.models import (
    AccountValues, Alert, ConnectionStatus, ConnState, ContractInfo, Greeks, GreekSource, Leg,
    PortfolioSnapshot, PositionGreeks, Strategy, UnderlyingSummary,
)

SPOTS = {"SPY": 590.0, "QQQ": 505.0, "IWM": 232.0, "AAPL": 228.0, "TSLA": 345.0}
BETAS = {"SPY": 1.0, "QQQ": 1.15, "IWM": 1.2, "AAPL": 1.25, "TSLA": 2.0}
NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)


def _leg(con_id: int, symbol: str, expiry: date, strike: float, right: str, qty: int,
         strategy_id: str, now: datetime, stale: bool = False) -> Leg:
    spot = SPOTS[symbol]
    moneyness = (spot - strike) / spot
    delta = max(-0.99, min(0.99, (0.5 + 3 * moneyness) if right == "C" else (-0.5 + 3 * moneyness)))
    greeks = Greeks(delta=delta, gamma=0.01, theta=-0.12, vega=0.35, iv=0.21, und_price=spot,
                    source=GreekSource.COMPUTED if con_id % 7 == 0 else GreekSource.IB)
    mult = 100.0
    pos_delta = delta * qty * mult
    pos = PositionGreeks(pos_delta, 0.01 * qty * mult, -0.12 * qty * mult, 0.35 * qty * mult,
                         pos_delta * spot, pos_delta * BETAS[symbol] * spot / SPOTS["SPY"])
    avg, mark = 2.5 + (con_id % 5) * 0.4, 2.3 + (con_id % 3) * 0.5
    contract = ContractInfo(con_id=con_id, symbol=symbol, sec_type="OPT", expiry=expiry, strike=strike,
                            right=right, multiplier=mult, local_symbol=f"{symbol}{con_id}")
    return Leg(account="DU123456", contract=contract, quantity=qty, avg_price=avg, mark=mark,
               market_value=mark * qty * mult, unrealized_pnl=(mark - avg) * qty * mult, realized_pnl=0.0,
               daily_pnl=(con_id % 11 - 5) * 3.0, dte=(expiry - now.date()).days, greeks=greeks,
               position_greeks=pos, quote_time=now - timedelta(seconds=2 + con_id % 4),
               strategy_id=strategy_id, stale=stale)


def _stock_leg(con_id: int, symbol: str, qty: int, now: datetime) -> Leg:
    spot = SPOTS[symbol]
    pos = PositionGreeks(qty, 0.0, 0.0, 0.0, qty * spot, qty * BETAS[symbol] * spot / SPOTS["SPY"])
    contract = ContractInfo(con_id=con_id, symbol=symbol, sec_type="STK", local_symbol=symbol)
    return Leg(account="DU123456", contract=contract, quantity=qty, avg_price=spot - 1.0, mark=spot,
               market_value=qty * spot, unrealized_pnl=qty * 1.0, realized_pnl=0.0, daily_pnl=qty * 0.5,
               dte=None, greeks=Greeks(1.0, 0.0, 0.0, 0.0, source=GreekSource.STOCK), position_greeks=pos,
               quote_time=now - timedelta(seconds=1))


def synthetic_snapshot(n_legs: int = 48, now: datetime = NOW, state: ConnState = ConnState.CONNECTED,
                       seq: int = 1) -> PortfolioSnapshot:
    """Iron condors (4 legs each) over five underlyings and a few expiries; the remainder of
    `n_legs` as ungrouped stock positions."""
    legs: list[Leg] = []
    strategies: list[Strategy] = []
    symbols = list(SPOTS)
    for n in range(n_legs // 4):
        symbol = symbols[n % len(symbols)]
        spot = SPOTS[symbol]
        expiry = now.date() + timedelta(days=7 * (1 + n % 6))
        base = round(spot * (0.9 + 0.002 * n))
        sid = f"iron condor:{symbol}:{n}"
        condor = [
            _leg(1000 + 4 * n, symbol, expiry, base - 10, "P", 1, sid, now),
            _leg(1001 + 4 * n, symbol, expiry, base, "P", -1 - n % 2, sid, now, stale=n % 9 == 0),
            _leg(1002 + 4 * n, symbol, expiry, base + 40, "C", -1, sid, now),
            _leg(1003 + 4 * n, symbol, expiry, base + 50, "C", 1, sid, now),
        ]
        legs.extend(condor)
        strategies.append(Strategy(
            strategy_id=sid, kind="iron condor", underlying=symbol, con_ids=tuple(l.contract.con_id for l in condor),
            greeks=sum((l.position_greeks for l in condor), PositionGreeks()),
            unrealized_pnl=sum(l.unrealized_pnl for l in condor), daily_pnl=sum(l.daily_pnl for l in condor),
            market_value=sum(l.market_value for l in condor),
            explanation="short put spread and short call spread, same expiry",
        ))
    for k in range(n_legs - len(legs)):        # the remainder as ungrouped stock positions
        symbol = symbols[k % len(symbols)]
        legs.append(_stock_leg(900 + k, symbol, 100 * (k + 1), now))
    underlyings = []
    for symbol in symbols:
        mine = [l for l in legs if l.contract.symbol == symbol]
        if mine:
            underlyings.append(UnderlyingSummary(
                symbol=symbol, spot=SPOTS[symbol], beta=BETAS[symbol],
                greeks=sum((l.position_greeks for l in mine), PositionGreeks()),
                unrealized_pnl=sum(l.unrealized_pnl for l in mine), daily_pnl=sum(l.daily_pnl for l in mine),
                market_value=sum(l.market_value for l in mine), quote_time=now))
    totals = sum((u.greeks for u in underlyings), PositionGreeks())
    account = AccountValues(account="DU123456", net_liquidation=1_234_567.89, total_cash=900_000.0,
                            buying_power=2_500_000.0, init_margin=123_456.0, maint_margin=100_000.0,
                            daily_pnl=-321.5, unrealized_pnl=sum(l.unrealized_pnl for l in legs),
                            realized_pnl=150.0, updated_at=now)
    connection = ConnectionStatus(state=state, mode="sim", host="127.0.0.1", port=4002, account="DU123456",
                                  connected_since=now - timedelta(minutes=5), last_message_at=now)
    return PortfolioSnapshot(
        seq=seq, built_at=now, connection=connection, account=account, legs=tuple(legs),
        strategies=tuple(strategies), underlyings=tuple(underlyings), totals=totals,
        unrealized_pnl=account.unrealized_pnl, realized_pnl=150.0, daily_pnl=-321.5,
        alerts=(Alert("warning", "Delta limit breached: 512 > 500"),), positions_version=1,
    )


class StandInRuntime:
    """Serves whatever snapshot the test or bench sets; no gateway, no thread."""

    def __init__(self, snapshot: PortfolioSnapshot) -> None:
        self.current = snapshot
        self.sim = None

    def snapshot(self) -> PortfolioSnapshot:
        return self.current


class StandInDesk:
    """Enough of OrderDesk for the Positions page to draw its close buttons (nothing is drafted)."""

    trading_available = True


@dataclass
class StandInServices:
    settings: Settings
    runtime: StandInRuntime
    orders: StandInDesk
    lake_error: str = ""


def install_stand_in(snapshot: PortfolioSnapshot, **settings) -> StandInServices:
    """Make `pages.components.common.get_services()` return a stand-in (fake `v6core.services` module)."""
    from pages.components import common

    services = StandInServices(settings=load_settings(**settings), runtime=StandInRuntime(snapshot),
                               orders=StandInDesk())
    module = types.ModuleType("v6core.services")
    module.start_services = lambda _settings: services
    module.is_v6_stand_in = True
    sys.modules["v6core.services"] = module
    common.get_services.clear()
    return services


def remove_stand_in() -> None:
    from pages.components import common

    if getattr(sys.modules.get("v6core.services"), "is_v6_stand_in", False):
        del sys.modules["v6core.services"]     # the real module is imported again on next use
    common.get_services.clear()


def with_state(snapshot: PortfolioSnapshot, **connection) -> PortfolioSnapshot:
    return replace(snapshot, connection=replace(snapshot.connection, **connection))
