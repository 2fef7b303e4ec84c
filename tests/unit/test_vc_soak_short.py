"""The soak of issue 12 item 9, short: `make soak`'s configuration (4 emulators, 3
groups, mls-rs and ts-mls peers beside ours, faults, crashes restarted from one SQLite
file) for 150 operations instead of 10,000, in the default test run.

The file goes to /dev/shm when there is one (a tmpfs: the same SQLite file, no fsync
cost; the crashes here are in-process, `mlsvc.simulate.Crash`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsvc.cli import main
from tests.interop.conftest import require

OPS = 150


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="mlsvc-soak-", dir=shm) as d:
            yield Path(d) / "soak.db"
    else:
        yield tmp_path / "soak.db"


def test_short_soak_with_faults_crashes_and_three_engines(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("mls-rs")
    require("ts-mls")
    rc = main(["vc", "simulate", "--emulators", "4", "--groups", "3",
               "--peers", "mlsvc,mls-rs,ts-mls", "--ops", str(OPS), "--seed", "3",
               "--store", f"sqlite:{db}", "--faults", "--crash-rate", "0.02", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == [], out["violations"]
    assert rc == 0
    assert out["ops"] == OPS
    assert out["crashes"] > 0 and out["restarts"] > 0
    assert out["messages_lost"] == 0
    assert out["key_nonce_reuses"] == 0 and out["misattributions"] == 0
    assert out["messages_undecryptable"] == 0
    assert out["ops_per_second"] > 0
