"""Connection supervision: connect, stay connected, reconnect (schedule and breaker: `backoff`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Any

from v6core.models import ConnState
from v6core.runtime._common import _now
from v6core.runtime.backoff import is_refused

log = logging.getLogger(__name__)


class ConnectionSupervisor:
    """The `_supervise` task and what happens once a session is up."""

    # -- connection lifecycle -----------------------------------------------------------------

    async def _supervise(self) -> None:
        """Connect, stay connected, reconnect (see `backoff` for the schedule and the breaker)."""
        settings = self.settings
        policy = self._reconnect
        loop = asyncio.get_running_loop()
        while True:
            self._set_status(state=ConnState.CONNECTING, breaker=policy.breaker,
                             attempts=self._status.attempts + 1, next_retry_at=None)
            self._frames.reset()
            try:
                await self._ib.connectAsync(
                    self._host, self._port, clientId=settings.client_id,
                    timeout=settings.connect_timeout, account=settings.account)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                refused = is_refused(exc)
                delay = policy.on_refused() if refused else policy.on_failure()
                error = f"connect to {self._host}:{self._port} failed: {type(exc).__name__}: {exc}".rstrip(": ")
                log.warning("%s (%s)", error, f"refused {policy.refused}" if refused
                            else f"failure {policy.failures} after connect")
                await self._wait_to_retry(delay, last_error=error)
                continue
            policy.on_connected()
            connected_at = loop.time()
            self._session_lost = asyncio.Event()
            try:
                await self._on_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("setting up the session failed")
                self._set_status(last_error=f"session setup failed: {exc}")
            await self._session_lost.wait()
            await self._wait_to_retry(policy.on_session_lost(loop.time() - connected_at))

    async def _wait_to_retry(self, delay: float, **status: Any) -> None:
        self._set_status(state=ConnState.DISCONNECTED, breaker=self._reconnect.breaker,
                         next_retry_at=_now() + timedelta(seconds=delay), **status)
        await asyncio.sleep(delay)
        self._reconnect.waited()

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
