"""Credentials (RFC 9420 §5.3).

~~~ tls-presentation
uint16 CredentialType;
struct { opaque cert_data<V>; } Certificate;
struct {
    CredentialType credential_type;
    select (Credential.credential_type) {
        case basic: opaque identity<V>;
        case x509:  Certificate certificates<V>;
    };
} Credential;
~~~

`Credential` is the abstract base; `BasicCredential` and `X509Credential` are its
variants and encode the whole tagged struct. The body of an unknown credential type
has no length prefix, so it cannot be skipped: decoding it is a `DecodeError`
(§13.5: GREASE values MUST NOT be sent in `Credential.credential_type`). A later
specification may add a variant with `register_credential_class` without RFC 9420
code importing it.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.messages.codepoints import CredentialType


class Credential(Struct):
    """RFC 9420 §5.3 Credential: the tagged union. Read with `Credential.read`."""

    __slots__ = ()
    CREDENTIAL_TYPE: ClassVar[int]

    @property
    def credential_type(self) -> int:
        return self.CREDENTIAL_TYPE

    def write(self, w: Writer) -> None:
        w.u16(self.CREDENTIAL_TYPE)
        self.write_body(w)

    @abstractmethod
    def write_body(self, w: Writer) -> None:
        """The `select` arm for this credential type."""

    @classmethod
    @abstractmethod
    def read_body(cls, r: Reader) -> Self:
        """Read the `select` arm (the tag has been consumed)."""

    @classmethod
    def read(cls, r: Reader) -> Self:
        ctype = r.u16()
        variant = _CREDENTIAL_CLASSES.get(ctype)
        if variant is None:
            raise DecodeError(f"unknown credential type 0x{ctype:04x}")
        value = variant.read_body(r)
        if not isinstance(value, cls):
            raise DecodeError(f"expected a {cls.__name__}, got credential type 0x{ctype:04x}")
        return value


@dataclass(frozen=True, slots=True)
class BasicCredential(Credential):
    """RFC 9420 §5.3 `case basic: opaque identity<V>;` (format defined by the app)."""

    identity: bytes
    CREDENTIAL_TYPE: ClassVar[int] = CredentialType.BASIC

    def write_body(self, w: Writer) -> None:
        w.opaque(self.identity)

    @classmethod
    def read_body(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class Certificate(Struct):
    """RFC 9420 §5.3: struct { opaque cert_data<V>; } Certificate; (one DER cert)."""

    cert_data: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.cert_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class X509Credential(Credential):
    """RFC 9420 §5.3 `case x509: Certificate certificates<V>;`: the chain, end-entity
    certificate first. Certificate validation belongs to the Authentication Service."""

    certificates: tuple[Certificate, ...]
    CREDENTIAL_TYPE: ClassVar[int] = CredentialType.X509

    def write_body(self, w: Writer) -> None:
        w.structs(self.certificates)

    @classmethod
    def read_body(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(Certificate.read)))


_CREDENTIAL_CLASSES: dict[int, type[Credential]] = {
    CredentialType.BASIC: BasicCredential,
    CredentialType.X509: X509Credential,
}


def register_credential_class(cls: type[Credential]) -> None:
    """Make `Credential.read` accept a credential type defined outside RFC 9420."""
    existing = _CREDENTIAL_CLASSES.get(cls.CREDENTIAL_TYPE)
    if existing is not None and existing is not cls:
        raise ParameterError(f"credential type 0x{cls.CREDENTIAL_TYPE:04x} already registered")
    _CREDENTIAL_CLASSES[cls.CREDENTIAL_TYPE] = cls
