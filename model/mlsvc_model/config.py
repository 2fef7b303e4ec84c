"""Switches: the literal draft-00 readings and the later draft's rules, each named.

Every switch off is the baseline: the project's profile (DRAFT-00-PROFILE.md, P1-P15,
Q1-Q12) plus the modelling decisions M1-M4 of docs/MODEL.md; every invariant holds
there. A literal switch restores what draft-00 says (or leaves unsaid) at one point, and
each such switch is a finding (FINDINGS below): a named invariant fails, with a trace.
A later-draft switch adopts a rule of draft-ietf-mls-virtual-clients-latest and shows
what it changes (the observations, or a finding that disappears).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

PROFILES = ("draft-00", "latest")  # the texts the model can read (Config.profile)
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
    # F13 (latest only): an external join derives from the emulator's own view of the
    # current epoch; under draft-00 its ExternalJoin action Commit is refused when stale.
    stale_external_join: bool = False
    # Rules of the later draft (draft-ietf-mls-virtual-clients-latest).
    latest_generation_id_context: bool = False  # PrivateMessageContext with group_id, epoch
    latest_operation_ratchets: bool = False  # operation ratchets replace the PPRF
    # Exploration knob: the reuse-guard multiplier r in x = leaf_index + N*r is chosen
    # adversarially from 0..guard_random_max (draft-00 §5.8 says "random").
    guard_random_max: int = 3
    # The text the model follows: "draft-00" (the profile P1-P23 with M1-M4) or "latest"
    # (every rule of draft-ietf-mls-virtual-clients-latest the model expresses: LATEST_RULES).
    profile: str = "draft-00"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (one of {', '.join(PROFILES)})")

    @property
    def latest(self) -> bool:
        """Whether the later text's rules apply (LATEST_RULES)."""
        return self.profile == "latest"

    def switches_on(self) -> dict[str, object]:
        """The switches that differ from the baseline."""
        base = Config()
        return {k: v for k, v in vars(self).items() if getattr(base, k) != v}

    def effective(self) -> Config:
        """The configuration the model runs. Under draft-00, itself but for the switches
        of readings only the later text has (LATEST_ONLY, off: draft-00 has a rule
        there). Under the latest profile: a literal-reading switch whose reading is gone
        from the later text (SUPERSEDED) is back at the baseline, since the later text's
        own rule applies there; one whose literal reading the later text makes its own
        rule (ADOPTED) is on; and the later text's two rules with switches of their own
        are on."""
        if not self.latest:
            if any(getattr(self, name) for name in LATEST_ONLY):
                off: dict[str, Any] = {name: False for name in LATEST_ONLY}
                return replace(self, **off)
            return self
        base = Config()
        reset = {name: getattr(base, name) for name in SUPERSEDED}
        adopt: dict[str, Any] = dict(ADOPTED)
        return replace(self, **reset, **adopt, latest_generation_id_context=True,
                       latest_operation_ratchets=True)


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
            "Fixed differently (latest §5.3): the KEM output stays random and the "
            "external commit's init_secret travels in the DerivationInfoTBE, so the others "
            "follow.",
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


@dataclass(frozen=True)
class LatestRule:
    """A rule of draft-ietf-mls-virtual-clients-latest the model applies under the latest
    profile, named by its section in both texts."""

    id: str
    title: str
    draft00: str  # where draft-00 says (or leaves unsaid) the corresponding thing
    latest: str  # where the later text says it
    sentence: str  # the later text's sentence
    model: str  # where the model applies it


_R = LatestRule
LATEST_RULES: dict[str, LatestRule] = {
    r.id: r
    for r in (
        _R(
            "L1",
            "operation ratchets instead of the PPRF",
            "§5.2 (PPRF keyed by epoch_base_secret, pprf_input = Hash(HashInput))",
            "§5.2",
            "the deriving client chooses a VirtualClientOperationType and uses the next "
            "unused generation of its own operation ratchet for that operation type",
            "common.derive_operation_secret: slot (leaf_index, operation_type, generation); "
            "OperationContext with operation_context = group_id for leaf_node operations",
        ),
        _R(
            "L2",
            "a consumed generation is never used again",
            "§5.2 (no rule for a punctured PPRF input; profile P3 resamples)",
            "§5.2",
            "Once a generation has been consumed, an emulator client MUST NOT use the same "
            "generation of the same operation-type ratchet for another virtual-client operation.",
            "common.consume_generation; INV-PPRF-PUNCTURE reads it under the latest profile",
        ),
        _R(
            "L3",
            "KeyPackages in batches: one key_package generation, a seed per KeyPackage",
            "§5.5.1 (one operation per KeyPackage)",
            "§5.2, §5.5.1",
            "A single key_package operation generation derives the batch operation secret "
            "for all KeyPackages in that upload",
            "common.derive_key_package_batch: key_package_seed_secret = "
            'ExpandWithLabel(operation_secret, "key package seed", key_package_index)',
        ),
        _R(
            "L4",
            "sub-secrets from the operation secret (or the KeyPackage seed)",
            "§5.2 (DeriveSecret(epoch_base_secret, ...); profile P4)",
            "§5.2",
            'signature_key_secret = DeriveSecret(operation_secret, "Signature Key")',
            "common._sub_secrets (literal_p4_subsecrets superseded)",
        ),
        _R(
            "L5",
            "the reuse guard keyed by the epoch's reuse_guard_secret",
            "§5.8 (prp_key from leaf_node_secret; profile P8)",
            "§5.2, §5.6.2",
            'prp_key = ExpandWithLabel(reuse_guard_secret, "reuse guard", '
            "key_schedule_nonce, 16)",
            "higher.send_private_message; common.epoch_secrets (five epoch secrets)",
        ),
        _R(
            "L6",
            "the reuse guard's N and leaf index of the epoch named by the active LeafNode",
            '§5.8 ("the number of leaves in the emulation group"; profile P9)',
            "§5.6.2",
            "e is the emulation-group epoch that produced the active virtual-client LeafNode "
            "in the higher-level group",
            "higher.send_private_message (reuse_guard_local_epoch superseded)",
        ),
        _R(
            "L7",
            "a new emulator does not send before the leaf is rotated",
            "§5.8 (no rule; profile P9)",
            "§6.1",
            "a new emulator client MUST NOT send PrivateMessages in a higher-level group "
            "while the DerivationInfo of the active virtual-client LeafNode identifies an "
            "emulation-group epoch in which the new emulator client was not a member",
            "higher.send_private_message (send_before_rotation superseded)",
        ),
        _R(
            "L8",
            "the generation ID's context carries group_id and epoch",
            "§5.9 (PrivateMessageContext { generation; ratchet_type }; profile P11)",
            "§5.6.3",
            "struct { opaque group_id<V>; uint64 epoch; uint32 generation; RatchetType "
            "ratchet_type; } PrivateMessageContext",
            "higher.send_private_message (latest_generation_id_context on)",
        ),
        _R(
            "L9",
            "no ExternalJoin action: the siblings learn an external join through the DS",
            "§5.5, §5.5.2 (ExternalJoin action in an emulation Commit first)",
            "§5.5, §5.5.2",
            "An external Commit sent on behalf of the virtual client reaches the other "
            "emulator clients like any other virtual-client message",
            "higher.external_join: no emulation Commit; the external join material is the "
            "first thing a sibling processes in that group",
        ),
        _R(
            "L10",
            "the external commit's init_secret travels in the DerivationInfo",
            "§5.5.2 (nothing: RFC 9420 §8.3 random; profile P17 derives it instead)",
            "§5.3",
            "For a LeafNode in an external Commit, external_init_secret MUST contain the "
            "init_secret produced by external initialization",
            "higher.external_join: random init secret, sealed to the DerivationInfo key "
            "(epoch_encryption_key, the LeafNode's encryption_key)",
        ),
        _R(
            "L11",
            "the removal procedure deletes outstanding KeyPackages first",
            "§4.3 (not mentioned)",
            "§6.3",
            "Effect the deletion of outstanding KeyPackages of the virtual client from the DS.",
            "emulation.remove_emulator (removal_keeps_key_packages superseded)",
        ),
        _R(
            "L12",
            "the removal procedure provides new credentials",
            "§4.3 (not mentioned; §4.2 ResyncMessage carries the long-term key)",
            "§6.3",
            "the application MUST provide new credentials and authentication key material "
            "for the virtual client",
            "emulation.remove_emulator (removal_keeps_signing_key superseded)",
        ),
        _R(
            "L13",
            "one leaf per group: an external commit evicts the prior leaf",
            "§4.2 step 4 (an External Join to every group)",
            "§5, §6.1",
            "the virtual client MUST NOT be represented by more than one leaf in any given "
            'higher-level group; [Variant B] evicting the virtual client\'s prior membership '
            'with a "resync" Remove proposal',
            "higher.external_join (resync_without_remove superseded)",
        ),
    )
}


@dataclass(frozen=True)
class LaterReading:
    """How the later text reads at the place a finding's switch reads draft-00 literally.

    `kind`, decided by reading the later text at `section`:
    - "gone": the literal sentence (or silence) is not in the later text any more; it has
      its own rule there (`rules`). Under the latest profile the switch is superseded
      (`Config.effective` puts it back at the baseline): the finding's configuration is
      the latest baseline.
    - "adopted": the later text says the same thing literally, and its other rules
      (`rules`) make that reading its own. Under the latest profile the switch is on in
      the baseline too: again the finding's configuration is the latest baseline.
    - "kept": the literal reading is still one the later text allows (the same sentence or
      the same MAY), beside the reading the profile takes; the switch stays on and its
      own search decides.
    - "new": a reading only the later text has (NEW_FINDINGS).
    The verdict always comes from an exploration, never from the kind alone: "found" if
    the finding's invariant still fails under the latest profile, "fixed" if it holds."""

    kind: str
    section: str  # where the later text decides
    sentence: str
    rules: tuple[str, ...] = ()  # LATEST_RULES that replace the reading


_L = LaterReading
LATER_READINGS: dict[str, LaterReading] = {
    "F1": _L("gone", "§5.2", 'signature_key_secret = DeriveSecret(operation_secret, "Signature '
             'Key") (and the three others; KeyPackages from key_package_seed_secret)',
             ("L4", "L3")),
    "F2": _L("gone", "§6.1", LATEST_RULES["L7"].sentence, ("L7",)),
    "F3": _L("adopted", "§5.6.3", "Attaching the generation ID to the PrivateMessage allows the DS "
             "to detect collisions between generations per higher-level group, per "
             "higher-level group epoch and per ratchet type.", ("L8",)),
    "F4": _L("gone", "§5.2", "The epoch_base_secret keys a Virtual Client Operation Secret "
             "Tree (no PPRF); " + LATEST_RULES["L2"].sentence, ("L1", "L2")),
    "F5": _L("gone", "§5.2", LATEST_RULES["L1"].sentence + " (one ratchet per leaf: two "
             "emulators never share an input)", ("L1",)),
    "F6": _L("gone", "§6.3", LATEST_RULES["L11"].sentence, ("L11",)),
    "F7": _L("gone", "§5, §6.1", LATEST_RULES["L13"].sentence + " (§6.2 step 3.2 still reads "
             '"Perform an external join to all of the groups", now bound by the §5 MUST)',
             ("L13",)),
    "F8": _L("gone", "§5.6.2", LATEST_RULES["L6"].sentence, ("L6",)),
    "F9": _L("kept", "§5.6.3", "Emulator clients MAY send a generation ID to the DS whenever "
             "they fan out a private message.", ()),
    "F10": _L("adopted", "§5.3", "external_init_secret MUST contain the init_secret produced by "
              "external initialization as described in Section 8.3 of RFC9420 (still "
              "random; the siblings read it from the DerivationInfo)", ("L10",)),
    "F11": _L("gone", "§6.3", LATEST_RULES["L12"].sentence, ("L12",)),
    "F12": _L("kept", "§5.3, §5.2", "the creating emulator client MUST derive the necessary "
              "secrets from the current epoch of the emulation group; [...] until no key "
              "material associated with that epoch is actively used anymore", ()),
    "F13": _L("new", "§5.5.2", "An emulator client that uses an external commit to join a "
              "group with the virtual client relies on the higher-level group's Commit "
              "sequencing rules to determine whether that external commit is accepted.",
              ("L9",)),
}

SUPERSEDED: tuple[str, ...] = tuple(
    sorted(
        {
            name
            for fid, r in LATER_READINGS.items()
            if r.kind == "gone"
            for name in FINDINGS[fid].config.switches_on()
        }
    )
)
"""The literal-reading switches whose reading the later text no longer has: under the
latest profile `Config.effective` puts them back at the baseline."""

ADOPTED: dict[str, object] = {
    name: value
    for fid, r in LATER_READINGS.items()
    if r.kind == "adopted"
    for name, value in FINDINGS[fid].config.switches_on().items()
}
"""The literal-reading switches whose reading the later text makes its own rule: under
the latest profile `Config.effective` turns them on."""

NEW_FINDINGS: dict[str, Finding] = {
    f.id: f
    for f in (
        _F(
            "F13",
            "no ExternalJoin action: an external join derived from a stale epoch is "
            "accepted, and the others cannot follow",
            Config(profile="latest", stale_external_join=True),
            "INV-REDERIVE",
            "latest §5.5.2: An emulator client that uses an external commit to join a group "
            "with the virtual client relies on the higher-level group's Commit sequencing "
            "rules to determine whether that external commit is accepted. (§5.3: MUST "
            "derive the necessary secrets from the current epoch of the emulation group)",
            "New in the later text. Draft-00 §5.5/§5.5.2 sends an ExternalJoin action in an "
            "emulation-group Commit first, which the DS refuses on a stale epoch; the later "
            "text removed the action, and nothing orders an external join against the "
            "emulation group any more (the profile's M4/P19 must now cover it).",
        ),
    )
}
"""Findings of the later text: something its rules break that draft-00's do not, each
with a configuration whose profile is "latest". Kept apart from FINDINGS (the draft-00
findings, which the implementation's readings mirror). With every switch off the latest
profile holds every invariant (ci, dev and long explorations, seeds 1-8 at ci); F13 reads
"the current epoch" of the external join literally, as F12 does for other derivations:
under draft-00 that reading is harmless for external joins, under the later text it is
not."""

ALL_FINDINGS: dict[str, Finding] = {**FINDINGS, **NEW_FINDINGS}

LATEST_ONLY: tuple[str, ...] = ("stale_external_join",)
"""Switches of readings only the later text has (F13): under draft-00 its own rule is in
force there (the ExternalJoin action's Commit, which the DS orders), so
`Config.effective` turns them off."""

assert set(LATER_READINGS) == set(ALL_FINDINGS)
assert all(r.kind in ("gone", "adopted", "kept", "new") for r in LATER_READINGS.values())
assert all((LATER_READINGS[f].kind == "new") == (f in NEW_FINDINGS) for f in ALL_FINDINGS)
assert {f.name for f in fields(Config)} >= set(SUPERSEDED)
