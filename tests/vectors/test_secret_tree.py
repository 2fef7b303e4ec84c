"""Official vectors: secret tree and sender data (RFC 9420 §9, §6.3.2)."""

from __future__ import annotations

from typing import Any

from mlsvc.conformance.secret_tree import run
from tests.vectors.util import (
    assert_all_seven_suites,
    assert_corruption_reported,
    assert_vector_file_passes,
    flip,
)

STEM = "secret-tree"


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 21


def test_all_seven_suites_covered() -> None:
    assert_all_seven_suites(STEM, run)


def test_a_corrupted_expected_value_is_reported() -> None:
    assert_corruption_reported(STEM, run, _corrupt)


def _corrupt(case: dict[str, Any]) -> None:
    case["leaves"][-1][-1]["application_nonce"] = flip(case["leaves"][-1][-1]["application_nonce"])
