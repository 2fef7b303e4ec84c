"""The main job's group session (mlsvc demo, part 4) succeeds and is reproducible."""

from __future__ import annotations

import pytest

from mlsvc.cli import main
from mlsvc.demo import run_session


def test_session_succeeds_and_repeats_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_session(1, size=4)
    first = capsys.readouterr().out
    assert run_session(1, size=4)
    second = capsys.readouterr().out
    strip = [line.split(" (")[0] for line in first.splitlines()]  # drop the timing
    assert strip == [line.split(" (")[0] for line in second.splitlines()]
    assert "epoch authenticator" in first


def test_vectors_command_exits_zero_and_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["vectors", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and len(doc["files"]) == 16 and doc["unrecognised"] == []
    assert sum(f["passed"] for f in doc["files"]) == 785
    assert all(f["failed"] == 0 and f["skipped"] == 0 for f in doc["files"])
