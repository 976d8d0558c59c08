"""Fixtures for the signal tests: constructed bars frames and a runtime stand-in that records
every call, so tests can prove the signal pipeline never reaches order placement."""

from __future__ import annotations

import math
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from v6core.config import Settings
from v6core.models import (AccountValues, ConnectionStatus, ContractInfo, Greeks, GreekSource, Leg,
                           PortfolioSnapshot, PositionGreeks, UnderlyingSummary)

START = datetime(2024, 11, 18, tzinfo=timezone.utc)  # a Monday


def make_bars(closes, start: datetime = START, spread: float = 0.01,
              volume: float = 1_000_000.0) -> pl.DataFrame:
    """Daily bars on consecutive weekdays: open = previous close, high/low +-spread around."""
    times, day = [], start
    while len(times) < len(closes):
        if day.weekday() < 5:
            times.append(day)
        day += timedelta(days=1)
    closes = [float(c) for c in closes]
    opens = [closes[0]] + closes[:-1]
    highs = [max(o, c) * (1 + spread) for o, c in zip(opens, closes)]
    lows = [min(o, c) * (1 - spread) for o, c in zip(opens, closes)]
    return pl.DataFrame({
        "time": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
        "open": opens, "high": highs, "low": lows, "close": [float(c) for c in closes],
        "volume": [volume] * len(closes),
    })


def uptrend(n: int = 300, start: float = 100.0, step: float = 0.3, wiggle: float = 2.5):
    # A steady rise with a small oscillation, so RSI stays below 100 and MACD crosses happen.
    return [start + step * i + wiggle * math.sin(i / 3.0) for i in range(n)]


def downtrend(n: int = 300, start: float = 200.0, step: float = 0.3, wiggle: float = 2.5):
    return [start - step * i + wiggle * math.sin(i / 3.0) for i in range(n)]


def flat(n: int = 300, level: float = 100.0, wiggle: float = 0.5):
    return [level + wiggle * math.sin(i * 1.7) for i in range(n)]


class RecordingRuntime:
    """Serves bars like Runtime.historical_bars and records every call, including any attempt
    at the order methods (which the signal service must never make)."""

    def __init__(self, bars: dict[str, pl.DataFrame], snapshot: PortfolioSnapshot | None = None,
                 weekly: dict[str, pl.DataFrame] | None = None) -> None:
        self.bars = bars
        self.weekly = weekly or {}
        self._snapshot = snapshot
        self.calls: list[tuple] = []
        self.order_calls: list[tuple] = []

    def historical_bars(self, symbol, bar_size="1 day", duration="1 Y") -> Future:
        self.calls.append(("historical_bars", symbol, bar_size, duration))
        fut: Future = Future()
        source = self.bars if bar_size == "1 day" else self.weekly
        if symbol in source:
            fut.set_result(source[symbol])
        else:
            fut.set_exception(LookupError(f"no {bar_size} bars for {symbol}"))
        return fut

    def snapshot(self):
        self.calls.append(("snapshot",))
        return self._snapshot

    def stock_contract(self, symbol):
        """What OrderDesk asks to draft a stock ticket (the Create-ticket test uses the real desk)."""
        self.calls.append(("stock_contract", symbol))
        return ContractInfo(con_id=abs(hash(symbol)) % 100_000 + 1, symbol=symbol, sec_type="STK",
                            exchange="SMART", local_symbol=symbol)

    def _order_call(self, name, *args):
        self.order_calls.append((name, args))
        fut: Future = Future()
        fut.set_exception(AssertionError(f"signal pipeline called {name}"))
        return fut

    def place_order(self, *args, **kwargs):
        return self._order_call("place_order", *args)

    def what_if(self, *args, **kwargs):
        return self._order_call("what_if", *args)

    def cancel_order(self, *args, **kwargs):
        return self._order_call("cancel_order", *args)

    def cancel_all(self, *args, **kwargs):
        return self._order_call("cancel_all", *args)


def snapshot_with_position(symbol: str = "SPY", spot: float = 190.0) -> PortfolioSnapshot:
    now = datetime.now(timezone.utc)
    option = ContractInfo(con_id=11, symbol=symbol, sec_type="OPT",
                          expiry=(now + timedelta(days=30)).date(), strike=round(spot),
                          right="P", multiplier=100.0, local_symbol=f"{symbol} P")
    greeks = Greeks(delta=-0.4, gamma=0.02, theta=-0.05, vega=0.2, iv=0.2, und_price=spot,
                    source=GreekSource.IB)
    pos = PositionGreeks(delta=-80.0, gamma=4.0, theta=-10.0, vega=40.0, dollar_delta=-80 * spot,
                         beta_delta=-80.0)
    leg = Leg(account="DU1", contract=option, quantity=2, avg_price=3.5, mark=3.0,
              market_value=600.0, unrealized_pnl=-100.0, realized_pnl=0.0, daily_pnl=5.0, dte=30,
              greeks=greeks, position_greeks=pos, quote_time=now)
    und = UnderlyingSummary(symbol=symbol, spot=spot, beta=1.0, greeks=pos, unrealized_pnl=-100.0,
                            daily_pnl=5.0, market_value=600.0, quote_time=now)
    return PortfolioSnapshot(seq=1, built_at=now, connection=ConnectionStatus(),
                             account=AccountValues(), legs=(leg,), underlyings=(und,))


@pytest.fixture
def rules_settings(tmp_path) -> Settings:
    return Settings(_env_file=None, lake_path=tmp_path / "lake", llm_base_url="", llm_model="")


# ---------------------------------------------------------------- a chat-completions endpoint

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion_body(content: str | None, tool_calls: list | None = None, model: str = "test-model",
                    function_call: dict | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if function_call:
        message["function_call"] = function_call       # the legacy (pre-tools) form
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


class ChatServer:
    """An OpenAI-compatible /v1/chat/completions endpoint on 127.0.0.1:<free port>.

    Replies are scripted: each request takes the next script entry (the last one repeats):
      {"content": "..."}                      a completion with that text
      {"tool_calls": [...]}                   a completion asking for a tool call
      {"function_call": {...}}                the legacy single function call
      {"sleep": s, "content": "..."}          answer after `s` seconds
      {"status": 400, "error": "..."}         an HTTP error
      {"reject_response_format": True}        400 when the request asks for response_format
    Every request body and its headers are recorded in `requests`.
    """

    def __init__(self) -> None:
        self.script: list[dict] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    step = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                if step.get("reject_response_format") and "response_format" in body:
                    return self._send(400, {"error": {"message": "response_format not supported",
                                                      "type": "invalid_request_error"}})
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                if "status" in step:
                    return self._send(step["status"], {"error": {"message": step.get("error", "error")}})
                self._send(200, completion_body(step.get("content"), step.get("tool_calls"),
                                                function_call=step.get("function_call")))

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ChatServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_settings(tmp_path, chat_server) -> Settings:
    return Settings(_env_file=None, lake_path=tmp_path / "lake", llm_base_url=chat_server.base_url,
                    llm_model="test-model", llm_api_key="sk-test-key", llm_timeout=30.0,
                    llm_max_retries=1)
