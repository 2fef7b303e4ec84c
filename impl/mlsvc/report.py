"""`mlsvc report --out DIR`: the evidence of the project on one static HTML page.

An auditor opens DIR/index.html from the file system (file://): no server, no network,
no script, no external style sheet or font. The page holds, each with its verdict:

- every invariant of the model (model/mlsvc_model/invariants.py) with its spec sentence,
  the verdict of the model's exploration (ci profile) and of the refinement test (the
  model judging the implementation, refine/, ci profile);
- every Z3 obligation (proofs/mlsvc_proofs) with its verdict and solver time;
- every vector file (vectors/rfc9420, vectors/generated) with its case counts;
- every named check (mlsvc.checks.CHECKS) with the tests that make it fire;
- the findings F1-F12 with their minimal traces;
- the profile decisions (docs/PROFILE.md) with where each is implemented;
- the mutation score (docs/MUTATION.md, if it states one);
- the cost-study plots (docs/costs/*.png, copied into DIR);
- two hand-drawn SVG figures: an emulator's lifecycle and one operation's derivation
  chain (written into DIR; no graphviz).

`--quick` runs only what takes under a second (the generated vectors, the scan for
firing tests, the documents) and marks the model, the proofs and the official vectors
"not run in quick mode"; everything else on the page is the same. The full report runs
its pieces in worker processes (one per core): the model exploration, each finding,
each vector file and each obligation are separate tasks.

Layering: like `mlsvc.cli`, this module sits on top and is imported only by the command
line. It reaches the model and the proofs (`mlsvc_model`, `mlsvc_proofs`) lazily, by
`importlib`, when a report is built: `import mlsvc` never loads them (or Hypothesis,
or z3). The page is deterministic apart from the timings it reports.
"""

from __future__ import annotations

import ast
import html
import importlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsvc.checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]
QUICK = "not run in quick mode"
REFINEMENT = "not run in quick mode (mlsvc model refine; make refine)"
MODEL_PROFILE = "ci"


def _model(module: str) -> Any:
    """mlsvc_model.<module>, loaded only when a report is built (see the docstring)."""
    return importlib.import_module(f"mlsvc_model.{module}")


def _proofs(module: str) -> Any:
    return importlib.import_module(f"mlsvc_proofs.{module}")


# --- what the page shows, as data -------------------------------------------------------------


@dataclass
class InvariantRow:
    id: str
    title: str
    sentence: str
    section: str
    model: str  # holds | violated | not reached | not run in quick mode | error: ...
    detail: str = ""


@dataclass
class ModelRun:
    ran: bool
    profile: str
    runs: int = 0
    steps: int = 0
    refused: int = 0
    seconds: float = 0.0
    violation: str | None = None  # the invariant that failed (None: every one held)
    detail: str = ""
    trace: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class ObligationRow:
    name: str
    kind: str  # holds | twin
    twin_of: str | None
    section: str
    sentence: str
    encoding: str
    expect: str
    verdict: str  # unsat | sat | unknown | vacuous | not run in quick mode | error: ...
    ok: bool | None
    seconds: float | None
    reason: str = ""


@dataclass
class VectorRow:
    folder: str
    file: str
    cases: int
    suites: list[str]
    ran: bool
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    runner: bool = True  # a runner reads this file

    @property
    def ok(self) -> bool:
        return self.ran and self.failed == 0 and self.skipped == 0 and self.passed > 0


@dataclass
class CheckRow:
    id: str
    section: str
    rule: str
    tests: list[str]


@dataclass
class FindingRow:
    id: str
    title: str
    invariant: str
    source: str
    later: str
    switches: str
    ran: bool
    reproduced: bool = False
    violated: str = ""
    detail: str = ""
    trace: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    baseline: str = ""
    runs: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class ProfileRow:
    id: str
    decision: str
    implemented: str
    modeled: str
    open: str


@dataclass
class Mutation:
    score: str | None  # "97.3%" or None (not measured)
    lines: list[str]
    source: str


@dataclass
class Report:
    quick: bool
    revision: str
    invariants: list[InvariantRow]
    model: ModelRun
    refinement: str
    obligations: list[ObligationRow]
    vectors: list[VectorRow]
    checks: list[CheckRow]
    findings: list[FindingRow]
    profile: list[ProfileRow]
    mutation: Mutation
    plots: list[Path]
    proof_timeout: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Everything that ran verdicts as expected (quick mode: what ran)."""
        return (
            (not self.model.ran or (self.model.violation is None and not self.model.error))
            and all(o.ok is not False for o in self.obligations)
            and all(v.ok for v in self.vectors if v.ran)
            and all(f.reproduced for f in self.findings if f.ran)
            and all(c.tests for c in self.checks)
        )


# --- the tasks (each runs in a worker process in a full report) --------------------------------


def task_model(profile: str = MODEL_PROFILE) -> ModelRun:
    """The model's exploration with every switch off: every invariant must hold."""
    start = time.perf_counter()
    try:
        config = _model("config").Config()
        res = _model("explore").explore(config, profile)
    except Exception as exc:  # reported on the page, not raised
        return ModelRun(True, profile, error=f"{type(exc).__name__}: {exc}")
    run = ModelRun(True, profile, int(res.runs), int(res.steps), int(res.refused),
                   time.perf_counter() - start)
    if res.violation is not None:
        run.violation = str(res.violation.invariant)
        run.detail = str(res.violation.detail)
        run.trace = [str(s) for s in res.violation.trace]
    return run


def finding_meta(fid: str) -> FindingRow:
    f = _model("config").FINDINGS[fid]
    on = f.config.switches_on()
    switches = ", ".join(f"{k}={v}" for k, v in on.items())
    return FindingRow(str(f.id), str(f.title), str(f.invariant), str(f.source), str(f.later),
                      switches, ran=False)


def task_finding(fid: str, profile: str = MODEL_PROFILE) -> FindingRow:
    """Reproduce one finding: its switch on, its invariant checked, the minimal trace."""
    row = finding_meta(fid)
    row.ran = True
    start = time.perf_counter()
    try:
        res = _model("explore").reproduce(fid, profile)
    except Exception as exc:  # reported on the page (a red badge, exit 1), not raised
        row.error = f"{type(exc).__name__}: {exc}"
        return row
    row.seconds = time.perf_counter() - start
    row.runs = int(res.runs)
    v = res.violation
    if v is None:
        return row
    row.violated = str(v.invariant)
    row.reproduced = row.violated == row.invariant
    row.detail = str(v.detail)
    row.trace = [str(s) for s in v.trace]
    row.also = sorted({str(i) for i, _ in v.also if i != v.invariant})
    refused = "; ".join(f"step {i} refused ({why})" for i, why in v.baseline_refused)
    holds = ("every invariant holds" if not v.baseline_violations else
             "still violated: " + ", ".join(str(i) for i, _ in v.baseline_violations))
    row.baseline = f"{refused or 'every step applies'}; {holds}"
    return row


def obligation_meta(name: str) -> ObligationRow:
    ob = _proofs("registry").BY_NAME[name]
    return ObligationRow(str(ob.name), str(ob.kind), ob.twin_of, str(ob.section),
                         str(ob.sentence), str(ob.encoding), str(ob.expect), QUICK, None, None)


def obligation_names() -> list[str]:
    return [str(ob.name) for ob in _proofs("registry").OBLIGATIONS]


def proof_timeout() -> float:
    """The per-obligation solver timeout of `mlsvc proofs`, in seconds."""
    return float(_proofs("obligation").DEFAULT_TIMEOUT_MS) / 1000


def task_obligation(name: str, timeout: float | None = None) -> ObligationRow:
    """One Z3 obligation in its own solver (the runner of `mlsvc proofs`); a timeout is a
    failure (verdict unknown)."""
    row = obligation_meta(name)
    try:
        timeout_ms = max(1, int((timeout or proof_timeout()) * 1000))
        r = _proofs("obligation").run(_proofs("registry").BY_NAME[name], timeout_ms)
    except Exception as exc:  # reported on the page (a red badge, exit 1), not raised
        row.verdict, row.ok = f"error: {type(exc).__name__}: {exc}", False
        return row
    row.verdict, row.ok, row.seconds = str(r.verdict), bool(r.ok), float(r.seconds)
    row.reason = str(r.reason)
    return row


def _suites(cases: list[Any]) -> list[str]:
    found = {str(c["cipher_suite"]) for c in cases
             if isinstance(c, dict) and "cipher_suite" in c}
    return sorted(found, key=lambda s: (len(s), s))


def task_vectors(path_text: str, run: bool = True) -> VectorRow:
    """One vector file: its cases counted, and (run=True) run by its runner."""
    from mlsvc.conformance.registry import RUNNERS, run_file

    path = Path(path_text)
    cases = json.loads(path.read_text())
    cases = cases if isinstance(cases, list) else [cases]
    row = VectorRow(path.parent.name, path.name, len(cases), _suites(cases), ran=False,
                    runner=path.stem in RUNNERS)
    if not run or not row.runner:
        return row
    row.ran = True
    try:
        result = run_file(path)
    except Exception as exc:  # reported on the page (a red badge, exit 1), not raised
        row.failed, row.failures = row.cases, [f"{type(exc).__name__}: {exc}"]
        return row
    row.passed, row.failed, row.skipped = result.passed, result.failed, result.skipped
    row.failures = [f"case {c.index} (suite {c.suite}): {c.detail}"
                    for c in result.failures()[:5]]
    suites = [s for s in result.by_suite() if s != "-"]
    if suites:
        row.suites = sorted(suites, key=lambda s: (len(s), s))
    return row


# --- the named checks and the tests that fire them ---------------------------------------------
# The scan of tests/unit/test_validation_table.py (firing_tests_by_check), restated here so
# the report does not import the test suite; tests/unit/test_report.py checks that both
# give the same answer.

_CONSTANT = re.compile(r'^([A-Z][A-Z0-9_]*)\s*(?::\s*\w+\s*)?=\s*"([A-Z][A-Z0-9-]*)"', re.M)


def _impl_constants(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in (root / "impl").rglob("*.py"):
        for name, value in _CONSTANT.findall(path.read_text()):
            if value in CHECKS:
                out[name] = value
    return out


def _disabled(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(".xfail" in ast.unparse(d) or ".skip" in ast.unparse(d)
               for d in fn.decorator_list)


def _ids_in(node: ast.expr, constants: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    return []


def _columns(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dec in fn.decorator_list:
        if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")
                and len(dec.args) >= 2 and isinstance(dec.args[1], ast.List | ast.Tuple)):
            continue
        spec = dec.args[0]
        if isinstance(spec, ast.Constant) and isinstance(spec.value, str):
            names = [n.strip() for n in spec.value.split(",")]
        elif isinstance(spec, ast.Tuple | ast.List):
            names = [e.value for e in spec.elts
                     if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        else:
            continue
        for row in dec.args[1].elts:
            cells = row.elts if isinstance(row, ast.Tuple) and len(names) > 1 else [row]
            for name, cell in zip(names, cells, strict=False):
                if isinstance(cell, ast.Constant) and isinstance(cell.value, str):
                    out.setdefault(name, []).append(cell.value)
    return out


def asserted_ids(source: str, constants: dict[str, str]) -> set[str]:
    """The check IDs a test module asserts (tests/unit/test_validation_table.py's rule)."""
    found: set[str] = set()
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or _disabled(fn):
            continue
        columns = _columns(fn)
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assert):
                continue
            for cmp in ast.walk(node.test):
                if not (isinstance(cmp, ast.Compare) and len(cmp.ops) == 1
                        and isinstance(cmp.ops[0], ast.Eq)):
                    continue
                left, right = cmp.left, cmp.comparators[0]
                for subject, value in ((left, right), (right, left)):
                    if "check" not in ast.unparse(subject):
                        continue
                    found.update(c for c in _ids_in(value, constants) if c in CHECKS)
                    if isinstance(value, ast.Name) and value.id in columns:
                        found.update(c for c in columns[value.id] if c in CHECKS)
    return found


def firing_tests_by_check(root: Path = ROOT) -> dict[str, list[str]]:
    """Check ID -> the test files (relative to root) asserting that it fires."""
    constants = _impl_constants(root)
    out: dict[str, list[str]] = {}
    for path in sorted((root / "tests").rglob("*.py")):
        for cid in asserted_ids(path.read_text(), constants):
            out.setdefault(cid, []).append(str(path.relative_to(root)))
    return out


# --- documents ---------------------------------------------------------------------------------


def profile_rows(doc: Path = ROOT / "docs" / "PROFILE.md") -> list[ProfileRow]:
    """The rows of docs/PROFILE.md's tables whose ID is a decision (P..) or precision (Q..)."""
    rows: list[ProfileRow] = []
    if not doc.exists():
        return rows
    for line in doc.read_text().splitlines():
        if not re.match(r"^\|\s*[PQ]\d", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        cells += [""] * (5 - len(cells))
        rows.append(ProfileRow(*cells[:5]))
    return rows


_SCORE = re.compile(r"score\b[^%\n]*?(\d+(?:\.\d+)?)\s*%", re.I)


def mutation(doc: Path = ROOT / "docs" / "MUTATION.md") -> Mutation:
    """The score docs/MUTATION.md states (the first "... score ... N%"), or None."""
    if not doc.exists():
        return Mutation(None, [], "docs/MUTATION.md does not exist")
    lines = [ln.strip() for ln in doc.read_text().splitlines() if _SCORE.search(ln)]
    if not lines:
        return Mutation(None, [], "docs/MUTATION.md states no score yet")
    m = _SCORE.search(lines[0])
    assert m is not None
    return Mutation(f"{m.group(1)}%", lines, "docs/MUTATION.md")


def _revision() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    rev = head.stdout.strip()
    return f"{rev} with local changes" if dirty.stdout.strip() else rev


# --- collecting ----------------------------------------------------------------------------------


def vector_files() -> list[Path]:
    from mlsvc.conformance.registry import default_dir

    folders = [default_dir(), ROOT / "vectors" / "generated"]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("*.json"))]


def _invariant_rows(model: ModelRun) -> list[InvariantRow]:
    rows = []
    for inv in _model("invariants").INVARIANTS.values():
        if not model.ran:
            verdict, detail = QUICK, ""
        elif model.error:
            verdict, detail = f"error: {model.error}", ""
        elif model.violation is None:
            verdict, detail = "holds", ""
        elif model.violation == inv.id:
            verdict, detail = "violated", model.detail
        else:
            verdict, detail = "not reached", f"the run stopped at {model.violation}"
        rows.append(InvariantRow(str(inv.id), str(inv.title), str(inv.sentence),
                                 str(inv.section), verdict, detail))
    return rows


def task_refinement(profile: str = MODEL_PROFILE) -> str:
    """The refinement test (refine/, docs/REFINEMENT.md): the model's transitions on the
    model and on the implementation, abstractions equal, every invariant on both."""
    start = time.perf_counter()
    try:
        r = importlib.import_module("mlsvc_refine.machine").refine(profile)
    except Exception as exc:  # reported on the page, not raised
        return f"error: {type(exc).__name__}: {exc}"
    took = time.perf_counter() - start
    if r.failure is None:
        return (f"refines (profile {profile}: {r.runs} runs, {r.steps} steps in {took:.0f} s; "
                "the abstractions equal and every invariant held on the model and on the "
                "implementation's bytes after every step)")
    return f"fails (profile {profile}): {r.failure}"


def collect(quick: bool = False, workers: int | None = None,
            timeout: float | None = None) -> Report:
    """Everything the page shows. quick: nothing that takes seconds runs (see module).
    timeout: per Z3 obligation, in seconds (default: that of `mlsvc proofs`)."""
    start = time.perf_counter()
    timeout = timeout or proof_timeout()
    findings_ids = list(_model("config").FINDINGS)
    names = obligation_names()
    files = vector_files()
    generated = ROOT / "vectors" / "generated"
    if quick:
        model = ModelRun(False, MODEL_PROFILE)
        findings = [finding_meta(f) for f in findings_ids]
        obligations = [obligation_meta(n) for n in names]
        vectors = [task_vectors(str(p), run=p.parent == generated) for p in files]
        refinement = REFINEMENT
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                 mp_context=ctx) as pool:
            # the longest first, so the pool ends together
            f_obligations = [pool.submit(task_obligation, n, timeout) for n in names]
            f_findings = {f: pool.submit(task_finding, f) for f in reversed(findings_ids)}
            f_model = pool.submit(task_model)
            f_refine = pool.submit(task_refinement)
            f_vectors = [pool.submit(task_vectors, str(p)) for p in files]
            model = f_model.result()
            findings = [f_findings[f].result() for f in findings_ids]
            vectors = [f.result() for f in f_vectors]
            obligations = [f.result() for f in f_obligations]
            refinement = f_refine.result()
    fired = firing_tests_by_check()
    checks = [CheckRow(cid, sec, rule, fired.get(cid, [])) for cid, (sec, rule) in CHECKS.items()]
    plots = sorted((ROOT / "docs" / "costs").glob("*.png"))
    return Report(quick, _revision(), _invariant_rows(model), model, refinement,
                  obligations, vectors, checks, findings, profile_rows(), mutation(), plots,
                  timeout, time.perf_counter() - start)


# --- SVG figures (hand-written; no graphviz) -----------------------------------------------------

_SVG_STYLE = """
  text { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 12px;
         fill: #1d2530; }
  .title { font-size: 15px; font-weight: bold; }
  .small { font-size: 11px; fill: #44505e; }
  .state { fill: #eef4fb; stroke: #2f5d8a; stroke-width: 1.6; }
  .super { fill: #f7faf4; stroke: #4b7a2a; stroke-width: 1.6; }
  .op    { fill: #ffffff; stroke: #4b7a2a; stroke-width: 1; }
  .gone  { fill: #fbeeee; stroke: #a23b3b; stroke-width: 1.6; }
  .secret { fill: #fff7e6; stroke: #a8741a; stroke-width: 1.3; }
  .fn    { fill: #eef4fb; stroke: #2f5d8a; stroke-width: 1.3; }
  .key   { fill: #eef7ee; stroke: #3c7a3c; stroke-width: 1.3; }
  .edge  { stroke: #34495e; stroke-width: 1.4; fill: none; marker-end: url(#arrow); }
  .dash  { stroke-dasharray: 5 4; }
"""


class Svg:
    """A tiny SVG writer: boxes with centred lines of text, arrows with labels."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = [f'<title>{html.escape(title)}</title>']

    def text(self, x: float, y: float, lines: Sequence[str], cls: str = "",
             anchor: str = "middle", dy: float = 15) -> None:
        c = f' class="{cls}"' if cls else ""
        for i, line in enumerate(lines):
            self.parts.append(f'<text x="{x:.0f}" y="{y + i * dy:.0f}" text-anchor="{anchor}"'
                              f'{c}>{html.escape(line)}</text>')

    def box(self, x: float, y: float, w: float, h: float, lines: Sequence[str], cls: str,
            rx: int = 8, bold_first: bool = False, small_rest: bool = False) -> None:
        self.parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" '
                          f'rx="{rx}" class="{cls}"/>')
        top = y + h / 2 - (len(lines) - 1) * 7.5 + 4
        for i, line in enumerate(lines):
            attrs = ' font-weight="bold"' if bold_first and i == 0 else ""
            attrs += ' class="small"' if small_rest and i > 0 else ""
            self.parts.append(f'<text x="{x + w / 2:.0f}" y="{top + i * 15:.0f}" '
                              f'text-anchor="middle"{attrs}>{html.escape(line)}</text>')

    def path(self, d: str, dashed: bool = False) -> None:
        cls = "edge dash" if dashed else "edge"
        self.parts.append(f'<path d="{d}" class="{cls}"/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, dashed: bool = False) -> None:
        self.path(f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}", dashed)

    def render(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}">\n'
            f"<style>{_SVG_STYLE}</style>\n"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
            'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#34495e"/></marker></defs>\n'
            f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>\n'
            + "\n".join(self.parts) + "\n</svg>\n"
        )


def lifecycle_svg() -> str:
    """An emulator's lifecycle (draft-00 §4, §5.5; profile P13, P14, P16, P17, P21)."""
    s = Svg(1120, 600, "An emulator client's lifecycle (draft-00 §4, §5)")
    s.text(560, 28, ["An emulator client's lifecycle"], "title")
    # start, created
    s.parts.append('<circle cx="30" cy="300" r="9" fill="#1d2530"/>')
    s.line(39, 300, 68, 300)
    s.box(70, 255, 150, 90, ["created", "a device with the", "application's credential"],
          "state", bold_first=True)
    # three ways into the emulation group
    s.path("M220,280 C300,280 330,120 470,120")
    s.text(338, 100, ["creates the emulation group", "(the first emulator)"], "small")
    s.line(220, 300, 468, 300)
    s.text(345, 262, ["added by Welcome with a", "NewEmulatorClientState", "(§4.1; P13, P18)"],
           "small")
    s.path("M220,320 C300,320 330,480 470,480")
    s.text(330, 500, ["onboards externally: external", "commit + ResyncMessage",
                      "(§4.2; P14)"], "small", dy=14)
    # joined: the superstate with its operations
    s.box(470, 60, 340, 500, [], "super", rx=14)
    s.text(640, 86, ["joined the emulation group"], "title")
    s.text(640, 104, ["(active: one of the emulators of the virtual client)"], "small")
    ops = [
        ["KeyPackageUpload", "an emulation Commit's action (§5.5.1; P16)"],
        ["Welcome into higher-level groups", "by the announced KeyPackageRef (§5.5.1)"],
        ["vc commit / update", "keys from an operation secret (§5.3; P4, Q9)"],
        ["external join of a higher-level group", "ExternalInit from the seed (§5.5.2; P17)"],
        ["send / receive", "reuse guard, generation IDs (§5.6-§5.9; P9, P20)"],
        ["follow the siblings", "re-derive from DerivationInfo (§5.3; P6)"],
    ]
    for i, (name, what) in enumerate(ops):
        y = 122 + i * 70
        s.box(490, y, 300, 56, [name, what], "op", rx=6, bold_first=True)
    s.path("M810,170 C860,170 860,470 812,470", dashed=True)
    s.text(868, 300, ["any order,", "any number", "of times"], "small", anchor="start")
    # removal
    s.line(810, 520, 928, 520)
    s.text(990, 420, ["removed (§4.3; P21): the DS", "deletes its KeyPackages, a Remove",
                      "in the emulation group, a new", "long-term key in a ResyncMessage,",
                      "a path commit in every group"], "small", dy=14)
    s.box(930, 490, 170, 60, ["removed", "reads nothing afterwards"], "gone", bold_first=True)
    s.line(1015, 550, 1015, 578)
    s.parts.append('<circle cx="1015" cy="588" r="9" fill="none" stroke="#1d2530" '
                   'stroke-width="1.6"/><circle cx="1015" cy="588" r="5" fill="#1d2530"/>')
    return s.render()


def derivation_svg() -> str:
    """One operation's derivation chain (draft-00 §5.2, §5.3; P2-P7, P17, Q3, Q6, Q9)."""
    s = Svg(1180, 780, "One operation's derivation chain (draft-00 §5.2, §5.3)")
    s.text(590, 28, ["One operation's derivation chain"], "title")
    # the emulation epoch -> emulator_epoch_secret
    s.box(60, 50, 260, 52, ["emulation group epoch", "its epoch secret (RFC 9420 §8)"],
          "secret", small_rest=True)
    s.line(320, 76, 418, 76)
    s.box(420, 50, 320, 52, ["SafeExportSecret(0x8001)",
                             "extensions-09 §4.4 Safe Exporter; P7"], "fn", small_rest=True)
    s.line(740, 76, 838, 76)
    s.box(840, 50, 290, 52, ["emulator_epoch_secret",
                             "DeriveSecret(., label) four times, then deleted"],
          "secret", small_rest=True)
    # the four epoch secrets
    row2 = [(["epoch_id", 'label "Epoch ID"', "names the epoch (AAD)"], 50),
            (["epoch_base_secret", 'label "Base Secret"', "keys the PPRF"], 330),
            (["epoch_encryption_key", 'label "Encryption Key"', "keys the DerivationInfo"], 610),
            (["generation_id_secret", 'label "Generation ID Secret"',
              "generation IDs (§5.9; P11, Q4)"], 890)]
    for lines, x in row2:
        s.line(985, 102, x + 120, 148)
        s.box(x, 150, 240, 64, lines, "secret", small_rest=True)
    # the PPRF at the HashInput
    s.box(60, 280, 270, 58, ["HashInput { leaf_index, random }",
                             "the deriver's index; random: Kdf.Nh bytes (Q6)"], "secret",
          small_rest=True)
    s.line(330, 309, 408, 309)
    s.box(410, 280, 260, 58, ["pprf_input = Hash(HashInput)",
                              "PPRF leaf = its first 4 bytes (P3)"], "fn", small_rest=True)
    s.line(670, 309, 738, 309)
    s.line(450, 214, 800, 278)
    s.box(740, 280, 330, 58, ["PPRF(epoch_base_secret), depth 32 (P2)",
                              "punctured at the leaf; a punctured leaf: resample (P3)"], "fn",
          small_rest=True)
    s.line(905, 338, 905, 378)
    s.box(740, 380, 330, 52, ["operation_secret", "= VirtualClientSecret(pprf_input) (§5.2)"],
          "secret", small_rest=True)
    # the sub-secrets and what they become
    subs = [["signature_key_secret", 'label "Signature Key"'],
            ["encryption_key_secret", 'label "Encryption Key"'],
            ["init_key_secret", 'label "Init Key"'],
            ["path_generation_secret", 'label "Path Generation"'],
            ["external_init_secret", 'label "External Init" (P17)']]
    outs = [["signature key pair", "the leaf's signature_key (P5, Q8)"],
            ["HPKE encryption key pair", "the leaf's encryption_key (P5, P8)"],
            ["HPKE init key pair", "a KeyPackage's init_key (P16)"],
            ["first path secret", "of the UpdatePath (Q9)"],
            ["ExternalInit KEM seed", "siblings follow the join (P17)"]]
    s.text(60, 396, ["sub-secrets: DeriveSecret(operation_secret, label) (P4;",
                     "the literal reading, from epoch_base_secret, is finding F1)"], "small",
           anchor="start")
    for i, (sub, out) in enumerate(zip(subs, outs, strict=True)):
        x = 50 + i * 218
        s.line(905, 432, x + 104, 478)
        s.box(x, 480, 208, 50, sub, "secret", small_rest=True)
        s.line(x + 104, 530, x + 104, 568)
        s.box(x, 570, 208, 50, out, "key", small_rest=True)
    # the DerivationInfo, which lets every sibling re-derive
    s.box(240, 690, 700, 58, ["DerivationInfo in the LeafNode (§5.3; P6, Q1, Q2, Q11)",
                              "AEAD under epoch_encryption_key with AAD epoch_id; it carries "
                              "leaf_index and random, so every sibling re-derives"], "key",
          small_rest=True)
    s.path("M170,214 C170,240 25,240 25,300 L25,719 L238,719", dashed=True)
    s.path("M730,214 C730,244 1155,244 1155,300 L1155,719 L942,719", dashed=True)
    return s.render()


# --- HTML ----------------------------------------------------------------------------------------

_CSS = """
:root { --ok: #1f7a3a; --okbg: #e3f4e8; --bad: #a4262c; --badbg: #fbe6e7; --na: #5b6470;
        --nabg: #eceff2; --warn: #8a5a00; --warnbg: #fff2d6; --line: #d5dbe1; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 15px;
       line-height: 1.45; color: #1d2530; background: #f6f7f9; }
header { background: #1d2d44; color: #fff; padding: 22px 32px 18px; }
header h1 { margin: 0 0 6px; font-size: 26px; }
header p { margin: 2px 0; color: #d7e0ea; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 32px 60px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 6px 22px 18px; margin: 22px 0; }
h2 { font-size: 21px; border-bottom: 2px solid #1d2d44; padding-bottom: 4px; }
h3 { font-size: 17px; margin: 18px 0 6px; }
nav ol { columns: 2; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: 5px 7px; text-align: left;
         vertical-align: top; }
th { background: #eef1f5; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.id { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-weight: bold;
      white-space: nowrap; }
blockquote { margin: 4px 0; padding: 2px 10px; border-left: 3px solid #a8b4c2; color: #34404d;
             font-style: italic; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: bold; white-space: nowrap; }
.ok { color: var(--ok); background: var(--okbg); }
.bad { color: var(--bad); background: var(--badbg); }
.na { color: var(--na); background: var(--nabg); }
.warn { color: var(--warn); background: var(--warnbg); }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr));
           gap: 10px; margin: 10px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fff; }
.card .badge { white-space: normal; }
.card b { display: block; font-size: 13px; color: #44505e; font-weight: normal; }
.finding { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px;
           margin: 12px 0; }
ol.trace { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px;
           background: #f4f6f8; padding: 8px 8px 8px 42px; border-radius: 4px; }
figure { margin: 14px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { font-size: 13px; color: #44505e; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(840px, 1fr)); gap: 12px; }
.note { color: #44505e; font-size: 13.5px; }
:target { outline: 3px solid #f0b429; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _md(text: str) -> str:
    """Escape, then `code` and **bold** of the Markdown tables."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{_e(text)}</span>'


def _refinement_kind(refinement: str) -> str:
    if refinement.startswith("refines"):
        return "ok"
    return "bad" if refinement.startswith(("fails", "error")) else "na"


def _refinement_verdict(refinement: str, invariant: str) -> str:
    """One invariant's verdict on the implementation, from the refinement run."""
    if refinement.startswith("refines"):
        return "holds"
    if refinement.startswith("fails"):
        return "violated" if invariant in refinement else "not reached"
    return refinement.split(" (")[0]


def _verdict_badge(verdict: str) -> str:
    kind = {"holds": "ok", "violated": "bad", "not reached": "warn"}.get(verdict, "na")
    if verdict.startswith("error"):
        kind = "bad"
    return _badge(verdict, kind)


def _sections() -> list[tuple[str, str]]:
    return [
        ("summary", "Summary"),
        ("invariants", "Model invariants"),
        ("proofs", "Z3 proof obligations"),
        ("vectors", "Test vectors"),
        ("checks", "Named validation checks"),
        ("findings", "Findings F1-F12"),
        ("profile", "Profile decisions"),
        ("mutation", "Mutation score"),
        ("diagrams", "Lifecycle and derivation diagrams"),
        ("costs", "Cost study (draft-00 §8)"),
    ]


def _summary(r: Report) -> str:
    inv_hold = sum(i.model == "holds" for i in r.invariants)
    ob_run = [o for o in r.obligations if o.ok is not None]
    ob_ok = sum(bool(o.ok) for o in ob_run)
    v_run = [v for v in r.vectors if v.ran]
    cases = sum(v.cases for v in r.vectors)
    fired = sum(bool(c.tests) for c in r.checks)
    f_run = [f for f in r.findings if f.ran]
    f_rep = sum(f.reproduced for f in f_run)

    def card(title: str, body: str, kind: str) -> str:
        return f'<div class="card"><b>{_e(title)}</b>{_badge(body, kind)}</div>'

    cards = [
        card("model invariants (exploration, profile ci)",
             f"{inv_hold} of {len(r.invariants)} hold" if r.model.ran else QUICK,
             ("ok" if inv_hold == len(r.invariants) else "bad") if r.model.ran else "na"),
        card("refinement test", r.refinement, _refinement_kind(r.refinement)),
        card("Z3 obligations",
             f"{ob_ok} of {len(r.obligations)} as expected" if ob_run else QUICK,
             ("ok" if ob_ok == len(r.obligations) else "bad") if ob_run else "na"),
        card("vector files",
             f"{len(r.vectors)} files, {cases} cases; {sum(v.passed for v in v_run)} passed, "
             f"{sum(v.failed for v in v_run)} failed",
             "ok" if all(v.ok for v in v_run) and len(v_run) == len(r.vectors) else
             ("bad" if any(not v.ok for v in v_run) else "na")),
        card("named checks", f"{fired} of {len(r.checks)} fired by a test",
             "ok" if fired == len(r.checks) else "bad"),
        card("findings", f"{f_rep} of {len(r.findings)} reproduced" if f_run else QUICK,
             ("ok" if f_rep == len(r.findings) else "bad") if f_run else "na"),
        card("profile decisions", f"{len(r.profile)} rows from docs/PROFILE.md", "na"),
        card("mutation score", r.mutation.score or "not measured",
             "ok" if r.mutation.score else "na"),
    ]
    quick = ("<p class=\"note\"><b>Quick mode</b>: the model, the Z3 proofs and the official "
             "RFC 9420 vectors were not run; their rows say so. Run <code>mlsvc report --out "
             "DIR</code> without <code>--quick</code> for every verdict.</p>" if r.quick else "")
    return (f'<section id="summary"><h2>Summary</h2>{quick}<div class="summary">'
            + "".join(cards) + "</div>"
            f'<p class="note">Revision {_e(r.revision)}; report built in {r.seconds:.1f} s '
            "(timings vary from run to run; everything else on this page is deterministic)."
            "</p></section>")


def _invariants(r: Report) -> str:
    by_inv: dict[str, list[str]] = {}
    for f in r.findings:
        by_inv.setdefault(f.invariant, []).append(f.id)
    m = r.model
    if m.ran and not m.error:
        run = (f"Exploration of the model with every switch off (the baseline reading), "
               f"profile <code>{_e(m.profile)}</code>: {m.runs} runs, {m.steps} transitions "
               f"applied, {m.refused} refused by preconditions, {m.seconds:.1f} s.")
    elif m.error:
        run = f"The exploration failed: {_e(m.error)}"
    else:
        run = "The model's exploration was not run (quick mode)."
    rows = []
    for i in r.invariants:
        links = ", ".join(f'<a href="#{f}">{f}</a>' for f in by_inv.get(i.id, []))
        detail = f"<br><span class=\"note\">{_e(i.detail)}</span>" if i.detail else ""
        rows.append(
            f'<tr id="{_e(i.id)}"><td class="id">{_e(i.id)}</td><td>{_e(i.title)}'
            f"<blockquote>{_e(i.sentence)}</blockquote></td><td>{_e(i.section)}</td>"
            f"<td>model: {_verdict_badge(i.model)}{detail}<br>"
            f"implementation: {_verdict_badge(_refinement_verdict(r.refinement, i.id))}"
            f"</td><td>{links}</td></tr>")
    return ('<section id="invariants"><h2>Model invariants</h2>'
            f"<p>{run} Each invariant is checked after every step "
            "(model/mlsvc_model/invariants.py; docs/MODEL.md). The refinement test, which "
            "checks each invariant on the implementation's bytes after every transition of "
            f"the model (docs/REFINEMENT.md): {_e(r.refinement)}.</p>"
            "<table><thead><tr><th>ID</th><th>invariant and the sentence it comes from</th>"
            "<th>section</th><th>verdicts</th><th>broken by</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _obligations(r: Report) -> str:
    rows = []
    for o in r.obligations:
        if o.ok is None and o.verdict == QUICK:
            badge = _badge(QUICK, "na")
        elif o.ok:
            badge = _badge(f"{o.verdict}: as expected", "ok")
        else:
            badge = _badge(f"{o.verdict}: expected {o.expect}", "bad")
        secs = "" if o.seconds is None else f"{o.seconds:.3f} s"
        twin = (f'<br><span class="note">twin of <a href="#ob-{_e(o.twin_of)}">'
                f"{_e(o.twin_of)}</a></span>" if o.twin_of else "")
        reason = f'<br><span class="note">{_e(o.reason)}</span>' if o.reason else ""
        rows.append(
            f'<tr id="ob-{_e(o.name)}"><td class="mono">{_e(o.name)}{twin}</td>'
            f"<td>{_e(o.kind)}</td><td>{_e(o.section)}<blockquote>{_e(o.sentence)}"
            f"</blockquote><span class=\"note\">{_e(o.encoding)}</span></td>"
            f"<td><code>{_e(o.expect)}</code></td><td>{badge}{reason}</td>"
            f'<td class="num">{secs}</td></tr>')
    total = sum(o.seconds or 0.0 for o in r.obligations)
    ran = any(o.seconds is not None for o in r.obligations)
    tail = (f"<p class=\"note\">Total solver time {total:.1f} s; per-obligation timeout "
            f"{r.proof_timeout:g} s (a timeout is a failure, never a pass).</p>" if ran else
            "<p class=\"note\">Not run in quick mode: the obligations are listed, their "
            "verdicts are not claimed.</p>")
    return ('<section id="proofs"><h2>Z3 proof obligations</h2>'
            "<p>A <i>holds</i> obligation asserts the negation of a property and must be "
            "<code>unsat</code> (with satisfiable premises); its <i>twin</i> breaks the "
            "premise on purpose and must be <code>sat</code>, showing the encoding can see the "
            "failure (proofs/mlsvc_proofs; docs/PROOFS.md).</p>"
            "<table><thead><tr><th>obligation</th><th>kind</th><th>section, sentence, "
            "encoding</th><th>expected</th><th>verdict</th><th>time</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>" + tail + "</section>")


def _vectors(r: Report) -> str:
    rows = []
    for v in r.vectors:
        if not v.runner:
            badge = _badge("no runner", "warn")
        elif not v.ran:
            badge = _badge(QUICK, "na")
        elif v.ok:
            badge = _badge("all pass", "ok")
        else:
            badge = _badge("failures", "bad")
        counts = (f'<td class="num">{v.passed}</td><td class="num">{v.failed}</td>'
                  f'<td class="num">{v.skipped}</td>' if v.ran else
                  '<td class="num">-</td><td class="num">-</td><td class="num">-</td>')
        fails = "".join(f"<br><span class=\"note\">{_e(x)}</span>" for x in v.failures)
        rows.append(
            f'<tr id="vec-{_e(v.folder)}-{_e(Path(v.file).stem)}"><td class="mono">'
            f"vectors/{_e(v.folder)}/{_e(v.file)}</td><td class=\"num\">{v.cases}</td>"
            f"<td>{_e(', '.join(v.suites) or '-')}</td>{counts}<td>{badge}{fails}</td></tr>")
    return ('<section id="vectors"><h2>Test vectors</h2>'
            "<p>The official RFC 9420 vectors (vectors/rfc9420, pinned; docs/VECTORS.md) and "
            "this project's generated files (vectors/generated: the mls-extensions vectors and "
            "the draft-00 virtual-client vectors, docs/VC_VECTORS.md). Cases are counted from "
            "each file; a case is one JSON object.</p>"
            "<table><thead><tr><th>file</th><th>cases</th><th>cipher suites</th><th>passed</th>"
            "<th>failed</th><th>skipped</th><th>verdict</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _checks(r: Report) -> str:
    rows = []
    for c in r.checks:
        tests = "<br>".join(f"<code>{_e(t)}</code>" for t in c.tests)
        badge = _badge(f"{len(c.tests)} test file" + ("s" if len(c.tests) != 1 else ""), "ok") \
            if c.tests else _badge("no firing test", "bad")
        rows.append(f'<tr id="{_e(c.id)}"><td class="id">{_e(c.id)}</td><td>{_e(c.section)}'
                    f"</td><td>{_e(c.rule)}</td><td>{badge}<br>{tests}</td></tr>")
    return ('<section id="checks"><h2>Named validation checks</h2>'
            "<p>Every MUST this library enforces has an ID (impl/mlsvc/checks.py; "
            "docs/VALIDATION.md). A test <i>fires</i> a check when it asserts that ID as the "
            "check of a raised error (the scan of tests/unit/test_validation_table.py; xfail "
            "and skip tests do not count).</p>"
            "<table><thead><tr><th>ID</th><th>section</th><th>rule</th><th>fired by</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table></section>")


def _findings(r: Report) -> str:
    parts = []
    for f in r.findings:
        if not f.ran:
            badge, body = _badge(QUICK, "na"), "<p class=\"note\">The minimal trace is " \
                "computed by the model's search (run without <code>--quick</code>).</p>"
        elif f.error:
            badge, body = _badge("error", "bad"), f"<p>{_e(f.error)}</p>"
        else:
            badge = _badge("reproduced", "ok") if f.reproduced else \
                _badge("not reproduced", "bad")
            steps = "".join(f"<li>{_e(s)}</li>" for s in f.trace)
            links = ", ".join(f'<a href="#{_e(a)}">{_e(a)}</a>' for a in f.also)
            also = f"<p>Also violated at the end of the trace: {links}</p>" if f.also else ""
            body = (
                f"<p>Minimal trace ({len(f.trace)} step{'s' if len(f.trace) != 1 else ''}; "
                f"{f.runs} runs searched, {f.seconds:.1f} s), after which "
                f'<a href="#{_e(f.violated)}">{_e(f.violated)}</a> fails:</p>'
                f'<ol class="trace">{steps}</ol><p><b>Counterexample:</b> {_e(f.detail)}</p>'
                f"{also}<p><b>The same trace with every switch off:</b> {_e(f.baseline)}.</p>")
        parts.append(
            f'<div class="finding" id="{_e(f.id)}"><h3>{_e(f.id)}: {_e(f.title)} {badge}</h3>'
            f'<p>Breaks <a href="#{_e(f.invariant)}">{_e(f.invariant)}</a> with the switch '
            f"<code>{_e(f.switches)}</code>.</p>"
            f"<p><b>Reading:</b> {_e(f.source)}<br><b>Later draft:</b> {_e(f.later)}</p>"
            f"{body}</div>")
    return ('<section id="findings"><h2>Findings F1-F12</h2>'
            "<p>Each finding is a literal reading of draft-00 (a switch of the model) under "
            "which a named invariant fails; the model searches for it and shrinks the trace "
            "(docs/FINDINGS.md; <code>mlsvc model explore --finding F..</code>).</p>"
            + "".join(parts) + "</section>")


def _profile(r: Report) -> str:
    if not r.profile:
        return ('<section id="profile"><h2>Profile decisions</h2>'
                "<p>docs/PROFILE.md is missing.</p></section>")
    rows = "".join(
        f'<tr id="{_e(p.id)}"><td class="id">{_e(p.id)}</td><td>{_md(p.decision)}</td>'
        f"<td>{_md(p.implemented)}</td><td>{_md(p.modeled)}</td><td>{_md(p.open)}</td></tr>"
        for p in r.profile)
    return ('<section id="profile"><h2>Profile decisions</h2>'
            "<p>How this project reads the gaps of draft-00 (decisions P, precisions Q), and "
            "where each is implemented, modeled or proved (from docs/PROFILE.md).</p>"
            "<table><thead><tr><th>ID</th><th>decision</th><th>implemented</th>"
            "<th>modeled / proved</th><th>open</th></tr></thead><tbody>" + rows
            + "</tbody></table></section>")


def _mutation(r: Report) -> str:
    m = r.mutation
    if m.score is None:
        body = (f"<p>{_badge('not measured', 'na')} {_e(m.source)}. "
                "<code>make mutation</code> measures it (docs/MUTATION.md).</p>")
    else:
        lines = "".join(f"<li>{_md(x)}</li>" for x in m.lines)
        body = (f"<p>{_badge(m.score, 'ok')} as stated in {_e(m.source)} (the figures of the "
                f"last <code>make mutation</code> run, not measured by this report):</p>"
                f"<ul>{lines}</ul>")
    return f'<section id="mutation"><h2>Mutation score</h2>{body}</section>'


def _diagrams() -> str:
    return ('<section id="diagrams"><h2>Lifecycle and derivation diagrams</h2>'
            '<figure><img src="lifecycle.svg" width="1120" height="600" '
            'alt="State diagram of an emulator client\'s lifecycle">'
            "<figcaption>An emulator client's lifecycle: it joins the emulation group by "
            "creating it, by a Welcome carrying a NewEmulatorClientState, or by an external "
            "commit with a ResyncMessage; it then acts for the virtual client in any order; "
            "the removal procedure ends it (draft-00 §4, §5; docs/VIRTUAL_CLIENTS.md)."
            "</figcaption></figure>"
            '<figure><img src="derivation.svg" width="1180" height="780" '
            'alt="Derivation chain of one operation\'s keys">'
            "<figcaption>One operation's derivation chain: from the emulation epoch's secret "
            "through the Safe Exporter to the four epoch secrets, the PPRF evaluated at the "
            "HashInput, the operation secret, its sub-secrets and the keys, and the "
            "DerivationInfo that lets every sibling re-derive them (draft-00 §5.2, §5.3)."
            "</figcaption></figure></section>")


def _costs(r: Report) -> str:
    if not r.plots:
        return ('<section id="costs"><h2>Cost study (draft-00 §8)</h2><p>No plots in '
                "docs/costs/ (<code>make study</code> writes them).</p></section>")
    figs = "".join(
        f'<figure id="plot-{_e(p.stem)}"><a href="costs/{_e(p.name)}"><img '
        f'src="costs/{_e(p.name)}" alt="cost study: {_e(p.stem)}"></a><figcaption>'
        f"docs/costs/{_e(p.name)} (data: docs/costs/{_e(p.stem)}.csv; the image links to "
        "itself at full size)</figcaption></figure>" for p in r.plots)
    return ('<section id="costs"><h2>Cost study (draft-00 §8)</h2>'
            "<p>Virtual clients against the plain multi-client alternative, U users with D "
            "devices each (<code>mlsvc study costs</code>; the measured tables beside the "
            f"draft's claims are in docs/COSTS.md).</p><div class=\"plots\">{figs}</div>"
            "</section>")


def render(r: Report) -> str:
    toc = "".join(f'<li><a href="#{a}">{_e(t)}</a></li>' for a, t in _sections())
    mode = "quick mode" if r.quick else "full run"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>mlsvc audit report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<header><h1>mlsvc audit report</h1>"
        "<p>MLS (RFC 9420) and the virtual clients of draft-ietf-mls-virtual-clients-00: "
        f"the model, the proofs, the vectors, the checks and the findings ({mode}).</p>"
        "</header><main>"
        f'<nav id="toc"><h2>Contents</h2><ol>{toc}</ol></nav>'
        + _summary(r) + _invariants(r) + _obligations(r) + _vectors(r) + _checks(r)
        + _findings(r) + _profile(r) + _mutation(r) + _diagrams() + _costs(r)
        + "</main></body></html>\n"
    )


def write(r: Report, out: Path) -> Path:
    """DIR/index.html, DIR/lifecycle.svg, DIR/derivation.svg, DIR/costs/*.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "lifecycle.svg").write_text(lifecycle_svg())
    (out / "derivation.svg").write_text(derivation_svg())
    if r.plots:
        (out / "costs").mkdir(exist_ok=True)
        for p in r.plots:
            shutil.copyfile(p, out / "costs" / p.name)
    index = out / "index.html"
    index.write_text(render(r))
    return index


def build(out: Path, quick: bool = False, workers: int | None = None,
          progress: Callable[[str], None] | None = None, timeout: float | None = None) -> Report:
    """Collect, then write the page; returns what was collected."""
    if progress:
        progress("collecting (quick)" if quick else
                 "collecting: model, findings, vectors and Z3 obligations in worker processes")
    r = collect(quick, workers, timeout)
    write(r, out)
    return r


def summary_lines(r: Report) -> Iterable[str]:
    """What `mlsvc report` prints after writing the page."""
    def n(rows: Sequence[Any], pred: Callable[[Any], bool]) -> int:
        return sum(1 for x in rows if pred(x))

    yield (f"invariants: {n(r.invariants, lambda i: i.model == 'holds')} of "
           f"{len(r.invariants)} hold" if r.model.ran else f"invariants: {QUICK}")
    yield f"refinement: {r.refinement}"
    yield (f"obligations: {n(r.obligations, lambda o: bool(o.ok))} of {len(r.obligations)} "
           "as expected" if any(o.ok is not None for o in r.obligations)
           else f"obligations: {QUICK}")
    yield (f"vectors: {len(r.vectors)} files, {sum(v.cases for v in r.vectors)} cases, "
           f"{n(r.vectors, lambda v: v.ran)} files run, "
           f"{sum(v.failed for v in r.vectors)} failed")
    yield f"checks: {n(r.checks, lambda c: bool(c.tests))} of {len(r.checks)} fired by a test"
    yield (f"findings: {n(r.findings, lambda f: f.reproduced)} of {len(r.findings)} "
           "reproduced" if any(f.ran for f in r.findings) else f"findings: {QUICK}")
    yield f"mutation score: {r.mutation.score or 'not measured'}"

