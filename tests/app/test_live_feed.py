"""The live feed's endpoint (pages/components/live_feed.py), served by a real Starlette app with the
route serve.py mounts: who may read it, what it answers, and that it shares the page's body."""

from __future__ import annotations

from dataclasses import replace

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from pages.components import live_feed, positions_book, shared
from tests.app.leg_tables import _Tables
from tests.app.synthetic import synthetic_snapshot


@pytest.fixture(params=[[], ["localhost", "127.0.0.1", "::1"]], ids=["allowedHosts unset", "allowedHosts set"])
def client(stand_in, request):
    from streamlit import config

    before = config.get_option("server.allowedHosts")
    config.set_option("server.allowedHosts", request.param)
    request.addfinalizer(lambda: config.set_option("server.allowedHosts", before))
    shared.clear()
    live_feed.forget_tokens()
    app = Starlette(routes=[Route(live_feed.ROUTE, live_feed.endpoint, methods=["GET"])])
    with TestClient(app, base_url="http://localhost:8501") as c:
        yield c
    live_feed.forget_tokens()


def get(client, part, token, **params):
    return client.get(f"/v6/live/{part}", params={"t": token, **params})


def test_the_feed_answers_only_a_token_it_handed_out(client):
    assert get(client, "positions", "").status_code == 401
    assert get(client, "positions", "guessed-token").status_code == 401
    token = live_feed.issue_token()
    reply = get(client, "positions", token)
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    # a page from another site cannot read it: no CORS header, and a rebinding Host is refused
    assert "access-control-allow-origin" not in reply.headers
    assert client.get("/v6/live/positions", params={"t": token}, headers={"host": "evil.example"}).status_code == 403
    assert get(client, "orders", token).status_code == 404


def test_a_lapsed_token_is_refused_and_the_page_gets_a_new_one(client, monkeypatch):
    token = live_feed.issue_token()
    monkeypatch.setattr(live_feed, "TOKEN_IDLE_SECONDS", -1.0)
    assert get(client, "positions", token).status_code == 401
    monkeypatch.setattr(live_feed, "TOKEN_IDLE_SECONDS", 600.0)
    fresh = live_feed.issue_token(token)          # what the page's rerun does
    assert fresh != token and get(client, "positions", fresh).status_code == 200


def test_the_feed_serves_the_shared_body_of_the_current_snapshot(client, stand_in):
    token = live_feed.issue_token()
    stand_in.runtime.current = synthetic_snapshot(48)
    body = get(client, "positions", token).json()
    snapshot = stand_in.runtime.snapshot()
    assert body["seq"] == snapshot.seq
    assert body["html"] == positions_book.live_body(snapshot, ((), ()), 1)   # the same object the page drew
    tables = _Tables()
    tables.feed(body["html"])
    assert len(tables.tables) == len(snapshot.strategies)
    assert "None" not in body["html"] and "nan" not in body["html"]
    # the filters and the page travel in the query, as the page drew them
    spy = get(client, "positions", token, u="SPY").json()
    assert "SPY" in spy["html"] and "· QQQ ·" not in spy["html"]
    # the sidebar's status rides along when asked for
    both = get(client, "positions", token, **{"with": "status"}).json()
    assert "snapshot #" in both["parts"]["status"] and both["html"] == body["html"]
    assert get(client, "positions", token, **{"with": "orders"}).status_code == 404
    # a page number that is not one shows the first page, one past the end the last
    assert get(client, "positions", token, page="x").json()["html"] == body["html"]
    assert get(client, "positions", token, page="99").status_code == 200


def test_the_structure_digest_changes_with_the_held_legs_only(client, stand_in, monkeypatch):
    monkeypatch.setattr(shared, "SHARE_WINDOW_SECONDS", 0)     # each request draws the latest snapshot
    token = live_feed.issue_token()
    first = synthetic_snapshot(48)
    stand_in.runtime.current = first
    before = get(client, "positions", token).json()["structure"]
    stand_in.runtime.current = replace(first, seq=first.seq + 1)
    assert get(client, "positions", token).json()["structure"] == before
    changed = replace(first, seq=first.seq + 2,
                      legs=(replace(first.legs[0], quantity=first.legs[0].quantity + 1), *first.legs[1:]))
    stand_in.runtime.current = changed
    assert get(client, "positions", token).json()["structure"] != before


def test_a_failing_build_is_one_line_not_a_traceback(client, monkeypatch):
    token = live_feed.issue_token()

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(positions_book, "live_body", broken)
    reply = get(client, "positions", token)
    assert reply.status_code == 500
    assert reply.text == "server error (RuntimeError); details are in the server log"


def test_names_from_outside_are_escaped_once_as_html(client, stand_in):
    """A strategy's kind and underlying come from the book: shown as written (no markdown
    backslash), and never as markup."""
    token = live_feed.issue_token()
    first = synthetic_snapshot(48)
    odd = replace(first.strategies[0], underlying="BRK.B", kind="<b>odd*kind</b>")
    stand_in.runtime.current = replace(first, strategies=(odd, *first.strategies[1:]))
    body = get(client, "positions", token).json()["html"]
    assert "&lt;b&gt;odd*kind&lt;/b&gt; · BRK.B · " in body
    assert "<b>odd" not in body and "BRK\\.B" not in body
