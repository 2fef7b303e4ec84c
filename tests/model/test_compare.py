"""The two texts compared: the latest profile's rules, the re-reading of each finding's
switch, the new finding F13, `mlsvc model compare` and the generated table of
docs/FINDINGS.md.

The comparison runs once per session (profile ci); its searches are the ones
test_findings.py and test_explore.py run too (`explore` shares results per process).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mlsvc_model.cli import main, render_markdown
from mlsvc_model.common import slot_of_code
from mlsvc_model.compare import Comparison, compare
from mlsvc_model.config import (
    ADOPTED,
    ALL_FINDINGS,
    FINDINGS,
    LATER_READINGS,
    LATEST_ONLY,
    LATEST_RULES,
    NEW_FINDINGS,
    SUPERSEDED,
    Config,
)
from mlsvc_model.invariants import INVARIANTS, violations
from mlsvc_model.state import PprfEval, Step
from mlsvc_model.tokens import Tok
from mlsvc_model.transitions import apply, initial_world, replay

from .test_findings import ORDER, WITNESSES

LATEST = Config(profile="latest")
DOC = Path(__file__).resolve().parents[2] / "docs" / "FINDINGS.md"
BEGIN, END = "<!-- compare:begin -->\n", "<!-- compare:end -->\n"


def _steps(*calls: tuple[str, dict[str, object]]) -> list[Step]:
    return [Step(name, tuple(args.items())) for name, args in calls]


def _ancestors(tok: Tok) -> set[str]:
    out = {tok.label + ":" + ",".join(map(str, tok.info))}
    for p in tok.parents:
        out |= _ancestors(p)
    return out


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return compare("ci")


# --- the configuration ------------------------------------------------------------------


def test_profile_is_checked_and_draft00_is_the_default() -> None:
    assert Config().profile == "draft-00" and not Config().latest
    assert Config().effective() is Config().effective() or Config().effective() == Config()
    with pytest.raises(ValueError):
        Config(profile="draft-01")


def test_effective_supersedes_gone_readings_and_adopts_the_later_texts_own() -> None:
    every = Config(profile="latest", **{name: True for name in SUPERSEDED if name != "pprf_bits"},
                   pprf_bits=3, literal_p11_ds_scope=True, derive_from_stale_epoch=True)
    eff = every.effective()
    base = Config()
    for name in SUPERSEDED:
        assert getattr(eff, name) == getattr(base, name), name
    assert eff.literal_p11_ds_scope and eff.random_external_init  # ADOPTED: F3, F10
    assert set(ADOPTED) == {"literal_p11_ds_scope", "random_external_init"}
    assert eff.derive_from_stale_epoch  # F12's reading is kept: its switch stays
    assert eff.latest_operation_ratchets and eff.latest_generation_id_context
    # draft-00 ignores the switches of readings only the later text has
    assert Config(stale_external_join=True).effective() == Config()
    assert set(LATEST_ONLY) == {"stale_external_join"}
    # every finding's switch is classified once, by a section of the later text
    assert set(LATER_READINGS) == set(ALL_FINDINGS) == set(FINDINGS) | set(NEW_FINDINGS)
    kinds = {fid: r.kind for fid, r in LATER_READINGS.items()}
    assert kinds == {"F1": "gone", "F2": "gone", "F3": "adopted", "F4": "gone", "F5": "gone",
                     "F6": "gone", "F7": "gone", "F8": "gone", "F9": "kept",
                     "F10": "adopted", "F11": "gone", "F12": "kept", "F13": "new"}
    for r in LATER_READINGS.values():
        assert r.section.startswith("§") and r.sentence
        assert set(r.rules) <= set(LATEST_RULES)


def test_every_rule_names_its_section_in_both_texts() -> None:
    assert len(LATEST_RULES) >= 13
    for r in LATEST_RULES.values():
        assert "§" in r.draft00 and r.latest.startswith("§") and r.sentence and r.model


# --- the later text's rules, one by one ---------------------------------------------------


def test_l1_l3_key_packages_come_in_one_batch_generation() -> None:
    w = initial_world(LATEST)
    apply(w, "create_key_packages", emulator="E0", count=2, salt=0)
    apply(w, "create_key_packages", emulator="E0", count=1, salt=0)
    a, b, c = (w.ops[w.kp_ops[r]] for r in ("KP1", "KP2", "KP3"))
    assert (a.slot, b.slot) == ((0, 1, 0, 0), (0, 1, 0, 1))  # one generation, indexes 0, 1
    assert c.slot == (0, 1, 0, 0) and c.epoch == a.epoch + 1  # a new epoch, generation 0
    assert a.secret.label == b.secret.label == "ExpandWithLabel"
    assert a.secret.info[0] == "key package seed" and a.secret.parents == b.secret.parents
    assert violations(w) == []
    # L2's bookkeeping: one consumed generation per upload
    assert [(e.epoch, slot_of_code(e.leaf)) for e in w.pprf_evals] == [
        (0, (0, "key_package", 0)), (1, (0, "key_package", 0))]


def test_l1_leaf_node_operations_bind_the_group() -> None:
    w = initial_world(LATEST)
    apply(w, "create_group")
    apply(w, "external_join", emulator="E0", group="G1", salt=0)
    apply(w, "vc_commit", emulator="E0", group="G1", kind="commit", salt=0)
    ops = [o for o in w.ops.values() if o.kind == "leaf_node"]
    assert [o.slot for o in ops] == [(0, 2, 0), (0, 2, 1)]
    assert all("G1" in o.secret.info for o in ops)


def test_l9_l10_external_join_without_an_action_and_the_init_secret_in_the_leaf() -> None:
    w = initial_world(LATEST)
    apply(w, "create_group")
    apply(w, "external_join", emulator="E0", group="G1", salt=0)
    assert w.emu_log == [] and w.public_actions == []  # L9: no emulation Commit
    apply(w, "catch_up", emulator="E1")  # E1 follows G1 from the DerivationInfo (L10)
    assert w.emulators["E1"].groups["G1"].epoch == 1 and violations(w) == []
    old = initial_world(Config())
    apply(old, "create_group")
    apply(old, "external_join", emulator="E0", group="G1", salt=0)
    assert [e.action for e in old.emu_log] == ["external_join"]
    # draft-00 with a random ExternalInit (F10) cannot follow; latest (random too) can
    f10, _ = replay(Config(random_external_init=True), _steps(*WITNESSES["F10"]))
    assert "INV-REDERIVE" in dict(violations(f10))


def test_l5_reuse_guard_keyed_by_the_epochs_reuse_guard_secret() -> None:
    for cfg, expect in ((LATEST, "Reuse Guard"), (Config(), "Encryption Key")):
        w = initial_world(cfg)
        apply(w, "create_group")
        apply(w, "external_join", emulator="E0", group="G1", salt=0)
        apply(w, "catch_up", emulator="E1")
        apply(w, "send_private_message", emulator="E0", group="G1", r=1)
        apply(w, "catch_up", emulator="E1")
        (m,) = w.messages
        assert any(expect in a for a in _ancestors(m.prp_key)), cfg.profile
        assert [a.leaf for a in w.attributions] == [0] and violations(w) == []
    held = initial_world(LATEST).emulators["E0"].held
    assert any(t.label == "DeriveSecret" and t.info == ("Reuse Guard",) for t in held)


def test_l2_a_reused_generation_is_reported_in_the_later_texts_terms() -> None:
    w = initial_world(LATEST)
    apply(w, "create_key_packages", emulator="E0", count=1, salt=0)
    ev = w.pprf_evals[0]
    w.pprf_evals.append(PprfEval(ev.emulator, ev.epoch, ev.leaf, True))
    assert dict(violations(w, ("INV-PPRF-PUNCTURE",))) == {
        "INV-PPRF-PUNCTURE": "E0 used generation 0 of the key_package ratchet of leaf 0 of "
        "epoch 0 a second time"}


@pytest.mark.parametrize("fid", ORDER)
def test_each_witness_under_the_later_text(fid: str) -> None:
    """test_findings.py's witness of each finding, replayed with its switch under the
    latest profile: it fails exactly where the later text keeps the reading (F9, F12)."""
    finding = FINDINGS[fid]
    world, _ = replay(replace(finding.config, profile="latest"), _steps(*WITNESSES[fid]))
    failed = dict(violations(world))
    if fid in ("F9", "F12"):
        assert finding.invariant in failed
    else:
        assert failed == {}, failed


# --- F13 ----------------------------------------------------------------------------------

F13_WITNESS = _steps(
    ("create_group", {}),
    ("emulation_commit", {"emulator": "E0"}),  # E0 moves to epoch 1 and deletes epoch 0
    ("external_join", {"emulator": "E1", "group": "G1", "salt": 0}),  # E1 still at epoch 0
    ("deliver", {"emulator": "E0", "log": "G1"}),
)


def test_f13_witness_fails_only_under_the_later_text() -> None:
    f = NEW_FINDINGS["F13"]
    assert f.config.latest and f.invariant == "INV-REDERIVE"
    world, refused = replay(f.config, F13_WITNESS)
    assert refused == []
    assert dict(violations(world)) == {
        "INV-REDERIVE": "E0 cannot follow G1: cannot re-derive operation 4 (external_join)"}
    # the same trace under the latest baseline (M4) and under draft-00 with the switch
    # (the ExternalJoin action's Commit would be stale): step 3 refused, nothing fails
    for cfg in (LATEST, replace(f.config, profile="draft-00")):
        world, refused = replay(cfg, F13_WITNESS)
        assert [i for i, _ in refused] == [3, 4] and violations(world) == []
        assert "has not processed every emulation-group message" in refused[0][1]


def test_cli_reproduces_f13_under_its_own_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--finding", "F13", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["switches"] == {"stale_external_join": True, "profile": "latest"}
    assert out["violation"]["invariant"] == "INV-REDERIVE"
    assert out["violation"]["baseline_violations"] == []
    assert any("external_join" in s for s in out["violation"]["trace"])


def test_cli_explores_the_latest_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--spec", "latest"]) == 0
    out = capsys.readouterr().out
    assert "draft-ietf-mls-virtual-clients-latest" in out
    assert "Result: every invariant held." in out


# --- the comparison -------------------------------------------------------------------------


def test_the_comparison_verdicts(comparison: Comparison) -> None:
    rows = {r.id: r for r in comparison.findings}
    assert list(rows) == [*FINDINGS, *NEW_FINDINGS]
    latest = {fid: r.verdicts["latest"].verdict for fid, r in rows.items()}
    draft = {fid: r.verdicts["draft-00"].verdict for fid, r in rows.items()}
    assert all(draft[f] == "found" for f in FINDINGS)
    assert draft["F13"] == "not applicable"
    assert latest == {**{f: "fixed" for f in FINDINGS}, "F9": "found", "F12": "found",
                      "F13": "new"}
    for fid, r in rows.items():
        for spec in ("draft-00", "latest"):
            v = r.verdicts[spec]
            assert v.reason
            if v.verdict in ("found", "new"):  # a trace that fails the finding's invariant
                assert v.trace and v.detail
                cfg = ALL_FINDINGS[fid].config
                steps = [_step(s) for s in v.trace]
                world, _ = replay(replace(cfg, profile=spec), steps)
                assert r.invariant in dict(violations(world)), (fid, spec)
            else:
                assert not v.trace


def _step(text: str) -> Step:
    """A printed step back into a Step (name(args) -> result)."""
    call = text.split(" -> ")[0]
    name, args = call.split("(", 1)
    env: dict[str, object] = eval(f"dict({args[:-1]})")  # the trace's own repr
    return Step(name, tuple(env.items()))


def test_every_invariant_holds_in_both_baselines(comparison: Comparison) -> None:
    assert [i.id for i in comparison.invariants] == list(INVARIANTS)
    for i in comparison.invariants:
        assert i.status == {"draft-00": "holds", "latest": "holds"}, i
    assert comparison.baselines["latest"].observed["generation_ids_linking_scopes"] == 0
    assert comparison.baselines["latest"].observed["messages"] > 20


def test_compare_json_lists_every_finding_under_both_profiles(
    comparison: Comparison, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--json"]) == 0  # the shared searches: no new exploration
    out = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in out["findings"]] == list(ALL_FINDINGS)
    for f in out["findings"]:
        assert set(f["verdicts"]) == {"draft-00", "latest"}
        assert f["later_text"] == LATER_READINGS[f["id"]].kind and f["sentence"]
    assert [i["id"] for i in out["invariants"]] == list(INVARIANTS)
    assert [r["id"] for r in out["rules"]] == list(LATEST_RULES)
    f13 = out["findings"][-1]
    assert f13["verdicts"]["latest"]["verdict"] == "new" and f13["verdicts"]["latest"]["trace"]


def test_compare_text(comparison: Comparison, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "F13" in out and "new" in out and "Counterexample: E" in out
    for inv in INVARIANTS:
        assert inv in out


def test_the_doc_carries_the_generated_table(comparison: Comparison) -> None:
    doc = DOC.read_text()
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1
    table = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    assert table == render_markdown(comparison), (
        "docs/FINDINGS.md is stale: paste `python -m mlsvc_model.cli compare --markdown`"
    )
    for fid in NEW_FINDINGS:  # a section of its own, with its trace
        assert f"## {fid}:" in doc
