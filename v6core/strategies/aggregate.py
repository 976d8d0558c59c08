"""Strategies with their Greeks and P&L summed from the legs, and legs tagged with their strategy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from v6core.models import Leg, PositionGreeks, Strategy
from v6core.strategies.book import EPS
from v6core.strategies.matcher import _plan, _structure


def _counts_in_totals(leg: Leg) -> bool:
    return leg.greeks is not None and not leg.flags


def _or_zero(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else 0.0


def _aggregate(legs: Sequence[Leg]) -> tuple[list[Strategy], dict[tuple[str, int], str]]:
    """Strategies with their Greeks/P&L, and which strategy holds most of each (account, conId)."""
    plan = _plan(_structure(legs))
    by_key: dict[tuple[str, int], list[Leg]] = {}
    for leg in legs:
        by_key.setdefault((leg.account, leg.contract.con_id), []).append(leg)

    strategies: list[Strategy] = []
    owner: dict[tuple[str, int], tuple[float, str]] = {}
    for sid, m in plan:
        totals = [0.0] * 6
        upnl = dpnl = value = 0.0
        for con_id, qty in m.members:
            same = by_key.get((m.account, con_id), [])
            total_qty = sum(_or_zero(leg.quantity) for leg in same)
            share = qty / total_qty if total_qty else 0.0
            for leg in same:
                if _counts_in_totals(leg):
                    g = leg.position_greeks
                    for i, x in enumerate((g.delta, g.gamma, g.theta, g.vega, g.dollar_delta, g.beta_delta)):
                        totals[i] += x * share
                upnl += _or_zero(leg.unrealized_pnl) * share
                dpnl += _or_zero(leg.daily_pnl) * share
                value += _or_zero(leg.market_value) * share
            if abs(qty) > owner.get((m.account, con_id), (0.0, ""))[0] + EPS:
                owner[(m.account, con_id)] = (abs(qty), sid)
        strategies.append(Strategy(
            strategy_id=sid, kind=m.kind, underlying=m.underlying,
            con_ids=tuple(c for c, _ in m.members), greeks=PositionGreeks(*totals),
            unrealized_pnl=upnl, daily_pnl=dpnl, market_value=value, explanation=m.explanation,
            quantities=tuple(q for _, q in m.members)))
    return strategies, {key: sid for key, (_, sid) in owner.items()}


def group_strategies(legs: Sequence[Leg]) -> list[Strategy]:
    """Deterministic, explained strategies for `legs` (see the module doc for the rules).

    Greeks per strategy add up its legs' `position_greeks` (pro rata for a split leg), leaving
    out legs without Greeks or with flags; P&L and market value add up what the legs report.
    """
    return _aggregate(legs)[0]


def group_and_tag(legs: Sequence[Leg]) -> tuple[list[Strategy], list[Leg]]:
    """`group_strategies(legs)` plus the legs (same order) with `strategy_id` set.

    A leg split between strategies is tagged with the one holding most of it (ties: the
    first in the strategy order). Legs with zero quantity get no strategy.
    """
    strategies, owner = _aggregate(legs)
    tagged = [replace(leg, strategy_id=owner.get((leg.account, leg.contract.con_id), ""))
              for leg in legs]
    return strategies, tagged
