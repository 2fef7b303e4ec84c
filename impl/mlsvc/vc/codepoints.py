"""Constants of the reuse guard, the small-space PRP and the generation ID
(draft-ietf-mls-virtual-clients-00 §5.7-5.9), each with the profile decision that fixes
it (shared/spec/DRAFT-00-PROFILE.md).

One table, so that a deployment that reads the draft differently changes a value here
and nowhere in the protocol code. Labels are given without the "MLS 1.0 " prefix:
`mlsvc.crypto.labels.expand_with_label` adds it (RFC 9420 §8, profile Q10).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

# --- §5.8 Reuse Guard (P8, Q5) -------------------------------------------------------

REUSE_GUARD_LABEL: Final = b"reuse guard"
"""P8/§5.8: prp_key = ExpandWithLabel(leaf_node_secret, "reuse guard", key_schedule_nonce, 16)."""

PRP_KEY_LENGTH: Final = 16
"""Q5/§5.7: the PRP is AES-128 in every suite, so prp_key is 16 bytes."""

REUSE_GUARD_LENGTH: Final = 4
"""RFC 9420 §6.3.2: opaque reuse_guard[4]; P10: the PRP output encoded big-endian."""

MAX_LEAF_COUNT_EXPONENT: Final = 32
"""P9: N = 2^k leaves with x a uint32, so k <= 32 (N = 2^32 leaves one x per class)."""

# --- §5.7 Small-Space PRP (P10) ------------------------------------------------------

FF1_RADIX: Final = 2
"""P10: FF1 over radix 2 ..."""

FF1_NUMERALS: Final = 32
"""P10: ... with 32 numerals: a uint32, most significant bit first ..."""

FF1_TWEAK: Final = b""
"""P10: ... and an empty tweak."""

FF1_AES_KEY_LENGTH: Final = 16
"""P10/Q5: AES-128."""

# --- §5.9 Generation ID (P11, Q4) ----------------------------------------------------

GENERATION_ID_LABEL: Final = b"generation id"
"""§5.9: generation_id = ExpandWithLabel(generation_id_secret, "generation id",
PrivateMessageContext, Kdf.Nh)."""


class RatchetType(IntEnum):
    """§5.9 / Q4: enum { reserved(0), application(1), handshake(2), (255) } RatchetType."""

    APPLICATION = 1
    HANDSHAKE = 2


PRIVATE_MESSAGE_CONTEXT_LENGTH: Final = 5
"""Q4/P11: struct { uint32 generation; RatchetType ratchet_type; } is 5 bytes."""
