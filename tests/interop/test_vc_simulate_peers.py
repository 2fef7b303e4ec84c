"""The issue's own check, in the default run: `mlsvc vc simulate --emulators 3 --groups 2
--peers mlsvc,mls-rs,ts-mls --ops 300 --seed 1` holds with every operation kind, no
(key, nonce) reuse, no misattribution and nothing undecryptable (strong DS)."""

from __future__ import annotations

from mlsvc.simulate import OP_KINDS, Simulation, SimulationConfig
from tests.interop.conftest import require


def test_simulation_with_three_engines_holds() -> None:
    require("mls-rs")
    require("ts-mls")
    report = Simulation(SimulationConfig(3, 2, ("mlsvc", "mls-rs", "ts-mls"), 300, 1)).run()
    assert report.violations == []
    assert set(report.by_kind) == set(OP_KINDS)
    assert report.key_nonce_reuses == 0
    assert report.misattributions == 0 and report.attributions > 0
    assert report.messages_undecryptable == 0 and report.messages_decrypted > 0
