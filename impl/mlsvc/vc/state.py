"""An emulator's state as bytes: the NewEmulatorClientState of a Welcome (draft-00 §4.1,
profile P13) and the records of its durable store (P23), in the TLS presentation
language so the wire codecs are reused and every read is exactly consumed.

~~~ tls
struct { uint32 leaf_index; opaque identity<V>; } RosterEntry;
struct {
  uint32 pprf_leaf; uint32 leaf_index; opaque random<V>; opaque operation_secret<V>;
} RetainedOperation;                                        // Q7

struct {
  uint64 epoch;
  opaque epoch_id<V>;
  uint32 leaf_count;                                        // P9: N
  uint32 own_leaf;                                          // the holder's index (P9)
  RosterEntry roster<V>;
  opaque generation_id_secret<V>;                           // Q4
  optional<PPRFState> pprf;                                 // punctured (P2); absent
  optional<opaque> epoch_encryption_key<V>;                 //   outside the P19 window
  RetainedOperation retained<V>;
  select (profile) {                // not on the wire: the reader is told the profile
    case draft-00: struct {};       //   (read_epoch(..., profile), decode_state(...,
                                    //   profile)); draft-00 bytes are unchanged
    case latest:                    // latest §5.2, §6.1.2 (pprf is then absent)
      optional<OperationTreeState> tree;      // absent outside the P19 window, exactly
                                              //   when epoch_encryption_key is
      opaque reuse_guard_secret<V>;           // reference data, like generation_id_secret
  };
} EmulationEpochState;

// latest §6.1.2, ratchet_type operation only: the Virtual Client Operation Secret Tree
struct { uint32 node_index; opaque node_secret<V>; } SecretTreeNodeState;   // §6.1.2
enum { reserved(0), application(1), handshake(2), operation(3), (255) }
  SecretTreeRatchetType;                                                      // §6.1.2
struct {
  uint32 leaf_index;
  SecretTreeRatchetType ratchet_type;            // operation(3), the only one here
  select (ratchet_type) { case operation: VirtualClientOperationType operation_type; };
  uint32 generation;                             // the next generation not yet derived
  opaque next_secret<V>;                         // its ratchet secret
} SecretTreeRatchetState;                                                     // §6.1.2
struct {
  SecretTreeNodeState node_secrets<V>;           // the unexpanded frontier
  SecretTreeRatchetState ratchet_states<V>;      // every expanded leaf: all three types
} SecretTreeState;                                                            // §6.1.2
struct {
  uint32 leaf_index; VirtualClientOperationType operation_type;
  uint32 generation; opaque operation_generation_secret<V>;
} SkippedOperationGeneration;                    // deviation 1 (reading R1)
struct {
  opaque epoch_id<V>;                            // deviation 2: what the tree binds and
  uint32 leaf_count;                             //   its shape (equal to the epoch's)
  uint32 max_forward_distance;                   // deviation 3: the bounds of reading R2
  uint32 out_of_order_tolerance;
  SecretTreeState secret_tree;                   // §6.1.2's layout, byte for byte
  SkippedOperationGeneration skipped<V>;         // deviation 1
} OperationTreeState;
~~~

OperationTreeState (`write_operation_tree_state` / `read_operation_tree_state`) is the
whole `mlsvc.vc.operation_tree.OperationTreeState`. It embeds latest §6.1.2's
SecretTreeState unchanged, and deviates from the text only by what it adds around it:
1. §6.1.2's SecretTreeRatchetState has no place for a skipped generation, which latest
   §5.2 retains "in the same way RFC 9420 handles out-of-order PrivateMessages"; what
   this library retains is the generation's operation_generation_secret (reading R1 of
   mlsvc.vc.operation_tree), carried in `skipped`, outside SecretTreeState so that the
   latter keeps the text's layout.
2. The text's EmulationEpochState carries epoch_id beside the tree and leaves the leaf
   count to the emulation group's tree at that epoch; here both are in the tree's state
   too (a standalone OperationTreeState says everything the tree needs) and the epoch
   reader refuses an epoch whose tree names another epoch_id or leaf count.
3. The skipping bounds (reading R2) travel with the state, so a restored or transferred
   tree keeps the deletion schedule it had.
The encoding is canonical: node_secrets ascend by node_index, ratchet_states by
(leaf_index, operation_type), skipped by (leaf_index, operation_type, generation), and a
decoder refuses any other order or a repetition. Every read is checked (DecodeError): a
leaf count that is a power of two, node indices inside the tree, the nodes and the
expanded leaves tiling the leaves exactly (no secret twice, none missing: §6.1.2
"exactly the retained secrets needed ... MUST NOT contain secrets that have already
been deleted"), ratchet_type operation(3), operation types key_package(1), leaf_node(2)
or application(3), all three ratchets of an expanded leaf, a skipped generation only of
a ratchet present and below its generation, secrets of Kdf.Nh bytes. The rest of the
text's EmulationEpochState (epoch_id, epoch_encryption_key, generation_id_secret,
reuse_guard_secret) is in EmulationEpochState above, whose draft-00 fields come first
and unchanged so that a draft-00 epoch's bytes are what they always were; a latest
reader refuses a PPRF, a reuse_guard_secret that is not Kdf.Nh bytes, and a tree without
epoch_encryption_key or the converse. A ratchet exhausted at generation 2^32 has no
uint32 to say so: writing it is a StateError (it takes 2^32 derivations to get there).

~~~ tls
struct { opaque epoch_id<V>; opaque leaf_node_secret<V>; } LeafOp;              // P8
struct { opaque encryption_key<V>; LeafOp op; } ProposedLeaf;

enum { state_transfer(1), external_join(2), (255) } TransferMode;
struct {
  opaque group_id<V>;
  TransferMode mode;
  select (mode) {
    case state_transfer:
      opaque saved_group<V>;        // mlsvc.group.serialize SavedGroup: key-schedule
                                    // secrets of the epoch, secret tree, the private keys
                                    // of the filtered direct path
      LeafOp active;
      ProposedLeaf proposed<V>;     // sent but uncommitted Updates (draft §4.1 TODO list)
    case external_join: struct {};  // the new emulator joins by external commit (P13)
  };
} HigherGroupState;

struct {
  KeyPackage key_package;
  opaque init_private_key<V>; opaque encryption_private_key<V>;
  Credential credential; opaque signature_private_key<V>; opaque signature_key<V>;
  LeafOp op;
  uint16 group_suite;
} HeldKeyPackage;                                          // live KeyPackages (P13)

struct {
  opaque signature_private_key<V>;  // the virtual client's long-term signing key (Q8)
  EmulationEpochState epochs<V>;    // every emulation epoch still referenced, all of
                                    //   the virtual client's profile (the reader's)
  HigherGroupState groups<V>;       // every higher-level group
  HeldKeyPackage key_packages<V>;   // every announced KeyPackage not yet used
  // only under the literal reading F1 (readings.literal_p4_subsecrets), and only then
  // present: struct { uint64 epoch; opaque epoch_base_secret<V>; } BaseSecret<V>;
} NewEmulatorClientState;                                   // P13, component 0x8003
~~~

A new emulator holds no index in the epochs it is given (it was no member then): its
`own_leaf` there is its index in the emulation group it joins, which the roster of those
epochs does not give to it, so it cannot send before the leaf is rotated (P9,
VC-SEND-BEFORE-ROTATION).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from mlsvc.codec import Reader, Writer, checked_enum
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError, StateError
from mlsvc.ext.pprf import PPRF
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.serialize import load, save
from mlsvc.messages.credentials import Credential
from mlsvc.messages.key_package import KeyPackage
from mlsvc.tree.math import level
from mlsvc.types import LeafIndex, NodeIndex
from mlsvc.vc.codepoints import PPRF_DEPTH, OperationType
from mlsvc.vc.epoch import EmulationEpoch, RetainedOperation
from mlsvc.vc.operation_tree import OperationRatchet, OperationSecretTree, OperationTreeState
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of

STATE_TRANSFER = 1
EXTERNAL_JOIN = 2

OPERATION_RATCHET: Final = 3
"""latest §6.1.2: SecretTreeRatchetType operation(3), the ratchet type of every
SecretTreeRatchetState of a Virtual Client Operation Secret Tree."""

_MAX_UINT32: Final = 0xFFFF_FFFF


@dataclass(frozen=True)
class LeafOp:
    """The operation behind one of the virtual client's LeafNodes in a group: the
    emulation epoch it names (P9, Q4) and leaf_node_secret (P8)."""

    epoch_id: bytes
    leaf_node_secret: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.epoch_id)
        w.opaque(self.leaf_node_secret)

    @classmethod
    def read(cls, r: Reader) -> LeafOp:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True)
class HeldKeyPackage:
    """An announced KeyPackage of the virtual client, held until a Welcome uses it."""

    bundle: KeyPackageBundle
    op: LeafOp
    group_suite: int

    def write(self, w: Writer) -> None:
        b = self.bundle
        b.key_package.write(w)
        w.opaque(b.init_private_key)
        w.opaque(b.encryption_private_key)
        write_identity(w, b.identity)
        self.op.write(w)
        w.u16(self.group_suite)

    @classmethod
    def read(cls, r: Reader) -> HeldKeyPackage:
        kp = KeyPackage.read(r)
        init, enc = r.opaque(), r.opaque()
        ident = read_identity(r)
        return cls(KeyPackageBundle(kp, init, enc, ident), LeafOp.read(r), r.u16())


def write_identity(w: Writer, ident: Identity) -> None:
    ident.credential.write(w)
    w.opaque(ident.signature_private_key)
    w.opaque(ident.signature_public_key)


def read_identity(r: Reader) -> Identity:
    return Identity(Credential.read(r), r.opaque(), r.opaque())


def write_epoch(w: Writer, e: EmulationEpoch) -> None:
    """EmulationEpochState (module docstring): the draft-00 fields, then, exactly when
    the epoch is of the profile latest (`e.profile`, i.e. it holds reuse_guard_secret),
    its operation secret tree (absent outside the window) and reuse_guard_secret; a
    draft-00 epoch's bytes are unchanged. StateError for a latest epoch holding a PPRF or
    a tree that has no OperationTreeState (`write_operation_tree_state`)."""
    w.u64(e.epoch)
    w.opaque(e.epoch_id)
    w.u32(e.leaf_count)
    w.u32(e.own_leaf)

    def entry(w2: Writer, item: tuple[int, bytes]) -> None:
        w2.u32(item[0])
        w2.opaque(item[1])

    w.vector(sorted(e.roster.items()), entry)
    w.opaque(e.generation_id_secret)
    w.optional_with(e.pprf, lambda w2, p: w2.opaque(p.serialize()))
    w.optional_with(e.encryption_key, lambda w2, k: w2.opaque(k))

    def retained(w2: Writer, item: tuple[int, RetainedOperation]) -> None:
        leaf, op = item
        w2.u32(leaf)
        w2.u32(op.leaf_index)
        w2.opaque(op.random)
        w2.opaque(op.operation_secret)

    w.vector(sorted(e.retained.items()), retained)
    reuse_guard_secret = e.reuse_guard_secret
    if reuse_guard_secret is not None:  # e.profile is Profile.LATEST
        if e.pprf is not None:
            raise StateError(f"emulation epoch {e.epoch} of profile latest holds a PPRF")
        w.optional_with(None if e.tree is None else e.tree.state, write_operation_tree_state)
        w.opaque(reuse_guard_secret)


def read_epoch(r: Reader, cs: CipherSuite,
               profile: Profile | str = DEFAULT_PROFILE) -> EmulationEpoch:
    """An EmulationEpochState (module docstring) of the emulation group's suite `cs`,
    written under `profile` (its name or itself; ParameterError for an unknown one): a
    latest epoch carries its operation secret tree (absent outside the window) and
    reuse_guard_secret after the draft-00 fields. DecodeError when malformed
    (ValidationError EXT-PPRF-STATE for a bad PPRF state)."""
    latest = profile_of(profile) is Profile.LATEST
    epoch = r.u64()
    epoch_id = r.opaque()
    leaf_count = r.u32()
    own = LeafIndex(r.u32())
    roster = dict(r.vector(lambda r2: (r2.u32(), r2.opaque())))
    gid_secret = r.opaque()
    pprf_bytes = r.optional(lambda r2: r2.opaque())
    enc = r.optional(lambda r2: r2.opaque())
    retained = dict(r.vector(lambda r2: (r2.u32(), RetainedOperation(r2.u32(), r2.opaque(),
                                                                      r2.opaque()))))
    tree_state: OperationTreeState | None = None
    reuse_guard_secret: bytes | None = None
    if latest:
        tree_state = r.optional(lambda r2: read_operation_tree_state(r2, cs))
        reuse_guard_secret = r.opaque()
        _check_latest_epoch(cs, epoch, epoch_id, leaf_count, pprf_bytes is not None,
                            enc is not None, tree_state, reuse_guard_secret)
    pprf = None if pprf_bytes is None else PPRF.restore(cs, PPRF_DEPTH, pprf_bytes)
    if leaf_count < 1 or leaf_count & (leaf_count - 1):
        raise DecodeError(f"emulation epoch leaf count {leaf_count} is not a power of two")
    tree = None if tree_state is None else OperationSecretTree.from_state(cs, tree_state)
    return EmulationEpoch(epoch, epoch_id, leaf_count, own, roster, gid_secret, pprf, enc,
                          retained, tree=tree, reuse_guard_secret=reuse_guard_secret)


def _check_latest_epoch(cs: CipherSuite, epoch: int, epoch_id: bytes, leaf_count: int,
                        has_pprf: bool, has_key: bool, tree: OperationTreeState | None,
                        reuse_guard_secret: bytes) -> None:
    """The latest epoch's own checks (module docstring); DecodeError."""
    if has_pprf:
        raise DecodeError(f"emulation epoch {epoch} of profile latest carries a PPRF")
    if len(reuse_guard_secret) != cs.nh:
        raise DecodeError(f"emulation epoch {epoch}: reuse_guard_secret is not Kdf.Nh = "
                          f"{cs.nh} bytes")
    if (tree is None) == has_key:
        raise DecodeError(f"emulation epoch {epoch}: the operation secret tree and "
                          "epoch_encryption_key are deleted together (P19)")
    if tree is not None and (tree.epoch_id != epoch_id or tree.leaf_count != leaf_count):
        raise DecodeError(f"emulation epoch {epoch}: its operation secret tree belongs to "
                          "another epoch (epoch_id or leaf count)")


def _u32(what: str, value: int) -> int:
    if not 0 <= value <= _MAX_UINT32:
        raise StateError(f"{what} {value} is not a uint32: the operation secret tree has no "
                         "OperationTreeState")
    return value


def write_operation_tree_state(w: Writer, st: OperationTreeState) -> None:
    """OperationTreeState (module docstring: latest §6.1.2 SecretTreeState with its
    deviations), canonical order. StateError for a value that is no uint32 (an exhausted
    ratchet at generation 2^32, a bound beyond 2^32 - 1)."""
    w.opaque(st.epoch_id)
    w.u32(_u32("leaf_count", st.leaf_count))
    w.u32(_u32("max_forward_distance", st.max_forward_distance))
    w.u32(_u32("out_of_order_tolerance", st.out_of_order_tolerance))

    def node(w2: Writer, item: tuple[int, bytes]) -> None:
        w2.u32(item[0])
        w2.opaque(item[1])

    ratchets = sorted(st.ratchets.items())

    def ratchet(w2: Writer, item: tuple[tuple[int, OperationType], OperationRatchet]) -> None:
        (leaf, op), rt = item
        w2.u32(leaf)
        w2.u8(OPERATION_RATCHET)
        w2.u8(op)
        w2.u32(_u32(f"generation of the {op.name.lower()} ratchet of leaf {leaf}",
                    rt.generation))
        w2.opaque(rt.secret)

    def skipped(w2: Writer, item: tuple[int, OperationType, int, bytes]) -> None:
        w2.u32(item[0])
        w2.u8(item[1])
        w2.u32(item[2])
        w2.opaque(item[3])

    w.vector(sorted(st.nodes.items()), node)
    w.vector(ratchets, ratchet)
    w.vector([(leaf, op, g, secret) for (leaf, op), rt in ratchets
              for g, secret in sorted(rt.retained.items())], skipped)


def _ascending(keys: Sequence[tuple[int, ...]], what: str) -> None:
    for a, b in pairwise(keys):
        if a >= b:
            raise DecodeError(f"operation tree state: {what} not in strictly ascending order")


def _secret(cs: CipherSuite, value: bytes, what: str) -> bytes:
    if len(value) != cs.nh:
        raise DecodeError(f"operation tree state: {what} is not Kdf.Nh = {cs.nh} bytes")
    return value


def _operation_type(value: int) -> OperationType:
    op: OperationType = checked_enum(OperationType, value, "VirtualClientOperationType")
    return op


def _read_ratchet(r: Reader) -> tuple[int, OperationType, int, bytes]:
    leaf = r.u32()
    kind = r.u8()
    if kind != OPERATION_RATCHET:
        raise DecodeError(f"SecretTreeRatchetType {kind} in an operation secret tree (only "
                          f"operation({OPERATION_RATCHET}))")
    return leaf, _operation_type(r.u8()), r.u32(), r.opaque()


def read_operation_tree_state(r: Reader, cs: CipherSuite) -> OperationTreeState:
    """OperationTreeState (module docstring) of the emulation group's suite `cs`, every
    check of the module docstring applied (DecodeError). The result is new: nothing is
    shared with anything else (`OperationSecretTree.from_state` uses it as is)."""
    epoch_id = r.opaque()
    leaf_count = r.u32()
    max_forward_distance = r.u32()
    tolerance = r.u32()
    nodes = r.vector(lambda r2: (r2.u32(), r2.opaque()))
    ratchet_states = r.vector(_read_ratchet)
    skipped = r.vector(lambda r2: (r2.u32(), _operation_type(r2.u8()), r2.u32(),
                                   r2.opaque()))
    if leaf_count < 1 or leaf_count & (leaf_count - 1):
        raise DecodeError(f"operation tree state: leaf count {leaf_count} is not a power "
                          "of two")
    _ascending([(x,) for x, _ in nodes], "node_secrets")
    _ascending([(leaf, op) for leaf, op, _, _ in ratchet_states], "ratchet_states")
    _ascending([(leaf, op, g) for leaf, op, g, _ in skipped], "skipped generations")
    width = 2 * leaf_count - 1
    spans: list[tuple[int, int]] = []  # (first leaf, leaves) of every secret held
    for x, secret in nodes:
        if x >= width:
            raise DecodeError(f"operation tree state: node {x} outside a tree of "
                              f"{leaf_count} leaves")
        _secret(cs, secret, f"the secret of node {x}")
        k = level(NodeIndex(x))
        spans.append(((x - ((1 << k) - 1)) >> 1, 1 << k))
    ratchets: dict[tuple[int, OperationType], OperationRatchet] = {}
    for leaf, op, generation, secret in ratchet_states:
        if leaf >= leaf_count:
            raise DecodeError(f"operation tree state: leaf {leaf} outside a tree of "
                              f"{leaf_count} leaves")
        ratchets[(leaf, op)] = OperationRatchet(
            generation, _secret(cs, secret, f"the ratchet secret of leaf {leaf}"))
    expanded = sorted({leaf for leaf, _ in ratchets})
    for leaf in expanded:
        if any((leaf, op) not in ratchets for op in OperationType):
            raise DecodeError(f"operation tree state: leaf {leaf} lacks one of its three "
                              "operation ratchets")
        spans.append((leaf, 1))
    covered = 0
    for first, count in sorted(spans):
        if first != covered:
            raise DecodeError("operation tree state: " + (
                f"leaf {first} is held twice (node secrets overlap or an expanded leaf "
                "under a node secret)" if first < covered else
                f"no secret for leaves {covered}..{first - 1}"))
        covered = first + count
    if covered != leaf_count:
        raise DecodeError(f"operation tree state: no secret for leaves "
                          f"{covered}..{leaf_count - 1}")
    for leaf, op, generation, secret in skipped:
        held = ratchets.get((leaf, op))
        if held is None:
            raise DecodeError(f"operation tree state: a skipped generation of the "
                              f"{op.name.lower()} ratchet of leaf {leaf}, which is not held")
        if generation >= held.generation:
            raise DecodeError(f"operation tree state: skipped generation {generation} of "
                              f"the {op.name.lower()} ratchet of leaf {leaf} is not below "
                              f"its generation {held.generation}")
        held.retained[generation] = _secret(cs, secret, f"skipped generation {generation}")
    return OperationTreeState(epoch_id, leaf_count, max_forward_distance, tolerance,
                              dict(nodes), ratchets)


@dataclass(frozen=True)
class GroupTransfer:
    """One higher-level group in a NewEmulatorClientState."""

    group_id: bytes
    saved_group: bytes | None  # None: join by external commit
    active: LeafOp | None = None
    proposed: tuple[tuple[bytes, LeafOp], ...] = ()

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        if self.saved_group is None:
            w.u8(EXTERNAL_JOIN)
            return
        assert self.active is not None
        w.u8(STATE_TRANSFER)
        w.opaque(self.saved_group)
        self.active.write(w)

        def proposed(w2: Writer, item: tuple[bytes, LeafOp]) -> None:
            w2.opaque(item[0])
            item[1].write(w2)

        w.vector(list(self.proposed), proposed)

    @classmethod
    def read(cls, r: Reader) -> GroupTransfer:
        gid = r.opaque()
        mode = r.u8()
        if mode == EXTERNAL_JOIN:
            return cls(gid, None)
        if mode != STATE_TRANSFER:
            raise DecodeError(f"unknown TransferMode {mode}")
        saved = r.opaque()
        active = LeafOp.read(r)
        proposed = tuple(r.vector(lambda r2: (r2.opaque(), LeafOp.read(r2))))
        return cls(gid, saved, active, proposed)

    def group(self, config: GroupConfig) -> Group:
        if self.saved_group is None:
            raise DecodeError("an external-join entry carries no group state")
        return load(self.saved_group, config)


@dataclass(frozen=True)
class NewEmulatorClientState:
    """P13 (see the module docstring). `decode_state` parses one."""

    signature_private_key: bytes
    epochs: tuple[EmulationEpoch, ...]
    groups: tuple[GroupTransfer, ...]
    key_packages: tuple[HeldKeyPackage, ...]
    # the virtual client's profile: every epoch is of it, and `decode_state` needs it
    profile: Profile = DEFAULT_PROFILE

    def encode(self) -> bytes:
        """The state's bytes; StateError for an epoch of another profile than the
        state's (no reader of this profile could read it)."""
        for e in self.epochs:
            if e.profile is not self.profile:
                raise StateError(f"emulation epoch {e.epoch} is of profile {e.profile}, "
                                 f"the state of {self.profile}")
        w = Writer()
        w.opaque(self.signature_private_key)
        w.vector(list(self.epochs), write_epoch)
        w.vector(list(self.groups), lambda w2, g: g.write(w2))
        w.vector(list(self.key_packages), lambda w2, k: k.write(w2))
        bases = [(e.epoch, e.base_secret) for e in self.epochs if e.base_secret is not None]
        if bases:  # F1 only: absent (and the encoding unchanged) otherwise
            w.vector(bases, _w_base)
        return w.bytes()


def decode_state(data: bytes, suite: int, profile: Profile | str = DEFAULT_PROFILE
                 ) -> NewEmulatorClientState:
    """Parse a NewEmulatorClientState of an emulation group of `suite` whose virtual
    client follows `profile` (its epochs are read with it); DecodeError (and
    ValidationError EXT-PPRF-STATE for a bad PPRF state) when malformed."""
    p = profile_of(profile)
    cs = get_suite(suite)
    r = Reader(bytes(data))
    key = r.opaque()
    epochs = tuple(r.vector(lambda r2: read_epoch(r2, cs, p)))
    groups = tuple(r.vector(GroupTransfer.read))
    kps = tuple(r.vector(HeldKeyPackage.read))
    if r.remaining():
        read_base_secrets(r, epochs)
    r.finish()
    return NewEmulatorClientState(key, epochs, groups, kps, p)


def _w_base(w: Writer, item: tuple[int, bytes]) -> None:
    w.u64(item[0])
    w.opaque(item[1])


def write_base_secrets(w: Writer, epochs: Sequence[EmulationEpoch]) -> None:
    """F1 only: the epochs' kept epoch_base_secret, as BaseSecret<V>."""
    w.vector([(e.epoch, e.base_secret) for e in epochs if e.base_secret is not None],
             _w_base)


def read_base_secrets(r: Reader, epochs: Sequence[EmulationEpoch]) -> None:
    """F1 only: attach BaseSecret<V> to the epochs it names (DecodeError for another)."""
    by_number = {e.epoch: e for e in epochs}
    for n, secret in r.vector(lambda r2: (r2.u64(), r2.opaque())):
        e = by_number.get(n)
        if e is None or e.pprf is None:
            raise DecodeError(f"an epoch_base_secret for emulation epoch {n}, which has no "
                              "derivation secrets here")
        e.base_secret = secret


def transfer_group(group: Group, active: LeafOp, proposed: Sequence[tuple[bytes, LeafOp]]
                   ) -> GroupTransfer:
    """A higher-level group by state transfer (it must have no pending commit)."""
    return GroupTransfer(group.group_id, save(group), active, tuple(proposed))


@dataclass
class HigherGroup:
    """This emulator's view of one higher-level group."""

    group: Group
    active: LeafOp
    proposed: dict[bytes, LeafOp] = field(default_factory=dict)  # Update enc key -> op
    sent: list[int] = field(default_factory=list)  # eventual mode: retained generations
