"""Official vectors: transcript hashes and confirmation tag (RFC 9420 §8.2, §6.1)."""

from __future__ import annotations

import copy
import json
from typing import Any

from mlsvc.conformance.registry import default_dir
from mlsvc.conformance.transcript_hashes import run
from tests.vectors.util import assert_vector_file_passes

STEM = "transcript-hashes"


def _cases() -> list[dict[str, Any]]:
    with (default_dir() / f"{STEM}.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 7


def test_all_seven_suites_covered() -> None:
    result = run(_cases())
    assert set(result.by_suite()) == {str(s) for s in range(1, 8)}
    assert all(row["failed"] == 0 and row["skipped"] == 0 for row in result.by_suite().values())


def _flip(value: str) -> str:
    """The same hex string with its last nibble changed."""
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_a_corrupted_expected_value_is_reported() -> None:
    """The runner compares: a wrong expected value makes the case fail."""
    cases = copy.deepcopy(_cases()[:2])
    _corrupt(cases[1])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def _corrupt(case: dict[str, Any]) -> None:
    case["interim_transcript_hash_before"] = _flip(case["interim_transcript_hash_before"])
