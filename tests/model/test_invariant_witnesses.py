"""Every model invariant can be seen to fail: one failing witness per INV-* (issue 16).

A witness is a world that violates exactly one invariant. Where a finding's trace
(tests/model/test_findings.py) reaches such a world with its switch on, the witness is
that reached world. Otherwise it is built: a baseline world reached with every switch
off (where every invariant holds) is changed in one place, the way a faulty emulator,
DS or derivation would change it, and only the invariant that guards that place may
report it. Each witness also goes through the CLI's report, which must name the
invariant, quote the draft's sentence and print the counterexample.

INV-AGREE, INV-NO-EMULATOR-ID and INV-DELETION have no finding; each of their clauses
gets its own witness, so that emptying any clause fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mlsvc_model import cli
from mlsvc_model.config import FINDINGS, Config
from mlsvc_model.explore import Result, Violation
from mlsvc_model.invariants import INVARIANTS, violations
from mlsvc_model.state import PprfEval, World
from mlsvc_model.tokens import expand, public_key
from mlsvc_model.transitions import replay
from tests.model.test_findings import ADDED, JOINED, WITNESSES, Calls, _steps

# E0 external-joins G1, E2 is added, E0 sends two messages (generations 0 and 1),
# commits a new leaf in G1 (its first leaf's operation is then unused) and creates a
# KeyPackage; everyone catches up. Every invariant holds here (checked below).
BASELINE: Calls = [
    *JOINED,
    *ADDED,
    ("send_private_message", {"emulator": "E0", "group": "G1", "r": 0}),
    ("send_private_message", {"emulator": "E0", "group": "G1", "r": 0}),
    ("vc_commit", {"emulator": "E0", "group": "G1", "kind": "commit", "salt": 0}),
    ("create_key_packages", {"emulator": "E0", "count": 1, "salt": 0}),
    ("catch_up", {"emulator": "E1"}),
    ("catch_up", {"emulator": "E2"}),
]


def baseline() -> World:
    world, refused = replay(Config(), _steps(*BASELINE))
    assert not refused
    return world


def reached(fid: str) -> World:
    """The world a finding's witness trace reaches with the finding's switch on."""
    world, refused = replay(FINDINGS[fid].config, _steps(*WITNESSES[fid]))
    assert not refused
    return world


# --- built witnesses: the baseline changed in one place --------------------------------


def agree_stale_view() -> World:
    """E1 has processed all of G1's log but kept the previous epoch number (it skipped
    applying the last Commit): it disagrees with the group on the epoch."""
    w = baseline()
    view = w.emulators["E1"].groups["G1"]
    view.epoch -= 1
    return w


def agree_unknown_key_package() -> World:
    """E1 has processed every emulation-group message but never recorded the
    KeyPackageUpload (nor the operation behind it): another emulator's KeyPackage is
    outstanding at the DS and E1 cannot answer a Welcome to it."""
    w = baseline()
    em = w.emulators["E1"]
    (ref,) = w.key_packages
    em.key_packages.discard(ref)
    em.ops.discard(w.key_packages[ref])
    return w


def rederive_unknown_node_key() -> World:
    """E1's view of G1 lists a direct-path key that nothing E1 holds can produce."""
    w = baseline()
    view = w.emulators["E1"].groups["G1"]
    view.node_keys = view.node_keys | {w.fresh("node_key_from_nowhere")}
    return w


def op_keys_shared() -> World:
    """A second operation recorded with the first one's secret (a derivation that
    ignores its HashInput)."""
    w = baseline()
    first = w.ops[min(w.ops)]
    copy = dataclasses.replace(first, op_id=w.next_id())
    w.ops[copy.op_id] = copy
    return w


def pprf_evaluated_after_puncture() -> World:
    """An emulator evaluates a PPRF leaf of its epoch that it has already punctured."""
    w = baseline()
    em = w.emulators["E0"]
    (leaf, *_) = sorted(em.punctured[em.emu_epoch] or {0})
    w.pprf_evals.append(PprfEval("E0", em.emu_epoch, leaf, was_punctured=True))
    return w


def two_leaves() -> World:
    """G1 holds the virtual client twice (and every emulator agrees that it does)."""
    w = baseline()
    g = w.groups["G1"]
    g.vc_leaves.append(g.vc_leaves[0])
    for em in w.active():
        em.groups["G1"].leaves = list(g.vc_leaves)
    return w


def public_prp_key() -> World:
    """The reuse guard of M1 is keyed from the sender leaf's public encryption key
    instead of its encryption_key_secret (P8 misread): anyone can invert it."""
    w = baseline()
    m = w.messages[0]
    leaf_op = w.ops[m.leaf_op]
    w.messages[0] = dataclasses.replace(
        m, prp_key=expand(public_key(leaf_op.encryption), "reuse guard", m.generation))
    return w


def derivation_key_in_clear() -> World:
    """epoch_encryption_key is published (sealed to a public key, i.e. to anyone):
    every DerivationInfo of that epoch opens for an outsider."""
    w = baseline()
    _where, op_id = w.public_leaves[0]
    epoch = w.epochs[w.ops[op_id].epoch]
    w.seal(public_key(w.fresh("anyone")), epoch.encryption_key)
    return w


def ds_false_collision() -> World:
    """The DS rejects generation 1 as a collision with generation 0."""
    w = baseline()
    first, second = w.messages[0], w.messages[1]
    w.ds_reports.append((second.msg_id, first.msg_id))
    return w


def deletion_export_kept() -> World:
    """E1 keeps the emulator_epoch_secret (SafeExportSecret) after deriving the four
    epoch secrets from it."""
    w = baseline()
    w.emulators["E1"].learn(w.epoch.emulator_epoch_secret)
    return w


def deletion_operation_kept() -> World:
    """E1 keeps the operation secret of the LeafNode that E0's Commit replaced."""
    w = baseline()
    live = set(w.groups["G1"].vc_leaves) | set(w.kp_ops.values())
    (stale, *_) = sorted(set(w.ops) - live)
    w.emulators["E1"].ops.add(stale)
    return w


def deletion_base_kept() -> World:
    """E1 keeps the epoch_base_secret of emulation epoch 1, which no live leaf or
    KeyPackage references any more."""
    w = baseline()
    em = w.emulators["E1"]
    em.known_epochs.add(1)
    em.learn(w.epochs[1].base)
    return w


@dataclass(frozen=True)
class Witness:
    invariant: str
    build: Callable[[], World] | str  # a builder, or the finding whose trace reaches it
    detail: str  # a fragment the counterexample must contain

    @property
    def name(self) -> str:
        return self.build if isinstance(self.build, str) else self.build.__name__

    def world(self) -> World:
        return reached(self.build) if isinstance(self.build, str) else self.build()


WITNESS_TABLE: dict[str, Witness] = {
    w.name: w
    for w in (
        Witness("INV-AGREE", agree_stale_view, "E1 sees G1 at epoch 1"),
        Witness("INV-AGREE", agree_unknown_key_package,
                "E1 does not know the outstanding KeyPackages ['KP1']"),
        Witness("INV-REDERIVE", rederive_unknown_node_key,
                "E1 cannot re-derive node_key_from_nowhere"),
        Witness("INV-REDERIVE", "F10", "cannot"),
        Witness("INV-REDERIVE", "F12", "cannot"),
        Witness("INV-OP-KEYS-DISTINCT", op_keys_shared, "share signature_key_secret"),
        Witness("INV-AEAD-UNIQUE", "F2", "same key and nonce"),
        Witness("INV-PPRF-PUNCTURE", pprf_evaluated_after_puncture,
                "E0 evaluated the PPRF at leaf"),
        Witness("INV-REMOVED", "F6", "removed at emulation epoch"),
        Witness("INV-REMOVED", "F11", "removed at emulation epoch"),
        Witness("INV-ATTRIBUTION", "F8", "attributes M"),
        Witness("INV-ONE-LEAF", two_leaves, "G1 has 2 leaves of the virtual client"),
        Witness("INV-NO-EMULATOR-ID", public_prp_key,
                "an outsider can invert the reuse guard of M"),
        Witness("INV-NO-EMULATOR-ID", derivation_key_in_clear,
                "an outsider can open the DerivationInfo of op"),
        Witness("INV-DS-NO-FALSE-COLLISION", ds_false_collision,
                "generation 1) as colliding with"),
        Witness("INV-DS-NO-FALSE-COLLISION", "F3", "the DS rejected"),
        Witness("INV-DELIVERED-DECRYPTABLE", "F9",
                "the second cannot be decrypted"),
        Witness("INV-DELETION", deletion_export_kept,
                "E1 still holds an emulator_epoch_secret"),
        Witness("INV-DELETION", deletion_operation_kept,
                "E1 keeps operation secrets"),
        Witness("INV-DELETION", deletion_base_kept,
                "E1 keeps epoch_base_secret of unreferenced epochs [1]"),
    )
}


def test_the_baseline_holds_every_invariant() -> None:
    assert violations(baseline()) == []


def test_every_invariant_has_a_witness() -> None:
    assert {w.invariant for w in WITNESS_TABLE.values()} == set(INVARIANTS)


@pytest.mark.parametrize("name", sorted(WITNESS_TABLE))
def test_witness_violates_exactly_its_invariant(name: str) -> None:
    witness = WITNESS_TABLE[name]
    found = violations(witness.world())
    assert [inv for inv, _ in found] == [witness.invariant]
    assert witness.detail in found[0][1]


@pytest.mark.parametrize("name", sorted(WITNESS_TABLE))
def test_witness_is_reported_with_the_draft_sentence(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = WITNESS_TABLE[name]
    world = witness.world()
    [(inv, detail)] = violations(world)
    invariant = INVARIANTS[inv]
    res = Result("ci", world.config, tuple(INVARIANTS), 1, len(world.trace), 0, {},
                 Violation(inv, detail, list(world.trace), [(inv, detail)], [], [], world))
    cli._print(res, None)
    out = capsys.readouterr().out
    assert f"VIOLATION: {witness.invariant} fails" in out
    assert f'"{invariant.sentence}"' in out
    assert f"{invariant.id}: {invariant.title} ({invariant.section})" in out
    assert f"Counterexample: {detail}" in out


def test_the_model_doc_names_a_witness_for_every_invariant() -> None:
    """docs/MODEL.md's table "invariant -> finding or witness test" is complete."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "MODEL.md").read_text()
    section = doc.split("## Every invariant can fail", 1)[1].split("\n## ", 1)[0]
    for inv in INVARIANTS:
        rows = [line for line in section.splitlines() if line.startswith(f"| {inv} |")]
        assert rows, f"{inv} has no row in docs/MODEL.md"
        for w in WITNESS_TABLE.values():
            if w.invariant == inv:
                assert w.name in rows[0], (inv, w.name)
