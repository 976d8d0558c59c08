"""The process-wide runtime: one ib_async.IB on its own thread and asyncio loop.

The runtime thread owns every ib_async object. It connects (with backoff, jitter and a circuit
breaker), subscribes to everything the live picture needs, writes events into a `LiveState`
and publishes immutable `PortfolioSnapshot`s through a `SnapshotStore`. Other threads read
`snapshot()` and send commands that come back as `concurrent.futures.Future`s: each command is
a coroutine scheduled on the runtime loop with `run_coroutine_threadsafe`, so ib_async is only
ever touched from its own thread.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import copy
import dataclasses
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Any, TypeVar

import polars as pl

from v6core import greeks as greek_math
from v6core.config import Settings, SettingsError, load_settings
from v6core.ib_edge import (
    account_value_from_ib, clean_number, contract_from_ib, fill_view_from_ib, greeks_from_ib,
    order_view_from_trade, pnl_from_ib, portfolio_item_from_ib, position_from_ib,
    quote_from_ticker,
)
from v6core.models import (
    ConnectionStatus, ConnState, ContractInfo, OrderSpec, OrderView, PortfolioSnapshot,
    WhatIfResult,
)
from v6core.state import (
    LiveState, PositionRecord, QuoteRecord, SnapshotBuilder, SnapshotStore, empty_snapshot,
    order_key,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Snapshots are rebuilt at most this often: ticks only mark the state dirty, so a burst of
# thousands of ticks costs one rebuild, while a lone tick is published at once.
MIN_REBUILD_INTERVAL = 0.1
# Even without events the snapshot is rebuilt this often, so quotes age into "stale".
HEARTBEAT_INTERVAL = 1.0
OPTION_GENERIC_TICKS = "106"            # option implied volatility
FARM_OK = {2104, 2106, 2158}
FARM_BROKEN = {2103, 2105, 2157}
CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
MAX_NOTICES = 8
WORKING_STATES = {"PendingSubmit", "ApiPending"}

# Live (address -> runtime) registry: one connection per gateway address and client id.
_ACTIVE: dict[tuple[str, int, int], Runtime] = {}
_ACTIVE_LOCK = threading.Lock()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _validated(settings: Settings) -> Settings:
    """Re-validate (settings may have been built without validation) and check runtime needs."""
    if not isinstance(settings, Settings):
        raise SettingsError(f"Runtime needs v6core.config.Settings, got {type(settings).__name__}")
    checked = load_settings(**{name: getattr(settings, name) for name in Settings.model_fields})
    if checked.mode == "ib" and not checked.ib_host.strip():
        raise SettingsError("invalid settings: V6_IB_HOST: must name the gateway host in mode 'ib'")
    return checked


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


def _guarded(handler: Callable) -> Callable:
    """An event handler that logs instead of raising: bad input never kills the runtime."""

    def wrapper(self: Any, *args: Any) -> None:
        try:
            handler(self, *args)
        except Exception:
            log.exception("event handler %s failed on %r", handler.__name__, args)

    wrapper.__name__ = handler.__name__
    return wrapper


class Runtime:
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
        self._rng = random.Random()
        self._frames: _FrameSplitter | None = None

    # ------------------------------------------------------------------ lifecycle (any thread)

    def start(self) -> None:
        """Start the runtime thread (and the embedded simulator in mode "sim"); never blocks on IB."""
        with self._life_lock:
            if self._started:
                return
            if self.settings.mode == "sim":
                from v6core.sim import SimGateway

                self.sim = SimGateway(seed=self.settings.sim_seed, host="127.0.0.1", port=0,
                                      tick_rate=self.settings.sim_tick_rate,
                                      time_speed=self.settings.sim_time_speed)
                self._host, self._port = "127.0.0.1", self.sim.start()
                self._status = dataclasses.replace(self._status, host=self._host, port=self._port)
            key = (self._host, self._port, self.settings.client_id)
            with _ACTIVE_LOCK:
                other = _ACTIVE.get(key)
                if other is not None and other is not self:
                    raise RuntimeError(
                        f"a runtime is already connected to {self._host}:{self._port} with client "
                        f"id {self.settings.client_id}; share it instead of opening a second connection")
                _ACTIVE[key] = self
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

    # ------------------------------------------------------------------ commands (any thread)

    def what_if(self, spec: OrderSpec) -> concurrent.futures.Future[WhatIfResult]:
        return self._submit(lambda: self._what_if(spec))

    def place_order(self, spec: OrderSpec, order_ref: str) -> concurrent.futures.Future[OrderView]:
        return self._submit(lambda: self._place_order(spec, order_ref))

    def cancel_order(self, order_id: int) -> concurrent.futures.Future[None]:
        return self._submit(lambda: self._cancel_order(order_id))

    def cancel_all(self) -> concurrent.futures.Future[None]:
        return self._submit(self._cancel_all)

    def find_orders_by_ref(self, order_ref: str) -> concurrent.futures.Future[list[OrderView]]:
        return self._submit(lambda: self._find_orders_by_ref(order_ref))

    def historical_bars(self, symbol: str, bar_size: str = "1 day",
                        duration: str = "1 Y") -> concurrent.futures.Future[pl.DataFrame]:
        return self._submit(lambda: self._historical_bars(symbol, bar_size, duration))

    def watch(self, contracts: Iterable[ContractInfo]) -> concurrent.futures.Future[None]:
        """Also keep live quotes for these stocks/options in the snapshot (ticket quotes,
        watchlists); kept across reconnects. Positions and underlyings are always quoted."""
        infos = [c for c in contracts if c.con_id and c.sec_type in ("STK", "OPT")]
        return self._submit(lambda: self._watch(infos))

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

    # -- connection lifecycle -----------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** max(failures - 1, 0))
        return base * self._rng.uniform(0.5, 1.0)

    async def _supervise(self) -> None:
        """Connect, stay connected, reconnect: backoff with jitter, circuit breaker on top."""
        settings = self.settings
        failures = 0
        breaker = "closed"
        while True:
            if breaker == "open":
                cooldown = settings.breaker_cooldown
                self._set_status(state=ConnState.DISCONNECTED, breaker="open",
                                 next_retry_at=_now() + timedelta(seconds=cooldown))
                await asyncio.sleep(cooldown)
                breaker = "half-open"
            self._set_status(state=ConnState.CONNECTING, breaker=breaker,
                             attempts=self._status.attempts + 1, next_retry_at=None)
            self._frames.reset()
            try:
                await self._ib.connectAsync(
                    self._host, self._port, clientId=settings.client_id,
                    timeout=settings.connect_timeout, account=settings.account)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                error = f"connect to {self._host}:{self._port} failed: {type(exc).__name__}: {exc}".rstrip(": ")
                log.warning("%s (failure %d)", error, failures)
                if breaker == "half-open" or failures >= settings.breaker_failures:
                    breaker = "open"
                    self._set_status(state=ConnState.DISCONNECTED, breaker="open", last_error=error)
                    continue
                delay = self._backoff(failures)
                self._set_status(state=ConnState.DISCONNECTED, last_error=error,
                                 next_retry_at=_now() + timedelta(seconds=delay))
                await asyncio.sleep(delay)
                continue
            failures, breaker = 0, "closed"
            self._session_lost = asyncio.Event()
            try:
                await self._on_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("setting up the session failed")
                self._set_status(last_error=f"session setup failed: {exc}")
            await self._session_lost.wait()
            delay = self._backoff(1)
            self._set_status(state=ConnState.DISCONNECTED,
                             next_retry_at=_now() + timedelta(seconds=delay))
            await asyncio.sleep(delay)

    async def _on_connected(self) -> None:
        ib, state = self._ib, self._state
        self._ingest_tickers()
        state.epoch += 1
        self._tickers.clear()
        self._pnl_singles.clear()
        self._pnl_account = ""
        self._unknown_symbols.clear()
        accounts = tuple(ib.managedAccounts())
        state.managed_accounts = accounts
        account = self.settings.account or (accounts[0] if len(accounts) == 1 else "")
        error = ""
        if self.settings.account and self.settings.account not in accounts:
            error = (f"configured account {self.settings.account} is not managed by this login "
                     f"({', '.join(accounts)})")
            log.error(error)
        state.account_name = account
        self._set_status(
            state=ConnState.CONNECTED, breaker="closed", server_version=ib.client.serverVersion(),
            account=account, is_paper=self._is_paper(account), connected_since=_now(),
            next_retry_at=None, last_error=error)
        log.info("connected to %s:%s (server %s, account %s)", self._host, self._port,
                 ib.client.serverVersion(), account)
        self._reconcile_positions(ib.positions())
        for item in ib.portfolio():
            self._on_portfolio(item)
        for value in ib.accountValues():
            self._on_account_value(value)
        for trade in ib.trades():
            self._on_trade(trade)
        for fill in ib.fills():
            self._on_fill(None, fill)
        self._mark_dirty()
        self._session_ready = True
        await self._sync_subscriptions()

    @staticmethod
    def _is_paper(account: str) -> bool:
        # IB paper accounts are "DU..."; anything else is treated as live money
        return account.upper().startswith("DU")

    def _set_status(self, **changes: Any) -> None:
        self._status = dataclasses.replace(self._status, **changes)
        self._mark_dirty()

    # -- subscriptions ----------------------------------------------------------------------

    def _schedule_sync(self) -> None:
        # during connectAsync the session is not set up yet; _on_connected subscribes everything
        if not self._session_ready or self._ib is None or not self._ib.isConnected():
            return
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            return
        self._sync_task = asyncio.get_running_loop().create_task(self._sync_logged())

    async def _sync_logged(self) -> None:
        try:
            await self._sync_subscriptions()
        except asyncio.CancelledError:
            raise
        except Exception:
            # a drop mid-way is fine: the next session subscribes everything again
            log.warning("subscription sync failed", exc_info=True)

    async def _sync_subscriptions(self) -> None:
        """Make the subscriptions match the positions: quotes, PnL, PnL single. Idempotent."""
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            await self._sync_subscriptions_locked()

    async def _sync_subscriptions_locked(self) -> None:
        ib, state = self._ib, self._state
        self._sync_again = False
        if not ib.isConnected():
            return
        legs = [p for p in state.positions.values() if p.contract.sec_type in ("STK", "OPT")]
        # SPY prices the beta weighting; the watchlist feeds tickets and signals
        symbols = {p.contract.symbol for p in legs} | {"SPY"} | set(self.settings.watchlist)
        missing = sorted(s for s in symbols
                         if s not in state.underlying_ids and s not in self._unknown_symbols)
        if missing:
            await self._qualify_underlyings(missing)
        wanted: set[int] = {p.contract.con_id for p in legs} | self._watched
        wanted |= {state.underlying_ids[s] for s in symbols if s in state.underlying_ids}
        for con_id in sorted(wanted - set(self._tickers)):
            contract = self._ib_contracts.get(con_id)
            if contract is None:
                continue
            if not contract.exchange:
                contract = copy.copy(contract)
                contract.exchange = "SMART"
            ticks = OPTION_GENERIC_TICKS if contract.secType == "OPT" else ""
            self._tickers[con_id] = ib.reqMktData(contract, ticks, False, False)
        for con_id in set(self._tickers) - wanted:
            ticker = self._tickers.pop(con_id)
            ib.cancelMktData(ticker.contract)
        account = state.account_name
        # ib_async may still hold a PnL request key we consider gone (its wrapper is reset only by
        # disconnect()) and asserts on a repeated key: cancel that one, then request afresh.
        if account and self._pnl_account != account:
            if (account, "") in ib.wrapper.pnlKey2ReqId:
                ib.cancelPnL(account, "")
            ib.reqPnL(account)
            self._pnl_account = account
        wanted_pnl = {(p.account, p.contract.con_id) for p in legs}
        for acct, con_id in sorted(wanted_pnl - self._pnl_singles):
            if (acct, "", con_id) in ib.wrapper.pnlSingleKey2ReqId:
                ib.cancelPnLSingle(acct, "", con_id)
            ib.reqPnLSingle(acct, "", con_id)
            self._pnl_singles.add((acct, con_id))
        for acct, con_id in self._pnl_singles - wanted_pnl:
            ib.cancelPnLSingle(acct, "", con_id)
            self._pnl_singles.discard((acct, con_id))
        if self._sync_again:
            await self._sync_subscriptions_locked()

    async def _qualify_underlyings(self, symbols: list[str]) -> None:
        from ib_async import Stock

        contracts = [Stock(symbol, "SMART", "USD") for symbol in symbols]
        results = await asyncio.gather(
            *(self._ib.qualifyContractsAsync(c) for c in contracts), return_exceptions=True)
        for symbol, contract, result in zip(symbols, contracts, results):
            if isinstance(result, BaseException) or not result or result[0] is None:
                log.warning("underlying %s could not be qualified: %s", symbol, result)
                self._unknown_symbols.add(symbol)     # asked again next session, not every sync
                continue
            self._state.underlying_ids[symbol] = contract.conId
            self._ib_contracts[contract.conId] = contract

    # -- events (runtime thread) --------------------------------------------------------------

    def _hook_events(self, ib: Any) -> None:
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        ib.updateEvent += self._on_any_message
        ib.pendingTickersEvent += self._on_tickers
        ib.positionEvent += self._on_position
        ib.updatePortfolioEvent += self._on_portfolio
        ib.accountValueEvent += self._on_account_value
        ib.pnlEvent += self._on_pnl
        ib.pnlSingleEvent += self._on_pnl_single
        ib.openOrderEvent += self._on_trade
        ib.orderStatusEvent += self._on_trade
        ib.newOrderEvent += self._on_trade
        ib.execDetailsEvent += self._on_fill
        ib.commissionReportEvent += self._on_commission

    @_guarded
    def _on_any_message(self) -> None:
        self._last_message_at = _now()

    @_guarded
    def _on_disconnected(self) -> None:
        if self._stopped:
            return
        log.warning("disconnected from %s:%s", self._host, self._port)
        self._session_ready = False
        self._frames.reset()
        self._ingest_tickers()           # what arrived before the drop belongs to the old session
        self._tickers.clear()
        self._pnl_singles.clear()
        self._pnl_account = ""
        self._set_status(state=ConnState.DISCONNECTED,
                         last_error=self._status.last_error or "connection to the gateway lost")
        if self._session_lost is not None:
            self._session_lost.set()

    @_guarded
    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        text = f"{code}: {message}"
        if code in FARM_OK or code in FARM_BROKEN:
            farm = message.rsplit(":", 1)[-1].strip() or str(code)
            self._farms[farm] = (code, message)
            notices = tuple(f"{c} {m}" for c, m in self._farms.values())[-MAX_NOTICES:]
            broken = any(c in FARM_BROKEN for c, _ in self._farms.values())
            changes: dict[str, Any] = {"notices": notices}
            if self._status.state in (ConnState.CONNECTED, ConnState.DEGRADED):
                changes["state"] = ConnState.DEGRADED if broken else ConnState.CONNECTED
            self._set_status(**changes)
            return
        if code in (CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            notices = (self._status.notices + (f"{code} {message}",))[-MAX_NOTICES:]
            if code == CONNECTIVITY_LOST:
                self._set_status(state=ConnState.DEGRADED, notices=notices, last_error=text)
            else:
                self._set_status(state=ConnState.CONNECTED, notices=notices)
                if code == RESTORED_DATA_LOST:
                    # IB dropped our market data: subscribe everything again
                    for ticker in self._tickers.values():
                        self._ib.cancelMktData(ticker.contract)
                    self._tickers.clear()
                    self._ingest_tickers()
                    self._state.epoch += 1
                    self._schedule_sync()
            return
        is_order = any(key[1] == req_id for key in self._state.orders) if req_id > 0 else False
        if req_id > 0 and (is_order or self._is_live_order(req_id)):
            self._state.order_messages[req_id] = text
            for key, view in list(self._state.orders.items()):
                if key[1] == req_id:
                    self._state.orders[key] = dataclasses.replace(view, last_message=text)
            self._mark_dirty()
            return
        if 2100 <= code < 2200 or code in (10167,):
            return
        if code >= 100:
            self._set_status(last_error=text if req_id <= 0 else f"request {req_id}: {text}")

    def _is_live_order(self, order_id: int) -> bool:
        return any(t.order.orderId == order_id for t in self._ib.wrapper.trades.values())

    @_guarded
    def _on_tickers(self, tickers: Any) -> None:
        # Only remember which tickers moved: they are converted once per rebuild, so a contract
        # that ticks five times between two snapshots costs one conversion, not five.
        now = _now()
        pending = self._pending_tickers
        for ticker in tickers:
            con_id = int(getattr(getattr(ticker, "contract", None), "conId", 0) or 0)
            if con_id:
                pending[con_id] = (ticker, now)
        self._mark_dirty()

    def _ingest_tickers(self) -> None:
        """Convert the tickers that moved since the last rebuild into QuoteRecords."""
        pending, self._pending_tickers = self._pending_tickers, {}
        state = self._state
        for con_id, (ticker, received_at) in pending.items():
            try:
                ib_greeks, greek_flags = None, ()
                if getattr(ticker.contract, "secType", "") == "OPT":
                    ib_greeks, greek_flags = self._checked_greeks(
                        con_id, getattr(ticker, "modelGreeks", None))
                quote, flags = quote_from_ticker(ticker, received_at,
                                                 ib_greeks.iv if ib_greeks is not None else None)
                state.quotes[con_id] = QuoteRecord(quote, flags, ib_greeks, greek_flags, state.epoch)
            except Exception:
                log.exception("ticker for conId %s could not be read", con_id)

    def _checked_greeks(self, con_id: int, computation: Any) -> tuple[Any, tuple[str, ...]]:
        """IB's model Greeks through edge and market-semantics checks, once per computation
        (a bid/ask tick re-delivers the same OptionComputation object)."""
        cached = self._greeks_seen.get(con_id)
        if cached is not None and cached[0] is computation:
            return cached[1], cached[2]
        raw, flags = greeks_from_ib(computation)
        checked = None
        if raw is not None:
            checked, problems = greek_math.validate_greeks(raw)
            flags = tuple(flags) + problems
        if flags:
            log.warning("conId %s: %s", con_id, "; ".join(flags))
        self._greeks_seen[con_id] = (computation, checked, tuple(flags))
        return checked, tuple(flags)

    @_guarded
    def _on_position(self, position: Any) -> None:
        self._apply_position(position.account, position.contract, position.position, position.avgCost)
        self._schedule_sync()

    def _apply_position(self, account: str, ib_contract: Any, quantity: Any, avg_cost: Any) -> bool:
        contract, contract_flags = contract_from_ib(ib_contract)
        if contract is None:
            return False
        edge, position_flags = position_from_ib(account, quantity, avg_cost)
        if edge is None:
            return False
        allowed = self.settings.account or None
        if allowed and edge.account != allowed:
            log.warning("position in unknown account %s (%s): flagged, kept out of totals",
                        edge.account, contract.label)
        if contract_flags or position_flags:
            log.warning("position %s: %s", contract.label, "; ".join(contract_flags + position_flags))
        if contract.sec_type in ("STK", "OPT"):
            self._ib_contracts.setdefault(contract.con_id, ib_contract)
            if contract.sec_type == "STK":
                self._state.underlying_ids.setdefault(contract.symbol, contract.con_id)
        self._state.set_position(PositionRecord(
            account=edge.account, contract=contract, quantity=edge.quantity,
            avg_cost=edge.avg_cost, flags=contract_flags + position_flags))
        self._mark_dirty()
        return True

    def _reconcile_positions(self, positions: list[Any]) -> None:
        """After a (re)connect IB's position list is the truth: drop what closed meanwhile."""
        seen: set[tuple[str, int]] = set()
        for position in positions:
            if self._apply_position(position.account, position.contract, position.position,
                                    position.avgCost):
                seen.add((position.account, int(position.contract.conId)))
        for key in list(self._state.positions):
            if key not in seen:
                record = self._state.positions[key]
                self._state.set_position(dataclasses.replace(record, quantity=0.0))

    @_guarded
    def _on_portfolio(self, item: Any) -> None:
        key = (item.account, int(getattr(item.contract, "conId", 0) or 0))
        record = self._state.positions.get(key)
        if record is None:
            if not self._apply_position(item.account, item.contract, item.position, item.averageCost):
                return
            record = self._state.positions.get(key)
            if record is None:
                return
        values, flags = portfolio_item_from_ib(item)
        record.market_price, record.market_value = values.market_price, values.market_value
        record.unrealized_pnl, record.realized_pnl = values.unrealized_pnl, values.realized_pnl
        record.portfolio_flags = flags
        self._mark_dirty()

    @_guarded
    def _on_account_value(self, value: Any) -> None:
        parsed = account_value_from_ib(value)
        if parsed is None:
            return
        account, name, number, currency = parsed
        if self._state.account_name and account and account != self._state.account_name:
            return
        if currency == "BASE" and name in self._state.account_fields:
            return  # the USD figure wins when both arrive
        self._state.account_fields[name] = number
        self._state.account_updated_at = _now()
        self._mark_dirty()

    @_guarded
    def _on_pnl(self, pnl: Any) -> None:
        self._state.pnl = pnl_from_ib(pnl)
        self._mark_dirty()

    @_guarded
    def _on_pnl_single(self, pnl: Any) -> None:
        record = self._state.positions.get((pnl.account, int(pnl.conId)))
        if record is not None:
            record.daily_pnl = pnl_from_ib(pnl)[0]
            self._mark_dirty()

    @_guarded
    def _on_trade(self, trade: Any) -> None:
        view = self._order_view(trade)
        if view.order_id <= 0 and view.perm_id <= 0:
            return
        self._state.orders[order_key(view)] = view
        self._mark_dirty()

    def _order_view(self, trade: Any) -> OrderView:
        contract, _ = contract_from_ib(trade.contract)
        if contract is None:
            contract = ContractInfo(con_id=0, symbol=str(getattr(trade.contract, "symbol", "")),
                                    sec_type=str(getattr(trade.contract, "secType", "")))
        order_id = int(getattr(trade.order, "orderId", 0) or 0)
        message = self._state.order_messages.get(order_id, "")
        if not message:
            message = next((f"{e.errorCode}: {e.message.split(': ', 1)[-1]}" if e.errorCode else e.message
                            for e in reversed(trade.log) if e.errorCode), "")
        return order_view_from_trade(trade, contract, message, _now())

    @_guarded
    def _on_fill(self, trade: Any, fill: Any) -> None:
        contract, _ = contract_from_ib(fill.contract)
        if contract is None:
            return
        order_ref = getattr(getattr(trade, "order", None), "orderRef", "") if trade is not None else ""
        view = fill_view_from_ib(fill, contract, order_ref)
        if view is not None:
            self._state.fills[view.exec_id] = view
            self._mark_dirty()

    @_guarded
    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        self._on_fill(trade, fill)

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

    # -- commands (coroutines on the runtime loop) ---------------------------------------------

    def _require_connected(self) -> None:
        if self._ib is None or not self._ib.isConnected():
            why = f" ({self._status.last_error})" if self._status.last_error else ""
            raise ConnectionError(f"not connected to the gateway{why}")

    def _account_for_orders(self) -> str:
        return self.settings.account or self._state.account_name

    async def _ib_contract(self, info: ContractInfo, legs: tuple = ()) -> Any:
        from ib_async import ComboLeg, Contract

        if info.sec_type == "BAG":
            if not legs:
                raise ValueError("a BAG order needs combo legs")
            combo = []
            for leg in legs:
                leg_contract = await self._ib_contract(leg.contract)
                combo.append(ComboLeg(conId=leg_contract.conId, ratio=int(leg.ratio),
                                      action=leg.action, exchange="SMART"))
            return Contract(symbol=info.symbol, secType="BAG", currency=info.currency,
                            exchange="SMART", comboLegs=combo)
        contract = contract_to_ib(info)
        if not info.con_id:
            qualified = await self._ib.qualifyContractsAsync(contract)
            if not qualified or qualified[0] is None:
                raise ValueError(f"unknown contract {info.label}")
        return contract

    def _ib_order(self, spec: OrderSpec, order_ref: str) -> Any:
        from ib_async import Order

        action = spec.action.upper()
        order_type = spec.order_type.upper()
        if action not in ("BUY", "SELL"):
            raise ValueError(f"action must be BUY or SELL, got {spec.action!r}")
        if not spec.quantity or spec.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {spec.quantity!r}")
        if order_type not in ("LMT", "MKT"):
            raise ValueError(f"order type must be LMT or MKT, got {spec.order_type!r}")
        order = Order(action=action, totalQuantity=spec.quantity, orderType=order_type,
                      tif=spec.tif.upper(), orderRef=order_ref, account=self._account_for_orders(),
                      transmit=True)
        if order_type == "LMT":
            if spec.limit_price is None:
                raise ValueError("a LMT order needs a limit price")
            order.lmtPrice = spec.limit_price
        return order

    async def _what_if(self, spec: OrderSpec) -> WhatIfResult:
        self._require_connected()
        contract = await self._ib_contract(spec.contract, spec.combo_legs)
        order = self._ib_order(spec, "")
        timeout = max(self.settings.connect_timeout * 2, 5.0)
        state = await asyncio.wait_for(self._ib.whatIfOrderAsync(contract, order), timeout)
        if not state:
            raise RuntimeError("the gateway returned no what-if result")

        def number(value: Any) -> float | None:
            return clean_number(value)

        return WhatIfResult(
            init_margin_change=number(state.initMarginChange),
            maint_margin_change=number(state.maintMarginChange),
            init_margin_after=number(state.initMarginAfter),
            maint_margin_after=number(state.maintMarginAfter),
            equity_with_loan_after=number(state.equityWithLoanAfter),
            commission=number(state.commission),
            min_commission=number(state.minCommission),
            max_commission=number(state.maxCommission),
            commission_currency=state.commissionCurrency or "USD",
            warning=state.warningText or "",
        )

    async def _place_order(self, spec: OrderSpec, order_ref: str) -> OrderView:
        self._require_connected()
        if not order_ref:
            raise ValueError("order_ref (the ticket id) is required")
        contract = await self._ib_contract(spec.contract, spec.combo_legs)
        order = self._ib_order(spec, order_ref)
        trade = self._ib.placeOrder(contract, order)
        self._on_trade(trade)
        order_id = trade.order.orderId
        deadline = asyncio.get_running_loop().time() + max(self.settings.connect_timeout * 2, 5.0)
        while asyncio.get_running_loop().time() < deadline:
            acknowledged = (trade.orderStatus.status not in WORKING_STATES
                            or trade.order.permId or order_id in self._state.order_messages)
            if acknowledged:
                break
            if not self._ib.isConnected():
                break
            await asyncio.sleep(0.02)
        view = self._order_view(trade)
        if view.status in WORKING_STATES and not view.perm_id and not view.last_message:
            view = dataclasses.replace(
                view, last_message="no acknowledgement from the gateway yet; check before re-sending")
        self._state.orders[order_key(view)] = view
        self._mark_dirty()
        return view

    async def _cancel_order(self, order_id: int) -> None:
        from ib_async import Order

        self._require_connected()
        trade = next((t for t in self._ib.wrapper.trades.values() if t.order.orderId == order_id), None)
        self._ib.cancelOrder(trade.order if trade is not None else Order(orderId=order_id))

    async def _watch(self, infos: list[ContractInfo]) -> None:
        for info in infos:
            self._watched.add(info.con_id)
            self._ib_contracts.setdefault(info.con_id, contract_to_ib(info))
        if self._session_ready:
            await self._sync_subscriptions()

    async def _cancel_all(self) -> None:
        self._require_connected()
        self._ib.reqGlobalCancel()

    async def _find_orders_by_ref(self, order_ref: str) -> list[OrderView]:
        self._require_connected()
        timeout = max(self.settings.connect_timeout * 2, 5.0)
        open_trades = await asyncio.wait_for(self._ib.reqAllOpenOrdersAsync(), timeout)
        completed = await asyncio.wait_for(self._ib.reqCompletedOrdersAsync(False), timeout)
        fills = await asyncio.wait_for(self._ib.reqExecutionsAsync(), timeout)
        views: dict[Any, OrderView] = {}
        for trade in list(open_trades) + list(completed):
            if getattr(trade.order, "orderRef", "") != order_ref:
                continue
            view = self._order_view(trade)
            views[view.perm_id or ("id", view.client_id, view.order_id)] = view
        by_perm: dict[int, list[Any]] = {}
        for fill in fills:
            if getattr(fill.execution, "orderRef", "") == order_ref:
                by_perm.setdefault(int(fill.execution.permId), []).append(fill)
        for perm_id, group in by_perm.items():
            if perm_id in views:
                continue
            # an order IB no longer lists (e.g. filled in an earlier session) still left executions
            execution = group[-1].execution
            contract, _ = contract_from_ib(group[-1].contract)
            filled = sum(float(f.execution.shares) for f in group)
            views[perm_id] = OrderView(
                order_id=int(execution.orderId), perm_id=perm_id, client_id=int(execution.clientId),
                order_ref=order_ref, account=execution.acctNumber,
                contract=contract or ContractInfo(0, "", ""),
                action="BUY" if execution.side == "BOT" else "SELL", quantity=filled,
                order_type="", limit_price=None, tif="", status="Filled", filled=filled,
                remaining=0.0, avg_fill_price=clean_number(execution.avgPrice),
                last_message="reconstructed from executions", updated_at=_now())
        return sorted(views.values(), key=lambda v: (v.order_id, v.perm_id))

    async def _historical_bars(self, symbol: str, bar_size: str, duration: str) -> pl.DataFrame:
        from ib_async import Stock

        self._require_connected()
        contract = Stock(symbol.upper(), "SMART", "USD")
        qualified = await self._ib.qualifyContractsAsync(contract)
        if not qualified or qualified[0] is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        bars = await self._ib.reqHistoricalDataAsync(
            contract, endDateTime="", durationStr=duration, barSizeSetting=bar_size,
            whatToShow="TRADES", useRTH=True, formatDate=2, timeout=30)
        return bars_frame(bars)


def contract_to_ib(info: ContractInfo) -> Any:
    """An ib_async Contract for a stock or option ContractInfo (BAGs are built from their legs)."""
    from ib_async import Contract

    if info.sec_type not in ("STK", "OPT"):
        raise ValueError(f"cannot trade or quote security type {info.sec_type!r}")
    return Contract(
        conId=info.con_id, symbol=info.symbol, secType=info.sec_type, currency=info.currency,
        exchange=info.exchange or "SMART",
        lastTradeDateOrContractMonth=info.expiry.strftime("%Y%m%d") if info.expiry else "",
        strike=info.strike or 0.0, right=info.right or "",
        multiplier=f"{info.multiplier:g}" if info.is_option else "",
    )


def _bar_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, dtime(0, 0), tzinfo=timezone.utc)
    return None


def bars_frame(bars: Any) -> pl.DataFrame:
    """Historical bars as a polars frame; bars with missing/negative prices are dropped (logged)."""
    rows: dict[str, list] = {k: [] for k in ("time", "open", "high", "low", "close", "volume")}
    dropped = 0
    for bar in bars or ():
        moment = _bar_time(getattr(bar, "date", None))
        prices = [clean_number(getattr(bar, k, None)) for k in ("open", "high", "low", "close")]
        if moment is None or any(p is None or p < 0 for p in prices):
            dropped += 1
            continue
        volume = clean_number(getattr(bar, "volume", None))
        rows["time"].append(moment)
        for key, price in zip(("open", "high", "low", "close"), prices):
            rows[key].append(price)
        rows["volume"].append(volume if volume is not None and volume >= 0 else None)
    if dropped:
        log.warning("dropped %d malformed historical bar(s)", dropped)
    return pl.DataFrame(rows, schema={
        "time": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64,
        "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64,
    })
