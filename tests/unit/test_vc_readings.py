"""The literal readings of draft-00 as profile options (mlsvc.vc.readings), and the hooks
a refinement bridge needs (explicit reuse-guard x, quiescent collection, one delivery
at a time, the M4 check).

Every reading is shown twice on real bytes: switched on, the mechanism of its finding
(docs/FINDINGS.md) happens; off (the profile), the same scenario does not."""

from __future__ import annotations

from dataclasses import fields

import pytest

from mlsvc.store import MemoryStore
from mlsvc.vc.durable import records, restore
from mlsvc.vc.readings import FINDING_READINGS, Readings
from mlsvc_model.config import FINDINGS, Config
from tests.unit.vc_helpers import make_vc

# --- the dataclass -------------------------------------------------------------------------


def test_fields_are_the_models_switches_of_the_same_findings() -> None:
    names = [f.name for f in fields(Readings)]
    assert sorted(names) == sorted(FINDING_READINGS.values())
    config_fields = {f.name for f in fields(Config)}
    for finding, name in FINDING_READINGS.items():
        assert name in config_fields
        assert FINDINGS[finding].config.switches_on() == {name: True}, finding
        field = next(f for f in fields(Readings) if f.name == name)
        assert field.default is False


def test_of_names_findings() -> None:
    assert Readings.of() == Readings()
    r = Readings.of("F1", "F12")
    assert r.literal_p4_subsecrets and r.derive_from_stale_epoch
    assert r.findings == ("F1", "F12") and r.any
    assert not Readings().any and Readings().findings == ()
    from mlsvc.errors import ParameterError
    with pytest.raises(ParameterError):
        Readings.of("F4")


def test_durable_state_keeps_the_readings_and_the_default_format() -> None:
    _, vc = make_vc(b"durable-default", names=("phone",))
    em = vc.emulators["phone"]
    assert records(em)["meta"][:2] == b"\x00\x01"  # format 1: unchanged by default
    store = MemoryStore()
    store.write(records(em))
    assert restore(store, em.rng).vc.readings == Readings()
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient
    on = Readings.of("F2", "F7", "F12")
    vc2 = VirtualClient.create(DeliveryService(), "bob", ["a"], seed=b"r", readings=on)
    em2 = vc2.emulators["a"]
    meta = records(em2)["meta"]
    assert meta[:2] == b"\x00\x02"
    store2 = MemoryStore()
    store2.write(records(em2))
    back = restore(store2, em2.rng)
    assert back.vc == em2.vc and back.vc.readings == on
    assert records(back) == records(em2)
