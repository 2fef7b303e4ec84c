"""Each spec finding fails its invariant with its switch on, and holds with it off.

Two ways: the explorer searches for it (Hypothesis, then a minimal trace), and a
hand-written witness trace (from the finding's description) is replayed both ways.
"""

from __future__ import annotations

import pytest

from mlsvc_model.config import FINDINGS, Config
from mlsvc_model.explore import reproduce
from mlsvc_model.invariants import violations
from mlsvc_model.state import Step
from mlsvc_model.transitions import replay

REQUIRED = ["F1", "F2", "F3", "F4"]
ORDER = sorted(FINDINGS, key=lambda fid: int(fid[1:]))


def _steps(*calls: tuple[str, dict[str, object]]) -> list[Step]:
    return [Step(name, tuple(args.items())) for name, args in calls]


Calls = list[tuple[str, dict[str, object]]]

JOINED: Calls = [
    ("create_group", {}),
    ("external_join", {"emulator": "E0", "group": "G1", "salt": 0}),
    ("catch_up", {"emulator": "E1"}),
]
ADDED: Calls = [("add_emulator", {"emulator": "E0", "variant": "state_transfer"})]

# Witnesses written from each finding's description (not from a search).
WITNESSES: dict[str, Calls] = {
    # Two KeyPackages of one epoch: the literal P4 gives both the same four secrets.
    "F1": [("create_key_packages", {"emulator": "E0", "count": 2, "salt": 0})],
    # E2 (leaf 2 of 4) sends x = 2; E0 (leaf 0 of N_e = 2) may pick x = 2 too.
    "F2": [
        *JOINED,
        *ADDED,
        ("send_private_message", {"emulator": "E2", "group": "G1", "r": 0}),
        ("send_private_message", {"emulator": "E0", "group": "G1", "r": 1}),
    ],
    # Two groups whose leaves come from one emulation epoch, generation 0 in each.
    "F3": [
        ("create_group", {}),
        ("create_group", {}),
        ("create_key_packages", {"emulator": "E0", "count": 2, "salt": 0}),
        ("welcome", {"group": "G1", "key_package": "KP1"}),
        ("welcome", {"group": "G2", "key_package": "KP2"}),
        ("catch_up", {"emulator": "E0"}),
        ("send_private_message", {"emulator": "E0", "group": "G1", "r": 0}),
        ("send_private_message", {"emulator": "E0", "group": "G2", "r": 0}),
    ],
    # Eight KeyPackages in one epoch of an 8-leaf PPRF: some input repeats a leaf.
    "F4": [
        ("create_key_packages", {"emulator": "E0", "count": 4, "salt": 0}),
        ("catch_up", {"emulator": "E1"}),
        ("create_key_packages", {"emulator": "E0", "count": 4, "salt": 0}),
    ],
    # E0 and E1 derive in the same epoch without seeing each other. With 4 PPRF leaves,
    # one taken by the external join, E1's three KeyPackages cover E0's leaf.
    "F5": [
        *JOINED,
        ("vc_commit", {"emulator": "E0", "group": "G1", "kind": "commit", "salt": 0}),
        ("create_key_packages", {"emulator": "E1", "count": 3, "salt": 0}),
    ],
    # E1 creates a KeyPackage, then is removed; the VC is in no group.
    "F6": [
        ("create_key_packages", {"emulator": "E1", "count": 1, "salt": 0}),
        ("catch_up", {"emulator": "E0"}),
        ("remove_emulator", {"emulator": "E0", "target": "E1"}),
    ],
    # An emulator without the group's state resyncs into it.
    "F7": [
        *JOINED,
        ("add_emulator", {"emulator": "E0", "variant": "external_commit"}),
        ("external_join", {"emulator": "E2", "group": "G1", "salt": 0}),
    ],
    # E1 has not processed E2's Add: it reads x = 2 modulo its own N = 2.
    "F8": [
        *JOINED,
        *ADDED,
        ("send_private_message", {"emulator": "E2", "group": "G1", "r": 0}),
        ("deliver", {"emulator": "E1", "log": "G1"}),
    ],
    # Two emulators send generation 0 concurrently; nothing coordinates them.
    "F9": [
        *JOINED,
        ("send_private_message", {"emulator": "E0", "group": "G1", "r": 0}),
        ("send_private_message", {"emulator": "E1", "group": "G1", "r": 0}),
    ],
    # E1 cannot compute the external commit's init_secret.
    "F10": JOINED,
    "F11": [("remove_emulator", {"emulator": "E0", "target": "E1"})],
    # E2 (still at epoch 2) commits from it after E0 moved on and deleted it.
    "F12": [
        *JOINED,
        *ADDED,
        ("add_emulator", {"emulator": "E0", "variant": "state_transfer"}),
        ("vc_commit", {"emulator": "E2", "group": "G1", "kind": "update", "salt": 0}),
        ("deliver", {"emulator": "E0", "log": "G1"}),
    ],
}


def test_every_finding_has_a_witness() -> None:
    assert set(WITNESSES) == set(FINDINGS)
    assert set(REQUIRED) <= set(FINDINGS)


@pytest.mark.parametrize("fid", ORDER)
def test_witness_fails_with_the_switch_and_holds_without(fid: str) -> None:
    finding = FINDINGS[fid]
    world, refused = replay(finding.config, _steps(*WITNESSES[fid]))
    assert not refused
    assert finding.invariant in dict(violations(world))
    base, _ = replay(Config(), _steps(*WITNESSES[fid]))
    assert violations(base) == []


@pytest.mark.parametrize("fid", ORDER)
def test_the_explorer_finds_it(fid: str) -> None:
    finding = FINDINGS[fid]
    res = reproduce(fid, "ci")
    assert res.violation is not None, f"{fid} not reproduced in {res.runs} runs"
    assert res.violation.invariant == finding.invariant
    assert res.checked == (finding.invariant,)
    # The minimal trace fails here and nowhere with every switch off.
    assert finding.invariant in dict(res.violation.also)
    assert res.violation.baseline_violations == []
    assert 1 <= len(res.violation.trace) <= 12
