"""Official vectors: tree operations (RFC 9420 §12.1.1-3 Add/Update/Remove, §7.7
extension and truncation, §7.8 tree hash)."""

from __future__ import annotations

import copy
import json
from typing import Any

from mlsvc.conformance.registry import default_dir
from mlsvc.conformance.tree_operations import run
from mlsvc.messages.proposals import Add, Remove, Update, decode_proposal
from tests.vectors.util import assert_vector_file_passes

STEM = "tree-operations"


def _cases() -> list[dict[str, Any]]:
    with (default_dir() / f"{STEM}.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 5


def test_add_update_and_remove_all_exercised() -> None:
    kinds = {type(decode_proposal(bytes.fromhex(c["proposal"]))) for c in _cases()}
    assert kinds == {Add, Update, Remove}


def test_a_wrong_tree_after_is_reported() -> None:
    cases = copy.deepcopy(_cases()[:2])
    cases[1]["tree_after"] = _flip(cases[1]["tree_after"])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_a_wrong_tree_hash_after_is_reported() -> None:
    cases = copy.deepcopy(_cases()[:2])
    cases[0]["tree_hash_after"] = _flip(cases[0]["tree_hash_after"])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()
