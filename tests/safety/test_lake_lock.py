"""Issue #11 defect 1 (lock part): the writer notices its lock file was deleted or replaced and stops.

An flock belongs to the open file, not to the path: once the file is deleted (an operator who
reads "locked by pid N" might) a second v6 locks a fresh file and both would write the lake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.conftest import navigation_like_a_running_server  # noqa: F401 - autouse for AppTest
from tests.lake.factory import snapshot_at
from tests.safety.lake_support import shown_texts, sim_services, wait_until
from v6core.lake import LOCK_FILE, LakeLockLostError, LakeReader, LakeWriter

REPO = Path(__file__).resolve().parents[2]


class _Source:
    def __init__(self, i: int) -> None:
        self.i = i

    def __call__(self):
        return snapshot_at(self.i)


def _second_writer(root: Path, count: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.lake.writer_proc", str(root), str(count)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_writer_stops_for_good_when_its_lock_file_is_deleted_or_replaced(tmp_path, fault):
    root = tmp_path / "lake"
    source = _Source(0)
    writer = LakeWriter(root, source, interval=3600, poll=0.02)
    writer.start()
    try:
        wait_until(lambda: LakeReader(root).versions().height == 1)
        lock = root / LOCK_FILE
        if fault == "deleted":
            lock.unlink()
        else:
            other = root / "other.lock"
            other.write_text("4242")
            os.replace(other, lock)
        # Noticed by the polling thread even with nothing to write, and shown as the writer's error.
        wait_until(lambda: writer.lock_lost, timeout=30)
        assert f"lock file {lock} was {'deleted' if fault == 'deleted' else 'replaced'}" in writer.lock_lost
        wait_until(lambda: "restart v6" in writer.last_error, timeout=30)

        # A second process now takes a fresh lock file and writes; this one writes nothing more.
        done = _second_writer(root, 3)
        assert done.returncode == 0, done.stderr
        after_second = LakeReader(root).versions().height
        source.i = 40                                  # positions changed: would be written at once
        with pytest.raises(LakeLockLostError):
            writer.write_snapshot(snapshot_at(41))
        with pytest.raises(LakeLockLostError):
            writer.tick()
        assert LakeReader(root).versions().height == after_second
        assert writer.lock_lost                        # sticky: never re-locks behind the operator's back
    finally:
        writer.stop()


def test_a_lost_lock_reaches_the_sidebar_and_the_overview(tmp_path):
    with sim_services(tmp_path / "lake") as services:
        assert services.writer is not None
        (tmp_path / "lake" / LOCK_FILE).unlink()
        wait_until(lambda: services.writer.lock_lost, timeout=60)
        _, sidebar, main = shown_texts("overview")
        assert any("lake writer stopped" in t and "was deleted" in t for t in sidebar), sidebar
        assert any("lake writer stopped" in t and "restart v6" in t for t in main), main
