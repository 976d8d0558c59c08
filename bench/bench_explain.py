"""P&L explained over a day of one-minute versions: 390 versions of a 500-leg book.

Run: `python bench/bench_explain.py [--legs 500] [--versions 390] [--repeat 3] [--keep DIR]`.
Writes a lake (LakeWriter, one portfolio version a minute from 09:30 New York; options priced by
Black-Scholes at a random-walk spot and drifting IV; a few fills during the day), then prints,
in the same process and on fresh readers:

- read:      opening every version of the day with LakeReader.portfolio (each from scratch), and
             in order with one table handle moving forward (what explain's step reader does);
- explain:   `explain(path=True)`, every consecutive pair explained and summed per leg (reads
             included), in Greeks mode and in full-revaluation mode, and its ratio to the read;
- one span:  `explain` of the first against the last version (two reads).

No pass/fail: figures and ratios measured in the same run (median of --repeat).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v6core.explain import explain  # noqa: E402
from v6core.explain.read import frames_in_order  # noqa: E402
from v6core.greeks import bs_greeks, year_fraction  # noqa: E402
from v6core.lake import AuditLog, FillRow, LakeReader, LakeWriter  # noqa: E402
from v6core.models import (  # noqa: E402
    AccountValues, ConnectionStatus, ConnState, ContractInfo, Greeks, GreekSource, Leg, PortfolioSnapshot,
    PositionGreeks,
)

UTC = timezone.utc
OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)       # 09:30 New York
SPOTS = {"SPY": 600.0, "QQQ": 520.0, "IWM": 230.0, "AAPL": 230.0, "TSLA": 340.0}
RATE = 0.04


def book(n_legs: int) -> list[dict]:
    """Iron condors over five underlyings and four expiries (4 legs each)."""
    legs, symbols = [], list(SPOTS)
    for n in range(n_legs // 4):
        symbol = symbols[n % len(symbols)]
        spot, expiry = SPOTS[symbol], date(2026, 12, 18) + timedelta(days=7 * (n % 4))
        base = round(spot * (0.92 + 0.001 * (n % 20)))
        sid = f"iron condor:{symbol}:{n}"
        for k, (dk, right, qty) in enumerate(((-10, "P", 1), (0, "P", -1), (40, "C", -1), (50, "C", 1))):
            legs.append({"con_id": 10_000 + 4 * n + k, "symbol": symbol, "strike": float(base + dk),
                         "right": right, "qty": float(qty), "expiry": expiry, "sid": sid})
    return legs


def snapshot(i: int, legs: list[dict], when: datetime, spots: dict[str, float], iv_shift: float) -> PortfolioSnapshot:
    spot = np.array([spots[leg["symbol"]] for leg in legs])
    strike = np.array([leg["strike"] for leg in legs])
    t = np.array([year_fraction(leg["expiry"], when) for leg in legs])
    iv = 0.2 + iv_shift + 0.0002 * (strike / spot - 1) * 100
    g = bs_greeks(spot, strike, t, RATE, iv, np.array([leg["right"] == "C" for leg in legs]))
    out = []
    for j, leg in enumerate(legs):
        size = leg["qty"] * 100
        c = ContractInfo(con_id=leg["con_id"], symbol=leg["symbol"], sec_type="OPT", expiry=leg["expiry"],
                         strike=leg["strike"], right=leg["right"], multiplier=100.0, local_symbol=str(leg["con_id"]))
        greeks = Greeks(g["delta"][j], g["gamma"][j], g["theta"][j], g["vega"][j], iv=iv[j], und_price=spot[j],
                        source=GreekSource.IB)
        price = float(g["price"][j])
        out.append(Leg("DU1", c, leg["qty"], price, price, price * size, 0.0, 0.0, 0.0, 28, greeks,
                       PositionGreeks(g["delta"][j] * size, g["gamma"][j] * size, g["theta"][j] * size,
                                      g["vega"][j] * size, 0.0, 0.0), when, leg["sid"]))
    return PortfolioSnapshot(seq=i, built_at=when, connection=ConnectionStatus(state=ConnState.CONNECTED),
                             account=AccountValues(account="DU1", net_liquidation=1e6, updated_at=when),
                             legs=tuple(out), positions_version=i)


def write_day(root: Path, n_legs: int, versions: int) -> None:
    rng = random.Random(15)
    legs, spots, iv_shift = book(n_legs), dict(SPOTS), 0.0
    writer = LakeWriter(root, batch_size=50)
    fills = []
    try:
        for i in range(versions):
            when = OPEN + timedelta(minutes=i)
            for symbol in spots:
                spots[symbol] *= float(np.exp(rng.gauss(0.0, 0.0008)))
            iv_shift += rng.gauss(0.0, 0.0005)
            if i and i % 60 == 0:                  # an hourly adjustment: one more short put, filled
                leg = legs[(i // 60) * 4 + 1]
                leg["qty"] -= 1
                fills.append(FillRow(when - timedelta(seconds=20), f"bench-{i}", "t", i, i, leg["con_id"],
                                     leg["symbol"], str(leg["con_id"]), "SLD", 1.0, 2.0, 0.65))
            writer.write_snapshot(snapshot(i, legs, when, spots, iv_shift))
            if i % 50 == 0:
                print(f"  wrote {i}/{versions}", file=sys.stderr)
    finally:
        writer.stop()
    AuditLog(root).append_fills(fills)


def median_time(repeat: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", type=int, default=500)
    parser.add_argument("--versions", type=int, default=390)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the lake here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="v6-bench-explain-")) / "lake"
    try:
        if not (root / "portfolio").exists():
            start = time.perf_counter()
            write_day(root, args.legs, args.versions)
            print(f"wrote {args.versions} versions x {args.legs} legs in {time.perf_counter() - start:.1f} s")
        explain(LakeReader(root), 0, 1, mode="revaluation")          # JIT of py_vollib_vectorized, once
        first, last = 0, LakeReader(root).latest_version()

        def read_all():
            reader = LakeReader(root, cache_versions=0)
            return sum(reader.portfolio(v).height for v in range(first, last + 1))

        read, rows = median_time(args.repeat, read_all)
        in_order, _ = median_time(args.repeat, lambda: sum(
            f.height for _, f in frames_in_order(LakeReader(root), range(first, last + 1))))
        path, result = median_time(args.repeat, lambda: explain(LakeReader(root, cache_versions=0), first, last,
                                                                 path=True))
        full, full_result = median_time(args.repeat, lambda: explain(LakeReader(root, cache_versions=0), first,
                                                                      last, path=True, mode="revaluation"))
        span, span_result = median_time(args.repeat, lambda: explain(LakeReader(root), first, last))
        n = last - first + 1
        print(f"\n{n} versions, {rows:,} leg rows, median of {args.repeat}")
        print(f"  read every version (LakeReader)       {read:8.2f} s   ({read / n * 1000:6.1f} ms/version)")
        print(f"  read every version in order           {in_order:8.2f} s   ({in_order / n * 1000:6.1f} ms/version)")
        for name, seconds in (("explain step by step (Greeks)", path), ("explain step by step (revaluation)", full)):
            print(f"  {name:<37} {seconds:8.2f} s   ({seconds / (n - 1) * 1000:6.1f} ms/step)   "
                  f"ratio to LakeReader read {seconds / read:5.2f}   to in-order read {seconds / in_order:5.2f}")
        print(f"  explain first -> last (one span)      {span:8.3f} s")
        for name, r in (("step by step", result), ("revaluation", full_result), ("one span", span_result)):
            print(f"  {name:<13} actual {r.actual:+13,.2f}  delta {r.component('delta'):+12,.2f}  "
                  f"gamma {r.component('gamma'):+10,.2f}  theta {r.component('theta'):+10,.2f}  "
                  f"vega {r.component('vega'):+10,.2f}  approx {r.component('approximation'):+9,.2f}  "
                  f"trades {r.component('trades'):+9,.2f}  residual {r.residual:+9,.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
