"""The TLS presentation language as RFC 9420 §2.1 uses it.

- Integers are big-endian, fixed width (uint8, uint16, uint32, uint64).
- Variable-length vectors (`opaque data<V>`, `T items<V>`) carry a QUIC-style varint
  length prefix (RFC 9420 §2.1.2): 1, 2 or 4 bytes, top two bits giving the size. The
  length MUST be encoded in the minimum number of bytes, and the 0b11 prefix is
  invalid; both are rejected here.
- `optional<T>` is a uint8 presence flag (0 or 1) followed by T when present.

`Reader` consumes a buffer and raises only `DecodeError`; `Reader.finish()` enforces
that a top-level structure consumed the input exactly. `Writer` appends to a bytearray.
Wire structs implement `Encodable`: `write(w)` and a classmethod `read(r)`, with the
helpers `encode()` and `decode(data)` (the latter exact-consumption) from `Struct`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, Self, TypeVar

from mlsvc.errors import DecodeError

T = TypeVar("T")

MAX_VARINT = (1 << 30) - 1


class Writer:
    """Accumulates an encoding."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> None:
        self.buf += v.to_bytes(1, "big")

    def u16(self, v: int) -> None:
        self.buf += v.to_bytes(2, "big")

    def u32(self, v: int) -> None:
        self.buf += v.to_bytes(4, "big")

    def u64(self, v: int) -> None:
        self.buf += v.to_bytes(8, "big")

    def varint(self, v: int) -> None:
        """RFC 9420 §2.1.2 variable-size vector length, minimal encoding."""
        if v < 0x40:
            self.buf.append(v)
        elif v < 0x4000:
            self.buf += (v | 0x4000).to_bytes(2, "big")
        elif v <= MAX_VARINT:
            self.buf += (v | 0x80000000).to_bytes(4, "big")
        else:
            raise OverflowError("vector length exceeds 2^30 - 1")

    def fixed(self, data: bytes) -> None:
        """opaque data[N]: the caller guarantees the length."""
        self.buf += data

    def opaque(self, data: bytes) -> None:
        """opaque data<V>."""
        self.varint(len(data))
        self.buf += data

    def vector(self, items: Sequence[T], write_item: Callable[[Writer, T], None]) -> None:
        """T items<V>: the length prefix counts bytes, not items."""
        inner = Writer()
        for item in items:
            write_item(inner, item)
        self.opaque(bytes(inner.buf))

    def structs(self, items: Sequence[Encodable]) -> None:
        """A vector<V> of wire structs."""
        inner = Writer()
        for item in items:
            item.write(inner)
        self.opaque(bytes(inner.buf))

    def optional(self, item: Encodable | None) -> None:
        if item is None:
            self.u8(0)
        else:
            self.u8(1)
            item.write(self)

    def optional_with(self, item: T | None, write_item: Callable[[Writer, T], None]) -> None:
        if item is None:
            self.u8(0)
        else:
            self.u8(1)
            write_item(self, item)

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """Consumes an encoding; every failure is a DecodeError."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(f"truncated: need {n} bytes, have {self.end - self.pos}")
        start = self.pos
        self.pos += n
        return self.data[start : self.pos]

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "big")

    def varint(self) -> int:
        """RFC 9420 §2.1.2: reject the 0b11 prefix and non-minimal encodings."""
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            v = ((first & 0x3F) << 8) | self.u8()
            if v < 0x40:
                raise DecodeError("non-minimal varint length")
            return v
        if prefix == 2:
            rest = self._take(3)
            v = ((first & 0x3F) << 24) | int.from_bytes(rest, "big")
            if v < 0x4000:
                raise DecodeError("non-minimal varint length")
            return v
        raise DecodeError("invalid varint prefix 0b11")

    def fixed(self, n: int) -> bytes:
        return self._take(n)

    def opaque(self) -> bytes:
        return self._take(self.varint())

    def sub(self) -> Reader:
        """A reader over the next <V> vector's contents, which must be consumed exactly."""
        n = self.varint()
        if self.pos + n > self.end:
            raise DecodeError(f"truncated vector: need {n} bytes, have {self.end - self.pos}")
        r = Reader(self.data, self.pos, self.pos + n)
        self.pos += n
        return r

    def vector(self, read_item: Callable[[Reader], T]) -> list[T]:
        """T items<V>: items are read until the byte length is consumed exactly."""
        r = self.sub()
        out: list[T] = []
        while r.pos < r.end:
            out.append(read_item(r))
        return out

    def optional(self, read_item: Callable[[Reader], T]) -> T | None:
        flag = self.u8()
        if flag == 0:
            return None
        if flag == 1:
            return read_item(self)
        raise DecodeError(f"invalid optional presence flag {flag}")

    def bool(self) -> bool:
        flag = self.u8()
        if flag > 1:
            raise DecodeError(f"invalid boolean {flag}")
        return flag == 1

    def finish(self) -> None:
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} trailing bytes")


class Encodable(Protocol):
    def write(self, w: Writer) -> None: ...


class Struct(ABC):
    """Base of wire structs: `encode()` and exact-consumption `decode()`.

    Subclasses implement `write(self, w)` and `read(cls, r)`.
    """

    __slots__ = ()
    TLS: ClassVar[str] = ""

    @abstractmethod
    def write(self, w: Writer) -> None: ...

    @classmethod
    @abstractmethod
    def read(cls, r: Reader) -> Self: ...

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return bytes(w.buf)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(bytes(data))
        value = cls.read(r)
        r.finish()
        return value


def write_memoized(w: Writer, owner: object, slot: str,
                   encode: Callable[[Writer], None]) -> None:
    """Write what `encode` writes, computed once per (frozen) value and kept in its field
    `slot`, which must be a non-init field defaulting to None so dataclasses.replace()
    never carries stale bytes over."""
    cached = getattr(owner, slot)
    if cached is None:
        inner = Writer()
        encode(inner)
        cached = bytes(inner.buf)
        object.__setattr__(owner, slot, cached)
    w.fixed(cached)


def encode_opaque(data: bytes) -> bytes:
    w = Writer()
    w.opaque(data)
    return bytes(w.buf)


def decode_exact(data: bytes, read: Callable[[Reader], T]) -> T:
    r = Reader(bytes(data))
    value = read(r)
    r.finish()
    return value


def checked_enum(enum_cls: Any, value: int, what: str) -> Any:
    """Map a wire integer to an IntEnum member, or raise DecodeError."""
    try:
        return enum_cls(value)
    except ValueError:
        raise DecodeError(f"unknown {what} {value}") from None
