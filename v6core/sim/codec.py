"""TWS socket framing and field encoding (tws_protocol.md §1).

Every frame is a 4-byte big-endian length followed by NUL-terminated UTF-8 fields.
The client's hello (`API\\0` + one frame without NUL terminator) is handled by the session.
"""

from __future__ import annotations

import math
import struct
from typing import Iterable

MAX_FRAME = 16 * 1024 * 1024          # a length beyond this is garbage, not a message
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"   # Java's Double.MAX_VALUE, as TWS writes it

_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent bytes that cannot be a TWS frame; the connection must close."""


def encode_field(value: object) -> str:
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == UNSET_DOUBLE:
            return UNSET_DOUBLE_TEXT
        return repr(value)
    return str(value)


def encode_message(fields: Iterable[object]) -> bytes:
    payload = "".join(encode_field(f) + "\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


def frame_raw(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


class FrameReader:
    """Re-frames a byte stream: feed() any chunk, get back the complete frames' payloads."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame length {size} exceeds {MAX_FRAME}")
            if len(buf) - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4: pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return frames


def split_fields(payload: bytes) -> list[str]:
    """Payload -> fields; the final empty element (after the last NUL) is dropped."""
    text = payload.decode("utf-8", errors="strict")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_float(text: str, default: float | None = None) -> float | None:
    """Numbers from ib_async arrive in str() form; empty means unset."""
    if text == "":
        return default
    if text == "Infinite":
        return math.inf
    value = float(text)
    if value == UNSET_DOUBLE:
        return default
    return value


def parse_int(text: str, default: int = 0) -> int:
    if text == "":
        return default
    return int(float(text))


def parse_bool(text: str) -> bool:
    return text not in ("", "0", "false", "False")
