"""Page data computed once per snapshot and shared by every browser session.

Every session reruns its page's live fragment on its own timer; without this each of ten tabs
would rebuild the same frames from the same snapshot. `per_snapshot(page, snapshot, options, build)`
runs `build()` once per key (page name, the snapshot's sequence number and build time, the page's
options) and hands
the same result to every session; a second session asking while the first builds waits for it.

Results are shared: callers must treat them as read-only (filter into new frames, never assign
into them). Plain module state, not `st.cache_resource`: any client may send `clear_cache`, and a
cache emptied by a stranger would only cost work, never correctness, here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# A few snapshots of every page and option set: sessions a refresh apart still share.
MAX_ENTRIES = 48

_lock = threading.Lock()
_results: OrderedDict[tuple, Any] = OrderedDict()
_building: dict[tuple, threading.Lock] = {}
_stats = {"builds": 0, "hits": 0}


def per_snapshot(page: str, snapshot: Any, options: Hashable, build: Callable[[], T]) -> T:
    """`build()`'s result for (page, snapshot, options), computed at most once while cached.

    The snapshot is known by its sequence number and build time (a restarted runtime counts from
    0 again, at a later time)."""
    key = (page, snapshot.seq, snapshot.built_at, options)
    with _lock:
        if key in _results:
            _results.move_to_end(key)
            _stats["hits"] += 1
            return _results[key]
        building = _building.setdefault(key, threading.Lock())
    with building:                       # one builder per key; the others wait for its result
        with _lock:
            if key in _results:
                _stats["hits"] += 1
                return _results[key]
        value = build()
        with _lock:
            _results[key] = value
            _stats["builds"] += 1
            while len(_results) > MAX_ENTRIES:
                _results.popitem(last=False)
            _building.pop(key, None)
    return value


# Sessions refresh on their own timers while the gateway's ticks replace the snapshot several
# times a second: two sessions a moment apart would each draw (and build) a different snapshot.
# For this long the live pages keep drawing the snapshot one session already drew, unless the book
# itself changed (positions, connection) or the runtime restarted. The sidebar's "Data age" says
# how old what is shown is.
SHARE_WINDOW_SECONDS = 1.0
_drawn: dict[int, tuple[Any, float]] = {}       # id(runtime) -> (snapshot drawn, when first drawn)


def live_snapshot(runtime: Any) -> Any:
    """The snapshot a live page draws: the runtime's latest, or the one drawn by another session
    less than SHARE_WINDOW_SECONDS ago when only ticks happened since (so their work is shared)."""
    latest = runtime.snapshot()
    now = time.monotonic()
    with _lock:
        held = _drawn.get(id(runtime))
        if held is not None and SHARE_WINDOW_SECONDS > 0:
            drawn, since = held
            if (now - since < SHARE_WINDOW_SECONDS and latest is not None and drawn is not None
                    and latest.seq > drawn.seq
                    and getattr(latest, "positions_version", None) == getattr(drawn, "positions_version", None)
                    and latest.connection.state == drawn.connection.state
                    and len(latest.legs) == len(drawn.legs)):
                return drawn
        _drawn[id(runtime)] = (latest, now)
        return latest


def stats() -> dict[str, int]:
    """Builds and hits so far (for tests and the benchmark)."""
    with _lock:
        return dict(_stats, entries=len(_results))


def clear() -> None:
    with _lock:
        _drawn.clear()
        _results.clear()
        _building.clear()
        _stats.update(builds=0, hits=0)
