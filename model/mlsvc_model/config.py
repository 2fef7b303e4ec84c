"""Switches: the literal draft-00 readings and the later draft's rules, each named.

Every switch off is the baseline: the project's profile (DRAFT-00-PROFILE.md, P1-P15,
Q1-Q12) plus the modelling decisions M1-M4 of docs/MODEL.md; every invariant holds
there. A literal switch restores what draft-00 says (or leaves unsaid) at one point, and
each such switch is a finding (FINDINGS below): a named invariant fails, with a trace.
A later-draft switch adopts a rule of draft-ietf-mls-virtual-clients-latest and shows
what it changes (the observations, or a finding that disappears).
"""

from __future__ import annotations

from dataclasses import dataclass

VC_COMPONENT_ID = 0x8001  # P7: DerivationInfoComponent, also the SafeExportSecret ID
APPLICATION, HANDSHAKE = 1, 2  # draft-00 §5.9 RatchetType


@dataclass(frozen=True)
class Config:
    """The model's switches (all off = the baseline, where every invariant holds)."""

    # Literal readings of draft-00 (each is a finding when on).
    literal_p4_subsecrets: bool = False  # F1: sub-secrets from epoch_base_secret (§5.2)
    send_before_rotation: bool = False  # F2: a new emulator sends before the leaf is rotated
    literal_p11_ds_scope: bool = False  # F3: the DS scopes collisions by generation_id only
    no_resample_on_punctured: bool = False  # F4: no rule for a punctured PPRF leaf (P3)
    pprf_bits: int = 32  # P3: 32-bit PPRF input; lower it to reach F4/F5
    removal_keeps_key_packages: bool = False  # F6: §4.3 does not delete KeyPackages
    resync_without_remove: bool = False  # F7: §4.2 external join without a resync Remove
    reuse_guard_local_epoch: bool = False  # F8: N and leaf_index of the local epoch (§5.8)
    ds_generation_ids: bool = True  # F9 when off: no generation-ID coordination (§5.9 MAY)
    random_external_init: bool = False  # F10: external commit with random KEM (RFC 9420 §8.3)
    removal_keeps_signing_key: bool = False  # F11: §4.3 keeps the long-term signing key
    derive_from_stale_epoch: bool = False  # F12: "current epoch" as the emulator's own view
    # Rules of the later draft (draft-ietf-mls-virtual-clients-latest).
    latest_generation_id_context: bool = False  # PrivateMessageContext with group_id, epoch
    latest_operation_ratchets: bool = False  # operation ratchets replace the PPRF
    # Exploration knob: the reuse-guard multiplier r in x = leaf_index + N*r is chosen
    # adversarially from 0..guard_random_max (draft-00 §5.8 says "random").
    guard_random_max: int = 3

    def switches_on(self) -> dict[str, object]:
        """The switches that differ from the baseline."""
        base = Config()
        return {k: v for k, v in vars(self).items() if getattr(base, k) != v}


@dataclass(frozen=True)
class Finding:
    """A spec finding: the switch that shows it and the invariant it breaks."""

    id: str
    title: str
    config: Config
    invariant: str
    source: str  # the draft sentence (or silence) the switch takes literally
    later: str  # what draft-ietf-mls-virtual-clients-latest does about it


_F = Finding
FINDINGS: dict[str, Finding] = {
    f.id: f
    for f in (
        _F(
            "F1",
            "sub-secrets derived from epoch_base_secret: two operations share keys",
            Config(literal_p4_subsecrets=True),
            "INV-OP-KEYS-DISTINCT",
            "draft-00 §5.2: signature_key_secret = DeriveSecret(epoch_base_secret, "
            '"Signature Key") (and the three others likewise)',
            "Fixed: all four are DeriveSecret(operation_secret, ...).",
        ),
        _F(
            "F2",
            "a new emulator sends before the virtual client's leaf is rotated",
            Config(send_before_rotation=True),
            "INV-AEAD-UNIQUE",
            "draft-00 §5.8: choose x such that x modulo the number of leaves in the "
            "emulation group is equal to its leaf_index",
            "Fixed: a new emulator MUST NOT send while the active LeafNode names an epoch "
            "in which it was not a member; N_e and leaf_index_e are those of epoch e.",
        ),
        _F(
            "F3",
            "generation IDs without group and epoch: false collisions across groups",
            Config(literal_p11_ds_scope=True),
            "INV-DS-NO-FALSE-COLLISION",
            "draft-00 §5.9: struct { uint32 generation; RatchetType ratchet_type; } "
            "PrivateMessageContext",
            "Fixed: PrivateMessageContext carries group_id and epoch.",
        ),
        _F(
            "F4",
            "the 2^32-leaf PPRF input: a deriver lands on a punctured leaf",
            Config(no_resample_on_punctured=True, pprf_bits=3),
            "INV-PPRF-PUNCTURE",
            "draft-00 §5.2: operation_secret = VirtualClientSecret(pprf_input) with a "
            "tree of 2^32 leaves (no rule for an input already punctured)",
            "Gone: operation ratchets (one per leaf index and operation type) replace "
            "the PPRF, so inputs never collide.",
        ),
        _F(
            "F5",
            "two emulators land on the same PPRF leaf: identical keys",
            Config(pprf_bits=2),
            "INV-OP-KEYS-DISTINCT",
            "profile Q7: two emulators landing on the same 32-bit leaf get identical keys",
            "Gone with the PPRF (operation ratchets).",
        ),
        _F(
            "F6",
            "the removal procedure leaves outstanding KeyPackages usable",
            Config(removal_keeps_key_packages=True),
            "INV-REMOVED",
            "draft-00 §4.3: removed from the emulation group and a commit with an update "
            "path ... into every higher level group (KeyPackages are not mentioned)",
            "Fixed: step 1 deletes outstanding KeyPackages from the DS; fresh ones are "
            "uploaded from the new epoch.",
        ),
        _F(
            "F7",
            "external-join onboarding gives the virtual client a second leaf",
            Config(resync_without_remove=True),
            "INV-ONE-LEAF",
            "draft-00 §4.2 step 4: Perform an External Join to all of the groups that "
            "the virtual client is a member of",
            "Fixed: the external commit evicts the prior leaf with a resync Remove "
            "(RFC 9420 §12.4.3.2); one leaf per group is a MUST.",
        ),
        _F(
            "F8",
            "reuse guard from each emulator's own current epoch: misattribution",
            Config(reuse_guard_local_epoch=True),
            "INV-ATTRIBUTION",
            "draft-00 §5.8: the number of leaves in the emulation group (which epoch is not said)",
            "Fixed: e is the epoch named by the active LeafNode (as P9).",
        ),
        _F(
            "F9",
            "no generation-ID coordination: a delivered message cannot be decrypted",
            Config(ds_generation_ids=False),
            "INV-DELIVERED-DECRYPTABLE",
            "draft-00 §5.9: Emulator clients MAY send a generation ID to the DS",
            "Unchanged (still MAY / SHOULD); the text is the same.",
        ),
        _F(
            "F10",
            "external join into a new group: other emulators cannot follow",
            Config(random_external_init=True),
            "INV-REDERIVE",
            "draft-00 §5.5.2: The sender MUST then use an external join (the KEM "
            "output of RFC 9420 §8.3 is random and no emulator can decapsulate it)",
            "Not addressed.",
        ),
        _F(
            "F11",
            "the removal procedure leaves the long-term signing key with the removed emulator",
            Config(removal_keeps_signing_key=True),
            "INV-REMOVED",
            "draft-00 §4.3 (new credentials are not mentioned); §4.2 ResyncMessage "
            "carries signature_private_key",
            "Fixed: the application MUST provide new credentials and SHOULD revoke the old ones.",
        ),
        _F(
            "F12",
            "an emulator derives from an epoch the others have already deleted",
            Config(derive_from_stale_epoch=True),
            "INV-REDERIVE",
            "draft-00 §5.3: MUST derive the necessary secrets from the current epoch of the "
            "emulator group; §5.2: MUST store [...] until no key material derived from it is "
            "actively used anymore",
            "Unchanged: the same two rules.",
        ),
    )
}
