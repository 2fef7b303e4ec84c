"""Official vectors: key schedule (RFC 9420 §8), every epoch of every case."""

from __future__ import annotations

from typing import Any

from mlsvc.conformance.key_schedule import run
from tests.vectors.util import (
    assert_all_seven_suites,
    assert_corruption_reported,
    assert_vector_file_passes,
    flip,
)

STEM = "key-schedule"


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 7


def test_all_seven_suites_covered() -> None:
    assert_all_seven_suites(STEM, run)


def test_a_corrupted_expected_value_is_reported() -> None:
    assert_corruption_reported(STEM, run, _corrupt)


def _corrupt(case: dict[str, Any]) -> None:
    case["epochs"][-1]["exporter"]["secret"] = flip(case["epochs"][-1]["exporter"]["secret"])
