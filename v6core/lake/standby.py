"""A read-only process stands by for the lake's writer role and takes it when its holder stops.

Two v6 processes on one lake: one writes snapshots (and trades), the other opened read-only because
the writer lock was held. When the writer stops — a crash, `kill -9`, a host that hangs and stops
renewing its S3 lease — the read-only process takes the role over without a restart: it retries
the lock every third of the lease (S3; local flock: every second) and, once it wins, hands the
started writer to `on_takeover` (services wire it in and say so on screen). A writer that lost its
S3 lease to another process stands by the same way (services build it a fresh writer), so the role
comes back to it when that process stops.

The lock decides, never this loop: on S3 the expired lease is replaced with a conditional put
(`If-Match` its last etag), so of two standbys exactly one wins, and a live holder that renews
keeps it; locally the kernel's flock does the same. At most one writer exists at any time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from v6core.lake.schemas import LakeLockedError, error_line
from v6core.lake.writer import LakeWriter

log = logging.getLogger(__name__)


class WriterStandby:
    def __init__(self, writer: LakeWriter, on_takeover: Callable[[LakeWriter], None],
                 interval: float | None = None,
                 on_waiting: Callable[[LakeLockedError], None] | None = None,
                 delay: float | None = None) -> None:
        self.writer = writer
        self.on_takeover = on_takeover
        self.on_waiting = on_waiting        # each refusal, naming the holder (services show who writes)
        self.holder: dict | None = None     # the current holder (host, pid) as the S3 lease names it
        lease = writer.lease_seconds
        self.interval = interval if interval is not None else (lease / 3 if lease else 1.0)
        self.waiting = ""                   # why this process is not the writer yet (last refusal)
        # Before the first try: a writer that just lost its lease (its renewals failed) backs off,
        # so a healthy standby elsewhere wins the expired lease rather than this suspect process.
        self.delay = self.interval if delay is None else delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="v6-lake-standby", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop waiting; a takeover in progress finishes first (its writer is then the services')."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    @property
    def done(self) -> bool:
        return self.writer.holds_lake

    def _run(self) -> None:
        wait = self.delay
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.writer.start()          # LakeLockedError while the holder is alive
            except LakeLockedError as exc:
                self.waiting = str(exc)
                self.holder = getattr(exc, "holder", None)
                if self.on_waiting is not None:
                    try:
                        self.on_waiting(exc)
                    except Exception:  # noqa: BLE001 - a status line must not stop the standby
                        log.exception("lake standby: reporting the holder failed")
                continue
            except Exception as exc:  # noqa: BLE001 - the store did not answer: try again later
                self.waiting = error_line(exc)
                log.warning("lake standby: taking the writer role failed, retrying: %s", self.waiting)
                continue
            try:
                self.on_takeover(self.writer)
            except Exception:  # noqa: BLE001 - give the role back rather than write without the rest
                log.exception("lake standby: taking over failed; releasing the writer role")
                self.writer.stop()
                continue
            log.warning("lake: this process took over the writer role")
            return
