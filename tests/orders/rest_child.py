"""Child process for the restart-identity test: confirms one resting AAPL ticket, waits until
the gateway works it, prints {"ticket_id", "order_id", "perm_id"} and waits to be killed.

    python -m tests.orders.rest_child <sim port> <lake path>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.orders.conftest import signal_record, start_stack, wait_until
from v6core.orders import TicketState


class _Port:
    def __init__(self, port: int) -> None:
        self.port = port


def main() -> None:
    port, lake = int(sys.argv[1]), Path(sys.argv[2])
    stack = start_stack(_Port(port), lake)
    desk = stack.desk
    spot = next(leg.mark for leg in stack.runtime.snapshot().legs
                if leg.contract.sec_type == "STK" and leg.contract.symbol == "AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "rest-session")
    desk.edit(ticket.ticket_id, "rest-session", limit_price=round(spot * 0.8, 2), quantity=2)
    desk.preview(ticket.ticket_id, "rest-session")
    desk.confirm(ticket.ticket_id, "rest-session")
    working = wait_until(lambda: (t := desk.ticket(ticket.ticket_id)).state == TicketState.WORKING and t)
    print(json.dumps({"ticket_id": working.ticket_id, "order_id": working.order_id,
                      "perm_id": working.perm_id, "limit_price": working.limit_price}), flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
