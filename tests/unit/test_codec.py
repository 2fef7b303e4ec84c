"""The TLS presentation language codec (RFC 9420 §2.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.codec import Reader, Writer
from mlsvc.errors import DecodeError


@pytest.mark.parametrize(
    ("value", "encoding"),
    [  # RFC 9420 §2.1.2 table of examples
        (0, "00"), (37, "25"), (15293, "7bbd"), (494878333, "9d7f3e7d"), (63, "3f"),
        (64, "4040"), (16383, "7fff"), (16384, "80004000"),
    ],
)
def test_varint_known_encodings(value: int, encoding: str) -> None:
    w = Writer()
    w.varint(value)
    assert w.bytes().hex() == encoding
    r = Reader(bytes.fromhex(encoding))
    assert r.varint() == value
    r.finish()


@pytest.mark.parametrize("bad", ["4025", "80000025", "80003fff", "c000000000000000"])
def test_varint_rejects_non_minimal_and_0b11(bad: str) -> None:
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(bad)).varint()


def test_varint_too_large_to_encode() -> None:
    with pytest.raises(OverflowError):
        Writer().varint(1 << 30)


@given(st.integers(min_value=0, max_value=(1 << 30) - 1))
def test_varint_roundtrip(v: int) -> None:
    w = Writer()
    w.varint(v)
    r = Reader(w.bytes())
    assert r.varint() == v
    r.finish()


@given(st.lists(st.binary(max_size=70), max_size=5))
def test_vector_of_opaque_roundtrip(items: list[bytes]) -> None:
    w = Writer()
    w.vector(items, Writer.opaque)
    r = Reader(w.bytes())
    assert r.vector(Reader.opaque) == items
    r.finish()


def test_truncation_and_trailing_bytes_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        Reader(b"\x05abc").opaque()
    r = Reader(b"\x01a\x00")
    assert r.opaque() == b"a"
    with pytest.raises(DecodeError):
        r.finish()
    # a vector whose items overrun its byte length
    with pytest.raises(DecodeError):
        Reader(b"\x02\x05ab").vector(Reader.opaque)


def test_optional_and_bool_flags() -> None:
    assert Reader(b"\x00").optional(Reader.u8) is None
    assert Reader(b"\x01\x07").optional(Reader.u8) == 7
    with pytest.raises(DecodeError):
        Reader(b"\x02\x07").optional(Reader.u8)
    with pytest.raises(DecodeError):
        Reader(b"\x02").bool()


@given(st.binary(max_size=40))
def test_reader_raises_only_decode_error(data: bytes) -> None:
    r = Reader(data)
    try:
        while r.remaining():
            r.vector(Reader.opaque)
            r.optional(Reader.u16)
            r.u32()
    except DecodeError:
        pass
