"""Option chains streamed through the runtime's one IB connection, only what is on screen.

IB limits simultaneous market-data lines (typically 100, positions and underlyings included),
so a chain is never subscribed whole: each view (a browser session's Trade page) asks for the
strikes it shows with `show()`, which replaces that view's previous lines; `release()` (the
session left the page) or an expired lease (no `show()` for `lease_seconds`) cancels them.
A contract shown by two sessions is one line.

Everything touching ib_async runs on the runtime's loop; other threads read frozen
`OptionQuote`s through `slice()`. Contract lists come from one reqContractDetails per expiry
and reqSecDefOptParams per underlying, cached per session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from v6core.ib_edge import clean_number, contract_from_ib, greeks_from_ib
from v6core.models import ContractInfo
from v6core.structures.chain import ChainSlice, OptionQuote

log = logging.getLogger(__name__)

CHAIN_GENERIC_TICKS = "101,106"       # option open interest, implied vol
DEFAULT_MAX_LINES = 90                 # leaves room under IB's usual 100 for held legs
DEFAULT_LEASE_SECONDS = 15.0


class ChainLineLimit(RuntimeError):
    """Showing this would take more market-data lines than the feed may use."""


@dataclass(slots=True, frozen=True)
class ChainListing:
    symbol: str
    expiries: tuple[date, ...]
    strikes: tuple[float, ...]
    stock: ContractInfo


@dataclass(slots=True)
class _View:
    con_ids: frozenset[int]
    renewed: float


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ChainFeed:
    def __init__(self, runtime: Any, max_lines: int = DEFAULT_MAX_LINES,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.runtime = runtime
        self.max_lines = max_lines
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._quotes: dict[int, OptionQuote] = {}          # swapped whole, read without the lock
        self._contracts: dict[int, ContractInfo] = {}
        self._by_key: dict[tuple[str, date, float, str], ContractInfo] = {}
        self._listings: dict[str, ChainListing] = {}
        self._loaded_expiries: set[tuple[str, date]] = set()
        # loop-thread-only
        self._views: dict[str, _View] = {}
        self._tickers: dict[int, Any] = {}            # the chain's own subscriptions
        self._wanted: set[int] = set()                # what the views show (own or the runtime's)
        self._hooked = False
        self._access: Any = None                      # the runtime's LoopAccess, set on the loop
        self._sweeper: asyncio.Task | None = None

    # ------------------------------------------------------------------ any thread

    def listing(self, symbol: str) -> concurrent.futures.Future[ChainListing]:
        return self._submit(lambda: self._listing(symbol.upper()))

    def show(self, view: str, symbol: str, expiry: date, strikes: Sequence[float]) -> concurrent.futures.Future[int]:
        """Stream these strikes (calls and puts) for `view`, replacing what it showed before.
        Resolves to the number of lines the feed holds; raises ChainLineLimit when over."""
        return self._submit(lambda: self._show(view, symbol.upper(), expiry, tuple(strikes)))

    def show_contracts(self, view: str, contracts: Sequence[ContractInfo]) -> concurrent.futures.Future[int]:
        """Stream these option contracts for `view` (a ticket's legs, wherever they are)."""
        options = tuple(c for c in contracts if c.is_option and c.con_id)
        return self._submit(lambda: self._show_contracts(view, options))

    def quote(self, con_id: int) -> OptionQuote | None:
        return self._quotes.get(con_id)

    def contract_by_id(self, con_id: int) -> ContractInfo | None:
        return self._contracts.get(con_id)

    def release(self, view: str) -> concurrent.futures.Future[int]:
        """Stop streaming what `view` and its sub-views ("<view>:...") showed."""
        return self._submit(lambda: self._release(view))

    @property
    def lines(self) -> int:
        """Market-data lines the chain itself holds (contracts the runtime streams excluded)."""
        return len(self._tickers)

    def views(self) -> dict[str, int]:
        with self._lock:
            return {name: len(v.con_ids) for name, v in self._views.items()}

    def contract(self, symbol: str, expiry: date, strike: float, right: str) -> ContractInfo | None:
        return self._by_key.get((symbol.upper(), expiry, round(float(strike), 4), right))

    def slice(self, symbol: str, expiry: date, strikes: Sequence[float], spot: float,
              stock: OptionQuote | None = None) -> ChainSlice:
        """The latest quotes of these strikes as a ChainSlice (None where none arrived yet)."""
        quotes = self._quotes
        calls, puts = [], []
        for k in strikes:
            for right, side in (("C", calls), ("P", puts)):
                info = self._by_key.get((symbol.upper(), expiry, round(float(k), 4), right))
                q = quotes.get(info.con_id) if info is not None else None
                side.append(q if q is not None else (OptionQuote(info) if info is not None else None))
        return ChainSlice(symbol.upper(), expiry, spot, tuple(float(k) for k in strikes),
                          tuple(calls), tuple(puts), stock)

    def wait_slice(self, symbol: str, expiry: date, strikes: Sequence[float], spot: float,
                   stock: OptionQuote | None = None, timeout: float = 8.0) -> ChainSlice:
        """`slice`, once every shown option has a mid and a delta (or when `timeout` ends: the
        caller's structure then says which strike it lacks)."""
        deadline = time.monotonic() + timeout
        while True:
            chain = self.slice(symbol, expiry, strikes, spot, stock)
            quotes = [q for q in (*chain.calls, *chain.puts) if q is not None]
            if (quotes and all(q.delta is not None and q.mid is not None for q in quotes)) \
                    or time.monotonic() > deadline:
                return chain
            time.sleep(0.1)

    def _quotes_wanted(self) -> set[int]:
        with self._lock:
            return set().union(*(v.con_ids for v in self._views.values())) if self._views else set()

    def _submit(self, factory):
        def job(access):
            self._access = access          # the same live view every time
            return factory()

        return self.runtime.on_loop(job)

    # ------------------------------------------------------------------ runtime loop

    @property
    def _ib(self) -> Any:
        return self._access.ib if self._access is not None else None

    def _hook(self) -> None:
        """Listen to ticks and share the connection's subscriptions with the runtime.

        ib_async keeps one request id per ticker: two reqMktData for one contract leak a line
        and a cancel by one party silently stops the other. So a contract has exactly one
        subscription: when the runtime subscribes one the chain streams (a leg just filled, a
        ticket's legs), the chain hands its line over first; while the runtime streams a
        contract the chain reads that ticker; when the runtime cancels one the chain still
        shows, the chain subscribes it again.
        """
        if self._hooked:
            return
        ib = self._ib
        self._req_mkt_data, self._cancel_mkt_data = ib.reqMktData, ib.cancelMktData

        def req_mkt_data(contract, *args, **kwargs):
            ticker = self._tickers.pop(getattr(contract, "conId", 0), None)
            if ticker is not None:
                self._cancel_mkt_data(ticker.contract)
            return self._req_mkt_data(contract, *args, **kwargs)

        def cancel_mkt_data(contract, *args, **kwargs):
            result = self._cancel_mkt_data(contract, *args, **kwargs)
            if getattr(contract, "conId", 0) in self._wanted:
                asyncio.get_running_loop().call_soon(self._resubscribe)
            return result

        ib.reqMktData, ib.cancelMktData = req_mkt_data, cancel_mkt_data
        ib.pendingTickersEvent += self._on_tickers
        ib.connectedEvent += self._on_connected
        ib.disconnectedEvent += self._on_disconnected
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="v6-chain-sweep")
        self._hooked = True

    def _require(self) -> Any:
        ib = self._ib
        if ib is None or not ib.isConnected():
            raise RuntimeError("the gateway is not connected")
        self._hook()
        return ib

    async def _listing(self, symbol: str) -> ChainListing:
        cached = self._listings.get(symbol)
        if cached is not None:
            return cached
        from ib_async import Stock

        ib = self._require()
        stock = Stock(symbol, "SMART", "USD")
        qualified = await ib.qualifyContractsAsync(stock)
        if not qualified or qualified[0] is None:
            raise ValueError(f"unknown underlying {symbol!r}")
        params = await ib.reqSecDefOptParamsAsync(symbol, "", "STK", stock.conId)
        smart = [p for p in params if p.exchange == "SMART"] or list(params)
        if not smart:
            raise ValueError(f"the gateway lists no options on {symbol}")
        expiries = sorted({datetime.strptime(e, "%Y%m%d").date() for p in smart for e in p.expirations})
        strikes = sorted({float(k) for p in smart for k in p.strikes})
        info, _ = contract_from_ib(stock)
        listing = ChainListing(symbol, tuple(expiries), tuple(strikes), info)
        self._listings[symbol] = listing
        return listing

    async def _load_expiry(self, symbol: str, expiry: date) -> None:
        if (symbol, expiry) in self._loaded_expiries:
            return
        from ib_async import Option

        ib = self._require()
        details = await ib.reqContractDetailsAsync(Option(symbol, expiry.strftime("%Y%m%d"), exchange="SMART"))
        for d in details:
            info, _ = contract_from_ib(d.contract)
            if info is None or not info.is_option or info.expiry is None:
                continue
            info = ContractInfo(info.con_id, info.symbol, info.sec_type, info.currency, info.expiry,
                                info.strike, info.right, info.multiplier, info.local_symbol,
                                "SMART", info.trading_class)
            self._contracts[info.con_id] = info
            self._by_key[(symbol, info.expiry, round(float(info.strike), 4), info.right)] = info
        self._loaded_expiries.add((symbol, expiry))

    async def _show(self, view: str, symbol: str, expiry: date, strikes: tuple[float, ...]) -> int:
        self._require()
        await self._load_expiry(symbol, expiry)
        wanted = frozenset(info.con_id for k in strikes for right in ("C", "P")
                           if (info := self._by_key.get((symbol, expiry, round(float(k), 4), right))))
        return self._set_view(view, wanted)

    async def _show_contracts(self, view: str, contracts: tuple[ContractInfo, ...]) -> int:
        self._require()
        for info in contracts:
            self._contracts.setdefault(info.con_id, info)
            self._by_key.setdefault((info.symbol, info.expiry, round(float(info.strike), 4), info.right), info)
        return self._set_view(view, frozenset(c.con_id for c in contracts))

    def _set_view(self, view: str, wanted: frozenset[int]) -> int:
        ib = self._ib
        with self._lock:
            others = set().union(*(v.con_ids for name, v in self._views.items() if name != view)) \
                if len(self._views) > (view in self._views) else set()
            if len(others | wanted) > self.max_lines:
                raise ChainLineLimit(
                    f"{len(wanted)} chain lines for this view and {len(others)} for others exceed the "
                    f"{self.max_lines} market-data lines the chain may use; show fewer strikes")
            self._views[view] = _View(wanted, time.monotonic())
        self._apply(ib)
        return len(self._tickers)

    async def _release(self, view: str) -> int:
        with self._lock:     # the view and its sub-views ("<view>:ticket", "<view>:far", ...)
            for name in [n for n in self._views if n == view or n.startswith(view + ":")]:
                del self._views[name]
        ib = self._ib
        if ib is not None and ib.isConnected():
            self._apply(ib)
        return len(self._tickers)

    def _apply(self, ib: Any) -> None:
        """Make the subscriptions match the union of the views."""
        from ib_async import Contract

        self._hook()
        wanted = self._quotes_wanted()
        self._wanted = wanted
        streamed = self._access.streamed()
        runtime_streams = set(streamed)
        own = wanted - runtime_streams
        for con_id in sorted(own - set(self._tickers)):
            info = self._contracts[con_id]
            contract = Contract(conId=con_id, symbol=info.symbol, secType="OPT", exchange="SMART",
                                currency=info.currency,
                                lastTradeDateOrContractMonth=info.expiry.strftime("%Y%m%d"),
                                strike=info.strike, right=info.right, multiplier=f"{info.multiplier:g}")
            self._tickers[con_id] = self._req_mkt_data(contract, CHAIN_GENERIC_TICKS, False, False)
        for con_id in set(self._tickers) - own:
            ticker = self._tickers.pop(con_id)
            if ib.isConnected():
                self._cancel_mkt_data(ticker.contract)
        gone = set(self._quotes) - wanted
        if gone:
            self._quotes = {k: v for k, v in self._quotes.items() if k not in gone}
        borrowed = wanted & runtime_streams
        if borrowed:       # the runtime's tickers already hold data: show it now, not at the next tick
            self._on_tickers([streamed[c] for c in borrowed])

    def _on_tickers(self, tickers: Any) -> None:
        try:
            mine = [t for t in tickers if getattr(t.contract, "conId", 0) in self._wanted]
            if not mine:
                return
            now = _now()
            updated = dict(self._quotes)
            for ticker in mine:
                con_id = ticker.contract.conId
                info = self._contracts.get(con_id)
                if info is None:
                    continue
                updated[con_id] = self._quote(info, ticker, now)
            self._quotes = updated
        except Exception:
            log.exception("chain tickers could not be read")

    @staticmethod
    def _quote(info: ContractInfo, ticker: Any, now: datetime) -> OptionQuote:
        greeks, _ = greeks_from_ib(getattr(ticker, "modelGreeks", None))
        bid, ask = clean_number(ticker.bid), clean_number(ticker.ask)
        oi = clean_number(ticker.callOpenInterest if info.right == "C" else ticker.putOpenInterest)
        iv = greeks.iv if greeks is not None and greeks.iv else clean_number(ticker.impliedVolatility)
        return OptionQuote(
            info, bid=bid if bid is not None and bid >= 0 else None,
            ask=ask if ask is not None and ask > 0 else None, iv=iv,
            delta=greeks.delta if greeks else None, gamma=greeks.gamma if greeks else None,
            theta=greeks.theta if greeks else None, vega=greeks.vega if greeks else None,
            open_interest=oi, und_price=greeks.und_price if greeks else None, time=now)

    def _on_connected(self) -> None:
        # the old session's lines are gone with it: subscribe the views again
        asyncio.get_running_loop().call_soon(self._resubscribe)

    def _resubscribe(self) -> None:
        ib = self._ib
        if ib is not None and ib.isConnected():
            self._apply(ib)

    def _on_disconnected(self) -> None:
        self._tickers.clear()
        self._quotes = {}
        self._listings.clear()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(self.lease_seconds / 3, 0.5))
            cutoff = time.monotonic() - self.lease_seconds
            with self._lock:
                expired = [name for name, v in self._views.items() if v.renewed < cutoff]
                for name in expired:
                    del self._views[name]
            if expired:
                log.info("chain views %s expired", ", ".join(expired))
                ib = self._ib
                if ib is not None and ib.isConnected():
                    self._apply(ib)
