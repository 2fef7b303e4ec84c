"""The model judges the implementation (issue 13; refine/, docs/REFINEMENT.md).

The short profile of the refinement machine runs here; `make refine` runs the long one.
Each finding of the replayable list is replayed from the model's minimal trace on the
implementation with its literal reading on (the invariant must break on real bytes)
and off (the model's refusals must meet the implementation's, every invariant holds).
"""

from __future__ import annotations

import pytest

from mlsvc_model.config import FINDINGS, Config
from mlsvc_model.invariants import INVARIANTS
from mlsvc_refine.abstraction import diff, of_impl, of_model
from mlsvc_refine.bridge import PRECONDITIONS, Bridge, RefinementError, precondition_of
from mlsvc_refine.cli import REPLAYABLE
from mlsvc_refine.cli import main as refine_main
from mlsvc_refine.invariants import IMPL_INVARIANTS, impl_violations
from mlsvc_refine.machine import check, refine, replay_finding


def test_every_model_invariant_is_checked_on_the_implementation() -> None:
    assert set(IMPL_INVARIANTS) == set(INVARIANTS)


def test_the_short_profile_refines() -> None:
    report = refine("ci")
    assert report.failure is None, (report.failure, report.trace)
    assert report.steps >= 50
    # the interleavings reach most transitions, not only the cheap ones
    assert len(report.transitions) >= 9, report.transitions
    assert sum(report.model_refused.values()) - sum(report.skipped.values()) > 0, (
        "no model refusal met an implementation refusal")


@pytest.mark.parametrize("finding", REPLAYABLE)
def test_each_finding_breaks_the_same_invariant_on_real_bytes(finding: str) -> None:
    r = replay_finding(finding)
    assert r.invariant == FINDINGS[finding].invariant
    assert r.impl_detail is not None, (finding, r.trace, r.impl_diverged)
    assert not r.baseline_problems, r.baseline_problems
    assert r.reproduced


def test_a_step_both_sides_refuse_is_matched_by_kind() -> None:
    b = Bridge(Config())
    b.step("create_group")
    res = b.step("welcome", group="G1", key_package="KP9")  # never uploaded
    assert res.model.startswith("refused") and res.impl.startswith("refused"), res
    # E1 has not processed E0's emulation Commit: M4 on both sides
    b.step("emulation_commit", emulator="E0")
    res = b.step("create_key_packages", emulator="E1", count=1, salt=0)
    assert res.model.startswith("refused"), res
    assert "StaleEmulationEpoch" in res.impl or "commit-conflict" in res.impl, res
    assert not check(b)


def test_an_unmapped_precondition_is_an_error() -> None:
    assert precondition_of("nothing to deliver").kind == "protocol"
    with pytest.raises(RefinementError):
        precondition_of("a reason the table does not know")
    assert all(p.impl or p.kind == "environment" for p in PRECONDITIONS)


def test_the_abstraction_reports_a_difference_by_path() -> None:
    b = Bridge(Config())
    b.step("create_key_packages", emulator="E0", count=2, salt=0)
    b.step("catch_up", emulator="E1")
    assert not diff(of_model(b.world), of_impl(b))
    # the implementation loses a KeyPackage the model still has: named by its path
    em = b.vc.emulators["E1"]
    em.key_packages.pop(next(iter(em.key_packages)))
    lines = diff(of_model(b.world), of_impl(b))
    assert any(".emulators.E1.key_packages" in x for x in lines), lines


def test_the_implementation_checks_fail_on_tampered_state() -> None:
    b = Bridge(Config())
    b.step("create_group")
    b.step("external_join", emulator="E0", group="G1", salt=0)
    b.step("catch_up", emulator="E1")
    b.step("send_private_message", emulator="E0", group="G1", r=0)
    assert not impl_violations(b)
    # a second delivered message on the same generation (as if the DS had no IDs)
    group, out, _ = b.messages[-1]
    b.messages.append((group, out, True))
    assert [i for i, _ in impl_violations(b)] == ["INV-DELIVERED-DECRYPTABLE"]
    b.messages.pop()
    # an emulator that keeps an unreferenced epoch's secrets
    em = b.vc.emulators["E1"]
    from mlsvc.vc.epoch import open_epoch
    ep = em.epochs.latest
    em.epochs.epochs[-5] = open_epoch(em.ecs, bytes(32), -5, ep.leaf_count, ep.own_leaf,
                                      ep.roster)
    assert "INV-DELETION" in [i for i, _ in impl_violations(b)]
    del em.epochs.epochs[-5]
    # an outsider-visible byte string carrying an emulator's signature key
    b.public.append(b"x" + b.vc.emulators["E0"].identity.signature_public_key)
    assert "INV-NO-EMULATOR-ID" in [i for i, _ in impl_violations(b)]


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    assert refine_main(["--finding", "F7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    f = out["findings"][0]
    assert f["invariant"] == "INV-ONE-LEAF" and f["implementation"]["violated"]
