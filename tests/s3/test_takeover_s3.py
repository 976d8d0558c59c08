"""Writer takeover on an S3 lake: when the process holding the writer lease dies, the read-only
process on the same lake becomes the writer by itself once the lease expires, and says so.

Two whole v6 processes (tests/s3/proc.py `serve`: services, embedded simulator, a snapshot a
second) against the moto server; the writer is killed with SIGKILL, so it releases nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest

from tests.s3.test_concurrency_s3 import _child
from v6core.lake import LakeLockedError, LakeReader, LakeWriter

LEASE = 6.0          # seconds; V6_LAKE_LEASE_SECONDS of both processes (renewed every 2 s)
MARGIN = 10.0        # the standby's retry interval (LEASE / 3) plus round trips on a loaded machine


class Statuses:
    """The JSON status lines a `serve` child prints, collected on a thread."""

    def __init__(self, proc) -> None:
        self.proc, self.lines, self.errors = proc, [], []
        for target in (self._read, self._drain):       # a full stderr pipe would block the child
            threading.Thread(target=target, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.errors = [*self.errors[-50:], line]

    def wait(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            assert self.proc.poll() is None, "child died: " + "".join(self.errors)
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout} s; last status: {self.lines[-1:]}; " + "".join(self.errors[-10:]))


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


@pytest.mark.timeout(600)
def test_read_only_process_takes_the_writer_role_over_after_the_writer_is_killed(moto_server, s3_lake, tmp_path):
    env = {"V6_LAKE_LEASE_SECONDS": f"{LEASE:g}", "PYTHONUNBUFFERED": "1"}
    first = _child(moto_server, "serve", str(s3_lake), str(tmp_path / "a"), **env)
    second = None
    try:
        a = Statuses(first)
        a.wait(lambda s: s["writes"] and s["last_version"] is not None, 180)
        second = _child(moto_server, "serve", str(s3_lake), str(tmp_path / "b"), **env)
        b = Statuses(second)
        hello = b.wait(lambda s: True, 180)
        assert not hello["writes"] and not hello["trading"], hello
        assert hello["status"].startswith(f"Lake {s3_lake}: read-only here; lake {s3_lake} is written by "
                                          f"{socket.gethostname()} pid {first.pid}"), hello
        assert hello["status"].endswith("this process takes over if that writer stops"), hello

        # While the writer lives it renews its lease: the standby never gets the role, however long.
        time.sleep(2 * LEASE)
        assert not any(s["writes"] for s in b.lines)
        assert a.lines[-1]["writes"] and a.lines[-1]["status"] == f"Lake {s3_lake}: this process writes snapshots"
        written_by_first = a.lines[-1]["last_version"]

        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        first.wait(30)
        took = b.wait(lambda s: s["writes"], LEASE + MARGIN + 20)
        took_after = took["at"] - killed
        print(f"\ntook the writer role over {took_after:.1f} s after kill -9 (lease {LEASE:g} s)")
        assert took_after <= LEASE + MARGIN, took_after
        assert took["status"].startswith(
            f"Lake {s3_lake}: this process writes snapshots (took the writer role over from "
            f"{socket.gethostname()} pid {first.pid} at "), took
        assert b.wait(lambda s: s["trading"], 60)["writes"]        # and it trades: it holds the audit log

        # Its snapshots are recorded, after the dead writer's, with no version written twice.
        newer = b.wait(lambda s: (s["last_version"] or -1) > written_by_first, 60)["last_version"]
        versions = LakeReader(s3_lake).versions()
        assert versions["version"].to_list() == list(range(versions.height))
        assert versions.height > newer >= written_by_first + 1
        assert versions["snapshot_id"].is_unique().all()
        # One writer at a time: the new one renews its lease, nobody else gets it.
        with pytest.raises(LakeLockedError, match=f"pid {second.pid}"):
            LakeWriter(s3_lake).acquire()
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
