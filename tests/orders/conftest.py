"""Order tests run the real desk against the real runtime, talking to the real simulator over
loopback, with a real Delta audit log in a temporary folder."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from v6core.config import Settings, load_settings
from v6core.lake import AuditLog
from v6core.models import ConnState, PortfolioSnapshot
from v6core.orders import OrderDesk
from v6core.runtime import Runtime
from v6core.sim import SimGateway
from v6core.signals.schema import Action, Confidence, SignalRecord, Status


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def ready(snapshot: PortfolioSnapshot) -> bool:
    """Connected, positions loaded, and every leg (and underlying) has a quote."""
    if snapshot.connection.state != ConnState.CONNECTED or not snapshot.legs:
        return False
    quoted = {q.con_id for q in snapshot.quotes if q.time is not None}
    return all(leg.contract.con_id in quoted and leg.greeks is not None for leg in snapshot.legs)


def settings_for(port: int, lake: Path, **overrides: Any) -> Settings:
    values = dict(mode="ib", ib_host="127.0.0.1", ib_port=port, client_id=17, lake_path=lake,
                  connect_timeout=4.0, backoff_initial=0.2, backoff_max=1.0, stale_after=10.0)
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Stack:
    settings: Settings
    gw: SimGateway
    runtime: Runtime
    audit: AuditLog
    desk: OrderDesk

    def snapshot(self) -> PortfolioSnapshot:
        return self.runtime.snapshot()

    def sim_orders(self, ticket_id: str) -> list:
        return [o for o in self.gw.orders() if o.order_ref == ticket_id]

    def events(self, ticket_id: str) -> list[str]:
        return self.audit.audit(ticket_id)["event"].to_list()

    def close(self) -> None:
        self.desk.stop()
        self.runtime.stop()


def start_stack(gw: SimGateway, lake: Path, *, follow: bool = True, **overrides: Any) -> Stack:
    settings = settings_for(gw.port if hasattr(gw, "port") else overrides.pop("port"), lake, **overrides)
    runtime = Runtime(settings)
    runtime.start()
    snapshot = runtime.wait_for(ready, timeout=30)
    assert snapshot is not None, "runtime never became ready against the simulator"
    audit = AuditLog(lake)
    desk = OrderDesk(settings, runtime, audit, request_timeout=10.0, commission_grace=2.0)
    if follow:
        desk.start()
        wait_until(lambda: desk.recovered, timeout=10)
    return Stack(settings, gw, runtime, audit, desk)


@pytest.fixture(scope="module")
def module_gw():
    gw = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=4.0, time_speed=1.0)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def stack(module_gw, tmp_path_factory):
    """One runtime + desk shared by a module's tests; tests filter the sim's book by ticket id."""
    s = start_stack(module_gw, tmp_path_factory.mktemp("lake"))
    yield s
    s.close()


@pytest.fixture
def own_gw():
    """A simulator of the test's own (faults, disconnects, restarts)."""
    gw = SimGateway(seed=11, host="127.0.0.1", port=0, tick_rate=4.0, time_speed=1.0)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def limits(stack):
    """Change the desk's limits for one test; restored afterwards."""
    original = stack.desk.settings

    def apply(**changes: Any) -> None:
        stack.desk.settings = original.model_copy(update=changes)

    yield apply
    stack.desk.settings = original


def signal_record(symbol: str, action: str, entry: float, *, confidence: str = "HIGH") -> SignalRecord:
    """An accepted signal as v6core.signals records it, with a coherent plan around `entry`."""
    buy = action == "BUY"
    return SignalRecord(
        record_id=uuid.uuid4().hex, run_id="test-run", symbol=symbol, status=Status.ACCEPTED,
        analyst="rules", prompt_hash="test", created_at=datetime.now(timezone.utc),
        action=Action(action), confidence=Confidence(confidence),
        confidence_score={"HIGH": 80.0, "MEDIUM": 55.0, "LOW": 20.0}[confidence],
        reasoning="constructed for a test", entry=entry,
        stop=round(entry * (0.95 if buy else 1.05), 2), target=round(entry * (1.1 if buy else 0.9), 2),
    )
