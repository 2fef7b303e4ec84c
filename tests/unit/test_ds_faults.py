"""The DS's fault layer (mlsvc.ds.faults) and refetch (DeliveryService.refetch,
welcomes_for): deliveries to the clients a FaultPolicy names are delayed, duplicated,
reordered across groups and dropped, deterministically from the seed; each group's own
order is kept; a client that refetches on a gap (and at quiescence) ends with exactly
the messages addressed to it, nothing lost and nothing extra.

Traffic is real MLS messages (tests/unit/test_ds.py's World) in four groups: G (alice,
bob, V), H and K (alice, V), and P which V joins by a Welcome; V = (e1, e2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from mlsvc.ds import (
    Delivery,
    DeliveryError,
    DeliveryKind,
    DeliveryService,
    FaultLayer,
    FaultPolicy,
)
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.group.group import Group
from mlsvc.messages.mls_message import MLSMessage
from tests.unit.test_ds import SUITE, World, accepted, bundle, config, identity, make_ds, world

__all__ = ["world"]  # the session fixture, shared with test_ds.py

FAULTY = ("e1", "e2")


@dataclass(frozen=True)
class Extra:
    """Group P: a Welcome for V's KeyPackage and an application message at epoch 1."""

    p: bytes
    key_package: bytes
    welcome: bytes
    p_app: bytes


@pytest.fixture(scope="module")
def extra() -> Extra:
    p = Group.create(SUITE, identity("faults-p"), config("faults-p"))
    kp = bundle("faults-kp")
    p.propose_add(kp)
    out = p.commit()
    p.merge_pending_commit()
    assert out.welcome is not None
    return Extra(p.group_id, MLSMessage(kp.key_package).encode(), out.welcome,
                 p.encrypt(b"p"))


def new_ds(w: World, x: Extra, policy: FaultPolicy | None) -> DeliveryService:
    """make_ds's clients and groups (with the fault layer), and group P."""
    ds = DeliveryService(faults=policy)
    for c in ("alice", "bob", "carol", "e1", "e2", "e3"):
        ds.register_client(c)
    ds.register_virtual_client("V", ["e1", "e2"])
    ds.register_virtual_client("W", ["e3"])
    ds.create_group(w.g, 1, ["alice", "bob", "V"])
    ds.create_group(w.h, 1, ["alice", "V"])
    ds.create_group(w.k, 1, ["alice", "V"])
    ds.upload_key_packages("V", [x.key_package])
    ds.fetch_key_package("V")
    ds.create_group(x.p, 1, ["alice"])
    return ds


def step(ds: DeliveryService, w: World, x: Extra, rng: random.Random,
         got: dict[str, list[Delivery]]) -> None:
    """One random request: a submission to G, H, K or P, a Welcome to P, or a receive."""
    r = rng.random()
    if r < 0.55:
        sender, msg = rng.choice([("alice", w.app_a), ("bob", w.app_b), ("alice", w.app_a2),
                                  ("bob", w.proposal_b), ("alice", w.h_app),
                                  ("alice", w.h_proposal), ("alice", w.k_app),
                                  ("alice", x.p_app)])
        s = ds.submit(sender, msg)
        assert s.accepted or (msg == x.p_app and s.reason == "not-a-member"), s
        if msg == x.p_app and not s.accepted:
            assert "V" not in ds.members(x.p)
    elif r < 0.6:
        ds.send_welcome("alice", x.p, x.welcome)
    else:
        c = rng.choice(["e1", "e2", "bob"])
        got.setdefault(c, []).extend(ds.receive(c, rng.randint(1, 3)))


def run(w: World, x: Extra, policy: FaultPolicy | None, seed: int, steps: int = 120
        ) -> tuple[DeliveryService, dict[str, list[Delivery]]]:
    ds = new_ds(w, x, policy)
    rng = random.Random(seed)
    got: dict[str, list[Delivery]] = {}
    ds.submit("alice", x.p_app)       # refused: V is not in P yet
    for _ in range(steps):
        step(ds, w, x, rng, got)
    for c in ("e1", "e2", "bob"):
        while ds.pending(c):          # pending > 0 always means receive hands something
            nxt = ds.peek(c)
            (d,) = ds.receive(c, 1)
            assert d == nxt
            got.setdefault(c, []).append(d)
        assert ds.peek(c) is None and ds.receive(c) == []
    return ds, got


def addressed(ds: DeliveryService, c: str) -> list[Delivery]:
    """Every delivery the DS addressed to c, recomputed from the log and Welcomes."""
    out = [d for g in ds.state.groups.values() for d, to in zip(g.log, g.recipients,
                                                               strict=True) if c in to]
    out += [d for d, to in zip(ds.state.welcomes, ds.state.welcome_recipients, strict=True)
            if c in to]
    return sorted(out, key=lambda d: d.seq)


def check_order(ds: DeliveryService, c: str, stream: list[Delivery]) -> None:
    """Per group, first hand-overs in group order, and a Welcome's first hand-over
    before its group's later messages; every item was addressed to c."""
    mine = {d.seq for d in addressed(ds, c)}
    seen: set[int] = set()
    last: dict[bytes, int] = {}
    for i, d in enumerate(stream):
        assert d.seq in mine, (c, d.seq)
        if d.seq in seen:
            continue                      # a duplicate
        seen.add(d.seq)
        if d.kind is DeliveryKind.WELCOME:
            assert all(e.seq < d.seq for e in stream[:i] if e.group_id == d.group_id)
        else:
            assert d.group_seq is not None
            assert d.group_seq > last.get(d.group_id, -1), (c, d.group_seq, last)
            last[d.group_id] = d.group_seq


MIXES: list[dict[str, Any]] = [
    dict(delay=0.3),
    dict(duplicate=0.3),
    dict(reorder=0.5),
    dict(drop=0.2),
    dict(delay=0.3, duplicate=0.2, reorder=0.4, drop=0.15),
    dict(delay=0.9, duplicate=0.9, reorder=0.9, drop=0.5, max_delay=6),
]


@pytest.mark.parametrize("mix", MIXES, ids=lambda m: ",".join(sorted(m)))
@pytest.mark.parametrize("seed", range(12))
def test_each_groups_order_is_kept_and_nothing_unaddressed_arrives(
        world: World, extra: Extra, mix: dict[str, Any], seed: int) -> None:
    policy = FaultPolicy(seed, clients=FAULTY, **mix)
    ds, got = run(world, extra, policy, seed)
    for c in FAULTY:
        check_order(ds, c, got.get(c, []))
    faults = ds.faults
    assert faults is not None
    # exact accounting: every addressed delivery was handed over once or dropped, plus
    # one extra hand-over per duplicate
    for c in FAULTY:
        firsts = {d.seq for d in got.get(c, [])}
        drops = {seq for who, seq in faults.dropped if who == c}
        assert firsts | drops == {d.seq for d in addressed(ds, c)}
        assert not firsts & drops
    handed = sum(len(got.get(c, [])) for c in FAULTY)
    assert handed == faults.stats.handed
    assert handed - sum(len({d.seq for d in got.get(c, [])}) for c in FAULTY) \
        == faults.stats.duplicated
    assert faults.stats.dropped == len(faults.dropped)
    # bob is not named: his mailbox is exact FIFO, everything addressed, once
    assert got["bob"] == addressed(ds, "bob")


class GapClient:
    """What a client does with group_seq: process each group's messages once and in
    order; on a gap, refetch from the last one processed; Welcomes likewise by seq."""

    def __init__(self, ds: DeliveryService, name: str) -> None:
        self.ds, self.name = ds, name
        self.last: dict[bytes, int] = {}
        self.processed: list[Delivery] = []
        self.welcomes: dict[int, Delivery] = {}
        self.refetches = 0

    def take(self, d: Delivery) -> None:
        if d.kind is DeliveryKind.WELCOME:
            self.welcomes.setdefault(d.seq, d)
            return
        assert d.group_seq is not None
        last = self.last.get(d.group_id, -1)
        if d.group_seq <= last:
            return                                      # a duplicate
        if d.group_seq > last + 1:
            self.catch_up(d.group_id)                   # a gap: something was dropped
            if d.group_seq <= self.last.get(d.group_id, -1):
                return
        self.processed.append(d)
        self.last[d.group_id] = d.group_seq

    def catch_up(self, group_id: bytes) -> None:
        self.refetches += 1
        for d in self.ds.refetch(self.name, group_id, self.last.get(group_id, -1)):
            self.processed.append(d)
            assert d.group_seq is not None
            self.last[group_id] = d.group_seq

    def quiesce(self) -> None:
        """Nothing pending: ask each group (the last messages may have been dropped)
        and the Welcomes."""
        for g in self.ds.groups():
            self.catch_up(g)
        for d in self.ds.welcomes_for(self.name, -1):
            self.welcomes.setdefault(d.seq, d)


@pytest.mark.parametrize("seed", range(16))
def test_drops_are_recovered_by_refetch_nothing_lost_nothing_extra(
        world: World, extra: Extra, seed: int) -> None:
    policy = FaultPolicy(seed, delay=0.3, duplicate=0.3, reorder=0.4, drop=0.25,
                         clients=FAULTY)
    ds = new_ds(world, extra, policy)
    rng = random.Random(1000 + seed)
    clients = {c: GapClient(ds, c) for c in FAULTY}
    for _ in range(150):
        got: dict[str, list[Delivery]] = {}
        step(ds, world, extra, rng, got)
        for c, items in got.items():
            if c in clients:
                for d in items:
                    clients[c].take(d)
    assert ds.faults is not None and ds.faults.stats.dropped > 0
    for c, client in clients.items():
        while ds.pending(c):
            client.take(ds.receive(c, 1)[0])
        client.quiesce()
        want = addressed(ds, c)
        assert sorted(client.processed, key=lambda d: d.seq) == [
            d for d in want if d.kind is not DeliveryKind.WELCOME]
        assert len(client.processed) == len({d.seq for d in client.processed})
        assert sorted(client.welcomes) == [d.seq for d in want
                                           if d.kind is DeliveryKind.WELCOME]
        for g in ds.groups():   # each group in order
            seqs = [d.group_seq or 0 for d in client.processed if d.group_id == g]
            assert seqs == sorted(seqs)


def inversions(stream: list[Delivery]) -> int:
    """Pairs handed over out of DS order (first hand-overs only)."""
    firsts: list[int] = []
    for d in stream:
        if d.seq not in firsts:
            firsts.append(d.seq)
    return sum(1 for i in range(len(firsts)) for j in range(i + 1, len(firsts))
               if firsts[i] > firsts[j])


def test_cross_group_reordering_happens_and_none_without_faults(
        world: World, extra: Extra) -> None:
    mixes: list[dict[str, Any]] = [dict(reorder=0.5), dict(delay=0.5)]
    for mix in mixes:
        total = 0
        for seed in range(4):
            ds, got = run(world, extra, FaultPolicy(seed, clients=FAULTY, **mix), seed)
            total += sum(inversions(got[c]) for c in FAULTY)
            for c in FAULTY:
                # every inversion is between two groups
                firsts = list(dict.fromkeys(d.seq for d in got[c]))
                by_seq = {d.seq: d for d in got[c]}
                for i, a in enumerate(firsts):
                    for b in firsts[i + 1:]:
                        if a > b:
                            assert by_seq[a].group_id != by_seq[b].group_id
        assert total > 0, mix
    ds, got = run(world, extra, None, 0)
    for c in ("e1", "e2", "bob"):
        assert got[c] == addressed(ds, c)   # no layer: exact FIFO
    ds, got = run(world, extra, FaultPolicy(0), 0)   # a layer with no faults
    for c in ("e1", "e2", "bob"):
        assert got[c] == addressed(ds, c)
    assert ds.faults is not None and ds.faults.stats.as_tuple()[:7] == (0,) * 7


def test_duplicates_and_delays_happen_and_are_counted(world: World, extra: Extra) -> None:
    ds, got = run(world, extra, FaultPolicy(7, delay=0.4, duplicate=0.4, clients=FAULTY), 7)
    f = ds.faults
    assert f is not None
    assert f.stats.delayed > 0 and f.stats.duplicated > 0 and f.stats.dropped == 0
    repeats = sum(len(got[c]) - len({d.seq for d in got[c]}) for c in FAULTY)
    assert repeats == f.stats.duplicated
    # a duplicate is the same object handed over again later, never before the original
    for c in FAULTY:
        for i, d in enumerate(got[c]):
            earlier = [e for e in got[c][:i] if e.seq == d.seq]
            assert all(e is d or e == d for e in earlier)
    # nothing is held past the end: the layer is empty after the drain
    assert not f.held and not f.copies


def test_welcomes_are_delayed_duplicated_dropped_and_refetched(
        world: World, extra: Extra) -> None:
    policy = FaultPolicy(3, delay=0.5, duplicate=0.5, drop=0.4, clients=FAULTY)
    ds = new_ds(world, extra, policy)
    sent = [ds.send_welcome("alice", extra.p, extra.welcome) for _ in range(30)]
    assert all(r == ("e1", "e2") for r in sent)
    f = ds.faults
    assert f is not None
    assert f.stats.welcomes_dropped > 0 and f.stats.welcomes_delayed > 0
    got = {c: ds.receive(c) for c in FAULTY}
    assert f.stats.welcomes_duplicated > 0
    assert (f.stats.welcomes_dropped, f.stats.welcomes_delayed, f.stats.welcomes_duplicated) \
        == (f.stats.dropped, f.stats.delayed, f.stats.duplicated)
    for c in FAULTY:
        again = ds.welcomes_for(c, -1)
        assert [d.seq for d in again] == [d.seq for d in ds.welcomes()]
        assert {d.seq for d in got[c]} | {s for w, s in f.dropped if w == c} \
            == {d.seq for d in again}
        assert ds.welcomes_for(c, again[9].seq) == again[10:]


def test_the_same_seed_gives_the_same_sequence(world: World, extra: Extra) -> None:
    mix: dict[str, Any] = dict(delay=0.3, duplicate=0.3, reorder=0.4, drop=0.2)
    a = run(world, extra, FaultPolicy(5, clients=FAULTY, **mix), 11)
    b = run(world, extra, FaultPolicy(5, clients=FAULTY, **mix), 11)
    c = run(world, extra, FaultPolicy(6, clients=FAULTY, **mix), 11)
    assert a[1] == b[1]
    assert a[0].faults is not None and b[0].faults is not None and c[0].faults is not None
    assert a[0].faults.to_bytes() == b[0].faults.to_bytes()
    assert a[0].to_bytes() == b[0].to_bytes()
    assert a[1] != c[1]


def test_batching_does_not_change_what_is_handed_over(world: World, extra: Extra) -> None:
    """The clock counts hand-overs, so receive(c, n) equals n receive(c, 1)."""
    policy = FaultPolicy(9, delay=0.5, duplicate=0.4, reorder=0.5, drop=0.1, clients=FAULTY)
    streams = []
    for batch in (1, 3, None):
        ds = new_ds(world, extra, policy)
        for i in range(40):
            ds.submit("alice", [world.app_a, world.h_app, world.k_app][i % 3])
        out: list[Delivery] = []
        while ds.pending("e1"):
            out += ds.receive("e1", batch)
        streams.append(out)
    assert streams[0] == streams[1] == streams[2]
    assert len(streams[0]) > 0


def test_faults_apply_only_to_the_named_clients(world: World, extra: Extra) -> None:
    ds, got = run(world, extra, FaultPolicy(2, drop=0.5, reorder=0.9, clients=("e1",)), 2)
    assert got["e2"] == addressed(ds, "e2") and got["bob"] == addressed(ds, "bob")
    assert ds.faults is not None
    assert {who for who, _ in ds.faults.dropped} == {"e1"}
    # default: every client
    ds, got = run(world, extra, FaultPolicy(2, drop=0.5), 2)
    assert ds.faults is not None
    assert {who for who, _ in ds.faults.dropped} == {"alice", "bob", "e1", "e2"}


# --- refetch and welcomes_for -----------------------------------------------------------

def test_refetch_answers_with_the_recipients_at_acceptance(world: World) -> None:
    ds = make_ds(world)
    d0 = accepted(ds.submit("alice", world.app_a))        # bob, e1, e2
    ds.remove_emulator("V", "e2")
    d1 = accepted(ds.submit("bob", world.app_b))           # alice, e1
    ds.add_member(world.g, "carol")
    d2 = accepted(ds.submit("alice", world.app_a2))        # bob, e1, carol
    assert ds.refetch("e1", world.g, -1) == [d0, d1, d2]
    assert ds.refetch("e2", world.g, -1) == [d0]           # was a recipient then
    assert ds.refetch("carol", world.g, -1) == [d2]        # joined later
    assert ds.refetch("alice", world.g, -1) == [d1]        # never its own
    assert ds.refetch("bob", world.g, 0) == [d2]
    assert ds.refetch("e1", world.g, 2) == [] and ds.refetch("e1", world.g, 99) == []
    assert ds.refetch("e1", world.h, -1) == []


def test_refetch_reads_only_and_refuses_wrong_use(world: World) -> None:
    ds = make_ds(world)
    accepted(ds.submit("alice", world.app_a))
    before = ds.to_bytes()
    assert len(ds.refetch("e1", world.g, -1)) == 1
    assert ds.pending("e1") == 1            # the mailbox is untouched
    with pytest.raises(DeliveryError) as e:
        ds.refetch("zed", world.g, -1)
    assert e.value.code == "unknown-client"
    with pytest.raises(DeliveryError) as e:
        ds.refetch("V", world.g, -1)
    assert e.value.code == "not-a-client"
    with pytest.raises(DeliveryError) as e:
        ds.refetch("e1", b"no such group", -1)
    assert e.value.code == "unknown-group"
    with pytest.raises(DeliveryError) as e:
        ds.welcomes_for("zed", -1)
    assert e.value.code == "unknown-client"
    for bad in (-2, True, "0", None):
        with pytest.raises(ParameterError):
            ds.refetch("e1", world.g, bad)  # type: ignore[arg-type]
        with pytest.raises(ParameterError):
            ds.welcomes_for("e1", bad)  # type: ignore[arg-type]
    assert ds.to_bytes() == before


def test_refetch_survives_the_snapshot(world: World, extra: Extra) -> None:
    ds, _ = run(world, extra, None, 4)
    twin = DeliveryService.from_bytes(ds.to_bytes())
    for c in ("e1", "e2", "bob", "alice"):
        for g in ds.groups():
            assert twin.refetch(c, g, -1) == ds.refetch(c, g, -1)
        assert twin.welcomes_for(c, -1) == ds.welcomes_for(c, -1)


# --- the policy and the layer's snapshot ------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(seed=-1), dict(seed=1 << 64), dict(seed=1, delay=1.5), dict(seed=1, drop=-0.1),
    dict(seed=1, reorder="x"), dict(seed=1, max_delay=0), dict(seed=1, clients=("",)),
])
def test_a_bad_policy_is_a_parameter_error(kw: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        FaultPolicy(**kw)  # type: ignore[arg-type]


def test_a_ds_takes_only_a_fault_policy() -> None:
    with pytest.raises(ParameterError):
        DeliveryService(faults=0.5)  # type: ignore[arg-type]


def test_the_fault_layer_snapshot_round_trips_and_rejects_garbage(
        world: World, extra: Extra) -> None:
    policy = FaultPolicy(8, delay=0.1 + 0.2, duplicate=1 / 3, reorder=0.5, drop=0.2,
                         clients=FAULTY, max_delay=5)
    ds = new_ds(world, extra, policy)
    rng = random.Random(8)
    for _ in range(80):
        step(ds, world, extra, rng, {})
    f = ds.faults
    assert f is not None and (f.held or f.copies)
    data = f.to_bytes()
    back = FaultLayer.from_bytes(data)
    assert back == f and back.to_bytes() == data and back.policy == policy
    for bad in (b"", data[:-1], data + b"\x00", b"mlsvc-xx" + data[8:],
                data[:8] + b"\x00\x02" + data[10:]):
        with pytest.raises(DecodeError):
            FaultLayer.from_bytes(bad)
