"""Feeding ib_async's client whole frames in small batches (keeps big bursts linear)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class _FrameSplitter:
    """Feeds ib_async's client whole frames in small batches, one batch per loop iteration.

    ib_async's `Client._onSocketHasData` copies the rest of its buffer after every message, which
    is quadratic in the size of one socket read: a 256 KB burst (1,000 contracts ticking at
    once) costs hundreds of milliseconds and blocks the loop meanwhile. Handing it ~8 KB of
    complete frames per loop iteration keeps the work linear and lets snapshot rebuilds and
    commands run between batches; what ib_async does with each frame is unchanged.
    """

    BATCH_BYTES = 8192

    def __init__(self, deliver: Callable[[bytes], None], loop: asyncio.AbstractEventLoop) -> None:
        self._deliver = deliver
        self._loop = loop
        self._pending = b""
        self._batches: deque[bytes] = deque()
        self._draining = False

    def reset(self) -> None:
        """Forget partial and queued frames (the session they belong to has ended)."""
        self._pending = b""
        self._batches.clear()

    def __call__(self, data: bytes) -> None:
        buf = self._pending + data if self._pending else data
        size = len(buf)
        pos = start = 0
        while size - pos >= 4:
            end = pos + 4 + int.from_bytes(buf[pos:pos + 4], "big")
            if end > size:
                break
            pos = end
            if pos - start >= self.BATCH_BYTES:
                self._batches.append(buf[start:pos])
                start = pos
        if pos > start:
            self._batches.append(buf[start:pos])
        self._pending = buf[pos:]
        if not self._draining and self._batches:
            self._draining = True
            self._drain()

    def _drain(self) -> None:
        if not self._batches:
            self._draining = False
            return
        try:
            self._deliver(self._batches.popleft())
        finally:
            if self._batches:
                self._loop.call_soon(self._drain)
            else:
                self._draining = False
