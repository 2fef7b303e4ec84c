"""Tests written to kill mutants of impl/mlsvc/vc that the other vc tests left alive
(docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from mlsvc.codec import Reader, Writer
from mlsvc.crypto.labels import derive_secret, expand_with_label
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import DeliveryService
from mlsvc.ds.persist import MAGIC as DS_MAGIC
from mlsvc.errors import DecodeError, ParameterError, StateError, ValidationError
from mlsvc.ext.codepoints import CodePoints
from mlsvc.ext.components import AppDataDictionary
from mlsvc.ext.safe_aad import encode_items
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.serialize import load, save
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.extensions import Extension
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, GroupContextExtensions, Remove
from mlsvc.store import MemoryStore
from mlsvc.tree.secret_tree import MAX_GENERATION, GenerationTooFarError
from mlsvc.types import LeafIndex
from mlsvc.vc.actions import ExternalJoin, VirtualClientAction
from mlsvc.vc.codepoints import OperationType, RatchetType, VCCodePoints
from mlsvc.vc.derivation import (
    DerivationInfoComponent,
    find_in_extensions,
    find_in_leaf,
    leaf_extension,
)
from mlsvc.vc.durable import Checkpointer, _w_outgoing, records, restore
from mlsvc.vc.emulator import Consistency, Emulator, OutgoingKind
from mlsvc.vc.epoch import EmulationEpoch, EpochStore, open_epoch
from mlsvc.vc.generation_id import private_message_context
from mlsvc.vc.lifecycle import state_for_new_emulator
from mlsvc.vc.operation import (
    commit_derivation,
    derive_and_commit,
    leaf_node_secret,
    plan_derivation,
    plan_rederivation,
)
from mlsvc.vc.operation_tree import MAX_UINT32 as OT_MAX_UINT32
from mlsvc.vc.operation_tree import (
    OperationRatchet,
    OperationSecretTree,
    encode_operation_context,
    key_package_seed_secret,
)
from mlsvc.vc.readings import FINDING_READINGS, Readings
from mlsvc.vc.receive import _plan_rederivation, follow_external_join
from mlsvc.vc.reuse_guard import (
    check_x,
    make_reuse_guard,
    make_reuse_guard_x,
    recover_leaf_index,
    recover_x,
)
from mlsvc.vc.state import (
    GroupTransfer,
    HeldKeyPackage,
    LeafOp,
    read_epoch,
    write_epoch,
    write_identity,
)
from mlsvc.virtual_client import VirtualClient
from tests.unit.test_ds import bundle as ds_bundle
from tests.unit.test_operation_tree import BASE as OT_BASE
from tests.unit.test_operation_tree import CS as OT_CS
from tests.unit.test_operation_tree import EPOCH_ID as OT_EPOCH_ID
from tests.unit.test_operation_tree import GROUP as OT_GROUP
from tests.unit.test_operation_tree import expected_operation_secret
from tests.unit.test_operation_tree import op_context as ot_op_context
from tests.unit.test_operation_tree import seed as ot_seed
from tests.unit.test_operation_tree import tree as ot_tree
from tests.unit.vc_helpers import (
    G1,
    NAMES,
    VC,
    ScriptedRandom,
    World,
    add_vc,
    colliding_randoms,
    derivation_extension,
    peer_commit,
    peer_group,
    pump,
    snapshot,
    world,
)


@pytest.mark.parametrize("action_type", [0, 3, 255])
def test_an_unknown_action_type_is_refused(action_type: int) -> None:
    body = ExternalJoin(b"\x07\x08").encode()
    with pytest.raises(DecodeError):
        VirtualClientAction.decode(bytes([action_type]) + body)
    # the same body under type 2 (external_join) decodes
    assert VirtualClientAction.decode(b"\x02" + body) == VirtualClientAction(
        ExternalJoin(b"\x07\x08"))


# --- vc/durable.py: an emulator's state through a store (P23) ------------------------------


def _busy_world() -> World:
    """A virtual client in G1 with bob, after traffic: a message of the laptop,
    KeyPackages announced and held, and one application message of the laptop still
    awaiting the DS (in its outbox, with its reuse-guard input)."""
    w = world(b"durable-mut")
    assert w.vc.send("laptop", G1, b"hello").accepted
    w.vc.sync()
    w.vc.upload_key_packages("tablet", 2)
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.em("phone").send_private_message(G1, b"not yet sent")  # stays pending
    return w


def _stored(em: Emulator) -> MemoryStore:
    store = MemoryStore()
    store.write(records(em))
    return store


def test_restore_gives_back_every_part_of_the_emulator() -> None:
    w = _busy_world()
    for name in NAMES:
        em = w.em(name)
        back = restore(_stored(em), SeededRandom(b"other process"))
        assert back.name == em.name and back.vc == em.vc
        assert back.identity.signature_public_key == em.identity.signature_public_key
        assert back.identity.signature_private_key == em.identity.signature_private_key
        assert back.vc_signing_key == em.vc_signing_key
        assert (back.removed, back.removals, back.cursors) == (em.removed, em.removals,
                                                               em.cursors)
        assert (back.join_externally, back.expected_joins, back.announced_joins) == (
            em.join_externally, em.expected_joins, em.announced_joins)
        assert back.stats == em.stats
        assert sorted(back.epochs.epochs) == sorted(em.epochs.epochs)
        assert set(back.groups) == set(em.groups) == {G1}
        hg, hg0 = back.groups[G1], em.groups[G1]
        assert hg.group.epoch_authenticator == hg0.group.epoch_authenticator
        assert (hg.active, hg.proposed, list(hg.sent)) == (hg0.active, hg0.proposed,
                                                          list(hg0.sent))
        assert back.key_packages.keys() == em.key_packages.keys()
        for ref, kp in em.key_packages.items():
            assert back.key_packages[ref].op == kp.op
            assert back.key_packages[ref].group_suite == kp.group_suite
            assert back.key_packages[ref].bundle.init_private_key == kp.bundle.init_private_key
        assert back.pending == em.pending
        assert back.to_upload == em.to_upload
        assert records(back) == records(em)
    assert len(w.em("tablet").key_packages) == 2
    pending = w.em("phone").pending[G1]
    assert pending.reuse_guard_x is not None and pending.nonce is not None
    assert restore(_stored(w.em("phone")), SeededRandom(b"x")).pending[G1] == pending


def test_a_restored_emulator_goes_on_where_it_stopped() -> None:
    w = _busy_world()
    store = _stored(w.em("laptop"))
    w.vc.restart("laptop", store, SeededRandom(b"laptop, second boot"))
    assert w.vc.send("laptop", G1, b"after the restart").accepted
    w.vc.sync()
    read = [e for e in pump(w.ds, "bob", w.bob) if isinstance(e, ApplicationMessage)]
    assert [e.data for e in read][-1] == b"after the restart"
    w.agree()


class _CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[set[str], set[str]]] = []

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        deletes = list(deletes)
        self.calls.append((set(puts), set(deletes)))
        super().write(puts, deletes)


def test_the_checkpointer_writes_only_what_changed() -> None:
    w = world(b"checkpointer-mut")
    em = w.em("phone")
    store = _CountingStore()
    cp = Checkpointer(store)
    cp(em)
    assert cp.writes == 1 and store.calls[0] == (set(records(em)), set())
    cp(em)  # nothing changed: no write at all
    assert cp.writes == 1 and len(store.calls) == 1
    before = records(em)
    em.send_private_message(G1, b"pending")
    cp(em)
    changed = {k for k, v in records(em).items() if before.get(k) != v}
    assert cp.writes == 2 and store.calls[1] == (changed, set())
    assert "outbox" in changed and "meta" not in changed
    assert dict(store.items()) == records(em)
    # a record that disappears is deleted, and the store's old content is what it knew
    store.write({"epoch/99999999999999999999": b"stale"})
    cp2 = Checkpointer(store)
    cp2(em)
    assert store.calls[-1] == (set(), {"epoch/99999999999999999999"})
    assert dict(store.items()) == records(em)
    cp2(em)
    assert cp2.writes == 1


def test_restore_refuses_what_is_not_an_emulator() -> None:
    w = world(b"refuse-mut")
    em = w.em("phone")
    with pytest.raises(DecodeError):
        restore(MemoryStore(), SeededRandom(b"r"))
    good = records(em)
    for fmt in (b"\x00\x00", b"\x00\x03"):
        store = MemoryStore()
        store.write({**good, "meta": fmt + good["meta"][2:]})
        with pytest.raises(DecodeError):
            restore(store, SeededRandom(b"r"))
    # format 2 announces a readings field: without one set, it is refused
    store = MemoryStore()
    store.write({**good, "meta": b"\x00\x02" + good["meta"][2:] + b"\x00\x00"})
    with pytest.raises(DecodeError):
        restore(store, SeededRandom(b"r"))
    # a group record filed under another group's key
    store = MemoryStore()
    store.write({**{k: v for k, v in good.items() if not k.startswith("group/")},
                 "group/" + b"other".hex(): good["group/" + G1.hex()]})
    with pytest.raises(DecodeError):
        restore(store, SeededRandom(b"r"))
    # trailing bytes after a record
    for key in ("meta", "group/" + G1.hex()):
        store = MemoryStore()
        store.write({**good, key: good[key] + b"\x00"})
        with pytest.raises(DecodeError):
            restore(store, SeededRandom(b"r"))


# --- vc/codepoints.py, vc/state.py ----------------------------------------------------------


def test_vc_code_points_are_distinct_non_zero_uint16() -> None:
    assert VCCodePoints(1, 2, 0xFFFF).new_emulator_client_state == 0xFFFF
    assert VCCodePoints(1, 2, 3).derivation_info == 1
    for bad in ((0, 2, 3), (1, 0x10000, 3), (1, 2, -1)):
        with pytest.raises(ParameterError):
            VCCodePoints(*bad)
    for same in ((5, 5, 6), (5, 6, 5), (6, 5, 5)):
        with pytest.raises(ParameterError):
            VCCodePoints(*same)
    # one ID for the three (latest §9's single virtual_clients component), never the
    # profile record's
    assert VCCodePoints(6, 6, 6).virtual_client_action == 6
    with pytest.raises(ParameterError):
        VCCodePoints(6, 6, 6, profile=6)
    with pytest.raises(ParameterError):
        VCCodePoints(1, 2, 3, profile=2)


def test_group_transfer_keeps_the_proposed_updates_and_the_config() -> None:
    w = world(b"transfer-mut")
    g = w.em("phone").groups[G1].group
    proposed = ((b"ref-1", LeafOp(b"epoch-1", b"secret-1")),
                (b"ref-2", LeafOp(b"epoch-2", b"secret-2")))
    t = GroupTransfer(G1, save(g), LeafOp(b"epoch-0", b"secret-0"), proposed)
    wr = Writer()
    t.write(wr)
    back = GroupTransfer.read(Reader(wr.bytes()))
    assert back == t and back.proposed == proposed
    config = GroupConfig(rng=SeededRandom(b"transfer"), supported_extensions=(6,))
    loaded = back.group(config)
    assert loaded.config is config
    assert loaded.epoch_authenticator == g.epoch_authenticator
    with pytest.raises(DecodeError):
        GroupTransfer(G1, None).group(config)


def _round_trip(em: Emulator, rng: SeededRandom | None = None,
                clock: Callable[[], int] | None = None) -> Emulator:
    """`em` through a store, and the checks that hold for every state: the restored
    emulator holds the same things (compared on the emulator, not only on the records,
    so that a writer dropping a field is seen)."""
    rng = rng or SeededRandom(b"restart")
    back = restore(_stored(em), rng, clock)
    assert back._action == em._action
    assert back.pending == em.pending
    assert back._pending_ops.keys() == em._pending_ops.keys()
    assert [op for op, _ in back._pending_ops.values()] == [
        op for op, _ in em._pending_ops.values()]
    assert back.to_upload == em.to_upload
    assert (back.removed, back.removals, back.cursors) == (em.removed, em.removals, em.cursors)
    assert (back.join_externally, back.expected_joins, back.announced_joins) == (
        em.join_externally, em.expected_joins, em.announced_joins)
    assert back.vc == em.vc
    assert back.emulation is not None and em.emulation is not None
    assert back.emulation.has_pending_commit == em.emulation.has_pending_commit
    assert back.emulation.config is back.emulation_config
    for mine, theirs in ((em.groups, back.groups), (em._replaced, back._replaced)):
        assert mine.keys() == theirs.keys()
        for gid, hg in mine.items():
            assert theirs[gid].group.has_pending_commit == hg.group.has_pending_commit
            assert save(theirs[gid].group, with_pending=True) == save(hg.group,
                                                                      with_pending=True)
            assert list(theirs[gid].sent) == list(hg.sent)
            assert theirs[gid].group.config.rng is rng
    assert {n: e.base_secret for n, e in back.epochs.epochs.items()} == {
        n: e.base_secret for n, e in em.epochs.epochs.items()}
    assert records(back) == records(em)
    return back


def test_restore_keeps_what_is_in_flight() -> None:
    w = world(b"in-flight-mut", consistency=Consistency.EVENTUAL)
    for i in range(3):
        assert w.vc.send("laptop", G1, b"m%d" % i).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    peer_commit(w.ds, "bob", w.bob, w.bob.commit())
    w.vc.sync()
    laptop, phone, tablet = w.em("laptop"), w.em("phone"), w.em("tablet")
    assert list(laptop.groups[G1].sent) == []  # a new epoch: the kept keys went with it
    assert w.vc.send("laptop", G1, b"kept").accepted
    w.vc.sync()
    assert list(laptop.groups[G1].sent) == [0]
    # the phone: an application message awaiting the DS, with a key_id whose epoch, leaf
    # and generation all differ
    for i in range(2):
        assert w.vc.send("phone", G1, b"p%d" % i).accepted
    w.vc.sync()
    out = phone.send_private_message(G1, b"in flight")
    assert out.key_id is not None and len(set(out.key_id[1:])) == 3, out.key_id
    # the laptop: a commit awaiting the DS; the tablet: a KeyPackageUpload
    laptop.vc_commit(G1)
    tablet.create_key_packages(2)
    assert tablet._action is not None and len(tablet._action.key_packages) == 2
    assert tablet.emulation is not None and tablet.emulation.has_pending_commit
    for em in (laptop, phone, tablet):
        _round_trip(em)
    # the flags and sets the runs above leave at their defaults, set by hand
    tablet._action = dataclasses.replace(tablet._action, onboarding=True)
    tablet.removed = True
    tablet.expected_joins, tablet.announced_joins = {b"x1", b"x2"}, {b"y"}
    tablet.join_externally = {b"z"}
    tablet.to_upload = [b"kp-1", b"kp-2"]
    back = _round_trip(tablet)
    assert back._action is not None and back._action.onboarding
    assert back.vc.consistency is Consistency.EVENTUAL


def test_restore_keeps_an_external_join_and_a_removal_in_flight() -> None:
    w = world(b"ej-mut")
    peer_group(w.ds, "carol", b"g2", seed=b"carol/ej-mut")
    laptop, tablet = w.em("laptop"), w.em("tablet")
    laptop.external_join(b"g2", w.ds.group_info(b"g2"))
    assert laptop._action is not None and laptop._action.external_group_info is not None
    assert laptop._action.out.action is not None
    _round_trip(laptop)
    tablet.remove_emulator(b"phone")
    assert tablet._action is not None and tablet._action.removing == b"phone"
    _round_trip(tablet)


def test_restore_takes_the_clock() -> None:
    w = world(b"clock-mut")
    clock = lambda: 1_700_000_000  # noqa: E731
    back = _round_trip(w.em("phone"), clock=clock)
    assert back.emulation_config.clock is clock


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Readings)])
def test_each_literal_reading_survives_a_restart(name: str) -> None:
    w = world(b"readings-mut")
    em = w.em("phone")
    assert records(em)["meta"][:2] == b"\x00\x01"
    em.vc = dataclasses.replace(em.vc, readings=Readings(**{name: True}))
    assert records(em)["meta"][:2] == b"\x00\x02"
    back = restore(_stored(em), SeededRandom(b"r"))
    assert back.vc.readings == Readings(**{name: True})
    # a readings field with a bit past the known ones is refused
    meta = records(em)["meta"]
    store = _stored(em)
    store.write({"meta": meta[:-2] + (1 << len(dataclasses.fields(Readings))).to_bytes(2, "big")})
    with pytest.raises(DecodeError):
        restore(store, SeededRandom(b"r"))


def test_an_unknown_outgoing_kind_is_refused() -> None:
    w = world(b"kind-mut")
    em = w.em("phone")
    out = em.send_private_message(G1, b"pending")
    wr = Writer()
    _w_outgoing(wr, out)
    body = wr.bytes()
    outbox = records(em)["outbox"]
    at = outbox.find(body)
    assert at > 0
    for kind in (len(OutgoingKind), 255):
        store = _stored(em)
        store.write({"outbox": outbox[:at] + bytes([kind]) + outbox[at + 1:]})
        with pytest.raises(DecodeError):
            restore(store, SeededRandom(b"r"))


def test_epoch_base_secrets_survive_a_restart_under_reading_f1() -> None:
    """Under the literal reading of the sub-secrets (F1) an epoch keeps its
    epoch_base_secret, and the store keeps it too."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, "alice", list(NAMES), seed=b"f1-mut",
                              readings=Readings(literal_p4_subsecrets=True))
    bob = peer_group(ds, "bob", G1, seed=b"bob/f1-mut")
    add_vc(ds, vc, "bob", bob)
    assert vc.send("laptop", G1, b"hello").accepted
    vc.sync()
    em = vc.emulators["laptop"]
    kept = {n: e.base_secret for n, e in em.epochs.epochs.items()}
    assert any(s is not None for s in kept.values())
    back = _round_trip(em)
    assert {n: e.base_secret for n, e in back.epochs.epochs.items()} == kept


def test_collect_quiescent_keeps_the_newest_and_the_referenced_epochs() -> None:
    w = world(b"quiescent-mut")
    for name in ("phone", "laptop", "tablet", "phone"):
        assert w.vc.emulation_commit(name).accepted
        w.vc.sync()
    store = w.em("tablet").epochs
    numbers = sorted(store.epochs)
    assert len(numbers) >= 3
    ids = {n: store.epochs[n].epoch_id for n in numbers}
    referenced = ids[numbers[0]]
    gone = store.collect_quiescent([referenced])
    assert sorted(gone) == numbers[1:-1]
    assert sorted(store.epochs) == [numbers[0], numbers[-1]]
    assert store.collect_quiescent([]) == [numbers[0]]
    assert sorted(store.epochs) == [numbers[-1]]
    assert store.collect_quiescent([]) == []
    assert EpochStore().collect_quiescent([b"x"]) == []


def test_derivation_info_is_found_under_the_configured_code_points() -> None:
    component = DerivationInfoComponent(b"epoch id", b"ciphertext")
    cp = CodePoints(app_data_dictionary=0x0F01)
    vcp = VCCodePoints(0x9001, 0x9002, 0x9003)
    ext = leaf_extension(component, cp=cp, vcp=vcp)
    assert ext.extension_type == 0x0F01
    assert find_in_extensions((ext,), cp, vcp) == component
    assert find_in_extensions((ext,)) is None  # no dictionary under 0x0006
    assert find_in_extensions((ext,), cp) is None  # no component under 0x8001
    assert find_in_extensions((ext,), vcp=vcp) is None
    w = world(b"find-mut")
    g = w.em("phone").groups[G1].group
    own = g.tree.leaf(g.own_leaf)
    assert own is not None
    leaf = dataclasses.replace(own, extensions=(ext,))
    assert find_in_leaf(leaf, cp, vcp) == component
    assert find_in_leaf(leaf, cp) is None
    assert find_in_leaf(leaf) is None


@pytest.mark.parametrize("leaf_count", [0, 3, 5, 6, 12])
def test_an_epoch_record_with_a_leaf_count_not_a_power_of_two_is_refused(
        leaf_count: int) -> None:
    w = world(b"leaf-count-mut")
    em = w.em("phone")
    e = em.epochs.epochs[max(em.epochs.epochs)]
    good = Writer()
    write_epoch(good, e)
    assert read_epoch(Reader(good.bytes()), em.ecs).leaf_count == e.leaf_count
    bad = Writer()
    write_epoch(bad, dataclasses.replace(e, leaf_count=leaf_count))
    with pytest.raises(DecodeError):
        read_epoch(Reader(bad.bytes()), em.ecs)
    for fine in (1, 2, 4, 1 << 20):
        ok = Writer()
        write_epoch(ok, dataclasses.replace(e, leaf_count=fine))
        assert read_epoch(Reader(ok.bytes()), em.ecs).leaf_count == fine


def test_a_provisioning_emulator_has_nothing_in_flight_and_knows_the_groups() -> None:
    w = world(b"provision-mut")
    phone, laptop = w.em("phone"), w.em("laptop")
    assert state_for_new_emulator(phone).groups[0].group_id == G1
    with pytest.raises(StateError):
        state_for_new_emulator(phone, external=[b"not a group of ours"])
    assert state_for_new_emulator(phone, external=[G1]).groups == (GroupTransfer(G1, None),)
    phone.send_private_message(G1, b"in flight")  # a message, no action
    assert phone.pending and not phone.has_pending_action
    with pytest.raises(StateError):
        state_for_new_emulator(phone)
    laptop.create_key_packages(1)  # an action, no message
    assert laptop.has_pending_action and not laptop.pending
    with pytest.raises(StateError):
        state_for_new_emulator(laptop)


# --- the hooks of the literal readings and the refinement bridge ------------------------------


def test_readings_of_names_findings() -> None:
    assert Readings.of() == Readings()
    assert Readings.of("F1") == Readings(literal_p4_subsecrets=True)
    assert Readings.of("F1", "F2") == Readings(literal_p4_subsecrets=True,
                                               send_before_rotation=True)
    every = Readings.of(*FINDING_READINGS)
    assert all(getattr(every, name) for name in FINDING_READINGS.values())
    for bad in (("F99",), ("F1", "f2"), ("",)):
        with pytest.raises(ParameterError):
            Readings.of(*bad)


def test_check_x_takes_a_uint32_in_the_leaf_s_class() -> None:
    check_x(5, 1, 4)
    check_x(1, 1, 4)
    check_x(0, 0, 1)
    check_x((1 << 32) - 1, 3, 4)
    check_x((1 << 32) - 1, 0, 1)
    for x, leaf, n in ((6, 1, 4), (4, 1, 4), (1 << 32, 0, 1), (-3, 1, 4), (-1, 0, 1),
                       (5, 5, 4), (5, 1, 3)):
        with pytest.raises(ParameterError):
            check_x(x, leaf, n)
    for not_int in (True, 5.0, "5"):
        with pytest.raises(ParameterError):
            check_x(not_int, 1, 4)  # type: ignore[arg-type]


def test_pending_action_message_is_the_action_s_commit() -> None:
    w = world(b"pending-action-mut")
    em = w.em("laptop")
    with pytest.raises(StateError):
        em.pending_action_message()
    out = em.create_key_packages(1)
    assert em.pending_action_message() == out


def test_leaf_node_secret_is_the_operation_s_encryption_key_secret() -> None:
    """P8: DeriveSecret(operation_secret, "Encryption Key") in the emulation suite."""
    cs = get_suite(1)
    for secret in (b"\x00" * 32, bytes(range(32))):
        assert leaf_node_secret(cs, secret) == derive_secret(cs, secret, b"Encryption Key")
    assert leaf_node_secret(cs, b"\x00" * 32) != leaf_node_secret(cs, b"\x01" * 32)


def test_quiescent_collect_keeps_the_epochs_of_live_operations() -> None:
    w = world(b"live-mut")
    w.vc.upload_key_packages("tablet", 1)  # a held KeyPackage names the epoch of its upload
    w.vc.sync()
    for name in ("phone", "laptop", "phone"):
        assert w.vc.emulation_commit(name).accepted
        w.vc.sync()
    em = w.em("tablet")
    live = {em.groups[G1].active.epoch_id} | {kp.op.epoch_id for kp in em.key_packages.values()}
    assert len(em.key_packages) == 1 and len(live) == 2
    newest = max(em.epochs.epochs)
    expected = {n for n, e in em.epochs.epochs.items() if e.epoch_id in live} | {newest}
    assert len(em.epochs.epochs) > len(expected)
    em.collect(quiescent=True)
    assert set(em.epochs.epochs) == expected


def test_refused_messages() -> None:
    w = world(b"refused-mut")
    phone = w.em("phone")
    out = phone.send_private_message(G1, b"refused")
    assert out.generation is not None
    phone.refused(out)
    assert G1 not in phone.pending
    assert list(phone.groups[G1].sent) == [out.generation]  # its key stays for the winner
    with pytest.raises(StateError):  # not pending any more: a StateError, not a KeyError
        phone.refused(out)
    commit = phone.vc_commit(G1)
    assert phone.groups[G1].group.has_pending_commit
    phone.refused(commit)
    assert not phone.groups[G1].group.has_pending_commit and G1 not in phone.pending
    assert G1 not in phone._pending_ops
    assert list(phone.groups[G1].sent) == [out.generation]


def test_eventual_keeps_the_last_window_of_sent_generations() -> None:
    w = world(b"window-mut", consistency=Consistency.EVENTUAL)
    laptop = w.em("laptop")
    laptop.vc = dataclasses.replace(laptop.vc, sent_key_window=2)
    generations = []
    for i in range(5):
        out = laptop.send_private_message(G1, b"m%d" % i)
        assert w.vc.submit("laptop", out).accepted
        generations.append(out.generation)
        assert list(laptop.groups[G1].sent) == generations[-2:]


def test_make_reuse_guard_uses_the_given_x() -> None:
    cs = get_suite(1)
    secret, nonce = b"\x11" * 32, b"\x22" * 12
    for x in (1, 5, 9, (1 << 32) - 3):
        guard = make_reuse_guard(cs, secret, nonce, LeafIndex(1), 4, SeededRandom(b"r"), x=x)
        assert recover_x(cs, secret, nonce, guard) == x


def test_an_onboarded_emulator_s_leaf_is_like_its_siblings() -> None:
    """An emulator joining the emulation group by external commit (§4.2) announces the
    same capabilities and leaf extensions as those that joined by Welcome."""
    w = world(b"onboard-mut")
    rng = SeededRandom(b"new/watch")
    ident = Identity.basic(b"watch", get_suite(1).signature.generate_key_pair(rng))
    w.vc.onboard(Emulator(b"watch", ident, w.em("phone").vc, rng), key_packages=1)
    w.vc.sync()
    phone, watch = w.em("phone"), w.em("watch")
    assert watch.emulation is not None and phone.emulation is not None
    mine = watch.emulation.tree.leaf(watch.emulation.own_leaf)
    theirs = phone.emulation.tree.leaf(phone.emulation.own_leaf)
    assert mine is not None and theirs is not None
    assert mine.capabilities == theirs.capabilities
    assert mine.extensions == theirs.extensions
    assert mine.extensions  # the negotiation dictionary of the action component


def test_a_resync_in_flight_survives_a_restart_and_a_refusal_restores_the_prior() -> None:
    w = world(b"resync-mut")
    laptop = w.em("laptop")
    old = laptop.groups[G1]
    old_leaf = old.group.tree.leaf(old.group.own_leaf)
    assert old_leaf is not None
    gi = w.ds.group_info(G1)
    laptop.announced_joins.add(G1)  # the ExternalJoin step, accepted
    out = laptop.external_commit(G1, gi)
    assert out.kind is OutgoingKind.EXTERNAL_COMMIT and out.group_info == gi
    assert laptop._replaced[G1] is old
    back = _round_trip(laptop)  # in flight: the external commit and the replaced group
    assert back.pending[G1].group_info == gi and G1 in back._replaced
    new = laptop.groups[G1].group
    new_leaf = new.tree.leaf(new.own_leaf)
    assert new_leaf is not None
    assert new_leaf.capabilities == old_leaf.capabilities
    assert find_in_leaf(new_leaf) is not None  # DerivationInfo, for the siblings
    # bob would see one leaf of the virtual client, not two (the prior one removed)
    twin = load(save(w.bob), GroupConfig(rng=SeededRandom(b"twin")))
    before = len(list(twin.members()))
    twin.process(out.message)
    assert len(list(twin.members())) == before
    names = [getattr(leaf.credential, "identity", None) for _, leaf in twin.members()]
    assert names.count(b"alice") == 1
    # refused: the group as it was
    laptop.refused(out)
    assert laptop.groups[G1] is old and G1 not in laptop._replaced


def test_an_added_emulator_gets_the_proposed_updates() -> None:
    w = world(b"proposed-mut")
    assert w.vc.update("phone", G1).accepted
    w.vc.sync()
    proposed = w.em("laptop").groups[G1].proposed
    assert len(proposed) == 1
    rng = SeededRandom(b"new/desk")
    ident = Identity.basic(b"desk", get_suite(1).signature.generate_key_pair(rng))
    w.vc.add_emulator("laptop", Emulator(b"desk", ident, w.em("phone").vc, rng))
    w.vc.sync()
    assert w.em("desk").groups[G1].proposed == proposed


def test_following_an_external_join_refuses_what_is_not_one_of_ours() -> None:
    w = world(b"follow-mut")
    tablet = w.em("tablet")
    gi = w.ds.group_info(G1)
    tablet.expected_joins.add(G1)  # as after a sibling's ExternalJoin
    # a proposal is no external commit with a path
    proposal = w.bob.propose_remove(LeafIndex(1))
    with pytest.raises(ValidationError) as e:
        follow_external_join(tablet, gi, proposal)
    assert e.value.check_id == "CM-NEW-MEMBER-COMMIT-PATH"
    # an external commit without DerivationInfo (a stranger's)
    rng = SeededRandom(b"carol/follow-mut")
    carol = Identity.basic(b"carol", get_suite(1).signature.generate_key_pair(rng))
    _, commit = Group.external_join(gi, carol, GroupConfig(rng=rng))
    with pytest.raises(ValidationError) as e:
        follow_external_join(tablet, gi, commit)
    assert e.value.check_id == "VC-DERIVATION-INFO"
    assert G1 in tablet.expected_joins  # nothing was installed


def test_a_removal_keeps_the_refs_the_ds_deleted() -> None:
    w = world(b"deleted-kp-mut")
    tablet = w.em("tablet")
    tablet.remove_emulator(b"phone", deleted_key_packages=[b"ref-2", b"ref-1", b"ref-2"])
    assert tablet._action is not None
    assert tablet._action.deleted_key_packages == frozenset({b"ref-1", b"ref-2"})
    back = _round_trip(tablet)
    assert back._action is not None
    assert back._action.deleted_key_packages == frozenset({b"ref-1", b"ref-2"})
    laptop = w.em("laptop")
    laptop.remove_emulator(b"phone")
    assert laptop._action is not None and laptop._action.deleted_key_packages is None


def test_a_sent_message_s_x_nonce_and_attribution() -> None:
    """Outgoing.nonce is the AEAD nonce used, key_schedule_nonce XOR reuse_guard (as the
    receiver sees both), and Outgoing.reuse_guard_x the x given."""
    w = world(b"nonce-mut")
    assert w.vc.emulation_commit("tablet").accepted  # a newer emulation epoch
    w.vc.sync()
    phone = w.em("phone")
    leaf, n = phone.reuse_guard_position(G1)
    x = int(leaf) + 7 * n
    out = phone.send_private_message(G1, b"with x", x=x)
    assert out.reuse_guard_x == x
    secret = phone.groups[G1].active.leaf_node_secret
    assert w.vc.submit("phone", out).accepted
    named = phone.epochs.by_id(phone.groups[G1].active.epoch_id).epoch
    assert named < max(phone.epochs.epochs)  # the leaf names an older emulation epoch
    seen = [e.received for e in w.vc.sync() if e.received.sibling_leaf is not None]
    assert {(r.sibling_leaf, r.sibling_epoch) for r in seen} == {(int(leaf), named)}
    assert len(seen) == 2  # laptop and tablet attribute it
    [ev] = [e for e in pump(w.ds, "bob", w.bob) if isinstance(e, ApplicationMessage)]
    ksn, guard = ev.key_schedule_nonce, ev.reuse_guard
    assert len(ksn) == 12 and len(guard) == 4
    assert out.nonce == bytes(a ^ b for a, b in zip(ksn[:4], guard, strict=True)) + ksn[4:]
    assert recover_x(get_suite(1), secret, ksn, guard) == x


def test_siblings_follow_an_external_join() -> None:
    w = world(b"follow-ok-mut")
    carol = peer_group(w.ds, "carol", b"g2", seed=b"carol/follow-ok-mut")
    assert w.vc.external_join("laptop", b"g2").accepted
    events = w.vc.sync()
    pump(w.ds, "carol", carol)
    joined = {e.emulator for e in events
              if e.received.joined and e.received.group_id == b"g2"}
    assert {"phone", "tablet"} <= joined
    for name in ("phone", "tablet"):
        em = w.em(name)
        assert b"g2" in em.groups and b"g2" not in em.expected_joins
        assert em.groups[b"g2"].group.epoch_authenticator == carol.epoch_authenticator
        assert em.groups[b"g2"].group.config.rng is em.rng
    peer_commit(w.ds, "carol", carol, carol.commit())
    w.vc.sync()
    w.agree(b"g2", carol)


def test_a_ds_snapshot_keeps_the_f3_option() -> None:
    ds = DeliveryService(literal_p11_ds_scope=True)
    data = ds.to_bytes()
    assert data[len(DS_MAGIC):len(DS_MAGIC) + 2] == b"\x00\x02"
    assert DeliveryService.from_bytes(data).state.literal_p11_ds_scope
    plain = DeliveryService().to_bytes()
    assert plain[len(DS_MAGIC):len(DS_MAGIC) + 2] == b"\x00\x01"
    assert not DeliveryService.from_bytes(plain).state.literal_p11_ds_scope
    at = len(DS_MAGIC) + 2  # the options byte of version 2
    for bad in (0, 2, 3, 0x81):
        with pytest.raises(DecodeError):
            DeliveryService.from_bytes(data[:at] + bytes([bad]) + data[at + 1:])


def test_an_added_emulator_gets_the_epochs_whole_under_reading_f1() -> None:
    ds = DeliveryService()
    vc = VirtualClient.create(ds, "alice", list(NAMES), seed=b"f1-add-mut",
                              readings=Readings(literal_p4_subsecrets=True))
    bob = peer_group(ds, "bob", G1, seed=b"bob/f1-add-mut")
    add_vc(ds, vc, "bob", bob)
    rng = SeededRandom(b"new/desk-f1")
    ident = Identity.basic(b"desk", get_suite(1).signature.generate_key_pair(rng))
    vc.add_emulator("laptop", Emulator(b"desk", ident, vc.emulators["phone"].vc, rng))
    vc.sync()
    laptop, desk = vc.emulators["laptop"], vc.emulators["desk"]
    shared = set(laptop.epochs.epochs) & set(desk.epochs.epochs)
    assert shared
    for n in shared:
        mine, theirs = desk.epochs.epochs[n], laptop.epochs.epochs[n]
        assert (mine.epoch_id, mine.leaf_count, mine.roster, mine.generation_id_secret,
                mine.encryption_key, mine.base_secret, mine.retained) == (
            theirs.epoch_id, theirs.leaf_count, theirs.roster, theirs.generation_id_secret,
            theirs.encryption_key, theirs.base_secret, theirs.retained)
        assert (None if mine.pprf is None else mine.pprf.serialize()) == (
            None if theirs.pprf is None else theirs.pprf.serialize())
    assert any(desk.epochs.epochs[n].pprf is not None for n in shared)
    assert any(desk.epochs.epochs[n].base_secret is not None for n in shared)


def test_a_commit_of_the_virtual_client_always_has_a_path() -> None:
    """§5.3: even with a proposal that needs no path (an Add), the virtual client's
    Commit carries one, from a new operation: its LeafNode changes."""
    w = world(b"path-mut")
    vc_leaf = w.bob.members()[1][1]
    proposal = w.bob.propose_add(ds_bundle("carol-path-mut"))
    assert w.ds.submit("bob", proposal).accepted
    w.vc.sync()
    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    leaves = dict(w.bob.members())
    assert len(leaves) == 3
    assert leaves[LeafIndex(1)].encryption_key != vc_leaf.encryption_key
    # carol's KeyPackage is not from the DS's directory: her Welcome is kept unrouted
    assert [gid for gid, _ in w.vc.unrouted_welcomes] == [G1]


def test_each_sibling_commit_is_one_rederivation() -> None:
    w = world(b"rederive-mut")
    before = {n: w.em(n).stats.rederivations for n in NAMES}
    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    assert w.em("phone").stats.rederivations == before["phone"] + 1
    assert w.em("tablet").stats.rederivations == before["tablet"] + 1
    assert w.vc.commit("phone", G1).accepted
    w.vc.sync()
    assert w.em("tablet").stats.rederivations == before["tablet"] + 2
    assert w.em("laptop").stats.rederivations == before["laptop"] + 1


def test_the_emulation_group_takes_one_leaf_per_emulator() -> None:
    """A received emulation Commit adding an emulator that is a member already is
    refused (VC-EMULATOR-DUPLICATE), unless the same Commit removes it."""
    w = world(b"one-leaf-mut")
    laptop, phone = w.em("laptop"), w.em("phone")
    validator = laptop.emulation_config.proposal_list_validator
    assert validator is not None
    members = list(laptop.emu.members())
    ext = laptop.emu.context.extensions
    again = Emulator(b"phone", phone.identity, phone.vc, SeededRandom(b"again"))
    add_again = Add(again.emulation_key_package().key_package)
    with pytest.raises(ValidationError) as e:
        validator(ext, ext, [add_again], members)
    assert e.value.check_id == "VC-EMULATOR-DUPLICATE"
    validator(ext, ext, [Remove(laptop.emulation_leaf_of(b"phone")), add_again], members)
    rng = SeededRandom(b"new/desk-one-leaf")
    desk = Emulator(b"desk", Identity.basic(b"desk", get_suite(1).signature
                                            .generate_key_pair(rng)), phone.vc, rng)
    validator(ext, ext, [Add(desk.emulation_key_package().key_package)], members)


def test_a_member_s_update_is_not_taken_for_our_own() -> None:
    w = world(b"bob-update-mut")
    proposed = {n: dict(w.em(n).groups[G1].proposed) for n in NAMES}
    assert w.ds.submit("bob", w.bob.propose_update()).accepted
    w.vc.sync()
    for n in NAMES:
        assert w.em(n).groups[G1].proposed == proposed[n]
    assert w.vc.commit("laptop", G1).accepted  # the virtual client commits bob's Update
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()


def test_restore_keeps_configured_code_points_and_a_welcome_in_flight() -> None:
    w = world(b"codepoints-welcome-mut")
    laptop = w.em("laptop")
    laptop.vc = dataclasses.replace(laptop.vc,
                                    codepoints=VCCodePoints(0x9001, 0x9002, 0x9003))
    back = _round_trip(laptop)
    assert back.vc.codepoints == VCCodePoints(0x9001, 0x9002, 0x9003)
    phone = w.em("phone")
    rng = SeededRandom(b"new/desk-welcome")
    desk = Emulator(b"desk", Identity.basic(b"desk", get_suite(1).signature
                                            .generate_key_pair(rng)), phone.vc, rng)
    out = phone.add_emulator(desk.emulation_key_package().key_package)
    assert out.welcome is not None
    back = _round_trip(phone)
    assert back._action is not None and back._action.out.welcome == out.welcome


def test_the_meta_record_stores_the_consistency_as_0_or_1() -> None:
    for consistency, byte in ((Consistency.STRONG, 0), (Consistency.EVENTUAL, 1)):
        w = world(b"meta-byte-mut", consistency=consistency)
        em = w.em("phone")
        prefix = Writer()
        prefix.u16(1)
        prefix.opaque(em.name)
        write_identity(prefix, em.identity)
        prefix.opaque(em.vc.name)
        prefix.u16(em.vc.emulation_suite)
        meta = records(em)["meta"]
        assert meta.startswith(prefix.bytes())
        assert meta[len(prefix.bytes())] == byte


def test_a_resync_under_reading_f7_keeps_the_prior_leaf() -> None:
    """The literal reading resync_without_remove (F7): the external commit removes
    nothing, so the virtual client has two leaves."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, "alice", list(NAMES), seed=b"f7-mut",
                              readings=Readings(resync_without_remove=True))
    bob = peer_group(ds, "bob", G1, seed=b"bob/f7-mut")
    add_vc(ds, vc, "bob", bob)
    laptop = vc.emulators["laptop"]
    laptop.announced_joins.add(G1)
    out = laptop.external_commit(G1, ds.group_info(G1))
    twin = load(save(bob), GroupConfig(rng=SeededRandom(b"twin")))
    before = len(list(twin.members()))
    twin.process(out.message)
    assert len(list(twin.members())) == before + 1


def test_a_refused_external_join_leaves_no_group() -> None:
    w = world(b"refused-join-mut")
    peer_group(w.ds, "carol", b"g2", seed=b"carol/refused-join-mut")
    laptop = w.em("laptop")
    laptop.announced_joins.add(b"g2")  # the ExternalJoin step, accepted
    out = laptop.external_commit(b"g2", w.ds.group_info(b"g2"))
    assert b"g2" in laptop.groups and b"g2" not in laptop._replaced
    laptop.refused(out)
    assert b"g2" not in laptop.groups and b"g2" not in laptop.pending


# --- a whole virtual client under moved code points ---------------------------------------

MOVED_VCP = VCCodePoints(derivation_info=0x9001, virtual_client_action=0x9002,
                         new_emulator_client_state=0x9003)
MOVED_XCP = CodePoints(app_data_dictionary=0xF0A6, app_data_update=0xF0A8,
                       app_components=0x0F01, safe_aad=0x0F02)
DEFAULT_DICTIONARY = CodePoints().app_data_dictionary


def _moved_world(monkeypatch: pytest.MonkeyPatch, seed: bytes) -> World:
    """`world` with every code point of the virtual client moved (VirtualClient.create
    takes no code points, so its config class is wrapped while it runs)."""
    import mlsvc.virtual_client as vc_module
    from mlsvc.vc.emulator import VirtualClientConfig

    def moved(*args: Any, **kwargs: Any) -> VirtualClientConfig:
        return dataclasses.replace(VirtualClientConfig(*args, **kwargs),
                                   codepoints=MOVED_VCP, ext_codepoints=MOVED_XCP)

    with monkeypatch.context() as m:
        m.setattr(vc_module, "VirtualClientConfig", moved)
        ds = DeliveryService()
        vc = VirtualClient.create(ds, "alice", list(NAMES), seed=seed)
    bob = peer_group(ds, "bob", G1, seed=b"bob/" + seed)
    add_vc(ds, vc, "bob", bob)
    w = World(ds, vc, bob)
    w.agree()
    return w


def _dictionary_ids(extensions: Iterable[Extension], cp: CodePoints) -> set[int] | None:
    from mlsvc.ext.components import AppDataDictionary

    d = AppDataDictionary.find_in(extensions, cp)
    return None if d is None else set(d.component_ids())


def test_a_virtual_client_uses_its_moved_code_points_everywhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = _moved_world(monkeypatch, b"moved-cp-mut")
    for name in NAMES:
        em = w.em(name)
        assert em.vc.codepoints == MOVED_VCP and em.vc.ext_codepoints == MOVED_XCP
        # the emulation group's context: the dictionary under 0xF0A6 naming the moved
        # component IDs, safe_aad listing the moved action, required capability 0xF0A6
        exts = em.emu.context.extensions
        types = {e.extension_type for e in exts}
        assert 0xF0A6 in types and DEFAULT_DICTIONARY not in types
        assert _dictionary_ids(exts, MOVED_XCP) == {0x0F01, 0x0F02}
        assert _dictionary_ids(exts, CodePoints()) is None
        from mlsvc.ext.components import Negotiated

        safe_aad = Negotiated.of_extensions(exts, MOVED_XCP).safe_aad
        assert safe_aad is not None and set(safe_aad.meaningful()) == {0x9002}
        # every emulation leaf: capabilities and leaf extensions under the moved numbers
        for _, leaf in em.emu.members():
            assert 0xF0A6 in leaf.capabilities.extensions
            assert DEFAULT_DICTIONARY not in leaf.capabilities.extensions
            assert _dictionary_ids(leaf.extensions, MOVED_XCP) == {0x0F01, 0x0F02}
        # the engine's SafeAAD check of emulation messages looks under 0xF0A6
        validator = em.emulation_config.message_validator
        assert validator is not None
        with pytest.raises(ValidationError) as err:
            validator(em.emu.context, b"")
        assert err.value.check_id == "EXT-SAFE-AAD-REQUIRED"
    # the virtual client's leaf in G1 (from its KeyPackage): capabilities and the
    # DerivationInfo under the moved numbers only
    (leaf,) = [node for _, node in w.bob.members()
               if getattr(node.credential, "identity", None) == b"alice"]
    assert 0xF0A6 in leaf.capabilities.extensions
    assert DEFAULT_DICTIONARY not in leaf.capabilities.extensions
    assert _dictionary_ids(leaf.extensions, MOVED_XCP) == {0x9001}
    assert find_in_leaf(leaf, MOVED_XCP, MOVED_VCP) is not None
    assert find_in_leaf(leaf, MOVED_XCP) is None and find_in_leaf(leaf) is None
    # end to end: a commit of the virtual client (siblings re-derive its leaf), more
    # KeyPackages (siblings re-derive them), a message
    before = {n: w.em(n).stats.rederivations for n in NAMES}
    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert w.em("phone").stats.rederivations == before["phone"] + 1
    assert w.em("tablet").stats.rederivations == before["tablet"] + 1
    (leaf,) = [node for _, node in w.bob.members()
               if getattr(node.credential, "identity", None) == b"alice"]
    assert find_in_leaf(leaf, MOVED_XCP, MOVED_VCP) is not None
    w.vc.upload_key_packages("tablet", 2)
    w.vc.sync()
    refs = {n: sorted(w.em(n).key_packages) for n in NAMES}
    assert len(refs["tablet"]) == 2 and refs["phone"] == refs["laptop"] == refs["tablet"]
    assert w.vc.send("phone", G1, b"moved").accepted
    w.vc.sync()
    (event,) = pump(w.ds, "bob", w.bob)
    assert isinstance(event, ApplicationMessage) and event.data == b"moved"


def test_an_added_emulator_reads_its_state_under_the_moved_code_points(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = _moved_world(monkeypatch, b"moved-add-mut")
    rng = SeededRandom(b"new/desk-moved")
    ident = Identity.basic(b"desk", get_suite(1).signature.generate_key_pair(rng))
    w.vc.add_emulator("laptop", Emulator(b"desk", ident, w.em("phone").vc, rng))
    w.vc.sync()
    desk = w.em("desk")
    assert set(desk.groups) == {G1}
    assert desk.groups[G1].group.epoch_authenticator == w.bob.epoch_authenticator
    assert desk.groups[G1].active == w.em("phone").groups[G1].active


# --- the quiescent collection of retained operations (Q7) ---------------------------------


def _retained_world(seed: bytes, readings: Readings | None = None
                    ) -> tuple[Emulator, HeldKeyPackage, EmulationEpoch]:
    """Two KeyPackages A and B of one emulation epoch (each sibling keeps both Q7
    entries when it re-derives them); A becomes the leaf in G1, then the leaf moves on
    to C, of a newer epoch: A is dead, B still held."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, "alice", list(NAMES), seed=seed,
                              readings=readings or Readings())
    bob = peer_group(ds, "bob", G1, seed=b"bob/" + seed)
    vc.upload_key_packages("phone", 2)
    kp = MLSMessage.decode(ds.fetch_key_package(vc.id)).body
    assert isinstance(kp, KeyPackage)
    bob.propose_add(kp)
    peer_commit(ds, "bob", bob, bob.commit())
    vc.sync()
    assert vc.update("laptop", G1).accepted
    pump(ds, "bob", bob)
    peer_commit(ds, "bob", bob, bob.commit())
    vc.sync()
    em = vc.emulators["tablet"]  # a sibling: it re-derived A and B
    (held,) = em.key_packages.values()
    ep = em.epochs.by_id(held.op.epoch_id)
    assert em.groups[G1].active.epoch_id != ep.epoch_id
    assert len(ep.retained) == 2
    return em, held, ep


def test_quiescent_collect_keeps_the_live_retained_operation_and_drops_the_dead() -> None:
    em, held, ep = _retained_world(b"q7-mut")
    entries = dict(ep.retained)
    assert em.collect() == []
    assert ep.retained == entries  # the window's collection keeps Q7 entries
    em.collect(quiescent=True)
    assert ep.epoch in em.epochs.epochs  # B references it
    assert len(ep.retained) == 1
    ((x, kept),) = ep.retained.items()
    assert entries[x] == kept
    assert leaf_node_secret(em.ecs, kept.operation_secret) == held.op.leaf_node_secret
    (dead,) = [e for e in entries.values() if e != kept]
    assert leaf_node_secret(em.ecs, dead.operation_secret) != held.op.leaf_node_secret
    em.collect(quiescent=True)
    assert len(ep.retained) == 1


def test_quiescent_collect_under_f1_keeps_every_operation_of_a_live_epoch() -> None:
    """Under F1 every operation of an epoch has the epoch's leaf_node_secret: B held
    keeps A's entry too."""
    em, held, ep = _retained_world(b"q7-f1-mut", Readings(literal_p4_subsecrets=True))
    assert ep.base_secret is not None
    entries = dict(ep.retained)
    ops = [e.operation_secret for e in entries.values()]
    assert all(leaf_node_secret(em.ecs, s) != held.op.leaf_node_secret for s in ops)
    em.collect(quiescent=True)
    assert ep.retained == entries


# --- adding an emulator ----------------------------------------------------------------------


def test_adding_an_emulator_twice_is_refused_before_anything_changes() -> None:
    """The same emulator (its identity), and the laptop's name under a new signature
    key: VC-EMULATOR-DUPLICATE from the provisioner's own check, before any commit is
    made (no random drawn, nothing pending)."""
    w = world(b"add-twice-mut")
    phone, laptop = w.em("phone"), w.em("laptop")
    rng = SeededRandom(b"again/laptop")
    renamed = Identity.basic(b"laptop", get_suite(1).signature.generate_key_pair(rng))
    assert renamed.signature_public_key != laptop.identity.signature_public_key
    for ident in (laptop.identity, renamed):
        again = Emulator(b"laptop", ident, laptop.vc, SeededRandom(b"again"))
        kp = again.emulation_key_package().key_package
        epoch = phone.emu.epoch
        draws = copy.deepcopy(phone.rng)
        with pytest.raises(ValidationError) as e:
            phone.add_emulator(kp)
        assert e.value.check_id == "VC-EMULATOR-DUPLICATE"
        assert phone._action is None and not phone.emu.has_pending_commit
        assert phone.emu.epoch == epoch and phone.pending == {}
        assert phone.rng(64) == draws(64)  # nothing was drawn


def test_an_emulator_added_with_external_groups_joins_them_externally() -> None:
    w = world(b"add-external-mut")
    rng = SeededRandom(b"new/desk-external")
    ident = Identity.basic(b"desk", get_suite(1).signature.generate_key_pair(rng))
    w.vc.add_emulator("laptop", Emulator(b"desk", ident, w.em("phone").vc, rng),
                      external=[G1], join_now=False)
    desk = w.em("desk")
    assert desk.join_externally == {G1} and G1 not in desk.groups


# --- _derive: the P3 resample count accumulates ------------------------------------------


def test_the_resample_count_adds_up_over_derivations() -> None:
    w = world(b"resample-mut")
    em = w.em("phone")
    r1, r2, r3 = (bytes([i]) * 32 for i in (1, 2, 3))
    base = em.stats.resamples
    real = em.rng
    em.rng = ScriptedRandom(real, [r1, r1, r2, r1, r2, r3])
    em._derive()  # r1: fresh
    assert em.stats.resamples == base
    em._derive()  # r1 punctured, r2
    assert em.stats.resamples == base + 1
    em._derive()  # r1, r2 punctured, r3
    assert em.stats.resamples == base + 3
    em.rng = real


def test_siblings_follow_an_external_join_under_moved_code_points(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Following a sibling's external join finds its DerivationInfo under the moved
    numbers (receive.follow_external_join)."""
    w = _moved_world(monkeypatch, b"moved-follow-mut")
    carol = peer_group(w.ds, "carol", b"g2", seed=b"carol/moved-follow-mut")
    assert w.vc.external_join("laptop", b"g2").accepted
    w.vc.sync()
    pump(w.ds, "carol", carol)
    for name in NAMES:
        assert b"g2" in w.em(name).groups
    (leaf,) = [node for _, node in carol.members()
               if getattr(node.credential, "identity", None) == b"alice"]
    assert find_in_leaf(leaf, MOVED_XCP, MOVED_VCP) is not None
    assert find_in_leaf(leaf, MOVED_XCP) is None
    peer_commit(w.ds, "carol", carol, carol.commit())
    w.vc.sync()
    w.agree(b"g2", carol)


OT_KP, OT_LN, OT_APP = (OperationType.KEY_PACKAGE, OperationType.LEAF_NODE,
                        OperationType.APPLICATION)


# --- vc/operation_tree.py: state transfer, copies and bounds (the later text) -----------


def test_an_operation_tree_resumed_from_its_state_continues_the_formulas() -> None:
    """latest §6.1.2: a tree resumed from a transferred state (`from_state`) gives the
    operations the text's formulas give (recomputed by test_operation_tree's helpers),
    from the ratchet positions and retained generations of the state; a state with a
    leaf count that is no power of two is refused as the constructor refuses it."""
    t = ot_tree()
    t.next_operation(1, OT_LN, OT_GROUP)  # leaf 1 expanded, its leaf_node ratchet at 1
    t.operation_at(2, OT_APP, 3, b"ctx")  # leaf 2: application 0..2 retained
    back = OperationSecretTree.from_state(OT_CS, t.state.copy())
    assert (back.epoch_id, back.leaf_count) == (OT_EPOCH_ID, 4)
    op = back.next_operation(1, OT_LN, OT_GROUP)
    assert (op.generation, op.operation_secret) == (1, expected_operation_secret(
        OT_CS, OT_BASE, 1, OT_LN, 1, OT_GROUP))
    op = back.operation_at(2, OT_APP, 1, b"late")
    assert op.operation_secret == expected_operation_secret(OT_CS, OT_BASE, 2, OT_APP, 1,
                                                            b"late")
    op = back.next_operation(3, OT_KP)  # a leaf the state had not expanded yet
    assert op.operation_secret == expected_operation_secret(OT_CS, OT_BASE, 3, OT_KP, 0, b"")
    bad = t.state.copy()
    bad.leaf_count = 3
    with pytest.raises(ParameterError):
        OperationSecretTree.from_state(OT_CS, bad)
    bad = t.state.copy()
    bad.out_of_order_tolerance = -1
    with pytest.raises(ParameterError):
        OperationSecretTree.from_state(OT_CS, bad)


def test_an_operation_tree_state_copy_is_independent_once_ratchets_exist() -> None:
    """latest §5.2, reading R4: a copy taken after leaves were expanded (ratchets with
    retained generations) rolls a re-derivation back; using the original does not move
    the copy, nor the copy the original."""
    t = ot_tree()
    t.operation_at(2, OT_LN, 2, OT_GROUP)  # leaf 2 expanded; leaf_node 0 and 1 retained
    saved = t.state.copy()
    first = t.operation_at(2, OT_LN, 1, OT_GROUP)  # consumes retained generation 1
    t.next_operation(2, OT_LN, OT_GROUP)  # generation 3
    assert saved.ratchets[(2, OT_LN)].generation == 3
    assert set(saved.ratchets[(2, OT_LN)].retained) == {0, 1}
    t.state = saved  # the message was rejected: undo
    assert t.operation_at(2, OT_LN, 1, OT_GROUP) == first
    assert t.next_operation(2, OT_LN, OT_GROUP).generation == 3
    assert t.operation_at(2, OT_LN, 0, OT_GROUP).operation_secret == (
        expected_operation_secret(OT_CS, OT_BASE, 2, OT_LN, 0, OT_GROUP))
    # a ratchet's own copy
    r = OperationRatchet(7, b"\x05" * 32, {5: b"\x06" * 32})
    c = r.copy()
    assert (c.generation, c.secret, c.retained) == (7, b"\x05" * 32, {5: b"\x06" * 32})
    c.retained.clear()
    c.generation = 8
    assert r.generation == 7 and r.retained == {5: b"\x06" * 32}


def test_a_transferred_operation_tree_state_cannot_widen_the_tree() -> None:
    """latest §5.2: the leaf index is checked against the tree's leaf count, also for a
    resumed state that names a ratchet outside the tree."""
    t = ot_tree()
    t.next_operation(0, OT_LN, OT_GROUP)
    state = t.state.copy()
    state.ratchets[(4, OT_LN)] = state.ratchets[(0, OT_LN)].copy()
    back = OperationSecretTree.from_state(OT_CS, state)
    with pytest.raises(ParameterError):
        back.next_operation(4, OT_LN, OT_GROUP)
    with pytest.raises(ParameterError):
        back.operation_at(4, OT_LN, 1, OT_GROUP)
    assert back.next_operation(3, OT_LN, OT_GROUP).generation == 0


def test_operation_tree_uint32_fields_take_their_largest_value() -> None:
    """latest §5.2, §5.5.1: leaf_index, generation and key_package_index are uint32s,
    0xFFFFFFFF included, 2^32 not."""
    top = OT_MAX_UINT32
    assert top == (1 << 32) - 1
    assert encode_operation_context(OT_EPOCH_ID, top, top, OT_APP, b"c") == ot_op_context(
        OT_EPOCH_ID, top, top, OT_APP, b"c")
    secret = b"\x42" * 32
    assert key_package_seed_secret(OT_CS, secret, top) == ot_seed(OT_CS, secret, top)
    for bad in ((1 << 32, 0), (0, 1 << 32)):
        with pytest.raises(ParameterError):
            encode_operation_context(OT_EPOCH_ID, bad[0], bad[1], OT_APP, b"c")
    with pytest.raises(ParameterError):
        key_package_seed_secret(OT_CS, secret, 1 << 32)


def test_the_last_uint32_generation_of_an_operation_ratchet_is_usable() -> None:
    """latest §5.2: generation MAX_GENERATION (2^32 - 1) is the last one handed out; the
    ratchet is exhausted after it."""
    t = ot_tree()
    t.next_operation(0, OT_APP, b"")
    ratchet = t.state.ratchets[(0, OT_APP)]
    ratchet.generation, ratchet.secret = MAX_GENERATION, b"\x07" * 32
    op = t.next_operation(0, OT_APP, b"a")
    g = derive_secret(OT_CS, b"\x07" * 32, b"VC Operation Secret")
    assert op.generation == MAX_GENERATION
    assert op.operation_secret == expand_with_label(
        OT_CS, g, b"vc operation",
        ot_op_context(OT_EPOCH_ID, 0, MAX_GENERATION, OT_APP, b"a"), OT_CS.nh)
    with pytest.raises(StateError):
        t.next_operation(0, OT_APP, b"a")


def test_the_forward_distance_counts_from_the_ratchet_s_position() -> None:
    """R2: a generation at most max_forward_distance past the ratchet's next one is
    derived, however far the ratchet has moved already."""
    t = ot_tree(max_forward_distance=3)
    for _ in range(4):
        t.next_operation(0, OT_KP)
    op = t.operation_at(0, OT_KP, 7)  # 3 past generation 4
    assert op.operation_secret == expected_operation_secret(OT_CS, OT_BASE, 0, OT_KP, 7, b"")
    with pytest.raises(GenerationTooFarError):
        t.operation_at(0, OT_KP, 12)  # 4 past generation 8


# --- vc/generation_id.py: the two texts' PrivateMessageContext ---------------------------


def test_draft_00_context_refuses_a_group_id_or_an_epoch_alone() -> None:
    """draft-00 §5.9 (P11): the context has neither group_id nor epoch; either one given
    alone is refused as both are."""
    assert private_message_context(5, RatchetType.APPLICATION) == b"\x00\x00\x00\x05\x01"
    for extra in ({"group_id": b"g"}, {"epoch": 0}, {"group_id": b"g", "epoch": 3}):
        with pytest.raises(ParameterError):
            private_message_context(5, RatchetType.APPLICATION, **extra)


def test_latest_context_takes_epoch_zero_and_the_last_uint64() -> None:
    """latest §5.6.3: opaque group_id<V>, uint64 epoch, uint32 generation, uint8
    ratchet_type; epoch 0 (a group's first) and 2^64 - 1 are uint64s, -1 and 2^64 not."""
    for epoch in (0, 1, (1 << 64) - 1):
        got = private_message_context(9, RatchetType.HANDSHAKE, profile="latest",
                                      group_id=b"grp", epoch=epoch)
        assert got == b"\x03grp" + epoch.to_bytes(8, "big") + b"\x00\x00\x00\x09\x02"
    for bad in (-1, 1 << 64):
        with pytest.raises(ParameterError):
            private_message_context(9, RatchetType.HANDSHAKE, profile="latest",
                                    group_id=b"grp", epoch=bad)


# --- vc/reuse_guard.py: the profile argument is checked everywhere ----------------------


def test_reuse_guard_functions_refuse_an_unknown_profile() -> None:
    """An unknown text is a ParameterError (mlsvc.vc.profiles.profile_of), from every
    entry point, rather than a guard computed under the default text; both known texts
    use the same formula on the secret they are given."""
    cs = get_suite(1)
    secret, nonce = b"\x31" * 32, b"\x32" * 12
    guard = make_reuse_guard(cs, secret, nonce, LeafIndex(1), 4, SeededRandom(b"r"), x=5)
    for profile in ("draft-00", "latest"):
        assert make_reuse_guard(cs, secret, nonce, LeafIndex(1), 4, SeededRandom(b"r"),
                                x=5, profile=profile) == guard
        assert recover_x(cs, secret, nonce, guard, profile=profile) == 5
        assert recover_leaf_index(cs, secret, nonce, guard, 4, profile=profile) == 1
    for bad in ("draft-01", "LATEST", ""):
        with pytest.raises(ParameterError):
            make_reuse_guard(cs, secret, nonce, LeafIndex(1), 4, SeededRandom(b"r"), x=5,
                             profile=bad)
        with pytest.raises(ParameterError):
            make_reuse_guard_x(cs, secret, nonce, LeafIndex(1), 4, SeededRandom(b"r"),
                               profile=bad)
        with pytest.raises(ParameterError):
            recover_x(cs, secret, nonce, guard, profile=bad)
        with pytest.raises(ParameterError):
            recover_leaf_index(cs, secret, nonce, guard, 4, profile=bad)


# --- vc/ff1.py: the length bounds are inclusive -------------------------------------------


def test_ff1_length_and_tweak_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    """SP 800-38G §5.2: n <= maxlen and a tweak of at most maxTlen bytes. The real bounds
    (2^32 - 1 numerals or bytes) are out of reach of a test, so they are lowered to the
    size of NIST's FF1 sample 2 (radix 10, ten numerals, a ten-byte tweak), which must
    still give the published ciphertext; one more numeral or tweak byte is refused."""
    from mlsvc.vc import ff1

    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    tweak = bytes.fromhex("39383736353433323130")
    plain = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    cipher = [6, 1, 2, 4, 2, 0, 0, 7, 7, 3]
    monkeypatch.setattr(ff1, "MAX_LENGTH", 10)
    monkeypatch.setattr(ff1, "MAX_TWEAK_LENGTH", 10)
    f = ff1.FF1(key, 10)
    assert f.encrypt(plain, tweak) == cipher
    assert f.decrypt(cipher, tweak) == plain
    with pytest.raises(ParameterError):
        f.encrypt([*plain, 0], tweak)
    with pytest.raises(ParameterError):
        f.encrypt(plain, tweak + b"\x00")


# --- vc/epoch.py, vc/operation.py -----------------------------------------------------------


def test_an_empty_epoch_store_collects_nothing() -> None:
    store = EpochStore(2)
    assert store.collect([]) == [] and store.collect([b"anything"]) == []
    assert store.epochs == {}


def _standalone_epoch() -> EmulationEpoch:
    return open_epoch(get_suite(1), bytes(range(100, 132)), 1, 4, LeafIndex(1),
                      {0: b"phone", 1: b"laptop", 2: b"tablet"})


def test_derive_and_commit_is_plan_and_commit_in_one() -> None:
    """operation.derive_and_commit: the same draw, secret and resulting epoch state as
    plan_derivation followed by commit_derivation; what it returns is committed already,
    so committing it again changes nothing."""
    cs = get_suite(1)
    a, b = _standalone_epoch(), _standalone_epoch()
    d = derive_and_commit(cs, a, SeededRandom(b"same draws"))
    assert not d.fresh
    planned = plan_derivation(cs, b, SeededRandom(b"same draws"))
    assert planned.fresh
    commit_derivation(planned)
    assert (d.random, d.leaf, d.operation_secret) == (planned.random, planned.leaf,
                                                      planned.operation_secret)
    assert a.pprf is not None and b.pprf is not None
    assert a.pprf.serialize() == b.pprf.serialize() and a.retained == b.retained
    commit_derivation(d)  # a no-op
    assert a.pprf.serialize() == b.pprf.serialize() and a.retained == b.retained


def test_a_second_random_of_the_same_sender_on_a_punctured_leaf_is_a_collision() -> None:
    """Q7: a punctured leaf is served from its entry only for the same (leaf_index,
    random); the same sender with another random that lands on that leaf is a collision
    (VC-PPRF-COLLISION), counted by the receiving emulator (F5) each time."""
    cs = get_suite(1)
    ep = _standalone_epoch()
    r1, r2 = colliding_randoms(2, 2)
    assert r1 != r2
    commit_derivation(plan_rederivation(cs, ep, 2, r1))
    with pytest.raises(ValidationError) as err:
        plan_rederivation(cs, ep, 2, r2)
    assert err.value.check_id == "VC-PPRF-COLLISION"
    em = world(b"collisions-mut").em("laptop")
    before = em.stats.collisions
    for i in range(1, 3):
        with pytest.raises(ValidationError):
            _plan_rederivation(em, ep, 2, r2)
        assert em.stats.collisions == before + i


# --- vc/emulator.py: what an emulator refuses, keeps and forgets ---------------------------


def test_an_onboarding_emulator_makes_no_second_emulation_commit() -> None:
    """§4.2: while its external commit into the emulation group awaits the DS (an action
    pending, no pending commit in the joined group), an onboarding emulator starts no
    other emulation Commit."""
    w = world(b"onboard-pending-mut")
    rng = SeededRandom(b"new/watch-pending")
    ident = Identity.basic(b"watch", get_suite(1).signature.generate_key_pair(rng))
    info = w.ds.group_info(w.vc.emulation_group_id)
    watch, out = Emulator.onboard_external(b"watch", ident, w.em("phone").vc, rng, info)
    assert watch.has_pending_action and not watch.emu.has_pending_commit
    epoch = watch.emu.epoch
    with pytest.raises(StateError):
        watch.emulation_commit()
    assert watch.pending_action_message() == out
    assert watch.emu.epoch == epoch and not watch.emu.has_pending_commit


def test_the_emulation_group_takes_a_group_context_extensions_commit() -> None:
    """RFC 9420 §12.1.7 in the emulation group: the emulators support the
    app_data_dictionary their GroupContext carries (its GroupConfig says so), so a
    GroupContextExtensions Commit that keeps it is processed."""
    w = world(b"emulation-gce-mut")
    phone, laptop = w.em("phone"), w.em("laptop")
    emu = phone.emu
    out = emu.commit([GroupContextExtensions(emu.context.extensions)], force_path=True,
                     authenticated_data=encode_items({}))
    epoch = laptop.emu.epoch
    received = laptop.deliver(emu.group_id, out.commit)
    assert isinstance(received.event, CommitApplied)
    assert laptop.emu.epoch == epoch + 1 and max(laptop.epochs.epochs) == epoch + 1
    phone.emu.merge_pending_commit()
    assert laptop.emu.epoch_authenticator == phone.emu.epoch_authenticator


def test_the_virtual_client_follows_a_group_context_extensions_commit() -> None:
    """RFC 9420 §12.1.7 in a higher-level group: a member's GroupContextExtensions
    proposal with an app_data_dictionary, committed; every emulator supports the
    dictionary (the higher-level groups' GroupConfig says so) and follows."""
    w = world(b"higher-gce-mut")
    dictionary = AppDataDictionary.of({0x1234: b"hello"}).to_extension()
    assert w.ds.submit("bob", w.bob.propose_group_context_extensions((dictionary,))).accepted
    peer_commit(w.ds, "bob", w.bob, w.bob.commit())
    w.vc.sync()
    w.agree()
    for name in NAMES:
        assert w.em(name).groups[G1].group.context.extensions == (dictionary,)


def test_a_welcome_into_a_group_id_already_held_is_refused() -> None:
    """RFC 9420 §12.4.3.1 (WEL-GROUP-ID): a Welcome, for one of the virtual client's
    KeyPackages, into another group that has the group_id of a group it is in: refused,
    the group and the KeyPackage kept."""
    w = world(b"group-id-in-use-mut")
    assert w.vc.upload_key_packages("phone", 1).accepted
    w.vc.sync()
    kp = MLSMessage.decode(w.ds.fetch_key_package(w.vc.id)).body
    assert isinstance(kp, KeyPackage)
    rng = SeededRandom(b"mallory/group-id-in-use-mut")
    cs = get_suite(1)
    other = Group.create(cs, Identity.basic(b"mallory", cs.signature.generate_key_pair(rng)),
                         GroupConfig(rng=rng, supported_extensions=(6,)), group_id=G1)
    other.propose_add(kp)
    welcome = other.commit().welcome
    assert welcome is not None
    laptop = w.em("laptop")
    group, held = laptop.groups[G1], set(laptop.key_packages)
    with pytest.raises(ValidationError) as err:
        laptop.welcome(welcome)
    assert err.value.check_id == "WEL-GROUP-ID"
    assert laptop.groups[G1] is group and set(laptop.key_packages) == held


def test_an_accepted_removal_forgets_only_the_deleted_key_packages() -> None:
    """§4.3 (P21): the KeyPackages the DS deleted are forgotten, the others kept; a ref
    the emulator does not hold is skipped; None means every KeyPackage held."""
    w = world(b"removal-deleted-mut")
    assert w.vc.upload_key_packages("tablet", 2).accepted
    w.vc.sync()
    laptop = w.em("laptop")
    gone, kept = sorted(laptop.key_packages)
    out = laptop.remove_emulator(b"phone", deleted_key_packages=[gone, b"never held"])
    laptop.accepted(out)
    assert set(laptop.key_packages) == {kept}
    tablet = w.em("tablet")
    assert set(tablet.key_packages) == {gone, kept}
    tablet.remove_emulator(b"phone")
    assert tablet._action is not None
    tablet.accepted(tablet._action.out)
    assert tablet.key_packages == {}


def test_accepting_what_is_not_pending_is_a_state_error() -> None:
    w = world(b"accept-twice-mut")
    phone = w.em("phone")
    out = phone.send_private_message(G1, b"once")
    assert w.vc.submit("phone", out).accepted  # accepted: no longer pending
    with pytest.raises(StateError):
        phone.accepted(out)
    other = w.em("laptop").send_private_message(G1, b"not phone's")
    with pytest.raises(StateError):
        phone.accepted(other)


def test_an_accepted_external_join_is_no_longer_announced() -> None:
    """§5.5.2: an ExternalJoin announces one external commit; once it is accepted, a
    new external commit into that group needs a new announcement."""
    w = world(b"announced-mut")
    carol = peer_group(w.ds, "carol", b"g2", seed=b"carol/announced-mut")
    assert w.vc.external_join("laptop", b"g2").accepted
    laptop = w.em("laptop")
    assert b"g2" in laptop.groups and laptop.announced_joins == set()
    with pytest.raises(StateError):
        laptop.external_commit(b"g2", w.ds.group_info(b"g2"))
    w.vc.sync()
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)


def test_a_refused_upload_whose_key_packages_a_resync_deleted() -> None:
    """A ResyncMessage processed while our KeyPackageUpload awaits the DS deletes the
    KeyPackages held, those of the upload too (P14, P21); the upload's refusal then
    finds nothing to forget and still clears the action."""
    w = world(b"refused-upload-mut")
    phone, laptop = w.em("phone"), w.em("laptop")
    out = phone.create_key_packages(2)
    assert len(phone.key_packages) == 2
    resync = laptop.resync_message(laptop.vc_signing_key)
    phone.deliver(phone.emu.group_id, resync.message)
    assert phone.key_packages == {}
    phone.refused(out)
    assert not phone.has_pending_action and not phone.emu.has_pending_commit


def test_a_refused_commit_after_a_member_s_commit_was_processed() -> None:
    """P22: our commit and a member's for one epoch; the member's is processed first
    (it won), which ends our pending operation; the refusal of ours then finds none."""
    w = world(b"refused-after-mut")
    phone = w.em("phone")
    ours = phone.vc_commit(G1)
    theirs = w.bob.commit()
    peer_commit(w.ds, "bob", w.bob, theirs)
    received = phone.deliver(G1, theirs.commit)
    assert isinstance(received.event, CommitApplied)
    assert G1 not in phone._pending_ops and phone.pending[G1] == ours
    phone.refused(ours)
    assert G1 not in phone.pending
    assert phone.groups[G1].group.epoch_authenticator == w.bob.epoch_authenticator


def test_a_resync_keeps_the_key_packages_of_welcomes_not_yet_read() -> None:
    """P14, P21: a ResyncMessage deletes the announced KeyPackages, except those of
    Welcomes the DS ordered before it (Emulator.deliver's `welcomed`)."""
    w = world(b"welcomed-mut")
    assert w.vc.upload_key_packages("tablet", 2).accepted
    w.vc.sync()
    laptop, phone = w.em("laptop"), w.em("phone")
    _, second = sorted(laptop.key_packages)
    resync = phone.resync_message(phone.vc_signing_key)
    laptop.deliver(laptop.emu.group_id, resync.message, welcomed=[second])
    assert set(laptop.key_packages) == {second}


def test_a_resync_removes_its_own_leaf_not_another_of_the_same_name() -> None:
    """§4.2 / F7: an emulator that holds the group removes the virtual client's own leaf
    in its resync, not the first leaf whose BasicCredential carries the same name (here
    a plain device of another client also called "alice", at a lower leaf)."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, VC, list(NAMES), seed=b"same-name-mut")
    bob = peer_group(ds, "bob", G1, seed=b"bob/same-name-mut")
    rng = SeededRandom(b"plain alice/same-name-mut")
    cs = get_suite(1)
    plain = create_key_package(cs, Identity.basic(VC.encode(),
                                                  cs.signature.generate_key_pair(rng)),
                               GroupConfig(rng=rng, supported_extensions=(6,)))
    bob.propose_add(plain.key_package)
    out = bob.commit()
    assert ds.submit("bob", out.commit).accepted
    bob.merge_pending_commit()
    ds.publish_group_info(G1, bob.group_info())
    add_vc(ds, vc, "bob", bob)
    laptop = vc.emulators["laptop"]
    own = laptop.groups[G1].group.own_leaf
    plain_leaf = next(i for i, leaf in bob.members()
                      if leaf.signature_key == plain.key_package.leaf_node.signature_key)
    assert plain_leaf < own
    laptop.announced_joins.add(G1)
    resync = laptop.external_commit(G1, ds.group_info(G1))
    twin = load(save(bob), GroupConfig(rng=SeededRandom(b"twin/same-name-mut")))
    twin.process(resync.message)
    keys = {leaf.signature_key for _, leaf in twin.members()}
    assert plain.key_package.leaf_node.signature_key in keys
    old = laptop._replaced[G1].group.tree.leaf(own)
    assert old is not None and old.signature_key not in keys
    assert len(list(twin.members())) == len(list(bob.members()))


# --- vc/receive.py ----------------------------------------------------------------------------


def test_an_emulation_commit_is_reported_with_its_event() -> None:
    """Emulator.deliver returns the engine's event for an emulation-group message: the
    CommitApplied of a sibling's emulation Commit, the ApplicationMessage of a
    ResyncMessage, and the CommitApplied of the Commit that removes this emulator
    (§4.3, removed_self)."""
    w = world(b"emulation-event-mut")
    phone, laptop = w.em("phone"), w.em("laptop")
    gid = phone.emu.group_id
    out = phone.emulation_commit()
    received = laptop.deliver(gid, out.message)
    assert received.group_id == gid
    assert isinstance(received.event, CommitApplied)
    assert received.event.epoch == laptop.emu.epoch
    phone.accepted(out)
    resync = phone.resync_message(b"\x09" * 32)
    received = laptop.deliver(gid, resync.message)
    assert isinstance(received.event, ApplicationMessage)
    assert laptop.vc_signing_key == b"\x09" * 32
    tablet = w.em("tablet")
    tablet.deliver(gid, out.message)
    tablet.deliver(gid, resync.message)
    removal = tablet.remove_emulator(b"laptop")
    received = laptop.deliver(gid, removal.message)
    assert isinstance(received.event, CommitApplied) and received.event.removed_self
    assert laptop.removed


def test_a_stranger_s_external_commit_is_processed() -> None:
    """RFC 9420 §12.4.3.2: a client that is not the virtual client joins a group the
    virtual client is in by external commit; the emulators process it like any commit
    (only the virtual client's own external commits need an ExternalJoin)."""
    w = world(b"stranger-external-mut")
    rng = SeededRandom(b"carol/stranger-external-mut")
    cs = get_suite(1)
    carol = Identity.basic(b"carol", cs.signature.generate_key_pair(rng))
    _, commit = Group.external_join(w.ds.group_info(G1), carol,
                                    GroupConfig(rng=rng, supported_extensions=(6,)))
    w.ds.register_client("carol")
    assert w.ds.submit("carol", commit).accepted
    events = [e for e in w.vc.sync() if e.received.group_id == G1]
    assert len(events) == len(NAMES)
    assert all(isinstance(e.received.event, CommitApplied) for e in events)
    pump(w.ds, "bob", w.bob)
    w.agree()


def test_under_f8_a_guard_may_decode_to_a_blank_leaf() -> None:
    """The literal reading reuse_guard_local_epoch (F8): the receiver decodes with its
    own latest emulation epoch and, as the model does, names whatever leaf that gives,
    a blank one too (no roster check). Here laptop sends from a 2-leaf epoch with x = 3,
    phone has processed the Add of a third emulator (4 leaves, leaf 3 blank)."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, VC, ["phone", "laptop"], seed=b"f8-blank-mut",
                              readings=Readings(reuse_guard_local_epoch=True))
    bob = peer_group(ds, "bob", G1, seed=b"bob/f8-blank-mut")
    add_vc(ds, vc, "bob", bob)
    phone, laptop = vc.emulators["phone"], vc.emulators["laptop"]
    rng = SeededRandom(b"new/desk-f8-blank")
    ident = Identity.basic(b"desk", get_suite(1).signature.generate_key_pair(rng))
    vc.add_emulator("phone", Emulator(b"desk", ident, phone.vc, rng))
    latest = phone.epochs.latest
    assert latest.leaf_count == 4 and 3 not in latest.roster
    assert laptop.reuse_guard_position(G1) == (1, 2)
    out = laptop.send_private_message(G1, b"from two leaves", x=3)
    assert vc.submit("laptop", out).accepted
    (event,) = [e for e in vc.sync(["phone"]) if e.received.group_id == G1]
    assert isinstance(event.received.event, ApplicationMessage)
    assert (event.received.sibling_leaf, event.received.sibling_epoch) == (3, latest.epoch)
    read = [e for e in pump(ds, "bob", bob) if isinstance(e, ApplicationMessage)]
    assert [e.data for e in read] == [b"from two leaves"]


def test_key_packages_of_another_suite_with_the_same_kdf_are_rederived() -> None:
    """Q3, P16: a virtual client whose emulation suite has a 64-byte KDF (suite 4)
    uploads a KeyPackage for suite 6 (the same KDF); every sibling re-creates it, trying
    the suites whose KDF matches and skipping the others."""
    ds = DeliveryService()
    vc = VirtualClient.create(ds, VC, ["phone", "laptop"], suite=4, seed=b"suite-4-mut")
    assert vc.upload_key_packages("phone", 1, group_suite=6).accepted
    vc.sync()
    phone, laptop = vc.emulators["phone"], vc.emulators["laptop"]
    assert set(laptop.key_packages) == set(phone.key_packages)
    (held,) = laptop.key_packages.values()
    assert held.group_suite == 6 and held.bundle.key_package.cipher_suite == 6


def test_following_an_external_join_refuses_a_replaced_key() -> None:
    """§5.3, P17: a sibling's external commit whose DerivationInfo names a genuine
    operation (sealed to the LeafNode's encryption key) but whose LeafNode has one key
    that is not the operation's (the signature key, or the encryption key): refused
    with VC-REDERIVED-KEY-MISMATCH, nothing installed or punctured."""
    w = world(b"replaced-key-mut")
    peer_group(w.ds, "carol", b"g2", seed=b"carol/replaced-key-mut")
    info = w.ds.group_info(b"g2")
    laptop, tablet = w.em("laptop"), w.em("tablet")
    cs = get_suite(1)
    ep = laptop.epochs.latest
    rng = SeededRandom(b"corrupt laptop/replaced-key-mut")
    stranger = cs.signature.generate_key_pair(rng)
    other_encryption = cs.kem.derive_key_pair(rng(cs.kem.nsk))
    for replaced in ("signature", "encryption"):
        random = rng(cs.nh)
        keys = laptop.operation_keys(cs, plan_rederivation(cs, ep, int(ep.own_leaf), random))
        signature = stranger if replaced == "signature" else keys.signature
        encryption = other_encryption if replaced == "encryption" else keys.encryption
        ext = derivation_extension(laptop, encryption[1], leaf_index=int(ep.own_leaf),
                                   random=random)
        _, commit = Group.external_join(
            info, Identity(BasicCredential(VC.encode()), *signature),
            GroupConfig(rng=rng, supported_extensions=(6,)),
            encryption_key_pair=encryption, path_secret=keys.path_secret,
            capabilities=laptop._leaf_capabilities(1), leaf_extensions=(ext,),
            external_init_seed=keys.external_init_seed)
        tablet.expected_joins.add(b"g2")
        before = snapshot(tablet)
        with pytest.raises(ValidationError) as err:
            tablet.follow_external_join(info, commit)
        assert err.value.check_id == "VC-REDERIVED-KEY-MISMATCH"
        assert snapshot(tablet) == before
