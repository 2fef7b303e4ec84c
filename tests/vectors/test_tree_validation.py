"""Official vectors: tree validation (RFC 9420 §4.1.1 resolutions, §7.8 tree hashes,
§7.9.2 parent hashes, §7.3 leaf signatures), every case of every suite."""

from __future__ import annotations

import copy

from mlsvc.conformance.tree_validation import run
from tests.vectors.util import assert_vector_file_passes, flip, load_cases

STEM = "tree-validation"




def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 98


def test_all_seven_suites_covered() -> None:
    # every case passes (above), so every suite present passes: check all are present
    assert {c["cipher_suite"] for c in load_cases(STEM)} == set(range(1, 8))


def test_a_wrong_tree_hash_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:2])
    cases[1]["tree_hashes"][0] = flip(cases[1]["tree_hashes"][0])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_a_wrong_resolution_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:2])
    cases[1]["resolutions"][1] = [*reversed(cases[1]["resolutions"][1]), 99]
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_another_group_id_fails_the_leaf_signatures() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:1])
    cases[0]["group_id"] = flip(cases[0]["group_id"])
    result = run(cases)
    assert result.failed == 1 and "signature" in result.failures()[0].detail
