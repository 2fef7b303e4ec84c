"""The virtual client under the later text (profile "latest", issue 15): the same
operations as draft-00, with the operation secret tree (latest §5.2), the later
DerivationInfoTBE (§5.3), KeyPackageUpload (§5.5.1), external joins without an
ExternalJoin action (§5.5.2), the reuse guard from reuse_guard_secret (§5.6.2) and the
generation ID bound to group and epoch (§5.6.3).

Expected values come from the primitives of the text (the operation secret tree, the
DerivationInfo formula), from the other emulators' independent re-derivation and from
plain MLS members, never from the code path under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError, ValidationError
from mlsvc.group.events import ApplicationMessage
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.vc import derivation as dinfo
from mlsvc.vc.actions import (
    ExternalJoin,
    LatestKeyPackageInfo,
    LatestKeyPackageUpload,
    VirtualClientAction,
)
from mlsvc.vc.codepoints import OperationType, RatchetType
from mlsvc.vc.emulator import Emulator, recorded_profile
from mlsvc.vc.generation_id import generation_id
from mlsvc.vc.profiles import Profile
from mlsvc.vc.reuse_guard import recover_leaf_index

from .vc_helpers import (
    G1,
    NAMES,
    VC,
    World,
    action_items,
    forged_emulation_commit,
    peer_commit,
    peer_group,
    pump,
    snapshot,
    world,
)

LATEST = Profile.LATEST


def latest_world(seed: bytes = b"latest") -> World:
    return world(seed=seed, profile=LATEST)


def vc_leaf_of(w: World, name: str = "phone") -> LeafNode:
    g = w.em(name).groups[G1].group
    leaf = g.tree.leaf(g.own_leaf)
    assert leaf is not None
    return leaf


def tbe_of(em: Emulator, leaf: object) -> dinfo.DerivationInfoTBE:
    """The DerivationInfoTBE of a virtual-client LeafNode, opened with the formula of
    latest §5.3 under the named epoch's epoch_encryption_key."""
    from mlsvc.messages.leaf_node import LeafNode

    assert isinstance(leaf, LeafNode)
    comp = dinfo.find_in_leaf(leaf, em.vc.ext_codepoints, em.vc.codepoints)
    assert comp is not None
    ep = em.epochs.by_id(comp.epoch_id)
    assert ep.encryption_key is not None
    return dinfo.open_tbe(em.ecs, comp, ep.encryption_key, leaf)


# --- the profile is recorded in the emulation group ---------------------------------------


def test_the_emulation_group_records_latest_and_draft_00_records_nothing() -> None:
    w = latest_world()
    em = w.em("phone")
    assert recorded_profile(em.emu.context.extensions) is LATEST
    d = world(seed=b"d")
    assert recorded_profile(d.em("phone").emu.context.extensions) is Profile.DRAFT_00
    for name in NAMES:  # every emulator opened latest epochs (five secrets, a tree)
        ep = w.em(name).epochs.latest
        assert ep.profile is LATEST and ep.tree is not None and ep.pprf is None


# --- every operation, three emulators, a plain member ------------------------------------


@pytest.mark.parametrize("actor", NAMES)
def test_commit_update_and_messages_of_every_emulator(actor: str) -> None:
    w = latest_world(actor.encode())
    before = w.agree()
    assert w.vc.commit(actor, G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    assert w.agree() != before
    tbe = tbe_of(w.em("phone"), vc_leaf_of(w))
    assert tbe.leaf_node_source is LeafNodeSource.COMMIT
    assert tbe.leaf_index == int(w.em(actor).epochs.latest.own_leaf)
    assert tbe.external_init_secret is None  # "any other Commit": absent
    assert w.vc.update(actor, G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    peer_commit(w.ds, "bob", w.bob, w.bob.commit())
    w.vc.sync()
    w.agree()
    assert tbe_of(w.em("phone"), vc_leaf_of(w)).leaf_node_source is LeafNodeSource.UPDATE
    for sender in NAMES:
        assert w.vc.send(sender, G1, sender.encode()).accepted
        events = [e.received for e in w.vc.sync()]
        assert sorted(r.sibling_leaf for r in events if r.sibling_leaf is not None) == [
            NAMES.index(sender)] * 2
        [msg] = pump(w.ds, "bob", w.bob)
        assert isinstance(msg, ApplicationMessage) and msg.data == sender.encode()


def test_the_emulators_trees_agree_after_every_operation() -> None:
    """R4: every emulator consumes the deriver's generation in its own tree, so the
    trees of the epoch are equal everywhere."""
    w = latest_world()
    assert w.vc.commit("laptop", G1).accepted
    assert w.vc.upload_key_packages("tablet", 3).accepted
    w.vc.sync()
    states = {name: w.em(name).epochs.epochs for name in NAMES}
    epochs = set.intersection(*(set(e) for e in states.values()))
    assert epochs
    for n in epochs:
        trees = [states[name][n].tree for name in NAMES]
        if any(t is None for t in trees):
            continue
        ratchets = [{k: (r.generation, r.secret) for k, r in t.state.ratchets.items()}
                    for t in trees if t is not None]
        assert ratchets[0] == ratchets[1] == ratchets[2]


def test_key_packages_name_their_batch_and_index() -> None:
    w = latest_world()
    phone = w.em("phone")
    tree = phone.epochs.latest.tree
    assert tree is not None
    gen = tree.next_generation(int(phone.epochs.latest.own_leaf), OperationType.KEY_PACKAGE)
    assert w.vc.upload_key_packages("phone", 3).accepted
    w.vc.sync()
    tbes = sorted((tbe_of(phone, h.bundle.key_package.leaf_node) for h in
                   phone.key_packages.values()), key=lambda t: t.key_package_index or 0)
    assert [(t.generation, t.key_package_index) for t in tbes] == [(gen, 0), (gen, 1),
                                                                    (gen, 2)]
    for name in NAMES[1:]:  # the siblings re-created the same KeyPackages
        assert set(w.em(name).key_packages) == set(phone.key_packages)
    assert set(phone.key_packages) == set(w.ds.outstanding_key_packages(VC))


def test_a_second_group_joined_by_welcome_from_another_uploader() -> None:
    w = latest_world()
    carol = peer_group(w.ds, "carol", b"g2")
    from .vc_helpers import add_vc

    add_vc(w.ds, w.vc, "carol", carol, uploader="tablet")
    w.agree(b"g2", carol)
    assert all(not em.key_packages for em in w.vc.emulators.values())


def test_external_join_needs_no_action_and_siblings_follow() -> None:
    w = latest_world()
    carol = peer_group(w.ds, "carol", b"g2")
    epoch_before = w.em("phone").emu.epoch
    assert w.vc.external_join("laptop", b"g2").accepted
    w.vc.sync()
    assert w.em("phone").emu.epoch == epoch_before  # no emulation Commit (no action)
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)
    g = w.em("phone").groups[b"g2"].group
    tbe = tbe_of(w.em("phone"), g.tree.leaf(g.own_leaf))
    assert tbe.leaf_node_source is LeafNodeSource.COMMIT
    assert tbe.external_init_secret is not None
    # a resync of G1: the prior leaf goes, one leaf stays
    assert w.vc.external_join("tablet", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert [leaf.credential for _, leaf in w.bob.members()].count(
        BasicCredential(VC.encode())) == 1
    for gid, peer, pname in ((G1, w.bob, "bob"), (b"g2", carol, "carol")):
        assert w.vc.send("phone", gid, b"after").accepted
        w.vc.sync()
        [msg] = pump(w.ds, pname, peer)
        assert isinstance(msg, ApplicationMessage) and msg.data == b"after"


# --- the later text's primitives on the wire ----------------------------------------------


def test_reuse_guard_is_keyed_by_the_epoch_s_reuse_guard_secret() -> None:
    w = latest_world()
    laptop = w.em("laptop")
    out = laptop.send_private_message(G1, b"x")
    hg = laptop.groups[G1]
    ep = laptop.epochs.by_id(hg.active.epoch_id)
    assert ep.reuse_guard_secret is not None and out.nonce is not None
    # the sender's guard decodes to its own leaf with reuse_guard_secret of epoch e
    body = MLSMessage.decode(out.message).body
    from mlsvc.messages.framing import PrivateMessage

    assert isinstance(body, PrivateMessage)
    w.vc._verdict("laptop", out, w.ds.submit("laptop", out.message, on_behalf_of=VC,
                                              generation_id=out.generation_id).accepted)
    events = [e.received for e in w.vc.sync(["phone"])]
    [r] = [r for r in events if r.sibling_leaf is not None]
    assert r.sibling_leaf == int(ep.own_leaf)
    ev = r.event
    assert isinstance(ev, ApplicationMessage)
    assert recover_leaf_index(laptop.ecs, ep.reuse_guard_secret, ev.key_schedule_nonce,
                              ev.reuse_guard, ep.leaf_count, None) == int(ep.own_leaf)


def test_generation_id_binds_group_and_epoch() -> None:
    w = latest_world()
    phone = w.em("phone")
    out = phone.send_private_message(G1, b"x")
    hg = phone.groups[G1]
    ep = phone.epochs.by_id(hg.active.epoch_id)
    assert out.generation is not None
    expected = generation_id(phone.ecs, ep.generation_id_secret, out.generation,
                             RatchetType.APPLICATION, profile=LATEST, group_id=G1,
                             epoch=hg.group.epoch)
    assert out.generation_id == expected
    assert out.generation_id != generation_id(phone.ecs, ep.generation_id_secret,
                                              out.generation, RatchetType.APPLICATION)


def test_a_refused_commit_s_retry_takes_a_fresh_generation() -> None:
    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    a = phone.vc_commit(G1)
    b = laptop.vc_commit(G1)
    assert w.ds.submit("phone", a.message, on_behalf_of=VC).accepted
    w.vc._verdict("phone", a, True)
    assert not w.ds.submit("laptop", b.message, on_behalf_of=VC).accepted
    w.vc._verdict("laptop", b, False)
    w.vc.sync()
    tree = laptop.epochs.latest.tree
    assert tree is not None
    own = int(laptop.epochs.latest.own_leaf)
    used = tree.next_generation(own, OperationType.LEAF_NODE)
    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert tbe_of(phone, vc_leaf_of(w)).generation == used  # not the refused one's


# --- receipt checks ---------------------------------------------------------------------


def _kpu_commit(w: World, kpu: LatestKeyPackageUpload) -> bytes:
    phone = w.em("phone")
    return forged_emulation_commit(phone, action_items(phone, VirtualClientAction(kpu)))


def test_an_upload_with_duplicate_indices_is_rejected() -> None:
    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    ep = phone.epochs.latest
    kpu = LatestKeyPackageUpload(ep.epoch_id, int(ep.own_leaf), 0, (
        LatestKeyPackageInfo(b"\x01" * 32, 0), LatestKeyPackageInfo(b"\x02" * 32, 0)))
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(phone.emu.group_id, _kpu_commit(w, kpu))
    assert err.value.check_id == "VC-KPU-DUPLICATE-INDEX"
    assert snapshot(laptop) == before


def test_an_upload_naming_another_leaf_is_rejected() -> None:
    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    ep = phone.epochs.latest
    kpu = LatestKeyPackageUpload(ep.epoch_id, int(laptop.epochs.latest.own_leaf), 0,
                                 (LatestKeyPackageInfo(b"\x01" * 32, 0),))
    with pytest.raises(ValidationError) as err:
        laptop.deliver(phone.emu.group_id, _kpu_commit(w, kpu))
    assert err.value.check_id == "VC-KPU-SENDER"


def test_an_upload_with_a_wrong_ref_is_rejected_and_consumes_nothing() -> None:
    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    ep = phone.epochs.latest
    kpu = LatestKeyPackageUpload(ep.epoch_id, int(ep.own_leaf), 0,
                                 (LatestKeyPackageInfo(b"\x01" * 32, 0),))
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(phone.emu.group_id, _kpu_commit(w, kpu))
    assert err.value.check_id == "VC-KPU-UNKNOWN-REF"
    assert snapshot(laptop) == before  # the tree was not advanced (R4, planned on a copy)


def test_the_draft_00_external_join_action_is_no_latest_action() -> None:
    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    forged = forged_emulation_commit(phone, action_items(
        phone, VirtualClientAction(ExternalJoin(b"g9"))))
    with pytest.raises(DecodeError):
        laptop.deliver(phone.emu.group_id, forged)


def test_an_emulator_of_the_other_profile_cannot_join() -> None:
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.group.config import Identity
    from mlsvc.vc.emulator import VirtualClientConfig

    w = latest_world()
    phone = w.em("phone")
    rng = SeededRandom(b"stranger")
    cs = phone.ecs
    stranger = Emulator(b"stranger", Identity.basic(b"stranger",
                                                    cs.signature.generate_key_pair(rng)),
                        VirtualClientConfig(VC.encode()), rng)
    kp = stranger.emulation_key_package()
    out = phone.add_emulator(kp.key_package)
    assert out.welcome is not None
    with pytest.raises(ValidationError) as err:
        stranger.join_emulation_group(out.welcome, kp)
    assert err.value.check_id == "VC-PROFILE-MISMATCH"
    assert stranger.emulation is None


def test_an_external_commit_without_its_init_secret_is_rejected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """latest §5.3: "If external_init_secret is absent, the emulator client MUST reject
    the Commit": a sibling's external commit whose DerivationInfoTBE leaves it out."""
    w = latest_world()
    carol = peer_group(w.ds, "carol", b"g2")
    laptop, phone = w.em("laptop"), w.em("phone")
    gi = w.ds.group_info(b"g2")
    # laptop's genuine external commit, and a copy of laptop made to leave the init
    # secret out of its DerivationInfoTBE
    real_seal = dinfo.seal_tbe

    def seal_without_init(cs: CipherSuite, epoch_id: bytes, key: bytes, enc: bytes,
                          info: dinfo.DerivationInfoTBE) -> dinfo.DerivationInfoComponent:
        return real_seal(cs, epoch_id, key, enc, dinfo.DerivationInfoTBE(
            info.leaf_index, info.generation, info.leaf_node_source, info.key_package_index,
            None))

    monkeypatch.setattr(dinfo, "seal_tbe", seal_without_init)  # a corrupt laptop
    out = laptop.external_join(b"g2", gi)
    monkeypatch.undo()
    with pytest.raises(ValidationError) as err:
        phone.follow_external_join(gi, out.message)
    assert err.value.check_id == "VC-EXTERNAL-INIT-MISSING"
    assert b"g2" not in phone.groups
    del carol


def test_a_removal_replaces_the_deleted_key_packages_from_the_new_epoch() -> None:
    """latest §6.3: the DS deletes the outstanding KeyPackages, the Remove is committed,
    then "Upload a fresh set of KeyPackages derived from the new emulation-group epoch
    to replace those deleted in step 1"; every group is updated from that epoch."""
    w = latest_world()
    assert w.vc.upload_key_packages("laptop", 2).accepted
    w.vc.sync()
    old = set(w.ds.outstanding_key_packages(VC))
    assert len(old) == 2
    assert w.vc.remove_emulator("phone", "tablet").accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    phone = w.em("phone")
    new = set(w.ds.outstanding_key_packages(VC))
    assert len(new) == 2 and not new & old
    removal_epoch = phone.removals[b"tablet"]
    for ref in new:
        leaf = phone.key_packages[ref].bundle.key_package.leaf_node
        comp = dinfo.find_in_leaf(leaf, phone.vc.ext_codepoints, phone.vc.codepoints)
        assert comp is not None
        assert phone.epochs.by_id(comp.epoch_id).epoch >= removal_epoch
    comp = dinfo.find_in_leaf(vc_leaf_of(w), phone.vc.ext_codepoints,
                              phone.vc.codepoints)
    assert comp is not None and phone.epochs.by_id(comp.epoch_id).epoch >= removal_epoch
    w.agree()


# --- group creation by the virtual client (latest §5.4) --------------------------------


def test_the_virtual_client_creates_a_group_and_adds_a_member() -> None:
    w = latest_world()
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.group import Group
    from mlsvc.group.key_package import create_key_package
    w.vc.create_group("laptop", b"g3")
    # every emulator holds the same epoch 0, rebuilt from the creator's DerivationInfo
    auths = {em.groups[b"g3"].group.epoch_authenticator for em in w.vc.emulators.values()}
    assert len(auths) == 1
    laptop = w.em("laptop")
    g = laptop.groups[b"g3"].group
    tbe = tbe_of(laptop, g.tree.leaf(g.own_leaf))
    assert (tbe.leaf_node_source, tbe.key_package_index) == (LeafNodeSource.KEY_PACKAGE, 0)
    assert w.ds.members(b"g3") == (VC,)
    # dave joins by the virtual client's commit
    rng = SeededRandom(b"dave")
    cs = laptop.ecs
    dave_id = Identity.basic(b"dave", cs.signature.generate_key_pair(rng))
    cfg = GroupConfig(rng=rng, supported_extensions=(6,))
    kp = create_key_package(cs, dave_id, cfg)
    w.ds.register_client("dave")
    w.ds.upload_key_packages("dave", [MLSMessage(kp.key_package).encode()])
    assert w.vc.commit("tablet", b"g3", [w.ds.fetch_key_package("dave")]).accepted
    w.vc.sync()
    [welcome] = [d for d in w.ds.receive("dave")]
    dave = Group.join(welcome.message, kp, cfg)
    w.agree(b"g3", dave)
    assert w.vc.send("phone", b"g3", b"hello dave").accepted
    w.vc.sync()
    [msg] = pump(w.ds, "dave", dave)
    assert isinstance(msg, ApplicationMessage) and msg.data == b"hello dave"


def test_group_creation_material_that_does_not_verify_is_rejected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """latest §5.4: "If the GroupInfo cannot be verified using the resulting epoch
    state, the emulator client MUST reject the initial group creation material": a
    corrupt laptop creates the group with a random epoch secret instead of the derived
    one; phone rejects it (CM-CONFIRMATION-TAG) and changes nothing. Material for
    another group id fails its signature. The genuine material is then followed."""
    from dataclasses import replace

    from mlsvc.messages.group_info import GroupInfo
    from mlsvc.vc.operation_tree import KeyPackageBatch

    w = latest_world()
    laptop, phone = w.em("laptop"), w.em("phone")
    monkeypatch.setattr(KeyPackageBatch, "group_creation_epoch_secret",
                        lambda self, gcs: bytes(range(gcs.nh)))
    corrupt = laptop.create_group(b"g4")
    monkeypatch.undo()
    del laptop.groups[b"g4"]
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        phone.follow_group_creation(corrupt)
    assert err.value.check_id == "CM-CONFIRMATION-TAG"
    assert snapshot(phone) == before
    good = laptop.create_group(b"g4")
    body = MLSMessage.decode(good).body
    assert isinstance(body, GroupInfo)
    moved = MLSMessage(replace(body, group_context=replace(body.group_context,
                                                           group_id=b"g5"))).encode()
    with pytest.raises(ValidationError) as err:
        phone.follow_group_creation(moved)
    assert err.value.check_id == "WEL-GROUPINFO-SIGNATURE"
    assert snapshot(phone) == before
    phone.follow_group_creation(good)
    assert phone.groups[b"g4"].group.epoch_authenticator == \
        laptop.groups[b"g4"].group.epoch_authenticator


def test_draft_00_creates_no_group() -> None:
    from mlsvc.errors import StateError

    d = world(seed=b"d00")
    with pytest.raises(StateError):
        d.em("phone").create_group(b"g3")


def test_a_latest_key_package_upload_in_flight_survives_a_restart() -> None:
    """The durable outbox decodes the action of a pending emulation Commit with the
    profile's VirtualClientAction (latest §5.5: the later KeyPackageUpload)."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.store import MemoryStore
    from mlsvc.vc import durable

    w = latest_world()
    phone = w.em("phone")
    out = phone.create_key_packages(2)
    store = MemoryStore()
    store.write(durable.records(phone))
    restored = durable.restore(store, SeededRandom(b"restart"))
    assert restored.pending_action_message() == out
    assert isinstance(out.action, VirtualClientAction)
    assert isinstance(out.action.body, LatestKeyPackageUpload)
    assert restored.vc.profile is LATEST


# --- the later text's structs and checks, at their bounds ------------------------------
# Expected bytes are restated with struct/hashlib/cryptography (vc_helpers), not computed
# by the code under test.


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


@pytest.mark.parametrize("value", [0, 0xFFFF_FFFF])
def test_derivation_info_tbe_encodes_each_arm(value: int) -> None:
    from .vc_helpers import opaque

    kp = dinfo.DerivationInfoTBE(value, value, LeafNodeSource.KEY_PACKAGE,
                                 key_package_index=value)
    assert kp.encode() == _u32(value) * 3
    up = dinfo.DerivationInfoTBE(value, 7, LeafNodeSource.UPDATE)
    assert up.encode() == _u32(value) + _u32(7)
    commit = dinfo.DerivationInfoTBE(1, value, LeafNodeSource.COMMIT)
    assert commit.encode() == _u32(1) + _u32(value) + b"\x00"
    ext = dinfo.DerivationInfoTBE(1, 2, LeafNodeSource.COMMIT, external_init_secret=b"s" * 32)
    assert ext.encode() == _u32(1) + _u32(2) + b"\x01" + opaque(b"s" * 32)
    for tbe in (kp, up, commit, ext):
        assert dinfo.DerivationInfoTBE.decode_for(tbe.encode(), tbe.leaf_node_source) == tbe


def test_derivation_info_tbe_refuses_what_the_text_does_not_allow() -> None:
    from mlsvc.errors import ParameterError

    T, KP, UP, CM = (dinfo.DerivationInfoTBE, LeafNodeSource.KEY_PACKAGE,
                     LeafNodeSource.UPDATE, LeafNodeSource.COMMIT)
    bads: list[Callable[[], object]] = [
                lambda: T(-1, 0, UP), lambda: T(1 << 32, 0, UP), lambda: T(0, -1, UP),
                lambda: T(0, 1 << 32, UP), lambda: T(0, 0, KP),  # no index
                lambda: T(0, 0, UP, key_package_index=0),  # index on an update
                lambda: T(0, 0, CM, key_package_index=0),
                lambda: T(0, 0, KP, key_package_index=-1),
                lambda: T(0, 0, KP, key_package_index=1 << 32),
                lambda: T(0, 0, UP, external_init_secret=b"x"),
                lambda: T(0, 0, KP, key_package_index=0, external_init_secret=b"x")]
    for bad in bads:
        with pytest.raises(ParameterError):
            bad()
    with pytest.raises(ParameterError):
        T(0, 0, 0)  # type: ignore[arg-type]  # reserved(0) is no leaf_node_source
    good = T(1, 2, UP).encode()
    with pytest.raises(DecodeError):
        T.decode_for(good + b"\x00", UP)  # trailing
    with pytest.raises(DecodeError):
        T.decode_for(good, KP)  # a key_package arm needs 12 bytes
    with pytest.raises(DecodeError):
        T.decode_for(good + b"\x02", CM)  # optional<> is 0 or 1


def test_seal_tbe_is_the_formula_of_latest_5_3() -> None:
    """key/nonce = ExpandWithLabel(epoch_encryption_key, "key"/"nonce", serialized
    encryption_key, Nk/Nn), AAD = epoch_id, AES-128-GCM for suite 1."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from mlsvc.crypto.suites import get_suite
    from mlsvc.messages.leaf_node import LeafNode

    from .vc_helpers import expand_with_label, opaque

    cs = get_suite(1)
    eek, epoch_id, enc = b"k" * 32, b"e" * 32, b"p" * 32
    tbe = dinfo.DerivationInfoTBE(3, 9, LeafNodeSource.UPDATE)
    comp = dinfo.seal_tbe(cs, epoch_id, eek, enc, tbe)
    key = expand_with_label("sha256", eek, b"key", opaque(enc), 16)
    nonce = expand_with_label("sha256", eek, b"nonce", opaque(enc), 12)
    assert comp.epoch_id == epoch_id
    assert comp.ciphertext == AESGCM(key).encrypt(nonce, tbe.encode(), epoch_id)
    w = world(b"tbe-open", profile=LATEST, names=("phone",))
    leaf = w.em("phone").groups[G1].group.tree.leaf(w.em("phone").groups[G1].group.own_leaf)
    assert isinstance(leaf, LeafNode)
    from dataclasses import replace

    as_update = replace(leaf, encryption_key=enc, leaf_node_source=LeafNodeSource.UPDATE,
                        lifetime=None, parent_hash=None)
    assert dinfo.open_tbe(cs, comp, eek, as_update) == tbe
    for wrong_key, wrong_comp in ((b"x" * 32, comp),
                                  (eek, dinfo.DerivationInfoComponent(b"f" * 32,
                                                                      comp.ciphertext))):
        with pytest.raises(ValidationError) as err:
            dinfo.open_tbe(cs, wrong_comp, wrong_key, as_update)
        assert err.value.check_id == "VC-DERIVATION-INFO"
    as_commit = replace(as_update, leaf_node_source=LeafNodeSource.COMMIT, parent_hash=b"")
    with pytest.raises(ValidationError):  # an update TBE does not parse as a commit's
        dinfo.open_tbe(cs, comp, eek, as_commit)


def test_the_later_key_package_upload_on_the_wire() -> None:
    from .vc_helpers import opaque, varint

    infos = (LatestKeyPackageInfo(b"r0", 0), LatestKeyPackageInfo(b"r1", 0xFFFF_FFFF))
    kpu = LatestKeyPackageUpload(b"eid", 2, 5, infos)
    body = opaque(b"r0") + _u32(0) + opaque(b"r1") + _u32(0xFFFF_FFFF)
    expected = opaque(b"eid") + _u32(2) + _u32(5) + varint(len(body)) + body
    assert kpu.encode() == expected
    action = VirtualClientAction(kpu)
    assert int(action.action_type) == 1
    assert action.encode() == b"\x01" + expected
    assert VirtualClientAction.decode_latest(b"\x01" + expected) == action
    assert not kpu.duplicate_indices
    assert LatestKeyPackageUpload(b"e", 0, 0, (LatestKeyPackageInfo(b"a", 3),
                                               LatestKeyPackageInfo(b"b", 3))
                                  ).duplicate_indices
    for bad in (b"\x01" + expected + b"\x00", b"\x02" + opaque(b"g"), b"\x00", b""):
        with pytest.raises(DecodeError):
            VirtualClientAction.decode_latest(bad)


def test_recorded_profile_reads_the_entry_and_refuses_unknown_names() -> None:
    from mlsvc.ext.components import AppDataDictionary
    from mlsvc.vc.codepoints import DEFAULT_VC_CODEPOINTS

    cp = DEFAULT_VC_CODEPOINTS
    assert recorded_profile(()) is Profile.DRAFT_00
    other = AppDataDictionary.of({0x9000: b"x"}).to_extension()
    assert recorded_profile((other,)) is Profile.DRAFT_00
    ok = AppDataDictionary.of({cp.profile: b"latest"}).to_extension()
    assert recorded_profile((ok,)) is LATEST
    for name in (b"draft-00", b"Latest", b"\xff", b""):
        ext = AppDataDictionary.of({cp.profile: name}).to_extension()
        with pytest.raises(ValidationError) as err:
            recorded_profile((ext,))
        assert err.value.check_id == "VC-PROFILE-MISMATCH"


def test_latest_operation_keys_follow_the_sub_secrets() -> None:
    from mlsvc.crypto.suites import get_suite
    from mlsvc.vc.operation import latest_operation_keys
    from mlsvc.vc.operation_tree import KeyPackageSubSecrets, OperationSubSecrets

    from .vc_helpers import derive_secret

    cs = get_suite(1)
    op_secret = b"o" * 32
    sub = OperationSubSecrets.of(cs, op_secret)
    assert sub.path_generation_secret == derive_secret("sha256", op_secret,
                                                       b"Path Generation")
    keys = latest_operation_keys(cs, get_suite(3), sub)  # another suite of the same KDF
    assert keys.path_secret == sub.path_generation_secret
    assert keys.leaf_node_secret == sub.encryption_key_secret
    assert keys.encryption == get_suite(3).kem.derive_key_pair(sub.encryption_key_secret)
    assert keys.signature == get_suite(3).signature.derive_key_pair(sub.signature_key_secret)
    assert keys.init == get_suite(3).kem.derive_key_pair(sub.init_key_secret)
    assert keys.external_init_seed == b""
    seed = KeyPackageSubSecrets.of(cs, b"s" * 32)
    kp_keys = latest_operation_keys(cs, cs, seed)
    assert kp_keys.path_secret == b"" and kp_keys.init == cs.kem.derive_key_pair(
        seed.init_key_secret)
    with pytest.raises(ValidationError) as err:
        latest_operation_keys(cs, get_suite(4), sub)  # SHA-512: another KDF (Q3)
    assert err.value.check_id == "VC-SUITE-KDF"


def test_a_planned_operation_changes_the_tree_only_when_committed() -> None:
    from mlsvc.crypto.suites import get_suite
    from mlsvc.vc.operation_tree import OperationSecretTree, PlannedOperation

    cs = get_suite(1)
    tree = OperationSecretTree(cs, b"eid", b"b" * 32, 4)
    reference = OperationSecretTree(cs, b"eid", b"b" * 32, 4)
    plan = PlannedOperation.plan(cs, tree, 2, OperationType.LEAF_NODE, 3, b"g")
    assert tree.state == OperationSecretTree(cs, b"eid", b"b" * 32, 4).state
    assert plan.operation == reference.operation_at(2, OperationType.LEAF_NODE, 3, b"g")
    plan.commit()
    assert tree.state == reference.state
    with pytest.raises(ValidationError) as err:
        PlannedOperation.plan(cs, tree, 2, OperationType.LEAF_NODE, 3, b"g")
    assert err.value.check_id == "VC-OPERATION-GENERATION"


def test_a_latest_epoch_holds_five_secrets_and_a_tree_until_dropped() -> None:
    from mlsvc.crypto.suites import get_suite
    from mlsvc.types import LeafIndex
    from mlsvc.vc.epoch import derive_epoch_secrets, open_epoch, open_latest_epoch

    cs = get_suite(1)
    ees = b"x" * 32
    s = derive_epoch_secrets(cs, ees, LATEST)
    e = open_latest_epoch(cs, ees, 3, 4, LeafIndex(1), {0: b"a", 1: b"b"})
    assert (e.epoch_id, e.generation_id_secret, e.encryption_key, e.reuse_guard_secret) == (
        s.epoch_id, s.generation_id_secret, s.epoch_encryption_key, s.reuse_guard_secret)
    assert e.profile is LATEST and e.can_derive and e.pprf is None and e.tree is not None
    assert list(e.tree.state.nodes.values()) == [s.epoch_base_secret]
    assert open_epoch(cs, ees, 3, 4, LeafIndex(1), {}, profile=LATEST).tree is not None
    d00 = open_epoch(cs, ees, 3, 4, LeafIndex(1), {})
    assert d00.profile is Profile.DRAFT_00 and d00.tree is None and d00.can_derive
    e.drop_derivation_secrets()
    assert e.tree is None and not e.can_derive
    assert e.reuse_guard_secret == s.reuse_guard_secret  # reference data stays
    assert e.profile is LATEST


def test_group_creation_refuses_what_it_cannot_create_or_follow() -> None:
    from mlsvc.errors import StateError

    w = latest_world()
    phone, laptop = w.em("phone"), w.em("laptop")
    with pytest.raises(StateError):
        phone.create_group(G1)  # the virtual client is in G1 already
    with pytest.raises(ValidationError) as err:
        phone.create_group(b"g7", group_suite=4)  # another KDF (Q3)
    assert err.value.check_id == "VC-SUITE-KDF"
    with pytest.raises(StateError):
        laptop.follow_group_creation(w.bob.group_info())  # laptop holds G1
    carol = peer_group(w.ds, "carol", b"g8")
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:  # a plain member's creator leaf
        laptop.follow_group_creation(carol.group_info())
    assert err.value.check_id == "VC-DERIVATION-INFO"
    with pytest.raises(DecodeError):
        laptop.follow_group_creation(carol.group_info()[:-1])  # truncated
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.key_package import create_key_package

    rng = SeededRandom(b"kp")
    kp = create_key_package(phone.ecs, Identity.basic(b"x", phone.ecs.signature
                                                      .generate_key_pair(rng)),
                            GroupConfig(rng=rng))
    with pytest.raises(DecodeError):  # a KeyPackage is no GroupInfo
        laptop.follow_group_creation(MLSMessage(kp.key_package).encode())
    assert snapshot(laptop) == before
    d = world(seed=b"d00-follow")
    with pytest.raises(StateError):
        d.em("phone").follow_group_creation(phone.create_group(b"g9"))


# --- receipt checks one by one (a corrupt sibling's LeafNodes and creation material) ------


def _fresh_update_leaf(w: World, deriver: str = "laptop") -> object:
    """A LeafNode of the virtual client that `deriver` derives for G1 (a fresh
    leaf_node generation no sibling has consumed) with its DerivationInfo, as an Update
    would carry it."""
    from dataclasses import replace

    em = w.em(deriver)
    keys, ext, _ = em._leaf_material(G1, em.groups[G1].group.cipher_suite,
                                     LeafNodeSource.UPDATE)
    leaf = vc_leaf_of(w, deriver)
    return replace(leaf, encryption_key=keys.encryption[1],
                   signature_key=keys.signature[1], leaf_node_source=LeafNodeSource.UPDATE,
                   lifetime=None, parent_hash=None, extensions=(ext,))


def test_each_latest_leaf_check_names_its_check_id() -> None:
    """latest §5.3 on receipt of an update or commit LeafNode: a key_package LeafNode
    (VC-DERIVATION-INFO), a leaf_index that is no emulator (VC-SENDER-NOT-EMULATOR), a
    signature key that is not the re-derived one although the encryption key is
    (VC-REDERIVED-KEY-MISMATCH); the genuine leaf re-derives to its own keys."""
    from dataclasses import replace

    from mlsvc.crypto.random import SeededRandom
    from mlsvc.messages.leaf_node import LeafNode
    from mlsvc.vc import receive

    w = latest_world(b"leaf-checks")
    phone = w.em("phone")
    cs = phone.groups[G1].group.cipher_suite
    leaf = _fresh_update_leaf(w)
    assert isinstance(leaf, LeafNode)
    comp = dinfo.find_in_leaf(leaf, phone.vc.ext_codepoints, phone.vc.codepoints)
    assert comp is not None
    ep = phone.epochs.for_derivation(comp.epoch_id)
    assert ep.encryption_key is not None
    tbe, keys, _ = receive._latest_leaf_keys(phone, ep, leaf, comp, G1, cs)
    assert tbe.leaf_index == int(w.em("laptop").epochs.latest.own_leaf)
    assert (keys.encryption[1], keys.signature[1]) == (leaf.encryption_key,
                                                       leaf.signature_key)
    other_sig = cs.signature.generate_key_pair(SeededRandom(b"other signature key"))[1]
    stranger = 7
    assert stranger not in ep.roster
    not_ours = dinfo.seal_tbe(phone.ecs, ep.epoch_id, ep.encryption_key, leaf.encryption_key,
                              dinfo.DerivationInfoTBE(stranger, tbe.generation,
                                                      LeafNodeSource.UPDATE))
    assert w.vc.upload_key_packages("laptop", 1).accepted
    w.vc.sync()
    [held] = phone.key_packages.values()
    kp_leaf = held.bundle.key_package.leaf_node
    kp_comp = dinfo.find_in_leaf(kp_leaf, phone.vc.ext_codepoints, phone.vc.codepoints)
    assert kp_comp is not None
    kp_ep = phone.epochs.for_derivation(kp_comp.epoch_id)
    cases = [(ep, replace(leaf, signature_key=other_sig), comp, "VC-REDERIVED-KEY-MISMATCH"),
             (ep, leaf, not_ours, "VC-SENDER-NOT-EMULATOR"),
             (kp_ep, kp_leaf, kp_comp, "VC-DERIVATION-INFO")]
    for epoch, node, component, check_id in cases:
        with pytest.raises(ValidationError) as err:
            receive._latest_leaf_keys(phone, epoch, node, component, G1, cs)
        assert err.value.check_id == check_id


def test_an_epoch_without_a_tree_is_deleted_or_of_the_other_profile() -> None:
    """The operation secret tree of an epoch: VC-EPOCH-DELETED for a latest epoch
    outside the window, VC-PROFILE-MISMATCH for a draft-00 epoch (it never has one)."""
    from mlsvc.crypto.suites import get_suite
    from mlsvc.types import LeafIndex
    from mlsvc.vc import receive
    from mlsvc.vc.epoch import open_epoch, open_latest_epoch

    cs = get_suite(1)
    latest = open_latest_epoch(cs, b"l" * 32, 4, 2, LeafIndex(0), {0: b"a"})
    assert receive._tree_of(latest) is latest.tree
    latest.drop_derivation_secrets()
    draft = open_epoch(cs, b"d" * 32, 4, 2, LeafIndex(0), {0: b"a"})
    for epoch, check_id in ((latest, "VC-EPOCH-DELETED"), (draft, "VC-PROFILE-MISMATCH")):
        with pytest.raises(ValidationError) as err:
            receive._tree_of(epoch)
        assert err.value.check_id == check_id


def test_a_latest_upload_naming_an_earlier_epoch_is_rejected() -> None:
    """P16 kept under latest: the KeyPackageUpload names the epoch its Commit is sent
    in; an earlier epoch still in the window is VC-EPOCH-UNKNOWN, nothing changes."""
    w = latest_world(b"earlier-epoch")
    phone, laptop = w.em("phone"), w.em("laptop")
    earlier = phone.epochs.latest
    assert w.vc.emulation_commit("tablet").accepted
    w.vc.sync()
    assert phone.epochs.latest.epoch == earlier.epoch + 1
    assert laptop.epochs.for_derivation(earlier.epoch_id).epoch == earlier.epoch
    kpu = LatestKeyPackageUpload(earlier.epoch_id, int(phone.epochs.latest.own_leaf), 0,
                                 (LatestKeyPackageInfo(b"\x01" * 32, 0),))
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(phone.emu.group_id, _kpu_commit(w, kpu))
    assert err.value.check_id == "VC-EPOCH-UNKNOWN"
    assert snapshot(laptop) == before


def test_latest_key_packages_of_another_suite_with_the_same_kdf_are_rederived() -> None:
    """Q3 under latest §5.5.1: a virtual client whose emulation suite has a 64-byte KDF
    (suite 4) uploads KeyPackages for suite 6 (the same KDF); every sibling re-creates
    them, trying the suites whose KDF matches and skipping the others (suite 1 with its
    32-byte KDF comes first)."""
    from mlsvc.crypto.suites import get_suite
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient

    ds = DeliveryService()
    vc = VirtualClient.create(ds, VC, ["phone", "laptop"], suite=4, seed=b"latest-suite-4",
                              profile=LATEST)
    assert vc.upload_key_packages("phone", 2, group_suite=6).accepted
    vc.sync()
    phone, laptop = vc.emulators["phone"], vc.emulators["laptop"]
    assert len(phone.key_packages) == 2
    assert set(laptop.key_packages) == set(phone.key_packages) == set(
        ds.outstanding_key_packages(VC))
    for ref, held in laptop.key_packages.items():
        assert held.group_suite == 6 and held.bundle.key_package.cipher_suite == 6
        assert held.bundle.ref(get_suite(6)) == ref


def _creation_material(em: Emulator, group_id: bytes, *, index: int = 0,
                       leaf_index: int | None = None, foreign_signature: bool = False
                       ) -> bytes:
    """Group creation material as a corrupt `em` could make it (latest §5.4 with one
    thing changed): another key_package_index, another leaf_index in the
    DerivationInfoTBE, or a signature key that is not the derived one."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.group.config import Identity
    from mlsvc.group.group import Group
    from mlsvc.vc.operation import latest_operation_keys

    ep = em.epochs.latest
    assert ep.tree is not None and ep.encryption_key is not None
    own = int(ep.own_leaf)
    batch = ep.tree.next_key_package_batch(own, [index])
    keys = latest_operation_keys(em.ecs, em.ecs, batch.sub_secrets(em.ecs, index))
    tbe = dinfo.DerivationInfoTBE(own if leaf_index is None else leaf_index, batch.generation,
                                  LeafNodeSource.KEY_PACKAGE, key_package_index=index)
    comp = dinfo.seal_tbe(em.ecs, ep.epoch_id, ep.encryption_key, keys.encryption[1], tbe)
    signature = (em.ecs.signature.generate_key_pair(SeededRandom(b"foreign"))
                 if foreign_signature else keys.signature)
    epoch_secret = (batch.group_creation_epoch_secret(em.ecs) if index == 0
                    else bytes(em.ecs.nh))
    g = Group.create(em.ecs, Identity.basic(em.vc.name, signature), em.group_config(),
                     group_id=group_id, encryption_key_pair=keys.encryption,
                     capabilities=em._leaf_capabilities(em.ecs.id),
                     leaf_extensions=(dinfo.leaf_extension(comp, None, em.vc.ext_codepoints,
                                                           em.vc.codepoints),),
                     epoch_secret=epoch_secret)
    return g.group_info()


def test_each_group_creation_check_names_its_check_id() -> None:
    """latest §5.4 on receipt of group creation material: no creator LeafNode in the
    tree, a creator LeafNode without DerivationInfo (VC-DERIVATION-INFO), a
    key_package_index other than 0 (VC-DERIVATION-INFO), a leaf_index that is no
    emulator (VC-SENDER-NOT-EMULATOR), a signature key other than the derived one
    (VC-REDERIVED-KEY-MISMATCH); nothing changes. The genuine material joins."""
    from dataclasses import replace

    from mlsvc.ext.components import AppDataDictionary
    from mlsvc.messages.group_info import GroupInfo
    from mlsvc.messages.leaf_node import RatchetTreeExtension

    w = latest_world(b"creation-checks")
    laptop, phone = w.em("laptop"), w.em("phone")
    carol = peer_group(w.ds, "carol", b"g8")
    plain = MLSMessage.decode(carol.group_info()).body
    assert isinstance(plain, GroupInfo)
    treeless = MLSMessage(replace(plain, extensions=tuple(
        e for e in plain.extensions
        if RatchetTreeExtension.find_in((e,)) is None))).encode()
    cases = [(treeless, "VC-DERIVATION-INFO"),
             (carol.group_info(), "VC-DERIVATION-INFO"),
             (_creation_material(laptop, b"c1", index=1), "VC-DERIVATION-INFO"),
             (_creation_material(laptop, b"c2", leaf_index=7), "VC-SENDER-NOT-EMULATOR"),
             (_creation_material(laptop, b"c3", foreign_signature=True),
              "VC-REDERIVED-KEY-MISMATCH")]
    before = snapshot(phone)
    for material, check_id in cases:
        with pytest.raises(ValidationError) as err:
            phone.follow_group_creation(material)
        assert err.value.check_id == check_id, check_id
        assert snapshot(phone) == before
    genuine = laptop.create_group(b"c4", extensions=(
        AppDataDictionary.of({0x1234: b"given"}).to_extension(),))
    received = phone.follow_group_creation(genuine)
    assert received.joined and received.group_id == b"c4"
    g = phone.groups[b"c4"].group
    assert g.epoch_authenticator == laptop.groups[b"c4"].group.epoch_authenticator
    assert g.context.extensions == (AppDataDictionary.of({0x1234: b"given"}).to_extension(),)


def test_a_latest_virtual_client_uses_its_moved_component_ids_everywhere() -> None:
    """latest §9 with a deployment's own IDs: one virtual_clients component 0x9001 and
    the profile record under 0x9004. The emulators join (the profile is read under
    0x9004), the LeafNodes of a commit, of KeyPackages and of a created group carry the
    DerivationInfo under 0x9001 only, and the siblings re-derive them there."""
    from mlsvc.ds import DeliveryService
    from mlsvc.vc.codepoints import VCCodePoints
    from mlsvc.virtual_client import VirtualClient

    from .vc_helpers import add_vc

    moved = VCCodePoints(0x9001, 0x9001, 0x9001, profile=0x9004)
    ds = DeliveryService()
    vc = VirtualClient.create(ds, VC, list(NAMES), seed=b"latest-moved", profile=LATEST,
                              codepoints=moved)
    bob = peer_group(ds, "bob", G1, seed=b"bob/latest-moved")
    add_vc(ds, vc, "bob", bob)
    w = World(ds, vc, bob)
    w.agree()
    phone = w.em("phone")
    xcp = phone.vc.ext_codepoints
    for name in NAMES:
        em = w.em(name)
        assert em.vc.codepoints == moved
        assert recorded_profile(em.emu.context.extensions, xcp, moved) is LATEST
        assert recorded_profile(em.emu.context.extensions, xcp) is Profile.DRAFT_00

    def moved_only(leaf: object) -> None:
        from mlsvc.messages.leaf_node import LeafNode

        assert isinstance(leaf, LeafNode)
        assert dinfo.find_in_leaf(leaf, xcp, moved) is not None
        assert dinfo.find_in_leaf(leaf, xcp) is None

    assert w.vc.commit("laptop", G1).accepted
    w.vc.sync()
    pump(ds, "bob", bob)
    w.agree()
    moved_only(vc_leaf_of(w))
    assert w.vc.upload_key_packages("tablet", 2).accepted
    w.vc.sync()
    assert len(phone.key_packages) == 2
    for held in phone.key_packages.values():
        moved_only(held.bundle.key_package.leaf_node)
    assert all(set(w.em(n).key_packages) == set(phone.key_packages) for n in NAMES)
    w.vc.create_group("laptop", b"g3")
    g = phone.groups[b"g3"].group
    moved_only(g.tree.leaf(g.own_leaf))
    assert len({w.em(n).groups[b"g3"].group.epoch_authenticator for n in NAMES}) == 1


def _gce_commit_followed(w: World, group_id: bytes, peer: object, peer_name: str) -> None:
    """RFC 9420 §12.1.7 in a higher-level group: the plain member `peer` proposes and
    commits a GroupContextExtensions with an app_data_dictionary; every emulator follows
    (each group's GroupConfig supports the dictionary)."""
    from mlsvc.ext.components import AppDataDictionary
    from mlsvc.group.group import Group

    assert isinstance(peer, Group)
    dictionary = AppDataDictionary.of({0x1234: b"hello"}).to_extension()
    assert w.ds.submit(peer_name, peer.propose_group_context_extensions((dictionary,))
                       ).accepted
    peer_commit(w.ds, peer_name, peer, peer.commit())
    w.vc.sync()
    w.agree(group_id, peer)
    for name in NAMES:
        assert w.em(name).groups[group_id].group.context.extensions == (dictionary,)


def test_a_group_joined_externally_under_latest_follows_a_gce_commit() -> None:
    """latest §5.5.2: the external joiner and the siblings that followed its external
    commit (`joined`) hold the group with the virtual client's GroupConfig."""
    w = latest_world(b"external-gce")
    carol = peer_group(w.ds, "carol", b"g2", seed=b"carol/external-gce")
    gi = w.ds.group_info(b"g2")
    laptop, phone = w.em("laptop"), w.em("phone")
    out = laptop.external_join(b"g2", gi)
    received = phone.follow_external_join(gi, out.message)
    assert received.joined and received.group_id == b"g2" and received.event is None
    del phone.groups[b"g2"]  # the loop below follows it again, from the DS
    laptop.refused(out)
    assert w.vc.external_join("laptop", b"g2").accepted
    w.vc.sync()
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)
    _gce_commit_followed(w, b"g2", carol, "carol")


def test_a_group_the_virtual_client_created_follows_a_gce_commit() -> None:
    """latest §5.4: the creator and the siblings that followed the creation material
    hold the group with the virtual client's GroupConfig."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.group import Group
    from mlsvc.group.key_package import create_key_package

    w = latest_world(b"created-gce")
    w.vc.create_group("laptop", b"g3")
    rng = SeededRandom(b"dave/created-gce")
    cs = w.em("laptop").ecs
    cfg = GroupConfig(rng=rng, supported_extensions=(6,))
    kp = create_key_package(cs, Identity.basic(b"dave", cs.signature.generate_key_pair(rng)),
                            cfg)
    w.ds.register_client("dave")
    w.ds.upload_key_packages("dave", [MLSMessage(kp.key_package).encode()])
    assert w.vc.commit("tablet", b"g3", [w.ds.fetch_key_package("dave")]).accepted
    w.vc.sync()
    [welcome] = list(w.ds.receive("dave"))
    dave = Group.join(welcome.message, kp, cfg)
    w.agree(b"g3", dave)
    _gce_commit_followed(w, b"g3", dave, "dave")


def test_recorded_profile_reads_the_dictionary_under_the_configured_extension_type() -> None:
    """The profile record is an entry of the app_data_dictionary found under the
    deployment's extension type (here 0xF0A6), not under the default one."""
    from mlsvc.ext.codepoints import CodePoints
    from mlsvc.ext.components import AppDataDictionary
    from mlsvc.vc.codepoints import LATEST_VC_CODEPOINTS

    xcp = CodePoints(app_data_dictionary=0xF0A6, app_data_update=0xF0A8,
                     app_components=0x0F01, safe_aad=0x0F02)
    entry = {LATEST_VC_CODEPOINTS.profile: b"latest"}
    moved = AppDataDictionary.of(entry).to_extension(xcp)
    assert moved.extension_type == 0xF0A6
    assert recorded_profile((moved,), xcp, LATEST_VC_CODEPOINTS) is LATEST
    assert recorded_profile((moved,), CodePoints(), LATEST_VC_CODEPOINTS) is Profile.DRAFT_00
    default = AppDataDictionary.of(entry).to_extension()
    assert recorded_profile((default,), xcp, LATEST_VC_CODEPOINTS) is Profile.DRAFT_00


def test_a_sibling_s_external_commit_delivered_as_a_message_is_a_state_error() -> None:
    """latest §5.5.2: a sibling's external commit reaches an emulator with its external
    join material (follow_external_join); handed to `deliver` as an ordinary message it
    is a StateError (use follow_external_join), not a refusal of the commit."""
    from mlsvc.errors import StateError

    w = latest_world(b"ext-commit-deliver")
    peer_group(w.ds, "carol", b"g2", seed=b"carol/ext-commit-deliver")
    gi = w.ds.group_info(b"g2")
    out = w.em("laptop").external_join(b"g2", gi)
    phone = w.em("phone")
    before = snapshot(phone)
    with pytest.raises(StateError) as err:
        phone.deliver(b"g2", out.message)
    assert not isinstance(err.value, ValidationError)
    assert snapshot(phone) == before
