"""Proposals (RFC 9420 §12.1), PreSharedKeyID (§8.4) and ProposalOrRef (§12.4).

~~~ tls-presentation
struct {
    ProposalType proposal_type;
    select (Proposal.proposal_type) {
        case add: Add;  case update: Update;  case remove: Remove;
        case psk: PreSharedKey;  case reinit: ReInit;
        case external_init: ExternalInit;
        case group_context_extensions: GroupContextExtensions;
    };
} Proposal;
~~~

Each body struct (`Add`, `Update`, ...) is a class deriving from `Proposal` whose
`encode()`/`decode()` are the bare struct of its RFC section (as the test vectors
serialize them). The tagged union goes through `write_proposal`/`read_proposal`
(`encode_proposal`/`decode_proposal`). A proposal type without a registered class
is a `DecodeError`: its body has no length prefix to skip it by (and §13.5 forbids
GREASE in `proposal_type`). Later specifications add types with
`register_proposal_class`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import DecodeError, LibraryError, ParameterError
from mlsvc.messages.codepoints import (
    ProposalOrRefType,
    ProposalType,
    PSKType,
    ResumptionPSKUsage,
    proposal_or_ref_type_from_wire,
    psk_type_from_wire,
    resumption_usage_from_wire,
)
from mlsvc.messages.extensions import Extensions, read_extensions, write_extensions
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.types import LeafIndex


@dataclass(frozen=True, slots=True)
class PreSharedKeyID(Struct):
    """RFC 9420 §8.4:
    struct {
      PSKType psktype;
      select (PreSharedKeyID.psktype) {
        case external:   opaque psk_id<V>;
        case resumption: ResumptionPSKUsage usage; opaque psk_group_id<V>;
                         uint64 psk_epoch;
      };
      opaque psk_nonce<V>;
    } PreSharedKeyID;
    The arm's fields are None when the other arm is selected (checked at
    construction); use `external(...)` / `resumption(...)` to build one."""

    psktype: PSKType
    psk_nonce: bytes
    psk_id: bytes | None = None
    usage: ResumptionPSKUsage | None = None
    psk_group_id: bytes | None = None
    psk_epoch: int | None = None

    def __post_init__(self) -> None:
        external = self.psktype == PSKType.EXTERNAL
        resumption_fields = (self.usage, self.psk_group_id, self.psk_epoch)
        if external:
            ok = self.psk_id is not None and resumption_fields == (None, None, None)
        else:
            ok = self.psk_id is None and None not in resumption_fields
        if not ok:
            raise ParameterError("PreSharedKeyID: fields do not match psktype")

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> Self:
        return cls(PSKType.EXTERNAL, psk_nonce, psk_id=psk_id)

    @classmethod
    def resumption(
        cls, usage: ResumptionPSKUsage, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes
    ) -> Self:
        return cls(
            PSKType.RESUMPTION, psk_nonce, usage=usage, psk_group_id=psk_group_id,
            psk_epoch=psk_epoch,
        )

    def write(self, w: Writer) -> None:
        w.u8(self.psktype)
        if self.psk_id is not None:
            w.opaque(self.psk_id)
        elif (
            self.usage is not None
            and self.psk_group_id is not None
            and self.psk_epoch is not None
        ):
            w.u8(self.usage)
            w.opaque(self.psk_group_id)
            w.u64(self.psk_epoch)
        else:  # excluded by __post_init__
            raise LibraryError("PreSharedKeyID without its select arm")
        w.opaque(self.psk_nonce)

    @classmethod
    def read(cls, r: Reader) -> Self:
        psktype = psk_type_from_wire(r.u8())
        if psktype == PSKType.EXTERNAL:
            psk_id = r.opaque()
            return cls(psktype, r.opaque(), psk_id=psk_id)
        usage = resumption_usage_from_wire(r.u8())
        group_id = r.opaque()
        epoch = r.u64()
        return cls(psktype, r.opaque(), None, usage, group_id, epoch)


class Proposal(Struct):
    """Base of the proposal bodies; `PROPOSAL_TYPE` is the union's tag (§12.1).
    Decode the tagged union with `read_proposal`, not `Proposal.read`."""

    __slots__ = ()
    PROPOSAL_TYPE: ClassVar[int]

    @property
    def proposal_type(self) -> int:
        return self.PROPOSAL_TYPE

    @classmethod
    def read(cls, r: Reader) -> Self:
        """Each body class reads its bare struct; the base has no layout of its own."""
        raise ParameterError(f"{cls.__name__} is the union: use read_proposal/decode_proposal")


@dataclass(frozen=True, slots=True)
class Add(Proposal):
    """RFC 9420 §12.1.1: struct { KeyPackage key_package; } Add;"""

    key_package: KeyPackage
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.ADD

    def write(self, w: Writer) -> None:
        self.key_package.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(KeyPackage.read(r))


@dataclass(frozen=True, slots=True)
class Update(Proposal):
    """RFC 9420 §12.1.2: struct { LeafNode leaf_node; } Update;"""

    leaf_node: LeafNode
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.UPDATE

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r))


@dataclass(frozen=True, slots=True)
class Remove(Proposal):
    """RFC 9420 §12.1.3: struct { uint32 removed; } Remove;"""

    removed: LeafIndex
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.REMOVE

    def write(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafIndex(r.u32()))


@dataclass(frozen=True, slots=True)
class PreSharedKey(Proposal):
    """RFC 9420 §12.1.4: struct { PreSharedKeyID psk; } PreSharedKey;"""

    psk: PreSharedKeyID
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.PSK

    def write(self, w: Writer) -> None:
        self.psk.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.read(r))


@dataclass(frozen=True, slots=True)
class ReInit(Proposal):
    """RFC 9420 §12.1.5:
    struct { opaque group_id<V>; ProtocolVersion version; CipherSuite cipher_suite;
             Extension extensions<V>; } ReInit;
    (`version` and `cipher_suite` are ints: a ReInit may name newer ones.)"""

    group_id: bytes
    version: int
    cipher_suite: int
    extensions: Extensions
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.REINIT

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u16(self.version)
        w.u16(self.cipher_suite)
        write_extensions(w, self.extensions)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u16(), r.u16(), read_extensions(r))


@dataclass(frozen=True, slots=True)
class ExternalInit(Proposal):
    """RFC 9420 §12.1.6: struct { opaque kem_output<V>; } ExternalInit;"""

    kem_output: bytes
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.EXTERNAL_INIT

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class GroupContextExtensions(Proposal):
    """RFC 9420 §12.1.7: struct { Extension extensions<V>; } GroupContextExtensions;"""

    extensions: Extensions
    PROPOSAL_TYPE: ClassVar[int] = ProposalType.GROUP_CONTEXT_EXTENSIONS

    def write(self, w: Writer) -> None:
        write_extensions(w, self.extensions)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_extensions(r))


_PROPOSAL_CLASSES: dict[int, type[Proposal]] = {
    cls.PROPOSAL_TYPE: cls
    for cls in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions)
}


def register_proposal_class(cls: type[Proposal]) -> None:
    """Make `read_proposal` accept a proposal type defined outside RFC 9420."""
    existing = _PROPOSAL_CLASSES.get(cls.PROPOSAL_TYPE)
    if existing is not None and existing is not cls:
        raise ParameterError(f"proposal type 0x{cls.PROPOSAL_TYPE:04x} already registered")
    _PROPOSAL_CLASSES[cls.PROPOSAL_TYPE] = cls


def write_proposal(w: Writer, proposal: Proposal) -> None:
    """The tagged Proposal union (§12.1)."""
    w.u16(proposal.PROPOSAL_TYPE)
    proposal.write(w)


def read_proposal(r: Reader) -> Proposal:
    """The tagged Proposal union (§12.1); DecodeError for an unregistered type."""
    ptype = r.u16()
    cls = _PROPOSAL_CLASSES.get(ptype)
    if cls is None:
        raise DecodeError(f"unknown proposal type 0x{ptype:04x}")
    return cls.read(r)


def encode_proposal(proposal: Proposal) -> bytes:
    w = Writer()
    write_proposal(w, proposal)
    return bytes(w.buf)


def decode_proposal(data: bytes) -> Proposal:
    r = Reader(bytes(data))
    value = read_proposal(r)
    r.finish()
    return value


@dataclass(frozen=True, slots=True)
class ProposalRef(Struct):
    """RFC 9420 §5.2: HashReference ProposalRef; (opaque<V>), the `reference` arm of
    ProposalOrRef: MakeProposalRef of the AuthenticatedContent carrying the proposal."""

    ref: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.ref)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


ProposalOrRef = Proposal | ProposalRef
"""RFC 9420 §12.4:
struct { ProposalOrRefType type; select (ProposalOrRef.type) {
    case proposal: Proposal proposal; case reference: ProposalRef reference; };
} ProposalOrRef;"""


def write_proposal_or_ref(w: Writer, item: ProposalOrRef) -> None:
    if isinstance(item, ProposalRef):
        w.u8(ProposalOrRefType.REFERENCE)
        item.write(w)
    else:
        w.u8(ProposalOrRefType.PROPOSAL)
        write_proposal(w, item)


def read_proposal_or_ref(r: Reader) -> ProposalOrRef:
    if proposal_or_ref_type_from_wire(r.u8()) == ProposalOrRefType.REFERENCE:
        return ProposalRef.read(r)
    return read_proposal(r)
