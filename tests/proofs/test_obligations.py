"""Every Z3 obligation verdicts as expected: holds obligations unsat (with satisfiable
premises), twins sat; `unknown` or a timeout fails. Plus the shape of the registry and
the `mlsvc proofs` entry point (mlsvc_proofs.cli.main)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mlsvc_proofs import cli
from mlsvc_proofs.obligation import Obligation, Query, Result, run
from mlsvc_proofs.registry import BY_NAME, OBLIGATIONS

NAMES = [ob.name for ob in OBLIGATIONS]


@pytest.mark.parametrize("name", NAMES)
def test_obligation_verdict(name: str, proof: Callable[[str], Result]) -> None:
    r = proof(name)
    assert r.verdict == r.expect, f"{name}: {r.verdict} ({r.reason}), expected {r.expect}"
    assert r.ok


def test_every_holds_obligation_has_a_twin() -> None:
    holds = {ob.name for ob in OBLIGATIONS if ob.kind == "holds"}
    twinned = {ob.twin_of for ob in OBLIGATIONS if ob.twin_of is not None}
    assert holds == twinned
    for ob in OBLIGATIONS:
        assert ob.expect == ("unsat" if ob.kind == "holds" else "sat")
        assert ob.sentence and ob.section and ob.encoding


def test_required_families_present() -> None:
    for prefix in ("partition.disjoint", "partition.cover", "partition.class_size",
                   "partition.sampler_in_class", "reuse_guard.unique", "reuse_guard.recover",
                   "feistel.injective", "feistel.inverse", "tree."):
        assert any(n.startswith(prefix) for n in NAMES), prefix


def test_runner_flags_vacuous_and_wrong_verdicts() -> None:
    import z3

    x = z3.BitVec("x", 8)
    vacuous = Obligation("t.vacuous", "-", "-", "-", "unsat",
                         lambda: Query([z3.ULT(x, z3.BitVecVal(0, 8))], x == x))
    r = run(vacuous)
    assert r.verdict == "vacuous" and not r.ok
    wrong = Obligation("t.wrong", "-", "-", "-", "unsat",
                       lambda: Query([], x == z3.BitVecVal(3, 8), {"x": x}))
    r = run(wrong)
    assert r.verdict == "sat" and r.witness == {"x": 3} and not r.ok


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--json", "--only", "feistel."]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["failed"] == []
    names = [o["name"] for o in doc["obligations"]]
    assert names == [n for n in NAMES if "feistel." in n]
    assert all(o["seconds"] >= 0 and o["verdict"] == o["expect"] for o in doc["obligations"])
    assert isinstance(doc["total_seconds"], float)


def test_cli_text_and_failure(capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["--only", "tree.root"]) == 0
    out = capsys.readouterr().out
    assert "tree.root.twin_width_2n" in out and "total solver time" in out
    # An obligation whose verdict is not the expected one makes the command fail.
    flipped = Obligation("feistel.injective.flipped", "-", "-", "-", "sat",
                         BY_NAME["feistel.injective"].build)
    monkeypatch.setattr(cli, "OBLIGATIONS", (flipped,))
    assert cli.main([]) == 1
    assert "FAILED: feistel.injective.flipped" in capsys.readouterr().out
    assert cli.main(["--only", "no-such-obligation"]) == 1
