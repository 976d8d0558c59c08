"""The process-wide runtime: one ib_async.IB on its own thread and asyncio loop.

Modules, one job each:
- `loop`: the loop thread, start/stop, snapshot rebuilds and the command bridge (Futures)
- `supervisor`: connecting and reconnecting; `backoff`: the schedule and the circuit breaker
- `subscriptions`: quotes and P&L requests kept in line with the book and watches
- `quotes`: `ensure_quotes` / `release_quotes`, quotes on demand for what the book does not hold
- `events`: ib_async event handlers that turn IB objects into live state
- `commands`: what-if, place, cancel, look-ups, historical bars
- `convert`: contracts to ib_async, historical bars to polars
- `facade`: `Runtime`, composed from the above
"""

from v6core.runtime.commands import WORKING_STATES
from v6core.runtime.convert import bars_frame, contract_to_ib
from v6core.runtime.events import (
    CONNECTIVITY_LOST, FARM_BROKEN, FARM_OK, MAX_NOTICES, RESTORED_DATA_KEPT, RESTORED_DATA_LOST,
)
from v6core.runtime.facade import Runtime
from v6core.runtime.loop import HEARTBEAT_INTERVAL, MIN_REBUILD_INTERVAL
from v6core.runtime.quotes import MAX_ON_DEMAND_QUOTES, QuoteCapError
from v6core.runtime.subscriptions import OPTION_GENERIC_TICKS

__all__ = [
    "CONNECTIVITY_LOST", "FARM_BROKEN", "FARM_OK", "HEARTBEAT_INTERVAL", "MAX_NOTICES",
    "MIN_REBUILD_INTERVAL", "OPTION_GENERIC_TICKS", "RESTORED_DATA_KEPT", "RESTORED_DATA_LOST",
    "MAX_ON_DEMAND_QUOTES", "QuoteCapError", "Runtime", "WORKING_STATES", "bars_frame",
    "contract_to_ib",
]
