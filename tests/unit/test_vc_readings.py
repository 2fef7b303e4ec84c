"""The literal readings of draft-00 as profile options (mlsvc.vc.readings), and the hooks
a refinement bridge needs (explicit reuse-guard x, quiescent collection, one delivery
at a time, the M4 check).

Every reading is shown twice on real bytes: switched on, the mechanism of its finding
(docs/FINDINGS.md) happens; off (the profile), the same scenario does not."""

from __future__ import annotations

from dataclasses import fields

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.ds.errors import DeliveryError
from mlsvc.errors import ParameterError, ValidationError
from mlsvc.group.config import Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.store import MemoryStore
from mlsvc.types import LeafIndex
from mlsvc.vc import lifecycle
from mlsvc.vc.durable import records, restore
from mlsvc.vc.emulator import Emulator
from mlsvc.vc.operation import leaf_node_secret
from mlsvc.vc.readings import FINDING_READINGS, Readings
from mlsvc.vc.reuse_guard import (
    check_x,
    make_reuse_guard,
    make_reuse_guard_x,
    recover_leaf_index,
    recover_x,
)
from mlsvc.vc.state import decode_state
from mlsvc.virtual_client import NothingToDeliver, StaleEmulationEpoch
from mlsvc_model.config import FINDINGS, Config
from tests.unit.vc_helpers import (
    CS,
    G1,
    NAMES,
    VC,
    World,
    add_vc,
    make_vc,
    peer_commit,
    peer_group,
    pump,
    world,
)

G2 = b"g2"

# --- the dataclass -------------------------------------------------------------------------


def test_fields_are_the_models_switches_of_the_same_findings() -> None:
    names = [f.name for f in fields(Readings)]
    assert sorted(names) == sorted(FINDING_READINGS.values())
    config_fields = {f.name for f in fields(Config)}
    for finding, name in FINDING_READINGS.items():
        assert name in config_fields
        assert FINDINGS[finding].config.switches_on() == {name: True}, finding
        field = next(f for f in fields(Readings) if f.name == name)
        assert field.default is False


def test_of_names_findings() -> None:
    assert Readings.of() == Readings()
    r = Readings.of("F1", "F12")
    assert r.literal_p4_subsecrets and r.derive_from_stale_epoch
    assert r.findings == ("F1", "F12") and r.any
    assert not Readings().any and Readings().findings == ()
    with pytest.raises(ParameterError):
        Readings.of("F4")


def test_durable_state_keeps_the_readings_and_the_default_format() -> None:
    _, vc = make_vc(b"durable-default", names=("phone",))
    em = vc.emulators["phone"]
    assert records(em)["meta"][:2] == b"\x00\x01"  # format 1: unchanged by default
    store = MemoryStore()
    store.write(records(em))
    assert restore(store, em.rng).vc.readings == Readings()
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient
    on = Readings.of("F2", "F7", "F12")
    vc2 = VirtualClient.create(DeliveryService(), "bob", ["a"], seed=b"r", readings=on)
    em2 = vc2.emulators["a"]
    meta = records(em2)["meta"]
    assert meta[:2] == b"\x00\x02"
    store2 = MemoryStore()
    store2.write(records(em2))
    back = restore(store2, em2.rng)
    assert back.vc == em2.vc and back.vc.readings == on
    assert records(back) == records(em2)


# --- hook 3a: an explicit reuse-guard input x ------------------------------------------------


def test_send_with_explicit_x_uses_it_and_siblings_recover_it() -> None:
    w = world(b"hook-x")
    em = w.em("laptop")
    leaf, n = em.reuse_guard_position(G1)
    x = int(leaf) + n * 12345
    verdict = w.vc.act_now("laptop", lambda e: e.send_private_message(G1, b"hi", x=x))
    assert verdict.accepted
    out = w.vc.sent[-1][1]
    assert out.reuse_guard_x == x
    events = w.vc.sync(["phone"])
    (ev,) = [e for e in events if isinstance(e.received.event, ApplicationMessage)]
    assert ev.received.sibling_leaf == int(leaf)
    app = ev.received.event
    assert isinstance(app, ApplicationMessage)
    secret = w.em("phone").groups[G1].active.leaf_node_secret
    assert recover_x(CS, secret, app.key_schedule_nonce, app.reuse_guard) == x


def test_send_without_x_reports_the_random_x_in_the_senders_class() -> None:
    w = world(b"hook-x-random")
    em = w.em("tablet")
    leaf, n = em.reuse_guard_position(G1)
    out = em.send_private_message(G1, b"hi")
    assert out.reuse_guard_x is not None and out.reuse_guard_x % n == int(leaf)
    assert 0 <= out.reuse_guard_x < 1 << 32


@pytest.mark.parametrize("bad", ["residue", "too-big", "negative", "bool"])
def test_send_with_bad_x_is_refused_before_anything_changes(bad: str) -> None:
    w = world(b"hook-x-bad")
    em = w.em("laptop")
    leaf, n = em.reuse_guard_position(G1)
    x: object = {"residue": int(leaf) + 1 + n * 3, "too-big": (1 << 32) + int(leaf),
                 "negative": int(leaf) - n, "bool": True}[bad]
    if bad == "bool" and int(leaf) != 1:
        x = True  # True == 1: refused as not an integer whatever the residue
    before = records(em)
    with pytest.raises(ParameterError):
        em.send_private_message(G1, b"hi", x=x)  # type: ignore[arg-type]
    assert records(em) == before  # the ratchet did not advance, nothing pending
    out = em.send_private_message(G1, b"hi", x=int(leaf))
    assert out.generation == 0 and out.reuse_guard_x == int(leaf)


def test_check_x_and_make_reuse_guard_with_x() -> None:
    check_x(5, 1, 4)
    for x, leaf, n in ((6, 1, 4), (1 << 32, 0, 1), (-3, 1, 4)):
        with pytest.raises(ParameterError):
            check_x(x, leaf, n)
    secret, nonce = bytes(32), bytes(12)

    def no_rng(k: int) -> bytes:
        raise AssertionError("x given: nothing is drawn")

    rg, x = make_reuse_guard_x(CS, secret, nonce, LeafIndex(1), 4, no_rng, 9)
    assert x == 9 and make_reuse_guard(CS, secret, nonce, LeafIndex(1), 4, no_rng, 9) == rg
    assert recover_x(CS, secret, nonce, rg) == 9
    assert recover_leaf_index(CS, secret, nonce, rg, 4) == 1


# --- hook 3b: collect(quiescent=True) ---------------------------------------------------------


def test_quiescent_collect_deletes_unreferenced_epochs_inside_the_window() -> None:
    w = world(b"hook-collect")
    vc = w.vc
    for name in ("phone", "laptop"):
        vc.emulation_commit(name)
    vc.sync()
    em = w.em("tablet")
    active = em.epochs.by_id(em.groups[G1].active.epoch_id).epoch
    newest = em.epochs.latest.epoch
    assert sorted(em.epochs.epochs) == sorted({active, newest - 1, newest})
    assert em.collect() == []  # newest - 1 is inside the P19 window
    gone = em.collect(quiescent=True)
    assert gone == [newest - 1] and sorted(em.epochs.epochs) == sorted({active, newest})
    assert em.collect(quiescent=True) == []


def test_quiescent_collect_drops_retained_operations_no_longer_live() -> None:
    ds, vc = make_vc(b"hook-retained")
    bob = peer_group(ds, "bob", G1, seed=b"bob/hook-retained")
    vc.upload_key_packages("phone", 2)  # operations A and B of one epoch
    kp = MLSMessage.decode(ds.fetch_key_package(vc.id)).body
    assert isinstance(kp, KeyPackage)
    bob.propose_add(kp)
    peer_commit(ds, "bob", bob, bob.commit())
    vc.sync()  # A is the leaf in G1, B is held
    vc.update("laptop", G1)  # C, from a newer epoch
    pump(ds, "bob", bob)
    peer_commit(ds, "bob", bob, bob.commit())
    vc.sync()  # C is the leaf: A is dead, B still held
    em = w_em = vc.emulators["tablet"]
    (held,) = em.key_packages.values()
    ep = em.epochs.by_id(held.op.epoch_id)
    assert em.groups[G1].active.epoch_id != ep.epoch_id
    assert len(ep.retained) == 2
    em.collect()
    assert len(ep.retained) == 2  # the profile's collection keeps Q7 entries
    w_em.collect(quiescent=True)
    assert ep.epoch in em.epochs.epochs  # B references it
    (kept,) = ep.retained.values()
    assert leaf_node_secret(em.ecs, kept.operation_secret) == held.op.leaf_node_secret


# --- hook 3c: deliver_next --------------------------------------------------------------------


def test_deliver_next_hands_over_one_delivery_of_one_log() -> None:
    w = world(b"hook-deliver")
    vc = w.vc
    vc.emulation_commit("tablet")
    vc.send("phone", G1, b"one")
    pump(w.ds, "bob", w.bob)
    peer_commit(w.ds, "bob", w.bob, w.bob.commit())
    em = w.em("laptop")
    emu_epoch, g1_epoch = em.emu.epoch, em.groups[G1].group.epoch
    first = vc.deliver_next("laptop", G1)
    assert first is not None and isinstance(first.received.event, ApplicationMessage)
    assert first.received.event.data == b"one"
    assert first.received.sibling_leaf == int(w.em("phone").emu.own_leaf)
    assert (em.emu.epoch, em.groups[G1].group.epoch) == (emu_epoch, g1_epoch)
    second = vc.deliver_next("laptop", G1)
    assert second is not None and isinstance(second.received.event, CommitApplied)
    assert em.groups[G1].group.epoch == g1_epoch + 1 and em.emu.epoch == emu_epoch
    with pytest.raises(NothingToDeliver):
        vc.deliver_next("laptop", G1)
    vc.deliver_next("laptop", vc.emulation_group_id)
    assert em.emu.epoch == emu_epoch + 1
    with pytest.raises(NothingToDeliver):
        vc.deliver_next("laptop", vc.emulation_group_id)
    duplicates = vc.duplicates
    vc.sync(["laptop"])  # the mailbox copies are skipped: processed already
    assert vc.duplicates == duplicates + 3
    assert em.groups[G1].group.epoch == g1_epoch + 1 and em.emu.epoch == emu_epoch + 1
    vc.sync()
    w.agree()


def test_deliver_next_takes_a_welcome_as_a_groups_first_delivery() -> None:
    w = world(b"hook-welcome")
    vc, ds = w.vc, w.ds
    carol = peer_group(ds, "carol", G2, seed=b"carol/hook-welcome")
    vc.upload_key_packages("phone", 1)
    kp = MLSMessage.decode(ds.fetch_key_package(vc.id)).body
    assert isinstance(kp, KeyPackage)
    carol.propose_add(kp)
    peer_commit(ds, "carol", carol, carol.commit())
    with pytest.raises(ValidationError) as err:  # tablet has not seen the KeyPackageUpload
        vc.deliver_next("tablet", G2)
    assert err.value.check_id == "VC-WELCOME-UNANNOUNCED"
    vc.deliver_next("laptop", vc.emulation_group_id)
    ev = vc.deliver_next("laptop", G2)
    assert ev is not None and ev.received.joined and G2 in w.em("laptop").groups
    with pytest.raises(NothingToDeliver):
        vc.deliver_next("laptop", G2)


# --- hook 3d: require_latest and act_now ------------------------------------------------------


def test_require_latest_and_act_now() -> None:
    w = world(b"hook-latest")
    vc = w.vc
    vc.require_latest("laptop")
    vc.emulation_commit("phone")
    with pytest.raises(StaleEmulationEpoch):
        vc.require_latest("laptop")
    em = w.em("laptop")
    before = records(em)
    with pytest.raises(StaleEmulationEpoch):
        vc.act_now("laptop", lambda e: e.vc_commit(G1), derives=True)
    assert records(em) == before  # nothing derived
    vc.deliver_next("laptop", vc.emulation_group_id)
    vc.require_latest("laptop")
    assert vc.act_now("laptop", lambda e: e.vc_commit(G1), derives=True).accepted
    # no sync, no retry: tablet's concurrent commit is refused and the verdict returned
    vc.deliver_next("tablet", vc.emulation_group_id)
    verdict = vc.act_now("tablet", lambda e: e.vc_commit(G1), derives=True)
    assert not verdict.accepted and verdict.reason == "commit-conflict"
    assert G1 not in w.em("tablet").pending
    vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()


def test_act_catches_up_a_dropped_emulation_message_before_deriving() -> None:
    w = world(b"hook-act")
    vc = w.vc
    vc.emulation_commit("phone")
    w.ds.receive("laptop")  # the mailbox is emptied: as if the DS dropped them
    with pytest.raises(StaleEmulationEpoch):
        vc.require_latest("laptop")
    vc.commit("laptop", G1)  # act: sync finds nothing, M4 fetches the gap first
    vc.require_latest("laptop")
    vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()


# --- the loop's steps for drivers that control the interleaving --------------------------------


def new_emulator(name: str, like: Emulator) -> Emulator:
    rng = SeededRandom(b"new/" + name.encode())
    ident = Identity.basic(name.encode(), CS.signature.generate_key_pair(rng))
    return Emulator(name.encode(), ident, like.vc, rng)


def test_add_emulator_without_joining_now_leaves_the_external_joins() -> None:
    w = world(b"add-later")
    desk = new_emulator("desktop", w.em("phone"))
    w.vc.add_emulator("phone", desk, external=[G1], join_now=False)
    assert desk.join_externally == {G1} and G1 not in desk.groups
    w.vc.external_join("desktop", G1)
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()


def test_remove_emulator_one_step() -> None:
    w = world(b"remove-one-step")
    vc = w.vc
    vc.emulation_commit("laptop")
    with pytest.raises(StaleEmulationEpoch):  # sync=False: on the latest epoch only
        vc.remove_emulator("phone", "tablet", commit_groups=False, sync=False)
    assert "tablet" in vc.emulators
    vc.deliver_next("phone", vc.emulation_group_id)
    g1_epoch = w.em("phone").groups[G1].group.epoch
    verdict = vc.remove_emulator("phone", "tablet", commit_groups=False, sync=False)
    assert verdict.accepted and "tablet" in vc.removed
    assert w.em("phone").groups[G1].group.epoch == g1_epoch  # no commit in G1 yet
    assert b"tablet" in w.em("phone").removals


def test_create_takes_the_retention_window() -> None:
    _, vc = make_vc(b"window", names=("phone",))
    assert vc.emulators["phone"].epochs.retained_epochs == 1
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient
    vc2 = VirtualClient.create(DeliveryService(), "v", ["a"], seed=b"w", retained_epochs=5)
    assert vc2.emulators["a"].vc.retained_epochs == 5
    assert vc2.emulators["a"].epochs.retained_epochs == 5


# --- the readings, each on real bytes: on, the finding's mechanism; off, not -----------------


def rworld(seed: bytes, readings: Readings, names: tuple[str, ...] = NAMES) -> World:
    """vc_helpers.world with literal readings: the virtual client in G1 with bob."""
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient
    ds = DeliveryService(literal_p11_ds_scope=readings.literal_p11_ds_scope)
    vc = VirtualClient.create(ds, VC, list(names), seed=seed, readings=readings)
    bob = peer_group(ds, "bob", G1, seed=b"bob/" + seed)
    add_vc(ds, vc, "bob", bob)
    w = World(ds, vc, bob)
    w.agree()
    return w


def fetch_kp(w: World) -> KeyPackage:
    kp = MLSMessage.decode(w.ds.fetch_key_package(VC)).body
    assert isinstance(kp, KeyPackage)
    return kp


def join_group(w: World, member: str, group_id: bytes, kp: KeyPackage) -> Group:
    g = peer_group(w.ds, member, group_id, seed=member.encode() + b"/" + group_id)
    g.propose_add(kp)
    peer_commit(w.ds, member, g, g.commit())
    w.vc.sync()
    return g


ON_OFF = pytest.mark.parametrize("on", [True, False], ids=["reading", "profile"])


@ON_OFF
def test_f1_two_key_packages_of_one_epoch_share_their_keys(on: bool) -> None:
    w = rworld(b"f1", Readings(literal_p4_subsecrets=on))
    w.vc.upload_key_packages("phone", 2)
    w.vc.sync()
    a, b = fetch_kp(w), fetch_kp(w)
    assert (a.init_key == b.init_key) is on
    assert (a.leaf_node.encryption_key == b.leaf_node.encryption_key) is on
    assert (a.leaf_node.signature_key == b.leaf_node.signature_key) is on
    laptop = w.em("laptop")  # the siblings re-created both (the refs matched)
    assert len(laptop.key_packages) == 2
    ep = laptop.epochs.by_id(next(iter(laptop.key_packages.values())).op.epoch_id)
    assert (ep.base_secret is not None) is on  # kept only under the reading
    if on:  # a new emulator gets the kept base secrets with the rest (NECS); durable
        phone = w.em("phone")
        state = lifecycle.state_for_new_emulator(phone)
        back = decode_state(state.encode(), CS.id)
        assert [e.base_secret for e in back.epochs] == [e.base_secret for e in state.epochs]
        assert ep.base_secret in [e.base_secret for e in back.epochs]
        store = MemoryStore()
        store.write(records(phone))
        assert any(k.startswith("base/") for k, _ in store.items())
        assert records(restore(store, phone.rng)) == records(phone)
    else:
        assert lifecycle.state_for_new_emulator(w.em("phone")).encode() == \
            decode_state(lifecycle.state_for_new_emulator(w.em("phone")).encode(),
                         CS.id).encode()


@ON_OFF
def test_f2_a_new_emulator_sends_before_rotation(on: bool) -> None:
    w = rworld(b"f2", Readings(send_before_rotation=on), names=("phone", "laptop"))
    desk = new_emulator("desktop", w.em("phone"))
    w.vc.add_emulator("phone", desk)  # leaf 2 of N = 4; the leaf's epoch had N = 2
    if not on:
        with pytest.raises(ValidationError) as err:
            desk.send_private_message(G1, b"too early")
        assert err.value.check_id == "VC-SEND-BEFORE-ROTATION"
        return
    assert desk.reuse_guard_position(G1) == (2, 4)
    mine = w.vc.act_now("desktop", lambda e: e.send_private_message(G1, b"d", x=2))
    assert mine.accepted
    out_d = w.vc.sent[-1][1]
    # the phone (leaf 0 of N = 2 at the leaf's epoch) may pick x = 2 as well
    theirs = w.vc.act_now("phone", lambda e: e.send_private_message(G1, b"p", x=2))
    out_p = w.vc.sent[-1][1]
    assert (out_p.key_id, out_p.nonce) == (out_d.key_id, out_d.nonce)  # AEAD reuse
    assert not theirs.accepted and theirs.reason == "generation-id-collision"
    (ev,) = [e for e in w.vc.sync(["laptop"])
             if isinstance(e.received.event, ApplicationMessage)]
    assert ev.received.sibling_leaf == 0  # the desktop's message, named the phone's


@ON_OFF
def test_f3_generation_ids_collide_across_groups(on: bool) -> None:
    w = rworld(b"f3", Readings(literal_p11_ds_scope=on))
    assert w.ds.literal_p11_ds_scope is on
    w.vc.upload_key_packages("phone", 2)  # both leaves from one emulation epoch
    join_group(w, "bob2", G1 + b"-b", fetch_kp(w))
    join_group(w, "carol", G2, fetch_kp(w))
    first = w.vc.act_now("phone", lambda e: e.send_private_message(G1 + b"-b", b"1"))
    second = w.vc.act_now("phone", lambda e: e.send_private_message(G2, b"2"))
    assert first.accepted
    assert w.vc.sent[-1][1].generation_id == w.vc.sent[-2][1].generation_id
    assert second.accepted is not on
    if on:
        assert second.check_id == "VC-GENERATION-ID-COLLISION"
        back = type(w.ds).from_bytes(w.ds.to_bytes())  # the option survives a snapshot
        assert back.literal_p11_ds_scope and back.to_bytes() == w.ds.to_bytes()
        store = MemoryStore()
        w.ds.save(store)
        assert type(w.ds).load(store).literal_p11_ds_scope


@ON_OFF
def test_f6_removal_leaves_key_packages_usable(on: bool) -> None:
    w = rworld(b"f6", Readings(removal_keeps_key_packages=on))
    w.vc.upload_key_packages("phone", 1)
    w.vc.sync()
    w.vc.remove_emulator("phone", "tablet")
    w.vc.sync()
    tablet = w.vc.removed["tablet"]
    assert bool(w.ds.outstanding_key_packages(VC)) is on
    assert all(bool(em.key_packages) is on for em in w.vc.emulators.values())
    if not on:
        with pytest.raises(DeliveryError):
            w.ds.fetch_key_package(VC)
        return
    carol = join_group(w, "carol", G2, fetch_kp(w))
    (welcome,) = [d.message for d in w.ds.welcomes() if d.group_id == G2]
    tablet.welcome(welcome)  # the removed emulator joins from the Welcome
    assert tablet.groups[G2].group.epoch_authenticator == carol.epoch_authenticator


@ON_OFF
def test_f7_a_resync_gives_the_virtual_client_two_leaves(on: bool) -> None:
    w = rworld(b"f7", Readings(resync_without_remove=on))
    w.vc.external_join("laptop", G1)  # a resync of a group the client is in
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    leaves = [leaf for _, leaf in w.bob.members()
              if getattr(leaf.credential, "identity", None) == VC.encode()]
    assert len(leaves) == (2 if on else 1)


@ON_OFF
def test_f8_reuse_guard_read_with_the_local_epoch_misattributes(on: bool) -> None:
    w = rworld(b"f8", Readings(reuse_guard_local_epoch=on))
    vc = w.vc
    tablet_leaf = int(w.em("tablet").emu.own_leaf)
    assert tablet_leaf == 2 and w.em("tablet").reuse_guard_position(G1) == (2, 4)
    assert vc.act_now("tablet", lambda e: e.send_private_message(G1, b"t")).accepted
    vc.remove_emulator("phone", "tablet", commit_groups=False)  # N: 4 -> 2
    vc.deliver_next("laptop", vc.emulation_group_id)  # the Remove
    vc.deliver_next("laptop", vc.emulation_group_id)  # the ResyncMessage
    assert w.em("laptop").epochs.latest.leaf_count == 2
    ev = vc.deliver_next("laptop", G1)
    assert ev is not None and isinstance(ev.received.event, ApplicationMessage)
    laptop = w.em("laptop")
    assert ev.received.sibling_epoch is not None and ev.received.sibling_leaf is not None
    named = laptop.epochs.epochs[ev.received.sibling_epoch].roster.get(
        ev.received.sibling_leaf)
    assert named == (b"phone" if on else b"tablet")


@ON_OFF
def test_f10_siblings_cannot_follow_a_random_external_init(on: bool) -> None:
    w = rworld(b"f10", Readings(random_external_init=on))
    peer_group(w.ds, "carol", G2, seed=b"carol/f10")
    w.vc.external_join("phone", G2)
    if on:
        with pytest.raises(ValidationError) as err:
            w.vc.sync(["laptop"])
        assert err.value.check_id == "CM-SIBLING-EXTERNAL-INIT"
        assert G2 not in w.em("laptop").groups
    else:
        w.vc.sync()
        assert all(G2 in em.groups for em in w.vc.emulators.values())


@ON_OFF
def test_f11_removal_keeps_the_long_term_signing_key(on: bool) -> None:
    w = rworld(b"f11", Readings(removal_keeps_signing_key=on))
    before = w.em("phone").vc_signing_key
    w.vc.remove_emulator("phone", "tablet")
    w.vc.sync()
    assert w.vc.removed["tablet"].vc_signing_key == before
    for em in w.vc.emulators.values():
        assert (em.vc_signing_key == before) is on


@ON_OFF
def test_f12_deriving_from_an_epoch_the_others_deleted(on: bool) -> None:
    w = rworld(b"f12", Readings(derive_from_stale_epoch=on))
    vc = w.vc
    vc.emulation_commit("phone")
    vc.sync(["laptop"])
    stale = w.em("tablet").epochs.latest
    for name in ("phone", "laptop"):  # caught up: the model's deletion rule
        assert stale.epoch in w.em(name).collect(quiescent=True)
    if not on:
        with pytest.raises(StaleEmulationEpoch):
            vc.act_now("tablet", lambda e: e.vc_commit(G1), derives=True)
        return
    assert vc.act_now("tablet", lambda e: e.vc_commit(G1), derives=True).accepted
    assert w.em("tablet").groups[G1].active.epoch_id == stale.epoch_id
    with pytest.raises(ValidationError) as err:
        vc.deliver_next("laptop", G1)
    assert err.value.check_id == "VC-EPOCH-UNKNOWN"
