"""SimGateway: runs the simulator on its own thread and asyncio loop; thread-safe inspection."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from datetime import date
from pathlib import Path
from typing import Callable, TypeVar

from v6core.models import ContractInfo
from v6core.sim import persistence
from v6core.sim.account import Account, SimPosition
from v6core.sim.faults import Faults
from v6core.sim.market import Market
from v6core.sim.orders import SimOrder
from v6core.sim.server import SimServer

T = TypeVar("T")
log = logging.getLogger(__name__)


def account_id_for(seed: int) -> str:
    """The paper account id a seed gets (DU + 7 digits), stable across runs."""
    return f"DU{(1_000_000 + seed * 7919) % 10_000_000:07d}"


class SimGateway:
    """A TWS-protocol gateway over a simulated market and paper account.

    `start()` binds the port (0 = a free one) and returns it; every other method may be called
    from any thread while the sim loop runs.
    """

    def __init__(self, seed: int = 7, host: str = "127.0.0.1", port: int = 0,
                 tick_rate: float = 3.0, time_speed: float = 1.0,
                 state_path: Path | str | None = None, fresh: bool = False) -> None:
        """`state_path`: keep the paper account there across restarts (None: a fresh seeded book
        every start); `fresh`: start from the seeded book even if a saved account exists (the
        saved one is replaced at the first order event)."""
        if tick_rate <= 0:
            raise ValueError("tick_rate must be > 0")
        if time_speed <= 0:
            raise ValueError("time_speed must be > 0")
        self.seed = seed
        self.host = host
        self.port = port
        self.account_id = account_id_for(seed)
        self._tick_rate, self._time_speed = tick_rate, time_speed
        self._build()
        self.state_path = Path(state_path) if state_path is not None else None
        self.restored = False                 # True when the account came from the state file
        if self.state_path is not None:
            if not fresh:
                self._restore(self.state_path)
            self._server.state_path = self.state_path
            if fresh:
                self._server.mark_changed()   # the fresh book replaces the saved one at stop
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _build(self) -> None:
        self._market = Market(self.seed, self._time_speed)
        self._account = Account(self.account_id, self._market, self.seed)
        self._server = SimServer(self.seed, self._tick_rate, self._market, self._account)

    def _restore(self, path: Path) -> None:
        state = persistence.load(path)
        if state is None:
            return
        try:
            persistence.restore(self._server, state)
        except (ValueError, KeyError, TypeError) as exc:
            aside = path.with_name(f"{path.name}.unusable")
            log.warning("sim: cannot restore %s (%s); kept as %s, starting a fresh book", path, exc, aside)
            path.replace(aside)
            self._build()
            return
        self.restored = True

    # ---- lifecycle
    def start(self) -> int:
        if self._thread is not None:
            return self.port
        ready: Future[int] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                port = loop.run_until_complete(self._server.start(self.host, self.port))
            except BaseException as exc:  # bind failure: report it to start()
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(port)
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name=f"v6-sim-{self.seed}", daemon=True)
        self._thread.start()
        try:
            self.port = ready.result(timeout=30)
        except BaseException:
            self._thread = None
            raise
        return self.port

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run fn on the sim loop (or directly when the loop is not running / we are on it)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=30)

    # ---- inspection
    @property
    def faults(self) -> Faults:
        return self._server.faults

    @property
    def today(self) -> date:
        return self._market.today

    def seeded_positions(self) -> list[SimPosition]:
        """The book the account started with (IB-style avg_cost), whatever was traded since."""
        return list(self._account.seeded)

    def positions(self) -> list[SimPosition]:
        """Current non-zero holdings of the account."""
        return self._call(lambda: [p for p in self._account.positions() if p.quantity])

    def contract(self, con_id: int) -> ContractInfo:
        info = self._market.universe.by_id.get(con_id)
        if info is None:
            raise KeyError(f"no listed contract with conId {con_id}")
        return info

    def lookup(self, symbol: str, expiry: date | None = None, strike: float | None = None,
               right: str | None = None) -> ContractInfo | None:
        universe = self._market.universe
        if expiry is None and strike is None and right is None:
            return universe.stock(symbol.upper())
        if expiry is None or strike is None or right is None:
            return None
        return universe.option(symbol.upper(), expiry, strike, right.upper()[:1])

    def expiries(self, symbol: str) -> list[date]:
        return list(self._market.universe.expiries[symbol.upper()])

    def strikes(self, symbol: str) -> list[float]:
        return list(self._market.universe.strikes[symbol.upper()])

    def spot(self, symbol: str) -> float:
        return self._call(lambda: self._market.spots[symbol.upper()])

    def set_spot(self, symbol: str, price: float) -> None:
        """Force the underlying's price; quotes and working orders react at once."""
        def apply() -> None:
            self._market.set_spot(symbol.upper(), price)
            if self._loop is not None and self._loop.is_running():
                self._server.on_market_change()
        self._call(apply)

    def quote(self, con_id: int) -> dict:
        """The sim's current bid/ask/last/mark for a contract."""
        def read() -> dict:
            q = self._market.quote(self.contract(con_id))
            return {"bid": q.bid, "ask": q.ask, "last": q.last, "mark": q.mark}
        return self._call(read)

    def option_inputs(self, con_id: int) -> dict:
        """dict(spot, strike, t_years, rate, iv, right, price) the sim prices this option with."""
        info = self.contract(con_id)
        if info.sec_type != "OPT":
            raise ValueError(f"conId {con_id} is not an option")

        def read() -> dict:
            inputs = self._market.option_inputs(info)
            inputs.pop("greeks")
            return inputs
        return self._call(read)

    def account_values(self) -> dict[str, float]:
        return self._call(lambda: dict(self._account.summary()))

    def freeze(self) -> None:
        """Stop price movement and the sim clock, so quotes and Greeks repeat exactly."""
        self._call(self._market.clock.freeze)

    def unfreeze(self) -> None:
        self._call(self._market.clock.unfreeze)

    def orders(self) -> list[SimOrder]:
        return self._call(self._server.engine.public_orders)

    def fills(self) -> list[dict]:
        def read() -> list[dict]:
            return [{"exec_id": f.exec_id, "order_id": f.order_id, "client_id": f.client_id,
                     "perm_id": f.perm_id, "con_id": f.contract.con_id, "side": f.side,
                     "quantity": f.quantity, "price": f.price, "commission": f.commission,
                     "realized": f.realized, "order_ref": f.order_ref}
                    for f in self._server.engine.fills]
        return self._call(read)

    def client_count(self) -> int:
        return self._call(lambda: len([s for s in self._server.sessions if s.client_id is not None]))

    def subscription_counts(self) -> dict[str, int]:
        """Live subscriptions over all client sessions: market data, account P&L, position P&L."""
        def read() -> dict[str, int]:
            sessions = [s for s in self._server.sessions if s.client_id is not None]
            pnl = [c for s in sessions for c in s.pnl_reqs.values()]
            return {"market_data": sum(len(s.subs) for s in sessions),
                    "pnl": sum(1 for c in pnl if c is None),
                    "pnl_single": sum(1 for c in pnl if c is not None)}
        return self._call(read)

    # ---- listening
    def stop_listening(self) -> None:
        """Close the listening socket (existing connections stay) until start_listening()."""
        self._run_async(self._server.stop_listening())

    def start_listening(self) -> int:
        """Listen again on the same port."""
        return self._run_async(self._server.start_listening(self.port))

    def _run_async(self, coro):
        if self._loop is None:
            coro.close()
            raise RuntimeError("the sim is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def __enter__(self) -> SimGateway:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
