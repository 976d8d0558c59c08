"""Child processes for the S3 concurrency tests: `python -m tests.s3.proc COMMAND ROOT ...`.

The S3 endpoint and credentials come from the standard AWS environment the parent sets.
- `append ROOT TAG COUNT`: COUNT audit commits (one event each, id TAG-i), printing each version.
- `write ROOT COUNT`: a LakeWriter committing snapshots 0..COUNT-1, printing each version.
- `claim ROOT OWNER START TICKETS`: at wall time START, claim tickets 0..TICKETS-1; prints the won ids.
- `take ROOT COUNT`: a LakeWriter retrying the writer lease every 0.2 s until it holds it (it takes an
  expired one over; "waiting" after the first refusal), then committing COUNT snapshots stamped with the current time, printing
  "locked" and each version; then it stops and releases the lease.
- `serve ROOT STATE_DIR`: a whole v6 process (`start_services`, embedded simulator, a snapshot a
  second) printing its lake role as one JSON line every 0.25 s until killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tests.lake.factory import snapshot_at
from v6core.lake import AuditEvent, AuditLog, LakeLockedError, LakeWriter
from v6core.lake.s3store import S3ClaimStore
from v6core.lake.storage import lake_root


def main() -> int:
    command, root = sys.argv[1], lake_root(sys.argv[2])
    if command == "append":
        tag, count = sys.argv[3], int(sys.argv[4])
        log = AuditLog(root)
        for i in range(count):
            log.append_audit([AuditEvent(f"{tag}-{i}", "confirmed", event_id=f"{tag}-{i}")])
            print(i, flush=True)
    elif command == "write":
        writer = LakeWriter(root, batch_size=2)
        try:
            writer.acquire()
        except LakeLockedError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 3
        print("locked", flush=True)
        for i in range(int(sys.argv[3])):
            print(writer.write_snapshot(snapshot_at(i)), flush=True)
        writer.stop()
    elif command == "take":
        from dataclasses import replace
        from datetime import datetime, timezone

        writer, refused = LakeWriter(root), False
        while True:
            try:
                writer.acquire()
                break
            except LakeLockedError:
                if not refused:
                    print("waiting", flush=True)
                refused = True
                time.sleep(0.2)
        print("locked", flush=True)
        for i in range(int(sys.argv[3])):
            snapshot = replace(snapshot_at(i), seq=i, built_at=datetime.now(timezone.utc))
            print(writer.write_snapshot(snapshot), flush=True)
            time.sleep(0.2)
        writer.stop()
        print("released", flush=True)
    elif command == "claim":
        owner, start, tickets = sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        store = S3ClaimStore(root)
        time.sleep(max(0.0, start - time.time()))
        won = [f"T{i:03d}" for i in range(tickets) if store.claim(f"T{i:03d}.confirm", {"owner": owner})]
        print(json.dumps(won), flush=True)
    elif command == "serve":
        from v6core.config import load_settings
        from v6core.services import start_services

        services = start_services(load_settings(mode="sim", lake_uri=str(root), lake_path=Path(sys.argv[3]),
                                                snapshot_interval=1.0, _env_file=None))
        try:
            while True:
                writer = services.writer
                print(json.dumps({"pid": os.getpid(), "at": time.monotonic(), "status": services.lake_status,
                                  "writes": bool(writer is not None and writer.holds_lake),
                                  "last_version": writer.last_version if writer is not None else None,
                                  "trading": services.orders.trading_available}), flush=True)
                time.sleep(0.25)
        finally:
            services.stop()
    else:
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
