"""Code points of RFC 9420 wire structs, and which of them are open or closed.

Two kinds of enumerations appear on the wire:

Closed enums (a TLS `enum { ..., (255) }` with no IANA registry): an unknown value
cannot be interpreted and the enclosing struct is malformed, so decoding raises
`DecodeError`. The reserved value 0 is never valid on the wire.
  ContentType (§6), SenderType (§6), LeafNodeSource (§7.2), NodeType (§7.8),
  PSKType and ResumptionPSKUsage (§8.4), ProposalOrRefType (§12.4).

Registries (`uint16` with an IANA registry, §17): values unknown to this library
may legitimately appear, so they are carried as plain `int` wherever RFC 9420 says
they must be accepted or ignored, and compared against the IntEnum constants below:
  - ExtensionType: every `Extension` (§13.4: unknown extensions in KeyPackage,
    LeafNode and GroupInfo extension lists MUST be ignored, so they are kept as
    opaque `extension_data`), Capabilities.extensions, RequiredCapabilities.
  - ProposalType, CredentialType, CipherSuite, ProtocolVersion: in
    Capabilities / RequiredCapabilities lists (§7.2: "unknown values in
    `capabilities` MUST be ignored"; GREASE §13.5).
  - CipherSuite in KeyPackage, GroupContext, ReInit and Welcome, and
    ProtocolVersion in KeyPackage and ReInit: carried as int; rejecting an
    unsupported suite or version is a processing decision (UnsupportedError /
    ValidationError), not a parse failure. ReInit may name a newer version (§12.1.5).
  - WireFormat in AuthenticatedContent / FramedContentTBS: carried as int.
But where the value selects the layout of what follows and no length prefix
delimits it, an unknown value cannot be skipped and is a `DecodeError`:
  - Proposal.proposal_type (§12.1; GREASE MUST NOT be sent there, §13.5),
  - Credential.credential_type (§5.3; idem),
  - MLSMessage.wire_format (§6),
  - MLSMessage.version and GroupContext.version (`version = mls10`, §6, §8.1).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

from mlsvc.errors import DecodeError


class ProtocolVersion(IntEnum):
    """RFC 9420 §6: enum { reserved(0), mls10(1), (65535) } ProtocolVersion;"""

    MLS10 = 1


class ContentType(IntEnum):
    """RFC 9420 §6: enum { reserved(0), application(1), proposal(2), commit(3), (255) }."""

    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    """RFC 9420 §6: enum { reserved(0), member(1), external(2), new_member_proposal(3),
    new_member_commit(4), (255) } SenderType;"""

    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


class WireFormat(IntEnum):
    """RFC 9420 §17.2 MLS Wire Formats registry (uint16)."""

    MLS_PUBLIC_MESSAGE = 0x0001
    MLS_PRIVATE_MESSAGE = 0x0002
    MLS_WELCOME = 0x0003
    MLS_GROUP_INFO = 0x0004
    MLS_KEY_PACKAGE = 0x0005


class ExtensionType(IntEnum):
    """RFC 9420 §17.3 MLS Extension Types registry (uint16)."""

    APPLICATION_ID = 0x0001
    RATCHET_TREE = 0x0002
    REQUIRED_CAPABILITIES = 0x0003
    EXTERNAL_PUB = 0x0004
    EXTERNAL_SENDERS = 0x0005


class ProposalType(IntEnum):
    """RFC 9420 §17.4 MLS Proposal Types registry (uint16)."""

    ADD = 0x0001
    UPDATE = 0x0002
    REMOVE = 0x0003
    PSK = 0x0004
    REINIT = 0x0005
    EXTERNAL_INIT = 0x0006
    GROUP_CONTEXT_EXTENSIONS = 0x0007


class CredentialType(IntEnum):
    """RFC 9420 §17.5 MLS Credential Types registry (uint16)."""

    BASIC = 0x0001
    X509 = 0x0002


class LeafNodeSource(IntEnum):
    """RFC 9420 §7.2: enum { reserved(0), key_package(1), update(2), commit(3), (255) }."""

    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


class NodeType(IntEnum):
    """RFC 9420 §7.8: enum { reserved(0), leaf(1), parent(2), (255) } NodeType;"""

    LEAF = 1
    PARENT = 2


class PSKType(IntEnum):
    """RFC 9420 §8.4: enum { reserved(0), external(1), resumption(2), (255) } PSKType;"""

    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    """RFC 9420 §8.4: enum { reserved(0), application(1), reinit(2), branch(3), (255) }."""

    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


class ProposalOrRefType(IntEnum):
    """RFC 9420 §12.4: enum { reserved(0), proposal(1), reference(2), (255) }."""

    PROPOSAL = 1
    REFERENCE = 2


# RFC 9420 §13.5: values reserved for GREASE in every registry.
GREASE_VALUES: frozenset[int] = frozenset(0x0A0A + 0x1010 * i for i in range(15))


def is_grease(value: int) -> bool:
    """True for the 15 GREASE code points of RFC 9420 §13.5."""
    return value in GREASE_VALUES


# RFC 9420 §7.2: "default" proposal and extension types, which MUST NOT be listed
# in Capabilities (and need not be in RequiredCapabilities, §11.1).
DEFAULT_PROPOSAL_TYPES: frozenset[int] = frozenset(ProposalType)
DEFAULT_EXTENSION_TYPES: frozenset[int] = frozenset(ExtensionType)

# RFC 9420 §12.1.8 / §17.4 "Ext" column: proposal types an `external` sender may send.
EXTERNAL_SENDER_PROPOSAL_TYPES: frozenset[int] = frozenset(
    {
        ProposalType.ADD,
        ProposalType.REMOVE,
        ProposalType.PSK,
        ProposalType.REINIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)

# RFC 9420 §12.4 / §17.4 "Path" column: proposal types that require an UpdatePath.
PATH_REQUIRED_PROPOSAL_TYPES: frozenset[int] = frozenset(
    {
        ProposalType.UPDATE,
        ProposalType.REMOVE,
        ProposalType.EXTERNAL_INIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)

E = TypeVar("E", bound=IntEnum)


def closed_enum(enum_cls: type[E], what: str) -> Callable[[int], E]:
    """A decoder for a closed enum: a dict lookup, DecodeError for unknown or reserved
    values (see the module docstring for which enums are closed)."""
    table: dict[int, E] = {int(m): m for m in enum_cls}

    def decode(value: int) -> E:
        member = table.get(value)
        if member is None:
            raise DecodeError(f"unknown {what} {value}")
        return member

    return decode


content_type_from_wire = closed_enum(ContentType, "content type")
sender_type_from_wire = closed_enum(SenderType, "sender type")
leaf_node_source_from_wire = closed_enum(LeafNodeSource, "leaf node source")
node_type_from_wire = closed_enum(NodeType, "node type")
psk_type_from_wire = closed_enum(PSKType, "PSK type")
resumption_usage_from_wire = closed_enum(ResumptionPSKUsage, "resumption PSK usage")
proposal_or_ref_type_from_wire = closed_enum(ProposalOrRefType, "ProposalOrRef type")
