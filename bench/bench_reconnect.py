"""Reconnect after a real gateway restart: seconds from the gateway listening again to v6 being
connected with every subscription restored (issue #11, defect 10; the goal is under 5 s).

Run: `python bench/bench_reconnect.py [--outages 1 10 120]`. For each outage the simulator is
stopped (listener and sessions gone), its port stays closed for the outage, and a fresh
simulator starts on the same port; the runtime uses v6's shipped reconnect settings. Prints
the restore time, the connection attempts made while the port was closed and the breaker
states seen. The 2-minute case lives here rather than in the test suite.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.runtime.helpers import wait_ready  # noqa: E402
from tests.runtime.reconnect_harness import (  # noqa: E402
    default_reconnect_settings, restart_and_measure, start_gateway,
)
from v6core.runtime import Runtime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[1.0, 10.0, 120.0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)     # refused attempts would flood the output
    gateway = start_gateway()
    runtime = Runtime(default_reconnect_settings(gateway.port))
    try:
        runtime.start()
        wait_ready(runtime, gateway)
        print(f"{'outage s':>9} {'restored after s':>17} {'attempts':>9}  breaker states")
        for outage in args.outages:
            figures, gateway = restart_and_measure(runtime, gateway, outage)
            wait_ready(runtime, gateway)
            print(f"{outage:>9g} {figures.restore_seconds:>17.2f} {figures.attempts_during_outage:>9d}  "
                  f"{', '.join(sorted(figures.breaker_states))}", flush=True)
    finally:
        runtime.stop()
        gateway.stop()


if __name__ == "__main__":
    main()
