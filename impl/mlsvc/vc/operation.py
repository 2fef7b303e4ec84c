"""Operation secrets and the key material derived from them
(draft-ietf-mls-virtual-clients-00 §5.2; profile P3, P4, P5, P17, Q3, Q6, Q7, Q9, Q12).

    struct { uint32 leaf_index; opaque random<V>; } HashInput          (§5.2, Q6)
    pprf_input       = Hash(HashInput)                                 (emulation suite)
    PPRF leaf        = first 4 bytes of pprf_input, big-endian         (P3)
    operation_secret = VirtualClientSecret(pprf_input) = PPRF(leaf)    (§5.2, P2)

    signature_key_secret   = DeriveSecret(operation_secret, "Signature Key")    (P4)
    encryption_key_secret  = DeriveSecret(operation_secret, "Encryption Key")
    init_key_secret        = DeriveSecret(operation_secret, "Init Key")
    path_generation_secret = DeriveSecret(operation_secret, "Path Generation")
    external_init_secret   = DeriveSecret(operation_secret, "External Init")    (P17)

(The literal reading of §5.2, finding F1, reads all five from epoch_base_secret
instead: `literal_subsecrets`, `operation_keys(literal_p4_subsecrets=True)`; every
operation of an epoch then has the same keys. Never for deployment.)

Key pairs (P5, Q3, Q12): HPKE keys are DeriveKeyPair(secret) of the higher-level group's
KEM; signature keys the higher-level group's scheme's `derive_key_pair` (EdDSA seed
prefix, ECDSA through the curve's DHKEM). path_generation_secret is the first path
secret of an UpdatePath (Q9).

Who punctures (P3, Q7). The deriving emulator draws `random` (Kdf.Nh bytes); if its PPRF
leaf is already punctured it draws again (counted: `Derivation.resamples`). Every
emulator punctures the leaf at its first derivation and keeps a `RetainedOperation`;
a later request for the same leaf is served from it only if (leaf_index, random) match,
otherwise it is a collision (VC-PPRF-COLLISION; two emulators landing on one 32-bit
leaf would get identical keys, finding F5). Derivation is two-phase: `plan_*` computes
without touching the PPRF, `commit_derivation` punctures and retains, so a message that
fails later checks leaves the state unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from mlsvc.checks import fail
from mlsvc.codec import Writer
from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import derive_secret
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import StateError
from mlsvc.ext.pprf import input_from_bytes
from mlsvc.vc.codepoints import (
    ENCRYPTION_KEY_LABEL,
    EXTERNAL_INIT_LABEL,
    INIT_KEY_LABEL,
    PATH_GENERATION_LABEL,
    PPRF_DEPTH,
    SIGNATURE_KEY_LABEL,
)
from mlsvc.vc.epoch import EmulationEpoch, RetainedOperation
from mlsvc.vc.operation_tree import KeyPackageSubSecrets, OperationSubSecrets

MAX_RESAMPLES = 64
"""P3: a deriver whose PPRF leaf is punctured samples again; 64 failures in a row mean
the PPRF is exhausted (practically impossible below ~2^31 punctures), a StateError."""


def hash_input(leaf_index: int, random: bytes) -> bytes:
    """TLS encoding of HashInput { uint32 leaf_index; opaque random<V>; } (Q6)."""
    w = Writer()
    w.u32(leaf_index)
    w.opaque(random)
    return w.bytes()


def pprf_leaf(cs: CipherSuite, leaf_index: int, random: bytes) -> int:
    """P3: the PPRF leaf = the first 4 bytes of Hash(HashInput), big-endian."""
    return input_from_bytes(cs.hash(hash_input(leaf_index, random)), PPRF_DEPTH)


def check_random(cs: CipherSuite, random: bytes) -> None:
    """Q6: `random` is exactly Kdf.Nh bytes; a receiver rejects any other length."""
    if len(random) != cs.nh:
        fail("VC-RANDOM-LENGTH", f"random of {len(random)} bytes, want Kdf.Nh = {cs.nh}")


@dataclass(frozen=True)
class Derivation:
    """An operation secret, computed but not yet committed (see the module docstring):
    `fresh` when the PPRF leaf still has to be punctured, else served from Q7's entry."""

    epoch: EmulationEpoch
    leaf_index: int
    random: bytes
    leaf: int  # the PPRF leaf
    operation_secret: bytes
    fresh: bool
    resamples: int = 0


def plan_rederivation(cs: CipherSuite, epoch: EmulationEpoch, leaf_index: int,
                      random: bytes) -> Derivation:
    """A receiver re-derives an operation named by (epoch, leaf_index, random) (§5.2:
    "other emulator clients can derive the operation_secret"). VC-RANDOM-LENGTH,
    VC-SENDER-NOT-EMULATOR (leaf_index was no emulator at that epoch), VC-EPOCH-DELETED
    (no derivation secrets), VC-PPRF-COLLISION (Q7)."""
    check_random(cs, random)
    if leaf_index not in epoch.roster:
        fail("VC-SENDER-NOT-EMULATOR",
             f"leaf {leaf_index} is no emulator of emulation epoch {epoch.epoch}")
    if epoch.pprf is None:
        fail("VC-EPOCH-DELETED", f"emulation epoch {epoch.epoch} has no derivation secrets")
    x = pprf_leaf(cs, leaf_index, random)
    if epoch.pprf.is_punctured(x):
        kept = epoch.retained.get(x)
        if kept is None or kept.leaf_index != leaf_index or kept.random != random:
            fail("VC-PPRF-COLLISION", f"PPRF leaf {x:#010x} of emulation epoch {epoch.epoch} "
                                      "is punctured for another operation (Q7, F5)")
        return Derivation(epoch, leaf_index, random, x, kept.operation_secret, fresh=False)
    return Derivation(epoch, leaf_index, random, x, epoch.pprf.evaluate(x), fresh=True)


def _draw(cs: CipherSuite, epoch: EmulationEpoch, rng: RandomSource
          ) -> tuple[bytes, int, int]:
    """P3: draw `random` until the deriver's PPRF leaf is not punctured; returns
    (random, leaf, resamples)."""
    if epoch.pprf is None:
        raise StateError(f"emulation epoch {epoch.epoch} can no longer derive (P19)")
    for resamples in range(MAX_RESAMPLES):
        random = rng(cs.nh)
        if len(random) != cs.nh:
            raise StateError("the random source returned the wrong number of bytes")
        x = pprf_leaf(cs, epoch.own_leaf, random)
        if not epoch.pprf.is_punctured(x):
            return random, x, resamples
    raise StateError("no unpunctured PPRF leaf after 64 draws")


def plan_derivation(cs: CipherSuite, epoch: EmulationEpoch, rng: RandomSource) -> Derivation:
    """The deriving emulator's new operation in `epoch` (its own leaf index; P3
    resampling when the drawn leaf is punctured), not punctured yet."""
    random, x, resamples = _draw(cs, epoch, rng)
    assert epoch.pprf is not None
    return Derivation(epoch, int(epoch.own_leaf), random, x, epoch.pprf.evaluate(x),
                      fresh=True, resamples=resamples)


def derive_and_commit(cs: CipherSuite, epoch: EmulationEpoch, rng: RandomSource
                      ) -> Derivation:
    """`plan_derivation` and `commit_derivation` in one, for the deriving emulator, who
    punctures at once (P3): the same draws, secret and resulting state, with one walk
    down the PPRF (evaluate and puncture together) instead of two."""
    random, x, resamples = _draw(cs, epoch, rng)
    assert epoch.pprf is not None
    secret = epoch.pprf.evaluate_and_puncture(x)
    epoch.retained[x] = RetainedOperation(int(epoch.own_leaf), random, secret)
    return Derivation(epoch, int(epoch.own_leaf), random, x, secret, fresh=False,
                      resamples=resamples)


def commit_derivation(d: Derivation) -> None:
    """Puncture the PPRF leaf and keep the Q7 entry (no-op for an entry already kept)."""
    if not d.fresh:
        return
    pprf = d.epoch.pprf
    if pprf is None:
        raise StateError(f"emulation epoch {d.epoch.epoch} lost its PPRF meanwhile")
    pprf.puncture(d.leaf)
    d.epoch.retained[d.leaf] = RetainedOperation(d.leaf_index, d.random, d.operation_secret)


def leaf_node_secret(cs: CipherSuite, operation_secret: bytes) -> bytes:
    """P8: an operation's leaf_node_secret, its encryption_key_secret
    (DeriveSecret(operation_secret, "Encryption Key"), the emulation group's suite)."""
    return derive_secret(cs, operation_secret, ENCRYPTION_KEY_LABEL)


@dataclass(frozen=True)
class OperationSecrets:
    """The sub-secrets of one operation_secret (P4, P17)."""

    signature_key_secret: bytes
    encryption_key_secret: bytes
    init_key_secret: bytes
    path_generation_secret: bytes
    external_init_secret: bytes

    @classmethod
    def of(cls, cs: CipherSuite, operation_secret: bytes) -> OperationSecrets:
        """DeriveSecret(operation_secret, label) with the emulation group's suite (Q3)."""
        return cls(*(derive_secret(cs, operation_secret, label) for label in (
            SIGNATURE_KEY_LABEL, ENCRYPTION_KEY_LABEL, INIT_KEY_LABEL, PATH_GENERATION_LABEL,
            EXTERNAL_INIT_LABEL)))


@dataclass(frozen=True)
class OperationKeys:
    """The key material of one operation in a higher-level group's suite (P5, Q3, Q9):
    (private, public) pairs, the first path secret and the ExternalInit seed. The init
    key pair is derived on first use of `init` (only a KeyPackage needs it; a commit,
    an Update or a sibling's re-derivation does not)."""

    signature: tuple[bytes, bytes]
    encryption: tuple[bytes, bytes]
    path_secret: bytes
    external_init_seed: bytes
    leaf_node_secret: bytes  # P8: encryption_key_secret, the reuse guard's key input
    init_key_secret: bytes = field(repr=False)
    group_suite: CipherSuite = field(repr=False, compare=False)

    @cached_property
    def init(self) -> tuple[bytes, bytes]:
        """The init key pair, DeriveKeyPair(init_key_secret) of the group's KEM."""
        return self.group_suite.kem.derive_key_pair(self.init_key_secret)

    @classmethod
    def of(cls, group_suite: CipherSuite, secrets: OperationSecrets) -> OperationKeys:
        return cls(
            signature=group_suite.signature.derive_key_pair(secrets.signature_key_secret),
            encryption=group_suite.kem.derive_key_pair(secrets.encryption_key_secret),
            path_secret=secrets.path_generation_secret,
            external_init_seed=secrets.external_init_secret,
            leaf_node_secret=secrets.encryption_key_secret,
            init_key_secret=secrets.init_key_secret,
            group_suite=group_suite,
        )


def literal_subsecrets(cs: CipherSuite, epoch: EmulationEpoch) -> OperationSecrets:
    """Finding F1 (readings.literal_p4_subsecrets): draft-00 §5.2 taken literally,
    "signature_key_secret = DeriveSecret(epoch_base_secret, "Signature Key")" and the
    others likewise: the sub-secrets of every operation of `epoch`. The epoch must keep
    epoch_base_secret (it does only under that reading; StateError otherwise)."""
    if epoch.base_secret is None:
        raise StateError(f"emulation epoch {epoch.epoch} keeps no epoch_base_secret (only "
                         "the literal reading literal_p4_subsecrets does)")
    return OperationSecrets.of(cs, epoch.base_secret)


def operation_keys(emulation_suite: CipherSuite, group_suite: CipherSuite,
                   d: Derivation, *, literal_p4_subsecrets: bool = False) -> OperationKeys:
    """The keys of a derivation for a group of `group_suite` (Q3: the virtual client
    joins only groups whose KDF is the emulation group's, so every seed is long enough).
    `literal_p4_subsecrets`: finding F1, the sub-secrets from epoch_base_secret
    (`literal_subsecrets`), the same for every operation of the epoch."""
    if group_suite.nh != emulation_suite.nh:
        fail("VC-SUITE-KDF", "the higher-level group's KDF differs from the emulation "
                             "group's (Q3)")
    if literal_p4_subsecrets:
        return OperationKeys.of(group_suite, literal_subsecrets(emulation_suite, d.epoch))
    return OperationKeys.of(group_suite, OperationSecrets.of(emulation_suite,
                                                             d.operation_secret))


def latest_operation_keys(emulation_suite: CipherSuite, group_suite: CipherSuite,
                          secrets: OperationSubSecrets | KeyPackageSubSecrets
                          ) -> OperationKeys:
    """The later text's key material (profile "latest", latest §5.2, §5.3): key pairs of
    the higher-level group's suite from the sub-secrets of a leaf_node operation
    (`Operation.sub_secrets`: a path_generation_secret, the UpdatePath's first path
    secret) or of a KeyPackage seed (`KeyPackageBatch.sub_secrets`: no path secret). No
    ExternalInit seed: the later text carries the init secret in the DerivationInfo.
    VC-SUITE-KDF as for draft-00 (Q3, reading R3)."""
    if group_suite.nh != emulation_suite.nh:
        fail("VC-SUITE-KDF", "the higher-level group's KDF differs from the emulation "
                             "group's (Q3)")
    path = (secrets.path_generation_secret if isinstance(secrets, OperationSubSecrets)
            else b"")
    return OperationKeys(
        signature=group_suite.signature.derive_key_pair(secrets.signature_key_secret),
        encryption=group_suite.kem.derive_key_pair(secrets.encryption_key_secret),
        path_secret=path,
        external_init_seed=b"",
        leaf_node_secret=secrets.encryption_key_secret,
        init_key_secret=secrets.init_key_secret,
        group_suite=group_suite,
    )
