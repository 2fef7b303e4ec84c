"""Random request sequences against the delivery service (seeded walks, and Hypothesis
choosing the seed and length), with every rule restated independently of the DS's code
and checked after each step."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.ds import REASONS, Consistency, DeliveryKind, DeliveryService, RatchetType
from mlsvc.ds.wire import ratchet_type_of, read_header
from mlsvc.messages.codepoints import ContentType, WireFormat
from tests.unit.test_ds import World, build_world, make_ds

WORLD: World = build_world()
MESSAGES = [WORLD.app_a, WORLD.app_a2, WORLD.app_b, WORLD.proposal_b, WORLD.commit_a,
            WORLD.commit_b, WORLD.app_a_e2, WORLD.external_commit, WORLD.h_app,
            WORLD.h_proposal, WORLD.h_commit, WORLD.k_app]
CLIENTS = ["alice", "bob", "carol", "e1", "e2", "e3"]
# weighted toward members and V's emulators, so that most steps reach the later rules
ACTORS: list[tuple[str, str | None]] = [
    *[(c, None) for c in CLIENTS], ("e3", "V"), *[("e3", "W")] * 3,
    *[("alice", None), ("e1", "V"), ("e2", "V")] * 4]

GENERATIONS: list[int | None] = [None, 0, 0, 0, 1]
SEEDS = range(12)


@dataclass(frozen=True)
class Submit:
    message: bytes
    sender: str
    vc: str | None
    generation: int | None


@dataclass(frozen=True)
class Receive:
    client: str


@dataclass(frozen=True)
class ToggleEmulator:
    vc: str
    client: str


Step = Submit | Receive | ToggleEmulator


def random_steps(seed: int, n: int = 120) -> list[Step]:
    """A seeded walk: mostly submissions, some mailbox reads and emulator changes."""
    rnd = random.Random(seed)
    out: list[Step] = []
    for _ in range(n):
        x = rnd.random()
        if x < 0.75:
            out.append(Submit(rnd.choice(MESSAGES), *rnd.choice(ACTORS),
                              rnd.choice(GENERATIONS)))
        elif x < 0.95:
            out.append(Receive(rnd.choice(CLIENTS)))
        else:
            out.append(ToggleEmulator(rnd.choice(["V", "W"]), rnd.choice(CLIENTS)))
    return out


def expected_recipients(ds: DeliveryService, group_id: bytes, sender: str,
                        vc: str | None) -> set[str]:
    out: set[str] = set()
    for m in ds.members(group_id):
        out |= set(ds.emulators(m)) if m in ds.virtual_clients() else {m}
    if vc is not None:
        out |= set(ds.emulators(vc))
    return out - {sender}


@dataclass
class Walk:
    ds: DeliveryService
    vc_external_joins: int = 0  # accepted external commits by a vc that was no member


def run(consistency: Consistency, steps: list[Step], v_in_g: bool = True) -> Walk:
    """Play `steps`, checking every rule after each. With `v_in_g` False, V starts
    outside G (and can join it by external commit)."""
    ds = make_ds(WORLD, consistency)
    if not v_in_g:
        ds.remove_member(WORLD.g, "V")
    ds.add_emulator("W", "carol")  # W = (e3, carol): a non-member vc with siblings
    walk = Walk(ds)
    accepted_commits = {g: 0 for g in ds.groups()}
    inbox: dict[str, list[int]] = {c: [] for c in CLIENTS}
    for s in steps:
        if isinstance(s, Receive):
            assert [d.seq for d in ds.receive(s.client)] == inbox[s.client]
            inbox[s.client] = []
            continue
        if isinstance(s, ToggleEmulator):
            if s.client in ds.emulators(s.vc):
                ds.remove_emulator(s.vc, s.client)
            else:
                ds.add_emulator(s.vc, s.client)
            continue
        message, sender, vc, gen = s.message, s.sender, s.vc, s.generation
        h = read_header(message)
        gid = None if gen is None or h.wire_format != WireFormat.MLS_PRIVATE_MESSAGE \
            else bytes([gen]) * 32
        epoch_before = ds.epoch(h.group_id)
        was_member = (vc or sender) in ds.members(h.group_id)
        expected = expected_recipients(ds, h.group_id, sender, vc)
        before = ds.to_bytes(include_stats=False)
        r = ds.submit(sender, message, on_behalf_of=vc, generation_id=gid)
        if not r.accepted:
            assert r.reason is not None and ds.to_bytes(include_stats=False) == before
            continue
        d = r.delivery
        assert d is not None
        # the epoch check, and a commit moves the epoch by one
        assert h.epoch == epoch_before
        assert ds.epoch(h.group_id) == epoch_before + (h.content_type == ContentType.COMMIT)
        accepted_commits[h.group_id] += h.content_type == ContentType.COMMIT
        # membership, or an external commit that grants it
        assert was_member or h.is_external_commit
        walk.vc_external_joins += vc is not None and not was_member
        assert (vc or sender) in ds.members(h.group_id)
        # fan-out exactly
        got = {c for c in CLIENTS if ds.state.mailboxes[c][-1:] == [d]}
        assert got == expected
        for c in got:
            inbox[c].append(d.seq)
        assert d.kind == (DeliveryKind.APPLICATION if h.content_type == ContentType.APPLICATION
                          else DeliveryKind.HANDSHAKE)
        # strong mode: an emulator's PrivateMessage has an ID
        if (consistency == Consistency.STRONG and vc is not None
                and h.wire_format == WireFormat.MLS_PRIVATE_MESSAGE):
            assert gid is not None
    # global invariants
    for g in ds.groups():
        log = ds.log(g)
        assert [d.group_seq for d in log] == list(range(len(log)))
        assert ds.epoch(g) == 1 + accepted_commits[g]
    seqs = [d.seq for g in ds.groups() for d in ds.log(g)]
    assert len(set(seqs)) == len(seqs)
    scopes = [r.scope for r in ds.generation_ids()]
    assert len(set(scopes)) == len(scopes)
    if consistency == Consistency.EVENTUAL:
        assert scopes == []
    for rec in ds.generation_ids():
        (d,) = [x for x in ds.log(rec.group_id) if x.seq == rec.seq]
        assert rec.ratchet_type == ratchet_type_of(read_header(d.message).content_type)
        assert rec.ratchet_type in (RatchetType.APPLICATION, RatchetType.HANDSHAKE)
    return walk


@pytest.mark.parametrize("consistency", list(Consistency))
@pytest.mark.parametrize("seed", SEEDS)
def test_random_walks_keep_the_invariants(consistency: Consistency, seed: int) -> None:
    run(consistency, random_steps(seed), v_in_g=seed % 2 == 0)


def test_the_random_walks_reach_every_rule() -> None:
    """The walks above are worth something only if they hit each refusal."""
    reasons: dict[Consistency, set[str]] = {c: set() for c in Consistency}
    vc_joins = 0
    for c in Consistency:
        for seed in SEEDS:
            walk = run(c, random_steps(seed), v_in_g=seed % 2 == 0)
            reasons[c] |= set(walk.ds.stats.refused_by_reason)
            vc_joins += walk.vc_external_joins
    assert vc_joins > 0  # the sibling fan-out to a vc that is not yet a member
    assert reasons[Consistency.STRONG] == set(REASONS) - {"unknown-group"}
    assert reasons[Consistency.EVENTUAL] == set(REASONS) - {
        "unknown-group", "generation-id-collision", "missing-generation-id"}


@given(st.sampled_from(list(Consistency)), st.integers(0, 2**32 - 1),
       st.integers(1, 60), st.booleans())
def test_any_walk_keeps_the_invariants(consistency: Consistency, seed: int, n: int,
                                       v_in_g: bool) -> None:
    run(consistency, random_steps(seed, n), v_in_g)
