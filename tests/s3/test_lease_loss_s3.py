"""A writer that loses its S3 lease stops writing at once, stands by, and takes the role back.

Writer A (this process) holds a short lease and records snapshots; then its lease's network is cut
(the lease's S3 client points at a closed port: every renewal fails for real, while its Delta
commits still reach the store, the worst case). Writer B (another process) takes the lease over
once it expired on the store's clock and writes. A must notice within a lease, write nothing after
that, and stand by; when B stops, A takes the role back and writes on after B's last version.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from deltalake import DeltaTable

from tests.lake.factory import snapshot_at
from tests.s3.test_concurrency_s3 import _child
from v6core.lake import META_SEQ, META_WRITER, PORTFOLIO, LakeReader, LakeWriter, table_path
from v6core.lake.s3store import s3_client
from v6core.lake.standby import WriterStandby
from v6core.lake.storage import S3Root, storage_options

LEASE = 3.0
A_SEQ = 1_000_000          # A's snapshot numbers start here; B's (tests/s3/proc.py `take`) below 1,000


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cut_lease_network(writer: LakeWriter) -> None:
    """Fault: the writer's lease talks to a closed port from now on (renewals fail: connection refused)."""
    lease = writer._lock
    dead = S3Root(str(lease.root), {**lease.root.storage_options,
                                    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"})
    lease._client = s3_client(dead)


def live_source():
    """Snapshots stamped now, numbered from A_SEQ, so every version says which writer made it."""
    counter = itertools.count(A_SEQ)

    def source():
        n = next(counter)
        return replace(snapshot_at(n % 40, seq=n), built_at=datetime.now(timezone.utc))
    return source


def writers_by_version(root) -> list[tuple[int, str, int]]:
    """(version, writer, seq) of every snapshot commit, oldest first."""
    path = table_path(root, PORTFOLIO)
    history = DeltaTable(str(path), storage_options=storage_options(path)).history()
    rows = [(int(e["version"]), e[META_WRITER], int(e[META_SEQ])) for e in history if META_SEQ in e]
    return sorted(rows)


class Lines:
    """A child's stdout lines with the monotonic time each arrived."""

    def __init__(self, proc) -> None:
        self.proc, self.lines = proc, []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def wait(self, text: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if line == text:
                    return at
            if self.proc.poll() is not None and not any(line == text for _, line in self.lines):
                raise AssertionError(f"child exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s: {self.lines[-5:]}")


def _wait(predicate, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return time.monotonic()


@pytest.mark.timeout(300)
def test_a_writer_that_loses_its_lease_stops_writing_stands_by_and_takes_the_role_back(
        moto_server, s3_lake, monkeypatch):
    monkeypatch.setenv("V6_LAKE_LEASE_SECONDS", f"{LEASE:g}")
    source = live_source()
    lost: list[LakeWriter] = []
    taken: list[LakeWriter] = []
    standby: list[WriterStandby] = []

    def stand_by(writer: LakeWriter) -> None:       # what services do (v6core.services.writer_lost)
        lost.append(writer)
        fresh = LakeWriter(s3_lake, source, interval=0.3, poll=0.1)
        standby.append(WriterStandby(fresh, taken.append, delay=LEASE))
        standby[0].start()

    a = LakeWriter(s3_lake, source, interval=0.3, poll=0.1)
    a.on_lost = stand_by
    a.start()
    b = None
    try:
        _wait(lambda: (a.last_version or 0) >= 3, 60, "A never wrote")
        b = _child(moto_server, "take", str(s3_lake), "12", V6_LAKE_LEASE_SECONDS=f"{LEASE:g}")
        b_out = Lines(b)
        b_out.wait("waiting", 120)                  # B stands by, retrying every 0.2 s
        cut = time.monotonic()
        cut_lease_network(a)

        noticed = _wait(lambda: lost, 2 * LEASE + 5, "A never noticed that its lease was gone")
        last_by_a = a.last_version
        assert lost == [a] and not a.holds_lake and a.stopped_by_loss
        # The deadline counts from the last renewal sent before the cut: within a lease and a poll.
        assert noticed - cut <= LEASE + 1.5, noticed - cut
        assert "could not be renewed for 3 s" in a.lock_lost
        b_locked = b_out.wait("locked", 3 * LEASE + 30)
        assert standby and not taken                                           # B is alive: A waits
        b_out.wait("released", 120)
        b.wait(30)
        assert b.returncode == 0, b.stderr.read()[-2000:]

        # B released the lease: A's standby takes the role back within a third of a lease or so.
        took = _wait(lambda: taken, LEASE + 15, "A never took the role back")
        back = taken[0]
        assert back.holds_lake and back.took_over_from is None      # released, not expired
        resumed_after = back.last_version
        _wait(lambda: (back.last_version or 0) >= resumed_after + 3, 60, "A wrote nothing after taking back")
        print(f"\nA stood down {noticed - cut:.1f} s after the cut; took the role back "
              f"{took - b_locked:.1f} s after B locked")
    finally:
        if standby:
            standby[0].stop()
            standby[0].writer.stop()
        a.stop()
        if b is not None and b.poll() is None:
            b.kill()

    rows = writers_by_version(s3_lake)
    assert [v for v, _, _ in rows] == list(range(len(rows)))           # no version lost or doubled
    me = f"{socket.gethostname()} pid {os.getpid()}"
    runs = [(who, [v for v, _, _ in group]) for who, group in
            itertools.groupby(rows, key=lambda r: "A" if r[1] == me and r[2] >= A_SEQ else "B")]
    # A, then B (its 12 snapshots), then A again: never interleaved, so nothing by A after it lost.
    assert [who for who, _ in runs] == ["A", "B", "A"], runs
    assert runs[0][1][-1] == last_by_a                                 # nothing by A after it noticed
    assert len(runs[1][1]) == 12 and all(w != me for _, w, s in rows if s < A_SEQ)
    # The aggregates A had batched when it stood down were rebuilt by B: none missing, none twice.
    account = LakeReader(s3_lake).account_history()
    assert account["version"].to_list() == [v for v, _, _ in rows]
