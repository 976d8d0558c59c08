"""Child process for test_warm_up: a fresh interpreter (numba not yet compiled in it) runs the
runtime against the simulator with IB's Greeks withheld, so every option needs local Greeks,
and reports the snapshot cadence while the kernels compile. Prints one JSON line."""

from __future__ import annotations

import json
import sys
import time

from v6core import greeks_warmup
from v6core.config import Settings
from v6core.models import GreekSource
from v6core.runtime import Runtime
from v6core.sim import SimGateway
from v6core.state import GREEKS_PENDING


def main(limit: float) -> None:
    gateway = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=5.0)
    gateway.start()
    options = [p.contract.con_id for p in gateway.seeded_positions() if p.contract.is_option]
    gateway.faults.withhold_greeks(options)
    runtime = Runtime(Settings(mode="ib", ib_host="127.0.0.1", ib_port=gateway.port, client_id=31))
    times: list[float] = []
    pending_seen = computed_at = None
    warm_at = None
    try:
        runtime.start()
        started = time.monotonic()
        seq = 0
        while time.monotonic() - started < limit:
            snap = runtime.wait_for(lambda s: s.seq > seq, 10)
            now = time.monotonic()
            if snap is None:
                times.append(now)
                continue
            seq = snap.seq
            times.append(now)
            if warm_at is None and greeks_warmup.is_warm():
                warm_at = now - started
            legs = [l for l in snap.legs if l.contract.is_option]
            if pending_seen is None and any(GREEKS_PENDING in l.flags for l in legs):
                pending_seen = now - started
            if legs and all(l.greeks is not None and l.greeks.source == GreekSource.COMPUTED
                            for l in legs):
                computed_at = now - started
                break
    finally:
        runtime.stop()
        gateway.stop()
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(json.dumps({"max_gap": max(gaps, default=None), "snapshots": len(times),
                      "pending_seen": pending_seen, "warm_at": warm_at, "computed_at": computed_at}))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 120.0)
