"""A synthetic book for a real `streamlit run serve.py` (bench_pages's session benchmark only).

`bench_pages.py` puts a `sitecustomize.py` on the server's PYTHONPATH that calls `install()`:
`get_services()` then returns the stand-in of tests/app/synthetic.py, whose snapshot is replaced
three times a second (a new sequence number each time, as ticks do with a gateway), so the
pages' per-snapshot sharing is measured against a moving book, not a frozen one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

TICKS_PER_SECOND = 3.0


def install(legs: int) -> None:
    from tests.app.synthetic import install_stand_in, synthetic_snapshot

    now = datetime.now(timezone.utc)
    base = synthetic_snapshot(legs, now=now)
    services = install_stand_in(base)

    def tick() -> None:
        seq = base.seq
        while True:
            time.sleep(1.0 / TICKS_PER_SECOND)
            seq += 1
            services.runtime.current = replace(base, seq=seq, built_at=datetime.now(timezone.utc))

    threading.Thread(target=tick, name="bench-ticks", daemon=True).start()
