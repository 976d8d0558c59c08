"""The writer: cadence and position-change triggers, idempotent retries, one writer per lake, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

import v6core.lake as lake
from tests.lake.factory import STEP, snapshot_at
from v6core.lake import LakeLockedError, LakeReader, LakeWriter, legs_table
from v6core.models import ConnectionStatus, ConnState

REPO = Path(__file__).resolve().parents[2]


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _assert_consistent(root: Path) -> pl.DataFrame:
    """Every table opens; no snapshot twice; aggregates only for recorded versions, each once."""
    reader = LakeReader(root)
    versions = reader.versions()
    assert versions["seq"].is_unique().all()
    assert versions["snapshot_time"].is_sorted()
    for row in versions.iter_rows(named=True):
        assert reader.portfolio(row["version"]).equals(pl.from_arrow(legs_table(snapshot_at(row["seq"]))))
    greeks, account = reader.greeks_history(), reader.account_history()
    all_greeks = pl.read_delta(str(root / lake.GREEKS_HISTORY)) if (root / lake.GREEKS_HISTORY).exists() else None
    if all_greeks is not None:
        assert all_greeks.select("version", "level", "key").is_duplicated().sum() == 0
        assert set(all_greeks["version"]) <= set(versions["version"])
    # A kill between the two aggregate appends may leave them one batch apart, never duplicated.
    assert account["version"].is_unique().all() and greeks["version"].is_unique().all()
    assert set(account["version"]) <= set(versions["version"])
    return versions


class _Source:
    def __init__(self, snap):
        self.snap = snap
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.snap

    def set(self, snap):
        with self.lock:
            self.snap = snap


def test_thread_writes_on_position_change_and_on_cadence(lake_root):
    source = _Source(replace(snapshot_at(0), connection=ConnectionStatus(state=ConnState.CONNECTING)))
    writer = LakeWriter(lake_root, source, interval=3600, poll=0.02, batch_size=2, batch_seconds=3600)
    writer.start()
    reader = LakeReader(lake_root)
    try:
        time.sleep(0.3)                              # not connected yet: nothing to record
        assert reader.versions().height == 0
        source.set(snapshot_at(0))
        assert _wait(lambda: reader.versions().height == 1)
        # Newer snapshot, same positions, cadence not due: nothing is written.
        source.set(replace(snapshot_at(1), positions_version=0))
        time.sleep(0.3)
        assert reader.versions().height == 1
        # Positions changed: written at once.
        source.set(snapshot_at(2))
        assert _wait(lambda: reader.versions().height == 2)
        assert reader.versions()["seq"].to_list() == [0, 2]
        # Two snapshots batched: the aggregates were appended.
        assert _wait(lambda: reader.greeks_history()["version"].to_list() == [0, 1])
        # Cadence: due while connected...
        writer.interval = 0.05
        source.set(replace(snapshot_at(3), positions_version=2))
        assert _wait(lambda: reader.versions().height == 3)
        # ...but nothing is recorded while disconnected, not even a position change.
        down = ConnectionStatus(state=ConnState.DISCONNECTED)
        source.set(replace(snapshot_at(4), positions_version=2, connection=down))
        time.sleep(0.3)
        source.set(replace(snapshot_at(5), connection=down))
        time.sleep(0.3)
        assert reader.versions().height == 3
    finally:
        writer.stop()
    assert writer.last_error == ""
    # stop() appended what was still batched.
    assert reader.account_history()["version"].to_list() == [0, 1, 2]


def test_rewriting_a_snapshot_never_duplicates(lake_root):
    writer = LakeWriter(lake_root)
    assert [writer.write_snapshot(snapshot_at(i)) for i in range(3)] == [0, 1, 2]
    assert writer.write_snapshot(snapshot_at(2)) == 2
    assert writer.write_snapshot(snapshot_at(1)) == 2      # older than the last recorded: not written
    writer.stop()
    again = LakeWriter(lake_root)                          # a restart resumes from commit metadata
    assert again.write_snapshot(snapshot_at(2)) == 2
    assert again.write_snapshot(snapshot_at(3)) == 3
    again.stop()
    assert _assert_consistent(lake_root)["seq"].to_list() == [0, 1, 2, 3]


def test_commit_that_lands_but_reports_failure_is_not_retried_twice(lake_root, monkeypatch):
    real = lake.writer.write_deltalake
    fail = {"on": True}

    def lands_then_raises(*args, **kwargs):
        real(*args, **kwargs)
        if fail["on"]:
            raise OSError("connection reset after commit")

    writer = LakeWriter(lake_root)
    writer.write_snapshot(snapshot_at(0))
    monkeypatch.setattr(lake.writer, "write_deltalake", lands_then_raises)
    # Portfolio: the writer sees its own commit landed and reports the version.
    assert writer.write_snapshot(snapshot_at(1)) == 1
    # Aggregates: the append landed but raised; the batch stays pending and the retry adds nothing.
    with pytest.raises(OSError):
        writer.flush()
    fail["on"] = False
    writer.flush()
    writer.stop()
    assert _assert_consistent(lake_root)["seq"].to_list() == [0, 1]
    assert LakeReader(lake_root).greeks_history()["version"].to_list() == [0, 1]


def test_failed_commit_is_retried_by_the_next_tick(lake_root, monkeypatch):
    real = lake.writer.write_deltalake
    calls = {"n": 0}

    def fails_first(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(lake.writer, "write_deltalake", fails_first)
    source = _Source(snapshot_at(0))
    writer = LakeWriter(lake_root, source, interval=3600, poll=0.02)
    writer.start()
    try:
        assert _wait(lambda: LakeReader(lake_root).versions().height == 1)
    finally:
        writer.stop()
    assert calls["n"] >= 2
    assert _assert_consistent(lake_root)["seq"].to_list() == [0]


def _spawn(root: Path, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.lake.writer_proc", str(root), str(count)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_writer_process_is_refused_with_a_clear_message(lake_root):
    writer = LakeWriter(lake_root)
    writer.acquire()
    try:
        proc = _spawn(lake_root, 1)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3
        assert f"lake {lake_root} is locked by pid {os.getpid()}; opening read-only" in err
        with pytest.raises(LakeLockedError, match="opening read-only"):
            LakeWriter(lake_root).acquire()          # a second writer in the same process too
        # Reading is never refused.
        writer.write_snapshot(snapshot_at(0))
        assert LakeReader(lake_root).versions().height == 1
    finally:
        writer.stop()
    proc = _spawn(lake_root, 2)                      # released: the next process may write
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_kill_9_mid_stream_leaves_readable_tables_and_the_next_writer_resumes(lake_root):
    proc = _spawn(lake_root, 10_000)
    seen: list[int] = []
    assert proc.stdout.readline().strip() == "locked"
    while len(seen) < 12:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        seen.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)                # mid-stream: it was writing the next snapshot
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    versions = _assert_consistent(lake_root)
    written = versions.height
    assert written >= 12 and versions["seq"].to_list() == list(range(written))
    # At most the aggregate batch in flight is lost...
    assert LakeReader(lake_root).greeks_history().height >= written - 3

    # ...and the next writer (the kernel released the lock with the process) re-appends it from the
    # recorded legs, then replays the same stream without writing any snapshot twice.
    writer = LakeWriter(lake_root)
    writer.acquire()
    assert LakeReader(lake_root).greeks_history()["version"].to_list() == list(range(written))
    assert LakeReader(lake_root).account_history()["version"].to_list() == list(range(written))
    for i in range(written + 3):
        writer.write_snapshot(snapshot_at(i))
    writer.stop()
    versions = _assert_consistent(lake_root)
    assert versions["seq"].to_list() == list(range(written + 3))
    assert versions["snapshot_time"][-1] == snapshot_at(written + 2).built_at
    assert LakeReader(lake_root).version_at(snapshot_at(written + 1).built_at + STEP / 2) == written + 1
    assert LakeReader(lake_root).greeks_history()["version"].to_list() == list(range(written + 3))


def test_lost_aggregate_batch_is_rebuilt_exactly(lake_root):
    writer = LakeWriter(lake_root, batch_size=100)
    for i in range(5):
        writer.write_snapshot(snapshot_at(i))
    writer.flush()
    for i in range(5, 9):
        writer.write_snapshot(snapshot_at(i))
    expected = pl.concat([lake.aggregate_legs(pl.from_arrow(legs_table(snapshot_at(i)))) for i in range(5, 9)])
    writer._lock.release()                           # the process "dies" with 4 snapshots batched
    again = LakeWriter(lake_root)
    again.acquire()
    again.stop()
    reader = LakeReader(lake_root)
    greeks = pl.read_delta(str(lake_root / lake.GREEKS_HISTORY)).sort("version", maintain_order=True)
    assert greeks.filter(pl.col("version") >= 5).drop("version", "snapshot_seq", "snapshot_time").equals(expected)
    account = reader.account_history()
    assert account["version"].to_list() == list(range(9))
    assert account["net_liquidation"].to_list() == [snapshot_at(i).account.net_liquidation for i in range(9)]


def test_aggregate_tables_are_compacted_as_batches_accumulate(lake_root):
    from deltalake import DeltaTable

    writer = LakeWriter(lake_root, compact_every=4)
    for i in range(9):
        writer.write_snapshot(snapshot_at(i))
        writer.flush()                               # one small file per append
    writer.stop()
    for name in (lake.GREEKS_HISTORY, lake.ACCOUNT_HISTORY):
        assert len(DeltaTable(str(lake_root / name)).file_uris()) == 2   # 8 merged into 1, then the 9th
    assert LakeReader(lake_root).account_history()["version"].to_list() == list(range(9))


def test_a_standby_takes_the_local_writer_role_over_when_the_holder_is_killed(lake_root):
    from v6core.lake.standby import WriterStandby

    proc = _spawn(lake_root, 10_000)                 # the writer: another process, writing
    assert proc.stdout.readline().strip() == "locked"
    for _ in range(3):
        assert proc.stdout.readline().strip().isdigit()
    taken: list[LakeWriter] = []
    standby = WriterStandby(LakeWriter(lake_root, lambda: None), taken.append, interval=0.1)
    standby.start()
    try:
        time.sleep(1.0)
        assert taken == [] and f"locked by pid {proc.pid}" in standby.waiting    # the holder lives
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=30)
        while not taken:
            assert time.monotonic() - killed < 10, "the standby never took the writer role"
            time.sleep(0.05)
        assert taken[0] is standby.writer and standby.writer.holds_lake
        # it resumes after the dead writer's last version and writes on from there
        last = standby.writer.last_version
        assert last >= 2
        assert standby.writer.write_snapshot(snapshot_at(last + 1)) == last + 1
        with pytest.raises(LakeLockedError):
            LakeWriter(lake_root).acquire()          # one writer at a time
    finally:
        standby.stop()
        standby.writer.stop()
        if proc.poll() is None:
            proc.kill()
    _assert_consistent(lake_root)
