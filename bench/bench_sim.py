"""Benchmark (not a test): ticks/s the simulator delivers to one ib_async client subscribed to
200 contracts, and the CPU that costs.

The sim runs as its own process (`python -m v6core.sim --port 0`) so its CPU is measured alone
(/proc/<pid>/stat utime+stime over the wall time); the client's CPU is this process's.
Baseline in the same run: the same sim process idle (connected client, no subscriptions).

    python bench/bench_sim.py [--seconds 10] [--contracts 200] [--tick-rate 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ib_async import IB, Option, Stock

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def measure(port: int, pid: int, n_contracts: int, seconds: float) -> dict:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=10)
    try:
        # idle baseline: connected, account updates on, no market data
        cpu0, wall0 = proc_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds / 2)
        idle = (proc_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)

        contracts = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM", "AAPL", "TSLA")]
        await ib.qualifyContractsAsync(*contracts)
        for symbol, stock in zip(("SPY", "QQQ", "IWM", "AAPL", "TSLA"), contracts):
            (chain,) = await ib.reqSecDefOptParamsAsync(symbol, "", "STK", stock.conId)
            expiries = chain.expirations[2:6]
            ticker = (await ib.reqTickersAsync(stock))[0]
            spot = ticker.marketPrice()
            strikes = sorted(chain.strikes, key=lambda k: abs(k - spot))[:10]
            for expiry in expiries:
                for strike in strikes:
                    contracts.append(Option(symbol, expiry, strike, "C", "SMART"))
        contracts = contracts[:n_contracts]
        await ib.qualifyContractsAsync(*contracts)
        counts = {"ticks": 0, "greeks": 0}

        def on_pending(tickers):
            counts["ticks"] += sum(len(t.ticks) for t in tickers)

        original = ib.wrapper.tickOptionComputation

        def counting(*args, **kwargs):
            counts["greeks"] += 1
            return original(*args, **kwargs)

        ib.wrapper.tickOptionComputation = counting
        ib.pendingTickersEvent += on_pending
        for c in contracts:
            ib.reqMktData(c)
        await asyncio.sleep(1.0)                     # let the first full quotes pass
        counts.update(ticks=0, greeks=0)
        cpu_sim0, cpu_me0, wall0 = proc_cpu_seconds(pid), time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - wall0
        return {
            "contracts": len(contracts),
            "ticks_per_s": counts["ticks"] / wall,
            "greeks_per_s": counts["greeks"] / wall,
            "sim_cpu": (proc_cpu_seconds(pid) - cpu_sim0) / wall,
            "client_cpu": (time.process_time() - cpu_me0) / wall,
            "idle_cpu": idle,
        }
    finally:
        ib.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--contracts", type=int, default=200)
    parser.add_argument("--tick-rate", type=float, default=3.0)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6core.sim", "--port", "0", "--tick-rate", str(args.tick_rate)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(re.search(r":(\d+) ", proc.stdout.readline()).group(1))
        r = asyncio.run(measure(port, proc.pid, args.contracts, args.seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    per_contract = (r["ticks_per_s"] + r["greeks_per_s"]) / r["contracts"]
    print(f"contracts subscribed          {r['contracts']}")
    print(f"tick rate (per contract)      {args.tick_rate:g}/s")
    print(f"ticks delivered               {r['ticks_per_s']:.0f}/s (+ {r['greeks_per_s']:.0f}/s model-Greek updates)")
    print(f"messages per contract         {per_contract:.1f}/s")
    print(f"sim CPU (process / wall)      {r['sim_cpu'] * 100:.1f}%  (idle baseline {r['idle_cpu'] * 100:.1f}%,"
          f" ratio {r['sim_cpu'] / max(r['idle_cpu'], 1e-3):.1f}x)")
    print(f"client CPU (ib_async)         {r['client_cpu'] * 100:.1f}%")


if __name__ == "__main__":
    main()
