"""Tokens and derivability, the birthday-bound helper, and the CLI entry point."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import mlsvc_model
from mlsvc_model.cli import main
from mlsvc_model.explore import birthday
from mlsvc_model.tokens import (
    Sealed,
    derivable,
    derive_secret,
    fresh,
    model_hash,
    pprf_eval,
    sealed_index,
)


def test_tokens_are_equal_exactly_when_their_paths_are() -> None:
    a, b = fresh("r", 1), fresh("r", 2)
    assert derive_secret(a, "x") == derive_secret(fresh("r", 1), "x")
    assert derive_secret(a, "x") != derive_secret(a, "y")
    assert derive_secret(a, "x") != derive_secret(b, "x")
    assert len({derive_secret(a, "x"), derive_secret(fresh("r", 1), "x")}) == 1


def test_derivable_through_parents_ciphertexts_and_not_punctured_points() -> None:
    base, key, secret = fresh("base", 1), fresh("key", 2), fresh("secret", 3)
    assert derivable(derive_secret(base, "child"), {base})
    assert not derivable(derive_secret(base, "child"), {key})
    index = sealed_index([Sealed(derive_secret(key, "k"), secret)])
    assert derivable(secret, {key}, sealed=index)
    assert not derivable(secret, {base}, sealed=index)
    point = pprf_eval(base, 0, 5)
    assert derivable(point, {base})
    assert not derivable(point, {base}, blocked=lambda t: t.label == "PPRF")


def test_model_hash_is_a_fixed_function_into_the_leaf_space() -> None:
    values = [model_hash(i % 4, r, 3) for i, r in enumerate(range(200))]
    assert all(0 <= v < 8 for v in values)
    assert len(set(values)) == 8  # every leaf is hit
    assert model_hash(1, 99, 32) == model_hash(1, 99, 32) < 2**32


def test_birthday_bound_rows() -> None:
    rows = birthday(3, (2, 4), trials=400)
    # k(k-1)/2^(bits+1): 2*1/16 and 4*3/16.
    assert [r.expected for r in rows] == [0.125, 0.75]
    for r in rows:
        assert r.observed is not None and abs(r.observed - r.expected) < 0.15
    assert birthday(32, (65536,))[0].expected == pytest.approx(0.5, rel=1e-4)
    assert birthday(32, (65536,))[0].observed is None


def test_cli_baseline_exploration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--profile", "ci"]) == 0
    out = capsys.readouterr().out
    assert "Invariants checked (12)" in out
    assert "INV-REMOVED" in out
    assert "Result: every invariant held." in out


def test_cli_finding_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--finding", "F1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["expectation_met"] is True
    assert out["switches"] == {"literal_p4_subsecrets": True}
    assert out["violation"]["invariant"] == "INV-OP-KEYS-DISTINCT"
    assert out["violation"]["baseline_violations"] == []


def test_cli_finding_text_prints_a_numbered_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--finding", "F4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Finding reproduced: INV-PPRF-PUNCTURE" in out
    assert " 1. " in out
    assert "Birthday bound" in out


def test_cli_rejects_unknown_findings() -> None:
    with pytest.raises(SystemExit):
        main(["explore", "--finding", "F99"])


def test_the_model_imports_no_implementation_or_cryptography_and_only_the_cli_prints() -> None:
    package = Path(next(iter(mlsvc_model.__path__)))
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root not in ("mlsvc", "cryptography"), (path.name, name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                assert path.name == "cli.py", path.name
