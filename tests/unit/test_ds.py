"""The delivery service (impl/mlsvc/ds, docs/DS.md): total order with an epoch check,
fan-out to virtual clients' emulators (draft-00 §5.1), generation IDs (§5.9, P11, P20).

Every message here is a real MLS message built by the group engine; the DS reads only
its clear header. Client ids in the DS are labels: the DS cannot tell which leaf sent a
PrivateMessage, so a test may submit alice's ciphertext as "e1" acting for "V".
The builders (`World`, `world`) are shared with test_ds_directory.py and test_ds_persist.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import (
    REASONS,
    Consistency,
    Delivery,
    DeliveryError,
    DeliveryKind,
    DeliveryService,
    RatchetType,
    Submitted,
    UnacceptableMessage,
)
from mlsvc.errors import DecodeError, LocalError, ParameterError, RemoteError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.codepoints import ContentType
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.mls_message import MLSMessage

SUITE = 1


# --- builders (real messages from the engine) ------------------------------------------

def config(name: str, **kw: Any) -> GroupConfig:
    return GroupConfig(rng=SeededRandom(name.encode()), **kw)


def identity(name: str) -> Identity:
    cs = get_suite(SUITE)
    return Identity.basic(name.encode(), cs.signature.derive_key_pair(
        hashlib.sha512(name.encode()).digest()))


def bundle(name: str, **kw: Any) -> KeyPackageBundle:
    return create_key_package(get_suite(SUITE), identity(name), config(name, **kw))


def grow(prefix: str, n: int, **kw: Any) -> list[Group]:
    """A group of n members (epoch 1): the first adds the others in one commit."""
    first = Group.create(SUITE, identity(f"{prefix}0"), config(f"{prefix}0", **kw))
    bundles = [bundle(f"{prefix}{i}", **kw) for i in range(1, n)]
    for b in bundles:
        first.propose_add(b)
    out = first.commit()
    first.merge_pending_commit()
    if n == 1:
        return [first]
    assert out.welcome is not None
    others = [Group.join(out.welcome, b, config(f"{prefix}{i}j", **kw))
              for i, b in enumerate(bundles, start=1)]
    return [first, *others]


@dataclass(frozen=True)
class World:
    """Messages of one group G (PublicMessage handshake) at epochs 1 and 2, of a group H
    with encrypted handshake at epoch 1, and of a third group K at epoch 1."""

    g: bytes                 # group_id of G
    app_a: bytes             # epoch 1, PrivateMessage application
    app_a2: bytes            # epoch 1, PrivateMessage application
    app_b: bytes             # epoch 1, PrivateMessage application
    proposal_b: bytes        # epoch 1, PublicMessage proposal (Update)
    commit_a: bytes          # epoch 1, PublicMessage commit
    commit_b: bytes          # epoch 1, PublicMessage commit (concurrent with commit_a)
    app_a_e2: bytes          # epoch 2, PrivateMessage application
    external_commit: bytes   # epoch 2, PublicMessage commit by new_member_commit
    group_info_e1: bytes     # MLSMessage(GroupInfo) of epoch 1
    group_info_e2: bytes     # MLSMessage(GroupInfo) of epoch 2
    h: bytes                 # group_id of H (encrypt_handshake)
    h_app: bytes             # epoch 1, PrivateMessage application
    h_proposal: bytes        # epoch 1, PrivateMessage proposal
    h_commit: bytes          # epoch 1, PrivateMessage commit
    k: bytes                 # group_id of K
    k_app: bytes             # epoch 1, PrivateMessage application


def build_world() -> World:
    a, b = grow("g", 2)
    assert a.epoch == 1
    app_a, app_a2, app_b = a.encrypt(b"one"), a.encrypt(b"two"), b.encrypt(b"three")
    proposal_b = b.propose_update()
    info1 = a.group_info()
    commit_b = b.commit(include_pending=False).commit
    b.clear_pending_commit()
    out = a.commit(include_pending=False)
    a.merge_pending_commit()
    app_a_e2 = a.encrypt(b"epoch two")
    info2 = out.group_info
    _, external = Group.external_join(info2, identity("x"), config("x"))
    h1, h2 = grow("h", 2, encrypt_handshake=True)
    h_app, h_proposal = h1.encrypt(b"h"), h2.propose_update()
    h_commit = h1.commit(include_pending=False).commit
    (k1,) = grow("k", 1)
    return World(a.group_id, app_a, app_a2, app_b, proposal_b, out.commit, commit_b,
                 app_a_e2, external, info1, info2, h1.group_id, h_app, h_proposal, h_commit,
                 k1.group_id, k1.encrypt(b"k"))


@pytest.fixture(scope="session")
def world() -> World:
    return build_world()


def make_ds(w: World, consistency: Consistency = Consistency.STRONG) -> DeliveryService:
    """Clients alice, bob, carol, e1, e2, e3; vc V = (e1, e2); W = (e3,).
    G at epoch 1 with alice, bob, V; H and K at epoch 1 with alice, V."""
    ds = DeliveryService(consistency)
    for c in ("alice", "bob", "carol", "e1", "e2", "e3"):
        ds.register_client(c)
    ds.register_virtual_client("V", ["e1", "e2"])
    ds.register_virtual_client("W", ["e3"])
    ds.create_group(w.g, 1, ["alice", "bob", "V"])
    ds.create_group(w.h, 1, ["alice", "V"])
    ds.create_group(w.k, 1, ["alice", "V"])
    return ds


def accepted(s: Submitted) -> Delivery:
    assert s.accepted and s.reason is None and s.delivery is not None, s
    return s.delivery


def refused(s: Submitted, reason: str) -> None:
    assert (s.accepted, s.reason, s.group_seq, s.delivery) == (False, reason, None, None)


def drain(ds: DeliveryService, *clients: str) -> dict[str, list[int]]:
    return {c: [d.seq for d in ds.receive(c)] for c in clients}


def gen_id(n: int) -> bytes:
    return n.to_bytes(32, "big")


# --- the header the DS reads ------------------------------------------------------------

def test_world_messages_have_the_headers_the_tests_assume(world: World) -> None:
    def header(m: bytes) -> tuple[str, bytes, int, int]:
        body = MLSMessage.decode(m).body
        if isinstance(body, PrivateMessage):
            return "private", body.group_id, body.epoch, body.content_type
        assert isinstance(body, PublicMessage)
        c = body.content
        return f"public/{c.sender.sender_type.name}", c.group_id, c.epoch, c.content_type

    app, prop, commit = ContentType.APPLICATION, ContentType.PROPOSAL, ContentType.COMMIT
    assert header(world.app_a) == ("private", world.g, 1, app)
    assert header(world.proposal_b) == ("public/MEMBER", world.g, 1, prop)
    assert header(world.commit_a) == ("public/MEMBER", world.g, 1, commit)
    assert header(world.commit_b) == ("public/MEMBER", world.g, 1, commit)
    assert header(world.app_a_e2) == ("private", world.g, 2, app)
    assert header(world.external_commit) == ("public/NEW_MEMBER_COMMIT", world.g, 2, commit)
    assert header(world.h_app) == ("private", world.h, 1, app)
    assert header(world.h_proposal) == ("private", world.h, 1, prop)
    assert header(world.h_commit) == ("private", world.h, 1, commit)
    assert header(world.k_app) == ("private", world.k, 1, app)
    assert len({world.g, world.h, world.k}) == 3


# --- total order with an epoch check ---------------------------------------------------

def test_accepted_messages_get_consecutive_positions_and_kinds(world: World) -> None:
    ds = make_ds(world)
    d0 = accepted(ds.submit("alice", world.app_a))
    d1 = accepted(ds.submit("bob", world.proposal_b))
    d2 = accepted(ds.submit("alice", world.commit_a))
    assert [d.group_seq for d in (d0, d1, d2)] == [0, 1, 2]
    assert [d.seq for d in (d0, d1, d2)] == [0, 1, 2]
    assert [d.kind for d in (d0, d1, d2)] == [
        DeliveryKind.APPLICATION, DeliveryKind.HANDSHAKE, DeliveryKind.HANDSHAKE]
    assert (d2.group_id, d2.epoch, d2.sender, d2.message) == (
        world.g, 1, "alice", world.commit_a)
    assert ds.log(world.g) == (d0, d1, d2)
    assert ds.stats.accepted == 3


def test_first_commit_moves_the_epoch_second_commit_conflicts(world: World) -> None:
    ds = make_ds(world)
    assert ds.epoch(world.g) == 1
    s = ds.submit("alice", world.commit_a)
    assert accepted(s).epoch == 1 and s.group_seq == 0
    assert ds.epoch(world.g) == 2
    refused(ds.submit("bob", world.commit_b), "commit-conflict")
    assert ds.epoch(world.g) == 2 and len(ds.log(world.g)) == 1
    # in the other order bob wins and alice loses
    ds2 = make_ds(world)
    accepted(ds2.submit("bob", world.commit_b))
    refused(ds2.submit("alice", world.commit_a), "commit-conflict")
    assert ds2.stats.refused_by_reason == {"commit-conflict": 1}


def test_messages_off_the_current_epoch_are_stale(world: World) -> None:
    ds = make_ds(world)
    # epoch 2 before the commit: not the current epoch
    refused(ds.submit("alice", world.app_a_e2), "stale-epoch")
    accepted(ds.submit("alice", world.commit_a))
    # epoch 1 after it: application and proposal are stale
    refused(ds.submit("bob", world.app_b), "stale-epoch")
    refused(ds.submit("bob", world.proposal_b), "stale-epoch")
    accepted(ds.submit("alice", world.app_a_e2))
    assert ds.stats.refused_by_reason == {"stale-epoch": 3}
    assert ds.stats.refused == 3


def test_a_commit_for_an_epoch_the_ds_never_saw_closed_is_stale_not_conflict(
        world: World) -> None:
    ds = DeliveryService()
    ds.register_client("alice")
    ds.create_group(world.g, 5, ["alice"])
    refused(ds.submit("alice", world.commit_a), "stale-epoch")


def test_private_commit_moves_the_epoch_too(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("alice", world.h_commit))
    assert ds.epoch(world.h) == 2
    refused(ds.submit("alice", world.h_app), "stale-epoch")


def test_external_commit_accepted_from_a_non_member_who_becomes_one(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("alice", world.commit_a))
    drain(ds, "alice", "bob", "e1", "e2")
    d = accepted(ds.submit("carol", world.external_commit))
    assert d.kind == DeliveryKind.HANDSHAKE and d.epoch == 2
    assert ds.members(world.g) == ("alice", "bob", "V", "carol")
    assert ds.epoch(world.g) == 3
    assert drain(ds, "alice", "bob", "e1", "e2", "carol") == {
        "alice": [d.seq], "bob": [d.seq], "e1": [d.seq], "e2": [d.seq], "carol": []}


def test_external_commit_on_behalf_of_a_vc_makes_the_vc_a_member(world: World) -> None:
    ds = make_ds(world)
    ds.remove_member(world.g, "V")
    accepted(ds.submit("alice", world.commit_a))
    drain(ds, "alice", "bob", "e1", "e2")
    d = accepted(ds.submit("e1", world.external_commit, on_behalf_of="V"))
    assert d.on_behalf_of == "V"
    assert ds.members(world.g) == ("alice", "bob", "V")
    # e2 gets it as a sibling emulator even though V was no member when it was sent
    assert drain(ds, "alice", "bob", "e1", "e2") == {
        "alice": [d.seq], "bob": [d.seq], "e1": [], "e2": [d.seq]}


def test_external_commit_at_a_stale_epoch_is_refused_and_adds_nobody(world: World) -> None:
    ds = make_ds(world)
    refused(ds.submit("carol", world.external_commit), "stale-epoch")
    assert ds.members(world.g) == ("alice", "bob", "V")


def test_non_members_and_unknown_groups_are_refused(world: World) -> None:
    ds = make_ds(world)
    refused(ds.submit("carol", world.app_a), "not-a-member")
    refused(ds.submit("carol", world.commit_a), "not-a-member")
    # an emulator is not itself a member: it must say for which vc it acts
    refused(ds.submit("e1", world.app_a), "not-a-member")
    # acting for a vc it does not emulate
    refused(ds.submit("e3", world.app_a, on_behalf_of="V", generation_id=gen_id(1)),
            "not-an-emulator")
    # acting for a vc that is not a member
    refused(ds.submit("e3", world.app_a, on_behalf_of="W", generation_id=gen_id(1)),
            "not-a-member")
    ds.remove_member(world.g, "bob")
    refused(ds.submit("bob", world.app_b), "not-a-member")
    other = DeliveryService()
    other.register_client("alice")
    refused(other.submit("alice", world.app_a), "unknown-group")
    assert ds.log(world.g) == () and all(ds.pending(c) == 0 for c in ds.clients())
    assert ds.stats.refused_by_reason == {"not-a-member": 5, "not-an-emulator": 1}


def test_removed_emulator_may_no_longer_act_for_the_vc(world: World) -> None:
    ds = make_ds(world)
    ds.remove_emulator("V", "e2")
    refused(ds.submit("e2", world.app_a, on_behalf_of="V", generation_id=gen_id(1)),
            "not-an-emulator")
    d = accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    assert drain(ds, "alice", "bob", "e1", "e2") == {
        "alice": [d.seq], "bob": [d.seq], "e1": [], "e2": []}


# --- fan-out (draft-00 §5.1) -----------------------------------------------------------

def test_fan_out_expands_vcs_and_excludes_the_sender(world: World) -> None:
    ds = make_ds(world)
    d = accepted(ds.submit("alice", world.app_a))
    assert drain(ds, "alice", "bob", "carol", "e1", "e2", "e3") == {
        "alice": [], "bob": [d.seq], "carol": [], "e1": [d.seq], "e2": [d.seq], "e3": []}
    assert ds.stats.deliveries == 3


def test_fan_out_on_behalf_of_reaches_the_sibling_emulators_not_the_sender(
        world: World) -> None:
    ds = make_ds(world)
    ds.add_emulator("V", "e3")
    d = accepted(ds.submit("e2", world.app_a, on_behalf_of="V", generation_id=gen_id(7)))
    assert drain(ds, "alice", "bob", "carol", "e1", "e2", "e3") == {
        "alice": [d.seq], "bob": [d.seq], "carol": [], "e1": [d.seq], "e2": [], "e3": [d.seq]}


def test_nobody_receives_a_message_twice(world: World) -> None:
    ds = make_ds(world)
    # e1 is both a direct member and an emulator of the member V; e2 emulates V and W
    ds.add_member(world.g, "e1")
    ds.add_emulator("W", "e2")
    ds.add_member(world.g, "W")
    d = accepted(ds.submit("bob", world.app_b))
    assert drain(ds, "alice", "bob", "e1", "e2", "e3") == {
        "alice": [d.seq], "bob": [], "e1": [d.seq], "e2": [d.seq], "e3": [d.seq]}
    # the sender is excluded even when it is reached through a vc it emulates
    d2 = accepted(ds.submit("e2", world.app_a, on_behalf_of="V", generation_id=gen_id(3)))
    assert drain(ds, "alice", "bob", "e1", "e2", "e3") == {
        "alice": [d2.seq], "bob": [d2.seq], "e1": [d2.seq], "e2": [], "e3": [d2.seq]}


def test_vc_expansion_happens_at_delivery_time(world: World) -> None:
    ds = make_ds(world)
    d0 = accepted(ds.submit("alice", world.app_a))
    ds.add_emulator("V", "e3")
    d1 = accepted(ds.submit("alice", world.app_a2))
    assert drain(ds, "e1", "e3") == {"e1": [d0.seq, d1.seq], "e3": [d1.seq]}


def test_mailboxes_pop_in_order_with_limit_and_peek(world: World) -> None:
    ds = make_ds(world)
    seqs = [accepted(ds.submit("alice", m)).seq
            for m in (world.app_a, world.app_a2, world.commit_a)]
    assert ds.pending("bob") == 3
    peeked = ds.peek("bob")
    assert peeked is not None and peeked.seq == seqs[0]
    assert [d.seq for d in ds.receive("bob", limit=2)] == seqs[:2]
    assert ds.pending("bob") == 1
    assert [d.seq for d in ds.receive("bob", limit=5)] == seqs[2:]
    assert ds.peek("bob") is None and ds.receive("bob") == []
    assert ds.receive("alice", limit=0) == []
    with pytest.raises(ParameterError):
        ds.receive("bob", limit=-1)


def test_every_recipient_gets_the_same_bytes(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("bob", world.proposal_b))
    got = {c: ds.receive(c) for c in ("alice", "e1", "e2")}
    assert all(len(v) == 1 and v[0].message == world.proposal_b for v in got.values())


# --- generation IDs (draft-00 §5.9, P11, P20) ------------------------------------------

def test_strong_mode_refuses_a_generation_id_already_used_in_its_scope(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    before = ds.to_bytes(include_stats=False)
    verdict = ds.submit("e2", world.app_a2, on_behalf_of="V", generation_id=gen_id(1))
    refused(verdict, "generation-id-collision")
    assert verdict.check_id == "VC-GENERATION-ID-COLLISION"
    assert ds.to_bytes(include_stats=False) == before
    assert ds.stats.generation_id_collisions == 1
    # the loser re-encrypts at its next generation (P20): a fresh ID is accepted
    accepted(ds.submit("e2", world.app_a2, on_behalf_of="V", generation_id=gen_id(2)))
    recs = ds.generation_ids(world.g)
    assert [(r.epoch, r.ratchet_type, r.generation_id, r.sender) for r in recs] == [
        (1, RatchetType.APPLICATION, gen_id(1), "e1"), (1, RatchetType.APPLICATION, gen_id(2),
                                                         "e2")]


def test_same_generation_id_in_another_ratchet_type_is_accepted(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("e1", world.h_app, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("e2", world.h_proposal, on_behalf_of="V", generation_id=gen_id(1)))
    # the handshake scope now holds it: a private commit with it collides
    refused(ds.submit("e1", world.h_commit, on_behalf_of="V", generation_id=gen_id(1)),
            "generation-id-collision")
    assert [r.ratchet_type for r in ds.generation_ids(world.h)] == [
        RatchetType.APPLICATION, RatchetType.HANDSHAKE]


def test_same_generation_id_in_another_epoch_is_accepted(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("alice", world.commit_a))
    accepted(ds.submit("e1", world.app_a_e2, on_behalf_of="V", generation_id=gen_id(1)))
    assert [r.epoch for r in ds.generation_ids(world.g)] == [1, 2]


def test_same_generation_id_in_another_group_is_accepted(world: World) -> None:
    """P11: the ID has no group in it, so the DS scopes by group itself (and sees the
    same ID twice: it can link the virtual client's traffic across groups)."""
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(9)))
    accepted(ds.submit("e2", world.k_app, on_behalf_of="V", generation_id=gen_id(9)))
    assert [r.group_id for r in ds.generation_ids()] == [world.g, world.k]
    assert {r.generation_id for r in ds.generation_ids()} == {gen_id(9)}


def test_strong_mode_requires_the_id_from_an_emulator(world: World) -> None:
    ds = make_ds(world)
    before = ds.to_bytes(include_stats=False)
    verdict = ds.submit("e1", world.app_a, on_behalf_of="V")
    refused(verdict, "missing-generation-id")
    assert verdict.check_id == "VC-GENERATION-ID-MISSING"
    assert ds.to_bytes(include_stats=False) == before
    refused(ds.submit("e1", world.h_proposal, on_behalf_of="V"), "missing-generation-id")
    # an ordinary client needs none; nor does an emulator's PublicMessage
    accepted(ds.submit("alice", world.app_a))
    accepted(ds.submit("e1", world.proposal_b, on_behalf_of="V"))
    assert ds.generation_ids() == ()


def test_a_generation_id_from_an_ordinary_client_is_checked_too(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(4)))
    refused(ds.submit("alice", world.app_a2, generation_id=gen_id(4)),
            "generation-id-collision")


def test_eventual_mode_ignores_generation_ids(world: World) -> None:
    ds = make_ds(world, Consistency.EVENTUAL)
    assert ds.consistency == Consistency.EVENTUAL
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("e2", world.app_a2, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("e2", world.app_b, on_behalf_of="V"))  # not required either
    assert ds.generation_ids() == () and ds.stats.generation_id_collisions == 0
    # the total order and epoch check are the same as in strong mode
    accepted(ds.submit("alice", world.commit_a))
    refused(ds.submit("bob", world.commit_b), "commit-conflict")
    refused(ds.submit("bob", world.app_b), "stale-epoch")


def test_generation_id_shapes_that_are_misuse(world: World) -> None:
    ds = make_ds(world)
    before = ds.to_bytes()
    with pytest.raises(ParameterError):  # a PublicMessage has no secret-tree generation
        ds.submit("e1", world.proposal_b, on_behalf_of="V", generation_id=gen_id(1))
    with pytest.raises(ParameterError):
        ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=b"")
    assert ds.to_bytes() == before


def test_real_generation_ids_repeat_across_groups_under_p11(world: World) -> None:
    """With the draft-00 derivation (mlsvc.vc.generation_id), generation 0 of the
    application ratchet has the same ID in every group of the same emulation epoch: the
    DS accepts both (scoped by group) and its index shows the link (P11 privacy)."""
    from mlsvc.vc.codepoints import RatchetType as VcRatchetType
    from mlsvc.vc.generation_id import generation_id

    cs = get_suite(SUITE)
    secret = hashlib.sha256(b"generation_id_secret of one emulation epoch").digest()
    gid = generation_id(cs, secret, 0, VcRatchetType.APPLICATION)
    assert int(VcRatchetType.APPLICATION) == RatchetType.APPLICATION
    assert int(VcRatchetType.HANDSHAKE) == RatchetType.HANDSHAKE
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gid))
    accepted(ds.submit("e1", world.k_app, on_behalf_of="V", generation_id=gid))
    refused(ds.submit("e2", world.app_a2, on_behalf_of="V", generation_id=gid),
            "generation-id-collision")
    linked = [r for r in ds.generation_ids() if r.generation_id == gid]
    assert {r.group_id for r in linked} == {world.g, world.k}


# --- malformed input and refusals change nothing ---------------------------------------

@pytest.mark.parametrize("mangle", [
    lambda m: b"",
    lambda m: m[:-1],
    lambda m: m + b"\x00",
    lambda m: b"\x00\x02" + m[2:],      # version 2
    lambda m: m[:2] + b"\x00\x09" + m[4:],  # unknown wire format
])
def test_malformed_bytes_raise_decode_error_and_change_nothing(
        world: World, mangle: Any) -> None:
    ds = make_ds(world)
    accepted(ds.submit("alice", world.app_a))
    before, stats = ds.to_bytes(include_stats=False), ds.to_bytes()
    with pytest.raises(DecodeError):
        ds.submit("bob", mangle(world.commit_b))
    assert ds.to_bytes(include_stats=False) == before and ds.to_bytes() == stats


def test_wire_formats_other_than_public_and_private_are_refused_as_errors(
        world: World) -> None:
    ds = make_ds(world)
    before = ds.to_bytes()
    for m in (world.group_info_e1, MLSMessage(bundle("kp").key_package).encode()):
        with pytest.raises(UnacceptableMessage) as err:
            ds.submit("alice", m)
        assert err.value.code == "wrong-wire-format"
        assert isinstance(err.value, RemoteError)
    assert ds.to_bytes() == before


def test_every_refusal_leaves_the_state_unchanged(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("e1", world.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("alice", world.commit_a))
    attempts: list[tuple[tuple[str, bytes], dict[str, Any], str | None]] = [
        (("bob", world.commit_b), {}, "commit-conflict"),
        (("bob", world.app_b), {}, "stale-epoch"),
        (("carol", world.app_a_e2), {}, "not-a-member"),
        (("e3", world.app_a_e2), {"on_behalf_of": "V", "generation_id": gen_id(2)},
         "not-an-emulator"),
        (("e1", world.app_a_e2), {"on_behalf_of": "V"}, "missing-generation-id"),
        (("e1", world.h_app), {"on_behalf_of": "V", "generation_id": gen_id(1)}, None),
        (("e2", world.h_proposal), {"on_behalf_of": "V", "generation_id": gen_id(1)}, None),
        (("e2", world.h_app), {"on_behalf_of": "V", "generation_id": gen_id(1)},
         "generation-id-collision"),
    ]
    seen: set[str] = set()
    for args, kw, reason in attempts:
        before = ds.to_bytes(include_stats=False)
        s = ds.submit(*args, **kw)
        if reason is None:
            accepted(s)
            continue
        refused(s, reason)
        seen.add(reason)
        assert ds.to_bytes(include_stats=False) == before, reason
    assert sum(ds.stats.refused_by_reason.values()) == ds.stats.refused == 6
    assert seen | {"unknown-group"} == set(REASONS)


# --- API misuse ------------------------------------------------------------------------

def test_api_misuse_raises_delivery_errors(world: World) -> None:
    ds = make_ds(world)
    cases: list[tuple[Any, str]] = [
        (lambda: ds.register_client("alice"), "id-taken"),
        (lambda: ds.register_client("V"), "id-taken"),
        (lambda: ds.register_virtual_client("bob", []), "id-taken"),
        (lambda: ds.register_virtual_client("U", ["nobody"]), "unknown-client"),
        (lambda: ds.register_virtual_client("U", ["V"]), "not-a-client"),
        (lambda: ds.register_virtual_client("U", ["e1", "e1"]), "duplicate-emulator"),
        (lambda: ds.add_emulator("V", "e1"), "already-an-emulator"),
        (lambda: ds.add_emulator("nobody", "e1"), "unknown-virtual-client"),
        (lambda: ds.remove_emulator("V", "e3"), "not-an-emulator"),
        (lambda: ds.emulators("alice"), "unknown-virtual-client"),
        (lambda: ds.create_group(world.g, 0, []), "group-exists"),
        (lambda: ds.create_group(b"new", 0, ["nobody"]), "unknown-client"),
        (lambda: ds.create_group(b"new", 0, ["alice", "alice"]), "duplicate-member"),
        (lambda: ds.add_member(world.g, "alice"), "already-a-member"),
        (lambda: ds.add_member(world.g, "nobody"), "unknown-client"),
        (lambda: ds.remove_member(world.g, "carol"), "not-a-member"),
        (lambda: ds.members(b"nope"), "unknown-group"),
        (lambda: ds.epoch(b"nope"), "unknown-group"),
        (lambda: ds.log(b"nope"), "unknown-group"),
        (lambda: ds.submit("nobody", world.app_a), "unknown-client"),
        (lambda: ds.submit("V", world.app_a), "not-a-client"),
        (lambda: ds.submit("e1", world.app_a, on_behalf_of="e2"), "unknown-virtual-client"),
        (lambda: ds.receive("V"), "not-a-client"),
        (lambda: ds.pending("nobody"), "unknown-client"),
        (lambda: ds.peek("nobody"), "unknown-client"),
    ]
    before = ds.to_bytes()
    for call, code in cases:
        with pytest.raises(DeliveryError) as err:
            call()
        assert err.value.code == code, (code, err.value)
        assert isinstance(err.value, LocalError)
    assert ds.to_bytes() == before
    with pytest.raises(ParameterError):
        ds.register_client("")
    with pytest.raises(ParameterError):
        ds.create_group(b"new", -1, [])
    with pytest.raises(ParameterError):
        DeliveryService("strong")  # type: ignore[arg-type]


def test_registration_and_membership_accessors(world: World) -> None:
    ds = make_ds(world)
    assert ds.clients() == ("alice", "bob", "carol", "e1", "e2", "e3")
    assert ds.virtual_clients() == ("V", "W")
    assert ds.groups() == (world.g, world.h, world.k)
    assert ds.emulators("V") == ("e1", "e2")
    ds.add_emulator("V", "e3")
    ds.remove_emulator("V", "e1")
    assert ds.emulators("V") == ("e2", "e3")
    ds.add_member(world.g, "carol")
    ds.remove_member(world.g, "alice")
    assert ds.members(world.g) == ("bob", "V", "carol")
    ds.register_virtual_client("U", [])
    ds.add_member(world.g, "U")  # a vc with no emulator receives nothing, breaks nothing
    d = accepted(ds.submit("bob", world.app_b))
    assert drain(ds, "carol", "e2", "e3", "e1") == {
        "carol": [d.seq], "e2": [d.seq], "e3": [d.seq], "e1": []}


def test_ds_imports_no_group_engine_or_draft_code() -> None:
    """The DS knows wire messages and public metadata only (ARCHITECTURE.md)."""
    import ast
    from pathlib import Path

    import mlsvc.ds

    allowed = ("mlsvc.errors", "mlsvc.codec", "mlsvc.types", "mlsvc.checks",
               "mlsvc.crypto", "mlsvc.messages", "mlsvc.ds")
    root = Path(mlsvc.ds.__file__).parent
    files = sorted(root.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [])
            for name in names:
                if name.startswith("mlsvc"):
                    assert name.startswith(allowed), f"{path.name} imports {name}"
                else:
                    assert name.split(".")[0] in {"__future__", "collections", "dataclasses",
                                                  "enum", "typing"}, f"{path.name}: {name}"
