"""Two page benchmarks (issue #12, "shared work, measured"), on a SYNTHETIC book.

1. Server-side run of each page (one AppTest run of app.py) at 50 and 500 legs, against the same
   page with no positions (goal: at most 150 ms for every page at 500 legs).
2. Server CPU per second of a real `streamlit run serve.py` with 1, 5 and 10 chromium sessions open
   on Positions at 500 legs, the book replaced 3 times a second (goal: 10 sessions under 2x one).

A runtime stand-in (`tests/app/synthetic.py`) serves the book, so the figures measure the pages
alone, not the gateway or the runtime.

    python bench/bench_pages.py [--repeat 5] [--legs 500] [--window 20] [--skip-sessions]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.app.synthetic import install_stand_in, remove_stand_in, synthetic_snapshot  # noqa: E402
from v6core.models import AccountValues, ConnectionStatus, PortfolioSnapshot  # noqa: E402

# (label, page file, widget changes applied before the timed runs)
CASES = [
    ("overview", "pages/overview.py", {}),
    ("positions, by strategy", "pages/positions.py", {}),
    ("positions, all legs", "pages/positions.py", {"positions_view": "All legs"}),
    ("greeks & risk, portfolio", "pages/greeks_risk.py", {}),
    ("greeks & risk, SPY", "pages/greeks_risk.py", {"risk_scope": "SPY"}),
    ("greeks & risk, by strategy", "pages/greeks_risk.py", {"risk_scope": "By strategy"}),
]


def _server_like_navigation() -> None:
    """AppTest re-enters the old `pages/` mode each run (one extra rerun); a server does not."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    share_script_cache()


def share_script_cache() -> None:
    """A server compiles app.py and each page once (one ScriptCache per runtime); AppTest makes a
    new ScriptCache for every run and so parses and compiles them again each time (20-28 % of a
    page's run at 500 legs): not what a server pays, so the benches share one cache like a server."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    cache = ScriptCache()
    local_script_runner.ScriptCache = app_test.ScriptCache = lambda: cache


def _empty_snapshot() -> PortfolioSnapshot:
    return PortfolioSnapshot(seq=0, built_at=datetime.now(timezone.utc), connection=ConnectionStatus(),
                             account=AccountValues())


def _app_on(page: str, widgets: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page).run()
    for key, value in widgets.items():
        at.button_group(key=key).set_value(value).run()
    if at.exception or any("unexpected error" in e.value for e in at.main.error):
        raise RuntimeError(f"{page} failed: {[e.value for e in at.exception]} {[e.value for e in at.main.error]}")
    return at


SCRIPT_RUNS: list[float] = []


def time_script_runs() -> None:
    """Record how long each script run takes in the script thread: app.py and the page, their
    Streamlit calls and the protobuf deltas they enqueue, what a server pays per run. AppTest's
    own work after the run (parsing every delta back into an element tree, ~1 ms per element)
    is not the server's and is left out."""
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner.ScriptRunner._run_script
    if getattr(original, "_v6_timed", False):
        return

    def timed(self, rerun_data):
        start = time.perf_counter()
        try:
            return original(self, rerun_data)
        finally:
            SCRIPT_RUNS.append(time.perf_counter() - start)

    timed._v6_timed = True
    script_runner.ScriptRunner._run_script = timed


def _one_run(at: AppTest) -> float:
    """The script thread's time for one run (a run that reruns itself counts both parts)."""
    SCRIPT_RUNS.clear()
    at.run()
    return sum(SCRIPT_RUNS)


def time_page(page: str, widgets: dict[str, str], repeat: int, runtime) -> tuple[float, float]:
    """Median server run time (s) on a new snapshot (the page builds its data) and again on the
    same snapshot (what every further session pays: the data comes from the shared cache)."""
    at = _app_on(page, widgets)
    at.run()                                   # warm: imports, JIT (py_vollib)
    cold, warm = [], []
    for _ in range(repeat):
        runtime.current = replace(runtime.current, seq=runtime.current.seq + 1,
                                  built_at=datetime.now(timezone.utc))
        cold.append(_one_run(at))
        warm.append(_one_run(at))
    return statistics.median(cold), statistics.median(warm)


SITECUSTOMIZE = """
import os, sys
sys.path.insert(0, os.environ["V6_BENCH_ROOT"])
from bench.stand_in_server import install
install(int(os.environ["V6_BENCH_LEGS"]))
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_cpu_per_session(legs: int, window: float, refresh: int) -> None:
    """Server CPU seconds per second with 1, 5 and 10 sessions open on Positions."""
    from playwright.sync_api import sync_playwright

    from tests.browser_harness import streamlit_process
    from tests.conftest import CHROMIUM_ARGS

    tmp = Path(tempfile.mkdtemp(prefix="bench_pages_"))
    (tmp / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"PYTHONPATH": str(tmp), "V6_BENCH_ROOT": str(ROOT), "V6_BENCH_LEGS": str(legs),
           "V6_MODE": "sim", "V6_LAKE_PATH": str(tmp / "lake"), "V6_REFRESH_INTERVAL": str(refresh)}
    print(f"\nserver CPU with N sessions on Positions: {legs} synthetic legs, book replaced 3x/s, "
          f"refresh every {refresh} s, {window:.0f} s windows")
    print(f"{'sessions':>8}{'CPU s/s':>10}{'x one':>8}{'RSS MB':>9}")
    try:
        with streamlit_process(env, tmp / "streamlit.log") as (url, process), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                         args=CHROMIUM_ARGS)
            tabs, one = [], None
            for sessions in (1, 5, 10):
                while len(tabs) < sessions:
                    context = browser.new_context(viewport={"width": 1600, "height": 1000})
                    tab = context.new_page()
                    tab.goto(url + "/positions", timeout=180_000)
                    tab.get_by_role("heading", name="Positions").wait_for(timeout=180_000)
                    tab.get_by_role("button", name="Close this leg").wait_for(timeout=180_000)
                    tabs.append(tab)
                time.sleep(5)                                  # settle: every tab on its timer
                start_cpu, start = _cpu_seconds(process.pid), time.monotonic()
                time.sleep(window)
                rate = (_cpu_seconds(process.pid) - start_cpu) / (time.monotonic() - start)
                one = one or rate
                print(f"{sessions:>8}{rate:>10.3f}{rate / one:>8.2f}{_rss_mb(process.pid):>9.0f}")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--legs", type=int, default=500)
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU measured per step")
    parser.add_argument("--refresh", type=int, default=2, help="the sidebar's refresh interval (s)")
    parser.add_argument("--skip-sessions", action="store_true", help="only the AppTest page runs")
    parser.add_argument("--skip-pages", action="store_true", help="only the sessions' CPU")
    args = parser.parse_args()
    if not args.skip_pages:
        page_runs(args.repeat)
    if not args.skip_sessions:
        server_cpu_per_session(args.legs, args.window, args.refresh)


def page_runs(repeat: int) -> None:
    _server_like_navigation()
    time_script_runs()
    from pages.components import shared

    shared.SHARE_WINDOW_SECONDS = 0      # each "new snapshot" run must draw the new snapshot
    print("bench_pages: server-side page runs (the script thread's time per run of app.py + page, "
          "driven by AppTest, whose own parsing is not counted); SYNTHETIC snapshots served by a "
          "runtime stand-in injected into services (no gateway); median of", repeat, "runs")
    print("  new snapshot: the run builds the page's data; same snapshot: a further session's run "
          "(data shared per snapshot)")
    services = install_stand_in(_empty_snapshot())
    try:
        baseline = {}
        for label, page, widgets in CASES:
            if not widgets:
                services.runtime.current = _empty_snapshot()
                baseline[page] = time_page(page, {}, repeat, services.runtime)[0]
        print(f"{'page':<28}{'legs':>6}{'new ms':>10}{'same ms':>10}{'x empty':>10}")
        for page, seconds in baseline.items():
            print(f"{page:<28}{0:>6}{seconds * 1000:>10.1f}{'':>10}{1.0:>10.2f}   (empty: no positions)")
        for legs in (50, 500):
            services.runtime.current = synthetic_snapshot(legs)
            for label, page, widgets in CASES:
                cold, warm = time_page(page, widgets, repeat, services.runtime)
                print(f"{label:<28}{len(services.runtime.current.legs):>6}{cold * 1000:>10.1f}"
                      f"{warm * 1000:>10.1f}{cold / baseline[page]:>10.2f}")
    finally:
        remove_stand_in()


if __name__ == "__main__":
    main()
