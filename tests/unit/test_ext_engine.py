"""The extensions through the engine's own hooks (ext/engine.py): the raw
Group.process rejects malformed SafeAAD before any state change, and AppDataUpdate
changes the GroupContext identically for committer and receiver."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import mlsvc.ext.app_data_update as adu_module
import mlsvc.messages.proposals as proposals_module
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ValidationError
from mlsvc.ext.app_data_update import AppDataUpdate
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS as CP
from mlsvc.ext.components import (
    AppDataDictionary,
    capabilities_with_dictionary,
    negotiation_dictionary,
)
from mlsvc.ext.engine import extension_config
from mlsvc.ext.safe_aad import encode_items
from mlsvc.ext.safe_export import SafeExporter
from mlsvc.group.config import GroupConfig, default_capabilities
from mlsvc.group.events import CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.messages.extensions import RequiredCapabilities
from tests.unit.test_group import agree, identity

ACTION = 0x8002  # a SafeAAD component (profile P7)
COUNTER = 0x8010  # a component whose data AppDataUpdate changes


@pytest.fixture(autouse=True)
def _isolated_proposal_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proposals_module, "_PROPOSAL_CLASSES",
                        dict(proposals_module._PROPOSAL_CLASSES))
    monkeypatch.setattr(adu_module, "_REGISTERED", {})


def add_up(current: bytes | None, updates: Sequence[bytes]) -> bytes | None:
    """COUNTER's update logic: the data is a big-endian sum."""
    total = int.from_bytes(current or b"\x00", "big") + sum(int.from_bytes(u, "big")
                                                          for u in updates)
    return total.to_bytes(4, "big")


def cfg(name: str, encrypt: bool) -> GroupConfig:
    ext = extension_config({COUNTER: add_up}, {ACTION})
    return GroupConfig(rng=SeededRandom(name.encode()), encrypt_handshake=encrypt, **ext)


def pair(encrypt: bool) -> tuple[Group, Group]:
    caps = capabilities_with_dictionary(default_capabilities(1),
                                        proposals=(CP.app_data_update,))
    leaf = negotiation_dictionary([ACTION], [ACTION]).to_extension()
    gc = (negotiation_dictionary([ACTION], [ACTION]).to_extension(),
          RequiredCapabilities((CP.app_data_dictionary,), (CP.app_data_update,), ())
          .to_extension())
    alice = Group.create(1, identity(1, "alice"), cfg("alice", encrypt), extensions=gc,
                         capabilities=caps, leaf_extensions=(leaf,))
    kp = create_key_package(get_suite(1), identity(1, "bob"), cfg("bob kp", encrypt),
                            capabilities=caps, leaf_extensions=(leaf,))
    alice.propose_add(kp)
    out = alice.commit(authenticated_data=encode_items({ACTION: b"add bob"}))
    alice.merge_pending_commit()
    assert out.welcome is not None
    return alice, Group.join(out.welcome, kp, cfg("bob", encrypt))


@pytest.mark.parametrize("encrypt", [False, True], ids=["public", "private"])
def test_malformed_safe_aad_never_reaches_the_state(encrypt: bool) -> None:
    alice, bob = pair(encrypt)
    bad = alice.commit(authenticated_data=b"")
    before = (bob.epoch, bob.epoch_authenticator)
    with pytest.raises(ValidationError) as err:
        bob.process(bad.commit)
    assert err.value.check_id == "EXT-SAFE-AAD-REQUIRED"
    assert (bob.epoch, bob.epoch_authenticator) == before
    alice.clear_pending_commit()
    good = alice.commit(authenticated_data=encode_items({ACTION: b"ok"}))
    alice.merge_pending_commit()
    assert isinstance(bob.process(good.commit), CommitApplied)
    agree(alice, bob)


@pytest.mark.parametrize("encrypt", [False, True], ids=["public", "private"])
def test_app_data_update_is_applied_by_the_engine(encrypt: bool) -> None:
    alice, bob = pair(encrypt)
    aad = encode_items({ACTION: b"count"})
    for n in (b"\x02", b"\x05"):
        bob.process(alice.propose(AppDataUpdate.updating(COUNTER, n), aad))
    out = bob.commit(authenticated_data=aad)
    bob.merge_pending_commit()
    assert isinstance(alice.process(out.commit), CommitApplied)
    agree(alice, bob)
    for g in (alice, bob):
        d = AppDataDictionary.find_in(g.context.extensions, CP)
        assert d is not None and d.get(COUNTER) == (7).to_bytes(4, "big")


def test_safe_exporter_from_the_engine_secret() -> None:
    alice, bob = pair(False)
    ea, eb = SafeExporter.from_group(alice), SafeExporter.from_group(bob)
    assert ea.export(0x8001) == eb.export(0x8001)
