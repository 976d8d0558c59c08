"""The live pages' shared work (pages/components/shared.py, issue #12 "shared work"): a page's
data is built once per snapshot for every session, and sessions refreshing within a moment of
each other draw the same snapshot unless the book itself changed."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from pages.components import shared
from tests.app.synthetic import synthetic_snapshot
from v6core.models import ConnState


class Ticking:
    def __init__(self, snapshot):
        self.current = snapshot

    def snapshot(self):
        return self.current

    def tick(self, **changes):
        self.current = replace(self.current, seq=self.current.seq + 1, **changes)


@pytest.fixture(autouse=True)
def fresh():
    shared.clear()
    yield
    shared.clear()


def test_a_page_builds_once_per_snapshot_for_every_session():
    snapshot = synthetic_snapshot(50)
    builds = []

    def build():
        builds.append(1)
        time.sleep(0.05)                      # a second session asks while the first builds
        return object()

    results = []
    sessions = [threading.Thread(target=lambda: results.append(shared.per_snapshot("p", snapshot, None, build)))
                for _ in range(5)]
    for s in sessions:
        s.start()
    for s in sessions:
        s.join()
    assert len(builds) == 1 and len({id(r) for r in results}) == 1
    shared.per_snapshot("p", snapshot, ("SPY",), build)          # other options: another build
    shared.per_snapshot("p", replace(snapshot, seq=snapshot.seq + 1), None, build)   # another snapshot
    assert len(builds) == 3


def test_sessions_a_moment_apart_draw_the_same_snapshot_while_only_ticks_happen(monkeypatch):
    runtime = Ticking(synthetic_snapshot(50))
    first = shared.live_snapshot(runtime)
    runtime.tick()
    assert shared.live_snapshot(runtime) is first             # a tick later, another session: shared
    monkeypatch.setattr(shared, "SHARE_WINDOW_SECONDS", 0.05)
    time.sleep(0.06)
    assert shared.live_snapshot(runtime) is runtime.current   # the window has passed: the latest


def test_a_changed_book_or_connection_is_drawn_at_once():
    runtime = Ticking(synthetic_snapshot(50))
    first = shared.live_snapshot(runtime)
    runtime.tick(positions_version=first.positions_version + 1)       # a fill changed the positions
    assert shared.live_snapshot(runtime) is runtime.current
    held = runtime.current
    runtime.tick(connection=replace(held.connection, state=ConnState.DISCONNECTED))
    assert shared.live_snapshot(runtime) is runtime.current
    restarted = replace(runtime.current, seq=0)                       # a restarted runtime counts from 0
    runtime.current = restarted
    assert shared.live_snapshot(runtime) is restarted
