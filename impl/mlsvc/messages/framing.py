"""Message framing (RFC 9420 §6): Sender, FramedContent, FramedContentAuthData,
AuthenticatedContent, the to-be-signed/maced encodings (FramedContentTBS,
AuthenticatedContentTBM), the transcript hash inputs (§8.2), PublicMessage (§6.2),
PrivateMessage and its plaintexts and AADs (§6.3).

Theory of operation. The content of a FramedContent or PrivateMessageContent is
`Content = bytes | Proposal | Commit`: bytes is application data, and
`content_type_of(content)` gives the ContentType. Two structs cannot be parsed on
their own because their layout depends on a content type carried outside them:
FramedContentAuthData (its `confirmation_tag` is present iff the content is a
commit, §6.1) and PrivateMessageContent (its content is selected by
`PrivateMessage.content_type`, §6.3.1). They are not `Struct`s: they have `write`
/ `encode` and the classmethods `read_for(r, content_type)` /
`decode_for(data, content_type)`. Every struct that holds one checks at
construction that the `confirmation_tag` matches the content type.

The encryption and MACs that turn these into wire messages are in protection.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.crypto.labels import make_proposal_ref, sign_with_label, verify_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.messages.codepoints import (
    ContentType,
    SenderType,
    WireFormat,
    content_type_from_wire,
    sender_type_from_wire,
)
from mlsvc.messages.commit import Commit
from mlsvc.messages.group_info import GroupContext, read_mls10
from mlsvc.messages.proposals import Proposal, read_proposal, write_proposal
from mlsvc.types import LeafIndex

FRAMED_CONTENT_TBS_LABEL = b"FramedContentTBS"  # RFC 9420 §6.1, §17.6

_INDEXED_SENDERS = (SenderType.MEMBER, SenderType.EXTERNAL)


@dataclass(frozen=True, slots=True)
class Sender(Struct):
    """RFC 9420 §6:
    struct {
        SenderType sender_type;
        select (Sender.sender_type) {
            case member:   uint32 leaf_index;
            case external: uint32 sender_index;
            case new_member_commit:
            case new_member_proposal: struct{};
        };
    } Sender;
    `index` is the leaf_index or sender_index, None for the new_member types."""

    sender_type: SenderType
    index: int | None = None

    def __post_init__(self) -> None:
        if (self.index is not None) != (self.sender_type in _INDEXED_SENDERS):
            raise ParameterError("Sender: index is present iff member or external")

    @classmethod
    def member(cls, leaf_index: LeafIndex) -> Self:
        return cls(SenderType.MEMBER, leaf_index)

    @classmethod
    def external(cls, sender_index: int) -> Self:
        return cls(SenderType.EXTERNAL, sender_index)

    @classmethod
    def new_member_proposal(cls) -> Self:
        return cls(SenderType.NEW_MEMBER_PROPOSAL)

    @classmethod
    def new_member_commit(cls) -> Self:
        return cls(SenderType.NEW_MEMBER_COMMIT)

    @property
    def leaf_index(self) -> LeafIndex:
        """The member's leaf index; ParameterError for other sender types."""
        if self.sender_type != SenderType.MEMBER or self.index is None:
            raise ParameterError(f"sender type {self.sender_type.name} has no leaf index")
        return LeafIndex(self.index)

    @property
    def signs_with_group_context(self) -> bool:
        """FramedContentTBS carries the GroupContext for member and new_member_commit
        senders (§6.1)."""
        return self.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)

    def write(self, w: Writer) -> None:
        w.u8(self.sender_type)
        if self.index is not None:
            w.u32(self.index)

    @classmethod
    def read(cls, r: Reader) -> Self:
        sender_type = sender_type_from_wire(r.u8())
        if sender_type in _INDEXED_SENDERS:
            return cls(sender_type, r.u32())
        return cls(sender_type)


Content = bytes | Proposal | Commit
"""The `select (content_type)` of FramedContent and PrivateMessageContent:
application_data (bytes), a Proposal, or a Commit."""


def content_type_of(content: Content) -> ContentType:
    if isinstance(content, bytes):
        return ContentType.APPLICATION
    if isinstance(content, Commit):
        return ContentType.COMMIT
    return ContentType.PROPOSAL


def write_content(w: Writer, content: Content) -> None:
    """The select arm only (the content type is written by the caller, if at all)."""
    if isinstance(content, bytes):
        w.opaque(content)
    elif isinstance(content, Commit):
        content.write(w)
    else:
        write_proposal(w, content)


def read_content(r: Reader, content_type: ContentType) -> Content:
    if content_type == ContentType.APPLICATION:
        return r.opaque()
    if content_type == ContentType.PROPOSAL:
        return read_proposal(r)
    return Commit.read(r)


@dataclass(frozen=True, slots=True)
class FramedContent(Struct):
    """RFC 9420 §6:
    struct {
        opaque group_id<V>;
        uint64 epoch;
        Sender sender;
        opaque authenticated_data<V>;
        ContentType content_type;
        select (FramedContent.content_type) {
            case application: opaque application_data<V>;
            case proposal:    Proposal proposal;
            case commit:      Commit commit;
        };
    } FramedContent;"""

    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content: Content
    # The bytes this value was decoded from: a received commit is encoded three times
    # (signature, membership tag, transcript hash), and its UpdatePath is O(n) at worst.
    # Not an init field, so dataclasses.replace() never carries stale bytes over.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)

    def write(self, w: Writer) -> None:
        if self._encoded is not None:
            w.fixed(self._encoded)
            return
        w.opaque(self.group_id)
        w.u64(self.epoch)
        self.sender.write(w)
        w.opaque(self.authenticated_data)
        w.u8(content_type_of(self.content))
        write_content(w, self.content)

    @classmethod
    def read(cls, r: Reader) -> Self:
        start = r.pos
        group_id = r.opaque()
        epoch = r.u64()
        sender = Sender.read(r)
        authenticated_data = r.opaque()
        content = read_content(r, content_type_from_wire(r.u8()))
        value = cls(group_id, epoch, sender, authenticated_data, content)
        object.__setattr__(value, "_encoded", bytes(r.data[start:r.pos]))
        return value

    def tbs(self, wire_format: int, context: GroupContext | None) -> bytes:
        """The FramedContentTBS encoding (§6.1); `context` is required for member and
        new_member_commit senders and forbidden for the others."""
        return FramedContentTBS(wire_format, self, context).encode()

    def sign(
        self,
        cs: CipherSuite,
        signature_private_key: bytes,
        wire_format: int,
        context: GroupContext | None,
    ) -> bytes:
        """SignWithLabel(sk, "FramedContentTBS", FramedContentTBS) (§6.1)."""
        return sign_with_label(
            cs, signature_private_key, FRAMED_CONTENT_TBS_LABEL, self.tbs(wire_format, context)
        )

    def verify(
        self,
        cs: CipherSuite,
        signature_key: bytes,
        wire_format: int,
        context: GroupContext | None,
        signature: bytes,
    ) -> bool:
        """VerifyWithLabel(pk, "FramedContentTBS", FramedContentTBS, signature) (§6.1)."""
        return verify_with_label(
            cs, signature_key, FRAMED_CONTENT_TBS_LABEL, self.tbs(wire_format, context),
            signature,
        )


@dataclass(frozen=True, slots=True)
class FramedContentTBS(Struct):
    """RFC 9420 §6.1:
    struct {
        ProtocolVersion version = mls10;
        WireFormat wire_format;
        FramedContent content;
        select (FramedContentTBS.content.sender.sender_type) {
            case member:
            case new_member_commit: GroupContext context;
            case external:
            case new_member_proposal: struct{};
        };
    } FramedContentTBS;"""

    wire_format: int
    content: FramedContent
    context: GroupContext | None

    def __post_init__(self) -> None:
        if (self.context is not None) != self.content.sender.signs_with_group_context:
            raise ParameterError(
                "FramedContentTBS: GroupContext is present iff sender is member or "
                "new_member_commit"
            )

    def write(self, w: Writer) -> None:
        w.u16(1)  # ProtocolVersion.mls10
        w.u16(self.wire_format)
        self.content.write(w)
        if self.context is not None:
            self.context.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_mls10(r, "FramedContentTBS")
        wire_format = r.u16()
        content = FramedContent.read(r)
        context = GroupContext.read(r) if content.sender.signs_with_group_context else None
        return cls(wire_format, content, context)


@dataclass(frozen=True, slots=True)
class FramedContentAuthData:
    """RFC 9420 §6.1:
    struct {
        /* SignWithLabel(., "FramedContentTBS", FramedContentTBS) */
        opaque signature<V>;
        select (FramedContent.content_type) {
            case commit: MAC confirmation_tag;
            case application:
            case proposal: struct{};
        };
    } FramedContentAuthData;
    Parsed with `read_for(r, content_type)`: the tag's presence comes from outside."""

    signature: bytes
    confirmation_tag: bytes | None = None

    def matches(self, content_type: ContentType) -> bool:
        """True iff the confirmation_tag is present exactly for a commit."""
        return (self.confirmation_tag is not None) == (content_type == ContentType.COMMIT)

    def write(self, w: Writer) -> None:
        w.opaque(self.signature)
        if self.confirmation_tag is not None:
            w.opaque(self.confirmation_tag)

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return bytes(w.buf)

    @classmethod
    def read_for(cls, r: Reader, content_type: ContentType) -> FramedContentAuthData:
        signature = r.opaque()
        tag = r.opaque() if content_type == ContentType.COMMIT else None
        return cls(signature, tag)

    @classmethod
    def decode_for(cls, data: bytes, content_type: ContentType) -> FramedContentAuthData:
        r = Reader(bytes(data))
        value = cls.read_for(r, content_type)
        r.finish()
        return value


def _check_auth(auth: FramedContentAuthData, content_type: ContentType, where: str) -> None:
    if not auth.matches(content_type):
        raise ParameterError(f"{where}: confirmation_tag is present iff the content is a commit")


@dataclass(frozen=True, slots=True)
class AuthenticatedContent(Struct):
    """RFC 9420 §6:
    struct { WireFormat wire_format; FramedContent content;
             FramedContentAuthData auth; } AuthenticatedContent;"""

    wire_format: int
    content: FramedContent
    auth: FramedContentAuthData

    def __post_init__(self) -> None:
        _check_auth(self.auth, self.content.content_type, "AuthenticatedContent")

    def write(self, w: Writer) -> None:
        w.u16(self.wire_format)
        self.content.write(w)
        self.auth.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        wire_format = r.u16()
        content = FramedContent.read(r)
        return cls(wire_format, content, FramedContentAuthData.read_for(r, content.content_type))

    def tbs(self, context: GroupContext | None) -> bytes:
        """FramedContentTBS for this content and wire format (§6.1)."""
        return self.content.tbs(self.wire_format, context)

    def verify(self, cs: CipherSuite, signature_key: bytes, context: GroupContext | None) -> bool:
        """The signature in `auth` (§6.1); the confirmation tag is the key schedule's."""
        return self.content.verify(
            cs, signature_key, self.wire_format, context, self.auth.signature
        )

    def tbm(self, context: GroupContext | None) -> bytes:
        """AuthenticatedContentTBM (§6.2), the membership_tag's MAC input."""
        return AuthenticatedContentTBM(
            FramedContentTBS(self.wire_format, self.content, context), self.auth
        ).encode()

    def confirmed_transcript_hash_input(self) -> bytes:
        """ConfirmedTranscriptHashInput (§8.2) of this (commit) content."""
        return ConfirmedTranscriptHashInput(
            self.wire_format, self.content, self.auth.signature
        ).encode()

    def proposal_ref(self, cs: CipherSuite) -> bytes:
        """ProposalRef = MakeProposalRef(encoded AuthenticatedContent) (§5.2)."""
        return make_proposal_ref(cs, self.encode())


@dataclass(frozen=True, slots=True)
class AuthenticatedContentTBM(Struct):
    """RFC 9420 §6.2:
    struct { FramedContentTBS content_tbs; FramedContentAuthData auth; }
    AuthenticatedContentTBM;"""

    content_tbs: FramedContentTBS
    auth: FramedContentAuthData

    def __post_init__(self) -> None:
        _check_auth(self.auth, self.content_tbs.content.content_type, "AuthenticatedContentTBM")

    def write(self, w: Writer) -> None:
        self.content_tbs.write(w)
        self.auth.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        tbs = FramedContentTBS.read(r)
        return cls(tbs, FramedContentAuthData.read_for(r, tbs.content.content_type))


@dataclass(frozen=True, slots=True)
class ConfirmedTranscriptHashInput(Struct):
    """RFC 9420 §8.2:
    struct { WireFormat wire_format; FramedContent content; /* commit */
             opaque signature<V>; } ConfirmedTranscriptHashInput;"""

    wire_format: int
    content: FramedContent
    signature: bytes

    def write(self, w: Writer) -> None:
        w.u16(self.wire_format)
        self.content.write(w)
        w.opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), FramedContent.read(r), r.opaque())


@dataclass(frozen=True, slots=True)
class InterimTranscriptHashInput(Struct):
    """RFC 9420 §8.2: struct { MAC confirmation_tag; } InterimTranscriptHashInput;"""

    confirmation_tag: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.confirmation_tag)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class PublicMessage(Struct):
    """RFC 9420 §6.2:
    struct {
        FramedContent content;
        FramedContentAuthData auth;
        select (PublicMessage.content.sender.sender_type) {
            case member: MAC membership_tag;
            case external:
            case new_member_commit:
            case new_member_proposal: struct{};
        };
    } PublicMessage;"""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: bytes | None
    WIRE_FORMAT: ClassVar[int] = WireFormat.MLS_PUBLIC_MESSAGE

    def __post_init__(self) -> None:
        _check_auth(self.auth, self.content.content_type, "PublicMessage")
        is_member = self.content.sender.sender_type == SenderType.MEMBER
        if (self.membership_tag is not None) != is_member:
            raise ParameterError("PublicMessage: membership_tag is present iff sender is member")

    def write(self, w: Writer) -> None:
        self.content.write(w)
        self.auth.write(w)
        if self.membership_tag is not None:
            w.opaque(self.membership_tag)

    @classmethod
    def read(cls, r: Reader) -> Self:
        content = FramedContent.read(r)
        auth = FramedContentAuthData.read_for(r, content.content_type)
        is_member = content.sender.sender_type == SenderType.MEMBER
        return cls(content, auth, r.opaque() if is_member else None)

    def authenticated_content(self) -> AuthenticatedContent:
        return AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, self.content, self.auth)


@dataclass(frozen=True, slots=True)
class PrivateMessage(Struct):
    """RFC 9420 §6.3:
    struct {
        opaque group_id<V>;
        uint64 epoch;
        ContentType content_type;
        opaque authenticated_data<V>;
        opaque encrypted_sender_data<V>;
        opaque ciphertext<V>;
    } PrivateMessage;"""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes
    WIRE_FORMAT: ClassVar[int] = WireFormat.MLS_PRIVATE_MESSAGE

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)
        w.opaque(self.encrypted_sender_data)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(
            r.opaque(), r.u64(), content_type_from_wire(r.u8()), r.opaque(), r.opaque(),
            r.opaque(),
        )

    def sender_data_aad(self) -> bytes:
        """SenderDataAAD (§6.3.2): the first three fields."""
        return SenderDataAAD(self.group_id, self.epoch, self.content_type).encode()

    def content_aad(self) -> bytes:
        """PrivateContentAAD (§6.3.1)."""
        return PrivateContentAAD(
            self.group_id, self.epoch, self.content_type, self.authenticated_data
        ).encode()


@dataclass(frozen=True, slots=True)
class SenderData(Struct):
    """RFC 9420 §6.3.2:
    struct { uint32 leaf_index; uint32 generation; opaque reuse_guard[4]; } SenderData;"""

    leaf_index: LeafIndex
    generation: int
    reuse_guard: bytes

    def __post_init__(self) -> None:
        if len(self.reuse_guard) != 4:
            raise ParameterError("SenderData: reuse_guard is 4 bytes")

    def write(self, w: Writer) -> None:
        w.u32(self.leaf_index)
        w.u32(self.generation)
        w.fixed(self.reuse_guard)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafIndex(r.u32()), r.u32(), r.fixed(4))


@dataclass(frozen=True, slots=True)
class SenderDataAAD(Struct):
    """RFC 9420 §6.3.2:
    struct { opaque group_id<V>; uint64 epoch; ContentType content_type; } SenderDataAAD;"""

    group_id: bytes
    epoch: int
    content_type: ContentType

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u64(), content_type_from_wire(r.u8()))


@dataclass(frozen=True, slots=True)
class PrivateContentAAD(Struct):
    """RFC 9420 §6.3.1:
    struct { opaque group_id<V>; uint64 epoch; ContentType content_type;
             opaque authenticated_data<V>; } PrivateContentAAD;"""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u64(), content_type_from_wire(r.u8()), r.opaque())


@dataclass(frozen=True, slots=True)
class PrivateMessageContent:
    """RFC 9420 §6.3.1:
    struct {
        select (PrivateMessage.content_type) {
            case application: opaque application_data<V>;
            case proposal:    Proposal proposal;
            case commit:      Commit commit;
        };
        FramedContentAuthData auth;
        opaque padding[length_of_padding];
    } PrivateMessageContent;
    `padding` is the number of zero bytes. Parsed with `read_for(r, content_type)`,
    which takes the rest of the reader as padding and rejects any non-zero byte
    ("the enclosing PrivateMessage MUST be rejected as malformed")."""

    content: Content
    auth: FramedContentAuthData
    padding: int = 0

    def __post_init__(self) -> None:
        _check_auth(self.auth, content_type_of(self.content), "PrivateMessageContent")
        if self.padding < 0:
            raise ParameterError("PrivateMessageContent: negative padding")

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)

    def write(self, w: Writer) -> None:
        write_content(w, self.content)
        self.auth.write(w)
        if self.padding:
            w.fixed(bytes(self.padding))

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return bytes(w.buf)

    @classmethod
    def read_for(cls, r: Reader, content_type: ContentType) -> PrivateMessageContent:
        """Consumes the reader to its end (the rest is padding)."""
        content = read_content(r, content_type)
        auth = FramedContentAuthData.read_for(r, content_type)
        padding = r.fixed(r.remaining())
        if padding.count(0) != len(padding):
            raise DecodeError("PrivateMessageContent: non-zero padding (§6.3.1)")
        return cls(content, auth, len(padding))

    @classmethod
    def decode_for(cls, data: bytes, content_type: ContentType) -> PrivateMessageContent:
        return cls.read_for(Reader(bytes(data)), content_type)
