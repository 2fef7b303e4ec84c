"""Message protection, RFC 9420 §6.1-§6.3.

Theory of operation. Outgoing content is signed into an `AuthenticatedContent`
(`sign_content`), then framed either as a PublicMessage (`protect_public`: membership
tag for member senders, §6.2) or as a PrivateMessage (`protect_private`: content
encrypted under the sender's secret-tree key with the reuse guard XORed into the
nonce, sender data encrypted under a key derived from a sample of that ciphertext,
§6.3).

Incoming messages pass typed stages so a caller cannot skip a check (OpenMLS habit):
`unprotect_public` / `unprotect_private` authenticate the framing (membership tag, or
AEAD) and return an `UnverifiedContent`; only `verify_signature` turns it into a
`VerifiedContent`, which is what the group engine accepts.

The reuse guard (§6.3.1) is random by default. A virtual client must choose it from the
key-schedule nonce (draft-ietf-mls-virtual-clients-00 §5.6): pass a `ReuseGuardSource`,
which is called with the nonce and generation before encryption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import CryptoError, DecodeError, ParameterError, ValidationError
from mlsvc.messages.codepoints import ContentType, SenderType, WireFormat
from mlsvc.messages.framing import (
    AuthenticatedContent,
    Content,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    content_type_of,
)
from mlsvc.messages.group_info import GroupContext
from mlsvc.schedule.key_schedule import (
    membership_tag,
    sender_data_key_nonce,
    verify_membership_tag,
)
from mlsvc.tree.secret_tree import RatchetType, SecretTree
from mlsvc.types import LeafIndex

REUSE_GUARD_LENGTH = 4  # RFC 9420 §6.3.2: opaque reuse_guard[4]


class ReuseGuardSource(Protocol):
    """Chooses the 4-byte reuse guard from the key-schedule nonce and generation."""

    def __call__(self, key_schedule_nonce: bytes, generation: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class UnverifiedContent:
    """Framing authenticated (membership tag or AEAD), signature not yet checked."""

    content: AuthenticatedContent
    sender_data: SenderData | None = None  # present for PrivateMessage
    # the secret tree's nonce for (sender, ratchet, generation) before the reuse-guard
    # XOR (PrivateMessage only): draft-ietf-mls-virtual-clients-00 §5.8 / Q5 needs it
    key_schedule_nonce: bytes | None = None


@dataclass(frozen=True, slots=True)
class VerifiedContent:
    """Content whose signature verified under the sender's key (§6.1)."""

    content: AuthenticatedContent
    sender_data: SenderData | None = None
    key_schedule_nonce: bytes | None = None


def ratchet_type_for(content_type: ContentType) -> RatchetType:
    """§9.1: application messages use the application ratchet, others the handshake one."""
    return RatchetType.APPLICATION if content_type == ContentType.APPLICATION else (
        RatchetType.HANDSHAKE
    )


def sign_content(
    cs: CipherSuite,
    signature_private_key: bytes,
    wire_format: WireFormat,
    content: FramedContent,
    context: GroupContext | None,
    confirmation_tag: bytes | None = None,
) -> AuthenticatedContent:
    """§6.1: sign FramedContentTBS; the confirmation tag is added for commits (the
    caller computes it after the signature, from the new epoch, §8.2). The GroupContext
    enters the TBS only for member and new_member_commit senders (§6.1)."""
    if not content.sender.signs_with_group_context:
        context = None
    signature = content.sign(cs, signature_private_key, wire_format, context)
    return AuthenticatedContent(
        wire_format, content, FramedContentAuthData(signature, confirmation_tag)
    )


def verify_signature(
    cs: CipherSuite,
    unverified: UnverifiedContent,
    signature_key: bytes,
    context: GroupContext | None,
) -> VerifiedContent:
    """§6.1: VerifyWithLabel over FramedContentTBS; CryptoError if it fails. The
    GroupContext is used only for senders whose TBS includes it (member and
    new_member_commit)."""
    ac = unverified.content
    if not ac.content.sender.signs_with_group_context:
        context = None
    if not ac.verify(cs, signature_key, context):
        raise CryptoError("FramedContent signature does not verify")
    return VerifiedContent(ac, unverified.sender_data, unverified.key_schedule_nonce)


# --- PublicMessage (§6.2) ---------------------------------------------------------------


def protect_public(
    cs: CipherSuite,
    content: AuthenticatedContent,
    membership_key: bytes | None,
    context: GroupContext,
) -> PublicMessage:
    """§6.2: a PublicMessage; member senders get a membership tag over
    AuthenticatedContentTBM. Application data is refused: "Application messages MUST
    be protected as PrivateMessage" (§6.2 via §7 of the architecture; §6.2 forbids
    application content in PublicMessage)."""
    if content.wire_format != WireFormat.MLS_PUBLIC_MESSAGE:
        raise ParameterError("content was signed for another wire format")
    if content.content.content_type == ContentType.APPLICATION:
        raise ParameterError("application data cannot be sent as a PublicMessage (§6.2)")
    tag = None
    if content.content.sender.sender_type == SenderType.MEMBER:
        if membership_key is None:
            raise ParameterError("a member's PublicMessage needs the membership key")
        tag = membership_tag(cs, membership_key, content.tbm(context))
    return PublicMessage(content.content, content.auth, tag)


def unprotect_public(
    cs: CipherSuite,
    message: PublicMessage,
    membership_key: bytes,
    context: GroupContext,
) -> UnverifiedContent:
    """§6.2: check group, epoch and content type, then the membership tag (constant
    time) for member senders."""
    content = message.content
    if content.group_id != context.group_id:
        raise ValidationError("FRAME-GROUP", "PublicMessage for another group")
    if content.content_type == ContentType.APPLICATION:
        raise ValidationError("FRAME-PUB-APP", "application data in a PublicMessage (§6.2)")
    ac = message.authenticated_content()
    if content.sender.sender_type == SenderType.MEMBER:
        if message.membership_tag is None:  # pragma: no cover - the struct enforces it
            raise DecodeError("member PublicMessage without membership tag")
        verify_membership_tag(cs, membership_key, ac.tbm(context), message.membership_tag)
    return UnverifiedContent(ac)


# --- PrivateMessage (§6.3) --------------------------------------------------------------


def _xor_reuse_guard(nonce: bytes, reuse_guard: bytes) -> bytes:
    """§6.3.1: the first four bytes of the nonce are XORed with the reuse guard."""
    head = bytes(a ^ b for a, b in zip(nonce[:REUSE_GUARD_LENGTH], reuse_guard, strict=True))
    return head + nonce[REUSE_GUARD_LENGTH:]


def protect_private(
    cs: CipherSuite,
    content: AuthenticatedContent,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    rng: RandomSource,
    *,
    padding: int = 0,
    reuse_guard: ReuseGuardSource | None = None,
    retain_key: bool = False,
) -> PrivateMessage:
    """§6.3: encrypt `content` (signed for the private wire format, member sender).
    `retain_key`: keep the generation's key (SecretTree.next_key)."""
    fc = content.content
    if content.wire_format != WireFormat.MLS_PRIVATE_MESSAGE:
        raise ParameterError("content was signed for another wire format")
    if fc.sender.sender_type != SenderType.MEMBER:
        raise ParameterError("only members send PrivateMessages (§6.3)")
    leaf = fc.sender.leaf_index
    content_type = fc.content_type
    generation, key, nonce = secret_tree.next_key(leaf, ratchet_type_for(content_type),
                                                  retain=retain_key)
    guard = rng(REUSE_GUARD_LENGTH) if reuse_guard is None else reuse_guard(nonce, generation)
    if len(guard) != REUSE_GUARD_LENGTH:
        raise ParameterError(f"reuse guard must be {REUSE_GUARD_LENGTH} bytes")
    plaintext = PrivateMessageContent(fc.content, content.auth, padding).encode()
    shell = PrivateMessage(fc.group_id, fc.epoch, content_type, fc.authenticated_data, b"", b"")
    ciphertext = cs.aead.seal(key, _xor_reuse_guard(nonce, guard), shell.content_aad(),
                              plaintext)
    sender_data = SenderData(leaf, generation, guard).encode()
    sd_key, sd_nonce = sender_data_key_nonce(cs, sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(fc.group_id, fc.epoch, content_type).encode()
    encrypted_sender_data = cs.aead.seal(sd_key, sd_nonce, sd_aad, sender_data)
    return PrivateMessage(fc.group_id, fc.epoch, content_type, fc.authenticated_data,
                          encrypted_sender_data, ciphertext)


def decrypt_sender_data(
    cs: CipherSuite, message: PrivateMessage, sender_data_secret: bytes
) -> SenderData:
    """§6.3.2: decrypt and parse SenderData (no check against the tree yet)."""
    sd_key, sd_nonce = sender_data_key_nonce(cs, sender_data_secret, message.ciphertext)
    plain = cs.aead.open(sd_key, sd_nonce, message.sender_data_aad(),
                         message.encrypted_sender_data)
    return SenderData.decode(plain)


def unprotect_private(
    cs: CipherSuite,
    message: PrivateMessage,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    context: GroupContext,
    *,
    consume: bool = True,
) -> UnverifiedContent:
    """§6.3.2: decrypt sender data, then the content with the sender's ratchet key
    for that generation. The key is consumed only after the AEAD succeeds, so a forged
    message cannot burn a key; with `consume=False` it is not consumed at all, and the
    caller consumes it (`consume_private_key`) once the signature verifies, so even a
    group member's forgery cannot burn the true sender's key. The caller checks that the
    sender's leaf is not blank (§6.3.2) before verifying the signature with that leaf's
    key."""
    if message.group_id != context.group_id:
        raise ValidationError("FRAME-GROUP", "PrivateMessage for another group")
    sender_data = decrypt_sender_data(cs, message, sender_data_secret)
    leaf = LeafIndex(sender_data.leaf_index)
    if leaf >= secret_tree.leaf_count:
        raise ValidationError("FRAME-SENDER-LEAF", f"sender leaf {leaf} outside the tree")
    rtype = ratchet_type_for(message.content_type)
    key, nonce = secret_tree.peek_key(leaf, rtype, sender_data.generation)
    plain = cs.aead.open(key, _xor_reuse_guard(nonce, sender_data.reuse_guard),
                         message.content_aad(), message.ciphertext)
    pmc = PrivateMessageContent.decode_for(plain, message.content_type)
    if consume:
        secret_tree.consume_key(leaf, rtype, sender_data.generation)
    fc = FramedContent(message.group_id, message.epoch, Sender.member(leaf),
                       message.authenticated_data, pmc.content)
    ac = AuthenticatedContent(WireFormat.MLS_PRIVATE_MESSAGE, fc, pmc.auth)
    return UnverifiedContent(ac, sender_data, nonce)


def consume_private_key(secret_tree: SecretTree, verified: VerifiedContent) -> None:
    """Delete the ratchet key a verified PrivateMessage used (§9.2)."""
    sd = verified.sender_data
    if sd is None:
        raise ParameterError("not a PrivateMessage")
    rtype = ratchet_type_for(verified.content.content.content_type)
    secret_tree.consume_key(LeafIndex(sd.leaf_index), rtype, sd.generation)


def framed(
    group_id: bytes, epoch: int, sender: Sender, content: Content, authenticated_data: bytes = b""
) -> FramedContent:
    """A FramedContent (§6) with the content type implied by `content`."""
    content_type_of(content)  # validates the arm
    return FramedContent(group_id, epoch, sender, authenticated_data, content)
