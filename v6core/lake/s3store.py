"""What the lake needs from object storage besides Delta tables: a writer lease and per-ticket claims.

Both rest on S3 conditional writes, the only primitive every S3-compatible store shares that two
hosts cannot both win: `PUT … If-None-Match: *` (create if absent) and `PUT … If-Match: <etag>`
(replace only what I read). There is no flock on object storage and no local file decides anything.

- `S3WriterLease` (`<root>/.writer.lease`): one snapshot writer per lake. The holder renews it every
  `ttl / 3` seconds; another process takes it over only once it has expired, judged on the store's
  own clock (the object's Last-Modified against the Date of the store's reply), never a host clock.
  A holder whose renewal is refused (the object was replaced: another process took it over) or that
  could not renew for a whole `ttl` has lost it for good: that lease object never writes again (a
  renewal that was in flight and landed anyway is given back), and the process stands by with a new one.
- `S3ClaimStore` (`<root>/_claims/<key>`): the orders' ClaimStore on S3; a ticket's confirmation is
  claimed by exactly one caller; `claim()` is True for that one and False for everyone else, forever.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from v6core.lake.schemas import LakeError, LakeLockedError, LakeLockLostError
from v6core.lake.storage import S3Root

log = logging.getLogger(__name__)

LEASE_NAME = ".writer.lease"
# How long a silent writer keeps the lease (seconds; renewed every third of it). Read from the
# environment because the writer is built without settings; the holder records it in the object.
def lease_seconds() -> float:
    return float(os.environ.get("V6_LAKE_LEASE_SECONDS", "30") or 30)


DEFAULT_LEASE_SECONDS = lease_seconds()
CLAIMS_PREFIX = "_claims"          # the same folder as LocalClaimStore
_CLAIM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.#-]{0,127}$")


def s3_client(root: S3Root) -> Any:
    """A boto3 S3 client for the root's endpoint and credentials (path-style when deltalake uses it)."""
    import boto3
    from botocore.config import Config

    opts = root.storage_options
    style = "path" if opts.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") == "false" else "virtual"
    return boto3.client(
        "s3", endpoint_url=opts.get("AWS_ENDPOINT_URL") or None, region_name=opts.get("AWS_REGION"),
        aws_access_key_id=opts.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=opts.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=opts.get("AWS_SESSION_TOKEN"),
        config=Config(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=5, read_timeout=15))


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _lost_race(exc: Exception) -> bool:
    """412 PreconditionFailed, or 409 ConditionalRequestConflict (another conditional write in flight)."""
    return _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _server_now(response: dict[str, Any]) -> datetime | None:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    return parsedate_to_datetime(date) if date else None


def s3_keys(table: S3Root) -> set[str]:
    """Every object name under a table's prefix, relative to it (e.g. `part-….parquet`)."""
    client, prefix, names = s3_client(table), f"{table.key}/", set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=table.bucket, Prefix=prefix):
        names.update(o["Key"][len(prefix):] for o in page.get("Contents", ()))
    return names


def s3_log_size(table: S3Root) -> int:
    """Bytes under a table's `_delta_log/` prefix."""
    client, total = s3_client(table), 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=table.bucket,
                                                                  Prefix=f"{table.key}/_delta_log/"):
        total += sum(int(o["Size"]) for o in page.get("Contents", ()))
    return total


class S3WriterLease:
    """The lake's writer lock on object storage: a lease object written with conditional puts.

    Same surface as the local WriterLock (`acquire`, `verify`, `release`, `held`, `lost`). The lease
    is lost for good (sticky, like a replaced lock file) when a renewal finds the object replaced
    (another process took it over) or when no renewal succeeded for a whole `ttl` (another process
    may take it now): this object never writes the lease again, and `taken_by` names the process
    that holds it, when the store said. The writer stops writing at once; a process with services
    stands by with a fresh lease (v6core.lake.standby) and takes the role back when that one stops.
    """

    def __init__(self, root: S3Root, ttl: float | None = None, account: str = "") -> None:
        # The environment is read per lease, not at import, so one process can run a short lease.
        self.root, self.ttl, self.account = root, float(ttl if ttl is not None else lease_seconds()), account
        self.key = f"{root.key}/{LEASE_NAME}".lstrip("/")
        self.owner = uuid.uuid4().hex
        self._client = s3_client(root)
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = ""
        # time.monotonic() when the last successful put was *sent*: the store stamps it later, so
        # our deadline (this + ttl) never outlasts the lease as the store (and a standby) sees it.
        self._renewed = 0.0
        self._state = threading.Lock()      # a renewal landing and the lease being declared lost
        self.took_over_from: dict[str, Any] | None = None   # the expired holder this lease replaced
        self.taken_by: dict[str, Any] | None = None          # who replaced this lease, once it was lost
        self.lost_how = ""                                   # "was taken over by another process", ...

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "account": self.account, "ttl_seconds": self.ttl}).encode()

    def _put(self, **condition: str) -> str:
        return self._client.put_object(Bucket=self.root.bucket, Key=self.key, Body=self._body(),
                                       ContentType="application/json", **condition)["ETag"]

    def holder(self) -> dict[str, Any] | None:
        """The lease object's content plus `expired` (on the store's clock), or None if nobody holds it."""
        try:
            got = self._client.get_object(Bucket=self.root.bucket, Key=self.key)
        except Exception as exc:  # noqa: BLE001 - botocore's NoSuchKey is generated per client
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        info = json.loads(got["Body"].read() or b"{}")
        now = _server_now(got) or got["LastModified"]
        age = (now - got["LastModified"]).total_seconds()
        info.update(etag=got["ETag"], age_seconds=age, expired=age > float(info.get("ttl_seconds", self.ttl)))
        return info

    def acquire(self) -> None:
        if self.lost:
            raise LakeLockLostError(self.lost)
        if self.held:
            return
        sent = time.monotonic()
        try:
            self._etag = self._put(IfNoneMatch="*")
        except Exception as exc:  # noqa: BLE001
            if not _lost_race(exc):
                raise LakeError(self.root.redact(f"writer lease on {self.root}: {exc}")) from None
            current = self.holder()
            if current is not None and not current["expired"]:
                locked = LakeLockedError(
                    f"lake {self.root} is written by {current.get('host', '?')} pid {current.get('pid', '?')} "
                    f"(lease renewed {current['age_seconds']:.0f} s ago); opening read-only")
                locked.holder = _who(current)
                raise locked from None
            try:   # expired (its holder died or hangs): take it over, unless someone else just did
                sent = time.monotonic()
                self._etag = self._put(IfMatch=current["etag"]) if current else self._put(IfNoneMatch="*")
            except Exception as exc2:  # noqa: BLE001
                if _lost_race(exc2):
                    raise LakeLockedError(f"lake {self.root}: another process took the writer lease just now; "
                                          "opening read-only") from None
                raise LakeError(self.root.redact(f"writer lease on {self.root}: {exc2}")) from None
            self.took_over_from = {**_who(current), "age_seconds": current.get("age_seconds")} if current else None
            log.warning("lake: took over the expired writer lease of %s pid %s", current and current.get("host"),
                        current and current.get("pid"))
        self._renewed = sent
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="v6-lake-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            etag = self._etag
            if etag is None or self.lost:
                return
            try:
                sent = time.monotonic()
                renewed = self._put(IfMatch=etag)
            except Exception as exc:  # noqa: BLE001
                if _lost_race(exc):
                    self._lose("was taken over by another process", who=self._current_holder())
                    return
                if _code(exc) in ("NoSuchKey", "404"):
                    self._lose("was deleted")
                    return
                log.warning("lake: renewing the writer lease failed (retrying): %s", self.root.redact(str(exc)))
                continue
            with self._state:
                if not self.lost:
                    self._etag, self._renewed = renewed, sent
                    continue
            # Declared lost (not renewed within its ttl) while this put was in flight: the writer has
            # stopped, so the renewal that landed anyway must not keep everyone else out.
            self._give_back(renewed)
            return

    def _current_holder(self) -> dict[str, Any] | None:
        try:
            current = self.holder()
        except Exception:  # noqa: BLE001 - who it is is for the operator; losing the lease stands
            return None
        return _who(current) if current is not None and current.get("owner") != self.owner else None

    def _lose(self, how: str, who: dict[str, Any] | None = None) -> None:
        with self._state:
            if self.lost:
                return
            self._etag = None
            self._stop.set()
            self.taken_by, self.lost_how = who, how
            by = f" ({who.get('host', '?')} pid {who.get('pid', '?')})" if who else ""
            self.lost = (f"lake writer stopped: its lease {self.root}/{LEASE_NAME} {how}{by}, so another v6 "
                         f"may now write this lake. History is no longer recorded by this process "
                         f"(pid {os.getpid()}) under this lease")
        log.error("%s", self.lost)

    def _give_back(self, etag: str) -> None:
        try:
            current = self.holder()
            if current is not None and current["etag"] == etag:
                self._client.delete_object(Bucket=self.root.bucket, Key=self.key)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("lake: giving the writer lease back failed: %s", self.root.redact(str(exc)))

    def verify(self, commit: bool = False) -> None:
        """Raise LakeLockLostError unless the lease is still ours and was renewed within its ttl.

        The deadline counts from when the last successful renewal was *sent*, so it passes before
        the store (and a standby) can see the lease expire. Before a commit (`commit=True`) the
        lease must also have `commit_margin` left: a commit takes time to land, and the store
        dates the lease to the whole second, so a commit started just before the deadline could
        land after another process took over. LakeError (not lost) then: the commit waits for
        the next renewal. Renewals every third of the ttl come that close only when one is
        missed or slower than a third of the ttl (then the snapshot waits for the next one)."""
        age = time.monotonic() - self._renewed
        if not self.lost and self._etag is not None and age > self.ttl:
            self._lose(f"could not be renewed for {self.ttl:g} s")
        if self.lost:
            raise LakeLockLostError(self.lost)
        if commit and self._etag is not None and age > self.ttl - self.commit_margin:
            raise LakeError(f"writer lease last renewed {age:.1f} s ago (it lasts {self.ttl:g} s): "
                            "not committing until a renewal succeeds")

    @property
    def commit_margin(self) -> float:
        return min(self.ttl / 3, 5.0)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
            self._thread = None
        etag, self._etag = self._etag, None
        if etag is not None:
            self._give_back(etag)

    @property
    def held(self) -> bool:
        return self._etag is not None and not self.lost


def _who(lease: dict[str, Any]) -> dict[str, Any]:
    """The holder of a lease object, as the operator needs it named."""
    return {k: lease.get(k) for k in ("host", "pid", "account")}


class S3ClaimStore:
    """The orders' ClaimStore (v6core.orders.claims) on object storage: `<root>/_claims/<key>`.

    `claim` is a PUT with `If-None-Match: *`: exactly one caller, on any host, gets 200; everyone
    else gets 412 (or 409 while the winner's write is in flight) and False. Durable on return.
    """

    def __init__(self, root: S3Root) -> None:
        self.root = root
        self._client = s3_client(root)

    @classmethod
    def for_lake(cls, root: S3Root) -> S3ClaimStore:
        return cls(root)

    def _key(self, key: str) -> str:
        if not _CLAIM_KEY.match(key):
            raise ValueError(f"invalid claim key {key!r}")
        return f"{self.root.key}/{CLAIMS_PREFIX}/{key}".lstrip("/")

    def claim(self, key: str, record: Mapping[str, Any]) -> bool:
        body = json.dumps(dict(record), default=str, sort_keys=True).encode("utf-8")
        try:
            self._client.put_object(Bucket=self.root.bucket, Key=self._key(key), Body=body,
                                    IfNoneMatch="*", ContentType="application/json")
            return True
        except Exception as exc:  # noqa: BLE001 - botocore's errors are generated per client
            if _lost_race(exc):
                return False
            raise LakeError(self.root.redact(f"claim {key} on {self.root}: {exc}")) from None

    def holder(self, key: str) -> dict[str, Any] | None:
        try:
            got = self._client.get_object(Bucket=self.root.bucket, Key=self._key(key))
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise LakeError(self.root.redact(f"reading claim {key} on {self.root}: {exc}")) from None
        try:
            record = json.loads(got["Body"].read() or b"{}")
        except ValueError:
            record = {}
        return record if isinstance(record, dict) else {}

    def release(self, key: str) -> None:
        self._client.delete_object(Bucket=self.root.bucket, Key=self._key(key))
