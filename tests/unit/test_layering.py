"""The import direction of ARCHITECTURE.md, checked over the sources:

    errors, codec, types -> crypto -> schedule, tree.math, tree.secret_tree
      -> messages -> tree (ratchet tree, TreeKEM) -> group -> ext -> vc

with `conformance` and `cli` on top. RFC 9420 code never imports draft code (ext, vc);
`model` imports neither impl nor cryptography; `proofs` imports only the model and z3;
only `mlsvc.crypto` imports `cryptography`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

IMPL = ROOT / "impl" / "mlsvc"

LAYERS: list[tuple[str, ...]] = [
    ("mlsvc.errors", "mlsvc.codec", "mlsvc.types", "mlsvc.checks", "mlsvc.store"),
    ("mlsvc.crypto",),
    ("mlsvc.schedule", "mlsvc.tree.math", "mlsvc.tree.secret_tree"),
    ("mlsvc.messages",),
    ("mlsvc.tree",),
    ("mlsvc.group",),
    ("mlsvc.ext",),
    ("mlsvc.vc",),
    ("mlsvc.conformance", "mlsvc.cli", "mlsvc.ds", "mlsvc.peers", "mlsvc"),
]


def layer_of(module: str) -> int:
    best, best_len = len(LAYERS) - 1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def module_name(path: Path, root: Path, package: str) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


MODEL_USERS = ("mlsvc.cli", "mlsvc.report")
"""The command line and the audit report (which shows the model's and the proofs'
verdicts) are the only impl modules that reach the model and the proofs."""


def test_no_hidden_imports() -> None:
    """A dynamic import would hide an edge from the scan below: only the modules allowed
    to reach the model and the proofs may import by name at run time."""
    dynamic = re.compile(r"import_module\(\s*f?[\"']mlsvc_(model|proofs|refine)")
    offenders = [module_name(p, IMPL, "mlsvc") for p in IMPL.rglob("*.py")
                 if dynamic.search(p.read_text())
                 and module_name(p, IMPL, "mlsvc") not in MODEL_USERS]
    assert not offenders, offenders


def test_impl_imports_only_downward() -> None:
    problems = []
    for path in IMPL.rglob("*.py"):
        me = module_name(path, IMPL, "mlsvc")
        for target in imports(path):
            if target.startswith("mlsvc_model") or target.startswith("mlsvc_proofs"):
                if me not in MODEL_USERS:
                    problems.append(f"{me} imports {target}")
                continue
            if not target.startswith("mlsvc"):
                if target.startswith("cryptography") and not me.startswith("mlsvc.crypto"):
                    problems.append(f"{me} imports {target} (only mlsvc.crypto may)")
                continue
            if layer_of(target) > layer_of(me):
                problems.append(f"{me} (layer {layer_of(me)}) imports {target} "
                                f"(layer {layer_of(target)})")
    assert not problems, "\n".join(sorted(problems))


def test_rfc_code_never_imports_draft_code() -> None:
    rfc = [p for p in IMPL.rglob("*.py")
           if layer_of(module_name(p, IMPL, "mlsvc")) <= layer_of("mlsvc.group")]
    assert len(rfc) > 20
    bad = [f"{p.name}: {t}" for p in rfc for t in imports(p)
           if t.startswith(("mlsvc.ext", "mlsvc.vc"))]
    assert not bad


def test_model_and_proofs_stay_apart() -> None:
    for path in (ROOT / "model").rglob("*.py"):
        for t in imports(path):
            assert not t.startswith(("mlsvc.", "cryptography", "mlsvc_proofs")) and t != "mlsvc", (
                f"{path}: model imports {t}")
    for path in (ROOT / "proofs").rglob("*.py"):
        for t in imports(path):
            assert not t.startswith(("mlsvc.", "cryptography")) and t != "mlsvc", (
                f"{path}: proofs imports {t}")


def test_the_refinement_bridge_is_where_model_and_impl_meet() -> None:
    """refine/ (mlsvc_refine) checks the implementation against the model, so it imports
    both; only the command line reaches it, and the model never does (issue 13)."""
    bridge = [t for p in (ROOT / "refine").rglob("*.py") for t in imports(p)]
    assert any(t.startswith("mlsvc_model") for t in bridge)
    assert any(t.startswith("mlsvc.") for t in bridge)
    users = sorted({module_name(p, IMPL, "mlsvc") for p in IMPL.rglob("*.py")
                    if any(t.startswith("mlsvc_refine") for t in imports(p))})
    assert users == ["mlsvc.cli"], users  # mlsvc.report loads it by name (below)
    for path in [*(ROOT / "model").rglob("*.py"), *(ROOT / "proofs").rglob("*.py")]:
        assert not any(t.startswith("mlsvc_refine") for t in imports(path)), path
