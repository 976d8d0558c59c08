"""Absurd broker numbers on screen (issue #11, defect 7): Overview and Positions render a book
holding 1e306 shares, NaN quantities and a negative multiplier without crashing, flag those
legs, and never print a 300-digit number. The snapshot comes from the real runtime connected to
the real simulator reporting those positions; the pages read it through the stand-in services."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest

from tests.app.leg_tables import leg_tables

from pages.components import common
from tests.app.conftest import open_page
from tests.app.synthetic import install_stand_in, remove_stand_in
from v6core.config import Settings
from v6core.runtime import Runtime
from v6core.sim import SimGateway

LONG_DIGITS = re.compile(r"\d{16,}")


def _row(con_id, symbol, sec_type, quantity, avg_cost, expiry="", strike="0", right="", multiplier=""):
    return (con_id, symbol, sec_type, expiry, strike, right, multiplier, "SMART", "USD", symbol, "",
            quantity, avg_cost)


@pytest.fixture(scope="module")
def absurd_snapshot():
    gateway = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=5.0)
    gateway.start()
    expiry = f"{gateway.today + timedelta(days=30):%Y%m%d}"
    gateway.faults.inject_positions([
        _row(990001, "ZZLONG", "STK", "1e306", "1e306"),
        _row(990002, "ZZSHORT", "STK", "-1e306", "10"),
        _row(990003, "SPY", "OPT", "nan", "150", expiry, "500", "C", "100"),
        _row(990007, "SPY", "OPT", "1", "250", expiry, "530", "P", "-100"),
    ])
    runtime = Runtime(Settings(mode="ib", ib_host="127.0.0.1", ib_port=gateway.port, client_id=23))
    try:
        runtime.start()
        snap = runtime.wait_for(lambda s: {990001, 990002, 990003, 990007}
                                <= {l.contract.con_id for l in s.legs} and len(s.underlyings) > 0, 30)
        assert snap is not None
        yield snap
    finally:
        runtime.stop()
        gateway.stop()


@pytest.fixture
def absurd_pages(absurd_snapshot, monkeypatch):
    monkeypatch.delenv("V6_PASSWORD", raising=False)
    install_stand_in(absurd_snapshot)
    yield absurd_snapshot
    remove_stand_in()


def _texts(at) -> list[str]:
    texts = []
    for kind in ("markdown", "caption", "metric", "warning", "error", "info", "success", "text"):
        for element in getattr(at, kind, []):
            texts.append(str(getattr(element, "value", "")))
            texts.append(str(getattr(element, "label", "")))
    return texts


@pytest.mark.parametrize("page", ["overview", "positions"])
def test_pages_render_absurd_legs_flagged_without_huge_numbers(absurd_pages, page):
    at = open_page(page, timeout=60)
    assert not at.exception, at.exception
    texts = _texts(at)
    assert not [t for t in texts if LONG_DIGITS.search(t.replace(",", ""))]
    for frame in (d.value for d in at.dataframe):
        numeric = frame.select_dtypes("number")
        assert ((numeric.abs() < common.HUGE) | numeric.isna()).all().all()
    if page == "positions":
        shown = " ".join(row["Flags"][0] for table in leg_tables(at) for row in table)
        assert "implausible quantity" in shown and "non-positive multiplier -100" in shown


def test_formatting_keeps_huge_values_short():
    assert common.fmt_number(1e306) == "+1.0e+306"
    assert common.fmt_money(-1e306, signed=True) == "-$1.0e+306"
    assert common.fmt_pct(math.inf) == common.DASH
    assert common.fmt_money(1234.5) == "$1,234.50"
