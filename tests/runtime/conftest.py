"""Fixtures for runtime integration tests: a real SimGateway on a free loopback port and
runtimes connected to it with the real ib_async client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from v6core.config import Settings
from v6core.runtime import Runtime



@pytest.fixture
def gateway() -> Iterator:
    from v6core.sim import SimGateway

    gw = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=5.0, time_speed=1.0)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def fast_settings(**overrides) -> Settings:
    """Settings that retry quickly, so reconnect and breaker tests finish in seconds."""
    values = dict(mode="ib", ib_host="127.0.0.1", client_id=17, connect_timeout=2.0,
                  backoff_initial=0.05, backoff_max=0.3, breaker_failures=3,
                  breaker_cooldown=1.0, stale_after=10.0)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def make(gw=None, start: bool = True, **overrides) -> Runtime:
        if gw is not None:
            overrides.setdefault("ib_port", gw.port if hasattr(gw, "port") else gw._port)
        rt = Runtime(fast_settings(**overrides))
        started.append(rt)
        if start:
            rt.start()
        return rt

    yield make
    for rt in started:
        rt.stop()
