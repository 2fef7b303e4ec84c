"""Tree-shape rules the interop harness evaluates itself (independently of every engine's
tree code), to tell an engine's deviation from the RFC apart from a bug on our side.

Node indices follow RFC 9420 Appendix C (leaf i at node 2i, complete trees of 2^k
leaves). `rfc_unmerged_problems` states the §12.4.3.1 rule on `unmerged_leaves`;
`ts_mls_rejects_unmerged` states the stricter rule ts-mls 1.6.4 applies when joining
(docs/INTEROP.md D3), so a harness can predict that rejection instead of failing on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlsvc.messages.leaf_node import ParentNode


def _level(x: int) -> int:
    """Appendix C: the number of trailing one bits."""
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def _parent_step(x: int) -> int:
    """Appendix C: the parent of x in the infinite complete tree."""
    k = _level(x)
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def width(nodes: Sequence[object]) -> int:
    """Leaves of the complete tree holding `nodes` (array form, trailing blanks cut)."""
    leaves = 1
    while 2 * leaves - 1 < len(nodes):
        leaves *= 2
    return leaves


def direct_path(leaf: int, leaves: int) -> list[int]:
    """The parent nodes from leaf `leaf` up to the root (§4.1.2), complete tree."""
    root = leaves - 1 if leaves > 1 else 0
    path, x = [], 2 * leaf
    while x != root:
        x = _parent_step(x)
        path.append(x)
    return path


def _parent(nodes: Sequence[object], i: int) -> ParentNode | None:
    n = nodes[i] if i < len(nodes) else None
    inner = getattr(n, "parent_node", n)
    return inner if isinstance(inner, ParentNode) else None


def _leaf_present(nodes: Sequence[object], leaf: int) -> bool:
    return 2 * leaf < len(nodes) and nodes[2 * leaf] is not None


def rfc_unmerged_problems(nodes: Sequence[object]) -> list[str]:
    """RFC 9420 §12.4.3.1: for each non-empty parent P and each entry L of
    P.unmerged_leaves, L is a non-blank leaf below P, and every non-blank intermediate
    node between L and P also lists L."""
    leaves = width(nodes)
    problems = []
    for i in range(1, len(nodes), 2):
        p = _parent(nodes, i)
        if p is None:
            continue
        for leaf in p.unmerged_leaves:
            path = direct_path(leaf, leaves)
            if i not in path or not _leaf_present(nodes, leaf):
                problems.append(f"node {i} lists {leaf}, not a non-blank leaf below it")
                continue
            for q in path[:path.index(i)]:
                between = _parent(nodes, q)
                if between is not None and leaf not in between.unmerged_leaves:
                    problems.append(f"node {i} lists {leaf} but node {q} below it does not")
    return problems


def ts_mls_rejects_unmerged(nodes: Sequence[object]) -> bool:
    """ts-mls 1.6.4 (validateRatchetTree): for each parent P and each L it lists, every
    non-blank node on L's whole direct path must carry the same unmerged_leaves list
    as P: stricter than §12.4.3.1 (only nodes between L and P, and only L itself)."""
    leaves = width(nodes)
    for i in range(1, len(nodes), 2):
        p = _parent(nodes, i)
        if p is None:
            continue
        for leaf in p.unmerged_leaves:
            for q in direct_path(leaf, leaves):
                other = _parent(nodes, q)
                if other is not None and tuple(other.unmerged_leaves) != tuple(
                        p.unmerged_leaves):
                    return True
    return False
