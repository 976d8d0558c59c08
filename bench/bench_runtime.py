"""Runtime figures: tick-to-snapshot latency, snapshot build cost, Greeks for 10,000 legs.

Run: `python bench/bench_runtime.py [--seconds 8] [--sizes 200 1000]`. Prints figures, no
pass/fail.

1. Tick-to-snapshot latency at N subscribed contracts: the simulator runs in its own process
   (`python -m v6core.sim`), the runtime connects with the real ib_async client and quotes the
   seeded book plus listed options up to N contracts. A reader thread waits on every new
   snapshot and, for each quote whose time changed, records "seen by the reader" minus "tick
   handled on the runtime thread" (the quote's time). That includes the coalescing delay (a
   rebuild at most every 100 ms) and the build itself; socket and decode time are not in it.
2. Snapshot build cost: `SnapshotBuilder.build` on a synthetic state of 200 / 1,000 option legs,
   once with IB Greeks on every leg and once with every leg falling back to computed Greeks.
   Build and Greeks figures are CPU time (process_time), latency is wall time.
3. Greeks for 10,000 legs: the runtime's fallback call (`greeks.fill_greeks`, one vectorised
   pass) against a per-leg scalar py_vollib loop, with IB's IV and with the IV implied from mid.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from py_vollib.black_scholes.greeks import analytical  # noqa: E402  (scalar baseline)
from py_vollib.black_scholes.implied_volatility import implied_volatility  # noqa: E402

from v6core import greeks as greek_math  # noqa: E402
from v6core.config import Settings  # noqa: E402
from v6core.models import ConnectionStatus, ConnState, ContractInfo, Greeks, GreekSource, Quote  # noqa: E402
from v6core.runtime import Runtime  # noqa: E402
from v6core.state import LiveState, PositionRecord, QuoteRecord, SnapshotBuilder  # noqa: E402

RATE = 0.04


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def best_of(repeat: int, fn) -> float:
    """Best CPU time of `repeat` runs: the machine is shared, so wall time says more about the
    neighbours than about the code; both sides of every ratio are measured the same way."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


# --------------------------------------------------------------------------- 1. latency

def start_sim_process(seed: int, tick_rate: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6core.sim", "--host", "127.0.0.1", "--port", "0",
         "--seed", str(seed), "--tick-rate", str(tick_rate)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    port = int(line.split("127.0.0.1:")[1].split()[0])
    # keep draining: a full pipe would block the simulator
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port


def contracts_to_watch(seed: int, n: int) -> list[ContractInfo]:
    from v6core.sim import SimGateway

    universe = SimGateway(seed=seed)            # not started: only its deterministic listing
    seeded = [p.contract for p in universe._account.positions() if p.quantity]
    chosen = {c.con_id: c for c in seeded}
    symbols = ["SPY", "QQQ", "IWM", "AAPL", "TSLA"]
    by_symbol = {s: [(e, k) for e in universe.expiries(s) for k in universe.strikes(s)]
                 for s in symbols}
    i = 0
    while len(chosen) < n and any(by_symbol.values()):
        symbol = symbols[i % len(symbols)]
        i += 1
        if not by_symbol[symbol]:
            continue
        expiry, strike = by_symbol[symbol].pop(len(by_symbol[symbol]) // 2)
        for right in ("C", "P"):
            info = universe.lookup(symbol, expiry, strike, right)
            if info is not None and len(chosen) < n:
                chosen[info.con_id] = info
    return list(chosen.values())


def measure_latency(n: int, seconds: float, seed: int = 7, tick_rate: float = 3.0) -> dict:
    proc, port = start_sim_process(seed, tick_rate)
    rt = Runtime(Settings(mode="ib", ib_host="127.0.0.1", ib_port=port, client_id=31))
    try:
        rt.start()
        if rt.wait_for(lambda s: s.connection.state == ConnState.CONNECTED and s.legs, 30) is None:
            raise SystemExit("runtime did not connect to the sim")
        watched = contracts_to_watch(seed, n)
        rt.watch(watched).result(120)
        ids = {c.con_id for c in watched}
        warm = rt.wait_for(lambda s: sum(1 for q in s.quotes if q.con_id in ids and q.time) >= len(ids),
                           120)
        if warm is None:
            raise SystemExit(f"only {sum(1 for q in rt.snapshot().quotes if q.time)} of {n} quoted")
        latencies: list[float] = []
        builds: list[float] = []
        snapshots = 0
        last_time: dict[int, datetime] = {q.con_id: q.time for q in warm.quotes}
        last_seq = warm.seq
        cpu_start = time.process_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            snap = rt.wait_for(lambda s, seq=last_seq: s.seq > seq, 2.0)
            seen = datetime.now(timezone.utc)
            if snap is None:
                continue
            snapshots += 1
            last_seq = snap.seq
            builds.append(rt.last_build_seconds)
            for q in snap.quotes:
                if q.time is not None and q.time != last_time.get(q.con_id):
                    last_time[q.con_id] = q.time
                    latencies.append((seen - q.time) / timedelta(milliseconds=1))
        cpu = time.process_time() - cpu_start
        legs = len(rt.snapshot().legs)
        return {"cpu_share": cpu / seconds,
                "cpu_us_per_update": cpu / max(len(latencies), 1) * 1e6,"contracts": len(ids), "legs": legs, "samples": len(latencies),
                "p50_ms": pct(latencies, 0.50), "p99_ms": pct(latencies, 0.99),
                "snapshots_per_s": snapshots / seconds,
                "quote_updates_per_s": len(latencies) / seconds,
                "build_ms_median": statistics.median(builds) * 1e3 if builds else float("nan")}
    finally:
        rt.stop()
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- 2. build cost

def synthetic_state(n: int, with_ib_greeks: bool) -> LiveState:
    rng = random.Random(3)
    now = datetime.now(timezone.utc)
    state = LiveState(managed_accounts=("DU1",), account_name="DU1", epoch=1)
    spots = {"SPY": 600.0, "QQQ": 510.0, "IWM": 230.0, "AAPL": 230.0, "TSLA": 350.0}
    for i, (symbol, spot) in enumerate(spots.items()):
        con_id = 1 + i
        state.underlying_ids[symbol] = con_id
        state.quotes[con_id] = QuoteRecord(Quote(con_id, bid=spot - 0.01, ask=spot + 0.01,
                                                 time=now), epoch=1)
    today = now.date()
    for k in range(n):
        symbol = rng.choice(list(spots))
        spot = spots[symbol]
        con_id = 1000 + k
        expiry = today + timedelta(days=rng.randint(0, 200))
        strike = round(spot * rng.uniform(0.8, 1.2))
        right = rng.choice("CP")
        info = ContractInfo(con_id, symbol, "OPT", expiry=expiry, strike=float(strike),
                            right=right, multiplier=100.0)
        state.positions[("DU1", con_id)] = PositionRecord("DU1", info, float(rng.choice([-3, -1, 1, 2])),
                                                          250.0)
        t = greek_math.year_fraction(expiry, now)
        iv = rng.uniform(0.15, 0.6)
        g = greek_math.bs_greeks([spot], [strike], [t], RATE, [iv], [right == "C"])
        price = float(g["price"][0])
        ib = Greeks(float(g["delta"][0]), float(g["gamma"][0]), float(g["theta"][0]),
                    float(g["vega"][0]), iv=iv, und_price=spot, source=GreekSource.IB)
        state.quotes[con_id] = QuoteRecord(
            Quote(con_id, bid=max(price - 0.05, 0.01), ask=price + 0.05, iv=iv, time=now),
            ib_greeks=ib if with_ib_greeks else None, epoch=1)
    return state


def measure_build(n: int, with_ib_greeks: bool, repeat: int = 5) -> float:
    state = synthetic_state(n, with_ib_greeks)
    builder = SnapshotBuilder(Settings())
    status = ConnectionStatus(state=ConnState.CONNECTED)
    builder.build(state, status, 1)            # warm: JIT, strategy plan cache
    seq = iter(range(2, 10_000))
    return best_of(repeat, lambda: builder.build(state, status, next(seq)))


# --------------------------------------------------------------------------- 3. Greeks

def greeks_book(n: int):
    rng = np.random.default_rng(11)
    now = datetime.now(timezone.utc)
    spot = rng.uniform(20, 600, n)
    strike = np.round(spot * rng.uniform(0.8, 1.2, n))
    days = rng.integers(1, 400, n)
    iv = rng.uniform(0.1, 0.9, n)
    call = rng.random(n) < 0.5
    expiries = [now.date() + timedelta(days=int(d)) for d in days]
    t = np.array([greek_math.year_fraction(e, now) for e in expiries])
    price = greek_math.bs_greeks(spot, strike, t, RATE, iv, call)["price"]
    return now, spot, strike, expiries, t, iv, call, price


def measure_greeks(n: int, repeat: int) -> dict:
    now, spot, strike, expiries, t, iv, call, price = greeks_book(n)
    with_iv = [greek_math.GreekRequest(i, float(spot[i]), float(strike[i]), bool(call[i]),
                                       t=float(t[i]), iv=float(iv[i])) for i in range(n)]
    from_mid = [greek_math.GreekRequest(i, float(spot[i]), float(strike[i]), bool(call[i]),
                                        t=float(t[i]), mid=float(price[i])) for i in range(n)]

    def scalar_greeks(ivs):
        for i in range(n):
            args = ("c" if call[i] else "p", float(spot[i]), float(strike[i]), float(t[i]), RATE, ivs[i])
            analytical.delta(*args), analytical.gamma(*args)
            analytical.theta(*args), analytical.vega(*args)

    def scalar_from_mid():
        ivs = []
        for i in range(n):
            try:
                ivs.append(implied_volatility(float(price[i]), float(spot[i]), float(strike[i]),
                                              float(t[i]), RATE, "c" if call[i] else "p"))
            except Exception:
                ivs.append(0.3)
        scalar_greeks(ivs)

    greek_math.fill_greeks(with_iv[:10], now, RATE)        # JIT warm-up, excluded
    greek_math.fill_greeks(from_mid[:10], now, RATE)
    vec_iv = best_of(repeat, lambda: greek_math.fill_greeks(with_iv, now, RATE))
    vec_mid = best_of(repeat, lambda: greek_math.fill_greeks(from_mid, now, RATE))
    base_iv = best_of(max(1, repeat // 2), lambda: scalar_greeks([float(v) for v in iv]))
    base_mid = best_of(1, scalar_from_mid)
    arrays = best_of(repeat, lambda: greek_math.bs_greeks(spot, strike, t, RATE, iv, call))
    return {"vec_iv": vec_iv, "base_iv": base_iv, "vec_mid": vec_mid, "base_mid": base_mid,
            "arrays": arrays}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--legs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    print(f"== Greeks for {args.legs:,} legs (best CPU time of {args.repeat}; JIT warm-up excluded)")
    g = measure_greeks(args.legs, args.repeat)
    print(f"  with IB's IV : vectorised fill_greeks {g['vec_iv'] * 1e3:8.1f} ms | scalar py_vollib loop "
          f"{g['base_iv'] * 1e3:8.1f} ms | x{g['base_iv'] / g['vec_iv']:.1f} faster")
    print(f"  math only    : greeks.bs_greeks on arrays {g['arrays'] * 1e3:6.1f} ms | x{g['base_iv'] / g['arrays']:.1f} "
          f"vs the scalar loop (the rest of fill_greeks is per-leg request/result objects)")
    print(f"  IV from mid  : vectorised fill_greeks {g['vec_mid'] * 1e3:8.1f} ms | scalar py_vollib loop "
          f"{g['base_mid'] * 1e3:8.1f} ms | x{g['base_mid'] / g['vec_mid']:.1f} faster")

    print("== Snapshot build (SnapshotBuilder.build incl. strategy grouping, best CPU time of 5)")
    for n in args.sizes:
        ib = measure_build(n, True)
        computed = measure_build(n, False)
        print(f"  {n:5d} legs: IB Greeks {ib * 1e3:7.1f} ms | all computed {computed * 1e3:7.1f} ms")

    if args.skip_latency:
        return
    print(f"== Tick-to-snapshot latency (sim in its own process, tick rate 3/s, {args.seconds:g} s each)")
    for n in args.sizes:
        r = measure_latency(n, args.seconds)
        print(f"  {r['contracts']:5d} contracts ({r['legs']} legs): p50 {r['p50_ms']:6.1f} ms  "
              f"p99 {r['p99_ms']:6.1f} ms | {r['samples']} samples, "
              f"{r['quote_updates_per_s']:.0f} quote updates/s, {r['snapshots_per_s']:.1f} snapshots/s, "
              f"live build median {r['build_ms_median']:.1f} ms; this process used "
              f"{r['cpu_share']:.2f} CPU-s/s = {r['cpu_us_per_update']:.0f} us CPU per quote update")


if __name__ == "__main__":
    main()
