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


def stats() -> dict[str, int]:
    """Builds and hits so far (for tests and the benchmark)."""
    with _lock:
        return dict(_stats, entries=len(_results))


def clear() -> None:
    with _lock:
        _results.clear()
        _building.clear()
        _stats.update(builds=0, hits=0)
