"""Generated draft-00 virtual-client vectors (vectors/generated/vc-draft-00.json,
docs/VC_VECTORS.md): the committed file passes the checker for all seven suites, it is
byte for byte what the generator writes, one changed digit in any kind of field is
reported with that field's name, unknown and missing fields are errors, a generator with
an injected bug (a parameter of the generator, the checker untouched) is caught, and
the command line exits non-zero on any failure."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlsvc.cli import main
from mlsvc.conformance import vc
from mlsvc.conformance.registry import run_folder
from tests.conftest import VECTORS

PATH = VECTORS / "generated" / "vc-draft-00.json"
SECTIONS = ("epoch_secrets", "operations", "operation_keys", "derivation_info",
            "reuse_guard", "generation_id", "encodings", "scenario",
            "new_emulator_client_state", "resync_message")


@cache
def _text() -> str:
    return PATH.read_text()


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(_text())
    return cases


def test_the_committed_file_passes_for_all_seven_suites() -> None:
    result = vc.run(_cases())
    assert result.failed == 0, [c.detail for c in result.failures()]
    assert result.passed == 7 * len(SECTIONS)
    assert set(result.by_suite()) == {str(s) for s in range(1, 8)}
    assert all(row == {"passed": len(SECTIONS), "failed": 0, "skipped": 0}
               for row in result.by_suite().values())


def test_the_folder_runner_reports_it() -> None:
    report = run_folder(PATH.parent)
    assert report.ok and "vc-draft-00" in {r.name for r in report.results}


def test_regeneration_is_byte_identical() -> None:
    assert vc.dump(vc.generate()) == _text()


def test_every_suite_has_every_section_and_the_whole_scenario() -> None:
    for case in _cases():
        assert set(case) == {"cipher_suite", *SECTIONS}
        kinds = [m["kind"] for m in case["scenario"]["messages"]]
        assert kinds == ["emulation_commit", "emulation_commit", "key_package",
                         "member_commit", "welcome", "vc_commit", "application"]
        assert [d["punctured"] for d in case["operations"]["resample"]["draws"]] == [True,
                                                                                     False]
        necs = case["new_emulator_client_state"]
        assert [g["mode"] for g in necs["groups"]] == ["state_transfer", "external_join"]
        # both sides of optional<>: epochs outside the P19 window keep no PPRF
        assert {e["pprf_nodes"] is None for e in necs["epochs"]} == {True, False}
        assert necs["proposed"] == 1 and len(necs["key_package_refs"]) == 1
        assert any(e["retained"] for e in necs["epochs"])  # a Q7 RetainedOperation
        assert case["resync_message"]["removed"] == "tablet"


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _flip_middle(value: str) -> str:
    i = len(value) // 2
    return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1:]


# (path into one suite's object, what to change, text the report must contain)
CORRUPTIONS: dict[str, tuple[tuple[str | int, ...], Any, str]] = {
    "epoch_id": (("epoch_secrets", 0, "epoch_id"), _flip, "epoch_secrets[0].epoch_id"),
    "generation_id_secret": (("epoch_secrets", 1, "generation_id_secret"), _flip,
                             "epoch_secrets[1].generation_id_secret"),
    "application_export_secret": (("epoch_secrets", 1, "application_export_secret"), _flip,
                                  "epoch_secrets[1].application_export_secret"),
    "pprf_input": (("operations", "derivations", 0, "pprf_input"), _flip,
                   "derivations[0].pprf_input"),
    "pprf_leaf": (("operations", "derivations", 1, "pprf_leaf"), lambda v: v ^ 1,
                  "derivations[1].pprf_leaf"),
    "operation_secret": (("operations", "derivations", 2, "operation_secret"), _flip,
                         "derivations[2].operation_secret"),
    "pprf_state": (("operations", "derivations", 1, "state"), _flip_middle,
                   "derivations[1].state"),
    "state_nodes": (("operations", "derivations", 0, "state_nodes"), lambda v: v + 1,
                    "derivations[0].state_nodes"),
    "resample_secret": (("operations", "resample", "operation_secret"), _flip,
                        "resample.operation_secret"),
    "resample_flag": (("operations", "resample", "draws", 0, "punctured"), lambda v: not v,
                      "draws[0].punctured"),
    "init_public_key": (("operation_keys", 0, "init_public_key"), _flip,
                        "operation_keys[0].init_public_key"),
    "signature_private_key": (("operation_keys", 1, "signature_private_key"), _flip,
                              "operation_keys[1].signature_private_key"),
    "external_init": (("operation_keys", 0, "external_init_kem_output"), _flip,
                      "operation_keys[0].external_init_kem_output"),
    "path_generation_secret": (("operation_keys", 1, "path_generation_secret"), _flip,
                               "operation_keys[1].path_generation_secret"),
    "di_nonce": (("derivation_info", 0, "nonce"), _flip, "derivation_info[0].nonce"),
    "di_ciphertext": (("derivation_info", 1, "ciphertext"), _flip_middle,
                      "derivation_info[1].ciphertext"),
    "di_extension": (("derivation_info", 0, "leaf_extension"), _flip,
                     "derivation_info[0].leaf_extension"),
    "prp_key": (("reuse_guard", 3, "prp_key"), _flip, "reuse_guard[3].prp_key"),
    "reuse_guard": (("reuse_guard", 2, "reuse_guard"), _flip, "reuse_guard[2].reuse_guard"),
    "recovered_x": (("reuse_guard", 4, "recovered_x"), lambda v: v ^ 8,
                    "reuse_guard[4].recovered_x"),
    "x_off_class": (("reuse_guard", 2, "x"), lambda v: v ^ 1, "reuse_guard[2]: inputs"),
    "generation_id": (("generation_id", "ids", 7, "generation_id"), _flip,
                      "ids[7].generation_id"),
    "pm_context": (("generation_id", "ids", 2, "private_message_context"), _flip,
                   "ids[2].private_message_context"),
    "kpu_encoded": (("encodings", "key_package_upload", "encoded"), _flip,
                    "key_package_upload.encoded"),
    "ej_safe_aad": (("encodings", "external_join", "safe_aad"), _flip,
                    "external_join.safe_aad"),
    "scenario_epoch": (("scenario", "emulation_epochs", 1, "epoch_encryption_key"), _flip,
                       "emulation_epochs[1].epoch_encryption_key"),
    "scenario_kpu_commit": (("scenario", "messages", 1, "message"), _flip_middle,
                            "messages[1]"),
    "scenario_action": (("scenario", "messages", 1, "action"), _flip, "messages[1]"),
    "scenario_key_package": (("scenario", "messages", 2, "message"), _flip_middle,
                             "messages[2]"),
    "scenario_member_commit": (("scenario", "messages", 3, "message"), _flip,
                               "messages[3]"),
    "scenario_welcome": (("scenario", "messages", 4, "message"), _flip, "messages[4]"),
    "scenario_vc_commit": (("scenario", "messages", 5, "message"), _flip_middle,
                           "messages[5]"),
    "scenario_application": (("scenario", "messages", 6, "message"), _flip, "messages[6]"),
    "scenario_reuse_guard": (("scenario", "messages", 6, "reuse_guard"), _flip,
                             "messages[6] (application).reuse_guard"),
    "scenario_emulator": (("scenario", "messages", 6, "emulator_leaf_index"),
                          lambda v: v ^ 2, "messages[6] (application).emulator_leaf_index"),
    "scenario_generation_id": (("scenario", "messages", 6, "generation_id"), _flip,
                               "messages[6] (application).generation_id"),
    "necs_encoded_middle": (("new_emulator_client_state", "encoded"), _flip_middle,
                            "new_emulator_client_state"),
    "necs_encoded_last": (("new_emulator_client_state", "encoded"), _flip,
                          "new_emulator_client_state.encoded"),
    "necs_signature_key": (("new_emulator_client_state", "signature_private_key"), _flip,
                           "new_emulator_client_state.signature_private_key"),
    "necs_epoch_root": (("new_emulator_client_state", "emulation_epochs", 0,
                         "application_export_secret"), _flip, "emulation_epochs[0]"),
    "necs_epoch_id": (("new_emulator_client_state", "emulation_epochs", 2, "epoch_id"), _flip,
                      "emulation_epochs[2].epoch_id"),
    "necs_group_auth": (("new_emulator_client_state", "groups", 0, "epoch_authenticator"),
                        _flip, "epoch_authenticator"),
    "necs_group_mode": (("new_emulator_client_state", "groups", 1, "mode"),
                        lambda v: "state_transfer", ".mode"),
    "necs_group_leaf": (("new_emulator_client_state", "groups", 0, "vc_leaf_index"),
                        lambda v: v + 1, "own leaf"),
    "necs_kp_ref": (("new_emulator_client_state", "key_package_refs", 0), _flip,
                    "KeyPackageRefs"),
    "necs_pprf_nodes": (("new_emulator_client_state", "epochs", 3, "pprf_nodes"),
                        lambda v: v + 1, "new_emulator_client_state.epochs"),
    "necs_proposed": (("new_emulator_client_state", "proposed"), lambda v: v + 1,
                      "new_emulator_client_state.proposed"),
    "resync_encoded": (("resync_message", "encoded"), _flip, "resync_message.encoded"),
    "resync_key": (("resync_message", "signature_private_key"), _flip,
                   "resync_message.encoded"),
    "resync_message": (("resync_message", "message"), _flip_middle, "resync_message.message"),
    "resync_content_key": (("resync_message", "content_key"), _flip, "content_key"),
    "resync_epoch": (("resync_message", "epoch"), lambda v: v + 1, "resync_message.epoch"),
    "resync_signer": (("resync_message", "sender_signature_key"), _flip, "signature"),
}


def _corrupted(suite_index: int, path: tuple[str | int, ...], change: Any
               ) -> list[dict[str, Any]]:
    case = copy.deepcopy(_cases()[suite_index])
    obj: Any = case
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = change(obj[path[-1]])
    return [case]


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_one_changed_value_is_reported_by_name(name: str) -> None:
    path, change, where = CORRUPTIONS[name]
    suite_index = sorted(CORRUPTIONS).index(name) % 7  # spread over the suites
    result = vc.run(_corrupted(suite_index, path, change))
    failures = result.failures()
    assert len(failures) == 1, [c.detail for c in failures]
    assert where in failures[0].detail, failures[0].detail
    assert failures[0].suite == suite_index + 1
    assert result.passed == len(SECTIONS) - 1


@pytest.mark.parametrize("change", ["unknown-top", "missing-top", "unknown-nested",
                                    "missing-nested", "not-hex", "wrong-type"])
def test_malformed_fields_are_errors(change: str) -> None:
    case = copy.deepcopy(_cases()[0])
    if change == "unknown-top":
        case["comment"] = []
    elif change == "missing-top":
        del case["reuse_guard"]
    elif change == "unknown-nested":
        case["operation_keys"][0]["comment"] = "x"
    elif change == "missing-nested":
        del case["scenario"]["messages"][6]["content_key"]
    elif change == "not-hex":
        case["derivation_info"][0]["key"] = "zz"
    else:
        case["generation_id"]["ids"][0]["generation"] = "0"
    result = vc.run([case])
    assert result.failed == 1, [c.detail for c in result.cases]
    assert ("missing" in result.failures()[0].detail or "not" in result.failures()[0].detail)


@pytest.mark.parametrize("fault", sorted(vc.FAULTS))
def test_an_injected_generator_bug_is_caught(fault: str) -> None:
    """The generator is given a bug by parameter; the checker is not touched."""
    result = vc.run(vc.generate((1,), frozenset({fault})))
    assert result.failed >= 1, f"{fault} went unnoticed"
    sane = vc.run(vc.generate((1,)))
    assert sane.failed == 0


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "check", "vc", str(PATH), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["passed"] == 7 * len(SECTIONS)
    bad = _cases()
    bad[3]["reuse_guard"][0]["reuse_guard"] = _flip(bad[3]["reuse_guard"][0]["reuse_guard"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["vectors", "check", "vc", str(path)]) == 1
    out = capsys.readouterr().out
    assert "reuse_guard[0].reuse_guard" in out and "FAILED" in out
    path.write_text("{not json")
    assert main(["vectors", "check", "vc", str(path)]) == 2


def _flip_byte(value: str, i: int) -> str:
    """Bit 4 of byte i: never one of the bits X25519/X448 clamping ignores in a private
    key (with those, a changed bit can leave the key pair as it was)."""
    data = bytearray(bytes.fromhex(value))
    data[i] ^= 0x10
    return data.hex()


@pytest.mark.parametrize("section", ["new_emulator_client_state", "resync_message"])
def test_any_changed_byte_of_a_lifecycle_encoding_fails(section: str) -> None:
    """One changed byte anywhere in the NewEmulatorClientState (keys, epochs, PPRF nodes,
    saved group states, LeafOps, KeyPackages) or the ResyncMessage's wire message is
    reported (sampled positions, every struct crossed)."""
    field = "encoded" if section == "new_emulator_client_state" else "message"
    case = _cases()[0]
    n = len(bytes.fromhex(case[section][field]))
    step = max(1, n // 60)
    for i in range(0, n, step):
        bad = copy.deepcopy(case)
        bad[section][field] = _flip_byte(bad[section][field], i)
        result = vc.run([bad])
        assert result.failed == 1, f"byte {i} of {n}: {[c.detail for c in result.cases]}"
        assert section in result.failures()[0].detail
