"""Runner for tree-math.json (RFC 9420 Appendix C)."""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, expect, run_cases
from mlsvc.tree import math as tm
from mlsvc.types import LeafCount, NodeIndex


def _check(case: Case) -> None:
    n = LeafCount(case["n_leaves"])
    expect("n_nodes", tm.node_width(n), case["n_nodes"])
    expect("root", tm.root(n), case["root"])
    r = tm.root(n)
    for x in range(tm.node_width(n)):
        node = NodeIndex(x)
        leaf = tm.level(node) == 0
        expect(f"left[{x}]", None if leaf else tm.left(node), case["left"][x])
        expect(f"right[{x}]", None if leaf else tm.right(node), case["right"][x])
        expect(f"parent[{x}]", None if x == r else tm.parent(node, n), case["parent"][x])
        expect(f"sibling[{x}]", None if x == r else tm.sibling(node, n), case["sibling"][x])


def run(cases: list[Case]) -> FileResult:
    return run_cases("tree-math", cases, _check, suite_key=None)
