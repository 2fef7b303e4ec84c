"""Constants of the reuse guard, the small-space PRP and the generation ID
(draft-ietf-mls-virtual-clients-00 §5.7-5.9), each with the profile decision that fixes
it (shared/spec/DRAFT-00-PROFILE.md).

One table, so that a deployment that reads the draft differently changes a value here
and nowhere in the protocol code. Labels are given without the "MLS 1.0 " prefix:
`mlsvc.crypto.labels.expand_with_label` adds it (RFC 9420 §8, profile Q10).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from mlsvc.errors import ParameterError

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

# --- §5.2 Generating virtual client secrets (P2, P3, P4, P7, P17) --------------------


@dataclass(frozen=True)
class VCCodePoints:
    """The component IDs of draft-00 §9 (values TBD there): private-use defaults of
    profile P7, configurable per deployment (the profile's "Conventions for code
    points"). `derivation_info` is also the SafeExportSecret component ID (§5.2).

    Either the three are distinct (draft-00: three components, P7) or they are one ID
    (latest §9 registers ONE virtual_clients component, whose data in a LeafNode is the
    DerivationInfo, in SafeAAD the VirtualClientAction, in the emulation group's
    GroupInfo the NewEmulatorClientState, and which is the SafeExportSecret ID:
    `LATEST_VC_CODEPOINTS`); two equal and one different matches neither text. `profile`
    (the record of issue 15) differs from all three."""

    derivation_info: int = 0x8001  # P7: DerivationInfoComponent (LN) and SafeExportSecret
    virtual_client_action: int = 0x8002  # P7: VirtualClientAction (SafeAAD item)
    new_emulator_client_state: int = 0x8003  # P7, P13: NewEmulatorClientState (GroupInfo)
    # the profile of the emulation group (mlsvc.vc.profiles), an entry of the emulation
    # group's GroupContext app_data_dictionary, present for "latest" only (issue 15)
    profile: int = 0x8004

    def __post_init__(self) -> None:
        components = (self.derivation_info, self.virtual_client_action,
                      self.new_emulator_client_state)
        for value in (*components, self.profile):
            if not 0 < value <= 0xFFFF:
                raise ParameterError(f"component ID {value} is not a non-zero uint16 (P1)")
        if len(set(components)) == 2:
            raise ParameterError("the virtual-client components need distinct IDs (draft-00 "
                                 "P7) or one ID for all three (latest §9)")
        if self.profile in components:
            raise ParameterError("the profile record needs an ID of its own")


DEFAULT_VC_CODEPOINTS: Final = VCCodePoints()

LATEST_VC_CODEPOINTS: Final = VCCodePoints(derivation_info=0x8001,
                                           virtual_client_action=0x8001,
                                           new_emulator_client_state=0x8001)
"""The later text's single virtual_clients component (latest §9; its suggested value
0x0006 is not assigned yet, so P7's private-use 0x8001, configurable like draft-00's),
the default of `VirtualClient.create` under the latest profile."""

EPOCH_ID_LABEL: Final = b"Epoch ID"
BASE_SECRET_LABEL: Final = b"Base Secret"
EPOCH_ENCRYPTION_KEY_LABEL: Final = b"Encryption Key"
GENERATION_ID_SECRET_LABEL: Final = b"Generation ID Secret"
"""§5.2: the four DeriveSecret(emulator_epoch_secret, label) outputs (the same four
labels in the later text's §5.2)."""

REUSE_GUARD_SECRET_LABEL: Final = b"Reuse Guard"
"""The later text only (profile "latest", §5.2): the fifth epoch secret,
reuse_guard_secret = DeriveSecret(emulator_epoch_secret, "Reuse Guard"), which keys the
reuse guard's PRP (§5.6.2) in place of draft-00's leaf_node_secret (P8)."""

SIGNATURE_KEY_LABEL: Final = b"Signature Key"
ENCRYPTION_KEY_LABEL: Final = b"Encryption Key"
INIT_KEY_LABEL: Final = b"Init Key"
PATH_GENERATION_LABEL: Final = b"Path Generation"
"""§5.2 with P4: the four DeriveSecret(operation_secret, label) sub-secrets. The later
text (latest §5.2) uses the same four labels on operation_secret, and the first three on
key_package_seed_secret for a KeyPackage."""

EXTERNAL_INIT_LABEL: Final = b"External Init"
"""P17: the ExternalInit KEM seed = DeriveSecret(operation_secret, "External Init")."""

PPRF_DEPTH: Final = 32
"""§5.2 / P2: the virtual clients' PPRF has 2^32 leaves."""

PPRF_INPUT_BYTES: Final = 4
"""P3: the PPRF leaf is the first 4 bytes of pprf_input, big-endian."""

DERIVATION_INFO_KEY_LABEL: Final = b"key"
DERIVATION_INFO_NONCE_LABEL: Final = b"nonce"
"""P6: key/nonce = ExpandWithLabel(epoch_encryption_key, "key"/"nonce", encryption_key,
AEAD.Nk/Nn)."""

# --- latest §5.2 Virtual Client Operation Secret Tree (profile "latest") -------------
# shared/spec/draft-ietf-mls-virtual-clients-latest.md; mlsvc.vc.operation_tree.


class OperationType(IntEnum):
    """latest §6.1.2 (defined there, used in §5.2): enum { reserved(0), key_package(1),
    leaf_node(2), application(3), (255) } VirtualClientOperationType, a uint8."""

    KEY_PACKAGE = 1
    LEAF_NODE = 2
    APPLICATION = 3


OPERATION_INIT_LABEL: Final = b"vc operation init"
"""latest §5.2: operation_ratchet_secret[operation_type][0] = ExpandWithLabel(leaf_secret,
"vc operation init", operation_type, Kdf.Nh), operation_type TLS-encoded (one byte)."""

OPERATION_GENERATION_SECRET_LABEL: Final = b"VC Operation Secret"
"""latest §5.2: operation_generation_secret = DeriveSecret(operation_ratchet_secret,
"VC Operation Secret")."""

OPERATION_RATCHET_LABEL: Final = b"VC Operation Ratchet"
"""latest §5.2: next_operation_ratchet_secret = DeriveSecret(operation_ratchet_secret,
"VC Operation Ratchet")."""

OPERATION_SECRET_LABEL: Final = b"vc operation"
"""latest §5.2: operation_secret = ExpandWithLabel(operation_generation_secret,
"vc operation", OperationContext, Kdf.Nh)."""

KEY_PACKAGE_SEED_LABEL: Final = b"key package seed"
"""latest §5.2, §5.5.1: key_package_seed_secret = ExpandWithLabel(operation_secret,
"key package seed", KeyPackageSeedContext, Kdf.Nh)."""

GROUP_CREATION_LABEL: Final = b"Group Creation"
"""latest §5.4: epoch_secret = DeriveSecret(key_package_seed_secret, "Group Creation"),
with the higher-level group's ciphersuite."""

RETAINED_EPOCHS: Final = 1
"""P19: an emulator keeps the derivation secrets of the last R + 1 emulation epochs
(default R = 1)."""

EVENTUAL_SENT_KEY_WINDOW: Final = 16
"""P20 (eventual mode): sent generations' keys are kept for W = 16 generations."""


class ActionType(IntEnum):
    """§5.5 / P15: enum { reserved(0), key_package_upload(1), external_join(2), (255) }."""

    KEY_PACKAGE_UPLOAD = 1
    EXTERNAL_JOIN = 2


class Consistency(Enum):
    """P20: how the delivery service orders generations (draft-00 §5.9)."""

    STRONG = "strong"
    EVENTUAL = "eventual"
