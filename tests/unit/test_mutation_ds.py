"""Tests written to kill mutants of impl/mlsvc/ds that the other DS tests left alive
(docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.ds import Consistency, DeliveryService
from mlsvc.ds.errors import DeliveryError, UnacceptableMessage
from mlsvc.ds.faults import FaultLayer, FaultPolicy
from mlsvc.ds.persist import (
    _GENID,
    _LOG,
    _WELCOME,
    STATE_KEY,
    SavedMarks,
    _encode_entry,
    encode_snapshot,
    load_records,
    state_records,
)
from mlsvc.ds.state import Delivery, DeliveryKind, DSState, GenerationIdRecord, GroupRecord
from mlsvc.ds.wire import RatchetType, ratchet_type_of
from mlsvc.errors import DecodeError, LocalError, ParameterError, RemoteError, StateError
from mlsvc.messages.codepoints import ContentType
from mlsvc.store import MemoryStore
from tests.unit.test_ds import World, accepted, gen_id, make_ds, world
from tests.unit.test_ds_persist import busy_ds

__all__ = ["world"]  # the session fixture of test_ds.py


@pytest.mark.parametrize("cls, base", [(DeliveryError, StateError),
                                       (UnacceptableMessage, RemoteError)])
def test_ds_errors_keep_code_and_detail(cls: type[DeliveryError | UnacceptableMessage],
                                        base: type[Exception]) -> None:
    err = cls("some-code", "what went wrong")
    assert isinstance(err, base)
    assert err.code == "some-code"
    assert err.detail == "what went wrong"
    assert str(err) == "[some-code] what went wrong"
    assert isinstance(DeliveryError("c", "d"), LocalError)


def test_ratchet_type_follows_the_content_type() -> None:
    assert ratchet_type_of(ContentType.APPLICATION) is RatchetType.APPLICATION
    assert ratchet_type_of(ContentType.PROPOSAL) is RatchetType.HANDSHAKE
    assert ratchet_type_of(ContentType.COMMIT) is RatchetType.HANDSHAKE
    assert (int(RatchetType.APPLICATION), int(RatchetType.HANDSHAKE)) == (1, 2)


# --- ds/persist.py: the store layout ------------------------------------------------------


def _state_only(state: DSState) -> MemoryStore:
    store = MemoryStore()
    store.write({STATE_KEY: encode_snapshot(state, None)})
    return store


_D = Delivery(0, DeliveryKind.WELCOME, b"g", None, None, "alice", b"welcome bytes")


@pytest.mark.parametrize("full", ["welcomes", "generation_ids", "log", "group_infos"])
def test_a_full_snapshot_under_ds_state_is_refused(full: str) -> None:
    """ds/state holds the snapshot without its growing parts; one that carries any of
    them (each alone here) is not the store layout."""
    s = DSState(Consistency.STRONG, next_seq=1)
    g = GroupRecord(b"g", 0, ["alice"])
    s.groups[b"g"] = g
    if full == "welcomes":
        s.welcomes.append(_D)
        s.welcome_recipients.append(["alice"])
    elif full == "generation_ids":
        s.generation_ids.append(GenerationIdRecord(b"g", 0, 1, b"\x01" * 4, 0, "alice", None))
    elif full == "log":
        g.log.append(Delivery(0, DeliveryKind.HANDSHAKE, b"g", 0, 0, "alice", b"m"))
        g.recipients.append(["alice"])
    else:
        g.group_infos[0] = b"group info"
    with pytest.raises(DecodeError):
        load_records(_state_only(s))
    # the same state without the growing part loads
    empty = DSState(Consistency.STRONG, groups={b"g": GroupRecord(b"g", 0, ["alice"])})
    assert load_records(_state_only(empty))[0] == empty


def _saved(ds: DeliveryService) -> MemoryStore:
    store = MemoryStore()
    ds.save(store)
    return store


def test_log_records_out_of_order_are_refused(world: World) -> None:
    ds = busy_ds(world)
    store = _saved(ds)
    logs = sorted(k for k, _ in store.items(_LOG) if k.startswith(_LOG + world.g.hex()))
    assert len(logs) >= 2
    a, b = logs[0], logs[1]
    va, vb = store.get(a), store.get(b)
    assert va is not None and vb is not None
    store.write({a: vb, b: va})  # every entry is there, two in each other's place
    with pytest.raises(DecodeError):
        DeliveryService.load(store)
    store.write({a: va, b: vb})
    assert DeliveryService.load(store).to_bytes() == ds.to_bytes()


def test_a_welcome_record_under_another_number_is_refused(world: World) -> None:
    ds = busy_ds(world)
    store = _saved(ds)
    welcomes = store.items(_WELCOME)
    assert len(welcomes) == 1
    key, value = welcomes[0]
    seq = int(key[len(_WELCOME):], 16)
    store.write({f"{_WELCOME}{seq + 1:016x}": value}, [key])
    with pytest.raises(DecodeError):
        DeliveryService.load(store)


def test_a_log_record_holding_a_welcome_is_refused(world: World) -> None:
    ds = busy_ds(world)
    store = _saved(ds)
    ((wkey, _),) = store.items(_WELCOME)
    s = ds.state
    # the Welcome's entry filed as the next log entry of its group, in that position
    d = s.welcomes[0]
    g = s.groups[d.group_id]
    moved = dataclasses.replace(d, group_seq=len(g.log))
    entry = _encode_entry(moved, s.welcome_recipients[0])
    store.write({f"{_LOG}{d.group_id.hex()}/{len(g.log):016x}": entry}, [wkey])
    with pytest.raises(DecodeError):
        DeliveryService.load(store)


def test_state_records_leave_out_what_the_marks_cover(world: World) -> None:
    ds = busy_ds(world)
    s = ds.state
    assert s.welcomes and s.generation_ids and any(g.log for g in s.groups.values())
    everything = state_records(s, ds.stats, SavedMarks())
    assert any(k.startswith(_WELCOME) for k in everything)
    assert any(k.startswith(_GENID) for k in everything)
    assert set(state_records(s, ds.stats, SavedMarks.of(s))) == {STATE_KEY}
    assert state_records(s, ds.stats, SavedMarks.of(s))[STATE_KEY] == everything[STATE_KEY]


# --- ds/faults.py -----------------------------------------------------------------------------


@pytest.mark.parametrize("max_delay", [1, 2, 3, 5])
def test_a_wait_is_one_to_max_delay_deliveries(max_delay: int) -> None:
    """A delayed delivery or a duplicate waits behind 1 to `max_delay` further
    deliveries, every one of those values being drawn."""
    layer = FaultLayer(FaultPolicy(7, max_delay=max_delay))
    rng = layer._rng()
    waits = {layer._wait(rng) for _ in range(300)}
    assert waits == set(range(1, max_delay + 1))


def _delivery(seq: int, group: bytes, group_seq: int = 0) -> Delivery:
    return Delivery(seq, DeliveryKind.APPLICATION, group, group_seq, 0, "sender", b"m%d" % seq)


def _mailbox(layer: FaultLayer, client: str, deliveries: list[Delivery]) -> list[Delivery]:
    """What the DS does: admit each delivery, keep those not dropped, in seq order."""
    return [d for d in deliveries if layer.admit(client, d)]


def test_the_clock_counts_the_hand_overs() -> None:
    """Without faults a client's clock is the number of deliveries handed to it, and a
    decision with probability 0 draws nothing from the random source."""
    layer = FaultLayer(FaultPolicy(3))
    box = _mailbox(layer, "c", [_delivery(i, b"g", i) for i in range(4)])
    for n in range(1, 5):
        assert layer.take("c", box).seq == n - 1
        assert layer.clocks["c"] == n
    assert layer.counter == 0 and layer.held == {} and layer.copies == {}
    with pytest.raises(ParameterError):
        layer.take("c", box)


def test_a_delayed_delivery_is_ready_after_its_wait() -> None:
    """max_delay 1: every wait is one further delivery."""
    layer = FaultLayer(FaultPolicy(5, delay=1.0, max_delay=1))
    d0, d1 = _delivery(0, b"g0"), _delivery(1, b"g1")
    box = _mailbox(layer, "c", [d0, d1])
    assert layer.held == {"c": {0: 1, 1: 1}}
    assert layer.stats.delayed == 2
    # nothing is ready at clock 0: the clock jumps to 1, the oldest goes
    assert layer.take("c", box) == d0
    assert layer.held == {"c": {1: 1}}  # the other one is still held
    assert layer.clocks["c"] == 2
    assert layer.take("c", box) == d1
    assert "c" not in layer.held


def test_a_duplicate_comes_after_its_wait() -> None:
    layer = FaultLayer(FaultPolicy(9, duplicate=1.0, max_delay=1))
    d0 = _delivery(0, b"g")
    box = _mailbox(layer, "c", [d0])
    assert layer.take("c", box) == d0
    assert layer.copies == {"c": [(d0, 2)]}  # handed at clock 0; one more delivery waits
    assert layer.stats.duplicated == 1
    assert layer.pending("c", box) == 1
    assert layer.take("c", box) == d0  # the copy, once
    assert layer.copies == {} and layer.stats.handed == 2


def test_reordering_hands_over_another_group_s_head() -> None:
    layer = FaultLayer(FaultPolicy(1, reorder=1.0))
    d0, d1 = _delivery(0, b"g0"), _delivery(1, b"g1")
    box = _mailbox(layer, "c", [d0, d1])
    assert layer.take("c", box) == d1  # two ready: with probability 1 not the oldest
    assert layer.stats.reordered == 1
    assert layer.take("c", box) == d0  # one ready: no choice
    assert layer.stats.reordered == 1
    # three groups: reordered twice, and the counter adds up
    layer = FaultLayer(FaultPolicy(1, reorder=1.0))
    box = _mailbox(layer, "c", [_delivery(i, b"g%d" % i) for i in range(3)])
    layer.take("c", box)
    layer.take("c", box)
    assert layer.stats.reordered == 2


def test_a_reorder_picks_among_all_the_others() -> None:
    """With three ready heads, the reordered pick is either of the two younger ones,
    each drawn for some seed."""
    picks = set()
    for seed in range(40):
        layer = FaultLayer(FaultPolicy(seed, reorder=1.0))
        box = _mailbox(layer, "c", [_delivery(i, b"g%d" % i) for i in range(3)])
        picks.add(layer.take("c", box).seq)
    assert picks == {1, 2}


def test_decisions_follow_the_documented_random_source() -> None:
    """Each decision draws 7 bytes from SeededRandom("mlsvc-ds-faults/" || uint64 seed):
    fixed, so a fault-layer snapshot continues the same sequence after a restart."""
    for seed in (0, 1, 2, 1 << 40, (1 << 64) - 1):
        source = SeededRandom(b"mlsvc-ds-faults/" + seed.to_bytes(8, "big"))
        draws = [int.from_bytes(source(7), "big") / float(1 << 56) for _ in range(8)]
        layer = FaultLayer(FaultPolicy(seed, drop=0.5))
        kept = [layer.admit("c", _delivery(i, b"g", i)) for i in range(8)]
        assert kept == [u >= 0.5 for u in draws]


def test_fault_policy_bounds() -> None:
    assert FaultPolicy(1, drop=1.0, delay=1.0, duplicate=1.0, reorder=1.0).drop == 1.0
    assert FaultPolicy(1, max_delay=(1 << 16) - 1).max_delay == (1 << 16) - 1
    for bad in (1 << 16, 1 << 17, 0):
        with pytest.raises(ParameterError):
            FaultPolicy(1, max_delay=bad)
    policy = FaultPolicy(1, clients=["a", "b"])  # type: ignore[arg-type]
    assert policy.clients == ("a", "b")
    assert policy.applies("a") and not policy.applies("c")


def test_load_with_attach_writes_through(world: World) -> None:
    ds = busy_ds(world)
    store = _saved(ds)
    back = DeliveryService.load(store, attach=True)
    assert back.store is store
    back.register_client("zed")
    assert DeliveryService.load(store).to_bytes() == back.to_bytes()
    assert DeliveryService.load(_saved(ds)).store is None


def test_attach_store_then_only_new_records_are_written(world: World) -> None:
    ds = busy_ds(world)
    store = _Counting()
    ds.attach_store(store)
    assert any(k.startswith(_LOG) for k in store.puts[0])
    ds.register_client("zed")
    assert store.puts[-1] == {STATE_KEY}  # nothing of the log is written again
    other = MemoryStore()
    ds.save(other)  # a copy elsewhere changes nothing for the attached store
    ds.register_client("zoe")
    assert store.puts[-1] == {STATE_KEY}
    assert DeliveryService.load(store).to_bytes() == ds.to_bytes()


class _Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[set[str]] = []

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        self.puts.append(set(puts))
        super().write(puts, deletes)


def test_the_f3_option_survives_a_store() -> None:
    ds = DeliveryService(literal_p11_ds_scope=True)
    store = _saved(ds)
    assert DeliveryService.load(store).state.literal_p11_ds_scope
    assert not DeliveryService.load(_saved(DeliveryService())).state.literal_p11_ds_scope


def test_a_draw_equal_to_the_probability_is_no_fault() -> None:
    """A fault happens when the decision's draw u (7 bytes of the documented source over
    2^56) is below p, so that P(u < p) = p: with p set to the draw itself, the first
    delivery is kept; with the next float above it, dropped."""
    import math

    for seed in (3, 1 << 33):
        source = SeededRandom(b"mlsvc-ds-faults/" + seed.to_bytes(8, "big"))
        u = int.from_bytes(source(7), "big") / float(1 << 56)
        assert 0.0 < u < 1.0
        kept = FaultLayer(FaultPolicy(seed, drop=u)).admit("c", _delivery(0, b"g"))
        dropped = FaultLayer(FaultPolicy(seed, drop=math.nextafter(u, 1.0))).admit(
            "c", _delivery(0, b"g"))
        assert (kept, dropped) == (True, False)


def test_a_generation_id_record_names_the_virtual_client_acted_for(world: World) -> None:
    """draft-00 §5.9: the DS's generation-ID index keeps who sent the PrivateMessage and,
    for an emulator, the virtual client it acted for (None for a plain member)."""
    ds = make_ds(world)
    accepted(ds.submit("e2", world.app_a, on_behalf_of="V", generation_id=gen_id(7)))
    accepted(ds.submit("bob", world.app_b, generation_id=gen_id(8)))
    first, second = ds.generation_ids(world.g)
    assert (first.sender, first.on_behalf_of, first.generation_id) == ("e2", "V", gen_id(7))
    assert (second.sender, second.on_behalf_of, second.generation_id) == ("bob", None,
                                                                        gen_id(8))
    restored = DeliveryService.from_bytes(ds.to_bytes())
    assert restored.generation_ids(world.g) == (first, second)
