"""`make mutation`: mutation testing (mutmut 3) of every module of mlsvc.vc, mlsvc.ext and
mlsvc.ds, outside the default test run.

Theory of operation. mutmut 3 copies the code it mutates into `mutants/` and puts
`mutants/src` first on sys.path, so the tests must import the mutated copy rather than
the editable install of `impl/`. This driver therefore stages a private tree,
build/mutation/, laid out the way mutmut expects:

    build/mutation/src/mlsvc   a copy of impl/mlsvc (every module, so imports resolve)
    build/mutation/tests       a copy of tests/
    build/mutation/vectors     -> vectors/ (the tests read pinned vectors)
    build/mutation/docs        -> docs/ (some tests read docs/)
    build/mutation/pyproject.toml   mutmut and pytest settings written below

and runs `mutmut run` there. The working tree is never mutated, so people editing it
meanwhile are not disturbed; the copy is the working tree of the run's start. MUTATE
names the folders (`vc/*.py`, ...), so a module added to them later is mutated too.

Only the test files in TESTS run, and for each mutant mutmut runs only the tests that
called the mutated function during its stats pass. The score counts a mutant as dealt
with when a test kills it, when it times out (an infinite loop is detected), when
`mypy --strict` (part of `make check`) rejects it, and when
docs/MUTATION.md argues it equivalent (a row "| `name` | equivalent | why |"), and a
mutant that only changes the text of an error message is left out (message_text_mutants):

    score = (killed + timeout + caught by mypy --strict)
            / (all mutants - equivalent - message text)

printed for vc, ext and ds together and for each, with the score over the mutants
reached so far while a run is incomplete.

Usage: python tools/mutation.py [--fresh] [--max-children N] [--list] [--pending]
        [--recheck] [--only PATTERN ...] [--survivors FILE]

mutmut keeps its results in build/mutation/mutants: a second run only tests mutants of
functions that changed. After adding tests, `--recheck` runs the undetected mutants again.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "mutation"
VENV_BIN = Path(sys.executable).parent

# The files whose mutants count (paths inside the staged src/): every module of the
# draft's packages vc/, ext/ and ds/, including modules added to them later.
MUTATE = [
    "src/mlsvc/vc/*.py",
    "src/mlsvc/ext/*.py",
    "src/mlsvc/ds/*.py",
]

# The packages the score is printed for, one line each (module prefixes).
PACKAGES = ["mlsvc.vc", "mlsvc.ext", "mlsvc.ds"]

# The test files mutmut runs (each mutant runs only those of their tests that called the
# mutated function in the stats pass): the fast unit tests of vc/, ext/ and ds/, the PPRF
# properties and the vc and extension vectors. Left out: the interop peers, the Z3
# proofs, the stateful machines, and the long simulations (test_vc_simulate.py,
# test_vc_soak_short.py; test_vc_crash.py runs its scenario in a subprocess, which would
# import the unmutated package). Changing this list makes mutmut start over (its
# test-selection fingerprint), so tests are added to the files already listed.
TESTS = [
    "tests/unit/test_ff1.py",
    "tests/unit/test_ff1_reference.py",
    "tests/unit/test_reuse_guard.py",
    "tests/unit/test_reuse_guard_in_group.py",
    "tests/unit/test_generation_id.py",
    "tests/unit/test_vc_actions.py",
    "tests/unit/test_vc_checks.py",
    "tests/unit/test_vc_derivation.py",
    "tests/unit/test_vc_emulator.py",
    "tests/unit/test_vc_epoch.py",
    "tests/unit/test_vc_lifecycle.py",
    "tests/unit/test_vc_operation.py",
    "tests/unit/test_ext_app_data_update.py",
    "tests/unit/test_ext_components.py",
    "tests/unit/test_ext_engine.py",
    "tests/unit/test_ext_groups.py",
    "tests/unit/test_ext_pprf.py",
    "tests/unit/test_ext_reference.py",
    "tests/unit/test_ext_safe_aad.py",
    "tests/unit/test_ext_safe_export.py",
    "tests/unit/test_ext_edges.py",
    "tests/unit/test_ext_custom_codepoints.py",
    "tests/unit/test_ds.py",
    "tests/unit/test_ds_directory.py",
    "tests/unit/test_ds_faults.py",
    "tests/unit/test_ds_persist.py",
    "tests/unit/test_ds_properties.py",
    "tests/unit/test_ds_store.py",
    "tests/unit/test_mutation_vc.py",
    "tests/unit/test_mutation_ext.py",
    "tests/unit/test_mutation_ds.py",
    "tests/unit/test_vc_readings.py",
    "tests/unit/test_profiles.py",
    "tests/unit/test_operation_tree.py",
    "tests/unit/test_vc_latest.py",
    "tests/unit/test_vc_latest_state.py",
    "tests/vectors/test_vc01_vectors.py",
    "tests/properties/test_pprf.py",
    "tests/vectors/test_extensions_vectors.py",
    "tests/vectors/test_vc_vectors.py",
]

# Every pytest run's options, and the tests left out of the mutation run (both run in
# `make test`): the DS's layering test reads the imports of the modules beside mlsvc.ds,
# which in mutmut's copy import mutmut itself (it tests the layering, not behaviour);
# FF1's 10^5-input comparison of the fast path with the general algorithm takes 12 s of
# the 15 s of test_ff1.py and would run for every FF1 mutant that survives its first
# tests; the 2,000-input comparisons beside it (encrypt and decrypt) stay.
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--deselect", "tests/unit/test_ds.py::test_ds_imports_no_group_engine_or_draft_code",
               "--deselect", "tests/unit/test_ff1.py::test_fast_path_matches_general_1e5"]

# The type check mutmut runs once over every mutant (from build/mutation/mutants).
# (the word "mypy" must stand alone: mutmut picks its parser by it; PATH finds the venv's)
TYPE_CHECK = ["mypy", "--strict", "--python-version", "3.11",
              "--no-warn-unused-ignores", "--output", "json",
              "--cache-dir", "../mypy-cache", *[m.replace("*.py", "") for m in MUTATE]]

# Statuses (mutmut's names) that count as detected.
DETECTED = {"killed", "timeout", "caught by type check"}

EQUIVALENT_ROW = re.compile(r"^\|\s*`(mlsvc\.[^`]+)`\s*\|\s*equivalent\s*\|", re.MULTILINE)

# mutmut's exit-code table (mutmut.stats.status_by_exit_code), read from the .meta files.
STATUS_BY_EXIT_CODE = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 2: "interrupted",
    34: "skipped", 35: "suspicious", 36: "timeout", 37: "caught by type check",
    -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault",
    -9: "segfault",
}


def _sync_tree(src: Path, dst: Path, *, suffixes: tuple[str, ...] | None = None) -> None:
    """Make dst a copy of src (skipping caches), keeping modification times, so that
    mutmut regenerates the mutants of a file only when that file changed."""
    wanted: set[Path] = set()
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.is_dir():
            continue
        if suffixes is not None and path.suffix not in suffixes:
            continue
        wanted.add(rel)
        target = dst / rel
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    if dst.exists():
        for path in dst.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and (
                path.relative_to(dst) not in wanted
            ):
                path.unlink()


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def stage() -> None:
    STAGE.mkdir(parents=True, exist_ok=True)
    _sync_tree(ROOT / "impl" / "mlsvc", STAGE / "src" / "mlsvc", suffixes=(".py", ".typed"))
    _sync_tree(ROOT / "tests", STAGE / "tests", suffixes=(".py",))
    for shared in ("vectors", "docs"):  # read by the tests (pinned vectors, VALIDATION.md)
        link = STAGE / shared
        if not link.exists():
            link.symlink_to(ROOT / shared)
    # mutmut regenerates a module's mutants only when the source is newer than its copy in
    # mutants/; a module an earlier, narrower scope copied without mutating (no .meta
    # beside it) would be taken as already done, so its copy goes.
    for source in (STAGE / "src").rglob("*.py"):
        rel = str(source.relative_to(STAGE))
        copy = STAGE / "mutants" / rel
        if any(fnmatch.fnmatch(rel, pattern) for pattern in MUTATE) and copy.exists() and (
            not copy.with_name(copy.name + ".meta").exists()
        ):
            copy.unlink()
    tests = [t for t in TESTS if (ROOT / t).exists()]
    config = f"""\
# Written by tools/mutation.py; edit that file, not this one.
[tool.mutmut]
source_paths = ["src/mlsvc"]
only_mutate = {_toml_list(MUTATE)}
also_copy = ["vectors", "docs"]
pytest_add_cli_args = {_toml_list(PYTEST_ARGS)}
pytest_add_cli_args_test_selection = {_toml_list(tests)}
use_git_change_detection = false
# mypy --strict is part of `make check`: a mutant it rejects is caught by the project
type_check_command = {_toml_list(TYPE_CHECK)}

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-m 'not slow'"
markers = ["slow: longer runs, excluded from the default suite"]
"""
    path = STAGE / "pyproject.toml"
    if not path.exists() or path.read_text() != config:
        path.write_text(config)


def results() -> dict[str, str]:
    """Mutant name -> status, from mutmut's per-file .meta records."""
    out: dict[str, str] = {}
    for meta in sorted((STAGE / "mutants" / "src").rglob("*.py.meta")):
        source = str(meta.relative_to(STAGE / "mutants"))[: -len(".meta")]
        if not any(fnmatch.fnmatch(source, pattern) for pattern in MUTATE):
            continue  # a file an earlier scope mutated
        try:
            data = json.loads(meta.read_text())
        except json.JSONDecodeError:  # being written by a running mutmut
            continue
        for name, code in data.get("exit_code_by_key", {}).items():
            out[name] = STATUS_BY_EXIT_CODE.get(code, "not checked" if code is None
                                                else "suspicious")
    return out


_MESSAGE_CALLS = ("fail", "warn")


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _is_message_call(node: ast.AST, error_init: bool) -> bool:
    """A call whose arguments (after fail's check ID) are human-readable text: fail(check_id,
    detail), an exception constructor (SomethingError(...)), or, inside an exception's
    __init__, super().__init__(...)."""
    if not isinstance(node, ast.Call):
        return False
    name = _call_name(node)
    return name in _MESSAGE_CALLS or name.endswith("Error") or (error_init and name == "__init__")


def _is_message_text(node: ast.AST, parent: ast.AST | None, error_init: bool) -> bool:
    """Whether `node` is the text of a message: an argument of a message call other than
    fail's check ID (and the call's function itself), or, inside an exception's __init__,
    the value assigned to self.args."""
    if parent is None:
        return False
    if _is_message_call(parent, error_init):
        assert isinstance(parent, ast.Call)
        if node is parent.func:
            return False
        return not (_call_name(parent) == "fail" and parent.args and node is parent.args[0])
    if error_init and isinstance(parent, ast.Assign) and node is parent.value:
        return any(isinstance(t, ast.Attribute) and t.attr == "args" for t in parent.targets)
    return False


def _message_only(orig: ast.AST, mutant: ast.AST, parent: ast.AST | None = None,
                  error_init: bool = False) -> bool:
    """Whether the two trees differ only inside message text (see _is_message_text)."""
    if _is_message_text(orig, parent, error_init):
        return True
    if type(orig) is not type(mutant):
        return False
    fields_o, fields_m = list(ast.iter_fields(orig)), list(ast.iter_fields(mutant))
    if [f for f, _ in fields_o] != [f for f, _ in fields_m]:
        return False
    for (_, a), (_, b) in zip(fields_o, fields_m, strict=True):
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            for x, y in zip(a, b, strict=True):
                if isinstance(x, ast.AST) and isinstance(y, ast.AST):
                    if not _message_only(x, y, orig, error_init):
                        return False
                elif x != y:
                    return False
        elif isinstance(a, ast.AST) and isinstance(b, ast.AST):
            if not _message_only(a, b, orig, error_init):
                return False
        elif a != b:
            return False
    return True


def message_text_mutants(names: list[str]) -> set[str]:
    """The mutants among `names` that change only the wording of an error message (the
    detail of fail(check_id, detail) or an exception's text): the check ID and the
    exception class, which callers and tests rely on, are unchanged."""
    out: set[str] = set()
    for name in names:
        module, func = name.rsplit(".", 1)
        defs = _functions(module)
        base = func.rsplit("__mutmut_", 1)[0]
        orig, mutant = defs.get(base + "__mutmut_orig"), defs.get(func)
        if orig is None or mutant is None:
            continue
        o, m = ast.Module(orig.body, []), ast.Module(mutant.body, [])
        if _message_only(o, m, None, error_init="Errorǁ__init__" in func):
            out.add(name)
    return out


_DEFS: dict[str, dict[str, ast.FunctionDef]] = {}


def _functions(module: str) -> dict[str, ast.FunctionDef]:
    """The function definitions of a mutated module, by name (parsed once)."""
    if module not in _DEFS:
        path = STAGE / "mutants" / "src" / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text()) if path.exists() else ast.Module([], [])
        _DEFS[module] = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    return _DEFS[module]


def mutant_diff(name: str) -> str:
    """The changed lines of a mutant, as `old -> new` (from mutmut's mutated module)."""
    module, func = name.rsplit(".", 1)
    defs = _functions(module)
    base = func.rsplit("__mutmut_", 1)[0]
    orig, mutant = defs.get(base + "__mutmut_orig"), defs.get(func)
    if orig is None or mutant is None:
        return "?"
    a = ast.unparse(ast.Module(orig.body, [])).splitlines()
    b = ast.unparse(ast.Module(mutant.body, [])).splitlines()
    old = [x.strip() for x in a if x not in b]
    new = [x.strip() for x in b if x not in a]
    return f"{' / '.join(old)} -> {' / '.join(new) or '(removed)'}"


def equivalent_mutants() -> set[str]:
    doc = ROOT / "docs" / "MUTATION.md"
    return set(EQUIVALENT_ROW.findall(doc.read_text())) if doc.exists() else set()


def _summary(statuses: dict[str, str], equivalent: set[str]) -> tuple[int, int, int, int,
                                                                     int, list[str]]:
    """(total, detected, message text, argued equivalent, denominator, open) of a set of
    mutants."""
    total = len(statuses)
    detected = sum(1 for s in statuses.values() if s in DETECTED)
    undetected = [n for n, s in statuses.items() if s not in DETECTED]
    messages = message_text_mutants(undetected)
    argued = sum(1 for n in undetected if n in equivalent and n not in messages)
    open_ = sorted(n for n in undetected if n not in equivalent and n not in messages)
    return total, detected, len(messages), argued, total - argued - len(messages), open_


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0


def report(statuses: dict[str, str]) -> float:
    equivalent = equivalent_mutants()
    unknown = sorted(equivalent - statuses.keys())
    counts = Counter(statuses.values())
    total, detected, messages, argued, denominator, open_ = _summary(statuses, equivalent)
    score = _percent(detected, denominator)
    print()
    print("mutation testing: " + ", ".join(MUTATE))
    print(f"  mutants {total}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"  equivalent (argued one by one in docs/MUTATION.md): {argued}")
    print(f"  message text only (error wording; check ID and exception class unchanged; "
          f"docs/MUTATION.md): {messages}")
    if unknown:
        print(f"  docs/MUTATION.md names {len(unknown)} mutants that no longer exist:")
        for name in unknown:
            print(f"    {name}")
    reached = [n for n in open_ if statuses[n] != "not checked"]
    if reached:
        print(f"  not detected and not argued equivalent: {len(reached)}")
        for name in reached:
            print(f"    {name}: {statuses[name]}")
    waiting = Counter(n.split(".x", 1)[0] for n in open_ if statuses[n] == "not checked")
    if waiting:
        print(f"  not reached yet (--pending runs them): {sum(waiting.values())}: "
              + ", ".join(f"{m} {k}" for m, k in sorted(waiting.items())))
    for package in PACKAGES:
        part = {n: st for n, st in statuses.items() if n.startswith(package + ".")}
        p_total, p_detected, p_messages, p_argued, p_denominator, p_open = _summary(
            part, equivalent)
        p_waiting = sum(1 for n in p_open if part[n] == "not checked")
        print(f"  {package}: {_percent(p_detected, p_denominator):.1f}% ({p_detected} of "
              f"{p_denominator}; mutants {p_total}, message text {p_messages}, equivalent "
              f"{p_argued}, undetected {len(p_open) - p_waiting}, not reached {p_waiting}; "
              f"over those reached {_percent(p_detected, p_denominator - p_waiting):.1f}%)")
    print(f"mutation score: {score:.1f}% ({detected} of {denominator} non-equivalent mutants "
          "killed)")
    if waiting:
        reached_total = denominator - sum(waiting.values())
        print(f"  over the mutants reached so far: {_percent(detected, reached_total):.1f}% "
              f"({detected} of {reached_total}; {sum(waiting.values())} not reached yet)")
    print(f"  raw score (every mutant counted): {_percent(detected, total):.1f}% "
          f"({detected} of {total})")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fresh", action="store_true", help="discard earlier mutmut results")
    parser.add_argument("--max-children", type=int, default=None)
    parser.add_argument("--list", action="store_true", help="report the last run only")
    parser.add_argument("--pending", action="store_true",
                        help="run, by name, only the mutants the last run did not reach, "
                             "leaving out message-text mutants (they do not count)")
    parser.add_argument("--recheck", action="store_true",
                        help="run again, against the current tests, the mutants the last run "
                             "left undetected (neither message text nor argued equivalent)")
    parser.add_argument("--only", nargs="+", default=None, metavar="PATTERN",
                        help="run only the mutants whose names match these globs (e.g. "
                             "'mlsvc.ds.faults.*'); they are run again even when they have "
                             "a result")
    parser.add_argument("--goal", type=float, default=90.0)
    parser.add_argument("--survivors", type=Path, default=None,
                        help="write the undetected mutants (name, status, kind) here")
    args = parser.parse_args(argv)
    if not args.list:
        if args.fresh:
            shutil.rmtree(STAGE / "mutants", ignore_errors=True)
        stage()
        env = dict(os.environ, HYPOTHESIS_PROFILE="ci",
                   MYPYPATH=f"{ROOT / 'stubs'}:src",
                   PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [str(VENV_BIN / "mutmut"), "run"]
        if args.max_children:
            cmd += ["--max-children", str(args.max_children)]
        if args.recheck or args.pending:
            statuses = results()
            undetected = [n for n, st in statuses.items() if st not in DETECTED]
            skip = message_text_mutants(undetected) | equivalent_mutants()
            names = sorted(n for n in undetected if n not in skip and (
                (statuses[n] == "not checked") == args.pending))
            if not names:
                print("nothing to run")
                return 0 if report(statuses) >= args.goal else 1
            cmd += names
        elif args.only:
            cmd += args.only
        done = subprocess.run(cmd, cwd=STAGE, env=env, check=False)
        if done.returncode != 0:
            print(f"mutmut run exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    statuses = results()
    score = report(statuses)
    if args.survivors is not None:
        undetected = sorted(n for n, st in statuses.items() if st not in DETECTED)
        messages = message_text_mutants(undetected)
        equivalent = equivalent_mutants()
        args.survivors.write_text("".join(
            f"{n}\t{statuses[n]}\t"
            f"{'message' if n in messages else 'equivalent' if n in equivalent else 'open'}"
            f"\t{mutant_diff(n)}\n"
            for n in undetected))
    return 0 if score >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
