"""The server entry point: `streamlit run serve.py` serves app.py, plus the live feed's endpoint.

`st.App` is Streamlit's own ASGI app; `streamlit run` finds it here and runs app.py as the main
script with the same config (.streamlit/). Two additions:

- the route `/v6/live/{part}` answers the pages' live feeds (`pages/components/live_feed.py`)
  from the shared per-snapshot bodies, so an open tab's refresh costs the server one small
  request instead of a script run;
- `Splash` puts a "connecting" line into the HTML shell Streamlit sends for every page URL, so
  it is on screen as soon as the document arrives, while the browser still loads Streamlit's
  frontend (the frontend replaces it when it draws the app).
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Route

from pages.components.live_feed import ROUTE, endpoint

ROOT_DIV = b'<div id="root"></div>'
SPLASH = (b'<div id="root"><div id="v6-splash" role="status" style="font-family: sans-serif; '
          b'color: #fafafa; background: #0e1117; position: fixed; inset: 0; padding: 6rem 5rem; '
          b'font-size: 1.1rem;">v6 &middot; connecting: loading the dashboard&hellip;</div></div>')


class Splash:
    """ASGI middleware: the HTML shell of a page URL gets the splash inside its root element.

    Only a plain (not compressed) text/html answer to a GET is touched; its Content-Length is
    fixed. The browser's Accept-Encoding is dropped for page loads, so the shell comes back plain
    (over loopback compression buys nothing)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not _wants_html(scope):
            await self.app(scope, receive, send)
            return
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"accept-encoding"])
        start: dict | None = None
        chunks: list[bytes] = []

        async def wrapped(message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if (headers.get(b"content-type", b"").startswith(b"text/html")
                        and b"content-encoding" not in headers):
                    start = message                    # hold it: the length changes
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks).replace(ROOT_DIV, SPLASH, 1)
            headers = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-length", b"etag")]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, wrapped)


def _wants_html(scope) -> bool:
    accept = dict(scope.get("headers", [])).get(b"accept", b"")
    return b"text/html" in accept


app = st.App("app.py", routes=[Route(ROUTE, endpoint, methods=["GET"])], middleware=[Middleware(Splash)])
