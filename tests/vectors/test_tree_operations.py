"""Official vectors: tree operations (RFC 9420 §12.1.1-3 Add/Update/Remove, §7.7
extension and truncation, §7.8 tree hash)."""

from __future__ import annotations

import copy

from mlsvc.conformance.tree_operations import run
from mlsvc.messages.proposals import Add, Remove, Update, decode_proposal
from tests.vectors.util import assert_vector_file_passes, flip, load_cases

STEM = "tree-operations"




def test_every_case_passes() -> None:
    assert assert_vector_file_passes(STEM) == 5


def test_add_update_and_remove_all_exercised() -> None:
    kinds = {type(decode_proposal(bytes.fromhex(c["proposal"]))) for c in load_cases(STEM)}
    assert kinds == {Add, Update, Remove}


def test_a_wrong_tree_after_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:2])
    cases[1]["tree_after"] = flip(cases[1]["tree_after"])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()


def test_a_wrong_tree_hash_after_is_reported() -> None:
    cases = copy.deepcopy(load_cases(STEM)[:2])
    cases[0]["tree_hash_after"] = flip(cases[0]["tree_hash_after"])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()
