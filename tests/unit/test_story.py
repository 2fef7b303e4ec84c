"""The demo's story (mlsvc.story, `mlsvc demo`) with this project's engine as the only
peer: every step's checks hold, the JSON contract, determinism, and the removed tablet
reads nothing sent after its removal. The same story with mls-rs and ts-mls peers is
tests/interop/test_story_peers.py."""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import cache
from typing import Any

import pytest

from mlsvc import story
from mlsvc.cli import main

ENGINES = ("ours",)


@cache
def _report() -> story.StoryReport:
    return story.run_story(ENGINES)


def test_every_step_holds() -> None:
    r = _report()
    assert r.ok, r.failures
    assert r.failures == [] and all(line.ok for line in r.lines)


def test_json_contract() -> None:
    doc = _report().as_json()
    assert doc["ok"] is True
    assert [g["name"] for g in doc["groups"]] == ["family", "work", "club"]
    for g in doc["groups"]:
        assert g["agree"] is True and g["devices"] == ["phone", "laptop", "desktop"]
        assert isinstance(g["alice_leaf"], int) and g["epoch"] >= 1
        assert len(bytes.fromhex(g["epoch_authenticator"])) == 32
    assert doc["groups"][0]["alice_joined_by"].startswith("Welcome from")
    assert doc["groups"][2]["alice_joined_by"] == "external commit by laptop"
    assert doc["peers"]["engines"] == ["ours"]
    assert {c["group"] for c in doc["peers"]["clients"]} == {"family", "work", "club"}
    assert doc["devices_added"] == ["phone", "laptop", "tablet", "desktop"]
    assert doc["devices_removed"] == ["tablet"]
    assert doc["removed_device_unreadable"] is True
    assert doc["attributions"] >= 10 and doc["peer_reads"] >= 7 and doc["device_reads"] >= 6
    json.dumps(doc)  # plain JSON all through


def test_the_transcript_tells_the_story() -> None:
    text = "\n".join(line.text() for line in _report().lines)
    for needle in ("creates alice's emulation group", "KeyPackageUpload",
                   "adds alice to family", "adds alice to work",
                   "laptop and tablet attribute it to phone (emulation leaf 0)",
                   "phone and tablet attribute it to laptop (emulation leaf 1)",
                   "tablet           commits in family",
                   "by Welcome (P13)", "VC-SEND-BEFORE-ROTATION",
                   "removes the tablet (P21)", "joins club by external commit",
                   "(removed) tries every later message"):
        assert needle in text, needle
    assert "DISAGREE" not in text and "FAILED" not in text
    # every group view names the epoch, alice's leaf at the peers and the authenticator
    assert "alice is leaf 1 (one member) for dave" in text and ": agree" in text


def test_the_story_is_deterministic() -> None:
    again = story.run_story(ENGINES)
    assert [line.text() for line in again.lines] == [line.text() for line in _report().lines]
    first = {k: v for k, v in _report().as_json().items() if k != "seconds"}
    assert {k: v for k, v in again.as_json().items() if k != "seconds"} == first
    other = story.run_story(ENGINES, seed=2)
    assert other.ok
    assert [g["epoch_authenticator"] for g in other.as_json()["groups"]] != [
        g["epoch_authenticator"] for g in first["groups"]]


def test_the_removed_tablet_reads_nothing() -> None:
    r = _report().removed
    assert r["device"] == "tablet" and r["groups"] == ["family", "work"]
    assert r["read"] == 0 and r["unreadable"] == r["tried"] > 0
    assert r["applications"] >= 3  # laptop's, carol's or dave's, desktop's after the removal
    assert sum(r["errors"].values()) == r["tried"]
    assert all(k.split()[0] in ("ValidationError", "StateError", "CryptoError", "DecodeError")
               for k in r["errors"])


def test_a_removed_device_that_reads_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is real: a tablet whose attempts succeed makes the story fail."""
    from mlsvc.vc.emulator import Emulator, Received

    real = Emulator.deliver

    def deliver(self: Emulator, group_id: bytes, message: bytes, *,
                welcomed: Collection[bytes] = ()) -> Received:
        if self.removed:
            return Received(group_id, None)
        return real(self, group_id, message, welcomed=welcomed)

    monkeypatch.setattr(Emulator, "deliver", deliver)
    r = story.run_story(ENGINES)
    assert not r.ok and not r.removed_device_unreadable
    assert r.removed["read"] == r.removed["tried"] > 0
    assert any("tries every later message" in f for f in r.failures)


def _fake_summary(ok: bool) -> dict[str, Any]:
    return story.summarise(_fake_results(ok), 1.0)


def _fake_results(ok: bool = True) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {
        "vectors": {"rc": 0, "doc": {"files": [{"file": "x", "passed": 3, "failed": 0,
                                                "skipped": 0}]}},
        "proofs": {"rc": 0 if ok else 1, "doc": {"obligations": [
            {"name": "a", "kind": "holds", "ok": ok, "verdict": "unknown" if not ok else
             "unsat", "reason": "" if ok else "timeout"},
            {"name": "b", "kind": "twin", "ok": True, "verdict": "sat", "reason": ""}],
            "total_seconds": 1.0, "failed": [] if ok else ["a"]}},
        "model": {"rc": 0, "doc": {"invariants_checked": ["INV-A"], "runs": 2,
                                   "transitions_applied": 9, "violation": None}},
        **{f"finding {f}": {"rc": 0, "doc": {"violation": {"invariant": "INV-A"}}}
           for f in story.FINDINGS},
        "refinement": {"rc": 0, "doc": {"runs": 3, "steps": 40, "failure": None,
                                        "invariants": [{"id": "INV-A"}]}},
        "latest profile": {"rc": 0, "doc": {"ops": 150, "messages_decrypted": 300,
                                            "violations": [],
                                            "config": {"peers": ["mlsvc", "mls-rs"]}}},
        "compare": {"rc": 0, "doc": {"findings": [
            {"verdicts": {"draft-00": {"verdict": "found"}, "latest": {"verdict": "fixed"}}},
            {"verdicts": {"draft-00": {"verdict": "found"}, "latest": {"verdict": "found"}}},
            {"verdicts": {"draft-00": {"verdict": "not applicable"},
                          "latest": {"verdict": "new"}}}]}},
    }
    return results


class _FakeChecks:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def collect(self) -> dict[str, Any]:
        return _fake_summary(self.ok)


@pytest.mark.parametrize("summary_ok", [True, False])
def test_demo_json_and_exit_status(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str],
                                   summary_ok: bool) -> None:
    """`mlsvc demo --json`: one object, exit 0 iff the story and the summary held (the
    summary's subprocesses and the peer engines replaced by stand-ins here)."""
    monkeypatch.setattr(story, "start_checks", lambda: _FakeChecks(summary_ok))
    monkeypatch.setattr(story, "missing_engines", lambda engines=story.ENGINES: {})
    monkeypatch.setattr(story, "run_story", lambda echo=None: _report())
    assert main(["demo", "--json"]) == (0 if summary_ok else 1)
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is summary_ok and doc["story_ok"] is True
    assert len(doc["groups"]) == 3 and len(doc["devices_added"]) == 4
    assert doc["devices_removed"] == ["tablet"] and doc["removed_device_unreadable"]
    s = doc["summary"]
    assert set(s) >= {"vectors", "proofs", "model", "refinement", "ok"}
    assert s["refinement"] == {"ok": True, "runs": 3, "steps": 40, "invariants": 1,
                               "failure": None}
    assert s["proofs"]["ok"] is summary_ok and s["model"]["findings"]["F1"]["reproduced"]
    assert s["proofs"]["failed"] == ([] if summary_ok else ["a: unknown (timeout)"])


def test_demo_text_prints_transcript_and_summary(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(story, "start_checks", lambda: _FakeChecks(True))
    monkeypatch.setattr(story, "missing_engines", lambda engines=story.ENGINES: {})

    def run(echo: Any = None) -> story.StoryReport:
        for line in _report().lines:
            echo(line.text())
        return _report()

    monkeypatch.setattr(story, "run_story", run)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "removes the tablet (P21)" in out
    assert "refinement (the model judges the implementation): 3 runs, 40 steps" in out
    assert out.rstrip().endswith("demo: all checks as expected")


def test_demo_fails_without_the_peer_engines(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(story, "missing_engines",
                        lambda engines=story.ENGINES: {"ts-mls": "node not found"})
    started: list[bool] = []
    monkeypatch.setattr(story, "start_checks", lambda: started.append(True))
    assert main(["demo", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and "ts-mls" in doc["error"] and not started
    assert main(["demo"]) == 1
    assert "ts-mls: node not found" in capsys.readouterr().err


def test_the_demo_offers_no_choice_of_engines() -> None:
    """No leniency: the demo's peers are mls-rs and ts-mls (and ours), or it fails."""
    with pytest.raises(SystemExit):
        main(["demo", "--engines", "ours"])
    assert story.ENGINES == ("mls-rs", "ts-mls", "ours")


def test_a_summary_command_that_prints_no_json_is_an_error(tmp_path: Any) -> None:
    """The lanes run `mlsvc` commands; one that fails without JSON keeps its message."""
    out = story._run_lane([("vectors", ["vectors", "--dir", str(tmp_path / "none"),
                                        "--json"])])
    assert out["vectors"]["rc"] == 2 and "no such folder" in out["vectors"]["doc"]["error"]
    lanes = story._lanes()
    assert [name for name, _ in lanes[0]] == ["proofs", "latest profile"]
    assert [name for lane in lanes for name, _ in lane][-5:] == [
        *(f"finding {f}" for f in story.FINDINGS), "compare"]


def test_a_failed_refinement_fails_the_summary() -> None:
    s = _fake_summary(True)
    assert s["ok"] and s["refinement"]["ok"]
    results = {"refinement": {"rc": 1, "doc": {"runs": 1, "steps": 5, "invariants": [],
                                               "failure": "abstraction .groups: ..."}}}
    bad = story.summarise({**_fake_results(), **results}, 1.0)
    assert not bad["ok"] and not bad["refinement"]["ok"]
    assert any("FAILED abstraction .groups" in x for x in story.summary_lines(bad))


def test_the_latest_profile_in_the_summary() -> None:
    """The second profile's run and the model's comparison are in the summary; a
    violation under latest, or a comparison that fails, fails the summary."""
    s = _fake_summary(True)
    assert s["ok"] and s["profiles"] == {
        "ok": True, "ops": 150, "decrypted": 300, "violations": [],
        "engines": ["mlsvc", "mls-rs"], "findings": 3, "fixed_by_latest": 1,
        "still_found": 1, "new_in_latest": 1}
    assert any(line.startswith("latest profile") and line.endswith(": ok")
               for line in story.summary_lines(s))
    violated = {"latest profile": {"rc": 1, "doc": {"ops": 3, "violations": ["step 3"]}}}
    bad = story.summarise({**_fake_results(), **violated}, 1.0)
    assert not bad["ok"] and not bad["profiles"]["ok"]
    failed = {"compare": {"rc": 2, "doc": {"error": "boom"}}}
    bad = story.summarise({**_fake_results(), **failed}, 1.0)
    assert not bad["ok"] and not bad["profiles"]["ok"]
