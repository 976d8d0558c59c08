"""The official Interactive Brokers client (`ibapi-stable`) as a test driver for the simulator.

It runs exactly as IB ships it: EClient.connect() does the handshake, its EReader thread reads the
socket and its run() loop (on a thread of ours) decodes and calls the EWrapper. Every callback is
recorded in order. Anything the official decoder could not take is collected as a *problem* and
fails the test that checks `client.problems`:
- an exception out of the decoder (e.g. int("1.0")), which would otherwise kill run() silently;
- fields left unread after a message was decoded (the server sent a layout of another version);
- a length mismatch or other error the ibapi logger reports (simple messages are dropped silently);
- a client-side error code (501-599) such as 507 "Bad message length" / 508 "Bad message".
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ibapi.client as ibapi_client
from ibapi.client import EClient
from ibapi.wrapper import EWrapper

FARM_NOTICES = {2104, 2106, 2158}
HOST = "127.0.0.1"


class Event:
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: tuple) -> None:
        self.name, self.args = name, args

    def __repr__(self) -> str:
        return f"{self.name}{self.args!r}"[:300]


class _ProblemLog(logging.Handler):
    """Catches what ibapi only logs: 'diff len fields and params', decode trouble."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"ibapi logged: {record.getMessage()[:300]}")


class OfficialClient(EWrapper, EClient):
    """One official-client connection; `max_version` limits the version range it offers."""

    def __init__(self, max_version: int | None = None) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.max_version = max_version
        self.events: list[Event] = []
        self.problems: list[str] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._log_handler = _ProblemLog(self.problems)

    # ---- lifecycle
    def start(self, port: int, client_id: int = 1, timeout: float = 10.0) -> OfficialClient:
        logging.getLogger("ibapi").addHandler(self._log_handler)
        saved = ibapi_client.MAX_CLIENT_VER
        if self.max_version is not None:
            ibapi_client.MAX_CLIENT_VER = self.max_version   # what the hello offers, nothing else
        try:
            self.connect(HOST, port, client_id)
        finally:
            ibapi_client.MAX_CLIENT_VER = saved
        if not self.isConnected():
            raise AssertionError(f"official client did not connect; events {self.events}")
        self._check_decoding()
        self._thread = threading.Thread(target=self._run, name="ibapi-run", daemon=True)
        self._thread.start()
        self.wait_for(lambda: self.first("nextValidId"), timeout, "nextValidId")
        return self

    def stop(self) -> None:
        if self.isConnected():
            self.disconnect()
        if self._thread is not None:
            self._thread.join(5)
        logging.getLogger("ibapi").removeHandler(self._log_handler)

    def __enter__(self) -> OfficialClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self.run()
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            self.problems.append(f"run() died: {type(exc).__name__}: {exc}")

    def _check_decoding(self) -> None:
        decoder = self.decoder
        original = decoder.interpret
        problems = self.problems

        def interpret(fields: tuple, msg_id: int) -> None:
            info = decoder.msgId2handleInfo.get(msg_id)
            if info is None or info.processMeth is None:
                original(fields, msg_id)
                return
            it = iter(fields)
            try:
                info.processMeth(decoder, it)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"message {msg_id}: {type(exc).__name__}: {exc} in {fields!r}"[:400])
                return
            rest = list(it)
            if rest:
                problems.append(f"message {msg_id}: {len(rest)} unread fields {rest[:6]!r}")

        decoder.interpret = interpret

    # ---- recording
    def _record(self, name: str, args: tuple) -> None:
        with self._cond:
            self.events.append(Event(name, args))
            self._cond.notify_all()

    def error(self, reqId, errorTime, errorCode, errorString, advancedOrderRejectJson=""):  # noqa: N803
        if 501 <= errorCode <= 599 and errorCode not in (504,):
            self.problems.append(f"client-side error {errorCode}: {errorString[:300]}")
        self._record("error", (reqId, errorCode, errorString))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or predicate}; "
                                         f"problems {self.problems}; last events {self.events[-8:]}")
                self._cond.wait(min(left, 0.1))

    def named(self, name: str, req_id: int | None = None) -> list[tuple]:
        with self._cond:
            return [e.args for e in self.events
                    if e.name == name and (req_id is None or e.args[0] == req_id)]

    def first(self, name: str, req_id: int | None = None) -> tuple | None:
        found = self.named(name, req_id)
        return found[0] if found else None

    def names(self, req_id: int | None = None) -> list[str]:
        with self._cond:
            return [e.name for e in self.events if req_id is None or (e.args and e.args[0] == req_id)]

    def errors(self, req_id: int | None = None) -> list[int]:
        return [code for rid, code, _ in self.named("error", req_id) if code not in FARM_NOTICES]


def _recorder(name: str) -> Callable[..., None]:
    def method(self: OfficialClient, *args: Any) -> None:
        self._record(name, args)
    method.__name__ = name
    return method


for _name, _fn in inspect.getmembers(EWrapper, inspect.isfunction):
    if _name.startswith("_") or _name in ("error", "logAnswer") or _name.endswith("ProtoBuf"):
        continue
    setattr(OfficialClient, _name, _recorder(_name))
