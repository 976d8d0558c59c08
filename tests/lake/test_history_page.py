"""AppTest of the History page over a small real lake (services stand-in: only the lake reader)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest

from tests.app.leg_tables import column, leg_tables
from streamlit.testing.v1 import AppTest

from tests.lake.factory import STEP, T0, snapshot_at
from v6core.config import Settings, load_settings
from v6core.lake import LakeReader

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "history.py")


@dataclass
class LakeOnlyServices:
    settings: Settings
    lake: LakeReader
    lake_error: str = ""


@pytest.fixture
def history_page(small_lake, monkeypatch):
    """`pages.components.common.get_services()` returns services whose `.lake` reads the small lake."""
    from pages.components import common

    root, snapshots = small_lake
    services = LakeOnlyServices(settings=load_settings(lake_path=root), lake=LakeReader(root),
                                lake_error="lake x is locked by pid 1; opening read-only")
    fake = types.ModuleType("v6core.services")
    fake.start_services = lambda _settings: services
    monkeypatch.setitem(sys.modules, "v6core.services", fake)
    common.get_services.clear()
    common.set_operator_zone("UTC")          # app.py sets it from V6_TIME_ZONE; the page runs alone here
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    yield at, snapshots
    common.get_services.clear()
    common.set_operator_zone("")


def _frame(at: AppTest, *columns: str, nth: int = 0):
    """The nth dataframe shown that has all these columns (dataframes carry no key in AppTest)."""
    frames = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    return frames[nth]


def _texts(at: AppTest) -> str:
    return "\n".join([e.value for e in at.caption] + [e.value for e in at.markdown] + [e.label for e in at.expander]
                     + [str(e.value) for e in at.info] + [str(e.value) for e in at.warning])


def test_history_page_browses_versions_times_and_diffs(history_page):
    at, snapshots = history_page
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "History"
    text = _texts(at)
    assert "locked by pid 1" in text
    assert "Portfolio as of version 7" in [h.value for h in at.subheader]
    versions = _frame(at, "snapshot_id", "seq")
    assert versions["version"].tolist() == list(range(7, -1, -1))
    assert versions["snapshot_id"].tolist()[0] == "7@20261120T143700.000000Z"

    # By number: version 3 shows snapshot 3 grouped by strategy (the TSLA spread is closed there).
    at.number_input(key="history_version").set_value(3).run()
    assert "Portfolio as of version 3" in [h.value for h in at.subheader]
    spy = leg_tables(at)[0]                 # the first strategy group: SPY shares
    assert column(spy, "Qty") == ["+110"]
    assert column(spy, "Delta") == [f"{snapshots[3].legs[0].position_greeks.delta:+,.1f}"]
    assert column(spy, "DTE") == ["—"]      # shares have no expiry: a dash, never "None"
    assert "credit vertical" not in "\n".join(e.label for e in at.expander)
    assert at.slider(key="history_version_slider").value == 3

    # By date-time: halfway between snapshots 2 and 3 is version 2; before the first is nothing.
    at.radio(key="history_mode").set_value("Date-time (UTC)").run()
    at.date_input(key="history_date").set_value(T0.date())
    at.time_input(key="history_time").set_value((T0 + 2 * STEP + STEP / 2).time()).run()
    assert "Portfolio as of version 2" in [h.value for h in at.subheader]
    assert "maps to version 2" in _texts(at)
    at.time_input(key="history_time").set_value(time(14, 0)).run()
    assert "before the first snapshot" in _texts(at)

    # Diff 2 -> 3: SPY resized, the two TSLA legs closed.
    at.radio(key="history_mode").set_value("Version").run()
    assert at.number_input(key="history_version").value == 2     # the version the date-time showed
    at.number_input(key="history_diff_v1_2").set_value(2)
    at.number_input(key="history_diff_v2_2").set_value(3).run()
    legs = _frame(at, "quantity_change")
    assert sorted(zip(legs["con_id"], legs["change"])) == [(2001, "closed"), (2002, "closed"), (756733, "resized")]
    strategies = _frame(at, "strategy_id", "status")
    gone = strategies[strategies["status"] == "gone"]
    assert gone["strategy_id"].tolist() == ["credit vertical:TSLA"]
    assert gone["delta_change"].tolist() == [pytest.approx(-10.0)]

    # The long-range chart: one point per snapshot, the selected version marked.
    chart = [c for c in at.get("plotly_chart") if c.key == "history_chart"]   # (the other: P&L explained)
    assert len(chart) == 1
    assert not at.exception


def test_history_page_maintenance_shows_retention_and_runs(history_page):
    at, _ = history_page
    retention = _frame(at, "deleted_file_retention_hours")
    assert set(retention["table"]) == {"portfolio", "greeks_history", "account_history"}
    assert "each table's own retention" in _texts(at)
    at.checkbox(key="history_vacuum_custom").check().run()
    at.number_input(key="history_vacuum_hours").set_value(0.0).run()
    assert "keep files removed in the last 0 h" in _texts(at)
    at.button(key="history_vacuum").click().run()
    assert not at.exception
    result = _frame(at, "log bytes before")
    assert "would delete 7 files" in result[result["table"] == "portfolio"]["detail"].iloc[0]
    at.button(key="history_checkpoint").click().run()
    assert _frame(at, "log bytes before")["detail"].str.startswith("checkpoint").sum() == 3
    # A dry run deleted nothing: the oldest version still opens.
    at.number_input(key="history_version").set_value(0).run()
    assert "Portfolio as of version 0" in [h.value for h in at.subheader]
    assert not at.exception and not at.error


def test_history_controls_keep_showing_the_body_version_after_a_new_snapshot(history_page, small_lake):
    """Issue #12 defect 7: a new snapshot used to make the slider and number jump to 0 while the
    body showed another version; Diff ignored the selected version."""
    at, _ = history_page
    root, _ = small_lake
    at.number_input(key="history_version").set_value(5).run()
    assert "Portfolio as of version 5" in [h.value for h in at.subheader]
    from v6core.lake import LakeWriter

    writer = LakeWriter(root)                       # two more snapshots arrive while the page is open
    try:
        for i in (8, 9):
            writer.write_snapshot(snapshot_at(i))
    finally:
        writer.stop()
    at.run()
    assert "Portfolio as of version 5" in [h.value for h in at.subheader]
    assert at.slider(key="history_version_slider").value == 5
    assert at.number_input(key="history_version").value == 5
    assert at.slider(key="history_version_slider").max == 7          # bounds as first drawn
    # Diff follows the selection: version 4 -> 5
    assert any("Version 4 (" in c.value and "→ version 5 (" in c.value for c in at.caption)
    at.slider(key="history_version_slider").set_value(2).run()
    assert at.number_input(key="history_version").value == 2
    assert any("Version 1 (" in c.value and "→ version 2 (" in c.value for c in at.caption)
    # the newer versions are one click away, and then everything shows the newest
    at.button(key="history_newest").click().run()
    assert at.number_input(key="history_version").value == 9
    assert at.slider(key="history_version_slider").value == 9
    assert "Portfolio as of version 9" in [h.value for h in at.subheader]
    assert not at.exception and not at.error


def test_history_cleared_date_asks_for_a_date_instead_of_failing(history_page):
    """Issue #11 defect 9: clearing the date input gave "unexpected error (TypeError)"."""
    at, _ = history_page
    at.radio(key="history_mode").set_value("Date-time (UTC)").run()
    at.date_input(key="history_date").set_value(None).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Pick a date." in [i.value for i in at.info]
    at.radio(key="history_diff_mode").set_value("Date-times (UTC)").run()
    at.date_input(key="history_diff_d1_7").set_value(None).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Pick both moments, each after the first snapshot." in [w.value for w in at.warning]
