"""The lake's local writer lock: an flock on `<root>/.writer.lock` that notices a deleted or replaced file.

Part of the snapshot writer (`v6core.lake.writer`); on object storage its place is taken by
`v6core.lake.s3store.S3WriterLease`.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from v6core.lake.schemas import LOCK_FILE, LakeLockedError, LakeLockLostError

log = logging.getLogger(__name__)


class WriterLock:
    """flock on `<root>/.writer.lock`: the kernel releases it when the holder dies, even by kill -9.

    An flock belongs to the open file, not to the name: if someone deletes or replaces the file
    while we hold it, a second process can lock the new file and both would write. `verify()`
    compares the locked file's inode with the one at the path and, once they differ, the lock is
    lost for good (sticky): this process stops writing until it is restarted.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None
        self.lost: str = ""

    def acquire(self) -> None:
        if self.lost:
            raise LakeLockLostError(self.lost)
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LakeLockedError(
                f"lake {self.path.parent} is locked by pid {holder}; opening read-only") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def verify(self, commit: bool = False) -> None:
        """Raise LakeLockLostError unless the file at the lock path is still the one we locked."""
        if self.lost:
            raise LakeLockLostError(self.lost)
        if self._fd is None:
            return
        held = os.fstat(self._fd)
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            how = "was deleted"
        else:
            if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                return
            how = "was replaced by another file"
        self.lost = (f"lake writer stopped: its lock file {self.path} {how} while this process (pid "
                     f"{os.getpid()}) held it, so another v6 could now write the same lake. History "
                     f"is no longer recorded by this process; restart v6 to resume (never delete the "
                     f"lock file: the lock is released when its holder exits, even on a crash)")
        log.error("%s", self.lost)
        raise LakeLockLostError(self.lost)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None and not self.lost
