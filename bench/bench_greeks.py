"""Greeks for 10,000 legs: v6core.greeks (one vectorised py_vollib_vectorized pass) against a
per-leg scalar loop over py_vollib.black_scholes.greeks.analytical, the baseline, in the same run.

Run: `python bench/bench_greeks.py [--legs 10000] [--repeat 5]`. Prints best-of-N wall times and
ratios; no pass/fail. The numba JIT warm-up (seconds on a cold cache) is excluded: both sides are
run once before timing. Also times the IV solve, the fallback path (`fill_greeks` from mids),
position Greeks, strategy grouping and the risk page's curves and grid for 500 legs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from py_vollib.black_scholes.greeks import analytical  # noqa: E402  (scalar baseline)

from v6core.greeks import (  # noqa: E402
    GreekRequest, bs_greeks, fill_greeks, implied_vol, position_greeks, position_greeks_arrays, warm_up,
)
from v6core import strategies as strategies_module  # noqa: E402
from v6core.models import ContractInfo, Greeks, GreekSource, Leg  # noqa: E402
from v6core.risk import PRICE_SHOCKS_PCT, VOL_SHOCKS_PTS, prepare_risk, risk_curves, scenario_matrix, spot_grid  # noqa: E402
from v6core.strategies import group_strategies  # noqa: E402

RATE = 0.04
NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_book(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    spot = rng.uniform(20, 600, n)
    strike = np.round(spot * rng.uniform(0.8, 1.2, n))
    t = rng.uniform(1, 400, n) / 365.0
    iv = rng.uniform(0.1, 0.9, n)
    call = rng.random(n) < 0.5
    return spot, strike, t, iv, call


def scalar_loop(spot, strike, t, iv, call) -> np.ndarray:
    out = np.empty((4, spot.shape[0]))
    for i in range(spot.shape[0]):
        flag = "c" if call[i] else "p"
        args = (flag, float(spot[i]), float(strike[i]), float(t[i]), RATE, float(iv[i]))
        out[0, i] = analytical.delta(*args)
        out[1, i] = analytical.gamma(*args)
        out[2, i] = analytical.theta(*args)
        out[3, i] = analytical.vega(*args)
    return out


def legs_for_pages(n: int) -> list[Leg]:
    rng = random.Random(5)
    spots = {"SPY": 600.0, "QQQ": 510.0, "IWM": 230.0, "AAPL": 230.0, "TSLA": 350.0}
    legs = []
    for i in range(n):
        symbol = rng.choice(list(spots))
        expiry = NOW.date() + timedelta(days=rng.choice([7, 27, 55, 90]))
        strike = float(round(spots[symbol] * rng.uniform(0.85, 1.15) / 5) * 5)
        right = rng.choice("CP")
        qty = rng.choice([-3, -2, -1, 1, 2, 3])
        c = ContractInfo(100_000 + i, symbol, "OPT", expiry=expiry, strike=strike, right=right, multiplier=100.0)
        g = Greeks(0.3 if right == "C" else -0.3, 0.01, -0.05, 0.2, iv=rng.uniform(0.15, 0.6),
                   und_price=spots[symbol], source=GreekSource.IB)
        legs.append(Leg("DU1", c, qty, 2.0, 2.1, 210.0 * qty, 10.0 * qty, 0.0, 1.0 * qty,
                        (expiry - NOW.date()).days, g, position_greeks(g, qty, 100.0, spots[symbol], 1.0, 600.0),
                        None))
    return legs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.legs, args.repeat
    spot, strike, t, iv, call = make_book(n)

    start = time.perf_counter()
    warm_up()
    print(f"JIT warm-up (excluded from the timings below): {time.perf_counter() - start:.2f} s")
    scalar_loop(spot[:10], strike[:10], t[:10], iv[:10], call[:10])

    vectorised = best_of(repeat, lambda: bs_greeks(spot, strike, t, RATE, iv, call))
    baseline = best_of(max(1, repeat // 2), lambda: scalar_loop(spot, strike, t, iv, call))
    got = bs_greeks(spot, strike, t, RATE, iv, call)
    ref = scalar_loop(spot, strike, t, iv, call)
    print(f"\nGreeks for {n:,} legs (delta, gamma, theta/day, vega/vol pt; best of {repeat})")
    print(f"  baseline: scalar py_vollib analytical loop   {baseline * 1e3:9.1f} ms  ({baseline / n * 1e6:.1f} us/leg)")
    print(f"  v6core.greeks.bs_greeks (vectorised, +price) {vectorised * 1e3:9.1f} ms  ({vectorised / n * 1e6:.2f} us/leg)")
    print(f"  speed-up: {baseline / vectorised:.1f}x")
    diffs = {k: float(np.max(np.abs(got[k] - ref[i]))) for i, k in enumerate(("delta", "gamma", "theta", "vega"))}
    print("  max |difference| vs analytical: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
          + "\n  (py_vollib_vectorized Greeks are finite differences: theta is one calendar day of decay,"
          " the analytical one d/dt / 365; vega is the +/-1 vol point difference)")

    prices = got["price"]
    solve = best_of(repeat, lambda: implied_vol(prices, spot, strike, t, RATE, call))
    print(f"\nImplied vol for {n:,} prices: {solve * 1e3:.1f} ms")

    expiry = [NOW.date() + timedelta(days=int(round(x * 365)) + 1) for x in t]
    requests = [GreekRequest(i, float(spot[i]), float(strike[i]), bool(call[i]), expiry=expiry[i], mid=float(prices[i]))
                for i in range(n)]
    fill = best_of(repeat, lambda: fill_greeks(requests, NOW, RATE))
    print(f"fill_greeks for {n:,} legs from mids (IV solve + Greeks): {fill * 1e3:.1f} ms")

    qty = np.random.default_rng(2).integers(-5, 6, n).astype(float)
    arrays = best_of(repeat, lambda: position_greeks_arrays(got["delta"], got["gamma"], got["theta"], got["vega"],
                                                            qty, 100.0, spot, 1.2, 600.0))
    per_leg = [Greeks(float(got["delta"][i]), float(got["gamma"][i]), float(got["theta"][i]), float(got["vega"][i]))
               for i in range(n)]
    scalar_pos = best_of(max(1, repeat // 2), lambda: [position_greeks(per_leg[i], qty[i], 100.0, spot[i], 1.2, 600.0)
                                                       for i in range(n)])
    print(f"position Greeks for {n:,} legs: arrays {arrays * 1e3:.2f} ms, scalar function {scalar_pos * 1e3:.1f} ms")

    legs = legs_for_pages(500)

    def cold_grouping():
        strategies_module._plan.cache_clear()   # what a change of positions costs
        group_strategies(legs)
    grouping_cold = best_of(max(1, repeat // 2), cold_grouping)
    group_strategies(legs)
    grouping_warm = best_of(repeat, lambda: group_strategies(legs))
    print(f"\n500 legs: group_strategies {grouping_cold * 1e3:.1f} ms first time, "
          f"{grouping_warm * 1e3:.1f} ms with the same positions (cached structure)")
    book = prepare_risk(legs, NOW, RATE)
    prep = best_of(repeat, lambda: prepare_risk(legs, NOW, RATE))
    spy = book.underlying("SPY")
    curves = best_of(repeat, lambda: risk_curves(spy, spot_grid(600.0), NOW, RATE))
    grid = best_of(repeat, lambda: scenario_matrix(book, PRICE_SHOCKS_PCT, VOL_SHOCKS_PTS, NOW, RATE))
    print(f"500 legs: prepare_risk {prep * 1e3:.1f} ms; SPY risk curves (121 prices, {len(spy)} legs) "
          f"{curves * 1e3:.1f} ms; portfolio scenario grid {len(PRICE_SHOCKS_PCT)}x{len(VOL_SHOCKS_PTS)} "
          f"{grid * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
