"""A writer process for the crash and lock tests: `python -m tests.lake.writer_proc ROOT COUNT`.

Writes snapshots 0..COUNT-1 as fast as it can (aggregates flushed every 2 snapshots) and prints
each version once committed, so the parent can kill -9 it mid-stream.
"""

import sys
from pathlib import Path

from tests.lake.factory import snapshot_at
from v6core.lake import LakeLockedError, LakeWriter


def main() -> int:
    root, count = Path(sys.argv[1]), int(sys.argv[2])
    writer = LakeWriter(root, batch_size=2)
    try:
        writer.acquire()
    except LakeLockedError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 3
    print("locked", flush=True)
    for i in range(count):
        version = writer.write_snapshot(snapshot_at(i))
        if (i + 1) % 2 == 0:
            writer.flush()
        print(version, flush=True)
    writer.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
