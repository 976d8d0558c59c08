"""asyncio TWS server: the shared simulated world (market, account, order engine), the listening
socket and its sessions, and one market task that ticks every subscription and re-checks working
orders. A connection's framing and requests live in v6core.sim.session and v6core.sim.handlers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from v6core.models import ContractInfo
from v6core.sim import messages as msg
from v6core.sim import persistence
from v6core.sim.account import Account
from v6core.sim.chains import SPEC_BY_SYMBOL
from v6core.sim.faults import Faults
from v6core.sim.fields import BadRequest, Fields
from v6core.sim.handlers import HANDLERS
from v6core.sim.handlers import market_data as _ticks
from v6core.sim.handlers.market_data import MarketSub
from v6core.sim.market import NEW_YORK, Market, Quote
from v6core.sim.orders import Fill, LiveOrder, OrderEngine
from v6core.sim.session import MAX_WRITE_BUFFER, Session
from v6core.sim.trading_hours import trading_hours
from v6core.sim.versions import MIN_CLIENT_VERSION, SERVER_VERSION

__all__ = ["SimServer", "Session", "Fields", "BadRequest", "MarketSub", "HANDLERS",
           "MIN_CLIENT_VERSION", "MAX_WRITE_BUFFER", "ACCOUNT_REFRESH_SECONDS", "ID_FIELD"]

log = logging.getLogger(__name__)

ACCOUNT_REFRESH_SECONDS = 1.0
# where the request/order id sits in requests that carry one (the client's shared id counter)
ID_FIELD = {1: 2, 3: 1, 7: 2, 9: 2, 20: 1, 54: 2, 55: 2, 62: 2, 76: 2, 78: 1, 92: 1, 94: 1}


class SimServer:
    """Shared state (market, account, orders) and the sessions; lives on one asyncio loop."""

    def __init__(self, seed: int, tick_rate: float, market: Market, account: Account) -> None:
        self.seed = seed
        self.tick_rate = tick_rate
        self.market = market
        self.account = account
        self.faults = Faults(on_drop_all=self._drop_all_threadsafe)
        self.engine = OrderEngine(market, account, self, seed)
        self.sessions: set[Session] = set()
        self.client_ids: dict[int, Session] = {}
        self.next_ids: dict[int, int] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host = ""
        self.port = 0
        self._quote_cache: dict[int, tuple[int, Quote]] = {}
        self.computation_cache: dict[tuple[int, int], tuple[int, float, tuple]] = {}   # ticks 10-12
        self._summary_cache: tuple[int, int, dict] | None = None
        self._fills_version = 0
        self.state_path: Path | None = None          # where the paper account persists (or not)
        self._save_handle: asyncio.TimerHandle | None = None
        self._dirty = False                           # an order event since the last save

    # ---- lifecycle
    async def start(self, host: str, port: int) -> int:
        self.loop = asyncio.get_running_loop()
        self.host = host
        await self.start_listening(port)
        self._tasks = [asyncio.create_task(self._market_task()),
                       asyncio.create_task(self._account_task())]
        return self.port

    async def start_listening(self, port: int | None = None) -> int:
        if self._server is not None:
            return self.port
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port if port is None else port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_listening(self) -> None:
        if self._server is not None:
            # no wait_closed(): from Python 3.12 it also waits for every open connection
            self._server.close()
            self._server = None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.drop_all()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._save_handle is not None:
            self._save_handle.cancel()
        self.save_state_now()
        await asyncio.sleep(0)

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.close()

    def _drop_all_threadsafe(self) -> None:
        if self.loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.drop_all()
        else:
            asyncio.run_coroutine_threadsafe(self._drop_all_async(), self.loop).result(5)

    async def _drop_all_async(self) -> None:
        self.drop_all()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    def session_ended(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self.client_ids.get(session.client_id) is session:
            del self.client_ids[session.client_id]

    def claim_client_id(self, session: Session, client_id: int) -> bool:
        holder = self.client_ids.get(client_id)
        if holder is not None and not holder.closed:
            return False
        self.client_ids[client_id] = session
        return True

    def next_order_id(self, client_id: int) -> int:
        return self.next_ids.get(client_id, 1)

    def note_id(self, session: Session, fields: list[str]) -> None:
        """Track the highest request/order id a client used so reqIds/reconnects continue above it."""
        if session.client_id is None or len(fields) < 3:
            return
        try:
            index = ID_FIELD.get(int(fields[0]))
            if index is None:
                return
            candidate = int(fields[index])
        except (ValueError, IndexError):
            return
        if 0 < candidate < 2**31 - 1:
            current = self.next_ids.get(session.client_id, 1)
            self.next_ids[session.client_id] = max(current, candidate + 1)

    # ---- lookups
    def resolve(self, spec: dict, many: bool = False):
        universe = self.market.universe
        if spec["con_id"]:
            info = universe.by_id.get(spec["con_id"])
            found = [info] if info else []
        else:
            sec_type = spec["sec_type"].upper()
            if sec_type == "OPT" and spec["local_symbol"].strip() and not spec["symbol"]:
                found = [i for i in universe.options.values() if i.local_symbol == spec["local_symbol"]]
            else:
                found = universe.matching(spec["symbol"], sec_type, spec["expiry"].strip()[:8],
                                          spec["strike"] or None, spec["right"])
            if spec["local_symbol"].strip() and found:
                found = [i for i in found if i.local_symbol.replace(" ", "") ==
                         spec["local_symbol"].replace(" ", "")] or found
        if many:
            return found
        return found[0] if len(found) == 1 else None

    def contract_data(self, req_id: int, info: ContractInfo, version: int = SERVER_VERSION) -> list:
        spec = SPEC_BY_SYMBOL[info.symbol]
        if info.sec_type == "OPT":
            name = f"{spec.long_name} {info.expiry:%b%d'%y} {info.strike:g} {'Call' if info.right == 'C' else 'Put'}"
        else:
            name = spec.long_name
        hours = trading_hours(self.market.clock.now().astimezone(NEW_YORK).date(), info.sec_type)
        return msg.contract_data(req_id, info, name, 0.01, spec.con_id, hours, version)

    # ---- valuation helpers (cached per market version)
    def quote(self, info: ContractInfo) -> Quote:
        cached = self._quote_cache.get(info.con_id)
        if cached is not None and cached[0] == self.market.version:
            return cached[1]
        q = self.market.quote(info)
        self._quote_cache[info.con_id] = (self.market.version, q)
        return q

    def account_summary(self) -> dict:
        key = (self.market.version, self._fills_version)
        if self._summary_cache is None or self._summary_cache[:2] != key:
            self._summary_cache = (*key, self.account.summary())
        return self._summary_cache[2]

    def portfolio_row(self, holding) -> dict:
        return self.account.portfolio_row(holding)

    def send_pnl(self, session: Session, req_id: int, con_id: int | None) -> None:
        acct = self.account
        if con_id is None:
            s = self.account_summary()
            session.send([94, req_id, s["DailyPnL"], s["UnrealizedPnL"], s["RealizedPnL"]])
            return
        h = acct.holdings.get(con_id)
        if h is None:
            session.send([95, req_id, 0, 0.0, 0.0, 0.0, 0.0])
            return
        row = acct.portfolio_row(h)
        session.send([95, req_id, msg.quantity_text(h.quantity), row["daily"] if h.quantity else 0.0,
                      row["unrealized"] if h.quantity else 0.0, h.realized,
                      row["market_value"] if h.quantity else 0.0])

    # ---- ticking (the tick writer lives with the market-data handlers)
    def send_ticks(self, session: Session, sub: MarketSub, first: bool = False) -> None:
        _ticks.send_ticks(self, session, sub, first)

    async def _market_task(self) -> None:
        interval = 1.0 / self.tick_rate
        loop = asyncio.get_running_loop()
        last = due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            if now - due > 1.0:          # fell far behind (suspended, overloaded): do not burst
                due = now
            try:
                self.market.step(now - last)
                self.on_market_change()
            except Exception:  # noqa: BLE001 - the market must keep ticking for everyone else
                log.exception("sim: market tick failed")
            last = now

    def on_market_change(self) -> None:
        for session in list(self.sessions):
            for sub in list(session.subs.values()):
                self.send_ticks(session, sub)
        self.engine.on_market()

    async def _account_task(self) -> None:
        while True:
            await asyncio.sleep(ACCOUNT_REFRESH_SECONDS)
            try:
                self.refresh_accounts()
            except Exception:  # noqa: BLE001 - keep refreshing the other sessions next time
                log.exception("sim: account refresh failed")

    def refresh_accounts(self) -> None:
        for session in list(self.sessions):
            if session.account_updates:
                session.send_account_values(include_portfolio=True)
            for req_id, con_id in list(session.pnl_reqs.items()):
                self.send_pnl(session, req_id, con_id)

    # ---- OrderSink
    def _owner(self, client_id: int) -> Session | None:
        session = self.client_ids.get(client_id)
        return session if session is not None and not session.closed else None

    # ---- persistence of the paper account
    def schedule_save(self) -> None:
        """Write the state file shortly after an order event (a burst is written once)."""
        self._dirty = True
        if self.state_path is None or self.loop is None or self._save_handle is not None:
            return
        self._save_handle = self.loop.call_later(persistence.SAVE_DELAY, self.save_state_now)

    def mark_changed(self) -> None:
        self._dirty = True

    def save_state_now(self) -> None:
        self._save_handle = None
        if self.state_path is None or not self._dirty:
            return
        try:
            persistence.save(self, self.state_path)
            self._dirty = False
        except OSError:  # a full disk must not stop the market; the next event tries again
            log.exception("sim: could not save the paper account to %s", self.state_path)

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        session = self._owner(client_id)
        if session:
            session.error(order_id, code, message)

    def order_open(self, order: LiveOrder, what_if: dict | None = None) -> None:
        self.schedule_save()
        session = self._owner(order.client_id)
        if session:
            session.send(msg.open_order(order, what_if, session.version))

    def order_status(self, order: LiveOrder) -> None:
        self.schedule_save()
        session = self._owner(order.client_id)
        if session:
            if order.status == "Filled":
                session.send(msg.open_order(order, None, session.version))
            session.send(msg.order_status(order))

    def order_fill(self, order: LiveOrder, fill: Fill) -> None:
        self._fills_version += 1
        session = self._owner(order.client_id)
        if session:
            session.send(msg.execution(-1, fill, session.version))
            session.send(msg.commission_report(fill))

    def positions_changed(self, con_ids: list[int]) -> None:
        self.schedule_save()
        self._fills_version += 1
        acct = self.account
        for session in list(self.sessions):
            for con_id in con_ids:
                h = acct.holdings[con_id]
                if session.positions_sub:
                    session.send(msg.position(acct.account_id, h.contract, h.quantity, h.avg_cost))
                if session.account_updates:
                    session.send_portfolio_row(h)
            if session.account_updates:
                session.send_account_values(include_portfolio=False)
