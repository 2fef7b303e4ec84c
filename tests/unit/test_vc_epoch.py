"""Emulation-epoch secrets and their retention (draft-00 §5.2; profile P2, P19)."""

from __future__ import annotations

import pytest

from mlsvc.crypto.labels import derive_secret
from mlsvc.errors import ParameterError, ValidationError
from mlsvc.types import LeafIndex
from mlsvc.vc.epoch import EmulationEpoch, EpochStore, RetainedOperation, open_epoch
from tests.unit import vc_helpers as ind
from tests.unit.vc_helpers import CS, world

ROSTER = {0: b"phone", 1: b"laptop", 2: b"tablet"}


def epoch(n: int, secret: bytes | None = None) -> EmulationEpoch:
    return open_epoch(CS, secret or bytes([n + 1]) * CS.nh, n, 4, LeafIndex(1), ROSTER)


def test_the_four_epoch_secrets_are_derive_secret_of_the_draft_labels() -> None:
    ees = bytes(range(32))
    ep = open_epoch(CS, ees, 7, 4, LeafIndex(2), ROSTER)
    assert ep.epoch_id == derive_secret(CS, ees, b"Epoch ID")
    assert ep.encryption_key == derive_secret(CS, ees, b"Encryption Key")
    assert ep.generation_id_secret == derive_secret(CS, ees, b"Generation ID Secret")
    base = derive_secret(CS, ees, b"Base Secret")
    # the same values restated with hmac (RFC 9420 §8, prefix "MLS 1.0 ")
    assert ep.epoch_id == ind.derive_secret("sha256", ees, b"Epoch ID")
    assert base == ind.derive_secret("sha256", ees, b"Base Secret")
    # epoch_base_secret keys the depth-32 PPRF and is kept nowhere else
    assert ep.pprf is not None
    for x in (0, 1, 0x80000000, 0xFFFFFFFF, 0x12345678):
        assert ep.pprf.evaluate(x) == ind.pprf_eval("sha256", base, x, 32)
    values = (ep.epoch_id, ep.encryption_key, ep.generation_id_secret, base)
    assert len(set(values)) == 4
    assert (ep.epoch, ep.leaf_count, ep.own_leaf, ep.roster) == (7, 4, 2, ROSTER)
    assert ep.retained == {} and ep.can_derive


def test_emulator_epoch_secret_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ParameterError):
        open_epoch(CS, b"\x01" * 31, 0, 4, LeafIndex(0), ROSTER)


def test_roster_is_copied() -> None:
    roster = dict(ROSTER)
    ep = open_epoch(CS, b"\x01" * 32, 0, 4, LeafIndex(0), roster)
    roster[3] = b"intruder"
    assert 3 not in ep.roster


def test_retention_keeps_derivation_secrets_of_the_last_r_plus_one_epochs() -> None:
    store = EpochStore()  # R = 1
    e0, e1, e2 = epoch(0), epoch(1), epoch(2)
    e0.retained[5] = RetainedOperation(1, b"r" * 32, b"s" * 32)
    store.add(e0)
    store.add(e1)
    assert e0.can_derive and e1.can_derive
    store.add(e2)
    assert not e0.can_derive and e0.pprf is None and e0.encryption_key is None
    assert e0.retained == {}
    assert e1.can_derive and e2.can_derive
    # reference data stays
    assert e0.epoch_id == epoch(0).epoch_id
    assert e0.generation_id_secret == epoch(0).generation_id_secret
    assert (e0.leaf_count, e0.roster) == (4, ROSTER)
    assert store.latest is e2
    assert store.by_id(e0.epoch_id) is e0
    with pytest.raises(ValidationError) as err:
        store.for_derivation(e0.epoch_id)
    assert err.value.check_id == "VC-EPOCH-DELETED"
    assert store.for_derivation(e1.epoch_id) is e1


@pytest.mark.parametrize("r", [0, 1, 3])
def test_retention_window_is_configurable(r: int) -> None:
    store = EpochStore(r)
    eps = [epoch(n) for n in range(6)]
    for e in eps:
        store.add(e)
    assert [e.can_derive for e in eps] == [n >= 5 - r for n in range(6)]


def test_negative_window_and_duplicate_epoch_are_refused() -> None:
    with pytest.raises(ParameterError):
        EpochStore(-1)
    store = EpochStore()
    store.add(epoch(0))
    with pytest.raises(ParameterError):
        store.add(epoch(0, b"\x09" * 32))
    with pytest.raises(ParameterError):
        _ = EpochStore().latest


def test_collect_deletes_unreferenced_epochs_outside_the_window_only() -> None:
    store = EpochStore()
    eps = [epoch(n) for n in range(4)]
    for e in eps:
        store.add(e)
    # 0 and 1 are outside the window (newest 3, R = 1); 1 is referenced
    assert store.collect([eps[1].epoch_id]) == [0]
    assert sorted(store.epochs) == [1, 2, 3]
    with pytest.raises(ValidationError) as err:
        store.by_id(eps[0].epoch_id)
    assert err.value.check_id == "VC-EPOCH-UNKNOWN"
    # unreferenced epochs inside the window stay
    assert store.collect([]) == [1]
    assert sorted(store.epochs) == [2, 3]
    assert store.collect([]) == []


def test_unknown_epoch_id() -> None:
    store = EpochStore()
    store.add(epoch(0))
    with pytest.raises(ValidationError) as err:
        store.for_derivation(b"\x00" * 32)
    assert err.value.check_id == "VC-EPOCH-UNKNOWN"


def test_emulators_agree_on_epoch_secrets_and_delete_old_ones() -> None:
    """Through the emulators: every emulator opens the same epoch (same epoch_id and
    secrets), and after two more emulation commits the epoch the virtual client's leaf
    comes from keeps its reference data only."""
    w = world()
    ems = list(w.vc.emulators.values())
    latest = {(e.epochs.latest.epoch_id, e.epochs.latest.encryption_key,
               e.epochs.latest.generation_id_secret) for e in ems}
    assert len(latest) == 1
    leaf_epoch = ems[0].groups[b"g1"].active.epoch_id
    for _ in range(2):
        assert w.vc.emulation_commit("tablet").accepted
    w.vc.sync()
    for e in ems:
        held = e.epochs.by_id(leaf_epoch)
        assert not held.can_derive
        assert e.epochs.latest.can_derive
        assert sorted(e.epochs.epochs) == [held.epoch, e.emu.epoch - 1, e.emu.epoch]
        assert {ep.epoch_id for ep in e.epochs.epochs.values()} == {
            ep.epoch_id for ep in ems[0].epochs.epochs.values()}
