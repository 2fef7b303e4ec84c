"""The public vc-01 vectors (havenmessenger/interop), pinned at
vectors/third-party/havenmessenger-interop_vc-01-vectors.json: every field reproduced
by the later text's primitives (profile "latest", mlsvc.conformance.vc01), the values
the text does not give reproduced only under the documented deviations D4 and D5
(docs/INTEROP.md), each pinned by a strict xfail below: if a deviation disappears (the
file is fixed, or our reading changes) the xfail turns into a failure.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections import Counter
from typing import Any

import pytest

from mlsvc.cli import main
from mlsvc.conformance import registry, vc01
from mlsvc.conformance.registry import (
    CHECKERS,
    RUNNERS,
    default_files,
    run_default,
    run_file,
    run_folder,
)
from mlsvc.crypto.suites import get_suite
from mlsvc.types import LeafIndex
from mlsvc.vc.ff1 import prp_decrypt, prp_encrypt
from mlsvc.vc.profiles import Profile
from mlsvc.vc.reuse_guard import derive_prp_key, make_reuse_guard, recover_leaf_index
from tests.conftest import VECTORS

PATH = VECTORS / "third-party" / "havenmessenger-interop_vc-01-vectors.json"
DOC: dict[str, Any] = json.loads(PATH.read_text())
CS1 = get_suite(1)
LATEST = Profile.LATEST

# The per-section census: fields by kind, and the values reproduced only under each
# deviation. docs/VECTORS.md quotes these numbers.
EXPECTED_SECTIONS = {
    "file": {"metadata": 3},
    "epoch_secrets": {"name": 2, "input": 2, "output": 20},
    "small_space_prp": {"name": 5, "input": 10, "output": 20, "D4": 10},
    "reuse_guard": {"name": 3, "input": 15, "output": 18, "D4": 6, "D5": 3},
    "generation_id": {"name": 2, "input": 10, "output": 4},
}
D4_FIELDS = {"openmls_ciphertext", "openmls_decrypt_roundtrip", "openmls_reuse_guard_hex",
             "openmls_recovered_leaf_index"}
D5_FIELDS = {"key_schedule_nonce_hex"}


def _run(doc: Any) -> Any:
    return vc01.run(doc)


# --- the pinned copy --------------------------------------------------------------------


def test_pinned_copy_matches_recorded_digest() -> None:
    """vectors/third-party/README.md records the sha256 of the copy (and its origin and
    licence); the copy is never edited."""
    readme = (VECTORS / "third-party" / "README.md").read_text()
    block = readme.split("## havenmessenger-interop_vc-01-vectors.json", 1)[1].split("\n## ")[0]
    digest = re.search(r"sha256: ([0-9a-f]{64})", block)
    assert digest is not None
    assert hashlib.sha256(PATH.read_bytes()).hexdigest() == digest.group(1)
    assert "License: Apache-2.0" in block
    assert "github.com/havenmessenger/interop" in block


def test_registered_as_runner_and_checker() -> None:
    assert RUNNERS[PATH.stem] == "vc01"
    assert CHECKERS["vc-01"] == "vc01"
    assert PATH in default_files()


# --- every field ------------------------------------------------------------------------


def test_every_field_is_reproduced() -> None:
    result = run_file(PATH)
    assert result.failed == 0 and result.skipped == 0
    # one result per field of the file: nothing filtered
    fields = len(vc01.METADATA) + sum(len(case) for s in vc01.SECTIONS for case in DOC[s])
    assert fields == 114
    assert result.passed == len(result.cases) == fields
    assert set(result.by_suite()) == {"1"}
    got = {s: {k: v for k, v in row.items() if v and k not in ("failed", "skipped")}
           for s, row in result.by_section().items()}
    assert got == EXPECTED_SECTIONS
    assert result.deviations == 19


def test_case_and_field_coverage() -> None:
    """Each case of each section yields exactly the fields the file has, in order."""
    rows = vc01.check_fields(DOC)
    per_case = Counter((section, case) for section, case, _, _, _ in rows)
    for section in vc01.SECTIONS:
        assert len(DOC[section]) == {"epoch_secrets": 2, "small_space_prp": 5,
                                     "reuse_guard": 3, "generation_id": 2}[section]
        for case in DOC[section]:
            assert set(case) == set(vc01.FIELDS[section])
            assert per_case[(section, case["case"])] == len(case)


def test_deviations_are_exactly_the_documented_ones() -> None:
    rows = vc01.check_fields(DOC)
    dev = {(s, c, f): o.deviation for s, c, f, _, o in rows if o.deviation}
    assert {f for (_, _, f), d in dev.items() if d == "D4"} == D4_FIELDS
    assert {f for (_, _, f), d in dev.items() if d == "D5"} == D5_FIELDS
    assert set(dev.values()) <= set(vc01.DEVIATIONS)
    # every "ours_*" and "openmls_extracted_*" value is the text's, with no deviation
    for s, _, f, kind, o in rows:
        if f.startswith(("ours_", "openmls_extracted_")) or (
                s == "epoch_secrets" and kind == "output"):
            assert o.ok and not o.deviation, (s, f, o)


# --- the checker fails on wrong values ---------------------------------------------------


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


@pytest.mark.parametrize("section, field", [
    ("epoch_secrets", "reuse_guard_secret_hex"),
    ("epoch_secrets", "openmls_extracted_epoch_id_hex"),
    ("small_space_prp", "ours_ciphertext"),
    ("small_space_prp", "openmls_ciphertext"),
    ("small_space_prp", "ours_decrypt_roundtrip"),
    ("reuse_guard", "ours_prp_key_hex"),
    ("reuse_guard", "ours_reuse_guard_hex"),
    ("reuse_guard", "openmls_reuse_guard_hex"),
    ("reuse_guard", "ours_recovered_leaf_index"),
    ("reuse_guard", "openmls_recovered_leaf_index"),
    ("generation_id", "ours_generation_id_hex"),
    ("generation_id", "openmls_extracted_generation_id_hex"),
])
def test_a_changed_value_fails(section: str, field: str) -> None:
    doc = copy.deepcopy(DOC)
    case = doc[section][-1]
    value = case[field]
    if isinstance(value, int):
        modulus = doc[section][-1].get("n_e", 1 << 32)
        case[field] = (value + 1) % modulus
    else:
        case[field] = _flip_hex(value)
    result = _run(doc)
    failed = [c.detail for c in result.failures()]
    # the field itself, and at most the one value computed from it (a round trip or a
    # recovered leaf index)
    assert 1 <= len(failed) <= 2 and f"/{field}:" in failed[0], failed
    assert result.passed == 114 - len(failed)


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: d["generation_id"][0].pop("epoch"), "missing field 'epoch'"),
    (lambda d: d["reuse_guard"][0].update(extra=1), "unknown field 'extra'"),
    (lambda d: d.update(extra=[]), "unknown field 'extra'"),
    (lambda d: d.update(ciphersuite="MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"),
     "0x0001) only"),
    (lambda d: d["reuse_guard"][0].update(x=d["reuse_guard"][0]["x"] + 1), "x"),
    (lambda d: d["small_space_prp"][1].update(case="input_zero"), "repeated case name"),
    (lambda d: d["generation_id"][0].update(ratchet_type="commit"), "ratchet_type"),
    (lambda d: d["epoch_secrets"][0].update(emulator_epoch_secret_hex="00" * 31),
     "31 bytes"),
])
def test_malformed_files_fail(mutate: Any, expect: str) -> None:
    doc = copy.deepcopy(DOC)
    mutate(doc)
    result = _run(doc)
    assert result.failed > 0
    assert any(expect in c.detail for c in result.failures()), [
        c.detail for c in result.failures()]


def test_not_an_object() -> None:
    result = _run([])
    assert result.failed == 1 and result.passed == 0


# --- the commands ------------------------------------------------------------------------


def test_mlsvc_vectors_reports_the_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`mlsvc vectors` (no --dir) runs vectors/rfc9420 and then the vc-01 file. The
    official folder is swapped for an empty one here to keep this test fast (the RFC
    9420 files have their own tests)."""
    monkeypatch.setattr(registry, "default_dir", lambda: tmp_path)
    report = run_default()
    assert [r.name for r in report.results] == [PATH.stem]
    assert report.results[0].failed == 0 and report.results[0].passed == 114
    assert report.ok
    assert main(["vectors"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == PATH.stem
    assert "small_space_prp: 20 output, 10 input, 5 name (under documented deviations: " \
           "D4: 10)" in out
    assert "vectors: 114 passed, 0 failed, 0 skipped" in out
    assert main(["vectors", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"][0]["deviations"] == 19
    assert [r.name for r in run_folder(PATH.parent).results] == [PATH.stem]


def test_mlsvc_vectors_fails_when_the_copy_is_missing(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "default_dir", lambda: tmp_path)
    monkeypatch.setattr(registry, "DEFAULT_EXTRA", ("third-party/no-such-file.json",))
    assert not run_default().ok


def test_mlsvc_vectors_check_vc01(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "check", "vc-01", str(PATH)]) == 0
    out = capsys.readouterr().out
    assert "114 passed, 0 failed" in out
    assert "reuse_guard: 18 output, 15 input, 3 name (under documented deviations: D4: 6, " \
           "D5: 3)" in out
    assert main(["vectors", "check", "vc-01", str(PATH), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["deviations"] == 19
    assert doc["by_section"]["small_space_prp"]["D4"] == 10


def test_mlsvc_vectors_check_vc01_fails_on_a_bad_file(tmp_path: Any) -> None:
    doc = copy.deepcopy(DOC)
    doc["generation_id"][0]["ours_generation_id_hex"] = _flip_hex(
        doc["generation_id"][0]["ours_generation_id_hex"])
    bad = tmp_path / "vc01.json"
    bad.write_text(json.dumps(doc))
    assert main(["vectors", "check", "vc-01", str(bad)]) == 1


# --- the deviations, pinned (strict xfail: each must keep failing) ------------------------

D4 = ("D4 (docs/INTEROP.md): openmls's FF1 numerals are the bits of each big-endian byte "
      "least significant first; latest §5.6.1: 'A 32-bit unsigned integer is mapped to a "
      "numeral string by listing its bits from most significant to least significant'")
D5 = ("D5 (docs/INTEROP.md): key_schedule_nonce is 32 bytes; the key schedule of "
      "ciphersuite 0x0001 gives AEAD.Nn = 12-byte nonces (latest §5.6.2, RFC 9420 §9.1)")

PRP = DOC["small_space_prp"]
RG = DOC["reuse_guard"]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=D4)
@pytest.mark.parametrize("case", PRP, ids=[c["case"] for c in PRP])
def test_d4_text_prp_gives_openmls_ciphertext(case: dict[str, Any]) -> None:
    assert prp_encrypt(bytes.fromhex(case["key_hex"]), case["plaintext"]) == \
        case["openmls_ciphertext"]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=D4)
@pytest.mark.parametrize("case", PRP, ids=[c["case"] for c in PRP])
def test_d4_text_decrypts_openmls_ciphertext(case: dict[str, Any]) -> None:
    assert prp_decrypt(bytes.fromhex(case["key_hex"]), case["openmls_ciphertext"]) == \
        case["openmls_decrypt_roundtrip"]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=D4)
@pytest.mark.parametrize("case", RG, ids=[c["case"] for c in RG])
def test_d4_text_reuse_guard_is_openmls_reuse_guard(case: dict[str, Any]) -> None:
    guard = make_reuse_guard(CS1, bytes.fromhex(case["reuse_guard_secret_hex"]),
                             bytes.fromhex(case["key_schedule_nonce_hex"]),
                             LeafIndex(case["leaf_index_e"]), case["n_e"],
                             vc01._no_rng, case["x"], profile=LATEST)
    assert guard.hex() == case["openmls_reuse_guard_hex"]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=D4)
def test_d4_spec_literal_emulator_misattributes_openmls_guard() -> None:
    """With N_e = 2^16 a spec-literal emulator recovers leaf 16236 from openmls's reuse
    guard, not the sender's 65535. (For the two N_e = 4 cases it recovers the right leaf
    by chance; test_d4_recovery_by_chance_for_small_groups.)"""
    case = RG[2]
    leaf = recover_leaf_index(CS1, bytes.fromhex(case["reuse_guard_secret_hex"]),
                              bytes.fromhex(case["key_schedule_nonce_hex"]),
                              bytes.fromhex(case["openmls_reuse_guard_hex"]), case["n_e"],
                              profile=LATEST)
    assert leaf == case["openmls_recovered_leaf_index"]


def test_d4_recovery_by_chance_for_small_groups() -> None:
    for case in RG[:2]:
        leaf = recover_leaf_index(CS1, bytes.fromhex(case["reuse_guard_secret_hex"]),
                                  bytes.fromhex(case["key_schedule_nonce_hex"]),
                                  bytes.fromhex(case["openmls_reuse_guard_hex"]),
                                  case["n_e"], profile=LATEST)
        assert leaf == case["openmls_recovered_leaf_index"] == case["leaf_index_e"]


def test_d4_mapping_reproduces_openmls() -> None:
    """The documented alternative: bits reversed within each big-endian byte, around the
    text's PRP."""
    assert vc01.reverse_bits_in_bytes(0x01020304) == 0x8040C020
    for case in PRP:
        key = bytes.fromhex(case["key_hex"])
        assert vc01.d4_encrypt(key, case["plaintext"]) == case["openmls_ciphertext"]
        assert vc01.d4_decrypt(key, case["openmls_ciphertext"]) == case["plaintext"]
    for case in RG:
        key = derive_prp_key(CS1, bytes.fromhex(case["reuse_guard_secret_hex"]),
                             bytes.fromhex(case["key_schedule_nonce_hex"]), profile=LATEST)
        assert vc01.d4_encrypt(key, case["x"]).to_bytes(4, "big").hex() == \
            case["openmls_reuse_guard_hex"]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=D5)
@pytest.mark.parametrize("case", RG, ids=[c["case"] for c in RG])
def test_d5_key_schedule_nonce_is_aead_nn(case: dict[str, Any]) -> None:
    assert len(bytes.fromhex(case["key_schedule_nonce_hex"])) == CS1.aead.nn
