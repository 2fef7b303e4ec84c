"""What the delivery service reads from the wire: public fields only.

A server that relays MLS sees every byte it relays but holds no group secret. These
helpers parse exactly what such a server can read in clear and nothing more:

- a handshake or application message (RFC 9420 §6): the wire format, and from the
  header `group_id`, `epoch`, `content_type`; for a PublicMessage also the sender
  type (§6: FramedContent is in clear). A PrivateMessage's sender is encrypted
  (§6.3.2), so the DS never knows which leaf sent it;
- a KeyPackage (§10): its KeyPackageRef, which the DS computes itself (§5.2);
- a Welcome (§12.4.3.1): the `new_member` KeyPackageRef of each EncryptedGroupSecrets
  (the GroupInfo is encrypted; the DS never learns the group or epoch from it);
- a GroupInfo (§12.4.3): `group_context.group_id` and `.epoch` (a GroupInfo published
  for external joins is signed but not encrypted).

KeyPackages, Welcomes and GroupInfos are taken either as an MLSMessage (§6, the way
they travel) or as the bare struct. Bytes that parse as neither raise the codec's
DecodeError; a well-formed message of the wrong kind raises UnacceptableMessage.
Nothing here verifies a signature: the DS orders and routes, the clients judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from mlsvc.crypto.suites import get_suite
from mlsvc.ds.errors import UnacceptableMessage
from mlsvc.errors import DecodeError
from mlsvc.messages.codepoints import ContentType, SenderType, WireFormat
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.welcome import Welcome


class RatchetType(IntEnum):
    """draft-00 §5.9: enum { reserved(0), application(1), handshake(2), (255) }.

    The scope of a generation ID: the secret-tree ratchet that encrypted the
    PrivateMessage, read from its clear `content_type` (application -> application
    ratchet, proposal or commit -> handshake ratchet, RFC 9420 §9.1). The same code
    points as mlsvc.vc.codepoints.RatchetType, repeated here because the DS sits beside
    the draft code, not above it (it must not import mlsvc.vc)."""

    APPLICATION = 1
    HANDSHAKE = 2


def ratchet_type_of(content_type: ContentType) -> RatchetType:
    """RFC 9420 §9.1: application data uses the application ratchet, proposals and
    commits the handshake ratchet."""
    if content_type == ContentType.APPLICATION:
        return RatchetType.APPLICATION
    return RatchetType.HANDSHAKE


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The clear header of a PublicMessage or PrivateMessage (RFC 9420 §6)."""

    wire_format: WireFormat
    group_id: bytes
    epoch: int
    content_type: ContentType
    sender_type: SenderType | None  # PublicMessage only; a PrivateMessage hides it

    @property
    def is_commit(self) -> bool:
        return self.content_type == ContentType.COMMIT

    @property
    def is_external_commit(self) -> bool:
        """RFC 9420 §12.4.3.2: an external commit is a PublicMessage commit whose sender
        is new_member_commit (§6.1: it is never encrypted)."""
        return self.is_commit and self.sender_type == SenderType.NEW_MEMBER_COMMIT

    @property
    def from_non_member(self) -> bool:
        """A PublicMessage whose sender is not a member by construction (§6): an
        external sender (§12.1.8.1), a new_member_proposal (§12.1.8) or an external
        commit (§12.4.3.2)."""
        return self.sender_type in (
            SenderType.EXTERNAL, SenderType.NEW_MEMBER_PROPOSAL, SenderType.NEW_MEMBER_COMMIT
        )


def read_header(message: bytes) -> MessageHeader:
    """Parse an MLSMessage carrying a PublicMessage or PrivateMessage and return its
    clear header. DecodeError if it does not parse; UnacceptableMessage
    ("wrong-wire-format") for a Welcome, GroupInfo or KeyPackage."""
    body = MLSMessage.decode(message).body
    if isinstance(body, PublicMessage):
        c = body.content
        return MessageHeader(WireFormat.MLS_PUBLIC_MESSAGE, c.group_id, c.epoch,
                             c.content_type, c.sender.sender_type)
    if isinstance(body, PrivateMessage):
        return MessageHeader(WireFormat.MLS_PRIVATE_MESSAGE, body.group_id, body.epoch,
                             body.content_type, None)
    raise UnacceptableMessage(
        "wrong-wire-format",
        f"only PublicMessage and PrivateMessage are submitted to a group, not wire "
        f"format 0x{body.WIRE_FORMAT:04x} (RFC 9420 §6)")


_Body = TypeVar("_Body", KeyPackage, Welcome, GroupInfo)


def _framed_or_bare(data: bytes, cls: type[_Body]) -> _Body:
    """`data` as an MLSMessage whose body is a `cls`, or as a bare `cls`."""
    try:
        body = MLSMessage.decode(data).body
    except DecodeError as framed_error:
        try:
            return cls.decode(data)
        except DecodeError:
            raise framed_error from None
    if not isinstance(body, cls):
        raise UnacceptableMessage(
            "wrong-wire-format",
            f"expected {cls.__name__}, got wire format 0x{body.WIRE_FORMAT:04x}")
    return body


def key_package_ref(data: bytes) -> bytes:
    """RFC 9420 §5.2: KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference",
    KeyPackage) with the hash of the KeyPackage's own cipher suite. UnsupportedError
    for a suite this library does not implement."""
    kp = _framed_or_bare(data, KeyPackage)
    return kp.ref(get_suite(kp.cipher_suite))


def welcome_refs(data: bytes) -> tuple[bytes, ...]:
    """RFC 9420 §12.4.3.1: the `new_member` KeyPackageRef of every EncryptedGroupSecrets,
    in the order the Welcome lists them."""
    return tuple(s.new_member for s in _framed_or_bare(data, Welcome).secrets)


def group_info_id(data: bytes) -> tuple[bytes, int]:
    """RFC 9420 §12.4.3: (group_id, epoch) of a GroupInfo's GroupContext."""
    ctx = _framed_or_bare(data, GroupInfo).group_context
    return ctx.group_id, ctx.epoch
