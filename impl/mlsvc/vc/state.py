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
} EmulationEpochState;

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
  EmulationEpochState epochs<V>;    // every emulation epoch still referenced
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

from mlsvc.codec import Reader, Writer
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError
from mlsvc.ext.pprf import PPRF
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.serialize import load, save
from mlsvc.messages.credentials import Credential
from mlsvc.messages.key_package import KeyPackage
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import PPRF_DEPTH
from mlsvc.vc.epoch import EmulationEpoch, RetainedOperation

STATE_TRANSFER = 1
EXTERNAL_JOIN = 2


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


def read_epoch(r: Reader, cs: CipherSuite) -> EmulationEpoch:
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
    pprf = None if pprf_bytes is None else PPRF.restore(cs, PPRF_DEPTH, pprf_bytes)
    if leaf_count < 1 or leaf_count & (leaf_count - 1):
        raise DecodeError(f"emulation epoch leaf count {leaf_count} is not a power of two")
    return EmulationEpoch(epoch, epoch_id, leaf_count, own, roster, gid_secret, pprf, enc,
                          retained)


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

    def encode(self) -> bytes:
        w = Writer()
        w.opaque(self.signature_private_key)
        w.vector(list(self.epochs), write_epoch)
        w.vector(list(self.groups), lambda w2, g: g.write(w2))
        w.vector(list(self.key_packages), lambda w2, k: k.write(w2))
        bases = [(e.epoch, e.base_secret) for e in self.epochs if e.base_secret is not None]
        if bases:  # F1 only: absent (and the encoding unchanged) otherwise
            w.vector(bases, _w_base)
        return w.bytes()


def decode_state(data: bytes, suite: int) -> NewEmulatorClientState:
    """Parse a NewEmulatorClientState of an emulation group of `suite`; DecodeError (and
    ValidationError EXT-PPRF-STATE for a bad PPRF state) when malformed."""
    cs = get_suite(suite)
    r = Reader(bytes(data))
    key = r.opaque()
    epochs = tuple(r.vector(lambda r2: read_epoch(r2, cs)))
    groups = tuple(r.vector(GroupTransfer.read))
    kps = tuple(r.vector(HeldKeyPackage.read))
    if r.remaining():
        read_base_secrets(r, epochs)
    r.finish()
    return NewEmulatorClientState(key, epochs, groups, kps)


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
