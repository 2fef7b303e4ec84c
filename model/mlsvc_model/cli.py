"""`mlsvc model explore`: run the model's exploration and print what it checked and found.

    explore [--profile ci|dev|long] [--finding F1..F11] [--seed N] [--json]

Without --finding every switch is off and every invariant must hold (exit 0). With
--finding the finding's switch is on and only its invariant is checked; a violation of
that invariant is the expected outcome ("finding reproduced", exit 0), anything else
exits 1. The only module of the model that prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from .config import FINDINGS, Config
from .explore import PROFILES, Result, birthday, explore, reproduce
from .invariants import INVARIANTS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlsvc model", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explore", help="explore the model with Hypothesis")
    e.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    e.add_argument("--finding", choices=list(FINDINGS), default=None)
    e.add_argument("--seed", type=int, default=None)
    e.add_argument("--json", action="store_true")
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
    print("Executable model of draft-ietf-mls-virtual-clients-00")
    print(
        f"Profile {res.profile}: up to {p.steps} steps per run; switches: {_switches(res.config)}"
    )
    if finding is not None:
        f = FINDINGS[finding]
        print(f"Finding {f.id}: {f.title}")
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
        print(f"  With every switch off, the same trace: {refused or 'all steps apply'}; {holds}.")
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


def main(argv: list[str]) -> int:
    """Entry point for `mlsvc model ...`; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.finding is not None:
        res = reproduce(args.finding, args.profile, args.seed)
        ok = (
            res.violation is not None
            and res.violation.invariant == FINDINGS[args.finding].invariant
        )
    else:
        res = explore(Config(), args.profile, seed_value=args.seed)
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
