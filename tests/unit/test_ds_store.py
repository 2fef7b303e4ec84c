"""The delivery service in a Store (DeliveryService.save / load / attach_store): the
round trip through SQLite keeps the state, the counters and the fault layer's state, so
a restarted process continues identically; with write-through, the store after any call
is the DS after that call; a refused operation changes nothing; damaged records are
DecodeErrors, never a silent reset."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from mlsvc.ds import Delivery, DeliveryError, DeliveryService, FaultPolicy
from mlsvc.errors import DecodeError
from mlsvc.store import MemoryStore, SQLiteStore
from tests.unit.test_ds import World, accepted, gen_id, refused, world
from tests.unit.test_ds_faults import FAULTY, Extra, extra, new_ds, step

__all__ = ["extra", "world"]  # the fixtures

POLICY = FaultPolicy(21, delay=0.3, duplicate=0.3, reorder=0.4, drop=0.2, clients=FAULTY)


class CountingStore(MemoryStore):
    """A MemoryStore that remembers each write's keys."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[set[str], set[str]]] = []

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        gone = list(deletes)
        self.writes.append((set(puts), set(gone)))
        super().write(puts, gone)


def busy(w: World, x: Extra, policy: FaultPolicy | None = POLICY, steps: int = 150,
         seed: int = 3) -> DeliveryService:
    ds = new_ds(w, x, policy)
    ds.publish_group_info(w.g, w.group_info_e1)
    accepted(ds.submit("e1", w.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    rng = random.Random(seed)
    for _ in range(steps):
        step(ds, w, x, rng, {})
    return ds


def fingerprint(ds: DeliveryService) -> tuple[bytes, bytes | None]:
    return ds.to_bytes(), None if ds.faults is None else ds.faults.to_bytes()


def future(ds: DeliveryService, w: World, x: Extra) -> list[object]:
    """What the DS does next: more traffic and every client's receives."""
    rng = random.Random(99)
    out: list[object] = []
    for _ in range(60):
        got: dict[str, list[Delivery]] = {}
        step(ds, w, x, rng, got)
        out.append(sorted(got.items()))
    out.append([(c, ds.receive(c)) for c in ds.clients()])
    out.append(fingerprint(ds))
    return out


@pytest.mark.parametrize("policy", [POLICY, None], ids=["faults", "no-faults"])
def test_round_trip_through_sqlite_continues_identically(
        world: World, extra: Extra, tmp_path: Path, policy: FaultPolicy | None) -> None:
    ds = busy(world, extra, policy)
    store = SQLiteStore(tmp_path / "ds.db")
    ds.save(store)
    store.close()
    store = SQLiteStore(tmp_path / "ds.db")
    back = DeliveryService.load(store)
    assert back.state == ds.state and back.stats == ds.stats
    assert fingerprint(back) == fingerprint(ds)
    if policy is not None:
        assert back.faults is not None and ds.faults is not None
        assert back.faults == ds.faults and (back.faults.held or back.faults.copies)
    else:
        assert back.faults is None and store.get("ds/faults") is None
    assert future(back, world, extra) == future(ds, world, extra)
    store.close()


def test_write_through_after_every_call_is_the_ds_after_that_call(
        world: World, extra: Extra, tmp_path: Path) -> None:
    """A crash after any call returned: reopen the file, load, and it is the same DS."""
    path = tmp_path / "wt.db"
    ds = new_ds(world, extra, POLICY)
    store = SQLiteStore(path)
    ds.attach_store(store)
    rng = random.Random(5)
    for i in range(70):
        step(ds, world, extra, rng, {})
        if i % 7 == 0:
            reopened = SQLiteStore(path)
            assert fingerprint(DeliveryService.load(reopened)) == fingerprint(ds)
            reopened.close()
    ds.receive("e1", 2)
    reopened = SQLiteStore(path)
    restarted = DeliveryService.load(reopened, attach=True)
    assert fingerprint(restarted) == fingerprint(ds)
    # the restarted, attached DS keeps writing: it and the original stay in step
    assert future(restarted, world, extra) == future(ds, world, extra)
    assert fingerprint(DeliveryService.load(reopened)) == fingerprint(restarted)
    reopened.close()
    store.close()


def test_write_through_writes_only_what_changed(world: World, extra: Extra) -> None:
    ds = new_ds(world, extra, POLICY)
    store = CountingStore()
    ds.attach_store(store)
    for _ in range(3):
        accepted(ds.submit("alice", world.app_a))
    store.writes.clear()
    d = accepted(ds.submit("alice", world.h_app))
    assert store.writes == [({"ds/state", "ds/faults",
                              f"ds/log/{world.h.hex()}/{d.group_seq:016x}"}, set())]
    ds.publish_group_info(world.g, world.group_info_e1)
    assert store.writes[-1][0] == {"ds/state", "ds/faults",
                                   f"ds/groupinfo/{world.g.hex()}/{1:016x}"}
    ds.receive("e1", 1)
    assert store.writes[-1][0] == {"ds/state", "ds/faults"}
    # reads write nothing
    n = len(store.writes)
    ds.pending("e1")
    ds.peek("e2")
    ds.refetch("e1", world.g, -1)
    ds.welcomes_for("e1", -1)
    ds.log(world.g)
    assert len(store.writes) == n


def test_a_refused_operation_changes_nothing(world: World, extra: Extra) -> None:
    ds = busy(world, extra)
    store = CountingStore()
    ds.attach_store(store)
    before = fingerprint(ds)
    n = len(store.writes)
    # errors: nothing changes, nothing is written
    with pytest.raises(DeliveryError):
        ds.register_client("alice")
    with pytest.raises(DeliveryError):
        ds.refetch("nobody", world.g, -1)
    with pytest.raises(DecodeError):
        ds.submit("alice", b"\x00")
    assert fingerprint(ds) == before and len(store.writes) == n
    assert fingerprint(DeliveryService.load(store)) == before
    # a refusal by the rules: state and fault layer unchanged, only the counter moves
    state_before, faults_before = ds.to_bytes(include_stats=False), ds.faults
    assert faults_before is not None
    fault_bytes = faults_before.to_bytes()
    refused(ds.submit("carol", world.app_a), "not-a-member")
    refused(ds.submit("e3", world.app_a, on_behalf_of="V"), "not-an-emulator")
    assert ds.to_bytes(include_stats=False) == state_before
    assert ds.faults is not None and ds.faults.to_bytes() == fault_bytes
    back = DeliveryService.load(store)
    assert back.to_bytes(include_stats=False) == state_before
    assert back.stats == ds.stats and back.stats.refused_by_reason["not-a-member"] >= 1


def test_save_replaces_an_older_ds_in_the_store(world: World, extra: Extra) -> None:
    store = MemoryStore()
    busy(world, extra).save(store)
    small = new_ds(world, extra, None)
    small.save(store)
    assert {k for k, _ in store.items("ds/")} == {"ds/state"}
    assert fingerprint(DeliveryService.load(store)) == fingerprint(small)


def test_load_refuses_an_empty_or_damaged_store(world: World, extra: Extra) -> None:
    with pytest.raises(DeliveryError) as e:
        DeliveryService.load(MemoryStore())
    assert e.value.code == "no-saved-state"
    good = MemoryStore()
    busy(world, extra).save(good)
    records = dict(good.items())
    log_keys = [k for k in records if k.startswith("ds/log/")]
    welcome_keys = [k for k in records if k.startswith("ds/welcome/")]
    assert log_keys and welcome_keys and "ds/faults" in records

    def damaged(puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> MemoryStore:
        s = MemoryStore()
        s.write(records)
        s.write(puts, deletes)
        return s

    cases = [
        damaged({}, [log_keys[len(log_keys) // 2]]),          # a log entry missing
        damaged({}, [log_keys[-1]]),                          # the last one missing
        damaged({}, [welcome_keys[0]]),                       # a Welcome missing
        damaged({"ds/log/zz/0000000000000000": records[log_keys[0]]}),   # bad key
        damaged({"ds/log/00/0000000000000000": records[log_keys[0]]}),   # no such group
        damaged({log_keys[0]: records[log_keys[1]]}),         # out of place
        damaged({log_keys[0]: records[log_keys[0]][:-1]}),    # truncated
        damaged({"ds/faults": b"mlsvc-df\x00\x09"}),          # fault layer version
        damaged({"ds/state": records["ds/state"][:-1]}),
        damaged({"ds/state": busy(world, extra, steps=5).to_bytes()}),  # a full snapshot
        damaged({"ds/genid/0000000000000005": records["ds/genid/0000000000000000"]}),
    ]
    for store in cases:
        with pytest.raises(DecodeError):
            DeliveryService.load(store)
