"""Array-based left-balanced binary tree math, RFC 9420 Appendix C.

Leaves sit at even node indices (leaf i at node 2i); a node's level is the number of
trailing one bits of its index. Ratchet trees always have a power-of-two number of
leaves (RFC 9420 §7.8), so `parent` is a single step; the functions still accept any
leaf count n >= 1 as Appendix C's general form does, walking up past nodes outside
the tree.

Distinct types keep the index spaces apart: `LeafIndex` (0..n-1), `NodeIndex`
(0..2n-2), `LeafCount` (n).
"""

from __future__ import annotations

from mlsvc.errors import ParameterError
from mlsvc.types import LeafCount, LeafIndex, NodeIndex


def log2(x: int) -> int:
    """Floor of log2(x); 0 for x = 0 (Appendix C)."""
    return x.bit_length() - 1 if x > 0 else 0


def level(x: NodeIndex) -> int:
    """The level of a node: leaves are level 0 (number of trailing 1 bits)."""
    return ((x ^ (x + 1)).bit_length()) - 1


def node_width(n: LeafCount) -> int:
    """Number of nodes needed to represent a tree with n leaves."""
    return 0 if n == 0 else 2 * (n - 1) + 1


def root(n: LeafCount) -> NodeIndex:
    """The index of the root node of a tree with n leaves."""
    if n < 1:
        raise ParameterError("a tree has at least one leaf")
    w = node_width(n)
    return NodeIndex((1 << log2(w)) - 1)


def left(x: NodeIndex) -> NodeIndex:
    """The left child of an intermediate node."""
    k = level(x)
    if k == 0:
        raise ParameterError(f"leaf node {x} has no children")
    return NodeIndex(x ^ (0x01 << (k - 1)))


def right(x: NodeIndex) -> NodeIndex:
    """The right child of an intermediate node."""
    k = level(x)
    if k == 0:
        raise ParameterError(f"leaf node {x} has no children")
    return NodeIndex(x ^ (0x03 << (k - 1)))


def parent_step(x: NodeIndex) -> NodeIndex:
    """The parent of x in the infinite tree."""
    k = level(x)
    b = (x >> (k + 1)) & 0x01
    return NodeIndex((x | (1 << k)) ^ (b << (k + 1)))


def parent(x: NodeIndex, n: LeafCount) -> NodeIndex:
    """The parent of a node within a tree of n leaves."""
    if x == root(n):
        raise ParameterError(f"root node {x} has no parent")
    w = node_width(n)
    if x >= w:
        raise ParameterError(f"node {x} outside a tree of {n} leaves")
    p = parent_step(x)
    while p >= w:
        p = parent_step(p)
    return p


def sibling(x: NodeIndex, n: LeafCount) -> NodeIndex:
    """The other child of the node's parent."""
    p = parent(x, n)
    return right(p) if x < p else left(p)


def direct_path(x: NodeIndex, n: LeafCount) -> list[NodeIndex]:
    """The nodes from x's parent to the root, in order (RFC 9420 §4.1)."""
    r = root(n)
    path: list[NodeIndex] = []
    while x != r:
        x = parent(x, n)
        path.append(x)
    return path


def copath(x: NodeIndex, n: LeafCount) -> list[NodeIndex]:
    """The siblings of x and of each node of its direct path except the root."""
    if x == root(n):
        return []
    nodes = [x, *direct_path(x, n)]
    nodes.pop()
    return [sibling(y, n) for y in nodes]


def is_leaf(x: NodeIndex) -> bool:
    return x % 2 == 0


def leaf_to_node(i: LeafIndex) -> NodeIndex:
    return NodeIndex(2 * i)


def node_to_leaf(x: NodeIndex) -> LeafIndex:
    if x % 2:
        raise ParameterError(f"node {x} is not a leaf")
    return LeafIndex(x // 2)


def is_in_subtree(x: NodeIndex, y: NodeIndex) -> bool:
    """Whether y is in the subtree rooted at x (x itself included)."""
    k = level(x)
    return (x >> (k + 1)) == (y >> (k + 1))


def common_ancestor(x: NodeIndex, y: NodeIndex) -> NodeIndex:
    """The lowest node whose subtree contains both x and y (Appendix C)."""
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and (x >> ly) == (y >> ly):
        return y
    if ly <= lx and (x >> lx) == (y >> lx):
        return x
    xn, yn, k = int(x), int(y), 0
    while xn != yn:
        xn, yn, k = xn >> 1, yn >> 1, k + 1
    return NodeIndex((xn << k) + (1 << (k - 1)) - 1)
