"""Two processes on one S3 lake: commits race through conditional puts, never a local lock.

Real child processes (tests/s3/proc.py) against the moto server: hammering one table, kill -9 in
the middle of commits, the writer lease taken over after its holder died, and 50 tickets each
confirmed by two processes at the same instant (one claim winner per ticket).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from tests.lake.factory import snapshot_at
from v6core.lake import ORDERS_AUDIT, PORTFOLIO, AuditLog, LakeReader, LakeWriter, table_path
from v6core.lake.s3store import S3ClaimStore
from v6core.lake.storage import open_table, read_frame

REPO = Path(__file__).resolve().parents[2]


def _child(moto_server, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.s3.proc", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**moto_server.env(), **env})


def _every_version_opens(path) -> list[int]:
    """Row count of every version 0..latest (raises if any version is corrupt)."""
    latest = open_table(path).version()
    return [read_frame(path, version=v).height for v in range(latest + 1)]


def test_two_processes_hammering_one_table_lose_no_commit(moto_server, s3_lake):
    AuditLog(s3_lake).append_audit([])          # nothing to write: the table exists, version 0
    count = 20
    children = [_child(moto_server, "append", str(s3_lake), tag, str(count)) for tag in ("A", "B")]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        assert out.split() == [str(i) for i in range(count)]
    path = table_path(s3_lake, ORDERS_AUDIT)
    rows = read_frame(path)
    assert rows.height == 2 * count
    assert sorted(rows["event_id"].to_list()) == sorted(f"{t}-{i}" for t in "AB" for i in range(count))
    # one event per commit, every version readable: no version lost, none corrupt
    assert _every_version_opens(path) == list(range(2 * count + 1))


def test_kill_9_in_the_middle_of_commits(moto_server, s3_lake):
    child = _child(moto_server, "write", str(s3_lake), "500", V6_LAKE_LEASE_SECONDS="2")
    assert child.stdout.readline().strip() == "locked"
    for _ in range(4):
        child.stdout.readline()
    time.sleep(0.137)                           # somewhere inside a commit: the loop never pauses
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    path = table_path(s3_lake, PORTFOLIO)
    counts = _every_version_opens(path)
    assert counts == [len(snapshot_at(v).legs) for v in range(len(counts))]    # no duplicate rows
    for v in range(len(counts)):
        assert read_frame(path, version=v)["con_id"].is_unique().all()
    # The dead writer's lease expires on the store's clock; a new writer resumes without duplicates.
    writer = LakeWriter(s3_lake)
    deadline = time.monotonic() + 30
    while True:
        try:
            writer.acquire()
            break
        except Exception:
            assert time.monotonic() < deadline, "the killed writer's lease never expired"
            time.sleep(0.5)
    try:
        resumed = writer.last_version
        assert resumed == len(counts) - 1
        assert writer.write_snapshot(snapshot_at(resumed)) == resumed     # already recorded: not again
        assert writer.write_snapshot(snapshot_at(resumed + 1)) == resumed + 1
    finally:
        writer.stop()
    versions = LakeReader(s3_lake).versions()
    assert versions["snapshot_id"].is_unique().all()
    assert versions["version"].to_list() == list(range(resumed + 2))


def test_kill_9_while_auditing_then_retry_writes_no_duplicate(moto_server, s3_lake):
    child = _child(moto_server, "append", str(s3_lake), "K", "200")
    for _ in range(3):
        child.stdout.readline()
    time.sleep(0.083)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    path = table_path(s3_lake, ORDERS_AUDIT)
    before = read_frame(path)
    assert before["event_id"].is_unique().all()
    _every_version_opens(path)
    # the restarted process retries everything it may not have seen acknowledged
    retry = _child(moto_server, "append", str(s3_lake), "K", str(before.height + 2))
    _, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err[-2000:]
    after = read_frame(path)
    assert sorted(after["event_id"].to_list()) == sorted(f"K-{i}" for i in range(before.height + 2))


def test_50_tickets_confirmed_by_two_processes_at_once_have_one_winner(moto_server, s3_lake):
    tickets = 50
    start = time.time() + 8                     # both children imported and waiting by then
    children = [_child(moto_server, "claim", str(s3_lake), owner, f"{start:.3f}", str(tickets))
                for owner in ("host-a", "host-b")]
    won = {}
    for owner, child in zip(("host-a", "host-b"), children):
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        won[owner] = set(json.loads(out))
    everyone = {f"T{i:03d}" for i in range(tickets)}
    assert won["host-a"].isdisjoint(won["host-b"])                  # never two winners
    assert won["host-a"] | won["host-b"] == everyone                # never none
    store = S3ClaimStore(s3_lake)
    for owner, ids in won.items():
        assert all(store.holder(f"{t}.confirm") == {"owner": owner} for t in ids)
        assert not any(store.claim(f"{t}.confirm", {"owner": "host-c"}) for t in ids)   # a third comer loses too
    assert store.holder("T999.confirm") is None
