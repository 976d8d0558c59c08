"""Many reader threads against a streaming runtime never see a torn snapshot."""

from __future__ import annotations

import math
import threading
import time

from v6core.models import PositionGreeks
from tests.runtime.helpers import wait_ready

READERS = 20
DURATION = 3.0
KEYS = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")


def _sum(items) -> PositionGreeks:
    total = PositionGreeks()
    for g in items:
        total = total + g
    return total


def _consistent(a: PositionGreeks, b: PositionGreeks) -> bool:
    return all(math.isclose(getattr(a, k), getattr(b, k), rel_tol=1e-9, abs_tol=1e-6) for k in KEYS)


def test_twenty_readers_never_see_a_torn_snapshot(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    first = wait_ready(rt, gw)
    problems: list[str] = []
    seen_seqs: list[int] = []
    reads = [0] * READERS
    stop = time.monotonic() + DURATION

    def reader(index: int) -> None:
        last_seq = -1
        while time.monotonic() < stop:
            snap = rt.snapshot()
            reads[index] += 1
            if snap.seq < last_seq:
                problems.append(f"reader {index}: seq went back {last_seq} -> {snap.seq}")
            last_seq = snap.seq
            legs_total = _sum(l.position_greeks for l in snap.legs)
            if not _consistent(snap.totals, legs_total):
                problems.append(f"seq {snap.seq}: totals {snap.totals} != legs {legs_total}")
            und_total = _sum(u.greeks for u in snap.underlyings)
            if not _consistent(snap.totals, und_total):
                problems.append(f"seq {snap.seq}: totals != underlyings")
            strat_ids = {s.strategy_id for s in snap.strategies}
            if any(l.strategy_id and l.strategy_id not in strat_ids for l in snap.legs):
                problems.append(f"seq {snap.seq}: leg points at a strategy not in the snapshot")
            if len(snap.legs) != len(first.legs):
                problems.append(f"seq {snap.seq}: {len(snap.legs)} legs")
            if len(problems) > 20:
                return
        seen_seqs.append(last_seq)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, problems[:5]
    # the stream really moved while we were reading
    assert max(seen_seqs) > first.seq + 5
    assert min(reads) > 10
    # and quotes changed between the first and the last snapshot
    last = rt.snapshot()
    assert any(last.quote(q.con_id) != q for q in first.quotes)
