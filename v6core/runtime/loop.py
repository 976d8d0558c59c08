"""The loop thread and the command bridge: start/stop, snapshots out, coroutines in.

The runtime thread owns every ib_async object. Other threads read `snapshot()` and send
commands that come back as `concurrent.futures.Future`s: each command is a coroutine scheduled
on the runtime loop with `run_coroutine_threadsafe`, so ib_async is only ever touched from its
own thread. Snapshots are rebuilt here, throttled, whenever an event marks the state dirty.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from v6core import greeks_warmup
from v6core.models import ConnState, PortfolioSnapshot
from v6core.runtime.frames import _FrameSplitter

log = logging.getLogger(__name__)
T = TypeVar("T")

# Snapshots are rebuilt at most this often: ticks only mark the state dirty, so a burst of
# thousands of ticks costs one rebuild, while a lone tick is published at once.
MIN_REBUILD_INTERVAL = 0.1
# Even without events the snapshot is rebuilt this often, so quotes age into "stale".
HEARTBEAT_INTERVAL = 1.0

# Live (address -> runtime) registry: one connection per gateway address and client id.
_ACTIVE: dict[tuple[str, int, int], LoopBridge] = {}
_ACTIVE_LOCK = threading.Lock()


class LoopBridge:
    """Lifecycle of the runtime thread, snapshot reads and the bridge that runs commands on it."""

    # ------------------------------------------------------------------ lifecycle (any thread)

    def start(self) -> None:
        """Start the runtime thread (and the embedded simulator in mode "sim"); never blocks on IB."""
        with self._life_lock:
            if self._started:
                return
            if self.settings.mode == "sim":
                from v6core.sim import SimGateway

                from v6core.sim.gateway import account_id_for
                from v6core.sim.persistence import state_path_beside

                # the paper account lives beside the lake, so history and account stay one story
                state = state_path_beside(self.settings.lake_path, account_id_for(self.settings.sim_seed))
                self.sim = SimGateway(seed=self.settings.sim_seed, host="127.0.0.1", port=0,
                                      tick_rate=self.settings.sim_tick_rate,
                                      time_speed=self.settings.sim_time_speed,
                                      state_path=state, fresh=self.settings.sim_fresh)
                self._host, self._port = "127.0.0.1", self.sim.start()
                self._status = dataclasses.replace(self._status, host=self._host, port=self._port)
                # the screen names the simulator's port from the first instant (not V6_IB_PORT's)
                first = self._store.current()
                self._store.publish(dataclasses.replace(first, seq=first.seq + 1, connection=self._status))
            key = (self._host, self._port, self.settings.client_id)
            with _ACTIVE_LOCK:
                other = _ACTIVE.get(key)
                if other is not None and other is not self:
                    raise RuntimeError(
                        f"a runtime is already connected to {self._host}:{self._port} with client "
                        f"id {self.settings.client_id}; share it instead of opening a second connection")
                _ACTIVE[key] = self
            greeks_warmup.start_warm_up()    # compiles off the loop; legs say "pending" meanwhile
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run_loop, name="v6-runtime", daemon=True)
            self._started = True
            self._thread.start()
            atexit.register(self.stop)

    def stop(self) -> None:
        """Disconnect, stop the loop thread and the embedded simulator. Idempotent."""
        with self._life_lock:
            if not self._started or self._stopped:
                return
            self._stopped = True
        loop = self._loop
        # Not only a running loop: a stop right after start (a start that failed further on)
        # can come before the thread reached run_forever; the shutdown waits in its queue.
        if loop is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
            except Exception:
                log.exception("runtime shutdown did not finish cleanly")
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # the loop closed meanwhile: nothing left to stop
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with _ACTIVE_LOCK:
            for key, runtime in list(_ACTIVE.items()):
                if runtime is self:
                    del _ACTIVE[key]
        if self.sim is not None:
            try:
                self.sim.stop()
            except Exception:
                log.exception("stopping the embedded simulator failed")
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutting down
            pass

    # ------------------------------------------------------------------ reading (any thread)

    def snapshot(self) -> PortfolioSnapshot:
        return self._store.current()

    def wait_for(self, predicate: Callable[[PortfolioSnapshot], bool],
                 timeout: float) -> PortfolioSnapshot | None:
        return self._store.wait_for(predicate, timeout)

    @property
    def last_build_seconds(self) -> float:
        """Wall time of the latest snapshot build (for benchmarks and diagnostics)."""
        return self._builder.last_build_seconds

    def _submit(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        loop = self._loop
        if loop is None or self._stopped or loop.is_closed():
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            future.set_exception(RuntimeError("the runtime is not running"))
            return future
        return asyncio.run_coroutine_threadsafe(factory(), loop)

    # ------------------------------------------------------------------ the runtime thread

    def _run_loop(self) -> None:
        from ib_async import IB

        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_exception)
        self._ib = IB()
        self._ib.RaiseRequestErrors = True
        if self.settings.mode == "sim":
            # the simulator has no pacing limits; real IB keeps ib_async's 45 requests/s throttle
            self._ib.client.MaxRequests = 0
        client = self._ib.client
        self._frames = _FrameSplitter(getattr(client, "_onSocketHasData", None), loop)
        try:
            client.conn.hasData -= client._onSocketHasData
            client.conn.hasData += self._frames
        except (AttributeError, ValueError):
            # another ib_async layout: keep its own feeding, only slower on big bursts
            log.warning("ib_async internals changed; burst splitting disabled")
        self._hook_events(self._ib)
        self._tasks = [loop.create_task(self._supervise(), name="v6-supervise"),
                       loop.create_task(self._heartbeat(), name="v6-heartbeat")]
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        log.error("runtime loop: %s", context.get("message"), exc_info=context.get("exception"))

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ib is not None and self._ib.isConnected():
            self._ib.disconnect()
        self._set_status(state=ConnState.DISCONNECTED, next_retry_at=None, last_error="stopped")
        self._rebuild()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            self._mark_dirty()

    # -- snapshots --------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._state.dirty = True
        loop = self._loop
        if self._rebuild_handle is not None or loop is None or self._stopped:
            return
        # never spend more than about a third of the loop on rebuilding (1,000+ legs)
        interval = max(MIN_REBUILD_INTERVAL, 2.0 * self._builder.last_build_seconds)
        delay = max(0.0, self._last_build + interval - loop.time())
        self._rebuild_handle = loop.call_later(delay, self._rebuild)

    def _rebuild(self) -> None:
        self._rebuild_handle = None
        state = self._state
        if not state.dirty:
            return
        state.dirty = False
        self._ingest_tickers()
        status = dataclasses.replace(self._status, last_message_at=self._last_message_at)
        try:
            snapshot = self._builder.build(state, status, self._store.next_seq)
        except Exception:
            log.exception("snapshot build failed; keeping the previous snapshot")
            return
        finally:
            self._last_build = self._loop.time() if self._loop is not None else 0.0
        self._store.publish(snapshot)
