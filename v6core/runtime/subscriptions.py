"""Subscriptions: make quotes, account P&L and per-position P&L match what the book needs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
from collections.abc import Iterable

from v6core.models import ContractInfo
from v6core.runtime.convert import contract_to_ib

log = logging.getLogger(__name__)

OPTION_GENERIC_TICKS = "106"            # option implied volatility


class Subscriptions:
    """Which market data and P&L requests are open, kept in line with positions and watches."""

    def watch(self, contracts: Iterable[ContractInfo]) -> concurrent.futures.Future[None]:
        """Also keep live quotes for these stocks/options in the snapshot (ticket quotes,
        watchlists); kept across reconnects. Positions and underlyings are always quoted."""
        infos = [c for c in contracts if c.con_id and c.sec_type in ("STK", "OPT")]
        return self._submit(lambda: self._watch(infos))

    async def _watch(self, infos: list[ContractInfo]) -> None:
        for info in infos:
            self._watched.add(info.con_id)
            self._ib_contracts.setdefault(info.con_id, contract_to_ib(info))
        if self._session_ready:
            await self._sync_subscriptions()

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
        wanted: set[int] = {p.contract.con_id for p in legs} | self._watched | self._on_demand_ids()
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
            # nobody needs it any more: its last quote must not linger as if live
            state.quotes.pop(con_id, None)
            self._pending_tickers.pop(con_id, None)
            state.dirty = True
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
