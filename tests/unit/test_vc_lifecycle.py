"""Emulation group management (draft-00 §4; P13, P14, P18, P21): adding an emulator with
a NewEmulatorClientState, onboarding by external join, removal; each lifecycle rejection
is a named check that leaves the state unchanged."""

from __future__ import annotations

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.errors import MLSError, ValidationError
from mlsvc.ext.components import AppDataDictionary
from mlsvc.group.config import Identity
from mlsvc.group.events import ApplicationMessage
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.vc import lifecycle
from mlsvc.vc.emulator import Emulator
from tests.unit.vc_helpers import CS, G1, VC, peer_commit, peer_group, pump, snapshot, world

NECS = 0x8003


def new_emulator(w_name: str, vc_emulator: Emulator) -> Emulator:
    rng = SeededRandom(b"new/" + w_name.encode())
    ident = Identity.basic(w_name.encode(), CS.signature.generate_key_pair(rng))
    return Emulator(w_name.encode(), ident, vc_emulator.vc, rng)


def necs_in(group_info: GroupInfo) -> bytes | None:
    d = AppDataDictionary.find_in(group_info.extensions)
    return None if d is None else d.get(NECS)


def test_added_emulator_reads_at_once_and_sends_only_after_rotation() -> None:
    w = world(b"add")
    ds, vc = w.ds, w.vc
    desk = new_emulator("desktop", w.em("phone"))
    vc.add_emulator("phone", desk)
    # the Welcome carried the state; the published emulation GroupInfo does not
    assert desk.emulation is not None and desk.emu.welcome_group_info is not None
    assert necs_in(desk.emu.welcome_group_info) is not None
    published = MLSMessage.decode(ds.group_info(vc.emulation_group_id)).body
    assert isinstance(published, GroupInfo) and necs_in(published) is None
    assert G1 in desk.groups
    w.agree()
    # state transfer: it reads the next message at once, and attributes it
    vc.send("laptop", G1, b"hello desktop")
    events = vc.sync(["desktop"])
    got = [e.received for e in events if isinstance(e.received.event, ApplicationMessage)]
    assert got and got[0].event is not None
    assert isinstance(got[0].event, ApplicationMessage) and got[0].event.data == b"hello desktop"
    pump(ds, "bob", w.bob)
    # P9: the leaf comes from an epoch it was no member of
    before = snapshot(desk)
    with pytest.raises(ValidationError) as err:
        desk.send_private_message(G1, b"too early")
    assert err.value.check_id == "VC-SEND-BEFORE-ROTATION"
    assert snapshot(desk) == before
    # a sibling rotates the leaf from an epoch the new emulator is in: now it may send
    vc.commit("tablet", G1)
    vc.sync()
    pump(ds, "bob", w.bob)
    vc.send("desktop", G1, b"from the desktop")
    vc.sync()
    [ev] = pump(ds, "bob", w.bob)
    assert isinstance(ev, ApplicationMessage) and ev.data == b"from the desktop"
    w.agree()


def test_added_emulator_joins_marked_groups_by_external_commit() -> None:
    w = world(b"addx")
    desk = new_emulator("desktop", w.em("phone"))
    leaf_before = w.em("phone").groups[G1].group.own_leaf
    w.vc.add_emulator("phone", desk, external=[G1])
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    roster = [leaf for _, leaf in w.bob.members()]
    creds = [leaf.credential for leaf in roster]
    assert sum(1 for c in creds if getattr(c, "identity", None) == VC.encode()) == 1  # F7
    assert desk.groups[G1].group.own_leaf is not None and leaf_before is not None
    assert not desk.join_externally


def test_removed_emulator_reads_nothing_new_once_the_removal_finished() -> None:
    w = world(b"rm")
    ds, vc = w.ds, w.vc
    vc.upload_key_packages("phone", 2)
    assert ds.outstanding_key_packages(VC)
    tablet = w.em("tablet")
    kept_key = tablet.vc_signing_key
    vc.remove_emulator("phone", "tablet")
    # what reached the tablet before the DS dropped it (its own removal among it)
    failed = 0
    for d in ds.receive("tablet"):
        try:
            tablet.deliver(d.group_id, d.message)
        except MLSError:
            failed += 1
    assert tablet.removed and failed >= 1  # the path commit from the new epoch
    assert tablet.groups[G1].group.epoch < w.em("phone").groups[G1].group.epoch
    # P21 / F6: no KeyPackage of the virtual client can be fetched any more
    assert ds.outstanding_key_packages(VC) == ()
    # F11: the remaining emulators hold a new long-term key the tablet never saw
    vc.sync()
    assert {vc.emulators[n].vc_signing_key for n in ("phone", "laptop")} != {kept_key}
    assert lifecycle.removal_finished(w.em("phone"), b"tablet")
    assert lifecycle.removal_finished(w.em("laptop"), b"tablet")
    pump(ds, "bob", w.bob)
    w.agree()
    # everything the group carries from now on, tried with all the tablet kept
    vc.send("laptop", G1, b"after the removal")
    w.bob.propose_update()
    peer_commit(ds, "bob", w.bob, w.bob.commit())
    vc.sync()
    tries = 0
    for d in ds.log(G1):
        for gid, hg in list(tablet.groups.items()):
            if gid != d.group_id or d.epoch is None or d.epoch < hg.group.epoch:
                continue
            tries += 1
            with pytest.raises(MLSError):
                tablet.deliver(gid, d.message)
    assert tries > 0
    assert ds.pending("tablet") == 0  # the DS no longer fans out to it


def test_removal_is_not_finished_before_the_path_commits() -> None:
    w = world(b"rm2")
    phone = w.em("phone")
    w.ds.delete_key_packages(VC)
    w.vc.act("phone", lambda em: em.remove_emulator(b"tablet"))
    assert not lifecycle.removal_finished(phone, b"tablet")
    w.vc.commit("phone", G1)
    assert lifecycle.removal_finished(phone, b"tablet")


def test_onboarding_by_external_join_replaces_key_packages_and_resyncs() -> None:
    w = world(b"onb")
    ds, vc = w.ds, w.vc
    carol = peer_group(ds, "carol", b"g2", seed=b"carol/onb")
    vc.external_join("laptop", b"g2")
    vc.sync()
    pump(ds, "carol", carol)
    vc.upload_key_packages("phone", 2)
    old_refs = ds.outstanding_key_packages(VC)
    watch = new_emulator("watch", w.em("phone"))
    vc.onboard(watch, key_packages=1)
    vc.sync()
    pump(ds, "bob", w.bob)
    pump(ds, "carol", carol)
    new_refs = ds.outstanding_key_packages(VC)
    assert len(new_refs) == 1 and not set(new_refs) & set(old_refs)
    for gid, peer in ((G1, w.bob), (b"g2", carol)):
        w.agree(gid, peer)
        creds = [leaf.credential for _, leaf in peer.members()]
        assert sum(1 for c in creds if getattr(c, "identity", None) == VC.encode()) == 1
    # the new emulator sends, the peers read it, the siblings attribute it
    vc.send("watch", G1, b"from the watch")
    events = vc.sync()
    [ev] = pump(ds, "bob", w.bob)
    assert isinstance(ev, ApplicationMessage) and ev.data == b"from the watch"
    assert any(e.received.sibling_leaf is not None for e in events)


def test_a_second_add_of_the_same_emulator_is_refused() -> None:
    w = world(b"dup")
    phone = w.em("phone")
    twin = new_emulator("laptop", phone)  # the laptop's name again
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        phone.add_emulator(twin.emulation_key_package().key_package)
    assert err.value.check_id == "VC-EMULATOR-DUPLICATE"
    assert snapshot(phone) == before


def test_removing_a_non_member_is_refused() -> None:
    w = world(b"nm")
    phone = w.em("phone")
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        phone.remove_emulator(b"fridge")
    assert err.value.check_id == "VC-EMULATOR-NOT-MEMBER"
    assert snapshot(phone) == before


def test_a_welcome_without_the_state_is_refused() -> None:
    w = world(b"nostate")
    phone = w.em("phone")
    desk = new_emulator("desktop", phone)
    kp = desk.emulation_key_package()
    out = phone._emulation_commit(proposals=[__import__("mlsvc.messages.proposals",
                                                        fromlist=["Add"]).Add(kp.key_package)])
    assert out.welcome is not None
    with pytest.raises(ValidationError) as err:
        desk.join_emulation_group(out.welcome, kp)
    assert err.value.check_id == "VC-NECS-MISSING"
    assert desk.emulation is None and not desk.groups and not desk.epochs.epochs


def test_a_state_in_a_published_group_info_is_refused() -> None:
    w = world(b"pub")
    phone = w.em("phone")
    g = phone.emu
    state = lifecycle.state_for_new_emulator(phone)
    ext = lifecycle.welcome_extension(phone, state)
    from mlsvc.group.epoch import group_info_for
    gi = MLSMessage(group_info_for(g.state, ratchet_tree=True, external_pub=True,
                                   extensions=(ext,))).encode()
    watch = new_emulator("watch", phone)
    with pytest.raises(ValidationError) as err:
        Emulator.onboard_external(watch.name, watch.identity, watch.vc, watch.rng, gi)
    assert err.value.check_id == "VC-NECS-OUTSIDE-WELCOME"


def test_a_lost_device_is_removed_without_its_state() -> None:
    """A device the loop no longer runs (lost, or died while being added) is removed by
    name: it only has to be in the emulation group; a stranger is still refused."""
    w = world(b"lost")
    w.vc.emulators.pop("tablet")  # the tablet is gone with everything it held
    w.vc.remove_emulator("phone", "tablet")
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    assert lifecycle.removal_finished(w.em("phone"), b"tablet")
    assert "tablet" not in w.ds.emulators(VC)
    assert [_identity(leaf) for _, leaf in w.em("phone").emu.members()] == [b"phone",
                                                                            b"laptop"]
    w.agree()
    w.vc.upload_key_packages("phone", 1)
    before = snapshot(w.em("phone")), w.ds.to_bytes(include_stats=False)
    with pytest.raises(ValidationError) as err:
        w.vc.remove_emulator("phone", "fridge")
    assert err.value.check_id == "VC-EMULATOR-NOT-MEMBER"
    assert (snapshot(w.em("phone")), w.ds.to_bytes(include_stats=False)) == before


def _identity(leaf: object) -> bytes:
    ident = getattr(getattr(leaf, "credential", None), "identity", None)
    assert isinstance(ident, bytes)
    return ident
