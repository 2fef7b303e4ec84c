"""`mlsvc proofs [--json] [--only TEXT] [--timeout S]`: run every Z3 obligation, each in
its own solver, and print its verdict, the verdict expected, and the solver time.

Exit status 0 when every obligation verdicts as expected (holds: unsat with satisfiable
premises; twins: sat), 1 otherwise (a wrong verdict, `unknown`, a timeout, or vacuous
premises). The lead wires `mlsvc proofs` to `main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mlsvc_proofs.obligation import DEFAULT_TIMEOUT_MS, Obligation, Result, run
from mlsvc_proofs.registry import OBLIGATIONS

_MEANING = {"unsat": "holds", "sat": "violated", "unknown": "unknown", "vacuous": "vacuous"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlsvc proofs", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--only", default="", help="run the obligations whose name contains TEXT")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_MS / 1000,
                   help="per-obligation solver timeout in seconds (timeout = failure)")
    return p


def _as_json(ob: Obligation, r: Result) -> dict[str, object]:
    return {
        "name": ob.name, "kind": ob.kind, "twin_of": ob.twin_of, "section": ob.section,
        "sentence": ob.sentence, "encoding": ob.encoding, "expect": r.expect,
        "verdict": r.verdict, "ok": r.ok, "seconds": round(r.seconds, 4),
        "reason": r.reason, "witness": dict(r.witness),
    }


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    selected = [ob for ob in OBLIGATIONS if args.only in ob.name]
    timeout_ms = max(1, int(args.timeout * 1000))
    results: list[tuple[Obligation, Result]] = []
    width = max((len(ob.name) for ob in selected), default=10)
    if not args.json:
        print(f"{'obligation':<{width}}  {'kind':<5}  {'expected':<16}  {'verdict':<16}  "
              f"{'time':>8}")
    for ob in selected:
        r = run(ob, timeout_ms)
        results.append((ob, r))
        if not args.json:
            exp = f"{r.expect} ({_MEANING[r.expect]})"
            got = f"{r.verdict} ({_MEANING[r.verdict]})"
            mark = "ok" if r.ok else "FAIL"
            extra = f"  {r.reason}" if r.reason else ""
            print(f"{ob.name:<{width}}  {ob.kind:<5}  {exp:<16}  {got:<16}  "
                  f"{r.seconds:7.3f}s  {mark}{extra}", flush=True)
    total = sum(r.seconds for _, r in results)
    failed = [ob.name for ob, r in results if not r.ok]
    if args.json:
        doc = {"obligations": [_as_json(ob, r) for ob, r in results],
               "total_seconds": round(total, 4), "failed": failed, "ok": not failed}
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print(f"{len(results)} obligations ({sum(ob.kind == 'holds' for ob in selected)} "
              f"holds, {sum(ob.kind == 'twin' for ob in selected)} twins), "
              f"{len(results) - len(failed)} as expected, {len(failed)} not; "
              f"total solver time {total:.3f}s")
        for name in failed:
            print(f"FAILED: {name}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
