"""A Streamlit client over the real websocket, as the browser's frontend speaks it: BackMsg
protobufs to `/_stcore/stream` (subprotocol "streamlit"), ForwardMsg protobufs back.

Enough of the protocol to run a page, press a button by its widget id and send `clear_cache`,
which is what the app menu's "Clear cache" (and its keyboard shortcut) sends.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


@dataclass
class Run:
    """What one script run sent: every ForwardMsg, and the buttons drawn (label -> widget ids)."""

    messages: list[ForwardMsg] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(str(m.delta) for m in self.messages if m.WhichOneof("type") == "delta")

    def buttons(self, label: str) -> list[str]:
        found = []
        for m in self.messages:
            if m.WhichOneof("type") != "delta" or m.delta.WhichOneof("type") != "new_element":
                continue
            element = m.delta.new_element
            if element.WhichOneof("type") == "button" and element.button.label == label:
                found.append(element.button.id)
        return found


class StreamlitSocket:
    def __init__(self, port: int, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(
            f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
            open_timeout=30))
        self.pages: dict[str, str] = {}          # url path -> page_script_hash

    def close(self) -> None:
        self._stack.close()

    def send(self, msg: BackMsg) -> None:
        self.ws.send(msg.SerializeToString())

    def clear_cache(self) -> None:
        self.send(BackMsg(clear_cache=True))

    def run(self, page: str = "", click: str | None = None) -> Run:
        """Run `page` (url path; "" = the default page), pressing the button `click` (widget id),
        and collect the ForwardMsgs until the run has finished."""
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self.pages.get(page, "")
        if click is not None:
            msg.rerun_script.widget_states.widgets.append(WidgetState(id=click, trigger_value=True))
        self.send(msg)
        run = Run()
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no finished run within {self.timeout:.0f} s")
            forward = ForwardMsg()
            forward.ParseFromString(self.ws.recv(timeout=remaining))
            kind = forward.WhichOneof("type")
            if kind == "navigation":
                self.pages.update({p.url_pathname: p.page_script_hash
                                   for p in forward.navigation.app_pages})
            run.messages.append(forward)
            if kind == "script_finished" and forward.script_finished in FINISHED:
                return run


# ---------------------------------------------------------------- the server process, from /proc

def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (its own sockets only, matched by inode)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:          # 0A: LISTEN
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports
