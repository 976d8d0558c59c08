"""Exactly-once across processes: two real v6 processes (different client ids) on one lake,
against one real simulator, confirm the same 50 tickets at the same instants.

With the lake's lock file in place the second process cannot trade at all; with it deleted
(as an operator who reads "locked by pid N" might) both can, and only the per-ticket claim in
the store stands between them and a duplicate order. Either way the simulator must hold exactly
one order per ticket, found by its orderRef.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from v6core.sim import SimGateway

TICKETS = 50
SPACING = 0.25       # seconds between tickets; both processes confirm ticket i at the same instant
ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A v6 process (tests/safety/claims_child.py) driven line by line."""

    def __init__(self, port: int, lake: Path, client_id: int, log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.safety.claims_child", str(port), str(lake), str(client_id)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ask(self, line: str | None = None) -> dict:
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"child {self.proc.pid} died; see {self.log.name}"
        return json.loads(answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def gw():
    gateway = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=2.0)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("lock_file", ["present", "deleted"])
def test_two_processes_confirming_the_same_tickets_at_once_place_one_order_each(gw, tmp_path, lock_file):
    lake = tmp_path / "lake"
    first = Child(gw.port, lake, 31, tmp_path / "first.log")
    children = [first]
    try:
        assert first.ask() ["trading"] is True
        if lock_file == "deleted":
            (lake / ".writer.lock").unlink()
        second = Child(gw.port, lake, 32, tmp_path / "second.log")
        children.append(second)
        hello = second.ask()
        assert hello["ready"]
        assert hello["trading"] is (lock_file == "deleted"), hello

        ids = first.ask(f"draft {TICKETS}")["ids"]
        assert len(ids) == TICKETS
        adopted = second.ask("adopt " + ",".join(ids))
        if lock_file == "deleted":
            assert adopted == {"previewed": TICKETS, "errors": []}

        start = time.time() + 2.0
        for child in children:
            child.proc.stdin.write(f"go {start} {SPACING}\n")
            child.proc.stdin.flush()
        outcomes = [child.ask()["outcomes"] for child in children]
        time.sleep(2.0)          # any duplicate has reached the simulator by now

        per_ticket = Counter(o.order_ref for o in gw.orders() if o.order_ref in set(ids))
        duplicates = {t: n for t, n in per_ticket.items() if n > 1}
        assert duplicates == {}, f"{len(duplicates)} tickets placed more than once: {duplicates}"
        assert set(per_ticket) == set(ids), f"{TICKETS - len(per_ticket)} tickets never placed"
        for ticket_id in ids:
            results = sorted(o[ticket_id] for o in outcomes)
            placed = [r for r in results if r in ("sent", "working")]
            assert len(placed) == 1, (ticket_id, results)
            refused = {"present": "TradingUnavailable", "deleted": "AlreadyConfirmed"}[lock_file]
            assert refused in results, (ticket_id, results)
    finally:
        for child in children:
            child.stop()
