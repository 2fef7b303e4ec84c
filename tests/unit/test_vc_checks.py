"""Every named check of the virtual-client layer (VC-* in mlsvc.checks, and the engine's
CM-SIBLING-EXTERNAL-INIT) made to fire through the path a hostile or broken input takes:
a sibling's message replaced on its way from the DS by one a corrupt emulator signed
(same epoch, same leaf, keys it chose), a tampered emulation Commit, a peer's Welcome for
a KeyPackage nobody announced, a lagging sibling. Each test then shows

- the emulator's state is unchanged (vc_helpers.snapshot: the emulation group and every
  higher-level group serialized whole, the PPRF states and Q7 entries of every emulation
  epoch, the KeyPackages, the expected joins), and
- the genuine message is still accepted afterwards, ending in agreement with the peers
  (nothing was lost to the forgery)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.ds import DeliveryKind
from mlsvc.errors import ValidationError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.serialize import save
from mlsvc.messages.commit import Commit
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.types import LeafIndex
from mlsvc.vc import derivation as dinfo
from mlsvc.vc.actions import ExternalJoin, KeyPackageInfo, KeyPackageUpload, VirtualClientAction
from mlsvc.vc.emulator import Emulator, HigherGroup
from mlsvc.vc.epoch import EmulationEpoch
from mlsvc.vc.operation import (
    OperationKeys,
    operation_keys,
    plan_derivation,
    plan_rederivation,
    pprf_leaf,
)
from mlsvc.vc.reuse_guard import make_reuse_guard
from tests.unit.vc_helpers import (
    CS,
    G1,
    VC,
    ScriptedRandom,
    action_items,
    add_vc,
    colliding_randoms,
    copy_group,
    derivation_extension,
    forged_emulation_commit,
    handle,
    peer_commit,
    peer_group,
    pump,
    snapshot,
    vc_identity,
    world,
)

# --- forged LeafNodes from the virtual client's own leaf (§5.3) -----------------------------

Forgery = Callable[[Emulator], tuple[tuple[bytes, bytes], tuple[bytes, bytes], Any]]


def _fresh(em: Emulator) -> tuple[EmulationEpoch, bytes, OperationKeys]:
    """A derivation the forger computes without puncturing anything: its keys are the
    ones every sibling would re-derive from (epoch, own leaf, random)."""
    ep = em.epochs.latest
    d = plan_derivation(CS, ep, SeededRandom(b"forger"))
    return ep, d.random, operation_keys(CS, CS, d)


def _sealed(em: Emulator, enc: bytes, **kw: Any) -> Any:
    ep, random, _ = _fresh(em)
    args: dict[str, Any] = {"leaf_index": int(ep.own_leaf), "random": random}
    args.update(kw)
    return (derivation_extension(em, enc, **args),)


def _derived(em: Emulator, ext: Callable[[Emulator, bytes], Any]
             ) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes], Any]:
    _, _, keys = _fresh(em)
    return keys.encryption, keys.signature, ext(em, keys.encryption[1])


FORGERIES: dict[str, Forgery] = {
    # no DerivationInfo at all
    "no-derivation-info": lambda em: _derived(em, lambda em, enc: ()),
    # the previous leaf's DerivationInfo kept: bound (P6/Q1) to the old encryption_key
    "stale-derivation-info": lambda em: _derived(em, lambda em, enc: None),
    # ciphertext altered
    "flipped-ciphertext": lambda em: _derived(em, lambda em, enc: _sealed(
        em, enc, ciphertext=lambda c: bytes([c[0] ^ 1]) + c[1:])),
    # an epoch_id no emulator holds (sealed with it as AAD, so only the epoch is wrong)
    "unknown-epoch": lambda em: _derived(em, lambda em, enc: _sealed(
        em, enc, epoch_id=b"\x5a" * CS.nh)),
    # random of 16 bytes, not Kdf.Nh
    "short-random": lambda em: _derived(em, lambda em, enc: _sealed(
        em, enc, random=b"\x01" * 16)),
    # leaf 3 of a 4-leaf emulation tree is blank: no emulator derived this
    "not-an-emulator": lambda em: _derived(em, lambda em, enc: _sealed(em, enc, leaf_index=3)),
    # a correct DerivationInfo for a LeafNode whose encryption_key was not derived
    "foreign-encryption-key": lambda em: (
        CS.kem.derive_key_pair(b"foreign"), _fresh(em)[2].signature,
        _sealed(em, CS.kem.derive_key_pair(b"foreign")[1])),
    # derived encryption key, signature key of the forger's choosing
    "foreign-signature-key": lambda em: (
        _fresh(em)[2].encryption, CS.signature.generate_key_pair(SeededRandom(b"sig")),
        _sealed(em, _fresh(em)[2].encryption[1])),
}


def _forge(em: Emulator, kind: str, forgery: Forgery) -> bytes:
    """The corrupt emulator's Commit or Update from its private copy of the group (same
    epoch, same leaf, signed with the leaf's signature key every emulator holds)."""
    g = copy_group(em.groups[G1].group)
    enc, sig, exts = forgery(em)
    _, _, keys = _fresh(em)
    if kind == "commit":
        return g.commit(force_path=True, path_secret=keys.path_secret,
                        encryption_key_pair=enc, identity=vc_identity(em, sig),
                        leaf_extensions=exts).commit
    return g.propose_update(encryption_key_pair=enc, identity=vc_identity(em, sig),
                            leaf_extensions=exts)


@pytest.mark.parametrize("kind", ["commit", "update"])
@pytest.mark.parametrize(("forgery", "check_id"), [
    ("no-derivation-info", "VC-DERIVATION-INFO"),
    ("stale-derivation-info", "VC-DERIVATION-INFO"),
    ("flipped-ciphertext", "VC-DERIVATION-INFO"),
    ("unknown-epoch", "VC-EPOCH-UNKNOWN"),
    ("short-random", "VC-RANDOM-LENGTH"),
    ("not-an-emulator", "VC-SENDER-NOT-EMULATOR"),
    ("foreign-encryption-key", "VC-REDERIVED-KEY-MISMATCH"),
    ("foreign-signature-key", "VC-REDERIVED-KEY-MISMATCH"),
])
def test_forged_sibling_leaf_is_rejected_and_changes_nothing(kind: str, forgery: str,
                                                              check_id: str) -> None:
    w = world()
    tablet, laptop = w.em("tablet"), w.em("laptop")
    forged = _forge(tablet, kind, FORGERIES[forgery])
    if kind == "commit":
        assert w.vc.commit("phone", G1).accepted
    else:
        assert w.vc.update("phone", G1).accepted
    [genuine] = w.ds.receive("laptop")
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(G1, forged)
    assert err.value.check_id == check_id
    assert snapshot(laptop) == before
    # nothing lost: the genuine message is accepted and every party agrees
    handle(w.vc, "laptop", genuine)
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    if kind == "update":
        peer_commit(w.ds, "bob", w.bob, w.bob.commit())
        w.vc.sync()
    w.agree()
    assert snapshot(laptop) != before


def test_the_forged_leaf_is_refused_by_every_sibling_not_only_one() -> None:
    """A corrupt emulator's commit accepted by the DS (no genuine one): every other
    emulator refuses it with the same check and keeps its state."""
    w = world()
    tablet = w.em("tablet")
    forged = _forge(tablet, "commit", FORGERIES["foreign-encryption-key"])
    assert w.ds.submit("tablet", forged, on_behalf_of=VC).accepted
    for name in ("phone", "laptop"):
        em = w.em(name)
        before = snapshot(em)
        [d] = w.ds.receive(name)
        with pytest.raises(ValidationError) as err:
            handle(w.vc, name, d)
        assert err.value.check_id == "VC-REDERIVED-KEY-MISMATCH"
        assert snapshot(em) == before
    # the ordinary member cannot tell: it follows the forged commit
    assert isinstance(pump(w.ds, "bob", w.bob)[0], CommitApplied)


# --- VC-EPOCH-DELETED: a lagging sibling derives from an epoch outside the window (P19) ----


@pytest.mark.parametrize(("referenced", "check_id"), [
    (True, "VC-EPOCH-DELETED"),  # held for the reuse guard, derivation secrets gone
    (False, "VC-EPOCH-UNKNOWN"),  # nothing referenced it: deleted whole
])
def test_derivation_from_an_epoch_outside_the_window_is_refused_then_repaired(
        referenced: bool, check_id: str) -> None:
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    if referenced:  # the virtual client's G1 leaf comes from the latest epoch
        assert w.vc.commit("tablet", G1).accepted
        w.vc.sync()
        pump(w.ds, "bob", w.bob)
    stale = laptop.epochs.latest.epoch
    # phone moves the emulation group two epochs on (R = 1); laptop hears nothing of it
    assert w.vc.emulation_commit("phone").accepted
    assert w.vc.emulation_commit("phone").accepted
    assert phone.emu.epoch == stale + 2
    if referenced:
        assert not phone.epochs.epochs[stale].can_derive  # P19: derivation secrets dropped
    else:
        assert stale not in phone.epochs.epochs
    # laptop commits in G1 from its latest (stale) epoch; the DS accepts it (G1's epoch)
    assert w.vc.submit("laptop", laptop.vc_commit(G1)).accepted
    for name in ("phone", "tablet"):
        em = w.em(name)
        for d in w.ds.receive(name):
            if d.group_id != G1:
                handle(w.vc, name, d)
                continue
            before = snapshot(em)
            with pytest.raises(ValidationError) as err:
                handle(w.vc, name, d)
            assert err.value.check_id == check_id
            assert snapshot(em) == before
    # the repair of P19: phone resyncs G1 by an announced external join
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    assert w.vc.external_join("phone", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert [leaf.credential for _, leaf in w.bob.members()].count(
        BasicCredential(VC.encode())) == 1  # one leaf for the virtual client (F7)


# --- forged emulation Commits (§5.5: the action travels as SafeAAD) -------------------------


def _kpu(em: Emulator, epoch: int | None, info: Callable[[Emulator], KeyPackageInfo],
         epoch_id: bytes | None = None) -> dict[int, bytes]:
    eid = epoch_id if epoch_id is not None else (
        em.epochs.epochs[epoch].epoch_id if epoch is not None else em.epochs.latest.epoch_id)
    return action_items(em, VirtualClientAction(KeyPackageUpload(eid, (info(em),))))


def _info(random: bytes = b"\x33" * 32, ref: bytes = b"\x00" * 32) -> Callable[
        [Emulator], KeyPackageInfo]:
    return lambda em: KeyPackageInfo(ref, random)


EMULATION_FORGERIES: dict[str, Callable[[Emulator], dict[int, bytes]]] = {
    "unannounced-item": lambda em: {0x9999: b"not announced", **action_items(
        em, VirtualClientAction(ExternalJoin(b"x")))},
    "wrong-ref": lambda em: _kpu(em, None, _info()),
    "previous-epoch": lambda em: _kpu(em, em.emu.epoch - 1, _info()),
    "unknown-epoch": lambda em: _kpu(em, None, _info(), epoch_id=b"\x77" * 32),
    "deleted-epoch": lambda em: _kpu(em, em.emu.epoch - 2, _info()),
    "short-random": lambda em: _kpu(em, None, _info(random=b"\x33" * 31)),
}


@pytest.mark.parametrize(("forgery", "check_id"), [
    ("unannounced-item", "VC-ACTION-UNANNOUNCED"),
    ("wrong-ref", "VC-KPU-UNKNOWN-REF"),
    ("previous-epoch", "VC-EPOCH-UNKNOWN"),
    ("unknown-epoch", "VC-EPOCH-UNKNOWN"),
    ("deleted-epoch", "VC-EPOCH-DELETED"),
    ("short-random", "VC-RANDOM-LENGTH"),
])
def test_forged_key_package_upload_is_rejected_and_changes_nothing(forgery: str,
                                                                   check_id: str) -> None:
    w = world()
    assert w.vc.emulation_commit("tablet").accepted  # epochs k-2 (referenced), k-1, k
    w.vc.sync()
    phone, laptop = w.em("phone"), w.em("laptop")
    assert laptop.epochs.epochs[laptop.emu.epoch - 2].pprf is None
    forged = forged_emulation_commit(phone, EMULATION_FORGERIES[forgery](phone))
    assert w.vc.upload_key_packages("phone", 2).accepted
    [genuine] = w.ds.receive("laptop")
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(genuine.group_id, forged)
    assert err.value.check_id == check_id
    assert snapshot(laptop) == before
    handle(w.vc, "laptop", genuine)
    assert set(laptop.key_packages) == set(phone.key_packages)
    assert set(laptop.key_packages) == set(w.ds.outstanding_key_packages(VC))
    assert laptop.emu.epoch_authenticator == phone.emu.epoch_authenticator


def test_forged_key_package_upload_refused_by_a_kpu_of_another_derivation() -> None:
    """A KeyPackageInfo whose ref is a real KeyPackage of the virtual client, paired with
    another random: the ref is not the one that random derives."""
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    assert not phone.key_packages  # the first upload was used by bob's Welcome
    assert w.vc.upload_key_packages("phone", 1).accepted
    w.vc.sync()
    [ref] = phone.key_packages
    forged = forged_emulation_commit(phone, _kpu(phone, None, _info(ref=ref)))
    assert w.vc.upload_key_packages("phone", 1).accepted
    [genuine] = w.ds.receive("laptop")
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(genuine.group_id, forged)
    assert err.value.check_id == "VC-KPU-UNKNOWN-REF"
    assert snapshot(laptop) == before
    handle(w.vc, "laptop", genuine)
    assert set(laptop.key_packages) == set(phone.key_packages)


# --- VC-PPRF-COLLISION: two emulators land on one 32-bit PPRF leaf (Q7, F5) -----------------


def test_two_emulators_on_one_pprf_leaf_the_later_message_is_a_collision() -> None:
    """phone (commit in G1) and tablet (commit in G2) derive in the same emulation epoch
    with `random`s whose HashInputs select the same PPRF leaf: whoever hears one first
    refuses the other (Q7), counts it (F5), and keeps its state."""
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    add_vc(w.ds, w.vc, "carol", carol, uploader="laptop")
    phone, laptop, tablet = w.em("phone"), w.em("laptop"), w.em("tablet")
    li_phone, li_tablet = int(phone.epochs.latest.own_leaf), int(tablet.epochs.latest.own_leaf)
    r_phone, r_tablet = colliding_randoms(li_phone, li_tablet)
    x = pprf_leaf(CS, li_phone, r_phone)
    assert x == pprf_leaf(CS, li_tablet, r_tablet)
    phone.rng = ScriptedRandom(phone.rng, [r_phone])
    tablet.rng = ScriptedRandom(tablet.rng, [r_tablet])
    assert w.vc.submit("phone", phone.vc_commit(G1)).accepted
    assert w.vc.submit("tablet", tablet.vc_commit(b"g2")).accepted
    for em in (phone, tablet):
        assert isinstance(em.rng, ScriptedRandom) and not em.rng.script
    # laptop: phone's commit first (it punctures x for (phone, r_phone)), then tablet's
    d_phone, d_tablet = w.ds.receive("laptop")
    assert (d_phone.group_id, d_tablet.group_id) == (G1, b"g2")
    handle(w.vc, "laptop", d_phone)
    kept = laptop.epochs.latest.retained[x]
    assert (kept.leaf_index, kept.random) == (li_phone, r_phone)
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        handle(w.vc, "laptop", d_tablet)
    assert err.value.check_id == "VC-PPRF-COLLISION"
    assert laptop.stats.collisions == 1
    assert snapshot(laptop) == before
    # tablet punctured x for its own operation: phone's commit is its collision
    [d] = w.ds.receive("tablet")
    before = snapshot(tablet)
    with pytest.raises(ValidationError) as err:
        handle(w.vc, "tablet", d)
    assert err.value.check_id == "VC-PPRF-COLLISION"
    assert snapshot(tablet) == before


# --- VC-SUITE-KDF (Q3) --------------------------------------------------------------------


def test_sibling_external_join_into_a_group_of_another_kdf_is_refused() -> None:
    """A corrupt tablet announces an ExternalJoin into a P-521/SHA-512 group (Kdf.Nh 64,
    the emulation group's is 32) and joins it with a LeafNode carrying a valid
    DerivationInfo: its siblings cannot derive keys of that suite and refuse."""
    w = world()
    carol = peer_group(w.ds, "carol", b"g5", suite=5)
    tablet, phone = w.em("tablet"), w.em("phone")
    cs5 = carol.cipher_suite
    assert cs5.nh != CS.nh
    w.vc.sync()
    # step one through the public API: the ExternalJoin Commit (no suite check on this
    # path: a corrupt emulator does not call external_join)
    out = tablet.emulation_commit(VirtualClientAction(ExternalJoin(b"g5")))
    assert w.ds.submit("tablet", out.message).accepted
    tablet.accepted(out)
    # step two by hand: an external commit with suite-5 keys and a DerivationInfo
    enc = cs5.kem.derive_key_pair(b"enc5")
    ext = _sealed(tablet, enc[1])
    _, commit = Group.external_join(
        w.ds.group_info(b"g5"), vc_identity(tablet, cs5.signature.generate_key_pair(
            SeededRandom(b"sig5"))), tablet.group_config(), encryption_key_pair=enc,
        capabilities=tablet._leaf_capabilities(5), leaf_extensions=ext)
    assert w.ds.submit("tablet", commit, on_behalf_of=VC).accepted
    announce, join = w.ds.receive("phone")
    handle(w.vc, "phone", announce)
    assert b"g5" in phone.expected_joins
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        handle(w.vc, "phone", join)
    assert err.value.check_id == "VC-SUITE-KDF"
    assert snapshot(phone) == before


def test_local_requests_for_another_kdf_are_refused_before_any_state_changes() -> None:
    w = world()
    peer_group(w.ds, "carol", b"g5", suite=5)
    phone = w.em("phone")
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        phone.create_key_packages(1, group_suite=5)
    assert err.value.check_id == "VC-SUITE-KDF"
    assert snapshot(phone) == before
    with pytest.raises(ValidationError) as err:
        w.vc.external_join("phone", b"g5")
    assert err.value.check_id == "VC-SUITE-KDF"
    assert snapshot(phone) == before
    assert w.ds.pending("laptop") == 0  # nothing was announced
    # suite 3 (ChaCha20Poly1305, SHA-256) has the emulation group's KDF: accepted
    assert w.vc.upload_key_packages("phone", 1, group_suite=3).accepted


# --- VC-WELCOME-UNANNOUNCED (§5.5.1) --------------------------------------------------------


def test_welcome_for_a_key_package_nobody_announced_is_refused() -> None:
    """A hostile party uploads a KeyPackage in the virtual client's name (it carries the
    virtual client's credential but no emulator derived it); bob adds it and the DS
    routes the Welcome to every emulator. Then bob adds a genuine one."""
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    phone = w.em("phone")
    assert w.vc.upload_key_packages("phone", 1).accepted
    w.vc.sync()
    rogue = create_key_package(CS, Identity.basic(VC.encode(), CS.signature.generate_key_pair(
        SeededRandom(b"rogue"))), GroupConfig(rng=SeededRandom(b"rogue")))
    w.ds.upload_key_packages(VC, [MLSMessage(rogue.key_package).encode()])
    genuine_kp = w.ds.fetch_key_package(VC)
    rogue_kp = w.ds.fetch_key_package(VC)
    assert MLSMessage.decode(rogue_kp).body == rogue.key_package
    carol.propose_add(rogue.key_package)
    peer_commit(w.ds, "carol", carol, carol.commit())
    for name, em in w.vc.emulators.items():
        [d] = w.ds.receive(name)
        before = snapshot(em)
        with pytest.raises(ValidationError) as err:
            handle(w.vc, name, d)
        assert err.value.check_id == "VC-WELCOME-UNANNOUNCED"
        assert snapshot(em) == before
        assert b"g2" not in em.groups
    # nothing lost: the announced KeyPackage still joins every emulator
    carol.propose_add(MLSMessage.decode(genuine_kp).body)  # type: ignore[arg-type]
    peer_commit(w.ds, "carol", carol, carol.commit())
    for name in w.vc.emulators:
        # the rogue Welcome made the virtual client a member at the DS, so the commit
        # adding it reaches its emulators before their Welcome: nothing to do with it
        commit, welcome = w.ds.receive(name)
        assert commit.kind is DeliveryKind.HANDSHAKE and welcome.kind is DeliveryKind.WELCOME
        assert handle(w.vc, name, welcome).received.joined
    w.agree(b"g2", carol)
    assert not phone.key_packages


# --- VC-EXTERNAL-JOIN-UNANNOUNCED (§5.5.2) --------------------------------------------------


def _external_commit(em: Emulator, group_id: bytes, group_info: bytes,
                     remove_prior: bool, seed: bytes | None = None) -> bytes:
    """A corrupt emulator's external commit with correctly derived keys (a fresh
    derivation, nothing punctured) but no ExternalJoin before it."""
    ep = em.epochs.latest
    d = plan_derivation(CS, ep, SeededRandom(b"unannounced"))
    keys = operation_keys(CS, CS, d)
    ext = derivation_extension(em, keys.encryption[1], leaf_index=d.leaf_index,
                               random=d.random)
    prior = em.groups[group_id].group.own_leaf if remove_prior else None
    _, commit = Group.external_join(
        group_info, vc_identity(em, keys.signature), em.group_config(),
        remove_prior=prior, encryption_key_pair=keys.encryption,
        path_secret=keys.path_secret, capabilities=em._leaf_capabilities(1),
        leaf_extensions=(ext,),
        external_init_seed=keys.external_init_seed if seed is None else seed)
    return commit


def test_unannounced_resync_is_refused_not_taken_for_a_removal() -> None:
    """laptop's resync of G1 (an external commit replacing the virtual client's leaf)
    without an ExternalJoin. It used to be applied as a removal: every emulator dropped
    G1 and the DS unsubscribed the virtual client."""
    w = world()
    tablet = w.em("tablet")
    forged = _external_commit(w.em("laptop"), G1, w.ds.group_info(G1), remove_prior=True)
    assert w.vc.commit("phone", G1).accepted
    [genuine] = w.ds.receive("tablet")
    before = snapshot(tablet)
    with pytest.raises(ValidationError) as err:
        handle(w.vc, "tablet", dataclasses.replace(genuine, message=forged))
    assert err.value.check_id == "VC-EXTERNAL-JOIN-UNANNOUNCED"
    assert snapshot(tablet) == before
    assert VC in w.ds.members(G1)
    handle(w.vc, "tablet", genuine)
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()


def test_unannounced_join_into_a_new_group_is_refused() -> None:
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    tablet = w.em("tablet")
    forged = _external_commit(tablet, b"g2", w.ds.group_info(b"g2"), remove_prior=False)
    assert w.ds.submit("tablet", forged, on_behalf_of=VC).accepted  # fanned out to the vc
    for name in ("phone", "laptop"):
        em = w.em(name)
        [d] = w.ds.receive(name)
        before = snapshot(em)
        with pytest.raises(ValidationError) as err:
            handle(w.vc, name, d)
        assert err.value.check_id == "VC-EXTERNAL-JOIN-UNANNOUNCED"
        assert snapshot(em) == before
        with pytest.raises(ValidationError) as err:
            em.follow_external_join(w.ds.group_info(b"g2"), forged)
        assert err.value.check_id == "VC-EXTERNAL-JOIN-UNANNOUNCED"
        assert snapshot(em) == before
    # an announced join afterwards is followed by every emulator
    pump(w.ds, "carol", carol)
    w.ds.publish_group_info(b"g2", carol.group_info())
    assert w.vc.external_join("laptop", b"g2").accepted
    w.vc.sync()
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)


# --- CM-SIBLING-EXTERNAL-INIT (P17) ---------------------------------------------------------


def test_sibling_external_commit_with_another_external_init_is_refused() -> None:
    """The genuine external commit of laptop's announced join, and a copy a corrupt
    tablet re-made from the same derivation with an ExternalInit of its own seed (every
    key and the DerivationInfo are right; only the KEM output is not the derived one)."""
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    gi = w.ds.group_info(b"g2")
    assert w.vc.external_join("laptop", b"g2").accepted
    tablet, phone = w.em("tablet"), w.em("phone")
    w.vc.sync(["tablet"])
    genuine_commit = w.ds.log(b"g2")[-1].message
    body = MLSMessage.decode(genuine_commit).body
    assert isinstance(body, PublicMessage) and isinstance(body.content.content, Commit)
    path = body.content.content.path
    assert path is not None
    leaf = path.leaf_node
    comp = dinfo.find_in_leaf(leaf)
    assert comp is not None
    ep = tablet.epochs.by_id(comp.epoch_id)
    assert ep.encryption_key is not None
    tbe = dinfo.open_info(CS, comp, ep.encryption_key, leaf.encryption_key)
    keys = operation_keys(CS, CS, plan_rederivation(CS, ep, tbe.leaf_index, tbe.random))
    _, forged = Group.external_join(
        gi, vc_identity(tablet, keys.signature), tablet.group_config(),
        encryption_key_pair=keys.encryption, path_secret=keys.path_secret,
        capabilities=leaf.capabilities, leaf_extensions=leaf.extensions,
        external_init_seed=b"\x07" * CS.nh)
    announce, join = w.ds.receive("phone")
    handle(w.vc, "phone", announce)
    before = snapshot(phone)
    with pytest.raises(ValidationError) as err:
        handle(w.vc, "phone", dataclasses.replace(join, message=forged))
    assert err.value.check_id == "CM-SIBLING-EXTERNAL-INIT"
    assert snapshot(phone) == before
    handle(w.vc, "phone", join)
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)


# --- VC-SEND-BEFORE-ROTATION (P9) -----------------------------------------------------------


def test_emulator_that_was_no_member_of_the_leafs_epoch_may_not_send() -> None:
    """No message reaches this check: it guards a send. The public API cannot add an
    emulator to a virtual client that is in groups (NewEmulatorClientState, P13, is not
    implemented), so the test builds what such a transfer would give a new emulator
    "desk" (emulation leaf 3, blank in the epoch G1's leaf comes from): the group state
    and that epoch's reference data."""
    w = world()
    phone = w.em("phone")
    hg = phone.groups[G1]
    ep = phone.epochs.by_id(hg.active.epoch_id)
    assert 3 not in ep.roster
    desk = Emulator(b"desk", Identity.basic(b"desk", CS.signature.generate_key_pair(
        SeededRandom(b"desk"))), phone.vc, SeededRandom(b"desk"))
    desk.groups[G1] = HigherGroup(copy_group(hg.group), hg.active)
    desk.epochs.add(dataclasses.replace(ep, own_leaf=LeafIndex(3), pprf=None,
                                        encryption_key=None, retained={}))
    saved = save(desk.groups[G1].group)
    with pytest.raises(ValidationError) as err:
        desk.send_private_message(G1, b"too early")
    assert err.value.check_id == "VC-SEND-BEFORE-ROTATION"
    assert save(desk.groups[G1].group) == saved and not desk.pending
    # the same state, held by an emulator of that epoch, sends
    assert w.vc.send("phone", G1, b"fine").accepted


# --- VC-RG-1 through the emulator (§5.8) ----------------------------------------------------


def test_sibling_message_whose_reuse_guard_names_no_emulator_is_refused() -> None:
    """A copy of phone's message on the same generation whose reuse guard decodes to
    emulation leaf 3 (blank). The refusal must not burn the generation's key: the genuine
    message on that generation is read afterwards and attributed to phone."""
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    hg = phone.groups[G1]
    ep = phone.epochs.by_id(hg.active.epoch_id)
    forged = copy_group(hg.group).encrypt(
        b"forged", reuse_guard=lambda nonce, generation: make_reuse_guard(
            CS, hg.active.leaf_node_secret, nonce, LeafIndex(3), ep.leaf_count,
            SeededRandom(b"rg")))
    assert w.vc.send("phone", G1, b"genuine").accepted
    [genuine] = w.ds.receive("laptop")
    before = snapshot(laptop)
    with pytest.raises(ValidationError) as err:
        laptop.deliver(G1, forged)
    assert err.value.check_id == "VC-RG-1"
    assert snapshot(laptop) == before
    r = handle(w.vc, "laptop", genuine).received
    assert isinstance(r.event, ApplicationMessage) and r.event.data == b"genuine"
    assert r.sibling_leaf == int(ep.own_leaf) == 0
    [event] = pump(w.ds, "bob", w.bob)
    assert isinstance(event, ApplicationMessage) and event.data == b"genuine"
