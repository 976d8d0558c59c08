"""Exactly-once across hosts on an S3 lake: two real v6 processes (OrderDesk, runtime, simulator)
confirm the same 50 tickets at the same instant; the S3 claim (conditional put) lets one through, and
the simulator holds exactly one order per ticket.

The second process can only trade once the first one's writer lease is gone (deleted here, as an
operator might): both then hold an audit log and confirm, and nothing but the store decides.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.safety.test_claims_two_processes import SPACING, Child, gw  # noqa: F401 - fixture
from v6core.lake.s3store import LEASE_NAME, s3_client


# 50 tickets, each confirmed by both processes at the same instant (the figure). Every
# audit append is a Delta commit through the moto server; the two desks interleave them.
TICKETS = 50


@pytest.mark.timeout(900)
def test_two_hosts_confirming_the_same_tickets_place_one_order_each(gw, moto_server, s3_lake,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    for key, value in moto_server.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    first = Child(gw.port, str(s3_lake), 41, tmp_path / "first.log")
    children = [first]
    try:
        assert first.ask()["trading"] is True
        # while the first holds the lease, a second process is read-only and cannot trade
        probe = Child(gw.port, str(s3_lake), 43, tmp_path / "probe.log")
        hello = probe.ask()
        probe.stop()
        assert hello["trading"] is False and "is written by" in hello["lake_error"], hello
        # the lease deleted, as an operator might: the first notices (it stops writing history, its
        # desk keeps its audit log) and a second process becomes writer and can trade too
        s3_client(s3_lake).delete_object(Bucket=s3_lake.bucket, Key=f"{s3_lake.key}/{LEASE_NAME}")
        second = Child(gw.port, str(s3_lake), 42, tmp_path / "second.log")
        children.append(second)
        assert second.ask()["trading"] is True

        ids = first.ask(f"draft {TICKETS}")["ids"]
        assert second.ask("adopt " + ",".join(ids)) == {"previewed": TICKETS, "errors": []}
        start = time.time() + 2.0
        for child in children:
            child.proc.stdin.write(f"go {start} {SPACING}\n")
            child.proc.stdin.flush()
        outcomes = [child.ask()["outcomes"] for child in children]
        time.sleep(2.0)          # any duplicate has reached the simulator by now

        per_ticket = Counter(o.order_ref for o in gw.orders() if o.order_ref in set(ids))
        assert {t: n for t, n in per_ticket.items() if n > 1} == {}
        assert set(per_ticket) == set(ids)
        for ticket_id in ids:
            results = sorted(o[ticket_id] for o in outcomes)
            assert len([r for r in results if r in ("sent", "working")]) == 1, (ticket_id, results)
            assert "AlreadyConfirmed" in results, (ticket_id, results)
    finally:
        for child in children:
            child.stop()
