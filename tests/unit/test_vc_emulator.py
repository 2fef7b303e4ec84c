"""The emulators of one virtual client through the delivery service (draft-00 §5): any
emulator acts, every other one follows to the same epoch; races resolved by the DS
(P20, P22) lose nothing and leak nothing; the eventual mode; removal by a peer."""

from __future__ import annotations

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.ds import DeliveryKind
from mlsvc.errors import MLSError
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.messages.commit import Commit
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Remove, Update
from mlsvc.vc.emulator import Consistency, OutgoingKind
from mlsvc.virtual_client import Event
from tests.unit.vc_helpers import (
    CS,
    G1,
    NAMES,
    VC,
    ScriptedRandom,
    World,
    add_vc,
    peer_commit,
    peer_group,
    pump,
    world,
)


def leaf_nodes_on_the_wire(w: World, group_id: bytes) -> list[LeafNode]:
    """Every LeafNode in a commit path or Update the DS accepted for the group."""
    out: list[LeafNode] = []
    for d in w.ds.log(group_id):
        body = MLSMessage.decode(d.message).body
        if not isinstance(body, PublicMessage):
            continue
        content = body.content.content
        if isinstance(content, Commit) and content.path is not None:
            out.append(content.path.leaf_node)
        if isinstance(content, Update):
            out.append(content.leaf_node)
    return out


def vc_leaf(w: World, name: str = "phone", group_id: bytes = G1) -> LeafNode:
    g = w.em(name).groups[group_id].group
    leaf = g.tree.leaf(g.own_leaf)
    assert leaf is not None
    return leaf


# --- every emulator follows every other ---------------------------------------------------


@pytest.mark.parametrize("actor", NAMES)
def test_sibling_commit_and_update_lead_to_one_epoch(actor: str) -> None:
    w = world(seed=actor.encode())
    before = w.agree()
    assert w.vc.commit(actor, G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    after_commit = w.agree()
    assert after_commit != before
    # the leaf now carries keys derived by `actor`: every emulator holds its private key
    enc = vc_leaf(w).encryption_key
    for name in NAMES:
        assert vc_leaf(w, name).encryption_key == enc
    assert enc in {leaf.encryption_key for leaf in leaf_nodes_on_the_wire(w, G1)}
    # an Update from `actor`, committed by bob: every emulator adopts it
    assert w.vc.update(actor, G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    peer_commit(w.ds, "bob", w.bob, w.bob.commit())
    w.vc.sync()
    assert w.agree() != after_commit
    assert vc_leaf(w).encryption_key != enc
    # and every emulator can still read what the others send after it
    for sender in NAMES:
        assert w.vc.send(sender, G1, sender.encode()).accepted
        events = [e.received for e in w.vc.sync()]
        assert sorted(r.sibling_leaf for r in events if r.sibling_leaf is not None) == [
            NAMES.index(sender)] * 2
        [msg] = pump(w.ds, "bob", w.bob)
        assert isinstance(msg, ApplicationMessage) and msg.data == sender.encode()


def test_external_join_and_resync_lead_to_one_epoch() -> None:
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    assert w.vc.external_join("laptop", b"g2").accepted
    w.vc.sync()
    pump(w.ds, "carol", carol)
    w.agree(b"g2", carol)
    leaves_before = len(carol.members())
    # resync of G1 by tablet: the virtual client's leaf is replaced, never doubled (F7)
    old_leaf = vc_leaf(w)
    assert w.vc.external_join("tablet", G1).accepted
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert vc_leaf(w).encryption_key != old_leaf.encryption_key
    assert [leaf.credential for _, leaf in w.bob.members()].count(
        BasicCredential(VC.encode())) == 1
    assert len(carol.members()) == leaves_before
    # everybody still reads everybody in both groups
    for gid, peer, pname in ((G1, w.bob, "bob"), (b"g2", carol, "carol")):
        assert w.vc.send("phone", gid, b"after").accepted
        w.vc.sync()
        [msg] = pump(w.ds, pname, peer)
        assert isinstance(msg, ApplicationMessage) and msg.data == b"after"


def test_second_group_and_key_packages_of_several_uploaders() -> None:
    w = world()
    carol = peer_group(w.ds, "carol", b"g2")
    add_vc(w.ds, w.vc, "carol", carol, uploader="tablet")
    w.agree(b"g2", carol)
    w.agree()
    assert all(not em.key_packages for em in w.vc.emulators.values())


# --- races (P22, P20) -------------------------------------------------------------------------


def test_refused_concurrent_commit_is_retried_and_its_keys_never_appear() -> None:
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    w.vc.sync()
    out_p = phone.vc_commit(G1)
    out_l = laptop.vc_commit(G1)  # before hearing of phone's
    assert w.vc.submit("phone", out_p).accepted
    verdict = w.vc.submit("laptop", out_l)
    assert not verdict.accepted and verdict.reason == "commit-conflict"
    body = MLSMessage.decode(out_l.message).body
    assert isinstance(body, PublicMessage) and isinstance(body.content.content, Commit)
    assert body.content.content.path is not None
    refused_leaf = body.content.content.path.leaf_node
    assert w.vc.commit("laptop", G1).accepted  # sync, re-derive from the newest state
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    wire = leaf_nodes_on_the_wire(w, G1)
    keys = [leaf.encryption_key for leaf in wire]
    assert len(wire) == 2 and len(set(keys)) == len(keys)
    assert refused_leaf.encryption_key not in keys
    assert refused_leaf.signature_key not in {leaf.signature_key for leaf in wire}
    for d in w.ds.log(G1):
        assert refused_leaf.encryption_key not in d.message
    tree_keys = {leaf.encryption_key for _, leaf in w.bob.members()}
    assert refused_leaf.encryption_key not in tree_keys
    assert vc_leaf(w).encryption_key == keys[-1]


def test_refused_concurrent_emulation_commits_lose_no_key_package() -> None:
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    out_p = phone.create_key_packages(1)
    out_l = laptop.create_key_packages(1)
    assert w.vc.submit("phone", out_p).accepted
    assert not w.vc.submit("laptop", out_l).accepted
    assert not laptop.key_packages  # the refused attempt's KeyPackage is dropped
    assert w.vc.upload_key_packages("laptop", 1).accepted
    w.vc.sync()
    outstanding = set(w.ds.outstanding_key_packages(VC))
    assert len(outstanding) == 2
    for em in w.vc.emulators.values():
        assert set(em.key_packages) == outstanding
    for ref in outstanding:
        assert ref not in out_l.message


def test_strong_mode_generation_collision_loser_retries_and_reads_the_winner() -> None:
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    w.vc.sync()
    out_p = phone.send_private_message(G1, b"from phone")
    out_l = laptop.send_private_message(G1, b"from laptop")
    assert out_p.generation == out_l.generation
    assert out_p.generation_id == out_l.generation_id is not None
    assert w.vc.submit("phone", out_p).accepted
    verdict = w.vc.submit("laptop", out_l)
    assert not verdict.accepted and verdict.reason == "generation-id-collision"
    seen: list[Event] = []
    w.vc.listeners.append(seen.append)
    assert w.vc.send("laptop", G1, b"from laptop, again").accepted
    # the loser read the winner's message on the generation it had used itself
    [r] = [e.received for e in seen if e.emulator == "laptop"]
    assert isinstance(r.event, ApplicationMessage) and r.event.data == b"from phone"
    assert r.sibling_leaf == 0
    retry = w.vc.sent[-1][1]
    assert retry.generation == (out_p.generation or 0) + 1
    log = [d for d in w.ds.log(G1) if d.kind is DeliveryKind.APPLICATION]
    assert [d.sender for d in log] == ["phone", "laptop"]
    # everybody else reads both, in order, and attributes them
    events = {name: [e.received for e in w.vc.sync([name])] for name in ("phone", "tablet")}
    assert [r.event.data for r in events["tablet"]  # type: ignore[union-attr]
            ] == [b"from phone", b"from laptop, again"]
    assert [r.sibling_leaf for r in events["tablet"]] == [0, 1]
    assert [r.event.data for r in events["phone"]] == [  # type: ignore[union-attr]
        b"from laptop, again"]
    bob_read = pump(w.ds, "bob", w.bob)
    assert [m.data for m in bob_read] == [  # type: ignore[union-attr]
        b"from phone", b"from laptop, again"]


def test_loser_of_a_generation_race_reads_the_winners_message() -> None:
    w = world()
    phone, laptop = w.em("phone"), w.em("laptop")
    w.vc.sync()
    out_p = phone.send_private_message(G1, b"winner")
    out_l = laptop.send_private_message(G1, b"loser")
    assert w.vc.submit("phone", out_p).accepted
    assert not w.vc.submit("laptop", out_l).accepted
    [r] = [e.received for e in w.vc.sync(["laptop"])]
    assert isinstance(r.event, ApplicationMessage) and r.event.data == b"winner"
    assert r.sibling_leaf == 0


def test_eventual_mode_both_messages_accepted_and_siblings_read_both() -> None:
    w = world(consistency=Consistency.EVENTUAL)
    phone, laptop = w.em("phone"), w.em("laptop")
    w.vc.sync()
    out_p = phone.send_private_message(G1, b"from phone")
    out_l = laptop.send_private_message(G1, b"from laptop")
    assert out_p.generation == out_l.generation
    assert out_p.generation_id is None and out_l.generation_id is None
    assert out_p.nonce != out_l.nonce  # same key, the reuse guards differ (§5.8)
    assert w.vc.submit("phone", out_p).accepted
    assert w.vc.submit("laptop", out_l).accepted
    got = {name: [e.received for e in w.vc.sync([name])] for name in NAMES}
    assert [r.event.data for r in got["tablet"]] == [  # type: ignore[union-attr]
        b"from phone", b"from laptop"]
    assert [r.sibling_leaf for r in got["tablet"]] == [0, 1]
    assert [r.event.data for r in got["phone"]] == [b"from laptop"]  # type: ignore[union-attr]
    assert [r.event.data for r in got["laptop"]] == [b"from phone"]  # type: ignore[union-attr]
    # an ordinary member reads the first on that generation; the second is the loss P20
    # measures (its key is deleted after first use, RFC 9420 §9.2)
    [first, second] = w.ds.receive("bob")
    msg = w.bob.process(first.message)
    assert isinstance(msg, ApplicationMessage) and msg.data == b"from phone"
    with pytest.raises(MLSError):
        w.bob.process(second.message)


# --- removal by a peer -------------------------------------------------------------------------


def test_peer_removes_the_virtual_client() -> None:
    w = world()
    leaf = w.em("phone").groups[G1].group.own_leaf
    peer_commit(w.ds, "bob", w.bob, w.bob.commit([Remove(leaf)]))
    events = w.vc.sync()
    assert len(events) == len(NAMES)
    for e in events:
        assert isinstance(e.received.event, CommitApplied) and e.received.event.removed_self
    for em in w.vc.emulators.values():
        assert G1 not in em.groups
    assert VC not in w.ds.members(G1)
    assert w.ds.submit("bob", w.bob.encrypt(b"after")).accepted
    for name in NAMES:
        assert w.ds.pending(name) == 0
    # a removed virtual client can be added again from a fresh KeyPackage
    add_vc(w.ds, w.vc, "bob", w.bob, uploader="tablet")
    w.agree()


def test_key_package_of_the_virtual_client_carries_derived_keys() -> None:
    """A KeyPackage every emulator can re-create: announced refs equal uploaded refs
    (the DS computes them itself), the credential is the virtual client's."""
    ds_w = world()
    assert ds_w.vc.upload_key_packages("laptop", 3).accepted
    ds_w.vc.sync()
    kps = [MLSMessage.decode(ds_w.ds.fetch_key_package(VC)).body for _ in range(3)]
    for kp in kps:
        assert isinstance(kp, KeyPackage)
        assert kp.leaf_node.credential == BasicCredential(VC.encode())
        for em in ds_w.vc.emulators.values():
            held = em.key_packages[kp.ref(CS)]
            assert held.bundle.key_package == kp
    assert len({kp.init_key for kp in kps}) == 3  # type: ignore[union-attr]


def test_resampling_is_counted_by_the_deriving_emulator() -> None:
    """P3: a drawn `random` whose PPRF leaf is punctured is drawn again (counted)."""
    w = world()
    phone = w.em("phone")
    r, r2 = SeededRandom(b"again")(CS.nh), SeededRandom(b"other")(CS.nh)
    phone.rng = ScriptedRandom(phone.rng, [r, r, r2])
    assert w.vc.commit("phone", G1).accepted
    assert phone.stats.resamples == 0
    assert w.vc.commit("phone", G1).accepted
    assert phone.stats.resamples == 1
    assert isinstance(phone.rng, ScriptedRandom) and not phone.rng.script
    w.vc.sync()
    pump(w.ds, "bob", w.bob)
    w.agree()
    assert all(em.stats.collisions == 0 for em in w.vc.emulators.values())
    assert [o.kind for _, o, _ in w.vc.sent][-2:] == [OutgoingKind.COMMIT] * 2
