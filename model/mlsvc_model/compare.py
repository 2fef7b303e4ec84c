"""The two texts compared: every finding and every invariant under draft-00 and latest.

Theory of operation. `Config.profile` selects the text the model follows: "draft-00"
(the profile P1-P23 with M1-M4) or "latest" (the rules of
draft-ietf-mls-virtual-clients-latest the model expresses, `config.LATEST_RULES`).
`compare` runs, under one exploration budget:

- each profile's baseline (every switch off, every invariant checked): an invariant
  "holds" or is "violated" (with the trace);
- each finding under each profile. Under draft-00 the finding's search (`search`, as
  `mlsvc model explore --finding`) decides: "found" if its invariant fails. Under latest
  the finding's switch is first re-read against the later text
  (`config.LATER_READINGS`): if the literal reading is still there (`kept`) the switch
  stays on and the search decides ("found" or "fixed"); if it is gone, the later text's
  rule replaces it (`Config.effective` supersedes the switch), so the finding's
  configuration is the latest baseline itself and the verdict is that baseline's for the
  finding's invariant: "fixed" if it holds, "found" if it fails there;
- each new finding (`config.NEW_FINDINGS`: something the later text breaks that draft-00
  does not): "new" under latest if its search reproduces it there; under draft-00 "not
  applicable" when its switch does nothing there (draft-00 has its own rule at that
  place, `config.LATEST_ONLY`; the draft-00 baseline then decides that it holds), else
  the search's verdict.

Everything is derandomized (`explore`), so the table is reproducible; nothing here
prints (cli.py does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import FINDINGS, LATER_READINGS, NEW_FINDINGS, Config, Finding
from .explore import PROFILES, Result, explore, search
from .invariants import INVARIANTS

SPECS = ("draft-00", "latest")


@dataclass(frozen=True)
class Verdict:
    """One finding under one text."""

    verdict: str  # "found", "fixed", "new" or "not applicable"
    reason: str
    runs: int  # runs of the search that decided it (0: decided without one)
    trace: tuple[str, ...] = ()  # the minimal trace when the invariant fails
    detail: str | None = None  # the counterexample


@dataclass(frozen=True)
class FindingRow:
    id: str
    title: str
    invariant: str
    switches: dict[str, object]
    reading: str  # "gone", "adopted", "kept" (config.LaterReading) or "new"
    section: str  # where the later text decides
    verdicts: dict[str, Verdict]  # spec -> verdict


@dataclass(frozen=True)
class InvariantRow:
    id: str
    title: str
    status: dict[str, str]  # spec -> "holds", "violated" or "unknown" (the run stopped)
    detail: dict[str, str | None]  # spec -> the counterexample if violated


@dataclass(frozen=True)
class Comparison:
    profile: str
    baselines: dict[str, Result]  # spec -> the baseline exploration
    findings: list[FindingRow]
    invariants: list[InvariantRow]


def _from_search(res: Result, invariant: str, fixed_reason: str) -> Verdict:
    v = res.violation
    if v is not None and v.invariant == invariant:
        return Verdict(
            "found",
            f"{invariant} fails after {len(v.trace)} steps",
            res.runs,
            tuple(str(s) for s in v.trace),
            v.detail,
        )
    return Verdict("fixed", f"{fixed_reason}; not reproduced in {res.runs} runs", res.runs)


def _latest_verdict(f: Finding, base: Result, profile: str) -> tuple[str, Verdict]:
    reading = LATER_READINGS[f.id]
    cfg = replace(f.config, profile="latest")
    rules = ", ".join(reading.rules)
    if cfg.effective() != Config(profile="latest").effective():
        why = f"the reading is still in latest {reading.section}"
        return reading.kind, _from_search(search(cfg, f.invariant, profile), f.invariant, why)
    why = {
        "gone": f"the reading is gone: latest {reading.section} ({rules}) replaces it",
        "adopted": f"latest {reading.section} reads it so, with {rules}",
    }[reading.kind]
    v = base.violation
    if v is not None and v.invariant == f.invariant:
        trace = tuple(str(s) for s in v.trace)
        return reading.kind, Verdict("found", why + f"; {f.invariant} fails", base.runs,
                                     trace, v.detail)
    if v is not None:  # the baseline stopped early on another invariant: search this one
        res = search(cfg, f.invariant, profile)
        return reading.kind, _from_search(res, f.invariant, why)
    return reading.kind, Verdict(
        "fixed", f"{why}; the latest baseline holds {f.invariant} in {base.runs} runs",
        base.runs,
    )


def _new_verdicts(f: Finding, base: Result, profile: str) -> dict[str, Verdict]:
    latest = _from_search(search(f.config, f.invariant, profile), f.invariant, "")
    if latest.verdict == "found":
        latest = replace(latest, verdict="new", reason="new: " + latest.reason)
    else:
        latest = replace(latest, reason="not reproduced under latest: " + latest.reason)
    old = replace(f.config, profile="draft-00")
    if old.effective() == Config().effective():
        v = base.violation
        holds = v is None or v.invariant != f.invariant
        draft = Verdict(
            "not applicable" if holds else "found",
            "draft-00 has its own rule where the switch reads the later text (so the "
            f"switch does nothing there); the draft-00 baseline "
            f"{'holds' if holds else 'breaks'} {f.invariant} in {base.runs} runs",
            base.runs,
        )
    else:
        draft = _from_search(search(old, f.invariant, profile), f.invariant,
                             "draft-00 does not break it")
    return {"draft-00": draft, "latest": latest}


def compare(profile: str = "ci") -> Comparison:
    """Every finding and every invariant under draft-00 and latest (see the module doc)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile}")
    baselines = {spec: explore(Config(profile=spec), profile) for spec in SPECS}
    rows = []
    for f in FINDINGS.values():
        old = _from_search(search(f.config, f.invariant, profile), f.invariant,
                           "the model's draft-00 reading does not break it")
        reading, new = _latest_verdict(f, baselines["latest"], profile)
        rows.append(FindingRow(f.id, f.title, f.invariant, f.config.switches_on(), reading,
                               LATER_READINGS[f.id].section, {"draft-00": old, "latest": new}))
    for f in NEW_FINDINGS.values():
        switches = {k: v for k, v in f.config.switches_on().items() if k != "profile"}
        rows.append(FindingRow(f.id, f.title, f.invariant, switches, "new",
                               LATER_READINGS[f.id].section,
                               _new_verdicts(f, baselines["draft-00"], profile)))
    invariants = []
    for i in INVARIANTS.values():
        status: dict[str, str] = {}
        detail: dict[str, str | None] = {}
        for spec, res in baselines.items():
            v = res.violation
            status[spec] = "holds" if v is None else "violated" if v.invariant == i.id else (
                "unknown")  # the exploration stopped at another invariant's violation
            detail[spec] = v.detail if v is not None and v.invariant == i.id else None
        invariants.append(InvariantRow(i.id, i.title, status, detail))
    return Comparison(profile, baselines, rows, invariants)
