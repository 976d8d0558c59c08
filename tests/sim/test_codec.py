"""Framing and field encoding (tws_protocol.md §1) without a socket."""

from __future__ import annotations

import math
import struct

import pytest

from v6core.sim.codec import (
    MAX_FRAME, FrameReader, ProtocolError, encode_message, parse_float, parse_int, split_fields,
)


def test_message_is_length_prefixed_and_every_field_nul_terminated():
    data = encode_message([9, 1, 7])
    assert data == struct.pack(">I", 6) + b"9\x001\x007\x00"
    assert split_fields(data[4:]) == ["9", "1", "7"]


def test_values_encode_as_ib_expects():
    """An unset double goes out as TWS writes it (Java's Double.MAX_VALUE), not as an empty field."""
    payload = encode_message([True, False, None, 1.5, "x", 1.7976931348623157e308, 2**31 - 1])[4:]
    assert split_fields(payload) == ["1", "0", "", "1.5", "x", "1.7976931348623157E308", "2147483647"]


def test_reader_reassembles_partial_and_joined_frames():
    stream = encode_message([1, "a"]) + encode_message([2, "bb"]) + encode_message([3])
    reader = FrameReader()
    frames = []
    for i in range(0, len(stream), 3):
        frames += reader.feed(stream[i:i + 3])
    assert [split_fields(f) for f in frames] == [["1", "a"], ["2", "bb"], ["3"]]


def test_oversized_length_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        FrameReader().feed(struct.pack(">I", MAX_FRAME + 1) + b"xx")


@pytest.mark.parametrize("text,expected", [("", None), ("10", 10.0), ("1e-05", 1e-05),
                                           ("1.7976931348623157E308", None)])
def test_numbers_from_the_client(text, expected):
    assert parse_float(text) == expected


def test_infinite_and_ints():
    assert math.isinf(parse_float("Infinite"))
    assert parse_int("") == 0 and parse_int("12") == 12 and parse_int("3.0") == 3
