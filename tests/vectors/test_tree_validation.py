"""Official vectors: tree validation (RFC 9420 §4.1.1 resolutions, §7.8 tree hashes,
§7.9.2 parent hashes, §7.3 leaf signatures), every case of every suite."""

from __future__ import annotations

import copy
import json
from typing import Any

from mlsvc.conformance.registry import default_dir
from mlsvc.conformance.tree_validation import run
from tests.vectors.util import assert_vector_file_passes

STEM = "tree-validation"


def _cases() -> list[dict[str, Any]]:
    with (default_dir() / f"{STEM}.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 98


def test_all_seven_suites_covered() -> None:
    # every case passes (above), so every suite present passes: check all are present
    assert {c["cipher_suite"] for c in _cases()} == set(range(1, 8))


def test_a_wrong_tree_hash_is_reported() -> None:
    cases = copy.deepcopy(_cases()[:2])
    cases[1]["tree_hashes"][0] = _flip(cases[1]["tree_hashes"][0])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_a_wrong_resolution_is_reported() -> None:
    cases = copy.deepcopy(_cases()[:2])
    cases[1]["resolutions"][1] = [*reversed(cases[1]["resolutions"][1]), 99]
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_another_group_id_fails_the_leaf_signatures() -> None:
    cases = copy.deepcopy(_cases()[:1])
    cases[0]["group_id"] = _flip(cases[0]["group_id"])
    result = run(cases)
    assert result.failed == 1 and "signature" in result.failures()[0].detail
