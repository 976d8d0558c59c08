"""Chain tests run the real runtime, desk and chain feed against the real simulator over loopback."""

from __future__ import annotations

import pytest

from tests.orders.conftest import start_stack, wait_until  # noqa: F401  (shared helpers)
from v6core.chainfeed import ChainFeed
from v6core.sim import SimGateway


@pytest.fixture(scope="module")
def chain_gw():
    gw = SimGateway(seed=21, host="127.0.0.1", port=0, tick_rate=4.0, time_speed=1.0)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def chain_stack(chain_gw, tmp_path_factory):
    # a frozen sim sends no new ticks: quotes must not go stale while a test reads them
    stack = start_stack(chain_gw, tmp_path_factory.mktemp("lake"), stale_after=3600.0,
                        max_order_notional=1e9, max_delta_change=1e6)
    stack.feed = ChainFeed(stack.runtime, max_lines=400)   # the sim has no line limit
    yield stack
    stack.close()
