"""The Orders page after a restart says what happened (issue #17, defect 5): every ticket with
its state (filled ones and earlier runs' drafts included), what changed at the gateway while v6
was down, a refusal at the top of the review dialog, and the quote at preview named by contract
with its real age. AppTest over the real services against a real simulator and Delta lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from pages.components import common
from tests.orders.conftest import signal_record, start_stack, wait_until
from v6core.orders import TicketState
from v6core.sim import SimGateway

APP = str(Path(common.__file__).resolve().parents[2] / "app.py")
SESSION = "apptest-restart-1"


@pytest.fixture(autouse=True)
def navigation_like_a_running_server(monkeypatch):
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """A first run places a resting order and leaves a draft; the order fills while v6 is down;
    the app's services then start on the same lake."""
    gw = SimGateway(seed=11, host="127.0.0.1", port=0, tick_rate=4.0, time_speed=1.0)
    gw.start()
    lake = tmp_path_factory.mktemp("lake")
    first = start_stack(gw, lake)
    try:
        spot = gw.spot("AAPL")
        resting = first.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "first-run")
        first.desk.edit(resting.ticket_id, "first-run", limit_price=round(spot * 0.8, 2), quantity=2)
        first.desk.preview(resting.ticket_id, "first-run")
        first.desk.confirm(resting.ticket_id, "first-run")
        wait_until(lambda: first.desk.ticket(resting.ticket_id).state == TicketState.WORKING)
        draft = first.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "first-run")
        resting = first.desk.ticket(resting.ticket_id)
    finally:
        first.close()
    gw.set_spot("AAPL", round(resting.limit_price * 0.95, 2))
    wait_until(lambda: [o.status for o in gw.orders() if o.order_ref == resting.ticket_id] == ["Filled"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("V6_MODE", "ib")
        mp.setenv("V6_IB_HOST", "127.0.0.1")
        mp.setenv("V6_IB_PORT", str(gw.port))
        mp.setenv("V6_LAKE_PATH", str(lake))
        mp.delenv("V6_PASSWORD", raising=False)
        common.get_services.clear()
        services = common.get_services()
        try:
            wait_until(lambda: services.orders.recovered, timeout=60)
            wait_until(lambda: services.orders.ticket(resting.ticket_id).state == TicketState.FILLED, timeout=30)
            yield services, gw, resting, draft
        finally:
            services.stop()
            common.get_services.clear()
            gw.stop()


def orders_page(ticket_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[common.SESSION_KEY] = SESSION
    if ticket_id:
        at.session_state["ticket_id"] = ticket_id
    at.run()
    at.switch_page("pages/orders.py")
    at.run()
    assert not at.exception, at.exception
    return at


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def dialog_elements(at: AppTest) -> list:
    """The review dialog's elements, in the order the operator sees them."""
    dialog = next(n for n in walk(at._tree) if getattr(n, "type", None) == "dialog")
    return [n for n in walk(dialog) if getattr(n, "type", None) in ("alert", "dataframe", "error", "success",
                                                                      "warning", "info", "metric")]


def test_every_ticket_is_listed_with_its_state_and_what_changed_while_down(restarted):
    services, gw, resting, draft = restarted
    at = orders_page()
    warnings = "\n".join(str(w.value) for w in at.warning)
    assert "While v6 was down" in warnings
    [line] = [ln for ln in warnings.splitlines() if resting.ticket_id in ln]
    assert line.split(": ")[-1].startswith(("sent → **filled**", "working → **filled**")), line
    [fill] = [f for f in gw.fills() if f["order_ref"] == resting.ticket_id] or [None]
    table = next(df.value for df in at.dataframe if "State" in df.value.columns and "Ticket" in df.value.columns
                 and len(df.value) >= 2)
    states = dict(zip(table["Ticket"], table["State"]))
    assert states[resting.ticket_id] == "filled"
    assert states[draft.ticket_id] == "drafted"
    drafted = dict(zip(table["Ticket"], table["Drafted"]))
    assert drafted[draft.ticket_id].endswith("(earlier run)")
    assert table.loc[table["Ticket"] == resting.ticket_id, "IB order id"].item() == str(resting.order_id)
    assert fill is not None and f"{fill['price']:.2f}" in table.loc[table["Ticket"] == resting.ticket_id,
                                                                     "Filled"].item()


def test_a_refusal_is_the_first_thing_in_the_dialog_and_the_quote_is_named_and_aged(restarted):
    services, gw, _, _ = restarted
    desk = services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION)
    desk.edit(ticket.ticket_id, SESSION, limit_price=round(spot * 0.8, 2))
    at = orders_page(ticket.ticket_id)
    next(b for b in at.button if b.key == f"review_{ticket.ticket_id}").click()
    at.run()
    assert desk.ticket(ticket.ticket_id).state == TicketState.PREVIEWED
    quotes = next(df.value for df in at.dataframe if "Age now" in df.value.columns)
    assert quotes["Contract"].tolist() == [ticket.contract.label]
    assert quotes["Age now"].tolist()[0] != ""

    original = desk.settings
    desk.settings = original.model_copy(update={"max_order_quantity": 0.5})
    try:
        next(b for b in at.button if b.key == f"confirm_{ticket.ticket_id}").click()
        at.run()
    finally:
        desk.settings = original
    elements = dialog_elements(at)
    first = elements[0]
    shown = str(first.value).replace("\\", "")          # plain() escapes markdown
    assert first.type in ("alert", "error") and "Blocked: Quantity 1 is above the limit" in shown
    assert [o for o in gw.orders() if o.order_ref == ticket.ticket_id] == []


def test_the_review_dialog_modifies_a_working_orders_limit_under_the_same_order_id(restarted):
    services, gw, _, _ = restarted
    desk = services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION)
    desk.edit(ticket.ticket_id, SESSION, limit_price=round(spot * 0.8, 2))
    desk.preview(ticket.ticket_id, SESSION)
    desk.confirm(ticket.ticket_id, SESSION)
    wait_until(lambda: desk.ticket(ticket.ticket_id).state == TicketState.WORKING)
    [before] = [o for o in gw.orders() if o.order_ref == ticket.ticket_id]
    at = orders_page(ticket.ticket_id)
    at.session_state["v6_review_ticket"] = ticket.ticket_id
    at.run()
    new_limit = round(spot * 0.79, 2)
    at.number_input(key=f"modify_limit_{ticket.ticket_id}").set_value(new_limit)
    next(b for b in at.button if b.key == f"modify_{ticket.ticket_id}").click()
    at.run()
    assert not at.exception, at.exception
    wait_until(lambda: [o.limit_price for o in gw.orders() if o.order_ref == ticket.ticket_id] == [new_limit])
    [after] = [o for o in gw.orders() if o.order_ref == ticket.ticket_id]
    assert after.order_id == before.order_id
    assert "modify_confirmed" in services.audit.audit(ticket.ticket_id)["event"].to_list()
    desk.cancel(ticket.ticket_id, SESSION)
