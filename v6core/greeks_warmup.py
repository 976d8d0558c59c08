"""Compiling the Greeks kernels off the latency-sensitive threads.

`py_vollib_vectorized` JIT-compiles numba code on first use: 6 s with numba's disk cache, 20+ s
without, holding numba's compiler lock meanwhile. Done on the runtime loop it froze every
snapshot. `start_warm_up()` compiles on a thread of its own at start; while `is_warming()`, the
snapshot builder skips local Greeks (the legs say "pending") instead of waiting for the compiler.
"""

from __future__ import annotations

import logging
import threading
from time import perf_counter

from v6core import greeks

log = logging.getLogger(__name__)

_warmed = threading.Event()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def _warm_up_logged() -> None:
    started = perf_counter()
    try:
        greeks.warm_up()
        log.info("local Greeks ready (numba warm-up %.1f s)", perf_counter() - started)
    except Exception:      # never leave the legs pending forever: compute on first use instead
        log.exception("numba warm-up failed; local Greeks are compiled on first use")
    finally:
        _warmed.set()


def start_warm_up() -> None:
    """Compile the kernels on a background thread (once per process); returns at once."""
    global _thread
    with _lock:
        if _thread is None and not _warmed.is_set():
            _thread = threading.Thread(target=_warm_up_logged, name="v6-greeks-warm-up", daemon=True)
            _thread.start()


def is_warm() -> bool:
    """True once computing Greeks no longer waits for the compiler."""
    return _warmed.is_set()


def is_warming() -> bool:
    """True while a started warm-up is still compiling (computing Greeks now would wait for it)."""
    return _thread is not None and not _warmed.is_set()


def wait_warm(timeout: float | None = None) -> bool:
    """Block until the kernels are compiled (for tools and tests, never the runtime loop)."""
    return _warmed.wait(timeout)
