"""Explain a book recorded from the simulator: real ib_async runtime over loopback, real writer.

The sim's clock runs (time_speed 1, not frozen) and its random walk keeps going; `set_spot`
moves every underlying 1.5 % (alternately up and down), then part of the way back. The marks
are mids of tick-rounded quotes, so even a perfect model leaves cents per contract unexplained.

Stated tolerance: Greeks mode |residual| <= 5 % of |actual| + $25; full revaluation (which
reprices what the second-order expansion misses) |residual| <= 1 % of |actual| + $25. The $25
is one cent of mid rounding per share on each of the seeded book's 25 option contracts.
"""

from __future__ import annotations

import time

import pytest

from tests.runtime.conftest import fast_settings
from tests.runtime.helpers import wait_ready
from v6core.explain import COMPONENTS, explain
from v6core.lake import LakeReader, LakeWriter
from v6core.runtime import Runtime

pytestmark = pytest.mark.slow
ROUNDING = 25.0


@pytest.fixture
def sim_runtime():
    from v6core.sim import SimGateway

    gw = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=5.0, time_speed=1.0)
    gw.start()
    rt = Runtime(fast_settings(ib_port=gw.port))
    rt.start()
    try:
        yield gw, rt
    finally:
        rt.stop()
        gw.stop()


def _move_and_wait(gw, rt, symbols, factor):
    """set_spot every underlying by `factor` (alternating direction); wait until every leg shows it."""
    targets = {}
    for i, symbol in enumerate(symbols):
        targets[symbol] = gw.spot(symbol) * (factor if i % 2 == 0 else 1 / factor)
        gw.set_spot(symbol, targets[symbol])

    def moved(snap):
        for leg in snap.legs:
            spot = leg.greeks.und_price if leg.contract.is_option and leg.greeks else leg.mark
            if spot is None or leg.stale or abs(spot / targets[leg.contract.symbol] - 1) > 0.002:
                return False
        return True

    assert rt.wait_for(moved, 30) is not None, "the runtime never showed the new spots"
    time.sleep(1.0)                         # the clock runs on: theta is part of the recorded span
    return rt.snapshot()


def test_explained_sum_is_within_tolerance_of_the_actual_change(sim_runtime, tmp_path):
    gw, rt = sim_runtime
    first = wait_ready(rt, gw)
    symbols = sorted({leg.contract.symbol for leg in first.legs})
    writer = LakeWriter(tmp_path / "lake")
    try:
        v0 = writer.write_snapshot(first)
        v1 = writer.write_snapshot(_move_and_wait(gw, rt, symbols, 1.015))
        v2 = writer.write_snapshot(_move_and_wait(gw, rt, symbols, 1 / 1.007))
    finally:
        writer.stop()
    reader = LakeReader(tmp_path / "lake")
    rate = rt.settings.risk_free_rate
    for start, end, path in ((v0, v1, False), (v1, v2, False), (v0, v2, True)):
        greeks = explain(reader, start, end, rate=rate, path=path)
        full = explain(reader, start, end, rate=rate, path=path, mode="revaluation")
        actual = greeks.actual
        assert abs(actual) > 100.0, "the moves should make the book's P&L move"
        assert greeks.legs.height == len(first.legs)
        assert sum(abs(q) for q in greeks.legs.filter(greeks.legs["sec_type"] == "OPT")["quantity_start"]) == 25
        assert set(greeks.legs["status"]) == {"held"}
        # The actual change is the recorded market values' change (no trades in between).
        before, after = reader.portfolio(start), reader.portfolio(end)
        assert actual == pytest.approx(after["market_value"].sum() - before["market_value"].sum(), abs=1e-6)
        assert greeks.component("trades") == pytest.approx(0.0, abs=1e-6)
        assert greeks.component("theta") < 0 or greeks.component("theta") > 0       # time did pass
        explained = sum(greeks.component(c) for c in COMPONENTS if c != "residual")
        assert explained + greeks.residual == pytest.approx(actual)
        assert abs(greeks.residual) <= 0.05 * abs(actual) + ROUNDING, greeks.book
        assert abs(full.residual) <= 0.01 * abs(actual) + ROUNDING, full.book
