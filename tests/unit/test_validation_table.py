"""The table of named checks (mlsvc.checks.CHECKS) against its document and its tests.

1. docs/VALIDATION.md is exactly `render_markdown()` (regenerate it with
   `python -m mlsvc.group.validation > docs/VALIDATION.md`).
2. Every registered ID is made to fire by at least one test: some test under tests/
   asserts it as the check ID of an error. The scan (mlsvc.report, which also shows it
   on the audit page) reads the test sources (AST):
   an `assert X == "ID"` (or `"ID" == X`) where X mentions a check (`err.value.check_id`,
   `check_of(...)`, `_check_id(err)`, ...). A module-level constant of impl/ holding the
   ID (`CHECK_SENDER_NOT_MEMBER = "VC-RG-1"`) counts as the literal. A parametrized
   test that asserts a check against one of its parameters (`... .check_id == check_id`)
   counts every ID in that parameter's column. Assertions inside tests marked xfail or
   skip do not count: they document checks that do not fire yet.
"""

from __future__ import annotations

from mlsvc.checks import CHECKS
from mlsvc.group.validation import render_markdown
from mlsvc.report import asserted_ids, firing_tests_by_check
from tests.conftest import ROOT

DOC = ROOT / "docs" / "VALIDATION.md"


# --- the scanner itself (it must be able to say "missing") --------------------------------


def test_scanner_counts_assertions_and_ignores_xfail() -> None:
    cid = next(iter(CHECKS))
    source = f'''
import pytest
def test_a():
    assert err.value.check_id == "{cid}"
@pytest.mark.xfail(strict=True, reason="x")
def test_b():
    assert check_of(f) == "{list(CHECKS)[1]}"
def test_c():
    assert something == "{list(CHECKS)[2]}"
    x = "{list(CHECKS)[3]}"
def test_d():
    assert _check_id(e) == NAMED
'''
    assert asserted_ids(source, {"NAMED": list(CHECKS)[4]}) == {cid, list(CHECKS)[4]}


# --- the table ------------------------------------------------------------------------------


def test_document_is_current() -> None:
    assert DOC.exists(), "run: python -m mlsvc.group.validation > docs/VALIDATION.md"
    assert DOC.read_text() == render_markdown(), (
        "docs/VALIDATION.md is stale: python -m mlsvc.group.validation > docs/VALIDATION.md")


def test_every_check_is_made_to_fire_by_a_test() -> None:
    fired = firing_tests_by_check()
    missing = [cid for cid in CHECKS if cid not in fired]
    assert not missing, (
        f"{len(missing)} of {len(CHECKS)} check IDs are asserted by no (non-xfail) test: "
        f"{missing}")
