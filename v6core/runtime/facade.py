"""The `Runtime`: one IB connection per process, composed from the runtime's parts.

The runtime thread owns every ib_async object. It connects (with backoff, jitter and a circuit
breaker), subscribes to everything the live picture needs, writes events into a `LiveState`
and publishes immutable `PortfolioSnapshot`s through a `SnapshotStore`. Each part lives in its
own module (loop, supervisor, subscriptions, events, commands) as a mixin over the shared
state that `Runtime.__init__` sets up here.
"""

from __future__ import annotations

import asyncio
import random
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from v6core.config import Settings, SettingsError, load_settings
from v6core.models import ConnectionStatus, ConnState
from v6core.runtime.backoff import ReconnectPolicy
from v6core.runtime.commands import Commands
from v6core.runtime.events import EventHandlers
from v6core.runtime.frames import _FrameSplitter
from v6core.runtime.loop import LoopBridge
from v6core.runtime.quotes import OnDemandQuotes
from v6core.runtime.subscriptions import Subscriptions
from v6core.runtime.supervisor import ConnectionSupervisor
from v6core.state import LiveState, SnapshotBuilder, SnapshotStore, empty_snapshot


T = TypeVar("T")


class LoopAccess:
    """What a job running on the runtime's loop may use of the connection (`Runtime.on_loop`).

    Live views, valid on the loop thread only: `ib` is the current ib_async.IB; `streamed()`
    the runtime's own market-data tickers by conId (read-only: the runtime owns them)."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def ib(self) -> Any:
        return self._runtime._ib

    def streamed(self) -> Mapping[int, Any]:
        return MappingProxyType(self._runtime._tickers)


def _validated(settings: Settings) -> Settings:
    """Re-validate (settings may have been built without validation) and check runtime needs."""
    if not isinstance(settings, Settings):
        raise SettingsError(f"Runtime needs v6core.config.Settings, got {type(settings).__name__}")
    checked = load_settings(**{name: getattr(settings, name) for name in Settings.model_fields})
    if checked.mode == "ib" and not checked.ib_host.strip():
        raise SettingsError("invalid settings: V6_IB_HOST: must name the gateway host in mode 'ib'")
    return checked


class Runtime(Commands, OnDemandQuotes, Subscriptions, EventHandlers, ConnectionSupervisor, LoopBridge):
    """One IB connection per process, its live state and the command bridge to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = _validated(settings)
        self.sim = None
        self._host = self.settings.ib_host
        self._port = self.settings.ib_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ib = None
        self._started = False
        self._stopped = False
        self._life_lock = threading.Lock()
        self._state = LiveState()
        self._builder = SnapshotBuilder(self.settings)
        self._status = ConnectionStatus(
            state=ConnState.CONNECTING, mode=self.settings.mode, host=self._host, port=self._port,
            client_id=self.settings.client_id, account=self.settings.account,
            is_paper=self._is_paper(self.settings.account) if self.settings.account else True)
        self._store = SnapshotStore(empty_snapshot(self._status, self.settings.account))
        # runtime-thread-only bookkeeping
        self._ib_contracts: dict[int, Any] = {}      # conId -> ib_async Contract to subscribe
        self._tickers: dict[int, Any] = {}           # conId -> Ticker of the current session
        self._pnl_singles: set[tuple[str, int]] = set()
        self._watched: set[int] = set()              # extra quote subscriptions (watch())
        self._quote_owners: dict[str, set[int]] = {}  # ensure_quotes(): owner -> conIds
        self._unknown_symbols: set[str] = set()      # underlyings the gateway does not know
        self._greeks_seen: dict[int, tuple[Any, Any, tuple[str, ...]]] = {}
        self._pending_tickers: dict[int, tuple[Any, datetime]] = {}
        self._pnl_account = ""
        self._farms: dict[str, tuple[int, str]] = {}
        self._last_message_at: datetime | None = None
        self._rebuild_handle: asyncio.TimerHandle | None = None
        self._last_build = 0.0
        self._session_lost: asyncio.Event | None = None
        self._sync_task: asyncio.Task | None = None
        self._sync_again = False
        self._sync_lock: asyncio.Lock | None = None
        self._session_ready = False
        self._tasks: list[asyncio.Task] = []
        self._reconnect = ReconnectPolicy(
            self.settings.backoff_initial, self.settings.backoff_max,
            self.settings.breaker_failures, self.settings.breaker_cooldown, rng=random.Random())
        self._frames: _FrameSplitter | None = None
        self._loop_access = LoopAccess(self)

    def on_loop(self, job: Callable[[LoopAccess], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run `job(access)` on the runtime's loop (the one thread allowed to touch ib_async) and
        resolve to its result. For feeds that share the connection (the option chain); pages
        use the runtime's commands instead. Fails the Future when the runtime is not running."""
        return self._submit(lambda: job(self._loop_access))
