"""Literal readings of draft-ietf-mls-virtual-clients-00 that the profile rejects.

Each field of `Readings` restores, at one point, what draft-00 literally says (or
leaves unsaid) where DRAFT-00-PROFILE.md decides otherwise. Each reading switched on is
a finding of the model (docs/FINDINGS.md, model/mlsvc_model/config.py, where the
switches carry the same names): a named invariant breaks, and the implementation shows
it on real bytes. They exist for spec authors (to see what the literal text does) and
for the refinement test (to replay a model trace with the same switch and see the same
invariant broken). **Never for deployment**: every reading on makes the virtual client
less secure or less correct. All off (`Readings()`) is the profile, and nothing
changes.

Where they live: `VirtualClientConfig.readings` (mlsvc.vc.emulator) for the emulators
and the loop (mlsvc.virtual_client); F3 is the delivery service's, so it is also a
constructor option of `DeliveryService(literal_p11_ds_scope=...)` (the DS does not
import draft code; pass `readings.literal_p11_ds_scope`). docs/VIRTUAL_CLIENTS.md
("Literal readings (findings) as options") maps each to the code it changes.

The model's other finding switches have no reading here: F4 and F5 need a PPRF input
space far below 32 bits (a parameter of the model, not a reading), and F9
(`ds_generation_ids=False`) is the eventual consistency mode (`Consistency.EVENTUAL`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from mlsvc.errors import ParameterError


@dataclass(frozen=True)
class Readings:
    """The literal readings (all off: the profile). See the module docstring."""

    # F1 (INV-OP-KEYS-DISTINCT), draft-00 §5.2: "signature_key_secret =
    # DeriveSecret(epoch_base_secret, "Signature Key")" (and encryption_key_secret,
    # init_key_secret, path_generation_secret likewise; the External Init seed too).
    literal_p4_subsecrets: bool = False
    # F2 (INV-AEAD-UNIQUE), draft-00 §5.8: "choose x such that x modulo the number of
    # leaves in the emulation group is equal to its leaf_index" (a new emulator sends
    # before the leaf is rotated, with its own current leaf index and leaf count).
    send_before_rotation: bool = False
    # F3 (INV-DS-NO-FALSE-COLLISION), draft-00 §5.9: "struct { uint32 generation;
    # RatchetType ratchet_type; } PrivateMessageContext" (the DS sees the generation ID
    # only, so it scopes collisions by the ID alone).
    literal_p11_ds_scope: bool = False
    # F6 (INV-REMOVED), draft-00 §4.3: "it needs to be removed from the emulation group
    # and a commit with an update path needs to be sent into every higher level group"
    # (KeyPackages are not mentioned: the outstanding ones stay).
    removal_keeps_key_packages: bool = False
    # F7 (INV-ONE-LEAF), draft-00 §4.2 step 4: "Perform an External Join to all of the
    # groups that the virtual client is a member of" (no Remove of the prior leaf).
    resync_without_remove: bool = False
    # F8 (INV-ATTRIBUTION), draft-00 §5.8: "the number of leaves in the emulation group"
    # (which epoch is not said: each emulator takes its own current one).
    reuse_guard_local_epoch: bool = False
    # F10 (INV-REDERIVE), draft-00 §5.5.2: "The sender MUST then use an external join"
    # (the ExternalInit's KEM output is random, RFC 9420 §8.3: siblings cannot follow).
    random_external_init: bool = False
    # F11 (INV-REMOVED), draft-00 §4.3 (new credentials are not mentioned); §4.2
    # "ResyncMessage carries signature_private_key" (the long-term key is kept).
    removal_keeps_signing_key: bool = False
    # F12 (INV-REDERIVE), draft-00 §5.3: "MUST derive the necessary secrets from the
    # current epoch of the emulator group" ("current" as the emulator's own view).
    derive_from_stale_epoch: bool = False

    @classmethod
    def of(cls, *finding_ids: str) -> Readings:
        """The readings of the findings named ("F1", "F7", ...) on, the rest off.
        ParameterError for a finding without a reading here (see FINDING_READINGS)."""
        unknown = [f for f in finding_ids if f not in FINDING_READINGS]
        if unknown:
            raise ParameterError(f"no reading for {unknown}: the readings are "
                                 f"{', '.join(FINDING_READINGS)}")
        return replace(cls(), **{FINDING_READINGS[f]: True for f in finding_ids})

    @property
    def findings(self) -> tuple[str, ...]:
        """The findings whose reading is on, in FINDING_READINGS order."""
        return tuple(f for f, name in FINDING_READINGS.items() if getattr(self, name))

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


FINDING_READINGS: dict[str, str] = {
    "F1": "literal_p4_subsecrets",
    "F2": "send_before_rotation",
    "F3": "literal_p11_ds_scope",
    "F6": "removal_keeps_key_packages",
    "F7": "resync_without_remove",
    "F8": "reuse_guard_local_epoch",
    "F10": "random_external_init",
    "F11": "removal_keeps_signing_key",
    "F12": "derive_from_stale_epoch",
}
"""Finding id (docs/FINDINGS.md) -> the `Readings` field (and model Config switch)."""

NO_READINGS = Readings()
