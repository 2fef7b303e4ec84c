"""Crashes of a real process (issue 12 item 6, P23): tests/crash_driver.py runs a
virtual client (phone, laptop, tablet), bob and carol with everything in one SQLite
file; the process is SIGKILLed at every step of each two-step action, then a new
process restarts every emulator from the file and reports the state it finds.

The world is built once into a template file and copied per case; the cases run in
parallel. The files live on /dev/shm when there is one: a tmpfs keeps what a killed
process wrote exactly as a disk does (the page cache outlives the process), only the
fsyncs are free.

What each case checks on the recovered state (`_check`):
  - the run died of SIGKILL (the point was reached) and the recovery exited 0;
  - no emulator was lost, every emulator agrees with bob on g1 (and with carol on g2,
    when the virtual client is there), the virtual client has one leaf in g1;
  - every application message of the virtual client in the DS's log of g1 was read by
    bob exactly once, bob read nothing else, and no two of them share (epoch, sender
    leaf, generation): no key and nonce used twice;
  - no message bob received was unreadable;
  - the interrupted action completed (from what the restart found in the store and the
    DS) or, where the kill came before anything left the process ("derived"), was
    retried cleanly; its goal holds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (emulator, point) of every step of each action, in the order they occur
KILLS: dict[str, list[tuple[str, str]]] = {
    # KeyPackageUpload: emulation Commit accepted -> KeyPackages uploaded
    "kpu": [("phone", "derived"), ("phone", "before-submit:emulation_commit"),
            ("phone", "after-submit:emulation_commit"), ("phone", "accepted:emulation_commit"),
            ("phone", "key-packages-uploaded")],
    # ExternalJoin Commit -> external commit
    "ej": [("laptop", "derived"), ("laptop", "before-submit:emulation_commit"),
           ("laptop", "after-submit:emulation_commit"), ("laptop", "accepted:emulation_commit"),
           ("laptop", "before-submit:external_commit"),
           ("laptop", "after-submit:external_commit"),
           ("laptop", "accepted:external_commit")],
    # derive -> send
    "send": [("laptop", "derived"), ("laptop", "before-submit:application"),
             ("laptop", "after-submit:application"), ("laptop", "accepted:application")],
    # Welcome with NewEmulatorClientState -> first receive (of the new emulator "desk")
    "welcome": [("desk", "welcome-joined"), ("desk", "delivery-taken")],
}
CASES = [(a, e, p) for a, kills in KILLS.items() for e, p in kills]


@dataclass
class Outcome:
    run_rc: int
    run_out: str
    run_err: str
    rec_rc: int
    rec_err: str
    report: dict[str, Any] | None


def _driver(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the processes share one bytecode cache outside the tree (the set-up fills it):
    # each start would otherwise compile every module again
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return subprocess.run([sys.executable, "-m", "tests.crash_driver", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _case(template: Path, work: Path, action: str, kill: tuple[str, str] | None
          ) -> Outcome:
    tag = action + ("" if kill is None else "-" + "-".join(kill).replace(":", "_"))
    db = work / f"{tag}.db"
    shutil.copyfile(template, db)
    run = _driver(work, "run", str(db), action,
                  *(() if kill is None else ("--kill", f"{kill[0]}:{kill[1]}:1")))
    rec = _driver(work, "recover", str(db), action)
    report = None
    if rec.returncode == 0 and rec.stdout.strip():
        report = json.loads(rec.stdout.strip().splitlines()[-1])
    return Outcome(run.returncode, run.stdout, run.stderr, rec.returncode, rec.stderr, report)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[tuple[str, tuple[str, str] | None], Outcome]]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        work = Path(tempfile.mkdtemp(prefix="mlsvc-crash-", dir=shm))
    else:
        work = tmp_path_factory.mktemp("crash")
    try:
        template = work / "template.db"
        made = _driver(work, "setup", str(template))
        assert made.returncode == 0, made.stderr
        jobs: list[tuple[str, tuple[str, str] | None]] = [(a, None) for a in KILLS]
        jobs += [(a, (e, p)) for a, e, p in CASES]
        with ThreadPoolExecutor(max_workers=max(2, min(6, 2 * (os.cpu_count() or 1)))) as ex:
            futures = {job: ex.submit(_case, template, work, *job) for job in jobs}
            results = {job: f.result() for job, f in futures.items()}
        yield results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check(o: Outcome, action: str, point: str | None) -> dict[str, Any]:
    if point is None:
        assert o.run_rc == 0, o.run_err
    else:
        assert o.run_rc == -signal.SIGKILL, (
            f"the run was not killed at {point} (rc {o.run_rc}): {o.run_err[-2000:]}")
    assert o.rec_rc == 0 and o.report is not None, o.rec_err[-3000:]
    r = o.report
    assert r["lost"] == []
    # every emulator (the new one included) agrees with the ordinary members
    expected = {"phone", "laptop", "tablet"} | ({"desk"} if action == "welcome" else set())
    assert set(r["restarted"]) == expected
    for gid, auths in r["groups"].items():
        assert set(auths) >= expected, (gid, sorted(auths))
        assert len(set(auths.values())) == 1, f"{gid}: emulators and peer disagree"
    assert r["vc_leaves_g1"] == 1
    # bob read each message of the virtual client exactly once, and nothing else
    logged = sorted(m["group_seq"] for m in r["vc_messages_g1"])
    read = sorted(m["group_seq"] for m in r["bob_reads"])
    assert read == logged
    # no (key, nonce) twice: one message per (epoch, sender leaf, generation)
    used = [(m["epoch"], m["sender"], m["generation"]) for m in r["bob_reads"]]
    assert len(set(used)) == len(used), used
    # nothing readable became unreadable
    assert r["peer_failures"] == []
    # the action completed from its durable state, or (nothing had left the process)
    # was retried
    assert r["retried"] == (point == "derived"), r["retried"]
    return dict(r["goal"])


def _check_goal(action: str, goal: dict[str, Any]) -> None:
    ems = {"phone", "laptop", "tablet"}
    if action == "kpu":
        assert goal["outstanding"] == 2  # the two announced, none twice, none missing
        assert set(goal["held_by"]) == ems
        assert set(goal["joined_g3"]) == ems  # bob adds from one; every emulator joins
        assert set(goal["g3"]) == ems | {"bob"} and len(set(goal["g3"].values())) == 1
        assert goal["vc_leaves_g3"] == 1
    elif action == "ej":
        assert set(goal["g2"]) == ems | {"carol"} and len(set(goal["g2"].values())) == 1
        assert goal["vc_leaves_g2"] == 1  # one leaf, never two
    elif action == "send":
        assert goal["bob_read"] == 1
    else:
        assert goal["desk_restored"] and goal["desk_leaf_in_emulation_group"]
        assert goal["desk_read"] == ["after the restart"]
        assert goal["bob_read_for_desk"] in (0, 1)  # 0: killed before it was sent


@pytest.mark.parametrize("action", list(KILLS))
def test_unkilled_run_passes_the_same_checks(
        outcomes: dict[tuple[str, tuple[str, str] | None], Outcome], action: str) -> None:
    o = outcomes[(action, None)]
    _check_goal(action, _check(o, action, None))


@pytest.mark.parametrize("action", list(KILLS))
def test_kill_points_are_the_points_the_action_passes(
        outcomes: dict[tuple[str, tuple[str, str] | None], Outcome], action: str) -> None:
    """The unkilled run's recorded points hold every kill point, in the listed order."""
    o = outcomes[(action, None)]
    assert o.run_rc == 0, o.run_err
    passed = [tuple(p) for p in json.loads(o.run_out.strip().splitlines()[-1])["points"]]
    at = [passed.index(k) for k in KILLS[action]]
    assert at == sorted(at), passed


@pytest.mark.parametrize(("action", "emulator", "point"), CASES,
                         ids=[f"{a}-{e}-{p}" for a, e, p in CASES])
def test_sigkill_at_every_step_then_restart(
        outcomes: dict[tuple[str, tuple[str, str] | None], Outcome], action: str,
        emulator: str, point: str) -> None:
    o = outcomes[(action, (emulator, point))]
    goal = _check(o, action, point)
    _check_goal(action, goal)
    if action == "welcome":
        # killed at its join, the rest of the action (the laptop's message) never ran;
        # killed at its first receive, the message was sent and bob read it once
        assert goal["bob_read_for_desk"] == (0 if point == "welcome-joined" else 1)
