"""Issue #11 defect 4: writer failures are visible, and the alert clears when writes succeed again.

A real small tmpfs holds the lake: filled to the last byte (ENOSPC); or its portfolio table is
bind-mounted read-only (EROFS; the lake root itself cannot be remounted read-only while the
writer holds its lock file open). The writer's error reaches the sidebar status and the Overview alerts while it lasts, and
both go away on their own once the filesystem takes writes again, without a restart.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.app.conftest import navigation_like_a_running_server  # noqa: F401 - autouse for AppTest
from tests.safety.lake_support import connected, shown_texts, sim_services, wait_until
from v6core.lake import PORTFOLIO, LakeReader

FAILING = "Lake writer failing, history is not being recorded"


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    assert done.returncode == 0, (
        f"mount {' '.join(args)} failed ({done.stderr.strip()}): these tests need root and tmpfs "
        "(run the suite as root, or in a container started with --privileged)")


@contextmanager
def small_tmpfs(where: Path, size: str = "16m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _read_only(folder: Path) -> None:
    """Bind-mount `folder` onto itself, read-only. A commit in flight keeps a file open for a few
    milliseconds and makes the remount 'busy': that is setup, so it waits for a quiet moment."""
    _mount("--bind", str(folder), str(folder))
    for _ in range(200):
        done = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"could not remount {folder} read-only: {done.stderr.strip()}")


def _fill(path: Path) -> None:
    """Write until the filesystem refuses: the next byte anyone writes there gets ENOSPC."""
    chunk = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as handle:
        with suppress(OSError):
            while True:
                handle.write(chunk)
        chunk = b"\0" * 4096
        with suppress(OSError):
            while True:
                handle.write(chunk)


def _alerts_shown() -> tuple[list[str], list[str]]:
    _, sidebar, main = shown_texts("overview")
    return [t for t in sidebar if FAILING in t], [t for t in main if FAILING in t]


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_writer_errors_are_shown_and_cleared_when_writes_work_again(tmp_path, fault):
    with small_tmpfs(tmp_path / "fs") as fs:
        root = fs / "lake"
        with sim_services(root, V6_SNAPSHOT_INTERVAL="1") as services:
            connected(services)
            wait_until(lambda: LakeReader(root).latest_version() is not None, timeout=60)
            assert _alerts_shown() == ([], [])
            filler = fs / "filler.bin"
            if fault == "disk full":
                _fill(filler)
            else:
                _read_only(root / PORTFOLIO)
            try:
                error = wait_until(lambda: services.writer.last_error, timeout=60)
                assert ("No space left" in error) if fault == "disk full" else ("Read-only file system" in error
                                                                                 or "os error 30" in error), error
                sidebar, main = _alerts_shown()
                assert sidebar and main and error in sidebar[0] and error in main[0], (sidebar, main)
            finally:
                if fault == "disk full":
                    filler.unlink()
                else:
                    subprocess.run(["umount", str(root / PORTFOLIO)], check=True)
            written = LakeReader(root).latest_version()
            wait_until(lambda: not services.writer.last_error
                       and (LakeReader(root).latest_version() or -1) > written, timeout=60)
            assert _alerts_shown() == ([], [])
            assert os.path.ismount(fs)
