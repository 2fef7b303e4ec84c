"""The profile "latest" in an emulator's state as bytes (mlsvc.vc.state, mlsvc.vc.durable,
mlsvc.vc.lifecycle): a latest emulation epoch (its Virtual Client Operation Secret Tree,
absent outside the window, and reuse_guard_secret) survives write_epoch / read_epoch,
the NewEmulatorClientState of a Welcome and the durable store; the restored tree derives
what the original would have; malformed encodings are refused; draft-00 bytes are what
they were.

The expected encodings are built here field by field from the TLS structs of the
mlsvc.vc.state docstring (`_tree_bytes`, `_draft00_epoch_bytes`), not by the code under
test."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from mlsvc.codec import Reader, Writer, decode_exact
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import Consistency as DSConsistency
from mlsvc.ds import DeliveryService
from mlsvc.errors import DecodeError, StateError
from mlsvc.group.config import Identity
from mlsvc.group.events import ApplicationMessage
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.store import MemoryStore
from mlsvc.types import LeafIndex
from mlsvc.vc import durable, lifecycle
from mlsvc.vc.codepoints import DEFAULT_VC_CODEPOINTS, OperationType, VCCodePoints
from mlsvc.vc.emulator import Emulator, VirtualClientConfig
from mlsvc.vc.epoch import EmulationEpoch, open_epoch, open_latest_epoch
from mlsvc.vc.operation_tree import OperationSecretTree, OperationTreeState
from mlsvc.vc.profiles import Profile
from mlsvc.vc.readings import NO_READINGS, Readings
from mlsvc.vc.state import (
    NewEmulatorClientState,
    decode_state,
    read_epoch,
    read_operation_tree_state,
    write_epoch,
    write_operation_tree_state,
)
from mlsvc.virtual_client import VirtualClient
from tests.unit.vc_helpers import G1, NAMES, pump, world

CS = get_suite(1)
ROSTER = {0: b"phone", 1: b"laptop", 5: b"tablet"}
TYPES = tuple(OperationType)


def _secret(label: bytes) -> bytes:
    return hashlib.sha256(b"latest-state/" + label).digest()[:CS.nh]


def _epoch(label: bytes = b"e", epoch: int = 3, leaf_count: int = 8) -> EmulationEpoch:
    return open_latest_epoch(CS, _secret(label), epoch, leaf_count, LeafIndex(1), ROSTER)


def _context(op: OperationType, i: int = 0) -> bytes:
    return b"" if op is OperationType.KEY_PACKAGE else b"group-%d" % i


def _exercise(tree: OperationSecretTree) -> None:
    """Expanded leaves, consumed generations and retained skipped generations."""
    for op in TYPES:
        tree.next_operation(1, op, _context(op))
    tree.next_operation(1, OperationType.LEAF_NODE, b"g")
    tree.operation_at(5, OperationType.LEAF_NODE, 4, b"g")  # keeps 0..3
    tree.operation_at(5, OperationType.LEAF_NODE, 1, b"g")  # a kept one, consumed
    tree.operation_at(5, OperationType.APPLICATION, 2, b"app")  # keeps 0, 1
    tree.next_key_package_batch(6, [0, 1, 2])


def _exercise_leaf0(tree: OperationSecretTree) -> None:
    """The same on a one-leaf tree (a new emulation group's first epoch)."""
    for op in TYPES:
        tree.next_operation(0, op, _context(op))
    tree.operation_at(0, OperationType.LEAF_NODE, 4, b"g")  # keeps 1..3
    tree.operation_at(0, OperationType.LEAF_NODE, 2, b"g")


def _write(e: EmulationEpoch) -> bytes:
    w = Writer()
    write_epoch(w, e)
    return w.bytes()


def _read(data: bytes, profile: Profile | str = Profile.LATEST) -> EmulationEpoch:
    return decode_exact(data, lambda r: read_epoch(r, CS, profile))


def _tree_of(e: EmulationEpoch) -> OperationSecretTree:
    assert e.tree is not None
    return e.tree


def _same_epoch(a: EmulationEpoch, b: EmulationEpoch) -> None:
    assert (a.epoch, a.epoch_id, a.leaf_count, a.own_leaf, a.roster) == (
        b.epoch, b.epoch_id, b.leaf_count, b.own_leaf, b.roster)
    assert a.generation_id_secret == b.generation_id_secret
    assert a.encryption_key == b.encryption_key
    assert a.reuse_guard_secret == b.reuse_guard_secret
    assert a.pprf is None and b.pprf is None
    assert a.profile is b.profile is Profile.LATEST
    assert (a.tree is None) == (b.tree is None)
    if a.tree is not None and b.tree is not None:
        assert a.tree.state == b.tree.state
        assert a.tree.state is not b.tree.state


def _next_ops(tree: OperationSecretTree, leaves: tuple[int, ...], count: int = 3
              ) -> list[bytes]:
    """The operation secrets of the next `count` generations of every ratchet of
    `leaves` (consumed: the tree moves on)."""
    out = []
    for leaf in leaves:
        for op in TYPES:
            for i in range(count):
                out.append(tree.next_operation(leaf, op, _context(op, i)).operation_secret)
    return out


# --- the encoding, built by hand from the module docstring ---------------------------------


def _tree_bytes(st: OperationTreeState, *, ratchet_type: int = 3) -> bytes:
    """OperationTreeState as the docstring's TLS structs say, field by field."""
    w = Writer()
    w.opaque(st.epoch_id)
    w.u32(st.leaf_count)
    w.u32(st.max_forward_distance)
    w.u32(st.out_of_order_tolerance)
    nodes = Writer()
    for x in sorted(st.nodes):
        nodes.u32(x)
        nodes.opaque(st.nodes[x])
    w.opaque(nodes.bytes())
    ratchets, skipped = Writer(), Writer()
    for (leaf, op) in sorted(st.ratchets):
        r = st.ratchets[(leaf, op)]
        ratchets.u32(leaf)
        ratchets.u8(ratchet_type)
        ratchets.u8(int(op))
        ratchets.u32(r.generation)
        ratchets.opaque(r.secret)
        for g in sorted(r.retained):
            skipped.u32(leaf)
            skipped.u8(int(op))
            skipped.u32(g)
            skipped.opaque(r.retained[g])
    w.opaque(ratchets.bytes())
    w.opaque(skipped.bytes())
    return w.bytes()


def _raw_tree(leaf_count: int, nodes: list[tuple[int, bytes]],
              ratchets: list[tuple[int, int, int, int, bytes]],
              skipped: list[tuple[int, int, int, bytes]], epoch_id: bytes = b"id") -> bytes:
    """An OperationTreeState of whatever fields, valid or not."""
    w = Writer()
    w.opaque(epoch_id)
    w.u32(leaf_count)
    w.u32(1000)
    w.u32(5)
    inner = Writer()
    for x, s in nodes:
        inner.u32(x)
        inner.opaque(s)
    w.opaque(inner.bytes())
    inner = Writer()
    for leaf, kind, op, g, s in ratchets:
        inner.u32(leaf)
        inner.u8(kind)
        inner.u8(op)
        inner.u32(g)
        inner.opaque(s)
    w.opaque(inner.bytes())
    inner = Writer()
    for leaf, op, g, s in skipped:
        inner.u32(leaf)
        inner.u8(op)
        inner.u32(g)
        inner.opaque(s)
    w.opaque(inner.bytes())
    return w.bytes()


def _draft00_epoch_bytes(e: EmulationEpoch) -> bytes:
    """EmulationEpochState of a draft-00 epoch, field by field (no latest fields)."""
    assert e.pprf is not None
    w = Writer()
    w.u64(e.epoch)
    w.opaque(e.epoch_id)
    w.u32(e.leaf_count)
    w.u32(e.own_leaf)
    roster = Writer()
    for leaf in sorted(e.roster):
        roster.u32(leaf)
        roster.opaque(e.roster[leaf])
    w.opaque(roster.bytes())
    w.opaque(e.generation_id_secret)
    w.u8(1)
    w.opaque(e.pprf.serialize())
    w.u8(1)
    assert e.encryption_key is not None
    w.opaque(e.encryption_key)
    w.opaque(b"")  # no retained operations
    return w.bytes()


# --- latest epochs through write_epoch / read_epoch ----------------------------------------


def test_a_fresh_latest_epoch_round_trips() -> None:
    e = _epoch()
    data = _write(e)
    back = _read(data)
    _same_epoch(e, back)
    assert _tree_of(back).state.nodes == _tree_of(e).state.nodes  # the root alone
    assert len(_tree_of(back).state.nodes) == 1 and not _tree_of(back).state.ratchets
    assert _write(back) == data
    # the layout: the draft-00 fields (pprf absent), then the tree and reuse_guard_secret
    tail = Writer()
    tail.u8(1)
    tail.fixed(_tree_bytes(_tree_of(e).state))
    tail.opaque(e.reuse_guard_secret or b"")
    assert data.endswith(tail.bytes())


def test_an_exercised_tree_round_trips_and_derives_what_the_original_would() -> None:
    e = _epoch(b"exercised")
    _exercise(_tree_of(e))
    st = _tree_of(e).state
    # what the state holds: expanded leaves 1, 5, 6; consumed and skipped generations
    assert {leaf for leaf, _ in st.ratchets} == {1, 5, 6}
    assert st.ratchets[(1, OperationType.LEAF_NODE)].generation == 2
    assert sorted(st.ratchets[(5, OperationType.LEAF_NODE)].retained) == [0, 2, 3]
    assert sorted(st.ratchets[(5, OperationType.APPLICATION)].retained) == [0, 1]
    assert sorted(st.nodes) == [0, 5, 8, 14]  # the frontier left by leaves 1, 5, 6
    data = _write(e)
    assert _tree_bytes(st) in data
    back = _read(data)
    _same_epoch(e, back)
    assert _write(back) == data
    original, restored = _tree_of(e), _tree_of(back)
    # the retained skipped generations give the same operations, once
    for tree in (original, restored):
        assert tree.next_generation(5, OperationType.LEAF_NODE) == 5
    for g in (0, 2, 3):
        assert (original.operation_at(5, OperationType.LEAF_NODE, g, b"x").operation_secret
                == restored.operation_at(5, OperationType.LEAF_NODE, g, b"x")
                .operation_secret)
    leaves = (0, 1, 2, 5, 6, 7)
    assert _next_ops(original, leaves) == _next_ops(restored, leaves)
    # a KeyPackage batch of a generation ahead, on both
    a = original.key_package_batch_at(3, 4, [0, 7])
    b = restored.key_package_batch_at(3, 4, [0, 7])
    assert a.seeds == b.seeds
    assert original.state == restored.state


def test_the_decoded_tree_is_not_the_writers() -> None:
    e = _epoch(b"independent")
    _exercise(_tree_of(e))
    back = _read(_write(e))
    before = _tree_of(back).state.copy()
    _tree_of(e).next_operation(1, OperationType.APPLICATION, b"a")
    _tree_of(e).operation_at(5, OperationType.LEAF_NODE, 2, b"g")
    assert _tree_of(back).state == before != _tree_of(e).state


def test_an_epoch_outside_the_window_keeps_reuse_guard_secret_only() -> None:
    e = _epoch(b"dropped")
    _exercise(_tree_of(e))
    e.drop_derivation_secrets()
    assert e.tree is None and e.encryption_key is None
    data = _write(e)
    back = _read(data)
    _same_epoch(e, back)
    assert back.tree is None and back.encryption_key is None and not back.can_derive
    assert back.reuse_guard_secret == e.reuse_guard_secret
    assert back.profile is Profile.LATEST
    tail = Writer()
    tail.u8(0)  # optional<OperationTreeState> absent
    tail.opaque(e.reuse_guard_secret or b"")
    assert data.endswith(tail.bytes())
    assert _write(back) == data


def test_the_tree_state_alone_is_canonical() -> None:
    e = _epoch(b"canonical", leaf_count=16)
    tree = _tree_of(e)
    for leaf in (9, 2, 14):
        tree.operation_at(leaf, OperationType.APPLICATION, 3, b"a")
    st = tree.state
    w = Writer()
    write_operation_tree_state(w, st)
    assert w.bytes() == _tree_bytes(st)
    # the same state built in another insertion order encodes the same
    shuffled = OperationTreeState(
        st.epoch_id, st.leaf_count, st.max_forward_distance, st.out_of_order_tolerance,
        dict(reversed(list(st.nodes.items()))),
        {k: st.ratchets[k].copy() for k in reversed(list(st.ratchets))})
    w2 = Writer()
    write_operation_tree_state(w2, shuffled)
    assert w2.bytes() == w.bytes()
    back = decode_exact(w.bytes(), lambda r: read_operation_tree_state(r, CS))
    assert back == st
    # the bounds of reading R2 travel with the state
    odd = OperationSecretTree(CS, b"id", _secret(b"root"), 4, max_forward_distance=7,
                              out_of_order_tolerance=2)
    w3 = Writer()
    write_operation_tree_state(w3, odd.state)
    back = decode_exact(w3.bytes(), lambda r: read_operation_tree_state(r, CS))
    assert (back.max_forward_distance, back.out_of_order_tolerance) == (7, 2)
    assert OperationSecretTree.from_state(CS, back).state == odd.state


# --- refusals ------------------------------------------------------------------------------


def _refused(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_exact(data, lambda r: read_operation_tree_state(r, CS))


S = _secret(b"s")
KP, LN, APP = 1, 2, 3
LEAF0 = [(0, 3, KP, 0, S), (0, 3, LN, 0, S), (0, 3, APP, 0, S)]  # leaf 0 expanded
REST = [(2, S), (5, S)]  # leaves 1 and 2..3 of a 4-leaf tree, unexpanded
AT3 = [(0, 3, KP, 0, S), (0, 3, LN, 3, S), (0, 3, APP, 0, S)]  # leaf_node at 3

BAD_TREES: list[tuple[str, bytes, str]] = [
    *((f"leaf count {n}", _raw_tree(n, [(0, S)], [], []), "not a power of two")
      for n in (0, 3, 6, 12)),
    ("node outside the tree", _raw_tree(4, [(7, S)], [], []), "node 7 outside"),
    ("nodes not ascending", _raw_tree(4, [(5, S), (2, S)], LEAF0, []),
     "node_secrets not in"),
    ("a node twice", _raw_tree(4, [(2, S), (2, S), (5, S)], LEAF0, []),
     "node_secrets not in"),
    ("the root and its child", _raw_tree(4, [(3, S), (5, S)], [], []),
     "leaf 2 is held twice"),
    ("an expanded leaf under a node", _raw_tree(4, [(3, S)], LEAF0, []),
     "leaf 0 is held twice"),
    ("leaves without a secret", _raw_tree(4, [(2, S)], LEAF0, []),
     r"no secret for leaves 2\.\.3"),
    ("nothing at all", _raw_tree(4, [], [], []), r"no secret for leaves 0\.\.3"),
    ("a ratchet missing", _raw_tree(4, REST, LEAF0[:2], []), "lacks one of its three"),
    ("ratchets not ascending", _raw_tree(4, REST, [LEAF0[1], LEAF0[0], LEAF0[2]], []),
     "ratchet_states not in"),
    ("a ratchet twice", _raw_tree(4, REST, [*LEAF0, LEAF0[2]], []),
     "ratchet_states not in"),
    ("ratchet_type application", _raw_tree(4, REST, [(0, 1, KP, 0, S), *LEAF0[1:]], []),
     "SecretTreeRatchetType 1"),
    ("ratchet_type reserved", _raw_tree(4, REST, [(0, 0, KP, 0, S), *LEAF0[1:]], []),
     "SecretTreeRatchetType 0"),
    *((f"ratchet of operation type {op}",
       _raw_tree(4, REST, [*LEAF0[:2], (0, 3, op, 0, S)], []), "VirtualClientOperationType")
      for op in (0, 4, 255)),
    *((f"skipped of operation type {op}", _raw_tree(4, REST, LEAF0, [(0, op, 0, S)]),
       "VirtualClientOperationType") for op in (0, 4, 255)),
    ("a leaf outside the tree", _raw_tree(1, [], [(1, 3, op, 0, S) for op in (1, 2, 3)], []),
     "leaf 1 outside"),
    ("a short node secret", _raw_tree(4, [(2, S[:-1]), (5, S)], LEAF0, []),
     "node 2 is not Kdf.Nh"),
    ("a long ratchet secret", _raw_tree(4, REST, [*LEAF0[:2], (0, 3, APP, 0, S + b"!")], []),
     "ratchet secret of leaf 0 is not"),
    ("skipped at the generation", _raw_tree(4, REST, AT3, [(0, LN, 3, S)]),
     "generation 3 .* not below"),
    ("skipped above it", _raw_tree(4, REST, AT3, [(0, LN, 7, S)]),
     "generation 7 .* not below"),
    ("skipped of a ratchet at 0", _raw_tree(4, REST, AT3, [(0, KP, 0, S)]),
     "generation 0 of the key_package .* not below"),
    ("skipped of a leaf not expanded", _raw_tree(4, REST, AT3, [(1, LN, 0, S)]),
     "leaf 1, which is not held"),
    ("skipped not ascending", _raw_tree(4, REST, AT3, [(0, LN, 2, S), (0, LN, 0, S)]),
     "skipped generations not in"),
    ("skipped twice", _raw_tree(4, REST, AT3, [(0, LN, 2, S), (0, LN, 2, S)]),
     "skipped generations not in"),
    ("a short skipped secret", _raw_tree(4, REST, AT3, [(0, LN, 2, S[:5])]),
     "skipped generation 2 is not Kdf.Nh"),
]


@pytest.mark.parametrize(("data", "match"), [(d, m) for _, d, m in BAD_TREES],
                         ids=[name for name, _, _ in BAD_TREES])
def test_a_bad_tree_encoding_is_refused(data: bytes, match: str) -> None:
    _refused(data, match)


def test_the_refusals_start_from_good_encodings() -> None:
    good = _raw_tree(4, REST, LEAF0, [])
    assert decode_exact(good, lambda r: read_operation_tree_state(r, CS)).leaf_count == 4
    _refused(good + b"\x00", "trailing")
    _refused(good[:-1], "truncated")
    kept = decode_exact(_raw_tree(4, REST, AT3, [(0, LN, 0, S), (0, LN, 2, S)]),
                        lambda r: read_operation_tree_state(r, CS))
    assert sorted(kept.ratchets[(0, OperationType.LEAF_NODE)].retained) == [0, 2]
    assert kept.ratchets[(0, OperationType.LEAF_NODE)].generation == 3


def test_bad_latest_epochs_are_refused() -> None:
    e = _epoch(b"bad")
    _exercise(_tree_of(e))
    # a tree without epoch_encryption_key (and the converse)
    for broken in (dataclasses.replace(e, encryption_key=None),
                   dataclasses.replace(e, tree=None)):
        with pytest.raises(DecodeError, match="deleted together"):
            _read(_write(broken))
    # a tree of another epoch (epoch_id), or of another leaf count
    other = _epoch(b"other")
    with pytest.raises(DecodeError, match="belongs to another epoch"):
        _read(_write(dataclasses.replace(e, tree=other.tree)))
    with pytest.raises(DecodeError, match="belongs to another epoch"):
        _read(_write(dataclasses.replace(e, leaf_count=16)))
    # reuse_guard_secret of the wrong length
    with pytest.raises(DecodeError, match=r"reuse_guard_secret is not Kdf\.Nh"):
        _read(_write(dataclasses.replace(e, reuse_guard_secret=b"short")))
    # a PPRF in a latest epoch: refused when written, and when read
    d00 = open_epoch(CS, _secret(b"d00"), 3, 8, LeafIndex(1), ROSTER)
    with pytest.raises(StateError, match="holds a PPRF"):
        _write(dataclasses.replace(d00, reuse_guard_secret=e.reuse_guard_secret))
    tail = Writer()
    tail.u8(0)
    tail.opaque(e.reuse_guard_secret or b"")
    d00_bytes = _write(dataclasses.replace(d00, encryption_key=None))
    with pytest.raises(DecodeError, match="carries a PPRF"):
        _read(d00_bytes + tail.bytes())
    # the profiles do not read each other's epochs
    with pytest.raises(DecodeError, match="trailing"):
        _read(_write(e), Profile.DRAFT_00)  # trailing latest fields
    with pytest.raises(DecodeError, match="truncated"):
        _read(_write(d00), Profile.LATEST)  # no latest fields (and a PPRF)


def test_an_exhausted_ratchet_cannot_be_written() -> None:
    e = _epoch(b"exhausted")
    tree = _tree_of(e)
    tree.next_operation(2, OperationType.APPLICATION, b"a")
    tree.state.ratchets[(2, OperationType.APPLICATION)].generation = 1 << 32
    with pytest.raises(StateError, match="generation of the application ratchet of leaf 2"):
        _write(e)


# --- draft-00 bytes unchanged ---------------------------------------------------------------


def test_a_draft00_epoch_encodes_as_it_always_did() -> None:
    e = open_epoch(CS, _secret(b"draft-00"), 7, 4, LeafIndex(2), {0: b"a", 2: b"b"})
    assert e.profile is Profile.DRAFT_00
    data = _write(e)
    assert data == _draft00_epoch_bytes(e)
    r = Reader(data)
    back = read_epoch(r, CS)  # the default reader: draft-00, exactly consumed
    r.finish()
    assert back.tree is None and back.reuse_guard_secret is None and back.pprf is not None
    assert back.profile is Profile.DRAFT_00
    assert _write(back) == data
    assert _write(_read(data, "draft-00")) == data


def test_a_draft00_new_emulator_client_state_is_unchanged() -> None:
    e = open_epoch(CS, _secret(b"necs-00"), 7, 4, LeafIndex(2), {0: b"a"})
    state = NewEmulatorClientState(b"key", (e,), (), ())
    assert state.profile is Profile.DRAFT_00
    w = Writer()
    w.opaque(b"key")
    w.opaque(_draft00_epoch_bytes(e))
    w.opaque(b"")
    w.opaque(b"")
    assert state.encode() == w.bytes()
    assert decode_state(w.bytes(), CS.id).profile is Profile.DRAFT_00
    with pytest.raises(DecodeError):
        decode_state(w.bytes(), CS.id, Profile.LATEST)


# --- the NewEmulatorClientState of a Welcome --------------------------------------------------


def test_latest_epochs_in_a_new_emulator_client_state() -> None:
    live, dropped = _epoch(b"live", epoch=5), _epoch(b"old", epoch=4)
    _exercise(_tree_of(live))
    dropped.drop_derivation_secrets()
    state = NewEmulatorClientState(b"key", (dropped, live), (), (), Profile.LATEST)
    data = state.encode()
    back = decode_state(data, CS.id, "latest")
    assert back.profile is Profile.LATEST
    assert len(back.epochs) == 2
    _same_epoch(dropped, back.epochs[0])
    _same_epoch(live, back.epochs[1])
    assert back.encode() == data
    with pytest.raises(DecodeError):
        decode_state(data, CS.id)  # a draft-00 reader
    # a state whose epochs are not of its profile is not written
    with pytest.raises(StateError, match="of profile latest, the state of draft-00"):
        NewEmulatorClientState(b"key", (live,), (), ()).encode()
    d00 = open_epoch(CS, _secret(b"mixed"), 6, 8, LeafIndex(0), ROSTER)
    with pytest.raises(StateError, match="of profile draft-00, the state of latest"):
        NewEmulatorClientState(b"key", (live, d00), (), (), Profile.LATEST).encode()


def _latest_emulator(name: bytes = b"phone",
                     codepoints: VCCodePoints = DEFAULT_VC_CODEPOINTS,
                     readings: Readings = NO_READINGS) -> Emulator:
    """A latest emulator that created its emulation group (as test_vc_emulator's
    fixtures build draft-00 ones): one epoch, one leaf."""
    rng = SeededRandom(b"latest-state/" + name)
    ident = Identity.basic(name, CS.signature.generate_key_pair(rng))
    vc = VirtualClientConfig(name=b"vc", codepoints=codepoints, readings=readings,
                             profile=Profile.LATEST)
    em = Emulator(name, ident, vc, rng)
    em.create_emulation_group()
    return em


def test_the_state_for_a_new_emulator_carries_a_copy_of_each_tree() -> None:
    em = _latest_emulator()
    live = em.epochs.latest
    _exercise_leaf0(_tree_of(live))
    state = lifecycle.state_for_new_emulator(em)
    assert state.profile is Profile.LATEST
    (carried,) = state.epochs
    assert carried.tree is not None and carried.tree is not live.tree
    assert carried.tree.state == _tree_of(live).state
    assert carried.tree.state is not _tree_of(live).state
    snapshot = carried.tree.state.copy()
    data = state.encode()
    # the provisioner goes on deriving: neither the state nor its bytes change
    _tree_of(live).next_operation(0, OperationType.APPLICATION, b"later")
    _tree_of(live).operation_at(0, OperationType.LEAF_NODE, 3, b"g")
    assert carried.tree.state == snapshot != _tree_of(live).state
    assert state.encode() == data
    back = decode_state(data, CS.id, Profile.LATEST)
    assert _tree_of(back.epochs[0]).state == snapshot


def test_install_takes_the_latest_epochs_of_the_welcome() -> None:
    provisioner = _latest_emulator(b"phone")
    _exercise_leaf0(_tree_of(provisioner.epochs.latest))
    state = lifecycle.state_for_new_emulator(provisioner)
    newcomer = _latest_emulator(b"desk")
    newcomer.epochs.epochs.clear()
    info = MLSMessage.decode(newcomer.emu.group_info()).body
    assert isinstance(info, GroupInfo)
    ext = lifecycle.welcome_extension(provisioner, state)
    info = dataclasses.replace(info, extensions=type(info.extensions)((ext,)))
    lifecycle.install(newcomer, info)
    (given,) = state.epochs
    got = newcomer.epochs.epochs[given.epoch]
    assert got.profile is Profile.LATEST
    assert got.reuse_guard_secret == given.reuse_guard_secret
    assert got.own_leaf == newcomer.emu.own_leaf
    assert _tree_of(got).state == _tree_of(given).state
    assert _tree_of(got).state is not _tree_of(provisioner.epochs.latest).state
    assert (_next_ops(_tree_of(got), (0,))
            == _next_ops(_tree_of(provisioner.epochs.latest), (0,)))


def test_a_latest_virtual_client_gives_its_new_emulators_the_same_trees() -> None:
    ds = DeliveryService(DSConsistency("strong"))
    vc = VirtualClient.create(ds, "alice", ["phone", "laptop", "tablet"],
                              seed=b"latest-state", profile="latest")
    vc.sync()
    ems = list(vc.emulators.values())
    common = set.intersection(*(set(em.epochs.epochs) for em in ems))
    assert common
    for n in common:
        epochs = [em.epochs.epochs[n] for em in ems]
        assert all(e.profile is Profile.LATEST for e in epochs)
        trees = [e.tree for e in epochs if e.tree is not None]
        assert len({id(t) for t in trees}) == len(trees)  # never shared
        assert len({id(t.state) for t in trees}) == len(trees)
        if trees:
            assert all(t.state == trees[0].state for t in trees)


# --- the durable store ------------------------------------------------------------------------


def _stored(em: Emulator) -> MemoryStore:
    store = MemoryStore()
    store.write(durable.records(em))
    return store


def _with_later_epochs(em: Emulator) -> None:
    """Two more latest epochs, so that the first falls out of the window (R = 1)."""
    _exercise_leaf0(_tree_of(em.epochs.latest))
    for n in (1, 2):
        em.epochs.add(open_latest_epoch(CS, _secret(b"epoch-%d" % n), n, 4, LeafIndex(1),
                                        {0: b"phone", 1: b"laptop"}))
    _exercise_small(_tree_of(em.epochs.epochs[2]))


def _exercise_small(tree: OperationSecretTree) -> None:
    tree.next_operation(1, OperationType.LEAF_NODE, b"g")
    tree.operation_at(0, OperationType.APPLICATION, 3, b"a")


def test_a_latest_emulator_survives_its_store() -> None:
    em = _latest_emulator()
    _with_later_epochs(em)
    assert em.epochs.epochs[0].tree is None and em.epochs.epochs[0].reuse_guard_secret
    records = durable.records(em)
    assert records["meta"][:2] == b"\x00\x03"
    back = durable.restore(_stored(em), SeededRandom(b"second boot"))
    assert back.vc == em.vc and back.vc.profile is Profile.LATEST
    assert sorted(back.epochs.epochs) == sorted(em.epochs.epochs) == [0, 1, 2]
    for n, e in em.epochs.epochs.items():
        _same_epoch(e, back.epochs.epochs[n])
    assert durable.records(back) == records
    for n in (1, 2):
        mine, theirs = _tree_of(em.epochs.epochs[n]), _tree_of(back.epochs.epochs[n])
        assert _next_ops(mine, (0, 1, 2, 3)) == _next_ops(theirs, (0, 1, 2, 3))
        assert mine.state == theirs.state
    # the restored emulator opens its next epochs under latest too
    back.epochs.add(open_epoch(CS, _secret(b"epoch-3"), 3, 4, LeafIndex(1), {},
                               profile=back.vc.profile))
    assert back.epochs.latest.profile is Profile.LATEST


def test_the_profile_component_and_the_readings_are_kept() -> None:
    cp = VCCodePoints(profile=0x8005)
    em = _latest_emulator(codepoints=cp, readings=Readings(literal_p4_subsecrets=True))
    back = durable.restore(_stored(em), SeededRandom(b"r"))
    assert back.vc.codepoints.profile == 0x8005
    assert back.vc.readings == em.vc.readings and back.vc == em.vc


def test_a_draft00_emulator_still_writes_format_1_or_2() -> None:
    rng = SeededRandom(b"draft-00 meta")
    ident = Identity.basic(b"phone", CS.signature.generate_key_pair(rng))
    for readings, fmt in ((Readings(), b"\x00\x01"),
                          (Readings(literal_p4_subsecrets=True), b"\x00\x02")):
        em = Emulator(b"phone", ident, VirtualClientConfig(name=b"vc", readings=readings),
                      rng)
        em.create_emulation_group()
        records = durable.records(em)
        assert records["meta"][:2] == fmt
        e = em.epochs.latest
        assert records[f"epoch/{e.epoch:020d}"] == _draft00_epoch_bytes(e)
        back = durable.restore(_stored(em), SeededRandom(b"r"))
        assert back.vc.profile is Profile.DRAFT_00 and back.vc == em.vc
        assert durable.records(back) == records


def test_bad_latest_stores_are_refused() -> None:
    em = _latest_emulator()
    good = durable.records(em)
    suffix = b"\x00\x00" + b"\x06latest" + b"\x80\x04"
    meta = good["meta"]
    assert meta.endswith(suffix)
    body = meta[2:-len(suffix)]

    def refused(records: dict[str, bytes], match: str) -> None:
        store = MemoryStore()
        store.write(records)
        with pytest.raises(DecodeError, match=match):
            durable.restore(store, SeededRandom(b"r"))

    for tail, match in (
            (b"\x00\x00" + b"\x08draft-00" + b"\x80\x04", "format 3 for the draft-00"),
            (b"\x00\x00" + b"\x06newest" + b"\x80\x04", "unknown profile"),
            (b"\x00\x00" + b"\x02\xff\xfe" + b"\x80\x04", "unknown profile"),
            (b"\x00\x00" + b"\x06latest" + b"\x80\x01", "ID of its own"),  # 0x8001 twice
            (b"\x00\x00" + b"\x06latest" + b"\x00\x00", "non-zero"),  # component 0
            (b"\x00\x00" + b"\x06latest", "truncated"),
            (b"\x80\x00" + b"\x06latest" + b"\x80\x04", "unknown literal readings"),
            (suffix + b"\x00", "trailing")):
        refused({**good, "meta": b"\x00\x03" + body + tail}, match)
    # the same records told draft-00 (format 1): the latest epochs do not read
    refused({**good, "meta": b"\x00\x01" + body}, "trailing")
    # a draft-00 meta with a profile appended is no format 1 or 2
    refused({**good, "meta": b"\x00\x01" + body + suffix}, "trailing")
    refused({**good, "meta": b"\x00\x04" + body + suffix}, "unknown emulator record format")


def test_a_restarted_latest_emulator_goes_on_where_it_stopped() -> None:
    """A whole latest virtual client after traffic (a message, a KeyPackageUpload, a
    commit): every emulator survives its store, and one restarted from it derives what
    its siblings expect (its commit's LeafNode comes from its restored tree)."""
    w = world(seed=b"latest-durable", profile=Profile.LATEST)
    assert w.vc.send("laptop", G1, b"hello").accepted
    w.vc.sync()
    w.vc.upload_key_packages("tablet", 2)
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    assert w.vc.commit("phone", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    for name in NAMES:
        em = w.em(name)
        back = durable.restore(_stored(em), SeededRandom(b"other process"))
        assert back.vc == em.vc and back.vc.profile is Profile.LATEST
        assert sorted(back.epochs.epochs) == sorted(em.epochs.epochs)
        for n, e in em.epochs.epochs.items():
            _same_epoch(e, back.epochs.epochs[n])
        assert durable.records(back) == durable.records(em)
    store = _stored(w.em("laptop"))
    w.vc.restart("laptop", store, SeededRandom(b"laptop, second boot"))
    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    assert w.vc.send("laptop", G1, b"after the restart").accepted
    w.vc.sync()
    read = [e for e in pump(w.ds, "bob", w.bob) if isinstance(e, ApplicationMessage)]
    assert [e.data for e in read][-1] == b"after the restart"
    w.agree()


def test_the_last_uint32_values_of_a_tree_state_are_written() -> None:
    """The uint32 fields of OperationTreeState take 2^32 - 1 (the last generation a
    ratchet can be at, the largest bounds); the bytes are the docstring's structs."""
    e = _epoch(b"last-uint32")
    tree = _tree_of(e)
    tree.next_operation(2, OperationType.APPLICATION, b"a")
    st = tree.state
    st.ratchets[(2, OperationType.APPLICATION)].generation = 0xFFFF_FFFF
    st.max_forward_distance = 0xFFFF_FFFF
    st.out_of_order_tolerance = 0xFFFF_FFFF
    w = Writer()
    write_operation_tree_state(w, st)
    assert w.bytes() == _tree_bytes(st)
    back = decode_exact(w.bytes(), lambda r: read_operation_tree_state(r, CS))
    assert back == st
