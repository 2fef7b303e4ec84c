"""Official vectors: TreeKEM (RFC 9420 §7.4-§7.9, §12.4.2): private state
consistency, processing every UpdatePath as every other member (path secret,
commit secret, tree hash after), and a freshly created UpdatePath processed by
every other member."""

from __future__ import annotations

import copy

from mlsvc.conformance.treekem import run
from tests.vectors.util import assert_vector_file_passes, flip, load_cases

STEM = "treekem"




def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 77


def test_all_seven_suites_covered() -> None:
    # every case passes (above), so every suite present passes: check all are present
    assert {c["cipher_suite"] for c in load_cases(STEM)} == set(range(1, 8))


def test_a_wrong_commit_secret_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:2])
    entry = cases[1]["update_paths"][0]
    entry["commit_secret"] = flip(entry["commit_secret"])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_a_wrong_path_secret_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:1])
    entry = cases[0]["update_paths"][0]
    j = next(k for k, v in enumerate(entry["path_secrets"]) if v is not None)
    entry["path_secrets"][j] = flip(entry["path_secrets"][j])
    result = run(cases)
    assert result.failed == 1 and "path secret" in result.failures()[0].detail


def test_a_wrong_tree_hash_after_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:1])
    entry = cases[0]["update_paths"][-1]
    entry["tree_hash_after"] = flip(entry["tree_hash_after"])
    result = run(cases)
    assert result.failed == 1 and "tree_hash_after" in result.failures()[0].detail


def test_inconsistent_private_state_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:1])
    entry = cases[0]["leaves_private"][0]
    entry["encryption_priv"] = flip(entry["encryption_priv"])
    result = run(cases)
    assert result.failed == 1 and "TREEKEM-PRIVATE-STATE" in result.failures()[0].detail
