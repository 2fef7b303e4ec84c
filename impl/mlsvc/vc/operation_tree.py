"""The later text's Virtual Client Operation Secret Tree (draft-ietf-mls-virtual-clients-
latest §5.2, "Generating Virtual Client Secrets"; profile "latest", mlsvc.vc.profiles),
which replaces draft-00's PPRF (mlsvc.vc.operation). The Emulator uses it for every
latest epoch (`EmulationEpoch.tree`); draft-00's behaviour does not depend on it.

Theory of operation (latest §5.2; section numbers of the rendered later text, whose
"Client emulation" is §5). Per emulation epoch, with the emulation group's suite:

    tree root                 = epoch_base_secret       (not RFC 9420's encryption_secret)
    left / right child        = ExpandWithLabel(parent, "tree", "left"/"right", Kdf.Nh)
                                (RFC 9420 §9, over the emulation group's leaves, blanks
                                included: `mlsvc.tree.secret_tree.pop_leaf_secret`)
    operation_ratchet_secret[operation_type][0]
                              = ExpandWithLabel(leaf_secret, "vc operation init",
                                                operation_type, Kdf.Nh)
                                for key_package(1), leaf_node(2), application(3), the
                                uint8 VirtualClientOperationType as context; the
                                leaf_secret is then deleted
    operation_generation_secret   = DeriveSecret(operation_ratchet_secret, "VC Operation Secret")
    next_operation_ratchet_secret = DeriveSecret(operation_ratchet_secret, "VC Operation Ratchet")
    operation_secret          = ExpandWithLabel(operation_generation_secret, "vc operation",
                                                OperationContext, Kdf.Nh)

    struct { opaque epoch_id<V>; uint32 leaf_index; uint32 generation;
             VirtualClientOperationType operation_type;
             opaque operation_context<V>; } OperationContext
    operation_context = "" (key_package), the higher-level group_id (leaf_node),
                        application-defined (application)

    key_package_seed_secret   = ExpandWithLabel(operation_secret, "key package seed",
                                                KeyPackageSeedContext, Kdf.Nh)
                                struct { uint32 key_package_index; } KeyPackageSeedContext
    signature_key_secret / encryption_key_secret / init_key_secret / path_generation_secret
                              = DeriveSecret(operation_secret, "Signature Key" / "Encryption
                                Key" / "Init Key" / "Path Generation")   (no seed)
    signature_key_secret / encryption_key_secret / init_key_secret
                              = DeriveSecret(key_package_seed_secret, same labels)   (seed)
    epoch_secret (group creation, §5.4)
                              = DeriveSecret(key_package_seed_secret, "Group Creation")
                                with the higher-level group's suite

Deletion (latest §5.2): a node secret goes once its children exist, a leaf secret once
the three initial ratchet secrets exist, a ratchet secret and its generation secret once
the operation secret and the next ratchet secret exist. Deriving an operation secret
consumes its generation whether or not the operation succeeds: nothing here gives a
generation back, so a retry takes a fresh one. A KeyPackage batch's operation secret is
not kept once its seeds are derived (`KeyPackageBatch` holds only the seeds).
RetainedOperationSecrets / RetainedKeyPackageMaterial (Variant A state transfer) are the
caller's to keep or delete: the tree never holds an operation secret.

Readings (where the text leaves a choice; each is this module's, and named here):
- R1, skipped generations. The text: an emulator that learns of generation n of a ratchet
  at m < n "derives and retains the operation secrets for the skipped generations m, ...,
  n-1 in the same way RFC 9420 handles out-of-order PrivateMessages". An operation_secret
  binds its OperationContext, which for a generation not yet seen is unknown (the group_id
  of a leaf_node operation), so what is retained is each skipped generation's
  operation_generation_secret: the per-generation, context-free value, as RFC 9420
  retains a skipped generation's key and nonce and never its ratchet secret. It is
  deleted when its operation is derived or when it leaves the window.
- R2, bounds ("Implementations SHOULD bound the number of skipped generations they
  retain"): the secret tree's, max_forward_distance (1000) and out_of_order_tolerance (5);
  a generation below the newest by more than the tolerance is deleted.
- R3, suites: the tree, the ratchets, the OperationContext binding, the seeds and the
  sub-secrets use the emulation group's suite (the text names a suite only for the group
  creation epoch secret, §5.4, and for §5.6.2/§5.6.3; draft-00 profile Q3 reads the same).
- R4, receipt consumes: a sibling re-deriving an operation consumes that generation of the
  deriver's ratchet in its own tree too ("advance the same operation-type ratchet"); a
  second operation naming it is refused (VC-OPERATION-GENERATION). A caller that has to
  undo a re-derivation for a message it then rejects copies the state first
  (`OperationTreeState.copy`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mlsvc.checks import fail
from mlsvc.codec import Writer
from mlsvc.crypto.labels import derive_secret, expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError, StateError
from mlsvc.tree.math import root
from mlsvc.tree.secret_tree import (
    DEFAULT_MAX_FORWARD_DISTANCE,
    DEFAULT_OUT_OF_ORDER_TOLERANCE,
    MAX_GENERATION,
    GenerationTooFarError,
    check_config,
    pop_leaf_secret,
)
from mlsvc.types import LeafCount, LeafIndex
from mlsvc.vc.codepoints import (
    ENCRYPTION_KEY_LABEL,
    GROUP_CREATION_LABEL,
    INIT_KEY_LABEL,
    KEY_PACKAGE_SEED_LABEL,
    OPERATION_GENERATION_SECRET_LABEL,
    OPERATION_INIT_LABEL,
    OPERATION_RATCHET_LABEL,
    OPERATION_SECRET_LABEL,
    PATH_GENERATION_LABEL,
    SIGNATURE_KEY_LABEL,
    OperationType,
)

MAX_UINT32 = 0xFFFF_FFFF


def _uint32(name: str, value: int) -> int:
    """latest §5.2, §5.5.1: leaf_index, generation and key_package_index are uint32s
    (OperationContext, KeyPackageSeedContext); ParameterError otherwise."""
    if not 0 <= value <= MAX_UINT32:
        raise ParameterError(f"{name} {value} is not a uint32")
    return value


def operation_type_of(value: OperationType | int) -> OperationType:
    """latest §6.1.2 VirtualClientOperationType: one of the three non-reserved values;
    ParameterError for reserved(0) or anything this document does not define (§5.2: "for
    each non-reserved VirtualClientOperationType defined in this document")."""
    try:
        return OperationType(value)
    except ValueError:
        raise ParameterError(f"operation_type {value!r} is not key_package(1), leaf_node(2) "
                             "or application(3)") from None


def check_operation_context(operation_type: OperationType, operation_context: bytes) -> None:
    """latest §5.2: "For key_package operations, operation_context is a zero-length octet
    string" (ParameterError otherwise); for leaf_node it is the higher-level group_id and
    for application application-defined (any octet string)."""
    if operation_type is OperationType.KEY_PACKAGE and operation_context:
        raise ParameterError("a key_package operation's operation_context is zero-length")


def encode_operation_context(epoch_id: bytes, leaf_index: int, generation: int,
                             operation_type: OperationType | int,
                             operation_context: bytes) -> bytes:
    """latest §5.2: the TLS encoding of struct { opaque epoch_id<V>; uint32 leaf_index;
    uint32 generation; VirtualClientOperationType operation_type; opaque
    operation_context<V>; } OperationContext (the operation type a uint8, §6.1.2)."""
    op = operation_type_of(operation_type)
    check_operation_context(op, operation_context)
    w = Writer()
    w.opaque(epoch_id)
    w.u32(_uint32("leaf_index", leaf_index))
    w.u32(_uint32("generation", generation))
    w.u8(op)
    w.opaque(operation_context)
    return w.bytes()


def initial_ratchet_secret(cs: CipherSuite, leaf_secret: bytes,
                           operation_type: OperationType | int) -> bytes:
    """latest §5.2: operation_ratchet_secret[operation_type][0] = ExpandWithLabel(
    leaf_secret, "vc operation init", operation_type, Kdf.Nh), the operation type
    TLS-encoded (one byte)."""
    op = operation_type_of(operation_type)
    return expand_with_label(cs, leaf_secret, OPERATION_INIT_LABEL, bytes([op]), cs.nh)


def operation_generation_secret(cs: CipherSuite, ratchet_secret: bytes) -> bytes:
    """latest §5.2: operation_generation_secret = DeriveSecret(operation_ratchet_secret,
    "VC Operation Secret")."""
    return derive_secret(cs, ratchet_secret, OPERATION_GENERATION_SECRET_LABEL)


def next_ratchet_secret(cs: CipherSuite, ratchet_secret: bytes) -> bytes:
    """latest §5.2: next_operation_ratchet_secret = DeriveSecret(operation_ratchet_secret,
    "VC Operation Ratchet")."""
    return derive_secret(cs, ratchet_secret, OPERATION_RATCHET_LABEL)


def bind_operation_secret(cs: CipherSuite, generation_secret: bytes,
                          encoded_context: bytes) -> bytes:
    """latest §5.2: operation_secret = ExpandWithLabel(operation_generation_secret,
    "vc operation", OperationContext, Kdf.Nh) (`encoded_context` from
    `encode_operation_context`)."""
    return expand_with_label(cs, generation_secret, OPERATION_SECRET_LABEL, encoded_context,
                             cs.nh)


def key_package_seed_secret(cs: CipherSuite, operation_secret: bytes,
                            key_package_index: int) -> bytes:
    """latest §5.2 (and §5.5.1): key_package_seed_secret = ExpandWithLabel(
    operation_secret, "key package seed", KeyPackageSeedContext, Kdf.Nh) with
    struct { uint32 key_package_index; } KeyPackageSeedContext."""
    w = Writer()
    w.u32(_uint32("key_package_index", key_package_index))
    return expand_with_label(cs, operation_secret, KEY_PACKAGE_SEED_LABEL, w.bytes(), cs.nh)


def group_creation_epoch_secret(group_suite: CipherSuite, seed_secret: bytes) -> bytes:
    """latest §5.4: the first epoch secret of a higher-level group the virtual client
    creates, epoch_secret = DeriveSecret(key_package_seed_secret, "Group Creation"),
    "computed with the higher-level group's ciphersuite" (the seed is that of index 0 of
    a dedicated key_package operation: `KeyPackageBatch.for_group_creation`)."""
    return derive_secret(group_suite, seed_secret, GROUP_CREATION_LABEL)


@dataclass(frozen=True)
class OperationSubSecrets:
    """latest §5.2: the four MLS-related secrets of an operation that uses no
    per-KeyPackage seed, DeriveSecret(operation_secret, label)."""

    signature_key_secret: bytes = field(repr=False)
    encryption_key_secret: bytes = field(repr=False)
    init_key_secret: bytes = field(repr=False)
    path_generation_secret: bytes = field(repr=False)

    @classmethod
    def of(cls, cs: CipherSuite, operation_secret: bytes) -> OperationSubSecrets:
        """latest §5.2: "Signature Key", "Encryption Key", "Init Key", "Path Generation"
        from operation_secret (emulation suite, reading R3)."""
        return cls(*(derive_secret(cs, operation_secret, label) for label in (
            SIGNATURE_KEY_LABEL, ENCRYPTION_KEY_LABEL, INIT_KEY_LABEL, PATH_GENERATION_LABEL)))


@dataclass(frozen=True)
class KeyPackageSubSecrets:
    """latest §5.2: a KeyPackage's (or a creator LeafNode's, §5.4) three secrets, derived
    from key_package_seed_secret "not directly from the batch operation_secret"."""

    signature_key_secret: bytes = field(repr=False)
    encryption_key_secret: bytes = field(repr=False)
    init_key_secret: bytes = field(repr=False)

    @classmethod
    def of(cls, cs: CipherSuite, seed_secret: bytes) -> KeyPackageSubSecrets:
        """latest §5.2: "Signature Key", "Encryption Key", "Init Key" from
        key_package_seed_secret (emulation suite, reading R3)."""
        return cls(*(derive_secret(cs, seed_secret, label) for label in (
            SIGNATURE_KEY_LABEL, ENCRYPTION_KEY_LABEL, INIT_KEY_LABEL)))


@dataclass(frozen=True)
class Operation:
    """latest §5.2: one derived operation, named by (epoch_id, leaf_index, generation,
    operation_type, operation_context), and its operation_secret. The generation it used
    is consumed in the tree it came from."""

    epoch_id: bytes
    leaf_index: int
    generation: int
    operation_type: OperationType
    operation_context: bytes
    operation_secret: bytes = field(repr=False)

    def sub_secrets(self, cs: CipherSuite) -> OperationSubSecrets:
        """latest §5.2: the four sub-secrets of a leaf_node (or application) operation;
        StateError for a key_package operation, whose KeyPackages take theirs from a
        per-KeyPackage seed (§5.3: "MUST use a per-KeyPackage seed secret")."""
        if self.operation_type is OperationType.KEY_PACKAGE:
            raise StateError("a key_package operation's secrets come from its per-KeyPackage "
                             "seeds (KeyPackageBatch)")
        return OperationSubSecrets.of(cs, self.operation_secret)


@dataclass(frozen=True)
class KeyPackageBatch:
    """latest §5.2, §5.5.1: the per-KeyPackage seeds of one key_package operation
    generation (key_package_index -> key_package_seed_secret). The batch
    operation_secret is not kept: "MUST delete the batch operation_secret after all
    per-KeyPackage material needed for the batch has been derived"; the batch is closed
    (no seed can be added to it later)."""

    epoch_id: bytes
    leaf_index: int
    generation: int
    seeds: dict[int, bytes] = field(repr=False)

    @classmethod
    def from_operation(cls, cs: CipherSuite, operation: Operation,
                       key_package_indices: Iterable[int]) -> KeyPackageBatch:
        """latest §5.5.1: the seed of every KeyPackage of the upload, from the batch
        operation secret. ParameterError for a non-key_package operation, an empty
        batch, an index that is no uint32 or repeated ("The key_package_index values in
        a KeyPackageUpload MUST be unique")."""
        if operation.operation_type is not OperationType.KEY_PACKAGE:
            raise ParameterError("a KeyPackage batch comes from a key_package operation")
        indices = list(key_package_indices)
        _check_indices(indices)
        seeds = {i: key_package_seed_secret(cs, operation.operation_secret, i)
                 for i in indices}
        return cls(operation.epoch_id, operation.leaf_index, operation.generation, seeds)

    def sub_secrets(self, cs: CipherSuite, key_package_index: int) -> KeyPackageSubSecrets:
        """latest §5.2: the three secrets of the KeyPackage `key_package_index`;
        ParameterError for an index not in the batch."""
        seed = self.seeds.get(key_package_index)
        if seed is None:
            raise ParameterError(f"key_package_index {key_package_index} is not in the batch")
        return KeyPackageSubSecrets.of(cs, seed)

    def group_creation_epoch_secret(self, group_suite: CipherSuite) -> bytes:
        """latest §5.4: a group-creation batch is the single index 0; its epoch_secret
        (`group_creation_epoch_secret`). ParameterError for any other batch."""
        if set(self.seeds) != {0}:
            raise ParameterError("a group creation batch holds exactly key_package_index 0")
        return group_creation_epoch_secret(group_suite, self.seeds[0])


@dataclass(slots=True)
class OperationRatchet:
    """latest §5.2: one operation ratchet of a leaf. `secret` is the ratchet secret of
    `generation`, the next generation not yet derived; `retained` maps skipped
    generations to their operation_generation_secret (reading R1)."""

    generation: int
    secret: bytes = field(repr=False)
    retained: dict[int, bytes] = field(default_factory=dict, repr=False)

    def copy(self) -> OperationRatchet:
        """latest §5.2: an independent copy of the ratchet (reading R4)."""
        return OperationRatchet(self.generation, self.secret, dict(self.retained))


@dataclass(slots=True)
class OperationTreeState:
    """latest §5.2, §6.1.2 (SecretTreeState with ratchet_type operation): everything an
    OperationSecretTree holds, as plain data. `nodes` holds the frontier (node index ->
    secret not yet split); `ratchets` (leaf_index, operation_type) -> ratchet."""

    epoch_id: bytes
    leaf_count: int
    max_forward_distance: int
    out_of_order_tolerance: int
    nodes: dict[int, bytes] = field(repr=False)
    ratchets: dict[tuple[int, OperationType], OperationRatchet] = field(default_factory=dict)

    def copy(self) -> OperationTreeState:
        """latest §5.2: an independent copy (reading R4: to roll back a re-derivation)."""
        return OperationTreeState(
            self.epoch_id, self.leaf_count, self.max_forward_distance,
            self.out_of_order_tolerance, dict(self.nodes),
            {k: r.copy() for k, r in self.ratchets.items()})


class OperationSecretTree:
    """latest §5.2: the Virtual Client Operation Secret Tree of one emulation epoch,
    rooted at epoch_base_secret, shaped like the emulation group's ratchet tree
    (`leaf_count` leaves, blanks included, a power of two). Lazy: a leaf is expanded
    when one of its ratchets is first used."""

    __slots__ = ("_cs", "state")

    def __init__(self, cs: CipherSuite, epoch_id: bytes, epoch_base_secret: bytes,
                 leaf_count: int, *,
                 max_forward_distance: int = DEFAULT_MAX_FORWARD_DISTANCE,
                 out_of_order_tolerance: int = DEFAULT_OUT_OF_ORDER_TOLERANCE) -> None:
        """latest §5.2: "The root of the tree is the epoch_base_secret"; ParameterError
        for a leaf count that is no power of two, negative bounds (R2) or an
        epoch_base_secret that is not Kdf.Nh bytes."""
        check_config(leaf_count, max_forward_distance, out_of_order_tolerance)
        if len(epoch_base_secret) != cs.nh:
            raise ParameterError(f"epoch_base_secret must be Kdf.Nh = {cs.nh} bytes")
        self._cs = cs
        self.state = OperationTreeState(
            epoch_id, leaf_count, max_forward_distance, out_of_order_tolerance,
            {root(LeafCount(leaf_count)): epoch_base_secret})

    @classmethod
    def from_state(cls, cs: CipherSuite, state: OperationTreeState) -> OperationSecretTree:
        """latest §6.1.2 (a transferred or stored SecretTreeState): resume from `state`,
        used as is (not copied)."""
        check_config(state.leaf_count, state.max_forward_distance, state.out_of_order_tolerance)
        tree = cls.__new__(cls)
        tree._cs = cs
        tree.state = state
        return tree

    @property
    def epoch_id(self) -> bytes:
        """latest §5.2: the epoch_id bound into every OperationContext of this tree."""
        return self.state.epoch_id

    @property
    def leaf_count(self) -> int:
        """latest §5.2: the emulation group's leaf count at this epoch (blanks included)."""
        return self.state.leaf_count

    def _ratchet(self, leaf_index: int, operation_type: OperationType) -> OperationRatchet:
        """latest §5.2: the ratchet, expanding the leaf on first use: all three initial
        ratchet secrets at once, after which the leaf_secret is deleted ("The leaf_secret
        MUST be deleted immediately after the initial operation ratchet secrets for all
        operation types have been derived")."""
        if not 0 <= leaf_index < self.state.leaf_count:
            raise ParameterError(f"leaf {leaf_index} outside an operation secret tree of "
                                 f"{self.state.leaf_count} leaves")
        ratchets = self.state.ratchets
        ratchet = ratchets.get((leaf_index, operation_type))
        if ratchet is not None:
            return ratchet
        cs = self._cs
        leaf_secret = pop_leaf_secret(cs, self.state.nodes, self.state.leaf_count,
                                      LeafIndex(leaf_index))
        for op in OperationType:
            ratchets[(leaf_index, op)] = OperationRatchet(
                0, initial_ratchet_secret(cs, leaf_secret, op))
        del leaf_secret
        return ratchets[(leaf_index, operation_type)]

    def next_generation(self, leaf_index: int, operation_type: OperationType | int) -> int:
        """latest §5.2: the next unused generation of a ratchet (what `next_operation`
        would consume)."""
        return self._ratchet(leaf_index, operation_type_of(operation_type)).generation

    def _step(self, ratchet: OperationRatchet) -> bytes:
        """latest §5.2: the generation secret of ratchet.generation and the move to
        next_operation_ratchet_secret for generation + 1 (the ratchet secret is
        replaced, i.e. deleted)."""
        cs = self._cs
        generation_secret = operation_generation_secret(cs, ratchet.secret)
        ratchet.secret = next_ratchet_secret(cs, ratchet.secret)
        ratchet.generation += 1
        return generation_secret

    def _operation(self, leaf_index: int, generation: int, op: OperationType,
                   operation_context: bytes, generation_secret: bytes) -> Operation:
        """latest §5.2: bind the OperationContext into operation_secret; the generation
        secret is not kept (the caller's reference is the last)."""
        encoded = encode_operation_context(self.state.epoch_id, leaf_index, generation, op,
                                           operation_context)
        return Operation(self.state.epoch_id, leaf_index, generation, op, operation_context,
                         bind_operation_secret(self._cs, generation_secret, encoded))

    def next_operation(self, leaf_index: int, operation_type: OperationType | int,
                       operation_context: bytes = b"") -> Operation:
        """latest §5.2, the deriving emulator: "uses the next unused generation of its own
        operation ratchet for that operation type" (`leaf_index` is its own leaf index
        in this epoch), consumed at once: "Deriving an operation_secret consumes the
        corresponding operation-ratchet generation, even if the virtual-client operation
        does not result in a higher-level MLS message that is accepted". StateError when
        the ratchet has no uint32 generation left; ParameterError for a bad type,
        context (key_package: zero-length) or leaf."""
        op = operation_type_of(operation_type)
        check_operation_context(op, operation_context)
        ratchet = self._ratchet(leaf_index, op)
        generation = ratchet.generation
        if generation > MAX_GENERATION:
            raise StateError("operation ratchet exhausted (generation is a uint32)")
        generation_secret = self._step(ratchet)
        return self._operation(leaf_index, generation, op, operation_context,
                               generation_secret)

    def operation_at(self, leaf_index: int, operation_type: OperationType | int,
                     generation: int, operation_context: bytes = b"") -> Operation:
        """latest §5.2, another emulator: "Given an epoch_id, operation_type, generation,
        operation_context, and the leaf_index of the emulator client performing the
        virtual client operation, other emulator clients can derive the operation_secret,
        advance the same operation-type ratchet". The generation is consumed (R4);
        generations skipped on the way keep their generation secret within the window
        (R1, R2).

        VC-OPERATION-GENERATION for a generation already consumed (or deleted out of the
        window); GenerationTooFarError (mlsvc.tree.secret_tree) beyond
        max_forward_distance; ParameterError for a bad type, context, leaf or a
        generation that is no uint32."""
        op = operation_type_of(operation_type)
        check_operation_context(op, operation_context)
        _uint32("generation", generation)
        ratchet = self._ratchet(leaf_index, op)
        if generation < ratchet.generation:
            kept = ratchet.retained.pop(generation, None)
            if kept is None:
                fail("VC-OPERATION-GENERATION",
                     f"{op.name.lower()} generation {generation} of leaf {leaf_index} was "
                     f"consumed or deleted (ratchet at {ratchet.generation})")
            return self._operation(leaf_index, generation, op, operation_context, kept)
        st = self.state
        if generation - ratchet.generation > st.max_forward_distance:
            raise GenerationTooFarError(
                f"{op.name.lower()} generation {generation} of leaf {leaf_index} is more "
                f"than {st.max_forward_distance} ahead of {ratchet.generation}")
        lowest_kept = generation - st.out_of_order_tolerance
        generation_secret = b""
        while ratchet.generation <= generation:
            j = ratchet.generation
            secret_j = self._step(ratchet)
            if j == generation:
                generation_secret = secret_j
            elif j >= lowest_kept:
                ratchet.retained[j] = secret_j
        for old in [g for g in ratchet.retained if g < lowest_kept]:
            del ratchet.retained[old]
        return self._operation(leaf_index, generation, op, operation_context,
                               generation_secret)

    def release(self, leaf_index: int, operation_type: OperationType | int,
                generation: int) -> bool:
        """latest §5.2 ("MUST delete any retained secret material derived from the failed
        operation after the client determines that the operation will not be used"):
        delete a skipped generation's retained secret, which consumes the generation;
        whether it was held."""
        ratchet = self._ratchet(leaf_index, operation_type_of(operation_type))
        return ratchet.retained.pop(generation, None) is not None

    # -- KeyPackage batches (latest §5.2, §5.4, §5.5.1) --------------------------------

    def next_key_package_batch(self, leaf_index: int,
                               key_package_indices: Iterable[int]) -> KeyPackageBatch:
        """latest §5.5.1, the uploading emulator: one fresh key_package generation
        (zero-length operation_context) for the whole upload, a seed per
        key_package_index, the batch operation_secret dropped. Also latest §5.4 with
        indices [0] for the creator LeafNode of a new group (no upload)."""
        indices = list(key_package_indices)
        _check_indices(indices)
        operation = self.next_operation(leaf_index, OperationType.KEY_PACKAGE)
        return KeyPackageBatch.from_operation(self._cs, operation, indices)

    def key_package_batch_at(self, leaf_index: int, generation: int,
                             key_package_indices: Iterable[int]) -> KeyPackageBatch:
        """latest §5.2 ("For key_package operations, they also use key_package_index to
        derive the per-KeyPackage seed secret"): another emulator's seeds of the batch a
        KeyPackageUpload (or a creator LeafNode's DerivationInfo) names; the generation is
        consumed (`operation_at`)."""
        indices = list(key_package_indices)
        _check_indices(indices)
        operation = self.operation_at(leaf_index, OperationType.KEY_PACKAGE, generation)
        return KeyPackageBatch.from_operation(self._cs, operation, indices)


def _check_indices(indices: list[int]) -> None:
    """latest §5.5.1: a batch's key_package_index values are uint32s, unique, and at
    least one; checked before a generation is consumed."""
    if not indices:
        raise ParameterError("a KeyPackage batch has at least one KeyPackage")
    for i in indices:
        _uint32("key_package_index", i)
    if len(set(indices)) != len(indices):
        raise ParameterError("the key_package_index values of a batch must be unique")


@dataclass(frozen=True)
class PlannedOperation:
    """latest §5.2 with reading R4, the receiving side: another emulator's operation
    re-derived on a copy of this emulator's tree, so that a message rejected later
    leaves the tree as it was. `commit` consumes the generation in the real tree (the
    same derivation again: the same secret)."""

    cs: CipherSuite
    tree: OperationSecretTree
    operation: Operation

    @classmethod
    def plan(cls, cs: CipherSuite, tree: OperationSecretTree, leaf_index: int,
             operation_type: OperationType | int, generation: int,
             operation_context: bytes = b"") -> PlannedOperation:
        """`operation_at` on a copy of `tree`'s state (its checks included:
        VC-OPERATION-GENERATION, GenerationTooFarError, ParameterError)."""
        copy = OperationSecretTree.from_state(cs, tree.state.copy())
        return cls(cs, tree, copy.operation_at(leaf_index, operation_type, generation,
                                               operation_context))

    def commit(self) -> None:
        """Consume the planned generation in the real tree."""
        op = self.operation
        self.tree.operation_at(op.leaf_index, op.operation_type, op.generation,
                               op.operation_context)
