"""Shared checks for the runtime tests."""

from __future__ import annotations

import math
from collections.abc import Callable

from v6core.models import ConnState, GreekSource, PortfolioSnapshot
from v6core.runtime import Runtime

READY_TIMEOUT = 30.0


def seeded_ids(gw) -> set[int]:
    return {p.contract.con_id for p in gw.seeded_positions()}


def ready(gw) -> Callable[[PortfolioSnapshot], bool]:
    """Connected, every seeded leg present with usable Greeks, not stale."""
    wanted = seeded_ids(gw)

    def predicate(snap: PortfolioSnapshot) -> bool:
        if snap.connection.state != ConnState.CONNECTED:
            return False
        legs = {leg.contract.con_id: leg for leg in snap.legs}
        if set(legs) != wanted:
            return False
        return all(leg.greeks is not None and leg.greeks.source != GreekSource.NONE
                   and not leg.stale for leg in legs.values())

    return predicate


def wait_ready(rt: Runtime, gw, timeout: float = READY_TIMEOUT) -> PortfolioSnapshot:
    snap = rt.wait_for(ready(gw), timeout)
    if snap is None:
        current = rt.snapshot()
        raise AssertionError(f"runtime not ready: {current.connection}; legs="
                             f"{[(l.contract.label, l.greeks, l.flags, l.stale) for l in current.legs]}")
    return snap


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
