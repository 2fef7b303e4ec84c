"""Run one pinned vector file through its runner and fail with every mismatch shown."""

from __future__ import annotations

import json
from typing import Any

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
