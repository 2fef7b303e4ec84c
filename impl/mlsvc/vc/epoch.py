"""Emulation-epoch secrets (draft-ietf-mls-virtual-clients-00 §5.2; profile P2, P7, P9,
P19, Q3, Q4). `derive_epoch_secrets` also gives the later text's five (latest §5.2,
profile "latest": the fifth is reuse_guard_secret; mlsvc.vc.profiles).

Theory of operation. For every epoch of the emulation group each emulator computes

    emulator_epoch_secret = SafeExportSecret(DerivationInfoComponent id)   (P7: 0x8001)
    epoch_id              = DeriveSecret(emulator_epoch_secret, "Epoch ID")
    epoch_base_secret     = DeriveSecret(emulator_epoch_secret, "Base Secret")
    epoch_encryption_key  = DeriveSecret(emulator_epoch_secret, "Encryption Key")
    generation_id_secret  = DeriveSecret(emulator_epoch_secret, "Generation ID Secret")

and deletes emulator_epoch_secret at once (§5.2: "after which it is deleted"); the
Safe Exporter punctures its own tree (ext §4.4), and `open_epoch` never stores the value.
epoch_base_secret keys a depth-32 PPRF (P2) and is not kept apart from it, except
under the literal reading literal_p4_subsecrets (finding F1, mlsvc.vc.readings): there
the sub-secrets of every operation are DeriveSecret(epoch_base_secret, label), so the
epoch keeps a copy (`EmulationEpoch.base_secret`, None otherwise), deleted with the
PPRF (P19). Never for deployment: the copy defeats the puncturing.

What stays, and for how long (P9, P19, Q4):
- the *derivation secrets* (the PPRF, epoch_encryption_key and the retained operations
  of Q7) while the epoch is among the last R + 1 the emulator has seen (R = 1): a
  sibling's derivation that raced one emulation Commit still re-derives;
- the *reference data* (epoch_id, the leaf count N, this emulator's leaf index, the
  roster, generation_id_secret) while some active LeafNode of the virtual client or an
  outstanding KeyPackage names the epoch: the reuse guard (§5.8, P9) and the generation
  ID (§5.9, Q4) of that leaf need them.
`EpochStore.collect` deletes what nothing references any more. At quiescence (the
emulator has processed everything the DS holds for it) `collect_quiescent` applies the
model's deletion rule instead: every unreferenced epoch but the latest goes, whatever
the window (mlsvc_model.common.collect).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mlsvc.checks import fail
from mlsvc.crypto.labels import derive_secret
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError
from mlsvc.ext.pprf import PPRF
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import (
    BASE_SECRET_LABEL,
    EPOCH_ENCRYPTION_KEY_LABEL,
    EPOCH_ID_LABEL,
    GENERATION_ID_SECRET_LABEL,
    PPRF_DEPTH,
    RETAINED_EPOCHS,
    REUSE_GUARD_SECRET_LABEL,
)
from mlsvc.vc.operation_tree import OperationSecretTree
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of


@dataclass(frozen=True)
class RetainedOperation:
    """Q7: an operation this emulator has derived (and punctured), kept while its key
    material is live, indexed by its PPRF leaf: (leaf_index, random) say which request
    it answers, `operation_secret` what it gives."""

    leaf_index: int
    random: bytes
    operation_secret: bytes


@dataclass
class EmulationEpoch:
    """One emulation epoch as an emulator holds it (see the module docstring)."""

    epoch: int
    epoch_id: bytes
    leaf_count: int  # P9: N, blanks included (a power of two)
    own_leaf: LeafIndex  # this emulator's leaf index at this epoch
    roster: dict[int, bytes]  # occupied leaf -> the emulator's credential identity
    generation_id_secret: bytes
    pprf: PPRF | None  # keyed by epoch_base_secret; None once outside the P19 window
    encryption_key: bytes | None  # epoch_encryption_key; None once outside the window
    retained: dict[int, RetainedOperation] = field(default_factory=dict)  # PPRF leaf -> op
    # F1 only (readings.literal_p4_subsecrets): epoch_base_secret itself; else None
    base_secret: bytes | None = field(default=None, repr=False)
    # profile "latest" only (latest §5.2): the Virtual Client Operation Secret Tree
    # rooted at epoch_base_secret, in place of the PPRF (derivation secret: None once
    # outside the window), and reuse_guard_secret (reference data, §5.6.2)
    tree: OperationSecretTree | None = field(default=None, repr=False)
    reuse_guard_secret: bytes | None = field(default=None, repr=False)

    @property
    def can_derive(self) -> bool:
        return ((self.pprf is not None or self.tree is not None)
                and self.encryption_key is not None)

    @property
    def profile(self) -> Profile:
        """The text this epoch follows: latest when it has reuse_guard_secret (the
        fifth epoch secret of latest §5.2), else draft-00."""
        return Profile.DRAFT_00 if self.reuse_guard_secret is None else Profile.LATEST

    def drop_derivation_secrets(self) -> None:
        """P19: out of the window, the PPRF, the encryption key and the retained
        operations go; the reference data stays while referenced."""
        self.pprf = None
        self.encryption_key = None
        self.retained.clear()
        self.base_secret = None
        self.tree = None


@dataclass(frozen=True)
class EpochSecrets:
    """The secrets one emulator_epoch_secret gives (see `derive_epoch_secrets`)."""

    epoch_id: bytes
    epoch_base_secret: bytes = field(repr=False)
    epoch_encryption_key: bytes = field(repr=False)
    generation_id_secret: bytes = field(repr=False)
    reuse_guard_secret: bytes | None = field(default=None, repr=False)  # latest only


def derive_epoch_secrets(cs: CipherSuite, emulator_epoch_secret: bytes,
                         profile: Profile | str = DEFAULT_PROFILE) -> EpochSecrets:
    """The epoch secrets, DeriveSecret(emulator_epoch_secret, label) with the emulation
    group's suite (Q3): the one place either text's list is computed.

    - draft-00 §5.2: epoch_id ("Epoch ID"), epoch_base_secret ("Base Secret"),
      epoch_encryption_key ("Encryption Key"), generation_id_secret ("Generation ID
      Secret"); `reuse_guard_secret` is None.
    - latest §5.2 ("derive five further secrets"): the same four with the same labels,
      and reuse_guard_secret = DeriveSecret(emulator_epoch_secret, "Reuse Guard").

    ParameterError for a secret that is not Kdf.Nh bytes or an unknown profile."""
    p = profile_of(profile)
    if len(emulator_epoch_secret) != cs.nh:
        raise ParameterError(f"emulator_epoch_secret must be Kdf.Nh = {cs.nh} bytes")
    return EpochSecrets(
        epoch_id=derive_secret(cs, emulator_epoch_secret, EPOCH_ID_LABEL),
        epoch_base_secret=derive_secret(cs, emulator_epoch_secret, BASE_SECRET_LABEL),
        epoch_encryption_key=derive_secret(cs, emulator_epoch_secret,
                                           EPOCH_ENCRYPTION_KEY_LABEL),
        generation_id_secret=derive_secret(cs, emulator_epoch_secret,
                                           GENERATION_ID_SECRET_LABEL),
        reuse_guard_secret=(derive_secret(cs, emulator_epoch_secret,
                                          REUSE_GUARD_SECRET_LABEL)
                            if p is Profile.LATEST else None),
    )


def open_epoch(cs: CipherSuite, emulator_epoch_secret: bytes, epoch: int, leaf_count: int,
               own_leaf: LeafIndex, roster: Mapping[int, bytes], *,
               keep_base_secret: bool = False,
               profile: Profile = DEFAULT_PROFILE) -> EmulationEpoch:
    """§5.2: the four epoch secrets from emulator_epoch_secret (emulation group's suite,
    Q3; `derive_epoch_secrets` with the draft-00 profile). The caller
    must not keep emulator_epoch_secret. `keep_base_secret`: the literal reading F1 (see
    the module docstring) keeps epoch_base_secret beside the PPRF. The latest profile
    opens the epoch with `open_latest_epoch` instead."""
    if profile is Profile.LATEST:
        return open_latest_epoch(cs, emulator_epoch_secret, epoch, leaf_count, own_leaf,
                                 roster)
    s = derive_epoch_secrets(cs, emulator_epoch_secret, Profile.DRAFT_00)
    base = s.epoch_base_secret
    return EmulationEpoch(
        epoch=epoch,
        epoch_id=s.epoch_id,
        leaf_count=leaf_count,
        own_leaf=own_leaf,
        roster=dict(roster),
        generation_id_secret=s.generation_id_secret,
        pprf=PPRF(cs, base, PPRF_DEPTH),
        encryption_key=s.epoch_encryption_key,
        base_secret=base if keep_base_secret else None,
    )


def open_latest_epoch(cs: CipherSuite, emulator_epoch_secret: bytes, epoch: int,
                      leaf_count: int, own_leaf: LeafIndex, roster: Mapping[int, bytes]
                      ) -> EmulationEpoch:
    """latest §5.2: the five epoch secrets; epoch_base_secret becomes the root of the
    epoch's Virtual Client Operation Secret Tree (over the emulation group's `leaf_count`
    leaves) and is not kept apart from it; reuse_guard_secret is kept as reference data
    (the reuse guard of a LeafNode from this epoch, §5.6.2). No PPRF."""
    s = derive_epoch_secrets(cs, emulator_epoch_secret, Profile.LATEST)
    return EmulationEpoch(
        epoch=epoch,
        epoch_id=s.epoch_id,
        leaf_count=leaf_count,
        own_leaf=own_leaf,
        roster=dict(roster),
        generation_id_secret=s.generation_id_secret,
        pprf=None,
        encryption_key=s.epoch_encryption_key,
        tree=OperationSecretTree(cs, s.epoch_id, s.epoch_base_secret, leaf_count),
        reuse_guard_secret=s.reuse_guard_secret,
    )


class EpochStore:
    """The emulation epochs an emulator holds, by epoch number and by epoch_id."""

    def __init__(self, retained_epochs: int = RETAINED_EPOCHS) -> None:
        if retained_epochs < 0:
            raise ParameterError("retained_epochs must be >= 0 (P19)")
        self.retained_epochs = retained_epochs
        self.epochs: dict[int, EmulationEpoch] = {}

    def add(self, epoch: EmulationEpoch) -> None:
        if epoch.epoch in self.epochs:
            raise ParameterError(f"emulation epoch {epoch.epoch} is already open")
        self.epochs[epoch.epoch] = epoch
        newest = max(self.epochs)
        for e in self.epochs.values():
            if e.epoch < newest - self.retained_epochs:
                e.drop_derivation_secrets()

    @property
    def latest(self) -> EmulationEpoch:
        if not self.epochs:
            raise ParameterError("no emulation epoch is open")
        return self.epochs[max(self.epochs)]

    def by_id(self, epoch_id: bytes) -> EmulationEpoch:
        """The epoch an epoch_id names; VC-EPOCH-UNKNOWN when this emulator holds no
        such epoch (never seen, or deleted because nothing referenced it)."""
        for e in self.epochs.values():
            if e.epoch_id == epoch_id:
                return e
        fail("VC-EPOCH-UNKNOWN", "no emulation epoch with this epoch_id is held (unknown "
                                 "or deleted)")

    def for_derivation(self, epoch_id: bytes) -> EmulationEpoch:
        """The epoch, which must still hold its derivation secrets (P19):
        VC-EPOCH-DELETED when they are gone (the group needs an external join)."""
        e = self.by_id(epoch_id)
        if not e.can_derive:
            fail("VC-EPOCH-DELETED", f"the derivation secrets of emulation epoch {e.epoch} "
                                     "were deleted (P19: outside the retention window)")
        return e

    def collect(self, referenced: Iterable[bytes]) -> list[int]:
        """Delete every epoch outside the window that no live key material references
        (by epoch_id). Returns the epoch numbers deleted."""
        keep = set(referenced)
        newest = max(self.epochs) if self.epochs else 0
        gone = [n for n, e in self.epochs.items()
                if n < newest - self.retained_epochs and e.epoch_id not in keep]
        for n in gone:
            del self.epochs[n]
        return gone

    def collect_quiescent(self, referenced: Iterable[bytes]) -> list[int]:
        """The model's deletion rule at quiescence (the caller asserts the emulator has
        processed everything the DS holds for it): delete every epoch that no live key
        material references (by epoch_id), except the latest, regardless of the P19
        window. Returns the epoch numbers deleted."""
        if not self.epochs:
            return []
        keep = set(referenced)
        newest = max(self.epochs)
        gone = [n for n, e in self.epochs.items()
                if n != newest and e.epoch_id not in keep]
        for n in gone:
            del self.epochs[n]
        return gone
