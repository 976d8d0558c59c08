"""Issue #11 defect 2: no client action replaces or duplicates the process-wide services.

A real `streamlit run app.py` (embedded simulator), driven over its real websocket the way the
browser's frontend does. A second client sends `clear_cache` (what the app menu's "Clear cache"
and its keyboard shortcut send); the services must be the same afterwards: the same simulator
port, no new listening socket or thread in the server process, the lake not "locked by" the
server itself, and a ticket still goes from draft to review to confirm and reaches that same
simulator's book.
"""

from __future__ import annotations

import re
import time

import polars as pl
import pytest

from tests.browser_harness import streamlit_app
from tests.safety.streamlit_socket import Run, StreamlitSocket, listening_ports, threads
from v6core.lake import AuditLog

pytestmark = pytest.mark.slow

GATEWAY = re.compile(r"127\\*\.0\\*\.0\\*\.1:(\d+)")   # the sidebar's "host:port" (markdown-escaped or not)
CLOSE_COMBO = "Close strategy as one combo"
SERVER_SLACK_THREADS = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clear-cache")
    lake = tmp / "lake"
    env = {"V6_MODE": "sim", "V6_LAKE_PATH": str(lake)}
    with streamlit_app(env, tmp / "streamlit.log") as url:
        yield int(url.rsplit(":", 1)[1]), lake, tmp / "streamlit.log"


def gateway_port(run: Run) -> int:
    ports = {int(p) for p in GATEWAY.findall(run.text)}
    assert len(ports) == 1, ports
    return ports.pop()


def settled_threads(pid: int, quiet: float = 12.0, timeout: float = 90.0) -> int:
    """The server's thread count once it has held still for `quiet` seconds: script runs have
    ended and idle worker threads (anyio's retire after 10 s) are gone."""
    deadline = time.monotonic() + timeout
    last, since = threads(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = threads(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise TimeoutError(f"the server's thread count never held still for {quiet:g} s")


def positions_with_strategies(sock: StreamlitSocket, timeout: float = 180.0) -> Run:
    """Run the Positions page until the simulator's book is drawn (its strategies listed)."""
    deadline = time.monotonic() + timeout
    while True:
        run = sock.run("positions")
        if run.buttons(CLOSE_COMBO):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError("the Positions page never listed the simulator's strategies")
        time.sleep(1.0)


def test_clear_cache_from_any_client_keeps_the_one_set_of_services(server):
    port, lake, log = server
    operator = StreamlitSocket(port)
    intruder = StreamlitSocket(port)
    try:
        operator.run()
        before_run = positions_with_strategies(operator)
        pid = int((lake / ".writer.lock").read_text())
        before = (gateway_port(before_run), listening_ports(pid), settled_threads(pid))

        intruder.run()
        for _ in range(3):                       # the menu item, pressed three times
            intruder.clear_cache()
            intruder.run("positions")
        after_run = operator.run("positions")     # the same services: the book is there at once
        after = (gateway_port(after_run), listening_ports(pid), settled_threads(pid))

        # The same gateway and the same listening sockets: no second runtime or simulator. The
        # thread count may differ by Streamlit's own idle worker (anyio keeps one for 10 s after
        # use, and the intruder's session used it); a second set of services adds 4 threads or more
        # (its runtime loop, simulator, lake writer, desk follower: measured 29 -> 33).
        assert after[:2] == before[:2], (before, after)
        assert before[2] - 1 <= after[2] <= before[2] + SERVER_SLACK_THREADS, (before, after)
        assert "read-only" not in after_run.text and "locked by pid" not in after_run.text
        assert "locked by pid" not in log.read_text()

        # Trading still works, through the same services: draft (close the strategy the Positions
        # panel picks first, as one combo), review (what-if at the simulator), confirm; the order
        # is in that simulator's book under the ticket's id.
        [close] = after_run.buttons(CLOSE_COMBO)
        orders = operator.run("positions", click=close)    # the page switches to Orders
        review = orders.buttons("Review")
        assert len(review) == 1, orders.text[-3000:]
        dialog = operator.run("orders", click=review[0])
        confirm = dialog.buttons("Confirm and place")
        assert len(confirm) == 1, dialog.text[-3000:]
        placed = operator.run("orders", click=confirm[0])
        assert "Confirmed: sending" in placed.text or "Sent once as order" in placed.text, \
            placed.text[-3000:]
        [ticket_id] = AuditLog(lake).audit().filter(pl.col("event") == "drafted")["ticket_id"].to_list()
        sent = wait_for_event(lake, ticket_id, "sent")
        assert sent.height == 1 and sent["order_id"][0] > 0
        assert gateway_refs(before[0]).count(ticket_id) == 1
        assert listening_ports(pid) == before[1]
    finally:
        operator.close()
        intruder.close()


def wait_for_event(lake, ticket_id: str, event: str, timeout: float = 60.0) -> pl.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        audit = AuditLog(lake).audit()
        rows = audit.filter((pl.col("ticket_id") == ticket_id) & (pl.col("event") == event))
        if rows.height or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def gateway_refs(port: int) -> list[str]:
    """orderRef of every order (open and completed) the simulator on `port` holds."""
    from ib_async import IB

    ib = IB()
    ib.connect("127.0.0.1", port, clientId=991, timeout=30)
    try:
        refs = [t.order.orderRef for t in ib.reqAllOpenOrders()]
        refs += [t.order.orderRef for t in ib.reqCompletedOrders(apiOnly=False)]
        return refs
    finally:
        ib.disconnect()
