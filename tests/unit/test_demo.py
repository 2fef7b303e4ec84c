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
    # the 16 official RFC 9420 files (785 cases), then the public vc-01 file (114 fields)
    assert doc["ok"] and len(doc["files"]) == 17 and doc["unrecognised"] == []
    assert doc["files"][-1]["file"] == "havenmessenger-interop_vc-01-vectors"
    assert doc["files"][-1]["passed"] == 114 and doc["files"][-1]["deviations"] == 19
    assert sum(f["passed"] for f in doc["files"]) == 785 + 114
    assert all(f["failed"] == 0 and f["skipped"] == 0 for f in doc["files"])
