"""`mlsvc model refine`: the model judges the implementation, from the command line.

    mlsvc model refine [--profile ci|dev|long] [--seed N] [--finding F ...] [--json]

Without --finding: the refinement machine (every switch off) runs under the profile and
prints the steps, the transitions applied and refused per kind, and the verdict; exit
0 iff the implementation refines the model (equal abstractions, every invariant held
on both sides). With --finding F1 [F2 ...]: each finding's minimal model trace is
replayed on the implementation with the same literal reading on (the invariant must
break on the implementation's bytes) and off (every invariant holds, the model's
refusals met by the implementation's); exit 0 iff all are reproduced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from mlsvc_model.config import FINDINGS
from mlsvc_model.invariants import INVARIANTS

from .machine import PROFILES, FindingReplay, Report, refine, replay_finding

REPLAYABLE = ("F1", "F2", "F3", "F6", "F7", "F8", "F10", "F11", "F12")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlsvc model refine", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--finding", nargs="+", choices=REPLAYABLE, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true",
                   help="with --finding: the section docs/FINDINGS.md carries")
    return p


def _report_json(r: Report, seconds: float) -> dict[str, Any]:
    return {"profile": r.profile, "seed": r.seed, "runs": r.runs, "steps": r.steps,
            "transitions": dict(sorted(r.transitions.items())),
            "refused_by_model": dict(sorted(r.model_refused.items())),
            "skipped_environment": dict(sorted(r.skipped.items())),
            "invariants": [{"id": i.id, "section": i.section, "sentence": i.sentence,
                            "verdict": "holds" if r.failure is None else
                            "violated" if i.id in r.failure else "not reached"}
                           for i in INVARIANTS.values()],
            "verdict": r.verdict, "failure": r.failure, "trace": r.trace,
            "seconds": round(seconds, 1)}


def _finding_json(f: FindingReplay) -> dict[str, Any]:
    inv = INVARIANTS[f.invariant]
    return {"finding": f.finding, "title": FINDINGS[f.finding].title,
            "invariant": f.invariant, "sentence": inv.sentence, "section": inv.section,
            "model_trace": f.trace, "model_detail": f.model_detail,
            "implementation": {"violated": f.impl_detail is not None,
                               "after_step": f.impl_step, "detail": f.impl_detail,
                               "diverged": f.impl_diverged},
            "reading_off": {"refused": [{"step": i, "reason": why}
                                        for i, why in f.baseline_refused],
                            "problems": f.baseline_problems},
            "reproduced": f.reproduced}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.monotonic()
    if args.finding:
        out = [replay_finding(f, args.profile, args.seed) for f in args.finding]
        if args.json:
            print(json.dumps({"findings": [_finding_json(f) for f in out]}, indent=2))
        elif args.markdown:
            print(markdown(out))
        else:
            for f in out:
                _print_finding(f)
        return 0 if all(f.reproduced for f in out) else 1
    report = refine(args.profile, args.seed)
    if args.json:
        print(json.dumps(_report_json(report, time.monotonic() - start), indent=2))
    else:
        _print_report(report, time.monotonic() - start)
    return 0 if report.failure is None else 1


def markdown(out: list[FindingReplay]) -> str:
    """Each finding's model trace beside what the implementation did with it."""
    lines = ["| finding | invariant | model's minimal trace | implementation, reading on | "
             "reading off |", "|---|---|---|---|---|"]
    for f in out:
        trace = "<br>".join(f"{i}. `{s}`" for i, s in enumerate(f.trace, 1))
        on = (f"violated after step {f.impl_step}: {f.impl_detail}" if f.impl_detail
              else "not violated")
        off = "; ".join(f"step {i} refused ({why})" for i, why in f.baseline_refused)
        off = (off + "; " if off else "") + ("every invariant holds" if not
                                             f.baseline_problems else "PROBLEMS")
        lines.append(f"| {f.finding} | {f.invariant} | {trace} | {on} | {off} |")
    return "\n".join(lines)


def _print_report(r: Report, seconds: float) -> None:
    print(f"refinement, profile {r.profile}"
          f"{'' if r.seed is None else f', seed {r.seed}'}: {r.runs} runs, {r.steps} steps "
          f"in {seconds:.1f} s")
    for name in sorted(set(r.transitions) | set(r.model_refused)):
        print(f"  {name:24} applied {r.transitions[name]:5}   refused by the model "
              f"{r.model_refused[name]:4} (not generated for the implementation: "
              f"{r.skipped[name]})")
    for inv in INVARIANTS.values():
        verdict = ("holds" if r.failure is None else
                   "VIOLATED" if inv.id in r.failure else "not reached")
        print(f"  {inv.id:28} {verdict:12} {inv.section}: \"{inv.sentence}\"")
    if r.failure is None:
        print(f"verdict: the implementation refines the model; all {len(INVARIANTS)} "
              "invariants held on both sides after every step")
        return
    print(f"verdict: FAILS: {r.failure}")
    for i, s in enumerate(r.trace, 1):
        print(f"  {i:3}. {s}")


def _print_finding(f: FindingReplay) -> None:
    inv = INVARIANTS[f.invariant]
    print(f"{f.finding}: {FINDINGS[f.finding].title}")
    print(f"  {f.invariant} ({inv.section}): \"{inv.sentence}\"")
    print("  model's minimal trace:")
    for i, s in enumerate(f.trace, 1):
        print(f"    {i:3}. {s}")
    print(f"  model: {f.model_detail}")
    if f.impl_detail is not None:
        print(f"  implementation (reading on): violated after step {f.impl_step}: "
              f"{f.impl_detail}")
    else:
        print("  implementation (reading on): NOT violated")
    if f.impl_diverged:
        print(f"  (the implementation stopped following the trace at {f.impl_diverged})")
    refused = "; ".join(f"step {i}: {why}" for i, why in f.baseline_refused) or "none"
    print(f"  reading off: refused {refused}; "
          + ("every invariant holds" if not f.baseline_problems
             else "PROBLEMS: " + "; ".join(f.baseline_problems)))
    print(f"  verdict: {'reproduced' if f.reproduced else 'NOT reproduced'}")


if __name__ == "__main__":
    sys.exit(main())
