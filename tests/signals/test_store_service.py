"""The Delta `signals` table and SignalService with the rule analyst (no LLM configured)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.signals.conftest import (RecordingRuntime, downtrend, flat, make_bars,
                                    snapshot_with_position, uptrend)
from v6core.signals import SignalService
from v6core.signals.schema import Action, Confidence, SignalRecord, Status
from v6core.signals.service import plan_rows
from v6core.signals.store import SIGNALS_SCHEMA, SignalStore

T0 = datetime(2026, 11, 21, 14, 30, tzinfo=timezone.utc)


def accepted(symbol="SPY", minutes=0, **kw) -> SignalRecord:
    base = dict(record_id=f"{symbol}-{minutes}", run_id=f"run-{symbol}-{minutes}", symbol=symbol,
                status=Status.ACCEPTED, analyst="rules", prompt_hash="ab" * 32,
                created_at=T0 + timedelta(minutes=minutes), action=Action.BUY,
                confidence=Confidence.MEDIUM, confidence_score=55.0, reasoning="Uptrend (rules).",
                key_factors=("SMA stack bullish", "RSI 55"), trend="UP", support=95.0,
                resistance=110.0, entry=100.0, stop=95.0, target=110.0, risk_reward=2.0,
                timeframes=("daily", "weekly"), reference_price=100.0)
    base.update(kw)
    return SignalRecord(**base)


def test_records_round_trip_through_delta(tmp_path):
    store = SignalStore(tmp_path)
    rejected = SignalRecord.rejected(symbol="SPY", reason="BUY needs stop < entry < target",
                                     record_id="x", run_id="run-SPY-1", analyst="llm:m",
                                     prompt_hash="cd" * 32, created_at=T0 + timedelta(minutes=1),
                                     raw_answer="{\"action\": \"BUY\"}", flags=("order-instruction",),
                                     attempts=3, final=False)
    first = accepted()
    assert store.append([first]) == 0
    assert store.append([rejected, accepted(minutes=2, flags=("fallback: x",))]) == 1

    again = SignalStore(tmp_path)                       # a fresh reader sees the same history
    history = again.history("spy")
    assert [r.record_id for r in history] == ["SPY-2", "x", "SPY-0"]
    assert history[1] == rejected and history[2] == first
    assert history[0].created_at.tzinfo == timezone.utc


def test_table_schema_is_explicit_and_append_only(tmp_path):
    store = SignalStore(tmp_path)
    for i in range(3):
        store.append([accepted(minutes=i)])
    table = DeltaTable(str(store.path))
    assert table.version() == 2
    assert [h["operation"] for h in table.history()] == ["WRITE"] * 3
    arrow_schema = pa.schema(table.schema().to_arrow())
    assert arrow_schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert arrow_schema.names == SIGNALS_SCHEMA.names
    assert table.metadata().configuration["delta.logRetentionDuration"] == "interval 90 days"
    frame = pl.read_delta(str(store.path))
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["key_factors"] == pl.List(pl.String)


def test_latest_is_the_newest_final_record_per_symbol(tmp_path):
    store = SignalStore(tmp_path)
    store.append([accepted("SPY", 0), accepted("QQQ", 1, action=Action.SELL, entry=100.0,
                                                 stop=105.0, target=90.0)])
    store.append([SignalRecord.rejected(symbol="SPY", reason="timeout", record_id="r", run_id="r",
                                        analyst="llm:m", prompt_hash="", created_at=T0 + timedelta(minutes=5),
                                        final=False),
                  accepted("SPY", 6, record_id="fallback")])
    latest = store.latest()
    assert sorted(latest) == ["QQQ", "SPY"]
    assert latest["SPY"].record_id == "fallback" and latest["QQQ"].action is Action.SELL


def test_concurrent_appends_lose_nothing(tmp_path):
    store = SignalStore(tmp_path)
    threads = [threading.Thread(target=store.append, args=([accepted(minutes=i)],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read().height == 6


def test_empty_store_reads_as_an_empty_typed_frame(tmp_path):
    store = SignalStore(tmp_path)
    assert store.latest() == {} and store.history("SPY") == []
    assert store.read().schema["created_at"] == pl.Datetime("us", "UTC")


def make_service(settings, snapshot=None, weekly=None):
    runtime = RecordingRuntime({"SPY": make_bars(uptrend()), "QQQ": make_bars(downtrend()),
                                "IWM": make_bars(flat()), "TINY": make_bars(uptrend(30))},
                               snapshot=snapshot, weekly=weekly)
    return SignalService(settings, runtime, settings.lake_path), runtime


def test_rules_service_analyses_stores_and_reports(rules_settings):
    service, runtime = make_service(rules_settings, snapshot_with_position("SPY", 190.0))
    assert service.analyst_name == "rules" and service.llm is None
    spy = service.analyse("spy")
    assert spy.symbol == "SPY" and spy.analyst == "rules" and spy.action is Action.BUY
    assert spy.reference_price == 190.0 and spy.entry == 190.0
    assert ("historical_bars", "SPY", "1 day", "2 Y") in runtime.calls
    inp = service.last_input("SPY")
    assert inp.price_source == "live quote" and inp.exposure["legs"][0]["quantity"] == 2
    assert inp.weekly_source == "resampled from daily (gateway weekly failed)"
    assert len(spy.prompt_hash) == 64
    assert runtime.order_calls == []

    progress = []
    records = service.analyse_all(["QQQ", "IWM", "TINY", "NOPE"],
                                  lambda done, total, sym, rec: progress.append((done, total, sym, rec is None)))
    assert [r.symbol for r in records] == ["QQQ", "IWM", "TINY", "NOPE"]
    assert progress[0] == (0, 4, "QQQ", True) and progress[-1] == (4, 4, "NOPE", False)
    qqq, iwm, tiny, nope = records
    assert qqq.action is Action.SELL and iwm.action is Action.HOLD and not iwm.actionable
    assert tiny.status is Status.REJECTED and "not enough daily bars" in tiny.reject_reason
    assert nope.status is Status.REJECTED and "could not get bars" in nope.reject_reason
    assert qqq.entry == round(qqq.reference_price, 2)    # no live quote: the last close, in cents

    latest = service.latest()
    assert sorted(latest) == ["IWM", "NOPE", "QQQ", "SPY", "TINY"]
    assert latest["NOPE"].status is Status.REJECTED
    assert service.history_table("SPY").height == 1
    figures = service.charts("SPY")
    assert set(figures) == {"daily", "weekly"}
    assert figures["daily"].data[0].type == "candlestick"
    assert {t.name for t in figures["daily"].data} >= {"SMA 20", "SMA 50", "SMA 200", "BB upper",
                                                       "RSI 14", "MACD", "Signal", "Volume"}
    assert service.charts("NOPE") == {}
    with pytest.raises(LookupError):
        service.charts("NOPE", fetch=True)
    assert set(service.charts("QQQ")) == {"daily", "weekly"}


def test_charts_load_bars_on_request_without_analysing(rules_settings):
    service, runtime = make_service(rules_settings)
    assert service.charts("IWM") == {}
    figures = service.charts("iwm", fetch=True)
    assert figures["weekly"].layout.title.text == "IWM weekly"
    assert service.charts("IWM")["daily"].data[0].type == "candlestick"    # kept for later runs
    assert service.latest() == {} and service.last_input("IWM") is None


def test_weekly_bars_from_the_gateway_are_used_when_given(rules_settings):
    weekly = make_bars(uptrend(120), start=datetime(2021, 1, 4, tzinfo=timezone.utc))
    service, runtime = make_service(rules_settings, weekly={"SPY": weekly})
    service.analyse("SPY")
    assert ("historical_bars", "SPY", "1 week", "5 Y") in runtime.calls
    assert service.last_input("SPY").weekly_source == "gateway"
    assert service.last_input("SPY").weekly["bars"] == 120


def test_plan_rows_compare_levels_with_the_live_price():
    rows = plan_rows(accepted(), 200.0)
    assert rows[0] == {"Level": "Entry", "Price": 100.0, "vs live %": -50.0}
    assert [r["Level"] for r in rows] == ["Entry", "Stop", "Target", "Support", "Resistance"]
    assert plan_rows(accepted(), None)[0]["vs live %"] is None


def test_a_table_written_before_the_state_columns_takes_them_and_old_rows_are_judged(tmp_path):
    """Rows stored by an earlier v6 (no state/actionable columns, the old tool-call flag) read
    back as suspect and not actionable; new appends add the columns by schema merge."""
    from deltalake import write_deltalake

    from v6core.signals.store import record_to_row

    store = SignalStore(tmp_path)
    old_columns = [f for f in SIGNALS_SCHEMA if f.name not in ("state", "actionable",
                                                               "not_actionable_reason")]
    old_schema = pa.schema(old_columns)
    old = accepted(analyst="llm:m", flags=(
        "LLM answered with a tool/function call (ignored: no tools exist)",))
    row = {k: v for k, v in record_to_row(old).items() if k in old_schema.names}
    write_deltalake(str(store.path), pa.Table.from_pylist([row], schema=old_schema))

    store.append([accepted(minutes=1)])
    frame = store.read("SPY")
    assert frame["record_id"].to_list() == ["SPY-1", "SPY-0"]
    assert frame["state"].to_list() == ["ACCEPTED", "SUSPECT"]
    assert frame["actionable"].to_list() == [True, False]
    assert frame["not_actionable_reason"][1].startswith("not actionable: suspect, LLM answered")
    stored = pl.read_delta(str(store.path)).sort("created_at")
    assert stored["state"].to_list() == [None, "ACCEPTED"]      # the old row was never rewritten
    assert not store.history("SPY")[1].actionable
