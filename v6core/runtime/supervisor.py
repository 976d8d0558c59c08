"""Connection supervision: connect, stay connected, reconnect with backoff and a circuit breaker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Any

from v6core.models import ConnState
from v6core.runtime._common import _now

log = logging.getLogger(__name__)


class ConnectionSupervisor:
    """The `_supervise` task and what happens once a session is up."""

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
