"""Two-member groups using the extensions-09 mechanisms through the thin ext layer:
SafeAAD on commits and application messages (§4.9), SafeExportSecret (§4.4), the
negotiation lists (§5) and AppDataUpdate on the wire (§4.7)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

import mlsvc.ext.app_data_update as adu_module
import mlsvc.messages.proposals as proposals_module
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, RemoteError, StateError, ValidationError
from mlsvc.ext.app_data_update import (
    AppDataUpdate,
    apply_app_data_updates,
    register_app_data_update,
)
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS as CP
from mlsvc.ext.components import (
    AppDataDictionary,
    capabilities_with_dictionary,
    check_group_supports,
    negotiation_dictionary,
)
from mlsvc.ext.safe_aad import SafeAADGroup, encode_items
from mlsvc.ext.safe_export import (
    SAFE_EXPORT_CONFIG_LABELS,
    ExportConsumedError,
    SafeExporter,
    SafeExporters,
)
from mlsvc.group.config import GroupConfig, Identity, default_capabilities
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.messages.extensions import Extension, RequiredCapabilities
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import GroupContextExtensions

ACTION = 0x8002  # profile P7: VirtualClientAction, a SafeAAD component
DERIVATION = 0x8001  # profile P7: the SafeExportSecret component


@pytest.fixture(autouse=True)
def _isolated_proposal_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test (register_app_data_update) end with it."""
    monkeypatch.setattr(proposals_module, "_PROPOSAL_CLASSES",
                        dict(proposals_module._PROPOSAL_CLASSES))
    monkeypatch.setattr(adu_module, "_REGISTERED", {})




def _config(name: str, encrypt_handshake: bool = False) -> GroupConfig:
    return GroupConfig(
        rng=SeededRandom(name.encode()), supported_extensions=(CP.app_data_dictionary,),
        additional_epoch_secrets=SAFE_EXPORT_CONFIG_LABELS, encrypt_handshake=encrypt_handshake,
    )


def _identity(suite: int, name: str) -> Identity:
    cs = get_suite(suite)
    return Identity.basic(name.encode(),
                          cs.signature.derive_key_pair(hashlib.sha512(name.encode()).digest()))


def pair(
    suite: int = 1, *, encrypt_handshake: bool = False, safe_aad: bool = True,
    bob_lists: tuple[int, ...] = (ACTION,),
) -> tuple[Group, Group]:
    """Alice creates a group whose GroupContext requires the ACTION component as
    app_components and safe_aad (when `safe_aad`), and app_data_dictionary and
    app_data_update in required_capabilities (profile P7), then adds Bob by Welcome."""
    from mlsvc.group.key_package import create_key_package

    register_app_data_update(CP)
    cs = get_suite(suite)
    caps = capabilities_with_dictionary(default_capabilities(suite),
                                        proposals=(CP.app_data_update,))
    alice_leaf = negotiation_dictionary([ACTION], [ACTION]).to_extension()
    bob_leaf = negotiation_dictionary(bob_lists, bob_lists).to_extension()
    gc = (negotiation_dictionary([ACTION], [ACTION] if safe_aad else None).to_extension(),
          RequiredCapabilities((CP.app_data_dictionary,), (CP.app_data_update,), ()).to_extension())
    alice = Group.create(suite, _identity(suite, "alice"), _config("alice", encrypt_handshake),
                         extensions=gc, capabilities=caps, leaf_extensions=(alice_leaf,))
    kp = create_key_package(cs, _identity(suite, "bob"), _config("bob kp"), capabilities=caps,
                            leaf_extensions=(bob_leaf,))
    alice.propose_add(kp)
    items = {ACTION: b"add bob"} if safe_aad else {}
    out = SafeAADGroup(alice, known_components={ACTION}).commit(items)
    alice.merge_pending_commit()
    assert out.welcome is not None
    bob = Group.join(out.welcome, kp, _config("bob", encrypt_handshake))
    return alice, bob


def _with_authenticated_data(message: bytes, new: bytes) -> bytes:
    """The same MLSMessage with authenticated_data replaced on the wire (no re-signing)."""
    msg = MLSMessage.decode(message)
    body = msg.body
    if isinstance(body, PublicMessage):
        content = dataclasses.replace(body.content, authenticated_data=new)
        return MLSMessage(dataclasses.replace(body, content=content)).encode()
    assert isinstance(body, PrivateMessage)
    return MLSMessage(dataclasses.replace(body, authenticated_data=new)).encode()


@pytest.mark.parametrize("encrypt_handshake", [False, True], ids=["public", "private"])
def test_safe_aad_items_on_a_commit_arrive_intact(encrypt_handshake: bool) -> None:
    alice, bob = pair(encrypt_handshake=encrypt_handshake)
    a = SafeAADGroup(alice, known_components={ACTION})
    b = SafeAADGroup(bob, known_components={ACTION})
    assert a.required and b.required
    out = a.commit({ACTION: b"\x01join", 0x0A0A: b"grease"}, tail=b"unsafe")
    received = b.process(out.commit)
    alice.merge_pending_commit()
    assert isinstance(received.event, CommitApplied)
    assert received.safe_aad is not None
    assert received.safe_aad.get(ACTION) == b"\x01join"
    assert received.safe_aad.known({ACTION}) == {ACTION: b"\x01join"}  # GREASE ignored
    assert received.safe_aad.tail == b"unsafe"
    # exactly the SafeAAD of §4.9 on the wire: 0x0A0A first, then 0x8002
    assert received.event.authenticated_data == bytes.fromhex(
        "11" "0a0a" "06" "677265617365" "8002" "05" "016a6f696e") + b"unsafe"
    assert alice.epoch == bob.epoch == 2


@pytest.mark.parametrize("encrypt_handshake", [False, True], ids=["public", "private"])
def test_a_tampered_item_fails_authentication(encrypt_handshake: bool) -> None:
    alice, bob = pair(encrypt_handshake=encrypt_handshake)
    a = SafeAADGroup(alice, known_components={ACTION})
    b = SafeAADGroup(bob, known_components={ACTION})
    out = a.commit({ACTION: b"remove leaf 3"})
    tampered = _with_authenticated_data(out.commit, encode_items({ACTION: b"remove leaf 4"}))
    epoch, tree_hash = bob.epoch, bob.tree.tree_hash()
    with pytest.raises(RemoteError):
        b.process(tampered)
    assert (bob.epoch, bob.tree.tree_hash()) == (epoch, tree_hash)
    received = b.process(out.commit)  # the genuine commit still applies
    assert received.safe_aad is not None
    assert received.safe_aad.get(ACTION) == b"remove leaf 3"


@pytest.mark.parametrize("encrypt_handshake", [False, True], ids=["public", "private"])
@pytest.mark.parametrize(
    ("authenticated_data", "check_id"),
    [
        (bytes.fromhex("06" "8002" "00" "0001" "00"), "EXT-SAFE-AAD-SORTED"),
        (bytes.fromhex("06" "8002" "00" "8002" "00"), "EXT-SAFE-AAD-SORTED"),
        (b"", "EXT-SAFE-AAD-REQUIRED"),
        (bytes.fromhex("05" "8002" "05" "00"), "EXT-SAFE-AAD-REQUIRED"),  # truncated item
    ],
)
def test_malformed_safe_aad_is_rejected_before_any_state_change(
    encrypt_handshake: bool, authenticated_data: bytes, check_id: str
) -> None:
    alice, bob = pair(encrypt_handshake=encrypt_handshake)
    b = SafeAADGroup(bob, known_components={ACTION})
    bad = alice.commit(authenticated_data=authenticated_data)  # the raw engine: no checks
    epoch, tree_hash = bob.epoch, bob.tree.tree_hash()
    with pytest.raises(ValidationError) as info:
        b.process(bad.commit)
    assert info.value.check_id == check_id
    assert (bob.epoch, bob.tree.tree_hash()) == (epoch, tree_hash)
    alice.clear_pending_commit()
    good = SafeAADGroup(alice, known_components={ACTION}).commit({ACTION: b"retry"})
    assert isinstance(b.process(good.commit).event, CommitApplied)


def test_application_messages_carry_items() -> None:
    alice, bob = pair()
    a = SafeAADGroup(alice, known_components={ACTION})
    b = SafeAADGroup(bob, known_components={ACTION})
    received = b.process(a.encrypt(b"payload", {ACTION: b"meta"}))
    assert isinstance(received.event, ApplicationMessage)
    assert received.event.data == b"payload"
    assert received.safe_aad is not None and received.safe_aad.get(ACTION) == b"meta"


def test_a_required_component_unknown_to_the_receiver_is_rejected() -> None:
    alice, bob = pair()
    b = SafeAADGroup(bob, known_components=set())
    out = SafeAADGroup(alice, known_components={ACTION}).commit({ACTION: b"x"})
    with pytest.raises(ValidationError) as info:
        b.process(out.commit)
    assert info.value.check_id == "EXT-COMPONENT-UNKNOWN"
    assert bob.epoch == 1


def test_without_safe_aad_in_the_group_context_items_cannot_be_sent() -> None:
    alice, bob = pair(safe_aad=False)
    a = SafeAADGroup(alice, known_components={ACTION})
    assert not a.required
    with pytest.raises(StateError):
        a.commit({ACTION: b"x"})
    out = a.commit(tail=b"\xff\xff opaque")
    received = SafeAADGroup(bob, known_components={ACTION}).process(out.commit)
    assert received.safe_aad is None
    assert isinstance(received.event, CommitApplied)
    assert received.event.authenticated_data == b"\xff\xff opaque"


def test_safe_export_secret_agrees_and_is_refused_twice() -> None:
    alice, bob = pair()
    exporters_a, exporters_b = SafeExporters(), SafeExporters()
    first = exporters_a.export(alice, DERIVATION)
    assert first == exporters_b.export(bob, DERIVATION)
    assert len(first) == get_suite(1).nh
    with pytest.raises(ExportConsumedError):
        exporters_a.export(alice, DERIVATION)
    with pytest.raises(ExportConsumedError):
        exporters_b.export(bob, DERIVATION)
    # other components are still available, and agree
    assert exporters_a.export(alice, 0xF001) == exporters_b.export(bob, 0xF001)
    # the group's copy of the root was taken: no second tree for this epoch
    with pytest.raises(StateError):
        SafeExporter.from_group(alice)
    # next epoch: a fresh tree
    out = SafeAADGroup(alice, known_components={ACTION}).commit({ACTION: b"next"})
    bob.process(out.commit)
    alice.merge_pending_commit()
    second = exporters_a.export(alice, DERIVATION)
    assert second == exporters_b.export(bob, DERIVATION) != first
    assert (alice.group_id, 1) not in exporters_a
    assert (alice.group_id, 2) in exporters_a


def test_group_without_the_root_configured_cannot_export() -> None:
    from mlsvc.group.config import GroupConfig as Config

    g = Group.create(1, _identity(1, "carol"), Config(rng=SeededRandom(b"carol")))
    with pytest.raises(StateError):
        SafeExporters().export(g, DERIVATION)


def test_every_member_supports_the_required_components() -> None:
    alice, _bob = pair()
    check_group_supports(alice.members(), alice.context.extensions)
    stricter = negotiation_dictionary([ACTION, 0x8003], [ACTION]).to_extension()
    with pytest.raises(ValidationError) as info:
        check_group_supports(alice.members(), (stricter,))
    assert info.value.check_id == "EXT-COMPONENT-UNSUPPORTED"


def test_app_data_update_travels_through_a_commit() -> None:
    """The engine carries the registered proposal type (validation, framing, transcript);
    both members then derive the same new GroupContext extensions with the §4.7 rules.
    (Applying them inside the engine needs a hook: see docs/EXTENSIONS.md.)"""
    alice, bob = pair()
    proposal = AppDataUpdate.updating(ACTION, b"state v1")
    out = alice.commit(proposals=(proposal,), authenticated_data=encode_items({}))
    event = bob.process(out.commit)
    alice.merge_pending_commit()
    assert isinstance(event, CommitApplied)
    assert event.proposals == (proposal,)

    def replace(current: bytes | None, updates: object) -> bytes:
        assert isinstance(updates, list)
        return bytes(updates[-1])

    before = alice.context.extensions
    new = apply_app_data_updates(before, event.proposals, {ACTION: replace})
    d = AppDataDictionary.find_in(new)
    assert d is not None and d.get(ACTION) == b"state v1"
    assert d.get(CP.safe_aad) is not None  # the negotiation entries are kept


def _gce_dictionary(data: bytes) -> tuple[Extension, ...]:
    """GroupContext extensions whose app_data_dictionary carries raw `data`, keeping the
    required_capabilities of `pair`."""
    return (Extension(CP.app_data_dictionary, data),
            RequiredCapabilities((CP.app_data_dictionary,), (CP.app_data_update,),
                                 ()).to_extension())


GOOD = negotiation_dictionary([ACTION], [ACTION]).encode()


@pytest.mark.parametrize(
    ("data", "error", "check_id"),
    [
        (GOOD[:-1], DecodeError, None),  # truncated dictionary
        (bytes.fromhex("06" "0002" "00" "0001" "00"), ValidationError, "EXT-DICT-SORTED"),
        (negotiation_dictionary([ACTION, 0x8009], [ACTION]).encode(), ValidationError,
         "EXT-COMPONENT-UNKNOWN"),
    ],
    ids=["truncated", "unsorted", "unknown-required"],
)
def test_a_bad_group_context_extensions_proposal_leaves_the_state_unchanged(
    data: bytes, error: type[Exception], check_id: str | None
) -> None:
    alice, bob = pair()
    b = SafeAADGroup(bob, known_components={ACTION})
    message = alice.propose_group_context_extensions(_gce_dictionary(data),
                                                     authenticated_data=b"\x00")
    with pytest.raises(error) as info:
        b.process(message)
    if check_id is not None:
        assert isinstance(info.value, ValidationError) and info.value.check_id == check_id
    assert bob.state.proposals == {}
    # the same content committed by value is refused before the epoch changes too
    out = alice.commit(proposals=(GroupContextExtensions(_gce_dictionary(data)),),
                       include_pending=False, authenticated_data=b"\x00")
    with pytest.raises(error):
        b.process(out.commit)
    assert bob.epoch == 1


def test_gce_may_not_change_the_dictionary_when_app_data_update_is_required() -> None:
    alice, bob = pair()
    b = SafeAADGroup(bob, known_components={ACTION, 0x8003})
    changed = negotiation_dictionary([ACTION], [ACTION], {0x8003: b"x"}).encode()
    out = alice.commit(proposals=(GroupContextExtensions(_gce_dictionary(changed)),),
                       authenticated_data=b"\x00")
    with pytest.raises(ValidationError) as info:
        b.process(out.commit)
    assert info.value.check_id == "EXT-GCE-DICT"
    assert bob.epoch == 1


def test_an_invalid_app_data_update_list_is_refused_before_the_epoch_changes() -> None:
    alice, bob = pair()
    b = SafeAADGroup(bob, known_components={ACTION})
    out = alice.commit(proposals=(AppDataUpdate.removing(ACTION),), authenticated_data=b"\x00")
    with pytest.raises(ValidationError) as info:
        b.process(out.commit)
    assert info.value.check_id == "EXT-ADU-REMOVE-ABSENT"
    assert bob.epoch == 1
