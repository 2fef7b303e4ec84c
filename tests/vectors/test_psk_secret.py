"""Official vectors: PSK secret (RFC 9420 §8.4)."""

from __future__ import annotations

from typing import Any

from mlsvc.conformance.psk_secret import run
from tests.vectors.util import (
    assert_all_seven_suites,
    assert_corruption_reported,
    assert_vector_file_passes,
    flip,
)

STEM = "psk_secret"


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 77


def test_all_seven_suites_covered() -> None:
    assert_all_seven_suites(STEM, run)


def test_a_corrupted_expected_value_is_reported() -> None:
    assert_corruption_reported(STEM, run, _corrupt)


def _corrupt(case: dict[str, Any]) -> None:
    case["psks"][0]["psk_nonce"] = flip(case["psks"][0]["psk_nonce"])
