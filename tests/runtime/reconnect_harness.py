"""A real gateway restart, measured: stop the simulator, keep its port closed for an outage,
start a fresh one on the same port, and time how long v6 takes to be connected with every
subscription restored. Used by the reconnect tests and by `bench/bench_reconnect.py`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from v6core.config import Settings
from v6core.models import ConnState, PortfolioSnapshot
from v6core.runtime import Runtime
from v6core.sim import SimGateway

SEED, TICK_RATE = 7, 5.0


def default_reconnect_settings(port: int, **overrides) -> Settings:
    """v6's shipped reconnect settings (backoff, breaker, connect timeout) on a loopback gateway."""
    return Settings(mode="ib", ib_host="127.0.0.1", ib_port=port, client_id=17, **overrides)


def start_gateway(port: int = 0) -> SimGateway:
    gateway = SimGateway(seed=SEED, host="127.0.0.1", port=port, tick_rate=TICK_RATE)
    gateway.start()
    return gateway


def restored(snap: PortfolioSnapshot, gateway: SimGateway, baseline: dict[str, int],
             since: datetime) -> bool:
    """Connected, a quote since `since` for every leg and underlying, and the gateway holding as
    many market data, account P&L and per-position P&L subscriptions as before the outage."""
    if snap.connection.state != ConnState.CONNECTED or not snap.legs:
        return False
    ids = {leg.contract.con_id for leg in snap.legs}
    ids |= {gateway.lookup(u.symbol).con_id for u in snap.underlyings} | {gateway.lookup("SPY").con_id}
    if not all((q := snap.quote(i)) is not None and q.time is not None and q.time >= since for i in ids):
        return False
    if snap.daily_pnl is None or snap.account.updated_at is None or snap.account.updated_at < since:
        return False
    return gateway.subscription_counts() == baseline


@dataclass
class Restart:
    outage: float
    restore_seconds: float             # gateway listening again -> every subscription restored
    attempts_during_outage: int
    breaker_states: set[str] = field(default_factory=set)


def restart_and_measure(runtime: Runtime, gateway: SimGateway, outage: float,
                        timeout: float = 60.0) -> tuple[Restart, SimGateway]:
    """Stop `gateway`, wait `outage` seconds, start a new one on its port; returns the figures
    and the new gateway (the caller stops it)."""
    port = gateway.port
    legs = len(runtime.snapshot().legs)
    settle = time.monotonic() + 15
    while gateway.subscription_counts()["pnl_single"] != legs and time.monotonic() < settle:
        time.sleep(0.05)           # P&L requests follow the positions a moment after they arrive
    baseline = gateway.subscription_counts()
    seen: set[str] = set()
    sampling = threading.Event()

    def sample() -> None:          # what the operator would have seen, every 50 ms
        while not sampling.is_set():
            seen.add(runtime.snapshot().connection.breaker)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    attempts_before = runtime.snapshot().connection.attempts
    gateway.stop()
    time.sleep(outage)
    fresh = start_gateway(port)
    listening_at = time.monotonic()
    since = datetime.now(timezone.utc)
    attempts_after = runtime.snapshot().connection.attempts
    try:
        deadline = listening_at + timeout
        while time.monotonic() < deadline:
            if restored(runtime.snapshot(), fresh, baseline, since):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"not restored {timeout:.0f} s after the gateway came back: "
                                 f"{runtime.snapshot().connection}; gateway holds "
                                 f"{fresh.subscription_counts()}, before {baseline}")
        elapsed = time.monotonic() - listening_at
    except BaseException:
        fresh.stop()
        raise
    finally:
        sampling.set()
        sampler.join(timeout=1)
    return Restart(outage, elapsed, attempts_after - attempts_before, seen), fresh
