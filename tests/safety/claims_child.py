"""One real v6 process for the two-process exactly-once test: `start_services` (runtime, lake
writer with its lock, audit log, order desk) against the test's simulator, driven over stdin.

    python -m tests.safety.claims_child <sim port> <lake path> <client id>

Commands, one a line; each answer is one line of JSON on stdout:
    draft N            draft and preview N resting AAPL tickets -> {"ids": [...]}
    adopt ID,ID,...    learn those tickets from the audit log and preview them -> {"previewed": n, "errors": [...]}
    go T0 SPACING      confirm the known previewed tickets, ticket i at time T0 + i*SPACING
                       (one thread per ticket) -> {"outcomes": {ticket id: outcome}}
    stop               stop the services and exit
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from tests.orders.conftest import ready, signal_record
from v6core.config import load_settings
from v6core.services import start_services


def say(payload: dict) -> None:
    print(json.dumps(payload), flush=True)


def main() -> None:
    port, lake, client_id = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    settings = load_settings(mode="ib", ib_host="127.0.0.1", ib_port=port, client_id=client_id,
                             lake_path=lake, connect_timeout=4.0, backoff_initial=0.2, backoff_max=1.0,
                             stale_after=30.0)
    services = start_services(settings)
    desk, runtime = services.orders, services.runtime
    snapshot = runtime.wait_for(ready, timeout=60)
    say({"ready": snapshot is not None, "trading": desk.trading_available,
         "lake_error": services.lake_error})
    ids: list[str] = []
    session = f"client-{client_id}"
    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        if command == "draft":
            spot = next(leg.mark for leg in runtime.snapshot().legs
                        if leg.contract.sec_type == "STK" and leg.contract.symbol == "AAPL")
            for _ in range(int(rest)):
                ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), session)
                desk.edit(ticket.ticket_id, session, limit_price=round(spot * 0.8, 2))
                desk.preview(ticket.ticket_id, session)
                ids.append(ticket.ticket_id)
            say({"ids": ids})
        elif command == "adopt":
            ids = rest.split(",")
            errors = []
            if desk.trading_available:
                desk.recover()
            for ticket_id in ids:
                try:
                    desk.preview(ticket_id, session)
                except Exception as exc:  # reported to the test, which decides
                    errors.append(f"{type(exc).__name__}: {exc}")
            say({"previewed": len(ids) - len(errors), "errors": errors})
        elif command == "go":
            start, spacing = (float(x) for x in rest.split())
            outcomes: dict[str, str] = {}

            def confirm_at(index: int, ticket_id: str) -> None:
                time.sleep(max(0.0, start + index * spacing - time.time()))
                try:
                    outcomes[ticket_id] = desk.confirm(ticket_id, session).state.value
                except Exception as exc:
                    outcomes[ticket_id] = type(exc).__name__

            threads = [threading.Thread(target=confirm_at, args=(i, t)) for i, t in enumerate(ids)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            say({"outcomes": outcomes})
        elif command == "stop":
            break
    services.stop()


if __name__ == "__main__":
    main()
