"""The live feed: a page part that refreshes by fetching shared HTML, with no script run per session.

Streamlit reruns a fragment per session on every refresh; at ten tabs that fixed cost was most of
the server's CPU (issue #12, bench_pages), although every tab drew the same HTML from the same
snapshot. A feed is one small component (`st.components.v2`) drawn once by the page with its
first HTML; in the browser it then fetches the current HTML from this module's endpoint on the
refresh interval. The endpoint builds nothing per session: it returns the body `per_snapshot`
built for the snapshot, so the server's cost per tab is one small HTTP request.

- Access: the endpoint answers only a token the page's own run handed to its session (after the
  password gate), on an allowed Host; tokens unused for TOKEN_IDLE_SECONDS lapse. A lapsed or
  unknown token gets 401, and the feed reruns the page, which hands it a new one.
- Controls follow the body: each answer carries the digest of what the page's controls are drawn
  from (`structure`); when it differs from the one drawn, the feed reruns the page.
- Honest when it cannot update: a failed fetch leaves the last figures under a red line saying
  since when they are not updated and why.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import streamlit as st

log = logging.getLogger("v6.pages")

ROUTE = "/v6/live/{part}"
TOKEN_KEY = "v6_live_token"
TOKEN_IDLE_SECONDS = 600.0
MAX_TOKENS = 2000

_tokens: OrderedDict[str, float] = OrderedDict()       # token -> last use (monotonic)
_tokens_lock = threading.Lock()

CSS = """
:host { display: block; }
.v6-caption { font-size: 0.875rem; opacity: 0.6; margin: 0 0 0.5rem 0; }
.v6-notice { padding: 0.75rem 1rem; border-radius: 0.5rem; background: rgba(28, 131, 225, 0.1); }
.v6-feed-error { color: #ff4b4b; font-size: 0.875rem; margin: 0 0 0.5rem 0; }
details.v6-strategy { border: 1px solid rgba(128, 128, 128, 0.3); border-radius: 0.5rem;
  margin: 0 0 0.75rem 0; padding: 0 0.75rem; }
details.v6-strategy > summary { cursor: pointer; padding: 0.6rem 0; font-size: 0.95rem; }
details.v6-strategy[open] > summary { margin-bottom: 0.25rem; }
.v6-status p { margin: 0 0 0.35rem 0; font-size: 0.875rem; opacity: 0.75; }
.v6-badge { display: inline-block; padding: 0 0.4rem; margin: 0 0.3rem 0.4rem 0; border-radius: 0.25rem;
  font-size: 0.875rem; font-weight: 600; }
.v6-badge.blue { color: #60b4ff; background: rgba(28, 131, 225, 0.2); }
.v6-badge.green { color: #3dd56d; background: rgba(33, 195, 84, 0.2); }
.v6-badge.orange { color: #ffbd45; background: rgba(255, 164, 33, 0.2); }
.v6-badge.red { color: #ff6c6c; background: rgba(255, 43, 43, 0.2); }
.v6-badge.gray { color: #bfc5d3; background: rgba(128, 128, 128, 0.2); }
.v6-status .error { color: #ff6c6c; opacity: 1; }
.v6-status .warning { color: #ffbd45; opacity: 1; }
"""

# One instance per mount; its state (timer, what the operator opened) lives on its root element.
JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".v6-feed");
  if (!root) {
    root = document.createElement("div");
    root.className = "v6-feed";
    parentElement.appendChild(root);
    root.v6opened = new Map();
  }
  const opened = root.v6opened;
  let shown = null;
  const apply = (body) => {
    if (body === shown) return;
    shown = body;
    root.innerHTML = body;
    root.querySelectorAll("details[data-key]").forEach((d) => {
      const key = d.dataset.key;
      if (opened.has(key)) d.open = opened.get(key);
      d.addEventListener("toggle", () => opened.set(key, d.open));
    });
  };
  const problem = (text) => {
    let line = root.querySelector(".v6-feed-error");
    if (!line) {
      line = document.createElement("p");
      line.className = "v6-feed-error";
      root.prepend(line);
    }
    line.textContent = text;
  };
  apply(data.html);
  let stopped = false, busy = false, updated = new Date();
  const resync = (why) => { stopped = true; setTriggerValue("resync", why); };
  const tick = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      // a hung request must not hold the feed silently: it times out and says so
      const reply = await fetch(data.url, { cache: "no-store", credentials: "same-origin",
                                            signal: AbortSignal.timeout(Math.max(5000, 3 * data.every)) });
      if (reply.status === 401) { resync("token"); return; }
      if (!reply.ok) throw new Error("HTTP " + reply.status + " " + (await reply.text()).slice(0, 200));
      const body = await reply.json();
      if (stopped) return;
      if (data.structure && body.structure && body.structure !== data.structure) { resync("structure"); return; }
      apply(body.html);
      updated = new Date();
      for (const [name, part] of Object.entries(body.parts || {})) {
        window.dispatchEvent(new CustomEvent("v6-live-" + name, { detail: part }));
      }
    } catch (err) {
      if (!stopped) problem("Live figures not updated since " + updated.toLocaleTimeString() + ": " + err.message);
    } finally {
      busy = false;
    }
  };
  if (data.listen) {
    // fed by another feed's answers (one request per refresh carries both parts)
    const heard = (event) => { apply(event.detail); updated = new Date(); };
    window.addEventListener(data.listen, heard);
    const watch = data.every > 0 ? setInterval(() => {
      if (new Date() - updated > 3 * data.every + 2000) problem("Not updated since " + updated.toLocaleTimeString());
    }, data.every) : null;
    return () => { window.removeEventListener(data.listen, heard); if (watch) clearInterval(watch); };
  }
  // Fetch on the wall clock's multiples of the interval: every tab asks at the same moments, so
  // they share one build of each snapshot's body instead of asking at scattered times.
  let timer = null;
  const schedule = () => {
    if (stopped || !(data.every > 0)) return;
    timer = setTimeout(async () => { await tick(); schedule(); }, data.every - (Date.now() % data.every));
  };
  schedule();
  return () => { stopped = true; if (timer) clearTimeout(timer); };
}
"""

_component = None


def _feed():
    global _component
    if _component is None:
        _component = st.components.v2.component("v6_live_feed", js=JS, css=CSS, isolate_styles=True)
    return _component


# ---------------------------------------------------------------- tokens


def session_token() -> str:
    """This session's feed token (made on its first use, renewed on every page run)."""
    token = issue_token(st.session_state.get(TOKEN_KEY))
    st.session_state[TOKEN_KEY] = token
    return token


def issue_token(token: str | None = None) -> str:
    """Renew `token` if it is still known, else hand out a new one (the oldest lapse past MAX_TOKENS)."""
    with _tokens_lock:
        if token is None or token not in _tokens:
            token = secrets.token_urlsafe(24)
        _tokens[token] = time.monotonic()
        _tokens.move_to_end(token)
        while len(_tokens) > MAX_TOKENS:
            _tokens.popitem(last=False)
    return token


def token_valid(token: str | None) -> bool:
    """True for a token handed out and used within TOKEN_IDLE_SECONDS (its use renews it)."""
    if not token:
        return False
    now = time.monotonic()
    with _tokens_lock:
        last = _tokens.get(token)
        if last is None or now - last > TOKEN_IDLE_SECONDS:
            _tokens.pop(token, None)
            return False
        _tokens[token] = now
        return True


def forget_tokens() -> None:
    with _tokens_lock:
        _tokens.clear()


# ---------------------------------------------------------------- the page side


def url(part: str, **params: Any) -> str:
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}" if base else ""
    query = urlencode({**params, "t": session_token()}, doseq=True)
    return f"{prefix}{ROUTE.format(part=part)}?{query}"


def mount(key: str, part: str, body: str, *, structure: str = "", every: int | None = None,
          with_parts: tuple[str, ...] = (), **params: Any) -> None:
    """Draw a feed of `part` (see `render`) showing `body` now and the endpoint's body every
    `every` seconds (None: not refreshed, e.g. while the operator paused refresh). Each answer
    also carries the bodies of `with_parts`, for the feeds drawn with `listener` (one request per
    refresh and tab instead of one per part)."""
    if with_parts:
        params["with"] = list(with_parts)
    _feed()(key=key, data={"url": url(part, **params), "html": body, "structure": structure,
                           "every": int(every * 1000) if every else 0, "listen": "",
                           "run": time.time_ns()},      # each page run restarts the feed
            on_resync_change=lambda: None)


def listener(key: str, part: str, body: str, *, every: int | None = None) -> None:
    """Draw `body` now, then each body of `part` that another feed's answer carries (`mount`'s
    `with_parts`); says so when none arrived for three refreshes."""
    _feed()(key=key, data={"url": "", "html": body, "structure": "", "listen": f"v6-live-{part}",
                           "every": int(every * 1000) if every else 0},
            on_resync_change=lambda: None)


# ---------------------------------------------------------------- bodies


def status_html(services) -> str:
    """The sidebar's connection status (shell.status_items) as HTML."""
    from pages.components.shell import status_items

    out = []
    badges = []
    for kind, text, color in status_items(services):
        shown = _inline(text)
        if kind == "badge":
            badges.append(f'<span class="v6-badge {html.escape(color)}">{shown}</span>')
            continue
        if badges:
            out.append(f'<p>{"".join(badges)}</p>')
            badges = []
        css = "" if kind == "caption" else f' class="{kind}"'
        out.append(f"<p{css}>{shown}</p>")
    if badges:
        out.append(f'<p>{"".join(badges)}</p>')
    return f'<div class="v6-status">{"".join(out)}</div>'


def _inline(text: str) -> str:
    """Status text (markdown-escaped by plain(), our own **bold**) as HTML."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"\\(.)", r"\1", escaped)


PARTS = ("status", "positions")


def render(part: str, params: dict[str, list[str]]) -> dict[str, Any]:
    """The body of a feed (one of PARTS) for the endpoint, from the shared services, with the
    bodies of the parts its `with` parameter names."""
    from pages.components import common

    services = common.get_services()
    body = _render(part, params, services)
    extra = [p for p in params.get("with", []) if p != part]
    if any(p not in PARTS for p in extra):
        raise KeyError(part)
    if extra:
        body["parts"] = {p: _render(p, params, services)["html"] for p in extra}
    return body


def _render(part: str, params: dict[str, list[str]], services) -> dict[str, Any]:
    if part == "status":
        return {"html": status_html(services)}
    if part == "positions":
        from pages.components import positions_book
        from pages.components.shared import live_snapshot

        snapshot = live_snapshot(services.runtime)
        options = (tuple(params.get("u", [])), tuple(params.get("k", [])))
        shown_page = (params.get("page") or ["1"])[0]
        page = int(shown_page) if shown_page.isdigit() else 1       # clamped to the pages there are
        return {"html": positions_book.live_body(snapshot, options, page),
                "structure": positions_book.structure_key(snapshot), "seq": snapshot.seq}
    raise KeyError(part)


# ---------------------------------------------------------------- the endpoint (serve.py mounts it)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _host_allowed(host: str) -> bool:
    """The request's Host names an allowed host: `server.allowedHosts`, or with none set, the
    loopback names (v6 serves localhost only; a rebinding DNS name is refused either way)."""
    from streamlit import config

    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    allowed = config.get_option("server.allowedHosts") or LOOPBACK_HOSTS
    return name in allowed


async def endpoint(request):
    """GET /v6/live/{part}?t=TOKEN&...: the part's current body as JSON, never cached."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse

    # identity: over loopback, compressing each answer would only cost the server CPU
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Encoding": "identity"}
    if not _host_allowed(request.headers.get("host", "")):
        return PlainTextResponse("host not allowed", status_code=403, headers=headers)
    if not token_valid(request.query_params.get("t")):
        return PlainTextResponse("no valid session token: the page reloads its feed", status_code=401,
                                 headers=headers)
    part = request.path_params.get("part", "")
    params = {k: request.query_params.getlist(k) for k in request.query_params.keys() if k != "t"}
    try:
        body = await run_in_threadpool(render, part, params)
    except KeyError:
        return PlainTextResponse("no such live part", status_code=404, headers=headers)
    except Exception as exc:       # one line to the browser, the traceback to the log
        log.exception("live feed %s failed", part)
        return PlainTextResponse(f"server error ({type(exc).__name__}); details are in the server log",
                                 status_code=500, headers=headers)
    return JSONResponse(body, headers=headers)
