"""Quotes on demand: live quotes for contracts the book does not hold (tickets, signals).

Held legs, their underlyings, SPY and the configured watchlist are always quoted. Anything else
a ticket or a page needs is asked for with `ensure_quotes(..., owner)` and given back with
`release_quotes(owner)`; a contract stays subscribed while any owner still wants it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterable

from v6core.ib_edge import contract_from_ib
from v6core.models import ContractInfo

log = logging.getLogger(__name__)

# IB accounts start with about 100 market-data lines; the book and its underlyings need their
# share, so on-demand quotes are capped well below that.
MAX_ON_DEMAND_QUOTES = 40


class QuoteCapError(RuntimeError):
    """Quoting these would exceed MAX_ON_DEMAND_QUOTES extra market-data lines."""


class OnDemandQuotes:
    """`ensure_quotes` / `release_quotes`: the runtime's API for quotes beyond the book."""

    def ensure_quotes(self, wanted: Iterable[ContractInfo | str], owner: str
                      ) -> concurrent.futures.Future[list[ContractInfo]]:
        """Keep live quotes for `wanted` in the snapshot on behalf of `owner`, until
        `release_quotes(owner)`.

        `wanted` holds stock/option `ContractInfo`s or plain stock symbols ("TSLA"). Anything
        without a conId is qualified with the gateway first. The Future resolves to the
        qualified contracts, in order (unknown symbols raise ValueError), once their market data
        is requested: the quote itself arrives in a following snapshot (`snapshot().quote(con_id)`).
        `owner` is any stable name: a ticket id, "signals-page". Calling again for the same owner
        adds to what it holds. Contracts already quoted (held legs, underlyings) cost nothing.
        Subscriptions survive reconnects. More than MAX_ON_DEMAND_QUOTES extra contracts at once
        raise QuoteCapError and subscribe nothing.
        """
        items = list(wanted)
        return self._submit(lambda: self._ensure_quotes(items, str(owner)))

    def release_quotes(self, owner: str) -> concurrent.futures.Future[None]:
        """`owner` no longer needs its quotes: contracts nobody else wants are unsubscribed and
        their quotes leave the snapshot. Releasing an unknown owner is a no-op."""
        return self._submit(lambda: self._release_quotes(str(owner)))

    def _on_demand_ids(self) -> set[int]:
        return set().union(*self._quote_owners.values()) if self._quote_owners else set()

    async def _ensure_quotes(self, items: list[ContractInfo | str], owner: str) -> list[ContractInfo]:
        from ib_async import Stock
        from ib_async.wrapper import RequestError

        self._require_connected()
        resolved: list[ContractInfo] = []
        for item in items:
            if isinstance(item, ContractInfo) and item.con_id and item.sec_type in ("STK", "OPT"):
                resolved.append(item)
                self._ib_contracts.setdefault(item.con_id, self._ib_contract_for(item))
                continue
            if isinstance(item, str):
                contract = Stock(item.strip().upper(), "SMART", "USD")
            elif item.sec_type in ("STK", "OPT"):
                contract = self._ib_contract_for(item)
            else:
                raise ValueError(f"cannot quote security type {item.sec_type!r}")
            try:
                qualified = await asyncio.wait_for(self._ib.qualifyContractsAsync(contract),
                                                   max(self.settings.connect_timeout * 2, 5.0))
            except RequestError:
                qualified = None
            if not qualified or qualified[0] is None or not getattr(contract, "conId", 0):
                raise ValueError(f"the gateway does not know {item if isinstance(item, str) else item.label}")
            info, _ = contract_from_ib(contract)
            if info is None:
                raise ValueError(f"the gateway returned an unusable contract for {item}")
            self._ib_contracts[info.con_id] = contract
            if info.sec_type == "STK":
                self._state.underlying_ids.setdefault(info.symbol, info.con_id)
            resolved.append(info)
        held = {key[1] for key in self._state.positions}
        extra = (self._on_demand_ids() | {c.con_id for c in resolved}) - held
        if len(extra) > MAX_ON_DEMAND_QUOTES:
            raise QuoteCapError(f"{len(extra)} extra quotes would exceed the cap of "
                                f"{MAX_ON_DEMAND_QUOTES}; release some first")
        self._quote_owners.setdefault(owner, set()).update(c.con_id for c in resolved)
        if self._session_ready:
            await self._sync_subscriptions()
        return resolved

    async def _release_quotes(self, owner: str) -> None:
        if self._quote_owners.pop(owner, None) is None:
            return
        if self._session_ready:
            await self._sync_subscriptions()

    @staticmethod
    def _ib_contract_for(info: ContractInfo):
        from v6core.runtime.convert import contract_to_ib

        return contract_to_ib(info)
