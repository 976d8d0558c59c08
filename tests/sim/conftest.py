"""Fixtures for the simulator tests: a SimGateway on a free loopback port, driven by the real
ib_async client on each test's own asyncio loop (asyncio.run, never patchAsyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from ib_async import IB

from v6core.sim import SimGateway

T = TypeVar("T")
HOST = "127.0.0.1"


@pytest.fixture
def gw() -> Iterator[SimGateway]:
    gateway = SimGateway(seed=7, host=HOST, port=0, tick_rate=5.0, time_speed=1.0)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def run(coro_factory: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Run one test coroutine on a fresh event loop."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro_factory(), timeout)

    return asyncio.run(guarded())


async def connect(port: int, client_id: int = 1, timeout: float = 5.0) -> IB:
    """Connect like the runtime does; raiseSyncErrors makes any missing End message fail."""
    ib = IB()
    await ib.connectAsync(HOST, port, clientId=client_id, timeout=timeout, raiseSyncErrors=True)
    return ib


async def until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


class ErrorLog:
    """Collects (reqId, code, message) from ib.errorEvent."""

    def __init__(self, ib: IB) -> None:
        self.items: list[tuple[int, int, str]] = []
        ib.errorEvent += self._on_error

    def _on_error(self, req_id, code, message, *_):
        self.items.append((req_id, code, message))

    def codes(self, req_id: int | None = None) -> list[int]:
        return [c for r, c, _ in self.items if req_id is None or r == req_id]
