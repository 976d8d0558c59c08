"""Child process for the kill -9 test: drafts and previews a ticket, then confirms it with a hook
that kills this process with SIGKILL right after the "confirmed" audit row is durable.

    python -m tests.orders.crash_child <sim port> <lake path> <before-send|after-gateway>

before-send:   dies before the order is sent (the gateway never sees it);
after-gateway: the order reaches the gateway, then the process dies before "sent" is written.
Prints the ticket id on stdout before confirming.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.orders.conftest import signal_record, start_stack
from v6core import orders


class _Port:
    """Enough of a gateway handle for start_stack: this process only knows the port."""

    def __init__(self, port: int) -> None:
        self.port = port


def main() -> None:
    port, lake, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    stack = start_stack(_Port(port), lake, follow=False)
    desk, runtime = stack.desk, stack.runtime
    spot = next(leg.mark for leg in runtime.snapshot().legs
                if leg.contract.sec_type == "STK" and leg.contract.symbol == "AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "crash-session")
    ticket = desk.edit(ticket.ticket_id, "crash-session", limit_price=round(spot * 0.8, 2), quantity=2)
    desk.preview(ticket.ticket_id, "crash-session")
    print(ticket.ticket_id, flush=True)

    def crash(event: str) -> None:
        if event != "confirmed":
            return
        if mode == "after-gateway":
            runtime.place_order(desk.ticket(ticket.ticket_id).spec, ticket.ticket_id).result(timeout=10)
        os.kill(os.getpid(), signal.SIGKILL)

    orders.AFTER_AUDIT_HOOKS.append(crash)
    desk.confirm(ticket.ticket_id, "crash-session")
    print("confirm returned: the crash hook did not fire", flush=True)


if __name__ == "__main__":
    main()
