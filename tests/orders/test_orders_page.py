"""AppTest of the Orders page over the real services (runtime + embedded simulator + Delta audit):
a constructed actionable signal becomes a ticket, is edited, reviewed in the dialog, confirmed,
and fills at the simulator, whose own book shows exactly the confirmed fields."""

from __future__ import annotations


import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from pages.components import common
from tests.orders.conftest import ready, signal_record, wait_until
from v6core.orders import TicketState

APP = str(common.__file__).replace("pages/components/common.py", "app.py")
SESSION = "apptest-session-1"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("V6_MODE", "sim")
        mp.setenv("V6_LAKE_PATH", str(tmp_path_factory.mktemp("lake")))
        mp.setenv("V6_SIM_TICK_RATE", "4")
        mp.delenv("V6_PASSWORD", raising=False)
        common.get_services.clear()
        services = common.get_services()
        try:
            assert services.runtime.wait_for(ready, 90) is not None, "simulator data never arrived"
            wait_until(lambda: services.orders.recovered, timeout=20)
            yield services
        finally:
            services.stop()
            common.get_services.clear()


@pytest.fixture(autouse=True)
def navigation_like_a_running_server(monkeypatch):
    """AppTest re-enters Streamlit's `pages/`-folder mode before each run; a server leaves it after
    the first `st.navigation` call (see `common.ensure_app_shell`)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


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


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("success", "info", "error", "warning") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_signal_to_filled_order_through_the_review_dialog(services):
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    record = signal_record("AAPL", "BUY", spot)
    ticket = desk.draft_from_signal(record, SESSION)
    tid = ticket.ticket_id

    at = orders_page(tid)
    shown = at.dataframe[0].value
    assert dict(zip(shown["Field"], shown["Value"]))["Ticket"] == tid
    assert dict(zip(shown["Field"], shown["Value"]))["Signal stop / target (not sent)"] == (
        f"{record.stop:.2f} / {record.target:.2f}")

    # Edit quantity, limit and TIF in the ticket form.
    limit = round(spot - 0.50, 2)
    at.number_input(key=f"edit_qty_{tid}").set_value(3)
    at.number_input(key=f"edit_limit_{tid}").set_value(limit)
    at.selectbox(key=f"edit_tif_{tid}").set_value("GTC")
    button(at, f"FormSubmitter:edit_{tid}-Apply changes").click()
    at.run()
    edited = desk.ticket(tid)
    assert (edited.quantity, edited.limit_price, edited.tif) == (3, limit, "GTC")

    # Review: checks + what-if, then the dialog with the whole ticket and the preview.
    button(at, f"review_{tid}").click()
    at.run()
    assert not at.exception, at.exception
    assert desk.ticket(tid).state == TicketState.PREVIEWED
    labels = [m.label for m in at.metric]
    assert "Initial margin change" in labels and "Commission" in labels
    assert gw.orders() == [o for o in gw.orders() if o.order_ref != tid]     # nothing sent yet

    # Confirm, twice (a repeated click): exactly one order, with exactly the confirmed fields.
    button(at, f"confirm_{tid}").click()
    at.run()
    assert not at.exception, at.exception
    [order] = [o for o in gw.orders() if o.order_ref == tid]
    assert (order.action, order.quantity, order.order_type, order.limit_price, order.tif, order.order_ref) == (
        "BUY", 3, "LMT", limit, "GTC", tid)
    assert f"Sent once as order {order.order_id}" in texts(at)

    # The market comes down to the limit: the order fills, the dialog follows it live.
    gw.set_spot("AAPL", round(spot - 2.0, 2))
    wait_until(lambda: desk.ticket(tid).state == TicketState.FILLED, timeout=30)
    wait_until(lambda: "fill" in services.audit.audit(tid)["event"].to_list(), timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert "Filled 3" in texts(at)
    [order] = [o for o in gw.orders() if o.order_ref == tid]
    assert order.status == "Filled" and order.filled == 3
    events = services.audit.audit(tid)["event"].to_list()
    assert events.count("confirmed") == 1 and events.count("sent") == 1
    assert set(services.audit.audit(tid).filter(
        services.audit.audit(tid)["event"].is_in(["drafted", "confirmed"]))["session_id"]) == {SESSION}


def test_a_second_tab_confirming_the_same_ticket_is_refused(services):
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "SELL", spot), SESSION)
    tid = ticket.ticket_id
    desk.edit(tid, SESSION, limit_price=round(spot * 1.2, 2))
    tabs = []
    for session in (SESSION, "apptest-session-2"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state[common.SESSION_KEY] = session
        at.session_state["ticket_id"] = tid
        at.run()
        at.switch_page("pages/orders.py")
        at.run()
        button(at, f"review_{tid}").click()
        at.run()
        assert not at.exception, at.exception
        tabs.append(at)
    first, second = tabs
    button(first, f"confirm_{tid}").click()
    first.run()
    button(second, f"confirm_{tid}").click()
    second.run()
    assert not second.exception, second.exception
    assert "already confirmed" in texts(second)
    assert len([o for o in gw.orders() if o.order_ref == tid]) == 1
    trail = services.audit.audit(tid)
    assert trail.filter(trail["event"] == "confirmed")["session_id"].to_list() == [SESSION]
    desk.cancel(tid, SESSION)


def test_cancel_all_asks_for_its_own_confirmation(services):
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION)
    desk.edit(ticket.ticket_id, SESSION, limit_price=round(spot * 0.8, 2))
    desk.preview(ticket.ticket_id, SESSION)
    desk.confirm(ticket.ticket_id, SESSION)
    wait_until(lambda: any(o.order_ref == ticket.ticket_id and o.is_working
                           for o in services.runtime.snapshot().orders), timeout=20)
    at = orders_page()
    button(at, "cancel_all_open").click()
    at.run()
    assert not at.exception, at.exception
    # The first click only opens the confirmation: nothing cancelled yet.
    assert next(o for o in gw.orders() if o.order_ref == ticket.ticket_id).status == "Submitted"
    button(at, "cancel_all_confirm").click()
    at.run()
    wait_until(lambda: next(o for o in gw.orders() if o.order_ref == ticket.ticket_id).status == "Cancelled")
    assert "cancel_all_requested" in services.audit.audit()["event"].to_list()
    # Issue #12 defect 8: the dialog is gone with its button, the outcome is on the page.
    assert not any(b.key == "cancel_all_confirm" for b in at.button)
    assert "Global cancel sent." in [e.value for e in at.success]


def test_a_cancelled_order_loses_its_buttons_at_once(services):
    """Issue #12 defect 8: the Cancel button stayed beside the order for seconds after the cancel."""
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION)
    desk.edit(ticket.ticket_id, SESSION, limit_price=round(spot * 0.8, 2))
    desk.preview(ticket.ticket_id, SESSION)
    desk.confirm(ticket.ticket_id, SESSION)
    wait_until(lambda: any(o.order_ref == ticket.ticket_id and o.is_working
                           for o in services.runtime.snapshot().orders), timeout=20)
    order_id = next(o.order_id for o in services.runtime.snapshot().orders if o.order_ref == ticket.ticket_id)
    at = orders_page()
    button(at, f"cancel_{order_id}").click()
    at.run()
    assert not at.exception, at.exception
    # The very run after the click: no button for that order, whatever the snapshot says yet.
    assert not any(b.key == f"cancel_{order_id}" for b in at.button)
    wait_until(lambda: next(o for o in gw.orders() if o.order_ref == ticket.ticket_id).status == "Cancelled")


def test_the_ticket_picker_labels_show_the_edit_made_in_the_same_run(services):
    """Issue #12 defect 7: the picker kept old labels (quantity, price, state) after an edit."""
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    tid = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION).ticket_id
    at = orders_page(tid)
    limit = round(spot - 1.0, 2)
    at.number_input(key=f"edit_qty_{tid}").set_value(4)
    at.number_input(key=f"edit_limit_{tid}").set_value(limit)
    button(at, f"FormSubmitter:edit_{tid}-Apply changes").click()
    at.run()
    label = at.selectbox(key="v6_ticket_pick").format_func(tid)
    assert f"BUY 4 " in label and f"@ {limit:.2f} LMT" in label and label.endswith("drafted"), label
    button(at, f"review_{tid}").click()
    at.run()
    assert at.selectbox(key="v6_ticket_pick").format_func(tid).endswith("previewed")
    assert at.selectbox(key="v6_ticket_pick").value == tid
    desk.discard(tid, SESSION) if hasattr(desk, "discard") else None


def test_a_bracket_ticket_is_reviewed_confirmed_once_and_its_exits_shown(services):
    """The signal's stop and target as a bracket: the ticket shows both exits before confirm, the
    one confirmation sends three orders, the exits appear under the ticket and in working orders,
    and cancelling the ticket cancels them with the entry."""
    gw, desk = services.runtime.sim, services.orders
    spot = gw.spot("AAPL")
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), SESSION, bracket=True)
    tid = ticket.ticket_id
    at = orders_page(tid)
    shown = dict(zip(at.dataframe[0].value["Field"], at.dataframe[0].value["Value"]))
    assert shown["Bracket take profit (sent)"] == f"SELL LMT {ticket.target:.2f} GTC"
    assert shown["Bracket stop (sent)"] == f"SELL STP {ticket.stop:.2f} GTC"
    assert at.checkbox(key=f"edit_bracket_{tid}").value is True
    # a stop above the entry is refused before anything is sent
    at.number_input(key=f"edit_limit_{tid}").set_value(round(spot * 0.8, 2))       # rests
    at.number_input(key=f"edit_stop_{tid}").set_value(round(spot * 0.9, 2))
    button(at, f"FormSubmitter:edit_{tid}-Apply changes").click()
    at.run()
    button(at, f"review_{tid}").click()
    at.run()
    assert "A BUY bracket needs stop \\< limit" in texts(at)            # shown as plain (escaped) text
    at.number_input(key=f"edit_stop_{tid}").set_value(round(spot * 0.7, 2))
    button(at, f"FormSubmitter:edit_{tid}-Apply changes").click()
    at.run()
    button(at, f"review_{tid}").click()
    at.run()
    assert desk.ticket(tid).state == TicketState.PREVIEWED, texts(at)
    button(at, f"confirm_{tid}").click()
    at.run()
    assert not at.exception, at.exception
    mine = {o.order_ref: o for o in gw.orders() if o.order_ref.startswith(tid)}
    assert set(mine) == {tid, f"{tid}:tp", f"{tid}:sl"}
    assert desk.ticket(tid).child_order_ids == (mine[f"{tid}:tp"].order_id, mine[f"{tid}:sl"].order_id)
    wait_until(lambda: sum(o.order_ref.startswith(tid) for o in services.runtime.snapshot().orders
                           if o.is_working) == 3, timeout=20)
    at = orders_page(tid)
    working = next(d.value for d in at.dataframe if "Parent" in d.value.columns)
    children = working[working["Ticket"].isin([f"{tid}:tp", f"{tid}:sl"])]
    # Parent and Stop are blank for the entry: text columns with a dash there (never "None")
    assert set(children["Parent"]) == {str(mine[tid].order_id)}
    assert working.loc[working["Ticket"] == tid, "Parent"].item() == "—"
    assert set(children["Type"]) == {"LMT", "STP"}
    assert float(children.loc[children["Type"] == "STP", "Stop"].item()) == pytest.approx(round(spot * 0.7, 2))
    desk.cancel(tid, SESSION)
    wait_until(lambda: {o.status for o in gw.orders() if o.order_ref.startswith(tid)} == {"Cancelled"})
