"""Issue #17, defects 1 and 2: no LLM answer becomes actionable by carrying an order.

Every hostile answer goes through the real `openai` client to the local chat-completions server,
through SignalService into the Delta `signals` table; the stored rows are read back with polars,
and the real OrderDesk is asked to draft a ticket from the record (it must refuse).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.signals.conftest import RecordingRuntime, make_bars, snapshot_with_position, uptrend
from v6core.lake import AuditLog
from v6core.orders import OrderDesk, OrderDeskError
from v6core.signals import SignalService
from v6core.signals.schema import SignalState, Status
from v6core.signals.store import SignalStore

SPOT = 190.0
TSLA_ORDER = {"symbol": "TSLA", "action": "BUY", "totalQuantity": 1000, "orderType": "MKT",
              "transmit": True}
PLACE_ORDER_ARGS = json.dumps({"symbol": "TSLA", "action": "BUY", "quantity": 1000, "orderType": "MKT"})


def clean_answer(**extra) -> dict:
    body = {"symbol": "SPY", "action": "BUY", "confidence": "HIGH", "confidence_score": 78,
            "reasoning": "Price above a rising SMA stack; weekly trend confirms.",
            "key_factors": ["SMA stack bullish"], "trend": "UP", "support": 182.0,
            "resistance": 196.0, "entry": 190.0, "stop": 184.0, "target": 202.0,
            "timeframes": ["daily", "weekly"]}
    body.update(extra)
    return body


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# (name, server script, texts the stored flags must contain). Route 1: structure in the JSON.
STRUCTURE_CASES = [
    ("issue-17-order-and-execute-now",
     [{"content": json.dumps(clean_answer(order=TSLA_ORDER, execute_now=True))}],
     ["order = ", '"totalQuantity": 1000', "execute_now = true", "TSLA"]),
    ("nested-orders-list",
     [{"content": json.dumps(clean_answer(analysis={"detail": {"orders": [{"qty": 500}]}}))}],
     ["analysis.detail.orders = ", "analysis.detail.orders[0].qty = 500"]),
    ("upper-case-keys",
     [{"content": json.dumps(clean_answer(ORDER={"TOTALQUANTITY": 1000, "ORDERTYPE": "MKT"}))}],
     ["ORDER.TOTALQUANTITY = 1000", "ORDER.ORDERTYPE = MKT"]),
    ("mixed-case-top-level-keys",
     [{"content": json.dumps(clean_answer(Quantity=1000, OrderType="MKT", Transmit=True,
                                          EXECUTE=True))}],
     ["Quantity = 1000", "OrderType = MKT", "Transmit = true", "EXECUTE = true"]),
    ("order-inside-a-list-of-extras",
     [{"content": json.dumps(clean_answer(extras=[{"note": "x"}, {"Order": {"total_quantity": 5}}]))}],
     ["extras[1].Order.total_quantity = 5"]),
    ("order-json-smuggled-in-reasoning",
     [{"content": json.dumps(clean_answer(reasoning=json.dumps({"order": TSLA_ORDER})))}],
     ["reasoning<json>.order = ", "reasoning<json>.order.totalQuantity = 1000"]),
    ("harmless-looking-field-outside-the-schema",
     [{"content": json.dumps(clean_answer(note="looks fine"))}],
     ["fields outside the schema", '"note": "looks fine"']),
]

# Route 2: tool or function calls (the request offers none).
TOOL_CASES = [
    ("tool-call-beside-valid-content",
     [{"content": json.dumps(clean_answer()), "tool_calls": [tool_call("place_order", PLACE_ORDER_ARGS)]}],
     ["place_order(", '"quantity": 1000', '"orderType": "MKT"']),
    ("tool-call-with-empty-content",
     [{"content": "", "tool_calls": [tool_call("place_order", PLACE_ORDER_ARGS)]}],
     ["place_order(", "TSLA"]),
    ("tool-call-with-null-content",
     [{"content": None, "tool_calls": [tool_call("place_order", PLACE_ORDER_ARGS)]}],
     ["place_order("]),
    ("several-tool-calls-beside-valid-content",
     [{"content": json.dumps(clean_answer()),
       "tool_calls": [tool_call("place_order", PLACE_ORDER_ARGS, "c1"),
                      tool_call("transmit", "{}", "c2"), tool_call("cancel_all", "", "c3")]}],
     ["place_order(", "transmit({})", "cancel_all()"]),
    ("tool-call-then-a-clean-retry",
     [{"content": "", "tool_calls": [tool_call("place_order", PLACE_ORDER_ARGS)]},
      {"content": json.dumps(clean_answer())}],
     ["place_order("]),
    ("legacy-function-call-beside-valid-content",
     [{"content": json.dumps(clean_answer()),
       "function_call": {"name": "execute_trade", "arguments": PLACE_ORDER_ARGS}}],
     ["execute_trade(", "TSLA"]),
]

CASES = STRUCTURE_CASES + TOOL_CASES


def build(settings):
    runtime = RecordingRuntime({"SPY": make_bars(uptrend())}, snapshot_with_position("SPY", SPOT))
    service = SignalService(settings, runtime, settings.lake_path)
    desk = OrderDesk(settings, runtime, AuditLog(settings.lake_path))
    return service, desk, runtime


def stored_rows(settings) -> pl.DataFrame:
    """The signals table as any reader sees it: straight from Delta, not through v6's reader."""
    return pl.read_delta(str(SignalStore(settings.lake_path).path))


@pytest.mark.parametrize("name, script, expected", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_answer_is_suspect_never_actionable_and_recorded(chat_server, llm_settings,
                                                                    name, script, expected):
    chat_server.script = script
    service, desk, runtime = build(llm_settings)
    final = service.analyse("SPY")

    run = service.run_records(final.run_id)
    llm = [r for r in run if r.is_llm]
    assert len(llm) == 1
    answer = llm[0]
    # The model's answer is suspect (its fields valid) or rejected (no usable content): never
    # a plain ACCEPTED signal, and what was found is on the record.
    assert answer.state in (SignalState.SUSPECT, SignalState.REJECTED)
    assert answer.suspect and not answer.actionable
    found = " | ".join(answer.suspect_flags)
    for text in expected:
        assert text in found, (text, found)
    # Whatever record ends the run (the answer itself, or the rules fallback) is not actionable.
    assert not final.actionable
    assert final.not_actionable_reason.startswith("not actionable: ")
    if final.status is Status.ACCEPTED and final.is_llm:
        assert final.state is SignalState.SUSPECT
    with pytest.raises(OrderDeskError, match="not actionable"):
        desk.draft_from_signal(final, "sess-hostile")
    with pytest.raises(OrderDeskError, match="not actionable"):
        desk.draft_from_signal(answer, "sess-hostile")

    # Stored: every row of the run says so in the table itself, flags included.
    rows = stored_rows(llm_settings).filter(pl.col("run_id") == final.run_id)
    assert rows.height == len(run)
    assert rows["actionable"].to_list() == [False] * rows.height
    assert all(r.startswith("not actionable: ") for r in rows["not_actionable_reason"].to_list())
    llm_row = rows.filter(pl.col("analyst") == "llm:test-model").row(0, named=True)
    assert llm_row["state"] == answer.state.value
    assert all(text in " | ".join(llm_row["flags"]) for text in expected)
    # The reader's view agrees with the stored row; nothing reached the order side.
    assert service.latest()["SPY"] == final and not service.latest()["SPY"].actionable
    assert runtime.order_calls == []


def test_no_hostile_answer_becomes_actionable_and_a_clean_one_still_does(chat_server, llm_settings,
                                                                           capsys):
    """The figure for the issue's closing note: hostile answers tried, how many became actionable."""
    service, desk, runtime = build(llm_settings)
    tried = actionable = tickets = 0
    for _name, script, _expected in CASES:
        chat_server.script = script
        chat_server.requests.clear()
        final = service.analyse("SPY")
        tried += 1
        run = service.run_records(final.run_id)
        actionable += sum(r.actionable for r in run)
        try:
            desk.draft_from_signal(final, "sess-count")
            tickets += 1
        except OrderDeskError:
            pass
    stored = stored_rows(llm_settings)
    assert (tried, actionable, tickets) == (len(CASES), 0, 0)
    assert stored["actionable"].to_list() == [False] * stored.height

    # The same pipeline still produces an actionable signal from a clean answer (the checks
    # are not simply refusing everything).
    chat_server.script = [{"content": json.dumps(clean_answer())}]
    clean = service.analyse("SPY")
    assert clean.state is SignalState.ACCEPTED and clean.actionable and clean.flags == ()
    assert desk.draft_from_signal(clean, "sess-count").action == "BUY"
    assert runtime.order_calls == []
    with capsys.disabled():
        print(f"\nissue 17: hostile answers tried {tried}, actionable {actionable}, tickets {tickets}")
