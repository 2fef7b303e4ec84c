"""`mlsvc model explore|compare`: run the model and print what it checked and found.

    explore [--profile ci|dev|long] [--finding F1..F13] [--spec draft-00|latest]
            [--seed N] [--json]
    compare [--profile ci|dev|long] [--json | --markdown]

explore: without --finding every switch is off and every invariant must hold (exit 0).
With --finding the finding's switch is on and only its invariant is checked; a
violation of that invariant is the expected outcome ("finding reproduced", exit 0),
anything else exits 1. --spec selects the text the model follows (Config.profile;
default draft-00, or the finding's own: latest for F13).

compare: every finding under draft-00 and under latest (found, fixed, new, not
applicable) and every invariant under each text's baseline (compare.py); exit 0 when
every invariant holds in both baselines, every draft-00 finding is found under draft-00
and every new finding is new under latest.
--markdown prints the tables of docs/FINDINGS.md ("The two texts compared").
The only module of the model that prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from .compare import SPECS, Comparison, compare
from .config import ALL_FINDINGS, LATER_READINGS, LATEST_RULES, NEW_FINDINGS, Config
from .explore import PROFILES, Result, birthday, explore, reproduce
from .invariants import INVARIANTS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlsvc model", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explore", help="explore the model with Hypothesis")
    e.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    e.add_argument("--finding", choices=list(ALL_FINDINGS), default=None)
    e.add_argument("--spec", choices=SPECS, default=None,
                   help="the text the model follows (default: draft-00, or the finding's)")
    e.add_argument("--seed", type=int, default=None)
    e.add_argument("--json", action="store_true")
    c = sub.add_parser("compare", help="every finding and invariant under draft-00 and latest")
    c.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    out = c.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--markdown", action="store_true",
                     help="the generated tables of docs/FINDINGS.md")
    return p


def _switches(cfg: Config) -> str:
    on = cfg.switches_on()
    return ", ".join(f"{k}={v}" for k, v in on.items()) if on else "none (the baseline)"


def _birthday_rows(bits: int) -> list[dict[str, Any]]:
    rows = (
        birthday(bits, (2, 3, 4, 6))
        + birthday(12, (32, 64, 128))
        + birthday(32, (9292, 65536, 77163))
    )
    return [vars(r) for r in rows]


def _as_json(res: Result, finding: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "profile": res.profile,
        "finding": finding,
        "switches": {k: v for k, v in res.config.switches_on().items()},
        "invariants_checked": list(res.checked),
        "runs": res.runs,
        "transitions_applied": res.steps,
        "transitions_refused": res.refused,
        "observations": res.observed,
        "violation": None,
    }
    v = res.violation
    if v is not None:
        out["violation"] = {
            "invariant": v.invariant,
            "detail": v.detail,
            "trace": [str(s) for s in v.trace],
            "also_violated": [i for i, _ in v.also if i != v.invariant],
            "baseline_refused": [f"step {i}: {why}" for i, why in v.baseline_refused],
            "baseline_violations": [i for i, _ in v.baseline_violations],
        }
    if finding == "F4" or finding == "F5":
        out["birthday"] = _birthday_rows(res.config.pprf_bits)
    return out


def _print(res: Result, finding: str | None) -> None:
    p = PROFILES[res.profile]
    if res.config.latest:
        print("Executable model of draft-ietf-mls-virtual-clients-latest "
              f"(rules {', '.join(LATEST_RULES)} of the later text)")
    else:
        print("Executable model of draft-ietf-mls-virtual-clients-00")
    print(
        f"Profile {res.profile}: up to {p.steps} steps per run; switches: {_switches(res.config)}"
    )
    if finding is not None:
        f = ALL_FINDINGS[finding]
        print(f"Finding {f.id}: {f.title}")
        if finding in NEW_FINDINGS:
            print(f"  Later text: {f.source}")
            print(f"  Against draft-00: {f.later}")
        else:
            print(f"  Draft-00: {f.source}")
            print(f"  Later draft: {f.later}")
    print(f"Invariants checked ({len(res.checked)}):")
    for i in (INVARIANTS[x] for x in res.checked):
        print(f"  {i.id:<27} {i.section:<32} {i.title}")
    print(
        f"Runs {res.runs}, transitions applied {res.steps}, refused by preconditions {res.refused}"
    )
    print("Observations: " + ", ".join(f"{k}={v}" for k, v in sorted(res.observed.items())))
    v = res.violation
    if v is None:
        print("Result: every invariant held." if finding is None else "Result: not reproduced.")
        return
    inv = INVARIANTS[v.invariant]
    head = "Finding reproduced" if finding is not None else "VIOLATION"
    print(f"{head}: {v.invariant} fails after {len(v.trace)} steps (minimal trace):")
    for n, s in enumerate(v.trace, 1):
        print(f"  {n:>2}. {s}")
    print(f"  {v.invariant}: {inv.title} ({inv.section})")
    print(f'    "{inv.sentence}"')
    print(f"  Counterexample: {v.detail}")
    also = [i for i, _ in v.also if i != v.invariant]
    if also:
        print(f"  Also violated at the end of this trace: {', '.join(also)}")
    if finding is not None:
        refused = "; ".join(f"step {i} refused ({why})" for i, why in v.baseline_refused)
        holds = (
            "every invariant holds"
            if not v.baseline_violations
            else "still violated: " + ", ".join(i for i, _ in v.baseline_violations)
        )
        off = "every switch off" + (" (latest profile)" if res.config.latest else "")
        print(f"  With {off}, the same trace: {refused or 'all steps apply'}; {holds}.")
    if finding in ("F4", "F5"):
        w = v.world
        again = Counter(x.epoch for x in w.pprf_evals if x.was_punctured)
        q7 = Counter(c[1] for c in w.collisions)
        per_epoch = "; ".join(
            f"epoch {e}: k={k}, resampled={w.resamples.get(e, 0)}, "
            f"punctured leaf re-evaluated={again[e]}, Q7 collisions={q7[e]}, "
            f"expected pairs={k * (k - 1) / 2 ** (res.config.pprf_bits + 1):.3f}"
            for e, k in sorted(w.derivations.items())
        )
        print(f"  PPRF per epoch in this trace ({res.config.pprf_bits} bits): {per_epoch}")
        print("  Birthday bound: expected colliding pairs among k derivations = k(k-1)/2^(bits+1)")
        print("     bits        k    expected   simulated")
        for row in _birthday_rows(res.config.pprf_bits):
            sim = "-" if row["observed"] is None else f"{row['observed']:.3f}"
            print(f"    {row['bits']:>5} {row['k']:>8} {row['expected']:>11.3f} {sim:>11}")
        print("  At 32 bits one colliding pair is expected after about 92,682 derivations in one")
        print("  epoch (k(k-1)/2^33 = 1), and P3 resampling hides sequential collisions only.")


def _cell(v: Any, steps: bool = True) -> str:
    """A verdict as a table cell: found (n steps), fixed, new (n steps), not applicable."""
    return f"{v.verdict} ({len(v.trace)} steps)" if v.trace and steps else v.verdict


def _later(row: Any) -> str:
    r = LATER_READINGS[row.id]
    rules = f" ({', '.join(r.rules)})" if r.rules else ""
    return f"{r.kind}: §{r.section.lstrip('§')}{rules}"


def render_markdown(c: Comparison) -> str:
    """The generated part of docs/FINDINGS.md ("The two texts compared")."""
    lines = [
        f"Generated by `python -m mlsvc_model.cli compare --markdown` (profile {c.profile}). "
        "Only verdicts: the searches are derandomized, but Hypothesis also draws constants "
        "from the modules loaded, so run counts and trace lengths depend on the entry "
        "point (`mlsvc model compare` prints them).",
        "",
        "| ID | what | invariant | draft-00 | latest | later text at that place |",
        "|---|---|---|---|---|---|",
    ]
    for row in c.findings:
        d, la = row.verdicts["draft-00"], row.verdicts["latest"]
        lines.append(
            f"| {row.id} | {row.title} | {row.invariant} | {_cell(d, False)} | "
            f"{_cell(la, False)} | "
            f"{_later(row)} |"
        )
    lines += [
        "",
        "| invariant | draft-00 baseline | latest baseline |",
        "|---|---|---|",
    ]
    for i in c.invariants:
        lines.append(f"| {i.id} | {i.status['draft-00']} | {i.status['latest']} |")
    lines += [
        "",
        "| rule | the later text's rule | draft-00 | latest | in the model |",
        "|---|---|---|---|---|",
    ]
    for r in LATEST_RULES.values():
        lines.append(f"| {r.id} | {r.title} | {r.draft00} | {r.latest} | {r.model} |")
    return "\n".join(lines) + "\n"


def _compare_json(c: Comparison) -> dict[str, Any]:
    def verdict(v: Any) -> dict[str, Any]:
        return {"verdict": v.verdict, "reason": v.reason, "runs": v.runs,
                "trace": list(v.trace), "counterexample": v.detail}

    return {
        "profile": c.profile,
        "baselines": {s: {"runs": r.runs, "transitions_applied": r.steps,
                          "observations": r.observed} for s, r in c.baselines.items()},
        "findings": [
            {"id": row.id, "title": row.title, "invariant": row.invariant,
             "switches": row.switches, "later_text": row.reading, "section": row.section,
             "sentence": LATER_READINGS[row.id].sentence,
             "verdicts": {s: verdict(v) for s, v in row.verdicts.items()}}
            for row in c.findings
        ],
        "invariants": [
            {"id": i.id, "title": i.title, "status": i.status, "counterexample": i.detail}
            for i in c.invariants
        ],
        "rules": [vars(r) for r in LATEST_RULES.values()],
    }


def _print_compare(c: Comparison) -> None:
    base = c.baselines
    print("The executable model under draft-ietf-mls-virtual-clients-00 and -latest")
    print(f"Profile {c.profile}; baselines (every switch off): draft-00 "
          f"{base['draft-00'].runs} runs, latest {base['latest'].runs} runs")
    print("Findings (verdict under draft-00 / under latest):")
    for row in c.findings:
        d, la = row.verdicts["draft-00"], row.verdicts["latest"]
        print(f"  {row.id:<4} {row.invariant:<26} {_cell(d):<18} {_cell(la):<18} "
              f"{_later(row)}")
        print(f"       {row.title}")
        print(f"       latest: {la.reason}")
        if la.verdict in ("found", "new"):
            for n, step in enumerate(la.trace, 1):
                print(f"         {n:>2}. {step}")
            print(f"       Counterexample: {la.detail}")
    print("Invariants (baseline exploration under draft-00 / under latest):")
    for i in c.invariants:
        print(f"  {i.id:<27} {i.status['draft-00']:<9} {i.status['latest']:<9} {i.title}")
        for spec in SPECS:
            if i.detail[spec]:
                print(f"    {spec}: {i.detail[spec]}")
    print("Rules of the later text the latest profile applies:")
    for r in LATEST_RULES.values():
        print(f"  {r.id:<4} {r.title} (draft-00 {r.draft00}; latest {r.latest})")


def compare_ok(c: Comparison) -> bool:
    """Every baseline invariant holds under both texts and every finding is found under
    draft-00 (new findings: reproduced under latest)."""
    holds = all(s == "holds" for i in c.invariants for s in i.status.values())
    found = all(
        r.verdicts["latest"].verdict == "new" if r.reading == "new"
        else r.verdicts["draft-00"].verdict == "found"
        for r in c.findings
    )
    return holds and found


def main(argv: list[str]) -> int:
    """Entry point for `mlsvc model ...`; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "compare":
        c = compare(args.profile)
        if args.json:
            print(json.dumps(_compare_json(c), indent=2, default=str))
        elif args.markdown:
            print(render_markdown(c), end="")
        else:
            _print_compare(c)
        return 0 if compare_ok(c) else 1
    if args.finding is not None:
        res = reproduce(args.finding, args.profile, args.seed, args.spec)
        ok = (
            res.violation is not None
            and res.violation.invariant == ALL_FINDINGS[args.finding].invariant
        )
    else:
        spec = args.spec or "draft-00"
        res = explore(Config(profile=spec), args.profile, seed_value=args.seed)
        ok = res.violation is None
    if args.json:
        out = _as_json(res, args.finding)
        out["expectation_met"] = ok
        print(json.dumps(out, indent=2, default=str))
    else:
        _print(res, args.finding)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
