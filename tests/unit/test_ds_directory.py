"""The delivery service's KeyPackage directory (P21), Welcome routing by KeyPackageRef
(RFC 9420 §12.4.3.1; draft-00 §5.1), GroupInfo publication (§12.4.3.2), and groups run
end to end through the DS by real engine clients."""

from __future__ import annotations

import dataclasses

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.ds import (
    Consistency,
    DeliveryError,
    DeliveryKind,
    DeliveryService,
    UnacceptableMessage,
)
from mlsvc.errors import DecodeError, UnsupportedError
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from tests.unit.test_ds import (
    SUITE,
    World,
    accepted,
    bundle,
    config,
    drain,
    identity,
    make_ds,
    refused,
    world,
)

__all__ = ["world"]  # the session fixture, shared with test_ds.py

CS = get_suite(SUITE)


def framed(b: KeyPackageBundle) -> bytes:
    return MLSMessage(b.key_package).encode()


def key_package(data: bytes) -> KeyPackage:
    """What a fetcher does with the directory's bytes (framed here)."""
    body = MLSMessage.decode(data).body
    assert isinstance(body, KeyPackage)
    return body


@pytest.fixture(scope="module")
def bundles() -> dict[str, KeyPackageBundle]:
    return {n: bundle(f"dir-{n}") for n in ("b1", "b2", "b3", "v1", "v2")}


def directory_ds() -> DeliveryService:
    ds = DeliveryService()
    for c in ("alice", "bob", "e1", "e2"):
        ds.register_client(c)
    ds.register_virtual_client("V", ["e1", "e2"])
    return ds


# --- KeyPackage directory ----------------------------------------------------------------

def test_upload_returns_the_refs_the_ds_computes(bundles: dict[str, KeyPackageBundle]) -> None:
    ds = directory_ds()
    b1, b2 = bundles["b1"], bundles["b2"]
    # an MLSMessage-framed KeyPackage and a bare one are both taken
    refs = ds.upload_key_packages("bob", [framed(b1), b2.key_package.encode()])
    assert refs == (b1.ref(CS), b2.ref(CS))
    assert ds.outstanding_key_packages("bob") == refs
    assert ds.outstanding_key_packages("alice") == ()
    assert ds.stats.key_packages_uploaded == 2


def test_fetch_is_fifo_one_time_and_returns_the_bytes_uploaded(
        bundles: dict[str, KeyPackageBundle]) -> None:
    ds = directory_ds()
    kps = [framed(bundles["b1"]), bundles["b2"].key_package.encode(), framed(bundles["b3"])]
    refs = ds.upload_key_packages("bob", kps)
    assert [ds.fetch_key_package("bob") for _ in range(2)] == kps[:2]
    assert ds.outstanding_key_packages("bob") == refs[2:]
    assert ds.fetch_key_package("bob") == kps[2]
    with pytest.raises(DeliveryError) as err:
        ds.fetch_key_package("bob")
    assert err.value.code == "no-key-package"
    assert ds.stats.key_packages_fetched == 3
    # a later upload is served after, never before, what was already there
    more = ds.upload_key_packages("bob", [framed(bundles["v1"])])
    assert ds.outstanding_key_packages("bob") == more


def test_uploading_a_known_key_package_is_refused_all_or_nothing(
        bundles: dict[str, KeyPackageBundle]) -> None:
    ds = directory_ds()
    ds.upload_key_packages("bob", [framed(bundles["b1"])])
    ds.fetch_key_package("bob")
    before = ds.to_bytes()
    for batch in ([framed(bundles["b2"]), framed(bundles["b1"])],  # fetched before
                  [framed(bundles["b2"]), bundles["b2"].key_package.encode()]):  # twice
        with pytest.raises(UnacceptableMessage) as err:
            ds.upload_key_packages("V", batch)
        assert err.value.code == "duplicate-key-package"
    assert ds.to_bytes() == before


def test_upload_of_bad_key_packages_changes_nothing(
        bundles: dict[str, KeyPackageBundle], world: World) -> None:
    ds = directory_ds()
    before = ds.to_bytes()
    good = framed(bundles["b1"])
    with pytest.raises(DecodeError):
        ds.upload_key_packages("bob", [good, good[:-3]])
    with pytest.raises(UnacceptableMessage) as err:
        ds.upload_key_packages("bob", [good, world.group_info_e1])
    assert err.value.code == "wrong-wire-format"
    odd = dataclasses.replace(bundles["b2"].key_package, cipher_suite=0x7A7A)
    with pytest.raises(UnsupportedError):  # the ref needs the suite's hash (§5.2)
        ds.upload_key_packages("bob", [good, MLSMessage(odd).encode()])
    with pytest.raises(DeliveryError):
        ds.upload_key_packages("nobody", [good])
    assert ds.to_bytes() == before


def test_delete_key_packages_removes_every_outstanding_one(
        bundles: dict[str, KeyPackageBundle]) -> None:
    """P21 (finding F6): the DS deletes every outstanding KeyPackage of the virtual
    client first, so a removed emulator's KeyPackages can never be fetched."""
    ds = directory_ds()
    ds.upload_key_packages("V", [framed(bundles["v1"]), framed(bundles["v2"])])
    ds.upload_key_packages("bob", [framed(bundles["b1"])])
    fetched = ds.fetch_key_package("V")
    assert ds.delete_key_packages("V") == 1
    assert ds.outstanding_key_packages("V") == ()
    with pytest.raises(DeliveryError) as err:
        ds.fetch_key_package("V")
    assert err.value.code == "no-key-package"
    assert ds.delete_key_packages("V") == 0
    assert ds.outstanding_key_packages("bob") == (bundles["b1"].ref(CS),)  # others untouched
    assert ds.stats.key_packages_deleted == 1
    assert fetched == framed(bundles["v1"])


# --- Welcome routing -----------------------------------------------------------------------

def welcome_scene() -> tuple[DeliveryService, Group, dict[str, KeyPackageBundle], bytes,
                             bytes]:
    """alice's group at epoch 0 on the DS; bob and V upload KeyPackages; alice fetches
    one of each, adds both, and the DS accepts her commit. Returns (ds, alice, bundles,
    welcome, commit)."""
    ds = directory_ds()
    alice = Group.create(SUITE, identity("wel-alice"), config("wel-alice"))
    ds.create_group(alice.group_id, alice.epoch, ["alice"])
    bs = {n: bundle(f"wel-{n}") for n in ("bob", "bob2", "v", "v2")}
    ds.upload_key_packages("bob", [framed(bs["bob"]), framed(bs["bob2"])])
    ds.upload_key_packages("V", [framed(bs["v"]), framed(bs["v2"])])
    for owner in ("bob", "V"):
        alice.propose_add(key_package(ds.fetch_key_package(owner)))
    out = alice.commit()
    alice.merge_pending_commit()
    assert out.welcome is not None
    accepted(ds.submit("alice", out.commit))
    return ds, alice, bs, out.welcome, out.commit


def test_welcome_goes_to_each_owner_and_every_emulator_of_a_vc_owner() -> None:
    ds, alice, bs, welcome, _ = welcome_scene()
    recipients = ds.send_welcome("alice", alice.group_id, welcome)
    assert recipients == ("bob", "e1", "e2")
    assert ds.members(alice.group_id) == ("alice", "bob", "V")
    got = {c: ds.receive(c) for c in ("alice", "bob", "e1", "e2")}
    assert got["alice"] == []
    (d,) = got["bob"]
    assert got["e1"] == [d] and got["e2"] == [d]
    assert (d.kind, d.group_id, d.group_seq, d.epoch, d.sender, d.message) == (
        DeliveryKind.WELCOME, alice.group_id, None, None, "alice", welcome)
    assert ds.welcomes() == (d,) and ds.stats.welcomes == 1
    # the recipients can join from what the DS delivered
    bob = Group.join(d.message, bs["bob"], config("wel-bob-j"))
    v = Group.join(d.message, bs["v"], config("wel-v-j"))
    assert bob.epoch == v.epoch == alice.epoch == 1
    assert bob.epoch_authenticator == alice.epoch_authenticator == v.epoch_authenticator
    # V's second KeyPackage is still outstanding, bob's too: the Welcome used neither
    assert ds.outstanding_key_packages("V") == (bs["v2"].ref(CS),)


def test_welcome_to_an_outstanding_ref_consumes_it() -> None:
    """A ref the directory still holds (handed over out of band) routes too; that
    KeyPackage is used up and can no longer be fetched (RFC 9420 §16.8)."""
    ds = directory_ds()
    alice = Group.create(SUITE, identity("out-alice"), config("out-alice"))
    ds.create_group(alice.group_id, 0, ["alice"])
    b = bundle("out-bob")
    ds.upload_key_packages("bob", [b.key_package.encode()])
    alice.propose_add(b)
    out = alice.commit()
    assert out.welcome is not None
    assert ds.send_welcome("alice", alice.group_id, out.welcome) == ("bob",)
    assert ds.outstanding_key_packages("bob") == ()
    with pytest.raises(DeliveryError):
        ds.fetch_key_package("bob")


def test_welcome_with_no_known_ref_is_refused_and_changes_nothing() -> None:
    ds, alice, _, _, _ = welcome_scene()
    stranger = bundle("wel-stranger")
    carol_group = Group.create(SUITE, identity("wel-carol"), config("wel-carol"))
    carol_group.propose_add(stranger)
    out = carol_group.commit()
    assert out.welcome is not None
    before = ds.to_bytes()
    with pytest.raises(UnacceptableMessage) as err:
        ds.send_welcome("alice", alice.group_id, out.welcome)
    assert err.value.code == "unknown-key-package-ref"
    with pytest.raises(DecodeError):
        ds.send_welcome("alice", alice.group_id, out.welcome[:-1])
    with pytest.raises(UnacceptableMessage) as err:
        ds.send_welcome("alice", alice.group_id, out.commit)
    assert err.value.code == "wrong-wire-format"
    assert ds.to_bytes() == before


def test_welcome_to_a_deleted_key_package_is_refused() -> None:
    ds = directory_ds()
    alice = Group.create(SUITE, identity("del-alice"), config("del-alice"))
    ds.create_group(alice.group_id, 0, ["alice"])
    v = bundle("del-v")
    ds.upload_key_packages("V", [framed(v)])
    assert ds.delete_key_packages("V") == 1
    alice.propose_add(v)
    out = alice.commit()
    assert out.welcome is not None
    with pytest.raises(UnacceptableMessage):
        ds.send_welcome("alice", alice.group_id, out.welcome)
    assert ds.members(alice.group_id) == ("alice",)


def test_welcome_sender_must_be_a_member_or_an_emulator_of_one() -> None:
    ds, alice, _, welcome, _ = welcome_scene()
    with pytest.raises(DeliveryError) as err:
        ds.send_welcome("bob", alice.group_id, welcome)
    assert err.value.code == "not-a-member"
    with pytest.raises(DeliveryError) as err:
        ds.send_welcome("alice", b"no such group", welcome)
    assert err.value.code == "unknown-group"
    ds.add_member(alice.group_id, "V")
    ds.remove_member(alice.group_id, "alice")
    # e1 acts for the member V: allowed; the sender is not sent its own Welcome
    assert ds.send_welcome("e1", alice.group_id, welcome) == ("bob", "e2")
    assert ds.members(alice.group_id) == ("V", "bob")


# --- GroupInfo publication ---------------------------------------------------------------

def test_group_info_latest_and_by_epoch(world: World) -> None:
    ds = make_ds(world)
    with pytest.raises(DeliveryError) as err:
        ds.group_info(world.g)
    assert err.value.code == "no-group-info"
    ds.publish_group_info(world.g, world.group_info_e1)
    assert ds.group_info(world.g) == world.group_info_e1
    # epoch 2 cannot be published before the Commit that opens it is accepted
    with pytest.raises(UnacceptableMessage) as uerr:
        ds.publish_group_info(world.g, world.group_info_e2)
    assert uerr.value.code == "future-epoch"
    accepted(ds.submit("alice", world.commit_a))
    bare = MLSMessage.decode(world.group_info_e2).body.encode()
    ds.publish_group_info(world.g, bare)  # a bare GroupInfo is taken too
    assert ds.group_info(world.g) == bare
    assert ds.group_info(world.g, 1) == world.group_info_e1
    assert ds.group_info(world.g, epoch=2) == bare
    with pytest.raises(DeliveryError):
        ds.group_info(world.g, 3)
    assert ds.stats.group_infos_published == 2


def test_group_info_for_another_group_or_of_another_kind_is_refused(world: World) -> None:
    ds = make_ds(world)
    before = ds.to_bytes()
    with pytest.raises(UnacceptableMessage) as err:
        ds.publish_group_info(world.h, world.group_info_e1)
    assert err.value.code == "group-id-mismatch"
    with pytest.raises(UnacceptableMessage) as err:
        ds.publish_group_info(world.g, world.app_a)
    assert err.value.code == "wrong-wire-format"
    with pytest.raises(DecodeError):
        ds.publish_group_info(world.g, world.group_info_e1 + b"\x00")
    with pytest.raises(DeliveryError):
        ds.publish_group_info(b"unknown", world.group_info_e1)
    assert ds.to_bytes() == before


# --- end to end: real clients driven through the DS --------------------------------------

def process_all(ds: DeliveryService, groups: dict[str, Group]) -> list[object]:
    events: list[object] = []
    for name, g in groups.items():
        for d in ds.receive(name):
            assert d.kind != DeliveryKind.WELCOME
            events.append(g.process(d.message))
    return events


def test_concurrent_commits_one_wins_the_loser_follows_and_retries() -> None:
    """P22 through the DS: two members commit at the same epoch; the DS accepts the
    first; the loser discards its attempt, processes the winner and commits again."""
    ds = DeliveryService(Consistency.STRONG)
    for c in ("alice", "bob", "carol"):
        ds.register_client(c)
    alice = Group.create(SUITE, identity("e2e-alice"), config("e2e-alice"))
    ds.create_group(alice.group_id, alice.epoch, ["alice"])
    bs: dict[str, KeyPackageBundle] = {}
    for name in ("bob", "carol"):
        bs[name] = bundle(f"e2e-{name}")
        ds.upload_key_packages(name, [framed(bs[name])])
        alice.propose_add(key_package(ds.fetch_key_package(name)))
    out = alice.commit()
    accepted(ds.submit("alice", out.commit))
    alice.merge_pending_commit()
    assert out.welcome is not None
    assert ds.send_welcome("alice", alice.group_id, out.welcome) == ("bob", "carol")
    groups = {"alice": alice}
    for name in ("bob", "carol"):
        (w,) = ds.receive(name)
        groups[name] = Group.join(w.message, bs[name], config(f"e2e-{name}-j"))
    bob, carol = groups["bob"], groups["carol"]

    out_b = bob.commit(force_path=True)
    out_c = carol.commit(force_path=True)
    accepted(ds.submit("bob", out_b.commit))
    bob.merge_pending_commit()
    refused(ds.submit("carol", out_c.commit), "commit-conflict")
    carol.clear_pending_commit()
    events = process_all(ds, groups)
    assert [type(e) for e in events] == [CommitApplied, CommitApplied]
    out_c = carol.commit(force_path=True)  # the retry, at the new epoch
    accepted(ds.submit("carol", out_c.commit))
    carol.merge_pending_commit()
    process_all(ds, groups)
    msg = alice.encrypt(b"after the race")
    accepted(ds.submit("alice", msg))
    events = process_all(ds, groups)
    assert [e.data for e in events if isinstance(e, ApplicationMessage)] == [
        b"after the race", b"after the race"]
    assert {g.epoch for g in groups.values()} == {ds.epoch(alice.group_id)} == {3}
    assert len({g.epoch_authenticator for g in groups.values()}) == 1
    assert [d.sender for d in ds.log(alice.group_id)] == ["alice", "bob", "carol", "alice"]


def test_external_join_from_a_published_group_info() -> None:
    ds = DeliveryService()
    for c in ("alice", "bob", "dave"):
        ds.register_client(c)
    a = Group.create(SUITE, identity("ext-alice"), config("ext-alice"))
    ds.create_group(a.group_id, a.epoch, ["alice"])
    ds.publish_group_info(a.group_id, a.group_info())
    dave, commit = Group.external_join(ds.group_info(a.group_id), identity("ext-dave"),
                                       config("ext-dave"))
    d = accepted(ds.submit("dave", commit))
    assert ds.members(a.group_id) == ("alice", "dave")
    assert drain(ds, "alice", "dave") == {"alice": [d.seq], "dave": []}
    assert isinstance(a.process(d.message), CommitApplied)
    assert a.epoch_authenticator == dave.epoch_authenticator
