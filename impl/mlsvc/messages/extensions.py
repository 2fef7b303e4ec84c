"""Extensions (RFC 9420 §7.2, §13.4) and the typed payloads of §17.3's initial entries.

~~~ tls-presentation
uint16 ExtensionType;
struct {
    ExtensionType extension_type;
    opaque extension_data<V>;
} Extension;
~~~

An `Extension` carries any uint16 type with opaque data: unknown extensions MUST be
ignored in KeyPackage, LeafNode and GroupInfo lists (§13.4), so they are kept as is
and re-encode to the same bytes. The typed payloads (`ApplicationId`,
`RequiredCapabilities`, `ExternalPub`, `ExternalSenders`; `RatchetTreeExtension`
lives in leaf_node.py beside `Node`) are parsed on demand from `extension_data`
with `from_extension` and built with `to_extension`.

Duplicate types in one list are a validation failure (§13.4 "MUST NOT have more
than one extension of any given type"), not a parse failure: `duplicate_types`
reports them for the validation layer.
"""

from __future__ import annotations

import struct as _struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.messages.codepoints import ExtensionType
from mlsvc.messages.credentials import Credential


@dataclass(frozen=True, slots=True)
class Extension(Struct):
    """RFC 9420 §7.2: struct { ExtensionType extension_type; opaque extension_data<V>; }."""

    extension_type: int
    extension_data: bytes

    def write(self, w: Writer) -> None:
        w.u16(self.extension_type)
        w.opaque(self.extension_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.opaque())


Extensions = tuple[Extension, ...]
"""`Extension extensions<V>` as an immutable sequence, in wire order."""


def write_extensions(w: Writer, extensions: Extensions) -> None:
    """Extension extensions<V>;"""
    w.structs(extensions)


def read_extensions(r: Reader) -> Extensions:
    """Extension extensions<V>; (any types, duplicates kept for validation to see)."""
    return tuple(r.vector(Extension.read))


def find_extension(extensions: Iterable[Extension], extension_type: int) -> Extension | None:
    """The first extension of the given type, or None."""
    for ext in extensions:
        if ext.extension_type == extension_type:
            return ext
    return None


def extension_types(extensions: Iterable[Extension]) -> list[int]:
    """The types of a list of extensions, in order."""
    return [ext.extension_type for ext in extensions]


def duplicate_types(extensions: Iterable[Extension]) -> frozenset[int]:
    """Types that occur more than once (§13.4 forbids that)."""
    seen: set[int] = set()
    dup: set[int] = set()
    for ext in extensions:
        if ext.extension_type in seen:
            dup.add(ext.extension_type)
        seen.add(ext.extension_type)
    return frozenset(dup)


class ExtensionPayload(Struct):
    """A typed `extension_data`: `EXTENSION_TYPE`, `to_extension`, `from_extension`."""

    __slots__ = ()
    EXTENSION_TYPE: ClassVar[int]

    def to_extension(self) -> Extension:
        return Extension(self.EXTENSION_TYPE, self.encode())

    @classmethod
    def from_extension(cls, extension: Extension) -> Self:
        """Parse `extension_data`, which must be consumed exactly (DecodeError)."""
        if extension.extension_type != cls.EXTENSION_TYPE:
            raise ParameterError(
                f"extension type 0x{extension.extension_type:04x} is not "
                f"0x{cls.EXTENSION_TYPE:04x} ({cls.__name__})"
            )
        return cls.decode(extension.extension_data)

    @classmethod
    def find_in(cls, extensions: Iterable[Extension]) -> Self | None:
        """Find and parse this payload in a list, or None when absent."""
        ext = find_extension(extensions, cls.EXTENSION_TYPE)
        return None if ext is None else cls.from_extension(ext)


@dataclass(frozen=True, slots=True)
class ApplicationId(ExtensionPayload):
    """RFC 9420 §5.3.3: opaque application_id<V>; (a LeafNode extension, not
    authenticated by the AS)."""

    application_id: bytes
    EXTENSION_TYPE: ClassVar[int] = ExtensionType.APPLICATION_ID

    def write(self, w: Writer) -> None:
        w.opaque(self.application_id)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


def write_u16_list(w: Writer, values: tuple[int, ...]) -> None:
    """uint16 values<V> (any code points, including unknown and GREASE ones)."""
    w.varint(2 * len(values))
    for v in values:
        w.u16(v)


def read_u16_list(r: Reader) -> tuple[int, ...]:
    """uint16 values<V>; an odd byte length is a DecodeError."""
    data = r.opaque()
    if len(data) % 2:
        raise DecodeError("odd length in a vector of uint16")
    return _struct.unpack(f">{len(data) // 2}H", data)


@dataclass(frozen=True, slots=True)
class RequiredCapabilities(ExtensionPayload):
    """RFC 9420 §11.1:
    struct { ExtensionType extension_types<V>; ProposalType proposal_types<V>;
             CredentialType credential_types<V>; } RequiredCapabilities;"""

    extension_types: tuple[int, ...]
    proposal_types: tuple[int, ...]
    credential_types: tuple[int, ...]
    EXTENSION_TYPE: ClassVar[int] = ExtensionType.REQUIRED_CAPABILITIES

    def write(self, w: Writer) -> None:
        write_u16_list(w, self.extension_types)
        write_u16_list(w, self.proposal_types)
        write_u16_list(w, self.credential_types)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_u16_list(r), read_u16_list(r), read_u16_list(r))


@dataclass(frozen=True, slots=True)
class ExternalPub(ExtensionPayload):
    """RFC 9420 §12.4.3.2: struct { HPKEPublicKey external_pub; } ExternalPub;"""

    external_pub: bytes
    EXTENSION_TYPE: ClassVar[int] = ExtensionType.EXTERNAL_PUB

    def write(self, w: Writer) -> None:
        w.opaque(self.external_pub)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class ExternalSender(Struct):
    """RFC 9420 §12.1.8.1:
    struct { SignaturePublicKey signature_key; Credential credential; } ExternalSender;"""

    signature_key: bytes
    credential: Credential

    def write(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), Credential.read(r))


@dataclass(frozen=True, slots=True)
class ExternalSenders(ExtensionPayload):
    """RFC 9420 §12.1.8.1: ExternalSender external_senders<V>; (`sender_index` of an
    `external` Sender indexes this list)."""

    senders: tuple[ExternalSender, ...]
    EXTENSION_TYPE: ClassVar[int] = ExtensionType.EXTERNAL_SENDERS

    def write(self, w: Writer) -> None:
        w.structs(self.senders)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ExternalSender.read)))
