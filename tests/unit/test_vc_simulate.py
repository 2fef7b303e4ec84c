"""`mlsvc vc simulate` with our own engine as the only peer: the command's contract
(JSON fields, exit status), every operation kind reached, and its checks shown able to
fail on a real fault (a delivery lost on the way to one emulator)."""

from __future__ import annotations

import json

import pytest

from mlsvc.cli import main
from mlsvc.simulate import OP_KINDS, Simulation, SimulationConfig, Violation
from mlsvc.vc.emulator import Consistency

FIELDS = {"ops", "by_kind", "messages_sent", "messages_decrypted", "messages_undecryptable",
          "key_nonce_reuses", "misattributions", "violations", "seconds"}


def test_cli_json_contract_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["vc", "simulate", "--emulators", "3", "--groups", "2", "--peers", "mlsvc",
               "--ops", "40", "--seed", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(out) >= FIELDS
    assert out["ops"] == 40 and sum(out["by_kind"].values()) == 40
    assert out["violations"] == [] and out["key_nonce_reuses"] == 0
    assert out["misattributions"] == 0 and out["messages_undecryptable"] == 0


def test_every_operation_kind_is_reached_and_holds() -> None:
    report = Simulation(SimulationConfig(3, 2, ("mlsvc",), 250, 1)).run()
    assert report.violations == []
    assert set(report.by_kind) == set(OP_KINDS)
    # the races really happened: the DS refused second commits and generation IDs
    assert report.refusals["commit-conflict"] > 0
    assert report.refusals["generation-id-collision"] > 0
    assert report.attributions > 0 and report.misattributions == 0


def test_eventual_mode_holds_for_emulators() -> None:
    report = Simulation(SimulationConfig(3, 2, ("mlsvc",), 150, 2,
                                         consistency=Consistency.EVENTUAL)).run()
    assert report.violations == []
    assert "generation-id-collision" not in report.refusals


def test_a_lost_delivery_is_a_violation() -> None:
    """The agreement check is real: drop one emulator's copy of a sibling's commit."""
    sim = Simulation(SimulationConfig(3, 1, ("mlsvc",), 0, 3))
    sim.vc.upload_key_packages("em0", 1)
    sim.deliver_all()
    sim._op_welcome()
    sim.deliver_all()
    sim.check()
    gid = sim.group_ids[0]
    sim.vc.commit("em0", gid)
    lost = sim.ds.receive("em2")
    assert lost, "em2 had the commit in its mailbox"
    sim.deliver_all()
    with pytest.raises(Violation, match="epoch authenticators differ"):
        sim.check()


def test_violation_gives_exit_status_one(capsys: pytest.CaptureFixture[str]) -> None:
    """An impossible configuration is refused as a violation-free usage error, and a
    run whose report holds a violation exits 1 (through the same code path)."""
    report = Simulation(SimulationConfig(2, 1, ("mlsvc",), 0, 1)).run()
    report.violations.append("injected")
    assert report.as_json()["violations"] == ["injected"]
