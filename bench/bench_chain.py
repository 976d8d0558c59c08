"""Server-side run time of the Trade page for a 60-strike expiry (120 option lines), streamed from
the embedded simulator through the runtime and the chain feed: one AppTest run of app.py, the
chain alone and with an iron condor ticket (its risk graphs and figures) drawn. Prints figures;
not a timed test. Goal: <= 150 ms per run. "Server run" is the script thread's time per run (as
bench_pages): AppTest's own parsing of the deltas afterwards is printed beside it, not counted.

    python bench/bench_chain.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.update(V6_MODE="sim", V6_LAKE_PATH=tempfile.mkdtemp(prefix="bench-chain-"),
                      V6_CHAIN_MAX_LINES="400")
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *a, **k):          # a server leaves the old pages/ mode after its first run
        original(self, *a, **k)
        PagesManager.uses_pages_directory = False
    PagesManager.__init__ = init

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/trade.py").run()
    deadline = time.monotonic() + 120
    while not any("chain lines" in c.value for c in at.caption):
        if time.monotonic() > deadline:
            raise SystemExit(f"the chain never showed: {[e.value for e in at.exception]}")
        time.sleep(1)
        at.run()
    at.number_input(key="trade_strikes").set_value(60).run()
    time.sleep(3)
    at.run()
    caption = next(c.value for c in at.caption if "chain lines" in c.value)

    from bench.bench_pages import SCRIPT_RUNS as script_runs, share_script_cache, time_script_runs

    time_script_runs()                             # the script thread's time: what the server pays per run
    share_script_cache()                           # compiled once, as on a server

    def timed(label: str) -> None:
        at.run()                                   # warm
        runs, walls = [], []
        for _ in range(args.repeat):
            script_runs.clear()
            start = time.perf_counter()
            at.run()
            walls.append(time.perf_counter() - start)
            runs.append(sum(script_runs))
        if at.exception:
            raise SystemExit(f"{label} failed: {[e.value for e in at.exception]}")
        print("  runs (ms):", " ".join(f"{r * 1000:.0f}" for r in runs), "parts:", len(script_runs))
        print(f"{label:<48} server run median {statistics.median(runs) * 1000:7.1f} ms   "
              f"min {min(runs) * 1000:7.1f} ms   (with AppTest's parsing: median "
              f"{statistics.median(walls) * 1000:6.1f} ms; {args.repeat} runs)")

    print(caption)
    timed("trade page, 60-strike chain")
    at.button(key="FormSubmitter:trade_template-Build from template").click().run()
    if not any(m.label == "Max profit" for m in at.metric):
        raise SystemExit(f"no ticket drawn: {[e.value for e in at.error]}")
    timed("trade page, 60-strike chain + iron condor risk")


if __name__ == "__main__":
    main()
