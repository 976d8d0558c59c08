"""One client connection: the version handshake, framing, batched output, and dispatch of each
request through the table from message id to handler (handlers live by domain in v6core.sim.handlers)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from v6core.sim import messages as msg
from v6core.sim.codec import FrameReader, ProtocolError, encode_message, frame_raw, split_fields
from v6core.sim.fields import BadRequest, Fields
from v6core.sim.handlers import HANDLERS
from v6core.sim.handlers.account import AccountRequests
from v6core.sim.handlers.connection import ConnectionRequests
from v6core.sim.handlers.contracts import ContractRequests
from v6core.sim.handlers.history import HistoryRequests
from v6core.sim.handlers.market_data import MarketDataRequests, MarketSub
from v6core.sim.handlers.orders import OrderRequests
from v6core.sim.versions import MIN_CLIENT_VERSION, SERVER_VERSION, UNSUPPORTED_VERSION

if TYPE_CHECKING:
    from v6core.sim.server import SimServer

log = logging.getLogger(__name__)

MAX_WRITE_BUFFER = 64 * 1024 * 1024      # a client that stops reading is dropped past this


class Session(ConnectionRequests, AccountRequests, ContractRequests, MarketDataRequests,
              OrderRequests, HistoryRequests):
    """One client connection: handshake, then a table from message id to handler."""

    version = SERVER_VERSION      # until the handshake negotiates one

    def __init__(self, server: SimServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.subs: dict[int, MarketSub] = {}
        self.snapshots: dict[int, asyncio.TimerHandle] = {}   # reqId -> pending tickSnapshotEnd
        self.account_updates = False
        self.positions_sub = False
        self.pnl_reqs: dict[int, int | None] = {}       # reqId -> conId (None: account PnL)
        self.multi_reqs: set[int] = set()
        self.market_data_type = 1
        self.next_id = 1
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.closed = False
        self.handlers = HANDLERS

    # ---- output, batched per loop iteration
    def send(self, fields: list) -> None:
        if self.closed:
            return
        self._out.append(encode_message(fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and not self.closed:
            data = b"".join(self._out)
            self._out.clear()
            try:
                self.writer.write(data)
            except (ConnectionError, RuntimeError):
                self.close()
                return
            if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                log.warning("sim: client %s is not reading; dropping it", self.client_id)
                self.close()

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(msg.error(req_id, code, message, self.version))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            except RuntimeError:
                pass

    # ---- connection lifecycle
    async def run(self) -> None:
        try:
            await self._handshake()
            framer = FrameReader()
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for payload in framer.feed(data):
                    if self.server.faults.delay:
                        await asyncio.sleep(self.server.faults.delay)
                    self.dispatch(payload)
                    if self.closed:
                        break
        except (ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.info("sim: closing client %s: %s", self.client_id, exc)
        finally:
            self.close()
            self.server.session_ended(self)

    async def _handshake(self) -> None:
        prefix = await self.reader.readexactly(4)
        if prefix != b"API\0":
            raise ProtocolError("client did not start with API\\0")
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        if size > 1024:
            raise ProtocolError("oversized hello")
        hello = (await self.reader.readexactly(size)).decode("ascii", errors="replace")
        match = re.match(r"v(\d+)(?:\.\.(\d+))?", hello)
        if not match:
            raise ProtocolError(f"bad version hello {hello!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")
        if high < MIN_CLIENT_VERSION or low > SERVER_VERSION:
            # Answer in a form the client can read (its own highest version), say why, then close.
            version = max(min(high, SERVER_VERSION), 1)
            code, text = UNSUPPORTED_VERSION
            reason = (f"{text}: client offers v{low}..{high}; this gateway speaks "
                      f"v{MIN_CLIENT_VERSION}..{SERVER_VERSION}")
            self.writer.write(frame_raw(f"{version}\0{stamp}\0".encode()))
            self.writer.write(encode_message(msg.error(-1, code, reason, version)))
            await self.writer.drain()
            raise ProtocolError(f"unsupported client versions {low}..{high}")
        self.version = min(high, SERVER_VERSION)
        self.writer.write(frame_raw(f"{self.version}\0{stamp}\0".encode()))

    def dispatch(self, payload: bytes) -> None:
        try:
            fields = split_fields(payload)
            msg_id = int(fields[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            return
        if self.client_id is None and msg_id != 71:
            self.error(-1, 504, "Not connected")
            return
        try:
            handler(self, Fields(fields))
        except BadRequest as exc:
            self.error(exc.req_id, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the session
            if not isinstance(exc, (ValueError, IndexError, KeyError, TypeError)):
                log.exception("sim: request %s failed", msg_id)
            self.error(-1, 320, f"Error reading request. Message id {msg_id}. "
                                f"Unable to parse data. {type(exc).__name__}")
        self.server.note_id(self, fields)

