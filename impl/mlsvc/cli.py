"""The `mlsvc` command line.

    mlsvc vectors [--dir DIR] [--json]    run the official RFC 9420 vectors and the
                                          public vc-01 vectors (vectors/third-party)
    mlsvc vectors generate NAME --out FILE [--profile draft-00|latest]
                                          write this project's vectors (extensions, vc;
                                          --profile: vc only)
    mlsvc vectors check NAME FILE [--json] [--profile draft-00|latest]
                                          check one file of them (exit 0 iff all pass)
    mlsvc proofs [--json]                 check the Z3 obligations (proofs/)
    mlsvc model explore [...]             explore the executable model (model/)
    mlsvc model compare [...]             the findings under draft-00 and under latest
    mlsvc model refine [...]              the model judges the implementation (refine/)
    mlsvc demo [--json]                   the main job: a virtual client's story with
                                          mls-rs and ts-mls peers, then all of the above
                                          summarised
    mlsvc study costs [--users U] [--devices D] [--groups G] [--out DIR]
                                          the cost study of draft-00 §6-§8 (docs/COSTS.md)
    mlsvc report --out DIR [--quick]      one static HTML page of all the evidence
                                          (docs/REPORT.md)

`proofs` and `model` live in their own packages (mlsvc_proofs, mlsvc_model), which never
import impl; this command line is the only place that reaches them, and it does so
lazily so the library itself does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlsvc.conformance.base import FileResult
from mlsvc.conformance.registry import (
    CHECKERS,
    GENERATORS,
    VC_PROFILES,
    FolderReport,
    check_file,
    run_default,
    run_folder,
)


def _section_line(section: str, row: dict[str, int]) -> str:
    """One line of a file checked field by field: its fields by kind, the values
    reproduced only under a documented deviation (D-numbers, docs/INTEROP.md)."""
    kinds = ("output", "input", "name", "metadata")
    parts = [f"{row[k]} {k}" for k in kinds if row.get(k)]
    devs = [f"{k}: {v}" for k, v in sorted(row.items())
            if k not in (*kinds, "failed", "skipped")]
    text = f"    {section}: " + ", ".join(parts)
    if devs:
        text += " (under documented deviations: " + ", ".join(devs) + ")"
    if row["failed"] or row["skipped"]:
        text += f"; {row['failed']} failed, {row['skipped']} skipped"
    return text


def _file_json(r: FileResult) -> dict[str, object]:
    doc: dict[str, object] = {
        "file": r.name,
        "passed": r.passed,
        "failed": r.failed,
        "skipped": r.skipped,
        "by_suite": r.by_suite(),
        "failures": [
            {"case": c.index, "suite": c.suite, "detail": c.detail}
            for c in r.failures()
        ],
    }
    if r.by_section():
        doc["by_section"] = r.by_section()
        doc["deviations"] = r.deviations
    return doc


def _print_vectors(report: FolderReport, as_json: bool) -> None:
    if as_json:
        doc = {
            "ok": report.ok,
            "files": [_file_json(r) for r in report.results],
            "unrecognised": report.unrecognised,
        }
        print(json.dumps(doc, indent=2))
        return
    print(f"{'file':<32} {'passed':>7} {'failed':>7} {'skipped':>8}  per suite (passed/failed)")
    for r in report.results:
        suites = " ".join(
            f"{s}:{row['passed']}/{row['failed']}"
            for s, row in sorted(r.by_suite().items())
            if s != "-"
        )
        name = r.name if len(r.name) <= 32 else r.name + "\n" + " " * 32
        print(f"{name:<32} {r.passed:>7} {r.failed:>7} {r.skipped:>8}  {suites}")
        for section, row in r.by_section().items():
            print(_section_line(section, row))
        for c in r.failures()[:5]:
            print(f"    case {c.index} (suite {c.suite}): {c.detail}")
    if report.unrecognised:
        print("no runner yet (not run): " + ", ".join(report.unrecognised))
    total_p = sum(r.passed for r in report.results)
    total_f = sum(r.failed for r in report.results)
    print(f"vectors: {total_p} passed, {total_f} failed, "
          f"{sum(r.skipped for r in report.results)} skipped")


def cmd_generate(args: argparse.Namespace) -> int:
    import importlib

    from mlsvc.conformance.registry import GENERATORS

    module = importlib.import_module(f"mlsvc.conformance.{GENERATORS[args.name]}")
    if args.profile is not None and args.name != "vc":
        print(f"mlsvc vectors generate: --profile applies to vc only, not {args.name}",
              file=sys.stderr)
        return 2
    count: int = (module.write(Path(args.out)) if args.profile is None
                  else module.write(Path(args.out), profile=args.profile))
    suffix = "" if args.profile is None else f" (profile {args.profile})"
    print(f"wrote {count} cases to {args.out}{suffix}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """`mlsvc vectors check NAME FILE`: exit 0 iff every case of every suite passes."""
    path = Path(args.file)
    if args.profile is not None and args.name != "vc":
        print(f"mlsvc vectors check: --profile applies to vc only, not {args.name}",
              file=sys.stderr)
        return 2
    try:
        result = check_file(args.name, path, profile=args.profile)
    except (OSError, ValueError) as exc:  # unreadable, or not JSON
        print(f"mlsvc vectors check: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    ok = result.failed == 0 and result.skipped == 0 and result.passed > 0
    if args.json or args.check_json:
        print(json.dumps(_check_json(result, ok), indent=2))
    else:
        _print_check(result, ok)
    return 0 if ok else 1


def _check_json(result: FileResult, ok: bool) -> dict[str, object]:
    doc: dict[str, object] = {
        "file": result.name, "ok": ok, "passed": result.passed, "failed": result.failed,
        "by_suite": result.by_suite(),
        "failures": [{"case": c.index, "suite": c.suite, "detail": c.detail}
                     for c in result.failures()],
    }
    if result.by_section():
        doc["by_section"] = result.by_section()
        doc["deviations"] = result.deviations
    return doc


def _print_check(result: FileResult, ok: bool) -> None:
    print(f"{result.name}: {result.passed} passed, {result.failed} failed")
    print(f"  {'suite':>5} {'passed':>7} {'failed':>7}")
    for suite, row in sorted(result.by_suite().items()):
        print(f"  {suite:>5} {row['passed']:>7} {row['failed']:>7}")
    for section, row in result.by_section().items():
        print(_section_line(section, row))
    for c in result.failures():
        print(f"    case {c.index} (suite {c.suite}): {c.detail}")
    if result.deviations:
        print(f"  {result.deviations} values reproduced only under documented deviations "
              "from the text (docs/INTEROP.md):")
        for c in result.cases:
            if c.ok and c.deviation:
                print(f"    [{c.deviation}] {c.detail}")
    print("all checks passed" if ok else "FAILED")


def cmd_vectors(args: argparse.Namespace) -> int:
    if args.dir:
        folder = Path(args.dir)
        if not folder.is_dir():
            print(f"mlsvc vectors: no such folder {folder}", file=sys.stderr)
            return 2
        report = run_folder(folder)
    else:
        report = run_default()
    _print_vectors(report, args.json)
    return 0 if report.ok else 1


def cmd_proofs(rest: list[str]) -> int:
    from mlsvc_proofs.cli import main as proofs_main

    rc: int = proofs_main(rest)
    return rc


def cmd_model(rest: list[str]) -> int:
    if rest and rest[0] == "refine":
        # the refinement bridge (refine/): the model judges this implementation
        from mlsvc_refine.cli import main as refine_main

        code: int = refine_main(rest[1:])
        return code
    from mlsvc_model.cli import main as model_main

    rc: int = model_main(rest)
    return rc


def cmd_demo(args: argparse.Namespace) -> int:
    """`mlsvc demo [--json]`: the virtual-client story (mlsvc.story) with peers of mls-rs,
    ts-mls and this project's engine, then the verification summary (vectors, proofs,
    model; they run in subprocesses while the story runs). Exit 0 iff all held."""
    from mlsvc import story

    missing = story.missing_engines()
    if missing:
        why = "; ".join(f"{e}: {p}" for e, p in missing.items())
        if args.json:
            print(json.dumps({"ok": False, "error": f"peer engines not installed: {why}"},
                             indent=2))
        else:
            print(f"mlsvc demo: the story needs mls-rs and ts-mls peers, and {why}",
                  file=sys.stderr)
        return 1
    checks = story.start_checks()
    if not args.json:
        print("== alice's phone, laptop and tablet: one virtual client in three groups "
              "with mls-rs, ts-mls and mlsvc peers ==")
    report = story.run_story(echo=None if args.json else print)
    if not args.json:
        print(f"story: {'every check held' if report.ok else 'FAILED'} "
              f"({report.seconds:.1f} s)")
        for failure in report.failures:
            print("  FAILED:", failure)
        print()
        print("== verification summary (waiting for the checks started with the story) ==",
              flush=True)
    summary = checks.collect()
    ok = report.ok and summary["ok"]
    if args.json:
        print(json.dumps({"ok": ok, **{k: v for k, v in report.as_json().items()
                                       if k != "ok"},
                          "story_ok": report.ok, "summary": summary}, indent=2))
    else:
        for line in story.summary_lines(summary):
            print(line)
        print(f"(summary {summary['seconds']} s; details: mlsvc vectors, mlsvc proofs, "
              "mlsvc model explore, mlsvc model refine)")
        print()
        print("demo:", "all checks as expected" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def cmd_vc_simulate(args: argparse.Namespace) -> int:
    """`mlsvc vc simulate`: exit 0 iff no violation (docs/VIRTUAL_CLIENTS.md)."""
    from mlsvc.errors import ParameterError
    from mlsvc.simulate import SimulationConfig, simulate
    from mlsvc.vc.emulator import Consistency
    from mlsvc.vc.profiles import Profile

    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    config = SimulationConfig(args.emulators, args.groups, peers, args.ops, args.seed,
                              args.suite, Consistency(args.ds), args.store, args.faults,
                              args.crash_rate, Profile(args.profile),
                              args.vc_created_groups)
    try:
        config.groups_created_by_vc  # noqa: B018  (checked before anything runs)
    except ParameterError as exc:
        print(f"mlsvc vc simulate: {exc}", file=sys.stderr)
        return 2
    report = simulate(config)
    out = report.as_json()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['ops']} operations in {out['seconds']} s; by kind: {out['by_kind']}")
        print(f"messages: {out['messages_sent']} sent, {out['messages_decrypted']} "
              f"decrypted, {out['messages_undecryptable']} undecryptable; "
              f"{out['attributions']} attributions, {out['misattributions']} wrong; "
              f"{out['key_nonce_reuses']} (key, nonce) reuses; DS refusals "
              f"{out['refusals']}")
        print(f"lifecycle: {out['emulators_added']} added, {out['emulators_removed']} "
              f"removed ({out['removals_finished']} finished); crashes {out['crashes']}, "
              f"restarts {out['restarts']}; messages lost {out['messages_lost']}; faults "
              f"{out['faults']}")
        for v in out["violations"]:
            print("VIOLATION:", v)
        print("holds" if not out["violations"] else "FAILED")
    return 0 if not out["violations"] else 1


def cmd_study_costs(args: argparse.Namespace) -> int:
    """`mlsvc study costs`: CSV files and PNG plots into --out (docs/COSTS.md)."""
    from mlsvc.study import CostsConfig, parse_ints
    from mlsvc.study import run as run_study

    config = CostsConfig(
        users=parse_ints(args.users), devices=parse_ints(args.devices),
        groups=parse_ints(args.groups), churn_users=parse_ints(args.churn_users),
        churn_events=args.churn_events, reps=args.reps, seed=args.seed,
        out=Path(args.out), plots=not args.no_plots)
    run_study(config)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`mlsvc report --out DIR`: DIR/index.html (docs/REPORT.md); exit 0 iff every verdict
    that was run is as expected."""
    from mlsvc.report import build, summary_lines

    out = Path(args.out)
    report = build(out, quick=args.quick, workers=args.workers, progress=print,
                   timeout=args.proof_timeout)
    for line in summary_lines(report):
        print(f"  {line}")
    print(f"wrote {out / 'index.html'} in {report.seconds:.1f} s")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # proofs and model parse their own arguments.
    if argv and argv[0] == "proofs":
        return cmd_proofs(argv[1:])
    if argv and argv[0] == "model":
        return cmd_model(argv[1:])
    parser = argparse.ArgumentParser(prog="mlsvc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("vectors", help="run the official RFC 9420 test vectors and the "
                                       "public vc-01 vectors")
    p.add_argument("--dir", help="folder of vector files (default: the pinned copies, "
                                 "vectors/rfc9420 and vectors/third-party's vc-01 file)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_vectors)
    vsub = p.add_subparsers(dest="vectors_command")
    g = vsub.add_parser("generate", help="write a vector file of this project")
    g.add_argument("name", choices=sorted(GENERATORS))
    g.add_argument("--out", required=True, help="output JSON file")
    g.add_argument("--profile", choices=list(VC_PROFILES), default=None,
                   help="vc only: the text the vectors follow (default draft-00; latest "
                        "writes vectors/generated/vc-latest.json's content)")
    g.set_defaults(func=cmd_generate)
    c = vsub.add_parser("check", help="check one vector file (this project's, or vc-01), "
                                      "per suite")
    c.add_argument("name", choices=sorted(CHECKERS))
    c.add_argument("file", help="the JSON vector file")
    c.add_argument("--json", dest="check_json", action="store_true",
                   help="machine-readable output")
    c.add_argument("--profile", choices=list(VC_PROFILES), default=None,
                   help="vc only: require every suite to record this profile (default: "
                        "check each by the profile it records)")
    c.set_defaults(func=cmd_check)
    sub.add_parser("proofs", help="check the Z3 obligations (mlsvc proofs --help)")
    sub.add_parser("model", help="explore the executable model (mlsvc model --help)")
    p = sub.add_parser("vc", help="virtual clients (draft-ietf-mls-virtual-clients-00)")
    vcsub = p.add_subparsers(dest="vc_command", required=True)
    s = vcsub.add_parser("simulate", help="random scenarios through the DS, checked at "
                                          "every step")
    s.add_argument("--emulators", type=int, default=3)
    s.add_argument("--groups", type=int, default=2)
    s.add_argument("--peers", default="mlsvc", help="comma-separated: mlsvc,mls-rs,ts-mls")
    s.add_argument("--ops", type=int, default=100)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--suite", type=int, default=1)
    s.add_argument("--ds", choices=["strong", "eventual"], default="strong")
    s.add_argument("--store", help="memory or sqlite:PATH (durable state, P23)")
    s.add_argument("--faults", action="store_true",
                   help="the DS delays, duplicates, reorders and drops deliveries to emulators")
    s.add_argument("--crash-rate", type=float, default=0.0,
                   help="chance to crash the acting emulator at each point (needs --store)")
    s.add_argument("--profile", choices=["draft-00", "latest"], default="draft-00",
                   help="the text the virtual client follows (docs/PROFILES.md)")
    s.add_argument("--vc-created-groups", type=int, default=None,
                   help="groups the virtual client creates itself (latest §5.4; default: "
                        "1 under latest, 0 under draft-00)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_vc_simulate)
    p = sub.add_parser("study", help="studies of the draft's claims (docs/COSTS.md)")
    stsub = p.add_subparsers(dest="study_command", required=True)
    s = stsub.add_parser("costs", help="virtual clients against plain multi-client "
                                       "(draft-00 §6-§8): CSV files and PNG plots")
    s.add_argument("--users", default="4,16,64,256",
                   help="comma-separated U values, each 2..256 (default 4,16,64,256)")
    s.add_argument("--devices", default="1,2,3,4,5",
                   help="comma-separated D values, each 1..5 (default 1,2,3,4,5)")
    s.add_argument("--groups", default="1,10",
                   help="comma-separated G values for the update cost (default 1,10)")
    s.add_argument("--churn-users", default="16",
                   help="comma-separated U values of the churn experiment (default 16)")
    s.add_argument("--churn-events", type=int, default=8,
                   help="device replacements per churn run (default 8)")
    s.add_argument("--reps", type=int, default=None,
                   help="timed commits per size (default 7, 3 at U > 64)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", default="study-costs", help="output folder (default study-costs/)")
    s.add_argument("--no-plots", action="store_true", help="CSV files only (no matplotlib)")
    s.set_defaults(func=cmd_study_costs)
    p = sub.add_parser("demo", help="the main job: the virtual-client story, then vectors, "
                                    "proofs and model, summarised")
    p.add_argument("--json", action="store_true", help="one JSON object (exit 0 iff all held)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("report", help="one static HTML page of the evidence (docs/REPORT.md)")
    p.add_argument("--out", required=True, help="output folder (index.html and its images)")
    p.add_argument("--quick", action="store_true",
                   help="skip the model, the Z3 proofs and the official vectors (marked so)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for the full run (default: one per core)")
    p.add_argument("--proof-timeout", type=float, default=None,
                   help="seconds per Z3 obligation (default: that of mlsvc proofs)")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
