"""python -m v6core.sim --host 127.0.0.1 --port 4002 --seed 7 [--state FILE [--fresh]]  (port 0: a free port)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from v6core.sim.gateway import SimGateway


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m v6core.sim",
                                     description="Simulated IB gateway (TWS socket protocol)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tick-rate", type=float, default=3.0, help="ticks/s per contract")
    parser.add_argument("--time-speed", type=float, default=1.0)
    parser.add_argument("--state", type=Path, default=None,
                        help="keep the paper account in this file across restarts")
    parser.add_argument("--fresh", action="store_true",
                        help="start from the seeded book even if --state holds an account")
    args = parser.parse_args(argv)
    if args.fresh and args.state is None:
        parser.error("--fresh only makes sense with --state")
    # handlers first: a SIGTERM right after the "listening" line must stop it cleanly (exit 0)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gateway = SimGateway(seed=args.seed, host=args.host, port=args.port,
                         tick_rate=args.tick_rate, time_speed=args.time_speed,
                         state_path=args.state, fresh=args.fresh)
    port = gateway.start()
    print(f"v6 sim listening on {args.host}:{port} (account {gateway.account_id}, "
          f"seed {args.seed}{', restored from ' + str(args.state) if gateway.restored else ''})",
          flush=True)
    stop.wait()
    gateway.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
