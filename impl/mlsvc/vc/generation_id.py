"""The generation ID an emulator MAY send to the delivery service when it fans out a
PrivateMessage (draft-ietf-mls-virtual-clients-00 §5.9; DRAFT-00-PROFILE P11, Q4).

    struct {
      uint32 generation;
      RatchetType ratchet_type;        // uint8: application(1), handshake(2)
    } PrivateMessageContext            // 5 bytes (Q4)

    generation_id = ExpandWithLabel(generation_id_secret, "generation id",
                                    PrivateMessageContext, Kdf.Nh)

Kdf and ExpandWithLabel are the emulation group's (§5.9, Q3); generation_id_secret is
the one of the emulation epoch named by the active LeafNode's epoch_id (Q4).

P11 (a named spec finding): draft-00's context has neither group_id nor epoch, so the
same (generation, ratchet_type) gives the same ID in every higher-level group while the
emulation epoch is unchanged; the delivery service scopes collision detection by
(group, epoch) itself, and the ID links the virtual client's traffic across groups.
The later text (profile "latest", §5.6.3; mlsvc.vc.profiles) adds group_id and epoch:

    struct {
      opaque group_id<V>;              // the higher-level group's group_id
      uint64 epoch;                    // that group's epoch when the message is sent
      uint32 generation;
      RatchetType ratchet_type;
    } PrivateMessageContext

with the same label, secret (of the epoch named by the active LeafNode) and Kdf.Nh.
`private_message_context(..., profile=, group_id=, epoch=)` is the one place either
context is encoded; `generation_id` takes the same arguments. `generation_id_for_context`
takes any encoded context.
"""

from __future__ import annotations

from mlsvc.codec import Writer
from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError
from mlsvc.vc.codepoints import (
    GENERATION_ID_LABEL,
    RatchetType,
)
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of


def private_message_context(generation: int, ratchet_type: RatchetType, *,
                            profile: Profile | str = DEFAULT_PROFILE,
                            group_id: bytes | None = None,
                            epoch: int | None = None) -> bytes:
    """TLS encoding of PrivateMessageContext:
    - draft-00 §5.9 (Q4): uint32 generation, uint8 ratchet_type (5 bytes); `group_id`
      and `epoch` must not be given (draft-00's context has neither, P11);
    - latest §5.6.3: opaque group_id<V>, uint64 epoch, uint32 generation, uint8
      ratchet_type; `group_id` (the higher-level group's) and `epoch` (its epoch at
      sending) are required.
    ParameterError for a generation outside uint32, the reserved ratchet type 0 / an
    unknown one, an epoch outside uint64, or group_id/epoch missing or extra."""
    p = profile_of(profile)
    if not isinstance(generation, int) or not 0 <= generation < (1 << 32):
        raise ParameterError(f"generation {generation!r} is not a uint32 (RFC 9420 §9)")
    if ratchet_type not in (RatchetType.APPLICATION, RatchetType.HANDSHAKE):
        raise ParameterError(f"ratchet type {ratchet_type!r} is not application or handshake")
    w = Writer()
    if p is Profile.DRAFT_00:
        if group_id is not None or epoch is not None:
            raise ParameterError("draft-00's PrivateMessageContext (§5.9) has no group_id "
                                 "or epoch (P11); they belong to the latest profile")
    else:
        if not isinstance(group_id, bytes | bytearray):
            raise ParameterError("latest §5.6.3: PrivateMessageContext needs the "
                                 "higher-level group's group_id")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 1 << 64:
            raise ParameterError(f"latest §5.6.3: epoch {epoch!r} is not a uint64")
        w.opaque(bytes(group_id))
        w.u64(epoch)
    w.u32(generation)
    w.u8(int(ratchet_type))
    return bytes(w.buf)  # draft-00: PRIVATE_MESSAGE_CONTEXT_LENGTH bytes


def generation_id_for_context(cs: CipherSuite, generation_id_secret: bytes,
                              context: bytes) -> bytes:
    """ExpandWithLabel(generation_id_secret, "generation id", context, Kdf.Nh) (§5.9)."""
    if len(generation_id_secret) != cs.nh:
        raise ParameterError(f"generation_id_secret must be Kdf.Nh = {cs.nh} bytes (§5.1)")
    return expand_with_label(cs, generation_id_secret, GENERATION_ID_LABEL, context, cs.nh)


def generation_id(
    cs: CipherSuite, generation_id_secret: bytes, generation: int, ratchet_type: RatchetType,
    *, profile: Profile | str = DEFAULT_PROFILE, group_id: bytes | None = None,
    epoch: int | None = None,
) -> bytes:
    """generation_id for one (generation, ratchet_type) of the emulation epoch whose
    generation_id_secret is given (draft-00 §5.9; latest §5.6.3 with `profile="latest"`,
    `group_id` and `epoch` of the higher-level group); `cs` is the emulation group's
    suite."""
    return generation_id_for_context(
        cs, generation_id_secret,
        private_message_context(generation, ratchet_type, profile=profile,
                                group_id=group_id, epoch=epoch),
    )
