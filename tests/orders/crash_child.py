"""Child process for the kill -9 test. Drafts and previews two AAPL tickets, prints their ids,
then confirms them with a hook that runs right after each "confirmed" audit row is durable:

- ticket A: the hook places A at the gateway itself (as the desk would) and then confirms B, so A
  is at the gateway with no "sent" row - a crash after the order left but before it was recorded;
- ticket B: the hook kills this process with SIGKILL - a crash before the order left.

    python -m tests.orders.crash_child <sim port> <lake path>
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
    port, lake = int(sys.argv[1]), Path(sys.argv[2])
    stack = start_stack(_Port(port), lake, follow=False)
    desk, runtime = stack.desk, stack.runtime
    spot = next(leg.mark for leg in runtime.snapshot().legs
                if leg.contract.sec_type == "STK" and leg.contract.symbol == "AAPL")
    ids = []
    for quantity in (2, 3):
        ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "crash-session")
        desk.edit(ticket.ticket_id, "crash-session", limit_price=round(spot * 0.8, 2), quantity=quantity)
        desk.preview(ticket.ticket_id, "crash-session")
        ids.append(ticket.ticket_id)
    sent_by_hand, killed = ids
    print(sent_by_hand, killed, flush=True)

    def crash(event: str, ticket_id: str) -> None:
        if event != "confirmed":
            return
        if ticket_id == sent_by_hand:
            runtime.place_order(desk.ticket(ticket_id).spec, ticket_id).result(timeout=10)
            desk.confirm(killed, "crash-session")
        elif ticket_id == killed:
            os.kill(os.getpid(), signal.SIGKILL)

    orders.AFTER_AUDIT_HOOKS.append(crash)
    desk.confirm(sent_by_hand, "crash-session")
    print("confirm returned: the crash hook did not fire", flush=True)


if __name__ == "__main__":
    main()
