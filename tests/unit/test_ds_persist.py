"""The delivery service's state is plain data with a versioned snapshot
(mlsvc.ds.persist): a restored DS is the same DS, and the encoding is deterministic."""

from __future__ import annotations

import dataclasses
from enum import Enum

import pytest

from mlsvc.ds import Consistency, DeliveryService, DSStats
from mlsvc.ds.persist import MAGIC
from mlsvc.errors import DecodeError
from mlsvc.group.group import Group
from mlsvc.messages.mls_message import MLSMessage
from tests.unit.test_ds import (
    SUITE,
    World,
    accepted,
    bundle,
    config,
    gen_id,
    identity,
    make_ds,
    refused,
    world,
)

__all__ = ["world"]  # the session fixture, shared with test_ds.py


def busy_ds(w: World, consistency: Consistency = Consistency.STRONG) -> DeliveryService:
    """A DS that has done a bit of everything: messages, refusals, a commit, generation
    IDs, KeyPackages outstanding and fetched, GroupInfos, undelivered mail."""
    ds = make_ds(w, consistency)
    ds.upload_key_packages("V", [MLSMessage(bundle(f"persist-{i}").key_package).encode()
                                 for i in range(3)])
    ds.fetch_key_package("V")
    ds.publish_group_info(w.g, w.group_info_e1)
    accepted(ds.submit("e1", w.app_a, on_behalf_of="V", generation_id=gen_id(1)))
    accepted(ds.submit("e2", w.h_app, on_behalf_of="V", generation_id=gen_id(1)))
    ds.receive("alice", limit=1)
    accepted(ds.submit("alice", w.commit_a))
    refused(ds.submit("bob", w.commit_b), "commit-conflict")
    ds.publish_group_info(w.g, w.group_info_e2)
    # a Welcome for the fetched KeyPackage, into a fourth group
    p = Group.create(SUITE, identity("persist-p"), config("persist-p"))
    p.propose_add(bundle("persist-0"))
    welcome = p.commit().welcome
    assert welcome is not None
    ds.create_group(p.group_id, 0, ["alice"])
    assert ds.send_welcome("alice", p.group_id, welcome) == ("e1", "e2")
    return ds


def test_round_trip_is_exact(world: World) -> None:
    for consistency in Consistency:
        ds = busy_ds(world, consistency)
        data = ds.to_bytes()
        assert data.startswith(MAGIC)
        restored = DeliveryService.from_bytes(data)
        assert restored.to_bytes() == data
        assert restored.state == ds.state
        assert restored.stats == ds.stats
        assert restored.consistency == consistency


def test_a_restored_ds_behaves_as_the_original(world: World) -> None:
    ds = busy_ds(world)
    twin = DeliveryService.from_bytes(ds.to_bytes())
    results = []
    for d in (ds, twin):
        # the generation-ID index survives: the same ID in the same scope collides
        r1 = d.submit("e2", world.h_app, on_behalf_of="V", generation_id=gen_id(1))
        r2 = d.submit("e1", world.app_a_e2, on_behalf_of="V", generation_id=gen_id(1))
        kp = d.fetch_key_package("V")
        mail = {c: d.receive(c) for c in d.clients()}
        results.append((r1, r2, kp, mail, d.epoch(world.g), d.group_info(world.g, 1),
                        d.members(d.groups()[-1]), d.welcomes()))
    assert results[0] == results[1]
    r1, r2 = results[0][0], results[0][1]
    assert r1.reason == "generation-id-collision" and r2.accepted
    assert ds.to_bytes() == twin.to_bytes()


def test_snapshot_without_stats(world: World) -> None:
    ds = busy_ds(world)
    data = ds.to_bytes(include_stats=False)
    restored = DeliveryService.from_bytes(data)
    assert restored.state == ds.state
    assert restored.stats == DSStats()
    assert ds.stats.refused == 1 and ds.stats.accepted == 3


def test_the_encoding_is_deterministic(world: World) -> None:
    assert busy_ds(world).to_bytes() == busy_ds(world).to_bytes()
    assert busy_ds(world).to_bytes() != busy_ds(world, Consistency.EVENTUAL).to_bytes()


@pytest.mark.parametrize("mangle", [
    lambda b: b"",
    lambda b: b"mlsvc-xx" + b[8:],          # magic
    lambda b: b[:8] + b"\x00\x02" + b[10:],  # version 2
    lambda b: b[:10] + b"\x09" + b[11:],     # consistency 9
    lambda b: b[:-1],
    lambda b: b + b"\x00",
])
def test_a_bad_snapshot_is_a_decode_error(world: World, mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(DecodeError):
        DeliveryService.from_bytes(mangle(busy_ds(world).to_bytes()))


def test_the_state_is_plain_data(world: World) -> None:
    """Only bytes, ints, strs, None and the two enums, in dataclasses, lists and dicts:
    what a database row can hold (and nothing that could hide a secret object)."""
    def walk(x: object, path: str) -> None:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name), f"{path}.{f.name}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(k, f"{path}.key")
                walk(v, f"{path}[{k!r}]")
        else:
            assert x is None or isinstance(x, (bytes, int, str, Enum)), (path, type(x))

    walk(busy_ds(world).state, "state")
