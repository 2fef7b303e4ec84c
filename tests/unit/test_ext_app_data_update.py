"""The AppDataUpdate proposal (extensions-09 §4.7): its wire form inside RFC 9420's
Proposal union, the list validity rules, application to the GroupContext extensions
and the GroupContextExtensions restriction."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import mlsvc.ext.app_data_update as adu_module
import mlsvc.messages.proposals as proposals_module
from mlsvc.errors import DecodeError, ParameterError, ValidationError
from mlsvc.ext.app_data_update import (
    AppDataUpdate,
    AppDataUpdateOperation,
    apply_app_data_updates,
    check_gce_keeps_dictionary,
    register_app_data_update,
    validate_app_data_updates,
)
from mlsvc.ext.codepoints import CodePoints
from mlsvc.ext.components import AppDataDictionary
from mlsvc.messages.extensions import ApplicationId, RequiredCapabilities
from mlsvc.messages.proposals import Remove, decode_proposal, encode_proposal
from mlsvc.types import LeafIndex

A, B = 0x8001, 0x8002


@pytest.fixture(autouse=True)
def _isolated_proposal_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test (register_app_data_update) end with it."""
    monkeypatch.setattr(proposals_module, "_PROPOSAL_CLASSES",
                        dict(proposals_module._PROPOSAL_CLASSES))
    monkeypatch.setattr(adu_module, "_REGISTERED", {})


def test_wire_form_in_the_proposal_union() -> None:
    """uint16 proposal_type || uint16 component_id || uint8 op || (update<V>)."""
    register_app_data_update()
    upd = AppDataUpdate.updating(A, b"\xaa\xbb")
    rem = AppDataUpdate.removing(B)
    assert upd.encode() == bytes.fromhex("8001" "01" "02" "aabb")
    assert rem.encode() == bytes.fromhex("8002" "02")
    assert encode_proposal(upd) == bytes.fromhex("0008" "8001" "01" "02" "aabb")
    assert decode_proposal(bytes.fromhex("0008" "8001" "01" "02" "aabb")) == upd
    assert decode_proposal(bytes.fromhex("0008" "8002" "02")) == rem


@pytest.mark.parametrize("body", ["800100", "800103", "8001ff", "800101", "8001"])
def test_bad_operations_and_truncation_are_decode_errors(body: str) -> None:
    register_app_data_update()
    with pytest.raises(DecodeError):
        decode_proposal(bytes.fromhex("0008" + body))


def test_inconsistent_construction_is_refused() -> None:
    with pytest.raises(ParameterError):
        AppDataUpdate(A, AppDataUpdateOperation.REMOVE, b"x")
    with pytest.raises(ParameterError):
        AppDataUpdate(A, AppDataUpdateOperation.UPDATE)
    with pytest.raises(ParameterError):
        AppDataUpdate.updating(0x10000, b"")


def test_a_configured_code_point() -> None:
    cls = register_app_data_update(CodePoints(app_data_update=0xF0F8))
    assert cls.PROPOSAL_TYPE == 0xF0F8 and issubclass(cls, AppDataUpdate)
    assert register_app_data_update(CodePoints(app_data_update=0xF0F8)) is cls
    p = cls.updating(A, b"")
    assert encode_proposal(p) == bytes.fromhex("f0f8" "8001" "01" "00")
    assert decode_proposal(encode_proposal(p)) == p


def _concat(current: bytes | None, updates: Sequence[bytes]) -> bytes:
    return (current or b"") + b"".join(updates)


def _refuse(current: bytes | None, updates: Sequence[bytes]) -> bytes | None:
    return None


APP_ID = ApplicationId(b"app").to_extension()


def test_updates_are_applied_in_commit_order_and_kept_sorted() -> None:
    start = (AppDataDictionary.of({B: b"b0"}).to_extension(), APP_ID)
    proposals = [AppDataUpdate.updating(B, b"1"), Remove(LeafIndex(3)),
                 AppDataUpdate.updating(A, b"x"), AppDataUpdate.updating(B, b"2")]
    out = apply_app_data_updates(start, proposals, {A: _concat, B: _concat})
    assert out[1] == APP_ID  # replaced in place
    d = AppDataDictionary.find_in(out)
    assert d is not None and d.as_dict() == {A: b"x", B: b"b012"}
    assert d.component_ids() == (A, B)


def test_a_dictionary_is_appended_when_absent_and_nothing_changes_without_updates() -> None:
    out = apply_app_data_updates((APP_ID,), [AppDataUpdate.updating(A, b"v")], {A: _concat})
    assert out == (APP_ID, AppDataDictionary.of({A: b"v"}).to_extension())
    assert apply_app_data_updates((APP_ID,), [Remove(LeafIndex(1))], {}) == (APP_ID,)


def test_remove() -> None:
    start = (AppDataDictionary.of({A: b"a", B: b"b"}).to_extension(),)
    out = apply_app_data_updates(start, [AppDataUpdate.removing(A)], {}, known={A, B})
    assert out == (AppDataDictionary.of({B: b"b"}).to_extension(),)


@pytest.mark.parametrize(
    ("proposals", "check_id"),
    [
        ([AppDataUpdate.updating(0x9999, b"")], "EXT-ADU-UNKNOWN"),
        ([AppDataUpdate.removing(B)], "EXT-ADU-REMOVE-ABSENT"),
        ([AppDataUpdate.removing(A), AppDataUpdate.removing(A)], "EXT-ADU-MIXED"),
        ([AppDataUpdate.updating(A, b""), AppDataUpdate.removing(A)], "EXT-ADU-MIXED"),
    ],
)
def test_invalid_lists(proposals: list[AppDataUpdate], check_id: str) -> None:
    start = (AppDataDictionary.of({A: b"a"}).to_extension(),)
    with pytest.raises(ValidationError) as info:
        apply_app_data_updates(start, proposals, {A: _concat, B: _concat})
    assert info.value.check_id == check_id
    with pytest.raises(ValidationError):
        validate_app_data_updates(proposals, AppDataDictionary.find_in(start), {A, B})


def test_the_component_logic_can_refuse() -> None:
    with pytest.raises(ValidationError) as info:
        apply_app_data_updates((), [AppDataUpdate.updating(A, b"")], {A: _refuse})
    assert info.value.check_id == "EXT-ADU-REJECTED"
    with pytest.raises(ValidationError) as info:  # known but without update logic
        apply_app_data_updates((), [AppDataUpdate.updating(A, b"")], {}, known={A})
    assert info.value.check_id == "EXT-ADU-UNKNOWN"


def test_gce_must_not_touch_the_dictionary_once_app_data_update_is_required() -> None:
    d1 = AppDataDictionary.of({A: b"1"}).to_extension()
    d2 = AppDataDictionary.of({A: b"2"}).to_extension()
    req = RequiredCapabilities((0x0006,), (0x0008,), ()).to_extension()
    check_gce_keeps_dictionary((d1,), (d2,))  # not required: allowed
    check_gce_keeps_dictionary((d1, req), (d1, req, APP_ID))
    for proposed in ((d2, req), (req,)):
        with pytest.raises(ValidationError) as info:
            check_gce_keeps_dictionary((d1, req), proposed)
        assert info.value.check_id == "EXT-GCE-DICT"
