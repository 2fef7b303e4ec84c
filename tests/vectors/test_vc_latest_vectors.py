"""Generated virtual-client vectors of the later text (profile "latest"):
vectors/generated/vc-latest.json, docs/VC_VECTORS.md "The latest profile". The committed
file records the profile in every suite's object and passes the checker for all seven
suites; it is byte for byte what `mlsvc vectors generate vc --profile latest` writes; one
changed value in any kind of field is reported with that field's name; unknown and
missing fields are errors; a generator with an injected bug is caught; the checker
reads the profile each object records (and `--profile` requires one); the command line
exits non-zero on any failure. The draft-00 file and its tests (test_vc_vectors.py) are
untouched: its output stays byte-identical."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlsvc.cli import main
from mlsvc.conformance import vc, vc_latest
from mlsvc.conformance.registry import run_folder
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from tests.conftest import VECTORS

PATH = VECTORS / "generated" / "vc-latest.json"
DRAFT_00 = VECTORS / "generated" / "vc-draft-00.json"
SECTIONS = vc_latest.SECTIONS


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
    assert result.name == "vc-latest"
    assert all(row == {"passed": len(SECTIONS), "failed": 0, "skipped": 0}
               for row in result.by_suite().values())
    assert [c["cipher_suite"] for c in _cases()] == list(range(1, 8))
    assert {c["profile"] for c in _cases()} == {"latest"}


def test_the_folder_runner_reports_both_profiles() -> None:
    report = run_folder(PATH.parent)
    assert report.ok and {"vc-draft-00", "vc-latest"} <= {r.name for r in report.results}


def test_regeneration_is_byte_identical() -> None:
    assert vc.dump(vc.generate(profile="latest")) == _text()


def test_every_suite_has_the_later_texts_fields() -> None:
    for case in _cases():
        assert set(case) == {"cipher_suite", "profile", *SECTIONS}
        assert all("reuse_guard_secret" in e for e in case["epoch_secrets"])
        ops = case["operation_tree"]["operations"]
        assert {o["operation_type"] for o in ops} == {1, 2, 3}
        assert any(o["generation"] > 0 for o in ops)  # a ratchet advanced
        assert [k["key_package_index"] for k in case["key_package_batch"]["key_packages"]
                ] == [0, 1, 2]
        assert [d["leaf_node_source"] for d in case["derivation_info"]] == [1, 2, 3, 3]
        assert [d["external_init_secret"] is None for d in case["derivation_info"][2:]
                ] == [True, False]
        assert all("external_init_secret" not in k for k in case["operation_keys"])
        ids = case["generation_id"]["ids"]
        assert len({(i["group_id"], i["epoch"]) for i in ids}) == 3
        assert "external_join" not in case["encodings"]  # no ExternalJoin action
        kinds = [m["kind"] for m in case["scenario"]["messages"]]
        assert kinds == ["emulation_commit", "emulation_commit", "key_package",
                         "member_commit", "welcome", "vc_commit", "application",
                         "external_commit", "application"]
        # the draft-00 fields the later text does not have
        text = json.dumps(case)
        for gone in ('"random"', '"pprf_leaf"', '"pprf_input"', '"external_join"',
                     '"new_emulator_client_state"'):
            assert gone not in text, gone


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _flip_middle(value: str) -> str:
    i = len(value) // 2
    return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1:]


# (path into one suite's object, what to change, text the report must contain)
CORRUPTIONS: dict[str, tuple[tuple[str | int, ...], Any, str]] = {
    "reuse_guard_secret": (("epoch_secrets", 0, "reuse_guard_secret"), _flip,
                           "epoch_secrets[0].reuse_guard_secret"),
    "leaf_secret": (("operation_tree", "operations", 3, "leaf_secret"), _flip,
                    "operations[3].leaf_secret"),
    "initial_ratchet_secret": (("operation_tree", "operations", 2,
                                "initial_ratchet_secret"), _flip,
                               "operations[2].initial_ratchet_secret"),
    "ratchet_secret": (("operation_tree", "operations", 4, "operation_ratchet_secret"),
                       _flip, "operations[4].operation_ratchet_secret"),
    "operation_generation": (("operation_tree", "operations", 1, "generation"),
                             lambda v: v + 1, "operations[1]"),
    "operation_context": (("operation_tree", "operations", 0, "operation_context"),
                          _flip_middle, "operations[0]"),
    "operation_secret": (("operation_tree", "operations", 5, "operation_secret"), _flip,
                         "operations[5].operation_secret"),
    "seed_secret": (("key_package_batch", "key_packages", 1, "key_package_seed_secret"),
                    _flip, "key_packages[1].key_package_seed_secret"),
    "kp_init_public_key": (("key_package_batch", "key_packages", 2, "init_public_key"),
                           _flip, "key_packages[2].init_public_key"),
    "group_creation": (("key_package_batch", "group_creation_epoch_secret"), _flip,
                       "group_creation_epoch_secret"),
    "path_generation_secret": (("operation_keys", 1, "path_generation_secret"), _flip,
                               "operation_keys[1].path_generation_secret"),
    "di_tbe": (("derivation_info", 0, "derivation_info_tbe"), _flip,
               "derivation_info[0].derivation_info_tbe"),
    "di_external_init": (("derivation_info", 3, "external_init_secret"), _flip,
                         "derivation_info[3].derivation_info_tbe"),
    "di_ciphertext": (("derivation_info", 2, "ciphertext"), _flip_middle,
                      "derivation_info[2].ciphertext"),
    "prp_key": (("reuse_guard", 3, "prp_key"), _flip, "reuse_guard[3].prp_key"),
    "reuse_guard": (("reuse_guard", 1, "reuse_guard"), _flip, "reuse_guard[1].reuse_guard"),
    "gid_context": (("generation_id", "ids", 5, "private_message_context"), _flip,
                    "ids[5].private_message_context"),
    "gid_epoch": (("generation_id", "ids", 7, "epoch"), lambda v: v + 1,
                  "ids[7].private_message_context"),
    "generation_id": (("generation_id", "ids", 11, "generation_id"), _flip,
                      "ids[11].generation_id"),
    "kpu_encoded": (("encodings", "key_package_upload", "encoded"), _flip,
                    "key_package_upload.encoded"),
    "scenario_epoch": (("scenario", "emulation_epochs", 1, "reuse_guard_secret"), _flip,
                       "emulation_epochs[1].reuse_guard_secret"),
    "scenario_app_gid": (("scenario", "messages", 6, "generation_id"), _flip,
                         "messages[6] (application).generation_id"),
    "scenario_ext_leaf": (("scenario", "messages", 8, "emulator_leaf_index"),
                          lambda v: v ^ 1, "messages[8] (application).emulator_leaf_index"),
    "scenario_external_secret": (("scenario", "messages", 7, "external_secret"), _flip,
                                 "messages[7] (external_commit)"),
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
                                    "missing-nested", "not-hex", "wrong-type",
                                    "missing-external-init"])
def test_malformed_fields_are_errors(change: str) -> None:
    case = copy.deepcopy(_cases()[0])
    if change == "unknown-top":
        case["comment"] = []
    elif change == "missing-top":
        del case["key_package_batch"]
    elif change == "unknown-nested":
        case["operation_tree"]["operations"][0]["random"] = "00"  # a draft-00 field
    elif change == "missing-nested":
        del case["scenario"]["messages"][7]["group_info"]
    elif change == "not-hex":
        case["derivation_info"][1]["key"] = "zz"
    elif change == "wrong-type":
        case["generation_id"]["ids"][0]["epoch"] = "0"
    else:
        del case["derivation_info"][2]["external_init_secret"]
    result = vc.run([case])
    assert result.failed == 1, [c.detail for c in result.cases]
    assert ("missing" in result.failures()[0].detail or "not" in result.failures()[0].detail)


def test_the_profile_each_object_records_decides_the_checker() -> None:
    case = copy.deepcopy(_cases()[2])
    del case["profile"]  # read as draft-00: its sections are not draft-00's
    result = vc.run([case])
    assert result.failed == 1 and "missing fields" in result.failures()[0].detail
    case["profile"] = "draft-01"
    result = vc.run([case])
    assert result.failed == 1 and "not a known one" in result.failures()[0].detail
    # a file of both profiles: each object by its own
    mixed = [json.loads(DRAFT_00.read_text())[0], _cases()[0]]
    assert vc.run(mixed).failed == 0
    assert vc.run(mixed, profile="latest").failed == 1
    assert vc.run(mixed, profile="draft-00").failed == 1


@pytest.mark.parametrize("fault", sorted(vc_latest.FAULTS))
def test_an_injected_generator_bug_is_caught(fault: str) -> None:
    """The generator is given a bug by parameter; the checker is not touched."""
    result = vc.run(vc.generate((1,), frozenset({fault}), profile="latest"))
    assert result.failed >= 1, f"{fault} went unnoticed"
    sane = vc.run(vc.generate((1,), profile="latest"))
    assert sane.failed == 0


def _flip_byte(value: str, i: int) -> str:
    data = bytearray(bytes.fromhex(value))
    data[i] ^= 0x10
    return data.hex()


@pytest.mark.parametrize("index", [2, 5, 7], ids=["key_package", "vc_commit",
                                                  "external_commit"])
def test_any_changed_byte_of_a_vc_message_fails(index: int) -> None:
    """A changed byte anywhere in the KeyPackage, or in the FramedContent of the virtual
    client's commit or external commit (sampled), is reported: the checker
    authenticates it (signatures under the re-derived keys, the membership tag, the
    DerivationInfo)."""
    case = _cases()[0]
    wire = bytes.fromhex(case["scenario"]["messages"][index]["message"])
    body = MLSMessage.decode(wire).body
    n = 4 + len(body.content.encode()) if isinstance(body, PublicMessage) else len(wire)
    for i in range(4, n, max(1, n // 40)):
        bad = copy.deepcopy(case)
        msg = bad["scenario"]["messages"][index]
        msg["message"] = _flip_byte(msg["message"], i)
        result = vc.run([bad])
        assert result.failed == 1, f"byte {i} of {n}: {[c.detail for c in result.cases]}"
        assert "scenario" in result.failures()[0].detail


def test_one_virtual_clients_component_as_the_later_text_registers() -> None:
    """latest §9 registers ONE virtual_clients component for the LeafNode's
    DerivationInfo, the SafeAAD VirtualClientAction, the GroupInfo's
    NewEmulatorClientState and SafeExportSecret: the vectors export the epoch secret and
    frame the action under the same ID, and a latest virtual client uses it everywhere."""
    for case in _cases():
        export = {e["component_id"] for e in case["epoch_secrets"]}
        assert export == {case["encodings"]["component_id"]}
    from mlsvc.ds import DeliveryService
    from mlsvc.virtual_client import VirtualClient

    vc = VirtualClient.create(DeliveryService(), "one", ["a"], seed=b"one", profile="latest")
    cp = vc.emulators["a"].vc.codepoints
    assert cp.derivation_info == cp.virtual_client_action == cp.new_emulator_client_state
    assert cp.profile not in (cp.derivation_info,)


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.json"
    assert main(["vectors", "generate", "vc", "--profile", "latest", "--out", str(out)]) == 0
    assert out.read_text() == _text()
    assert "profile latest" in capsys.readouterr().out
    assert main(["vectors", "check", "vc", str(PATH), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["passed"] == 7 * len(SECTIONS)
    assert main(["vectors", "check", "vc", str(PATH), "--profile", "latest"]) == 0
    assert main(["vectors", "check", "vc", str(DRAFT_00), "--profile", "draft-00"]) == 0
    capsys.readouterr()
    assert main(["vectors", "check", "vc", str(PATH), "--profile", "draft-00"]) == 1
    assert "checked as draft-00" in capsys.readouterr().out
    bad = _cases()
    bad[4]["reuse_guard"][2]["reuse_guard"] = _flip(bad[4]["reuse_guard"][2]["reuse_guard"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["vectors", "check", "vc", str(path)]) == 1
    assert "reuse_guard[2].reuse_guard" in capsys.readouterr().out
    # --profile belongs to the vc vectors only
    assert main(["vectors", "generate", "extensions", "--profile", "latest",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert main(["vectors", "check", "vc-01", str(PATH), "--profile", "latest"]) == 2
    # the default stays draft-00, byte for byte
    d00 = tmp_path / "d00.json"
    assert main(["vectors", "generate", "vc", "--out", str(d00)]) == 0
    assert d00.read_text() == DRAFT_00.read_text()
