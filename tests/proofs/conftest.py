"""Runs each Z3 obligation at most once per test session and shares the result
(tests/proofs/test_obligations.py checks verdicts, test_replay.py replays witnesses)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlsvc_proofs.obligation import Result, run
from mlsvc_proofs.registry import BY_NAME

TIMEOUT_MS = 120_000

_CACHE: dict[str, Result] = {}


def obligation_result(name: str) -> Result:
    if name not in _CACHE:
        _CACHE[name] = run(BY_NAME[name], TIMEOUT_MS)
    return _CACHE[name]


@pytest.fixture(scope="session")
def proof() -> Callable[[str], Result]:
    return obligation_result
