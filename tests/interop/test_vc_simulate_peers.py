"""The issues' own checks, in the default run: `mlsvc vc simulate --emulators 3 --groups
2 --peers mlsvc,mls-rs,ts-mls --ops 300 --seed 1` holds with every operation kind, no
(key, nonce) reuse, no misattribution and nothing undecryptable (strong DS), under both
profiles (mlsvc.vc.profiles: "draft-00" and "latest", `--profile`); and issue 15's check,
the same command with `--profile latest --seed 3`. Under latest the virtual client
creates the last group itself (latest §5.4; the command's default). About 5-12 s a run
on two cores."""

from __future__ import annotations

import pytest

from mlsvc.simulate import OP_KINDS, Simulation, SimulationConfig
from mlsvc.vc.emulator import recorded_profile
from mlsvc.vc.profiles import Profile
from tests.interop.conftest import require

RUNS = [pytest.param(p, 1, id=p.value) for p in Profile]
RUNS.append(pytest.param(Profile.LATEST, 3, id="latest-seed3"))  # issue 15's check


@pytest.mark.parametrize(("profile", "seed"), RUNS)
def test_simulation_with_three_engines_holds(profile: Profile, seed: int) -> None:
    require("mls-rs")
    require("ts-mls")
    sim = Simulation(SimulationConfig(3, 2, ("mlsvc", "mls-rs", "ts-mls"), 300, seed,
                                      profile=profile))
    report = sim.run()
    assert report.violations == []
    assert set(report.by_kind) == set(OP_KINDS)
    assert report.key_nonce_reuses == 0
    assert report.misattributions == 0 and report.attributions > 0
    assert report.messages_undecryptable == 0 and report.messages_decrypted > 0
    # the run followed the profile it was given: every emulator's emulation group
    # records it (no entry for draft-00) and it is in the report (`--json`)
    assert report.config.profile is profile
    assert report.config.groups_created_by_vc == (1 if profile is Profile.LATEST else 0)
    for em in sim.vc.emulators.values():
        assert em.vc.profile is profile
        assert recorded_profile(em.emu.context.extensions) is profile
