"""The paper account across restarts, like a real paper account: positions, cash, working and
finished orders, executions and the id sequences, in one JSON state file written atomically.

The embedded simulator keeps the file beside the lake (`state_path_beside(lake_path, seed)`), so
the dashboard's history and the account it shows stay one story. Saving happens on the sim loop
shortly after every order event (debounced) and when the simulator stops. Loading happens before
the simulator starts. A new trading day since the last save rolls the book like IB does overnight:
DAY orders are cancelled, expired options settle at intrinsic value, today's P&L starts again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v6core.models import ContractInfo
from v6core.sim.account import Holding, SimPosition
from v6core.sim.orders import Fill, LiveOrder

if TYPE_CHECKING:
    from v6core.sim.server import SimServer

log = logging.getLogger(__name__)

STATE_FORMAT = 1
SAVE_DELAY = 0.5            # seconds: a burst of order events is written once


def state_path_beside(lake_path: Path, account_id: str) -> Path:
    """`data/lake` -> `data/lake.sim-DU1055433.json` (one file per simulated account)."""
    lake_path = Path(lake_path)
    return lake_path.parent / f"{lake_path.name}.sim-{account_id}.json"


# ---- (de)serialising the core values
def _contract(info: ContractInfo) -> dict:
    data = dataclasses.asdict(info)
    data["expiry"] = info.expiry.isoformat() if info.expiry else None
    return data


def _contract_from(data: dict) -> ContractInfo:
    data = dict(data)
    data["expiry"] = date.fromisoformat(data["expiry"]) if data.get("expiry") else None
    return ContractInfo(**data)


def _order(order: LiveOrder) -> dict:
    data = {f.name: getattr(order, f.name) for f in dataclasses.fields(order)
            if f.name not in ("contract", "legs")}
    data["contract"] = _contract(order.contract)
    data["legs"] = [[_contract(info), ratio, action] for info, ratio, action in order.legs]
    return data


def _order_from(data: dict) -> LiveOrder:
    data = dict(data)
    data["contract"] = _contract_from(data["contract"])
    data["legs"] = [(_contract_from(c), ratio, action) for c, ratio, action in data["legs"]]
    return LiveOrder(**data)


def _fill(fill: Fill) -> dict:
    data = {f.name: getattr(fill, f.name) for f in dataclasses.fields(fill)}
    data["contract"] = _contract(fill.contract)
    data["time"] = fill.time.isoformat()
    return data


def _fill_from(data: dict) -> Fill:
    data = dict(data)
    data["contract"] = _contract_from(data["contract"])
    data["time"] = datetime.fromisoformat(data["time"])
    return Fill(**data)


# ---- the whole state
def snapshot(server: SimServer) -> dict[str, Any]:
    """The paper account as plain data; call on the sim loop."""
    account, engine = server.account, server.engine
    return {
        "format": STATE_FORMAT,
        "saved_at": datetime.now(timezone.utc).isoformat(),
        "day": server.market.today.isoformat(),
        "account_id": account.account_id,
        "seed": server.seed,
        "cash": account.cash,
        "holdings": [{"contract": _contract(h.contract), "quantity": h.quantity,
                      "avg_cost": h.avg_cost, "realized": h.realized,
                      "start_quantity": h.start_quantity, "day_cash": h.day_cash}
                     for h in account.holdings.values()],
        "seeded": [{"contract": _contract(p.contract), "quantity": p.quantity,
                    "avg_cost": p.avg_cost} for p in account.seeded],
        "orders": [_order(o) for o in engine.orders.values()],
        "fills": [_fill(f) for f in engine.fills],
        "next_ids": {str(k): v for k, v in server.next_ids.items()},
        "next_perm_id": engine.peek_perm_id(),
        "next_exec_seq": engine.peek_exec_seq(),
    }


def restore(server: SimServer, state: dict[str, Any]) -> None:
    """Put a saved paper account back into a server that has not started yet."""
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"unknown state format {state.get('format')!r}")
    account, engine, market = server.account, server.engine, server.market
    if state["account_id"] != account.account_id:
        raise ValueError(f"state of account {state['account_id']}, not {account.account_id}")
    universe = market.universe
    account.cash = float(state["cash"])
    account.holdings = {}
    for row in state["holdings"]:
        info = _contract_from(row["contract"])
        universe.by_id.setdefault(info.con_id, info)      # listed before; may be off today's grid
        account.holdings[info.con_id] = Holding(info, row["quantity"], row["avg_cost"], row["realized"],
                                                row["start_quantity"], row["day_cash"])
    account.seeded = [SimPosition(_contract_from(p["contract"]), p["quantity"], p["avg_cost"])
                      for p in state["seeded"]]
    engine.orders = {}
    for row in state["orders"]:
        order = _order_from(row)
        for info, _, _ in order.legs:
            universe.by_id.setdefault(info.con_id, info)
        engine.orders[(order.client_id, order.order_id)] = order
    engine.fills = [_fill_from(row) for row in state["fills"]]
    server.next_ids = {int(k): int(v) for k, v in state["next_ids"].items()}
    engine.resume_ids(int(state["next_perm_id"]), int(state["next_exec_seq"]))
    if date.fromisoformat(state["day"]) < market.today:
        _roll_to(server, market.today)


def _roll_to(server: SimServer, today: date) -> None:
    """Overnight: DAY orders end, expired options settle at intrinsic, today's P&L restarts."""
    account, engine, market = server.account, server.engine, server.market
    stamp = market.clock.now().strftime("%Y%m%d %H:%M:%S UTC")
    for order in engine.orders.values():
        if order.status in ("PreSubmitted", "Submitted") and order.tif == "DAY":
            order.status, order.completed_time = "Cancelled", stamp
            order.last_message = "Order expired at the close"
    for con_id, h in list(account.holdings.items()):
        info = h.contract
        if info.sec_type == "OPT" and info.expiry is not None and info.expiry < today:
            spot = market.spots[info.symbol]
            intrinsic = max(spot - info.strike, 0.0) if info.right == "C" else max(info.strike - spot, 0.0)
            proceeds = intrinsic * info.multiplier * h.quantity
            account.cash += proceeds
            h.realized += proceeds - h.avg_cost * h.quantity
            h.quantity = 0.0
        h.start_quantity, h.day_cash = h.quantity, 0.0
        if not h.quantity:
            del account.holdings[con_id]


# ---- the file
def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, fsync, then rename over it: a crash leaves the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none. An unreadable file is moved aside (kept for
    the operator) and the account starts fresh rather than refusing to start."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        aside = path.with_name(f"{path.name}.unreadable-{datetime.now():%Y%m%d-%H%M%S}")
        log.warning("sim: state file %s unreadable (%s); moved to %s, starting fresh", path, exc, aside)
        path.replace(aside)
        return None


def save(server: SimServer, path: Path) -> None:
    write_atomically(path, json.dumps(snapshot(server), separators=(",", ":")))
