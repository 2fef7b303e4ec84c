"""The table of named checks (mlsvc.checks.CHECKS) against its document and its tests.

1. docs/VALIDATION.md is exactly `render_markdown()` (regenerate it with
   `python -m mlsvc.group.validation > docs/VALIDATION.md`).
2. Every registered ID is made to fire by at least one test: some test under tests/
   asserts it as the check ID of an error. The scan reads the test sources (AST):
   an `assert X == "ID"` (or `"ID" == X`) where X mentions a check (`err.value.check_id`,
   `check_of(...)`, `_check_id(err)`, ...). A module-level constant of impl/ holding the
   ID (`CHECK_SENDER_NOT_MEMBER = "VC-RG-1"`) counts as the literal. A parametrized
   test that asserts a check against one of its parameters (`... .check_id == check_id`)
   counts every ID in that parameter's column. Assertions inside tests marked xfail or
   skip do not count: they document checks that do not fire yet.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mlsvc.checks import CHECKS
from mlsvc.group.validation import render_markdown
from tests.conftest import ROOT

DOC = ROOT / "docs" / "VALIDATION.md"
CONSTANT = re.compile(r'^([A-Z][A-Z0-9_]*)\s*(?::\s*\w+\s*)?=\s*"([A-Z][A-Z0-9-]*)"', re.M)


def impl_constants(root: Path = ROOT) -> dict[str, str]:
    """NAME -> check ID for module-level string constants of impl/ naming an ID."""
    out: dict[str, str] = {}
    for path in (root / "impl").rglob("*.py"):
        for name, value in CONSTANT.findall(path.read_text()):
            if value in CHECKS:
                out[name] = value
    return out


def _disabled(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Marked xfail or skip (pytest.mark.xfail(...), pytest.mark.skip, ...)."""
    for dec in fn.decorator_list:
        text = ast.unparse(dec)
        if ".xfail" in text or ".skip" in text:
            return True
    return False


def _ids_in(node: ast.expr, constants: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    return []


def _parametrized_columns(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[str]]:
    """Parameter name -> the string constants of its column in @pytest.mark.parametrize."""
    out: dict[str, list[str]] = {}
    for dec in fn.decorator_list:
        if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")
                and len(dec.args) >= 2 and isinstance(dec.args[1], ast.List | ast.Tuple)):
            continue
        spec = dec.args[0]
        if isinstance(spec, ast.Constant) and isinstance(spec.value, str):
            names = [n.strip() for n in spec.value.split(",")]
        elif isinstance(spec, ast.Tuple | ast.List):
            names = [e.value for e in spec.elts
                     if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        else:
            continue
        for row in dec.args[1].elts:
            cells = row.elts if isinstance(row, ast.Tuple) and len(names) > 1 else [row]
            for name, cell in zip(names, cells, strict=False):
                if isinstance(cell, ast.Constant) and isinstance(cell.value, str):
                    out.setdefault(name, []).append(cell.value)
    return out


def asserted_ids(source: str, constants: dict[str, str]) -> set[str]:
    """The check IDs a test module asserts (see the module docstring)."""
    found: set[str] = set()
    tree = ast.parse(source)
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or _disabled(fn):
            continue
        columns = _parametrized_columns(fn)
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assert):
                continue
            for cmp in ast.walk(node.test):
                if not (isinstance(cmp, ast.Compare) and len(cmp.ops) == 1
                        and isinstance(cmp.ops[0], ast.Eq)):
                    continue
                left, right = cmp.left, cmp.comparators[0]
                for subject, value in ((left, right), (right, left)):
                    if "check" not in ast.unparse(subject):
                        continue
                    found.update(cid for cid in _ids_in(value, constants) if cid in CHECKS)
                    if isinstance(value, ast.Name) and value.id in columns:
                        found.update(cid for cid in columns[value.id] if cid in CHECKS)
    # asserts in helpers outside any test function are not tests: only functions count
    return found


def firing_tests_by_check(root: Path = ROOT) -> dict[str, list[str]]:
    """Check ID -> the test files (relative to root) asserting that it fires."""
    constants = impl_constants(root)
    out: dict[str, list[str]] = {}
    for path in sorted((root / "tests").rglob("*.py")):
        for cid in asserted_ids(path.read_text(), constants):
            out.setdefault(cid, []).append(str(path.relative_to(root)))
    return out


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
