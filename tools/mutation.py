"""`make mutation`: mutation testing (mutmut 3) of the reuse-guard primitives, the
mls-extensions pieces and group validation, outside the default test run.

Theory of operation. mutmut 3 copies the code it mutates into `mutants/` and puts
`mutants/src` first on sys.path, so the tests must import the mutated copy rather than
the editable install of `impl/`. This driver therefore stages a private tree,
build/mutation/, laid out the way mutmut expects:

    build/mutation/src/mlsvc   a copy of impl/mlsvc (every module, so imports resolve)
    build/mutation/tests       a copy of tests/
    build/mutation/vectors     -> vectors/ (the tests read pinned vectors)
    build/mutation/pyproject.toml   mutmut and pytest settings written below

and runs `mutmut run` there. The working tree is never mutated, so people editing it
meanwhile are not disturbed, and files added to impl/mlsvc/vc later are copied but not
mutated: MUTATE names the files, not the folders that hold them.

Only the test files in TESTS run, and for each mutant mutmut runs only the tests that
called the mutated function during its stats pass. The score counts a mutant as dealt
with when a test kills it, when it times out (an infinite loop is detected), when
`mypy --strict` (part of `make check`) rejects it, and when
docs/MUTATION.md argues it equivalent (a row "| `name` | equivalent | why |"):

    score = (killed + timeout + caught by mypy --strict) / (all mutants - equivalent)

Usage: python tools/mutation.py [--fresh] [--max-children N] [--list]
"""

from __future__ import annotations

import argparse
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

# The files whose mutants count (paths inside the staged src/). Files that others add
# to impl/mlsvc/vc are deliberately not matched.
MUTATE = [
    "src/mlsvc/vc/ff1.py",
    "src/mlsvc/vc/reuse_guard.py",
    "src/mlsvc/vc/generation_id.py",
    "src/mlsvc/vc/codepoints.py",
    "src/mlsvc/ext/*.py",
    "src/mlsvc/group/validation.py",
]

# The tests that exercise those files; the rest of the suite is not run per mutant.
TESTS = [
    "tests/unit/test_ff1.py",
    "tests/unit/test_ff1_reference.py",
    "tests/unit/test_reuse_guard.py",
    "tests/unit/test_reuse_guard_in_group.py",
    "tests/unit/test_generation_id.py",
    "tests/unit/test_ext_app_data_update.py",
    "tests/unit/test_ext_components.py",
    "tests/unit/test_ext_engine.py",
    "tests/unit/test_ext_groups.py",
    "tests/unit/test_ext_pprf.py",
    "tests/unit/test_ext_reference.py",
    "tests/unit/test_ext_safe_aad.py",
    "tests/unit/test_ext_safe_export.py",
    "tests/unit/test_ext_edges.py",
    "tests/unit/test_validation_commits.py",
    "tests/unit/test_validation_external_commits.py",
    "tests/unit/test_validation_key_packages.py",
    "tests/unit/test_validation_leaf_nodes.py",
    "tests/unit/test_validation_messages.py",
    "tests/unit/test_validation_proposal_lists.py",
    "tests/unit/test_validation_welcome.py",
    "tests/unit/test_validation_bounds.py",
    "tests/unit/test_validation_cred_types.py",
    "tests/properties/test_pprf.py",
    "tests/vectors/test_extensions_vectors.py",
]

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
    vectors = STAGE / "vectors"
    if not vectors.exists():
        vectors.symlink_to(ROOT / "vectors")
    tests = [t for t in TESTS if (ROOT / t).exists()]
    config = f"""\
# Written by tools/mutation.py; edit that file, not this one.
[tool.mutmut]
source_paths = ["src/mlsvc"]
only_mutate = {_toml_list(MUTATE)}
also_copy = ["vectors"]
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
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
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            out[name] = STATUS_BY_EXIT_CODE.get(code, "not checked" if code is None
                                                else "suspicious")
    return out


def equivalent_mutants() -> set[str]:
    doc = ROOT / "docs" / "MUTATION.md"
    return set(EQUIVALENT_ROW.findall(doc.read_text())) if doc.exists() else set()


def report(statuses: dict[str, str]) -> float:
    equivalent = equivalent_mutants()
    unknown = sorted(equivalent - statuses.keys())
    counts = Counter(statuses.values())
    total = len(statuses)
    detected = sum(1 for s in statuses.values() if s in DETECTED)
    argued = sum(1 for n, s in statuses.items() if n in equivalent and s not in DETECTED)
    open_ = sorted(n for n, s in statuses.items() if s not in DETECTED and n not in equivalent)
    denominator = total - argued
    score = 100.0 * detected / denominator if denominator else 100.0
    print()
    print("mutation testing: " + ", ".join(MUTATE))
    print(f"  mutants {total}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"  equivalent (argued in docs/MUTATION.md): {argued}")
    if unknown:
        print(f"  docs/MUTATION.md names {len(unknown)} mutants that no longer exist:")
        for name in unknown:
            print(f"    {name}")
    if open_:
        print(f"  not detected and not argued equivalent: {len(open_)}")
        for name in open_:
            print(f"    {name}: {statuses[name]}")
    print(f"mutation score: {score:.1f}% ({detected} of {denominator} non-equivalent mutants "
          "killed)")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fresh", action="store_true", help="discard earlier mutmut results")
    parser.add_argument("--max-children", type=int, default=None)
    parser.add_argument("--list", action="store_true", help="report the last run only")
    parser.add_argument("--goal", type=float, default=95.0)
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
        done = subprocess.run(cmd, cwd=STAGE, env=env, check=False)
        if done.returncode != 0:
            print(f"mutmut run exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    score = report(results())
    return 0 if score >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
