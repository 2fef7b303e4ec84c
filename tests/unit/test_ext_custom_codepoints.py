"""The extensions under code points other than -09's suggested ones (profile P1, A11):
every function that takes a `CodePoints` must use the one it is given. The engine
scenario of test_ext_engine.py runs here with every extension, proposal and component
type moved; a function that fell back to the defaults would look for the dictionary,
the components or the proposal type under the wrong number and this scenario would
fail (the default numbers are absent from these groups)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

import mlsvc.ext.app_data_update as adu_module
import mlsvc.messages.proposals as proposals_module
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ValidationError
from mlsvc.ext.app_data_update import AppDataUpdate, register_app_data_update
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS, CodePoints
from mlsvc.ext.components import (
    AppDataDictionary,
    capabilities_with_dictionary,
    check_group_supports,
    check_leaf_supports,
    check_required_known,
    negotiation_dictionary,
)
from mlsvc.ext.engine import extension_config
from mlsvc.ext.safe_aad import (
    SafeAADGroup,
    check_authenticated_data,
    check_proposed_extensions,
    encode_items,
)
from mlsvc.group.config import GroupConfig, default_capabilities
from mlsvc.group.events import CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.messages.commit import Commit
from mlsvc.messages.extensions import RequiredCapabilities
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import GroupContextExtensions
from tests.unit.test_ext_engine import add_up
from tests.unit.test_group import agree, identity

CP = CodePoints(app_data_dictionary=0xF0A6, app_data_update=0xF0A8, app_components=0x0F01,
                safe_aad=0x0F02)
ACTION = 0x8002
COUNTER = 0x8010
OTHER = 0x8011


@pytest.fixture(autouse=True)
def _isolated_proposal_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proposals_module, "_PROPOSAL_CLASSES",
                        dict(proposals_module._PROPOSAL_CLASSES))
    monkeypatch.setattr(adu_module, "_REGISTERED", {})


def cfg(name: str, allow_tail: bool = True) -> GroupConfig:
    ext = extension_config({COUNTER: add_up, OTHER: add_up}, {ACTION}, CP,
                           allow_tail=allow_tail)
    return GroupConfig(rng=SeededRandom(name.encode()), **ext)


def pair(allow_tail: bool = True) -> tuple[Group, Group]:
    caps = capabilities_with_dictionary(default_capabilities(1),
                                        proposals=(CP.app_data_update,), cp=CP)
    leaf = negotiation_dictionary([ACTION], [ACTION], cp=CP).to_extension(CP)
    gc = (negotiation_dictionary([ACTION], [ACTION], cp=CP).to_extension(CP),
          RequiredCapabilities((CP.app_data_dictionary,), (CP.app_data_update,), ())
          .to_extension())
    alice = Group.create(1, identity(1, "alice"), cfg("alice", allow_tail), extensions=gc,
                         capabilities=caps, leaf_extensions=(leaf,))
    kp = create_key_package(get_suite(1), identity(1, "bob"), cfg("bob kp", allow_tail),
                            capabilities=caps, leaf_extensions=(leaf,))
    alice.propose_add(kp)
    out = alice.commit(authenticated_data=encode_items({ACTION: b"add bob"}))
    alice.merge_pending_commit()
    assert out.welcome is not None
    return alice, Group.join(out.welcome, kp, cfg("bob", allow_tail))


def test_the_default_numbers_are_absent() -> None:
    alice, _ = pair()
    types = {e.extension_type for e in alice.context.extensions}
    assert CP.app_data_dictionary in types
    assert DEFAULT_CODEPOINTS.app_data_dictionary not in types
    d = AppDataDictionary.find_in(alice.context.extensions, CP)
    assert d is not None and set(d.component_ids()) == {CP.app_components, CP.safe_aad}
    assert AppDataDictionary.find_in(alice.context.extensions) is None


def test_app_data_update_under_moved_code_points() -> None:
    alice, bob = pair()
    aupd = register_app_data_update(CP)
    assert CP.app_data_update == aupd.PROPOSAL_TYPE
    aad = encode_items({ACTION: b"count"})
    for n in (b"\x02", b"\x05"):
        bob.process(alice.propose(aupd.updating(COUNTER, n), aad))
    out = bob.commit(authenticated_data=aad)
    bob.merge_pending_commit()
    assert isinstance(alice.process(out.commit), CommitApplied)
    agree(alice, bob)
    for g in (alice, bob):
        d = AppDataDictionary.find_in(g.context.extensions, CP)
        assert d is not None and d.get(COUNTER) == (7).to_bytes(4, "big")
    # a second round removes it again
    bob.process(alice.propose(aupd.removing(COUNTER), aad))
    out = bob.commit(authenticated_data=aad)
    bob.merge_pending_commit()
    alice.process(out.commit)
    d = AppDataDictionary.find_in(alice.context.extensions, CP)
    assert d is not None and d.get(COUNTER) is None


def test_safe_aad_required_under_moved_code_points() -> None:
    alice, bob = pair()
    exts = alice.context.extensions
    assert check_authenticated_data(exts, b"", DEFAULT_CODEPOINTS) is None  # not found
    with pytest.raises(ValidationError) as err:
        check_authenticated_data(exts, b"", CP)
    assert err.value.check_id == "EXT-SAFE-AAD-REQUIRED"
    bad = alice.commit(authenticated_data=b"")
    with pytest.raises(ValidationError) as err:
        bob.process(bad.commit)
    assert err.value.check_id == "EXT-SAFE-AAD-REQUIRED"
    alice.clear_pending_commit()
    layer_a = SafeAADGroup(alice, known_components={ACTION}, codepoints=CP)
    layer_b = SafeAADGroup(bob, known_components={ACTION}, codepoints=CP)
    assert layer_a.required
    assert not SafeAADGroup(alice).required
    out = layer_a.commit({ACTION: b"moved"})
    alice.merge_pending_commit()
    parsed = layer_b.check(out.commit)
    assert parsed is not None and parsed.get(ACTION) == b"moved"
    layer_b.process(out.commit)
    agree(alice, bob)


def test_a_tail_is_refused_when_the_engine_forbids_it() -> None:
    alice, bob = pair(allow_tail=False)
    bad = alice.commit(authenticated_data=encode_items({ACTION: b"x"}, b"tail"))
    with pytest.raises(ValidationError) as err:
        bob.process(bad.commit)
    assert err.value.check_id == "EXT-SAFE-AAD-TAIL"
    alice.clear_pending_commit()
    lenient_a, lenient_b = pair()
    ok = lenient_a.commit(authenticated_data=encode_items({ACTION: b"x"}, b"tail"))
    lenient_a.merge_pending_commit()
    assert isinstance(lenient_b.process(ok.commit), CommitApplied)


def test_capability_checks_under_moved_code_points() -> None:
    alice, _ = pair()
    exts = alice.context.extensions
    members = alice.members()
    check_group_supports(members, exts, CP)
    for _, leaf in members:
        check_leaf_supports(leaf, exts, CP)
    stricter = negotiation_dictionary([ACTION, 0x8003], [ACTION], cp=CP).to_extension(CP)
    with pytest.raises(ValidationError):
        check_group_supports(members, (stricter,), CP)
    check_required_known((stricter,), {ACTION, 0x8003}, CP)
    with pytest.raises(ValidationError):
        check_required_known((stricter,), {ACTION}, CP)
    # the same list under the default numbers is not a components list at all
    check_required_known((stricter,), {ACTION}, DEFAULT_CODEPOINTS)


def test_group_context_extensions_checked_under_moved_code_points() -> None:
    alice, bob = pair()
    stricter = negotiation_dictionary([ACTION, 0x8003], [ACTION], cp=CP).to_extension(CP)
    required = RequiredCapabilities((CP.app_data_dictionary,), (CP.app_data_update,), ())
    with pytest.raises(ValidationError):
        alice.commit([GroupContextExtensions((stricter, required.to_extension()))],
                     authenticated_data=encode_items({ACTION: b"gce"}))
    assert bob.epoch == alice.epoch


def test_registered_subclass_keeps_slots() -> None:
    cls = register_app_data_update(CP)
    assert cls is not AppDataUpdate and cls.__dict__["__slots__"] == ()
    assert not hasattr(cls.updating(COUNTER, b"\x01"), "__dict__")


def test_a_remove_does_not_stop_the_other_components() -> None:
    """One commit removes COUNTER and updates OTHER: both happen (§4.7, per component)."""
    alice, bob = pair()
    aupd = register_app_data_update(CP)
    aad = encode_items({ACTION: b"x"})
    bob.process(alice.propose(aupd.updating(COUNTER, b"\x01"), aad))
    out = bob.commit(authenticated_data=aad)
    bob.merge_pending_commit()
    alice.process(out.commit)
    for p in (aupd.removing(COUNTER), aupd.updating(OTHER, b"\x03")):
        bob.process(alice.propose(p, aad))
    out = bob.commit(authenticated_data=aad)
    bob.merge_pending_commit()
    alice.process(out.commit)
    for g in (alice, bob):
        d = AppDataDictionary.find_in(g.context.extensions, CP)
        assert d is not None and d.get(COUNTER) is None
        assert d.get(OTHER) == (3).to_bytes(4, "big")


def test_safe_aad_list_checked_when_no_app_components_list() -> None:
    """A GroupContext with a safe_aad list but no app_components list: a leaf lacking
    the safe_aad component is refused (the missing list is skipped, not the rest)."""
    gc = (negotiation_dictionary(None, [ACTION], cp=CP).to_extension(CP),)
    leaf_has = negotiation_dictionary(None, [ACTION], cp=CP).to_extension(CP)
    leaf_lacks = negotiation_dictionary(None, [0x8003], cp=CP).to_extension(CP)
    caps = capabilities_with_dictionary(default_capabilities(1), cp=CP)
    alice, _ = pair()
    leaf = dict(alice.members())[alice.own_leaf]
    ok = replace(leaf, extensions=(leaf_has,), capabilities=caps)
    bad = replace(leaf, extensions=(leaf_lacks,), capabilities=caps)
    check_leaf_supports(ok, gc, CP)
    with pytest.raises(ValidationError) as err:
        check_leaf_supports(bad, gc, CP)
    assert err.value.check_id == "EXT-COMPONENT-UNSUPPORTED"


def test_app_data_update_rule_no_path_external_allowed() -> None:
    """extensions-09 §4.7 / §7.3: AppDataUpdate needs no UpdatePath and may be sent in an
    external commit. A commit of AppDataUpdates alone goes without a path, and both
    sides accept it."""
    rule = cfg("x").proposal_types[CP.app_data_update]
    assert rule.path_required is False and rule.external_commit_allowed is True
    alice, bob = pair()
    aupd = register_app_data_update(CP)
    aad = encode_items({ACTION: b"x"})
    out = alice.commit([aupd.updating(COUNTER, b"\x01")], authenticated_data=aad)
    alice.merge_pending_commit()
    body = MLSMessage.decode(out.commit).body
    assert isinstance(body, PublicMessage)
    commit = body.content.content
    assert isinstance(commit, Commit) and commit.path is None
    assert isinstance(bob.process(out.commit), CommitApplied)
    agree(alice, bob)


def _check_id(call: Callable[[], object]) -> str:
    with pytest.raises(ValidationError) as err:
        call()
    return err.value.check_id


def test_proposed_extensions_checked_under_moved_code_points() -> None:
    """check_proposed_extensions with moved code points, one rule at a time: each must
    find the dictionary, the components and the AppDataUpdates under CP's numbers."""
    alice, _ = pair()
    cur, members = alice.context.extensions, alice.members()
    aupd = register_app_data_update(CP)
    needs_8003 = negotiation_dictionary([ACTION, 0x8003], [ACTION], cp=CP).to_extension(CP)
    no_adu = (RequiredCapabilities((CP.app_data_dictionary,), (), ()).to_extension(),)
    gce = GroupContextExtensions((needs_8003, *no_adu))
    # required components unknown to the application (checked first)
    assert _check_id(lambda: check_proposed_extensions(
        cur, members, [gce], {ACTION}, CP)) == "EXT-COMPONENT-UNKNOWN"
    # known, but not supported by the members (a GroupContext without app_data_update)
    assert _check_id(lambda: check_proposed_extensions(
        no_adu, members, [gce], {ACTION, 0x8003}, CP)) == "EXT-COMPONENT-UNSUPPORTED"
    # app_data_update is required: the dictionary may not change by GCE
    assert _check_id(lambda: check_proposed_extensions(
        cur, members, [gce], {ACTION, 0x8003}, CP)) == "EXT-GCE-DICT"
    # an AppDataUpdate removing a component that has no data
    assert _check_id(lambda: check_proposed_extensions(
        cur, members, [aupd.removing(OTHER)], {ACTION, OTHER}, CP)) == "EXT-ADU-REMOVE-ABSENT"


def test_invalid_app_data_update_list_under_moved_code_points() -> None:
    """The engine validates an AppDataUpdate list of the moved type before applying it."""
    alice, _ = pair()
    aupd = register_app_data_update(CP)
    with pytest.raises(ValidationError) as err:
        alice.commit([aupd.removing(OTHER)], authenticated_data=encode_items({ACTION: b"x"}))
    assert err.value.check_id == "EXT-ADU-REMOVE-ABSENT"


def test_safe_aad_layer_checks_under_moved_code_points() -> None:
    alice, bob = pair()
    aad = encode_items({ACTION: b"x"})
    msg = alice.propose(register_app_data_update(CP).updating(COUNTER, b"\x01"), aad)
    # the current GroupContext requires ACTION, which this layer does not know
    assert _check_id(lambda: SafeAADGroup(bob, codepoints=CP).check(msg)
                     ) == "EXT-COMPONENT-UNKNOWN"
    parsed = SafeAADGroup(bob, known_components={ACTION, COUNTER}, codepoints=CP).check(msg)
    assert parsed is not None
    bad = alice.propose(register_app_data_update(CP).removing(OTHER), aad)
    assert _check_id(lambda: SafeAADGroup(bob, known_components={ACTION, OTHER},
                                          codepoints=CP).check(bad)) == "EXT-ADU-REMOVE-ABSENT"
