"""Runner for tree-validation.json (RFC 9420 §4.1.1, §7.8, §7.9.2; upstream README
"Tree Validation").

For each tree (a serialized `ratchet_tree` extension payload): the resolution and
the tree hash of every node, parent-hash validity of every non-blank parent (as when
joining, §12.4.3.1) and the signature of every leaf with the given group_id (§7.3).
"""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import NodeIndex


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_nodes(cs, RatchetTreeExtension.decode(h(case["tree"])).nodes)
    expect("node count", tree.node_width, len(case["tree_hashes"]))
    expect("resolution count", tree.node_width, len(case["resolutions"]))
    for x in range(tree.node_width):
        expect(f"resolution({x})", tree.resolution(NodeIndex(x)), case["resolutions"][x])
        expect(f"tree hash({x})", tree.node_tree_hash(NodeIndex(x)), h(case["tree_hashes"][x]))
    if not tree.verify_parent_hashes():
        raise Mismatch("parent hashes: the tree is not parent-hash valid")
    tree.validate()
    bad = tree.invalid_leaf_signatures(h(case["group_id"]))
    expect("leaves with an invalid signature", bad, [])


def run(cases: list[Case]) -> FileResult:
    return run_cases("tree-validation", cases, _check)
