"""Deterministic PortfolioSnapshots for lake tests and the lake benchmark (no simulator needed).

Snapshot i is built at T0 + i minutes. Positions move with i so that consecutive snapshots differ
in every way a diff must report: SPY shares resize every third snapshot, the TSLA put spread is
closed on snapshots where i % 4 == 3, and a QQQ call is opened from i = 2 on.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from v6core.models import (
    AccountValues, ConnectionStatus, ConnState, ContractInfo, GreekSource, Greeks, Leg,
    PortfolioSnapshot, PositionGreeks, Strategy,
)

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
STEP = timedelta(minutes=1)
SPOT = {"SPY": 600.0, "AAPL": 230.0, "TSLA": 340.0, "QQQ": 520.0}
BETA = {"SPY": 1.0, "AAPL": 1.25, "TSLA": 2.0, "QQQ": 1.15}
EXPIRY = date(2026, 12, 18)


def _leg(con_id: int, symbol: str, qty: float, i: int, strategy_id: str, *, strike: float | None = None,
         right: str | None = None, delta: float = 1.0, gamma: float = 0.0, theta: float = 0.0,
         vega: float = 0.0, mark: float | None = None, avg: float = 1.0) -> Leg:
    option = right is not None
    mult = 100.0 if option else 1.0
    spot = SPOT[symbol] * (1 + 0.001 * (i % 7))
    contract = ContractInfo(con_id=con_id, symbol=symbol, sec_type="OPT" if option else "STK",
                            expiry=EXPIRY if option else None, strike=strike, right=right,
                            multiplier=mult, local_symbol=f"{symbol}{con_id}")
    price = (mark if mark is not None else spot) + 0.01 * i
    greeks = Greeks(delta, gamma, theta + 0.001 * i, vega, iv=0.2 + 0.001 * i if option else None,
                    und_price=spot, source=GreekSource.IB if option else GreekSource.STOCK)
    scale = qty * mult
    pos_delta = greeks.delta * scale
    pg = PositionGreeks(pos_delta, greeks.gamma * scale, greeks.theta * scale, greeks.vega * scale,
                        pos_delta * spot, pos_delta * BETA[symbol] * spot / SPOT["SPY"])
    mv = price * scale
    return Leg(account="DU123456", contract=contract, quantity=qty, avg_price=avg, mark=price,
               market_value=mv, unrealized_pnl=mv - avg * scale, realized_pnl=0.0,
               daily_pnl=0.5 * i - 3.0, dte=28 if option else None, greeks=greeks, position_greeks=pg,
               quote_time=T0 + i * STEP - timedelta(seconds=2), strategy_id=strategy_id,
               flags=("stale quote",) if (option and i % 5 == 4) else (), stale=bool(option and i % 5 == 4))


def legs_at(i: int) -> tuple[Leg, ...]:
    legs = [_leg(756733, "SPY", 100 + 10 * (i // 3), i, "stock:SPY", avg=590.0)]
    legs += [
        _leg(1001, "AAPL", -1, i, "iron condor:AAPL", strike=210, right="P", delta=-0.12, gamma=0.01, theta=-0.03, vega=0.15, mark=1.1),
        _leg(1002, "AAPL", 1, i, "iron condor:AAPL", strike=200, right="P", delta=-0.07, gamma=0.007, theta=-0.02, vega=0.11, mark=0.6),
        _leg(1003, "AAPL", -1, i, "iron condor:AAPL", strike=250, right="C", delta=0.15, gamma=0.012, theta=-0.035, vega=0.16, mark=1.3),
        _leg(1004, "AAPL", 1, i, "iron condor:AAPL", strike=260, right="C", delta=0.08, gamma=0.008, theta=-0.022, vega=0.12, mark=0.7),
    ]
    if i % 4 != 3:
        legs += [
            _leg(2001, "TSLA", -2, i, "credit vertical:TSLA", strike=300, right="P", delta=-0.2, gamma=0.006, theta=-0.2, vega=0.3, mark=4.0),
            _leg(2002, "TSLA", 2, i, "credit vertical:TSLA", strike=290, right="P", delta=-0.15, gamma=0.005, theta=-0.16, vega=0.26, mark=2.9),
        ]
    if i >= 2:
        legs.append(_leg(3001, "QQQ", 3, i, "long call:QQQ", strike=530, right="C", delta=0.45, gamma=0.02, theta=-0.25, vega=0.6, mark=9.0))
    return tuple(legs)


def snapshot_at(i: int, *, seq: int | None = None, t0: datetime = T0, legs: tuple[Leg, ...] | None = None,
                state: ConnState = ConnState.CONNECTED) -> PortfolioSnapshot:
    legs = legs_at(i) if legs is None else legs
    kinds = {"stock:SPY": "stock", "iron condor:AAPL": "iron condor",
             "credit vertical:TSLA": "credit vertical", "long call:QQQ": "long call"}
    strategies = []
    for sid in dict.fromkeys(leg.strategy_id for leg in legs):
        members = [leg for leg in legs if leg.strategy_id == sid]
        g = PositionGreeks()
        for leg in members:
            g = g + leg.position_greeks
        strategies.append(Strategy(sid, kinds.get(sid, "custom"), members[0].contract.symbol,
                                   tuple(m.contract.con_id for m in members), g,
                                   sum(m.unrealized_pnl or 0 for m in members),
                                   sum(m.daily_pnl or 0 for m in members),
                                   sum(m.market_value or 0 for m in members)))
    totals = PositionGreeks()
    for leg in legs:
        totals = totals + leg.position_greeks
    built = t0 + i * STEP
    account = AccountValues(account="DU123456", net_liquidation=1_000_000.0 + 250.0 * i,
                            total_cash=400_000.0 - 10.0 * i, buying_power=2_000_000.0,
                            init_margin=120_000.0 + i, maint_margin=100_000.0, daily_pnl=0.5 * i,
                            unrealized_pnl=sum(leg.unrealized_pnl or 0 for leg in legs),
                            realized_pnl=0.0, updated_at=built)
    return PortfolioSnapshot(
        seq=i if seq is None else seq, built_at=built,
        connection=ConnectionStatus(state=state, account="DU123456"), account=account,
        legs=legs, strategies=tuple(strategies), totals=totals,
        unrealized_pnl=sum(leg.unrealized_pnl or 0 for leg in legs), positions_version=i,
    )
