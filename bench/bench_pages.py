"""Server-side run time of each dashboard page (one AppTest run of app.py) at 50 and 500 legs.

The pages read a SYNTHETIC snapshot here: a runtime stand-in is injected into the services
(`tests/app/synthetic.py`), so the figures measure the pages alone, not the gateway or the
runtime. Baseline: the same page with no positions (connecting), measured in the same run.

    python bench/bench_pages.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
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
]


def _server_like_navigation() -> None:
    """AppTest re-enters the old `pages/` mode each run (one extra rerun); a server does not."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init


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


def time_page(page: str, widgets: dict[str, str], repeat: int) -> float:
    at = _app_on(page, widgets)
    at.run()                                   # warm: imports, JIT (py_vollib), caches
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        at.run()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _server_like_navigation()
    print("bench_pages: server-side page runs via AppTest; SYNTHETIC snapshots served by a runtime "
          "stand-in injected into services (no gateway); median of", args.repeat, "runs")
    services = install_stand_in(_empty_snapshot())
    try:
        baseline = {}
        for label, page, widgets in CASES:
            if not widgets:
                services.runtime.current = _empty_snapshot()
                baseline[page] = time_page(page, {}, args.repeat)
        print(f"{'page':<28}{'legs':>6}{'run ms':>10}{'x baseline':>12}")
        for page, seconds in baseline.items():
            print(f"{page:<28}{0:>6}{seconds * 1000:>10.1f}{1.0:>12.2f}   (baseline: no positions)")
        for legs in (50, 500):
            services.runtime.current = synthetic_snapshot(legs)
            for label, page, widgets in CASES:
                seconds = time_page(page, widgets, args.repeat)
                print(f"{label:<28}{len(services.runtime.current.legs):>6}{seconds * 1000:>10.1f}"
                      f"{seconds / baseline[page]:>12.2f}")
    finally:
        remove_stand_in()


if __name__ == "__main__":
    main()
