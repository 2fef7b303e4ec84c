"""Run one pinned vector file through its runner and fail with every mismatch shown."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from mlsvc.conformance.base import FileResult
from mlsvc.conformance.registry import default_dir, run_file


def assert_vector_file_passes(stem: str) -> int:
    result = run_file(default_dir() / f"{stem}.json")
    details = "\n".join(f"case {c.index} suite {c.suite}: {c.detail}" for c in result.failures())
    assert result.failed == 0, f"{result.failed} failed in {stem}:\n{details}"
    assert result.skipped == 0, f"{result.skipped} skipped in {stem}"
    assert result.passed == len(result.cases) > 0
    return result.passed


def load_cases(stem: str) -> list[dict[str, Any]]:
    """The cases of a pinned vector file."""
    with (default_dir() / f"{stem}.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def flip(value: str) -> str:
    """The same hex string with its last nibble changed (to corrupt an expected value)."""
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def assert_all_seven_suites(stem: str, run: Callable[[list[dict[str, Any]]], FileResult]) -> None:
    """Every RFC 9420 suite appears in the file and none of its cases failed."""
    result = run(load_cases(stem))
    assert set(result.by_suite()) == {str(s) for s in range(1, 8)}
    assert all(row["failed"] == 0 and row["skipped"] == 0 for row in result.by_suite().values())


def assert_corruption_reported(stem: str, run: Callable[[list[dict[str, Any]]], FileResult],
                               corrupt: Callable[[dict[str, Any]], None]) -> None:
    """The runner really compares: corrupting one expected value of the second case makes
    exactly that case fail."""
    cases = copy.deepcopy(load_cases(stem)[:2])
    corrupt(cases[1])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()
