"""Request handlers by domain, and the table from incoming message id to handler.

Like ib_async's decoder: one dict, built once, from message id to a function taking the session
and the request's fields. Each domain module keeps its own `HANDLERS` part and a mixin of the
Session with the methods (so a handler reads the session's state as `self`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.sim.fields import Fields
from v6core.sim.handlers import account, connection, contracts, history, market_data, orders

if TYPE_CHECKING:
    from v6core.sim.session import Session


def _table() -> dict[int, Callable[[Session, Fields], None]]:
    table: dict[int, Callable[[Session, Fields], None]] = {}
    for part in (connection, account, contracts, market_data, orders, history):
        overlap = table.keys() & part.HANDLERS.keys()
        if overlap:
            raise RuntimeError(f"message ids handled twice: {sorted(overlap)}")
        table.update(part.HANDLERS)
    return table


HANDLERS = _table()
