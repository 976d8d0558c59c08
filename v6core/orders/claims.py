"""Per-ticket claims made atomically in the store: the one thing exactly-once rests on.

A confirmation (and a later resend) is claimed by a create-if-absent that exactly one caller can
win, whatever happens to locks, processes or hosts: two v6 processes on one lake, a deleted
`.writer.lock`, two hosts on a shared volume. Nothing is sent without winning the claim first.

`ClaimStore` is the interface. `LocalClaimStore` implements it on a local (or POSIX-shared) disk
with `os.open(O_CREAT | O_EXCL)`; object storage implements the same three calls with a
conditional put (S3 `PutObject` with `If-None-Match: *`, answered 412 when the key exists), a
get and a delete. A claim is one small object per key, so checking it costs O(1) per click,
however long the audit history grows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

CLAIMS_DIR = "_claims"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.#-]{0,127}$")


class ClaimStore(Protocol):
    """Create-if-absent records keyed by a short name (e.g. "T-abc123.confirm")."""

    def claim(self, key: str, record: Mapping[str, Any]) -> bool:
        """Create the claim with `record` inside if no claim `key` exists. True iff this call
        created it; False if it already existed (whoever made it, whenever). Durable on return."""
        ...

    def holder(self, key: str) -> dict[str, Any] | None:
        """The record of an existing claim (possibly {} if its writer died mid-write), else None."""
        ...

    def release(self, key: str) -> None:
        """Remove a claim this process just won and did nothing with (its next step failed)."""
        ...


def confirm_key(ticket_id: str) -> str:
    """The claim that lets exactly one confirmation of the ticket reach the gateway."""
    return f"{ticket_id}.confirm"


def resend_key(ticket_id: str) -> str:
    """The claim for the one resend an uncertain ticket may get."""
    return f"{ticket_id}.resend"


def claim_record(purpose: str, **extra: Any) -> dict[str, Any]:
    """Who claims: process, host and time, so a refusal can name the holder."""
    return {"purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(),
            "thread": threading.current_thread().name,
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **extra}


def describe_holder(record: Mapping[str, Any] | None) -> str:
    if not record:
        return "a claim whose holder did not finish writing it"
    parts = [f"pid {record.get('pid', '?')} on {record.get('host', '?')}"]
    if record.get("client_id") is not None:
        parts.append(f"client id {record['client_id']}")
    if record.get("session_id"):
        parts.append(f"session {record['session_id']}")
    if record.get("at"):
        parts.append(f"at {record['at']}")
    return ", ".join(parts)


class LocalClaimStore:
    """Claims as files under `<lake>/_claims/`: `O_CREAT | O_EXCL` lets exactly one creator win,
    on one host or across hosts sharing the volume; file and directory are fsynced."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @classmethod
    def for_lake(cls, lake_root: Path | str) -> LocalClaimStore:
        return cls(Path(lake_root) / CLAIMS_DIR)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"invalid claim key {key!r}")
        return self.directory / key

    def claim(self, key: str, record: Mapping[str, Any]) -> bool:
        path = self._path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(dict(record), default=str, sort_keys=True).encode("utf-8"))
            os.fsync(fd)
        except BaseException:
            # Won but not durable (disk full, I/O error): nothing was done with it, give it back.
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        self._fsync_directory()
        return True

    def holder(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text) if text.strip() else {}
        except ValueError:
            record = {}
        return record if isinstance(record, dict) else {}

    def release(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
