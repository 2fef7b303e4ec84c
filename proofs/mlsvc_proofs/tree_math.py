"""RFC 9420 Appendix C (array-based trees) over 32-bit bit-vectors, and identities that
the ratchet tree relies on, for every 32-bit node index.

Each function below is a transcription of Appendix C's Python into Z3 terms:
- level(x): the number of trailing one bits, as a sum over the 32 low-bit masks;
- log2(x): the number of powers of two 2^1..2^31 that are <= x;
- node_width, root, left, right: as written;
- parent_step(x): Appendix C's `parent` without the root check, one step;
- sibling(x): x < p ? right(p) : left(p) with p = parent_step(x);
- ancestor(x, j): the closed form of the level-j ancestor of a leaf,
  (x with its low j+1 bits cleared) | (2^j - 1).
Trees are full (RFC 9420 §7.8: n = 2^d leaves, d <= 31 so that 2n - 1 nodes fit in 32
bits). tests/proofs compare every function here with mlsvc.tree.math on concrete values.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from mlsvc_proofs.obligation import Obligation, Query

W = 32
MAX_DEPTH = 31
SECTION = "RFC 9420 Appendix C, §7.8"
ALL_ONES = (1 << W) - 1


def c(v: int) -> z3.BitVecRef:
    return z3.BitVecVal(v, W)


def bv(name: str) -> z3.BitVecRef:
    return z3.BitVec(name, W)


def level(x: z3.BitVecRef) -> z3.BitVecRef:
    """Appendix C level(x): the number of trailing 1 bits of x."""
    terms = [z3.If((x & c((2 << j) - 1)) == c((2 << j) - 1), c(1), c(0)) for j in range(W)]
    return z3.Sum(*terms)


def log2(x: z3.BitVecRef) -> z3.BitVecRef:
    """Appendix C log2(x): floor(log2 x), 0 for x = 0."""
    return z3.Sum(*[z3.If(z3.UGE(x, c(1 << j)), c(1), c(0)) for j in range(1, W)])


def node_width(n: z3.BitVecRef) -> z3.BitVecRef:
    return z3.If(n == c(0), c(0), c(2) * (n - c(1)) + c(1))


def root(n: z3.BitVecRef, width: Callable[[z3.BitVecRef], z3.BitVecRef] = node_width
         ) -> z3.BitVecRef:
    return (c(1) << log2(width(n))) - c(1)


def left(x: z3.BitVecRef) -> z3.BitVecRef:
    return x ^ (c(1) << (level(x) - c(1)))


def right(x: z3.BitVecRef) -> z3.BitVecRef:
    return x ^ (c(3) << (level(x) - c(1)))


def parent_step(x: z3.BitVecRef) -> z3.BitVecRef:
    """Appendix C parent(x, n) for x not the root: (x | 1 << k) ^ (b << (k + 1))."""
    k = level(x)
    b = z3.LShR(x, k + c(1)) & c(1)
    return (x | (c(1) << k)) ^ (b << (k + c(1)))


def parent_step_without_b(x: z3.BitVecRef) -> z3.BitVecRef:
    """A broken parent for the twin: the `^ (b << (k + 1))` correction dropped."""
    return x | (c(1) << level(x))


def sibling(x: z3.BitVecRef) -> z3.BitVecRef:
    p = parent_step(x)
    return z3.If(z3.ULT(x, p), right(p), left(p))


def sibling_always_right(x: z3.BitVecRef) -> z3.BitVecRef:
    """A broken sibling for the twin: the x < p comparison dropped."""
    return right(parent_step(x))


def ancestor(x: z3.BitVecRef, j: z3.BitVecRef) -> z3.BitVecRef:
    """The level-j node above leaf x: clear the low j+1 bits, set the low j bits."""
    return (x & ~((c(2) << j) - c(1))) | ((c(1) << j) - c(1))


def in_subtree(x: z3.BitVecRef, y: z3.BitVecRef) -> z3.BoolRef:
    """y is in the subtree rooted at x: same bits above level(x) + 1."""
    k1 = level(x) + c(1)
    return z3.LShR(x, k1) == z3.LShR(y, k1)


def full_tree(d: z3.BitVecRef) -> tuple[z3.BoolRef, z3.BitVecRef]:
    """n = 2^d leaves with d <= 31 (RFC 9420 §7.8: a ratchet tree is full)."""
    return z3.ULE(d, c(MAX_DEPTH)), c(1) << d


def not_full(n: z3.BitVecRef) -> z3.BoolRef:
    """A leaf count that is not a power of two, 2 < n <= 2^31."""
    return z3.And(z3.UGT(n, c(2)), z3.ULE(n, c(1 << MAX_DEPTH)), (n & (n - c(1))) != c(0))


def in_tree(x: z3.BitVecRef, n: z3.BitVecRef) -> z3.BoolRef:
    return z3.ULT(x, node_width(n))


# --- obligations ---------------------------------------------------------------------


def _children(parent_fn: Callable[[z3.BitVecRef], z3.BitVecRef]) -> Query:
    x = bv("x")
    k = level(x)
    lx, rx = left(x), right(x)
    claim = z3.And(parent_fn(lx) == x, parent_fn(rx) == x,
                   level(lx) == k - c(1), level(rx) == k - c(1),
                   z3.ULT(lx, x), z3.ULT(x, rx))
    return Query([x != c(ALL_ONES), z3.UGE(k, c(1))], z3.Not(claim), {"x": x})


def _parent_claim(x: z3.BitVecRef, n: z3.BitVecRef) -> z3.BoolRef:
    p = parent_step(x)
    return z3.And(in_tree(p, n), level(p) == level(x) + c(1),
                  z3.Or(left(p) == x, right(p) == x))


def _parent() -> Query:
    d, x = bv("d"), bv("x")
    ok_d, n = full_tree(d)
    return Query([ok_d, in_tree(x, n), x != root(n)], z3.Not(_parent_claim(x, n)),
                 {"d": d, "x": x})


def _parent_twin() -> Query:
    n, x = bv("n"), bv("x")
    return Query([not_full(n), in_tree(x, n), x != root(n)], z3.Not(_parent_claim(x, n)),
                 {"n": n, "x": x, "p": parent_step(x)})


def _sibling(sib: Callable[[z3.BitVecRef], z3.BitVecRef]) -> Query:
    d, x = bv("d"), bv("x")
    ok_d, n = full_tree(d)
    s = sib(x)
    claim = z3.And(s != x, in_tree(s, n), level(s) == level(x),
                   parent_step(s) == parent_step(x), sib(s) == x)
    return Query([ok_d, in_tree(x, n), x != root(n)], z3.Not(claim), {"d": d, "x": x})


def _root(width: Callable[[z3.BitVecRef], z3.BitVecRef]) -> Query:
    d, x = bv("d"), bv("x")
    ok_d, n = full_tree(d)
    r = root(n, width)
    claim = z3.And(r == n - c(1), level(r) == d,
                   z3.Implies(in_tree(x, n), in_subtree(r, x)))
    return Query([ok_d], z3.Not(claim), {"d": d, "x": x})


def _width_2n(n: z3.BitVecRef) -> z3.BitVecRef:
    """A broken node_width for the twin: 2n instead of 2(n - 1) + 1."""
    return c(2) * n


def _direct_path() -> Query:
    d, leaf, j = bv("d"), bv("leaf"), bv("j")
    ok_d, n = full_tree(d)
    x = c(2) * leaf
    a = ancestor(x, j)
    step = z3.Implies(z3.ULT(j, d), z3.And(parent_step(a) == ancestor(x, j + c(1)),
                                            a != root(n), in_tree(a, n)))
    claim = z3.And(ancestor(x, c(0)) == x, step, ancestor(x, d) == root(n))
    return Query([ok_d, z3.ULT(leaf, n)], z3.Not(claim), {"d": d, "leaf": leaf, "j": j})


def _copath(sib: Callable[[z3.BitVecRef], z3.BitVecRef]) -> Query:
    d, leaf, j = bv("d"), bv("leaf"), bv("j")
    ok_d, n = full_tree(d)
    x = c(2) * leaf
    s = sib(ancestor(x, j))
    claim = z3.And(in_tree(s, n), level(s) == j, z3.Not(in_subtree(s, x)),
                   parent_step(s) == ancestor(x, j + c(1)))
    return Query([ok_d, z3.ULT(leaf, n), z3.ULT(j, d)], z3.Not(claim),
                 {"d": d, "leaf": leaf, "j": j})


def _direct_path_twin() -> Query:
    n, leaf = bv("n"), bv("leaf")
    x = c(2) * leaf
    return Query([not_full(n), z3.ULT(leaf, n)], ancestor(x, log2(n)) != root(n),
                 {"n": n, "leaf": leaf})


OBLIGATIONS: tuple[Obligation, ...] = (
    Obligation(
        "tree.children", SECTION, "parent=01x => left=00x, right=10x",
        "all x != 2^32-1 with level >= 1: parent(left(x)) = parent(right(x)) = x, levels "
        "drop by one, left < x < right", "unsat", lambda: _children(parent_step)),
    Obligation(
        "tree.children.twin_parent_without_b", SECTION, "parent=01x => left=00x, right=10x",
        "as tree.children with parent(x) = x | 1 << level(x)",
        "sat", lambda: _children(parent_step_without_b), twin_of="tree.children"),
    Obligation(
        "tree.parent", SECTION, "The parent of a node. (Appendix C parent(x, n))",
        "n = 2^d, d <= 31, x < node_width(n), x != root(n): parent(x) is in the tree, one "
        "level up, and has x as a child", "unsat", _parent),
    Obligation(
        "tree.parent.twin_not_full", SECTION, "The parent of a node. (Appendix C parent(x, n))",
        "as tree.parent with n not a power of two (one step can leave the array)",
        "sat", _parent_twin, twin_of="tree.parent"),
    Obligation(
        "tree.sibling", SECTION, "The other child of the node's parent.",
        "full trees, x != root: sibling(x) != x, in the tree, same level, same parent, "
        "sibling(sibling(x)) = x", "unsat", lambda: _sibling(sibling)),
    Obligation(
        "tree.sibling.twin_always_right", SECTION, "The other child of the node's parent.",
        "as tree.sibling with sibling(x) = right(parent(x))",
        "sat", lambda: _sibling(sibling_always_right), twin_of="tree.sibling"),
    Obligation(
        "tree.root", SECTION, "The index of the root node of a tree with n leaves.",
        "n = 2^d: root(n) = n - 1, level(root) = d, every node is in the root's subtree",
        "unsat", lambda: _root(node_width)),
    Obligation(
        "tree.root.twin_width_2n", SECTION, "The index of the root node of a tree with n leaves.",
        "as tree.root with node_width(n) = 2n", "sat", lambda: _root(_width_2n),
        twin_of="tree.root"),
    Obligation(
        "tree.direct_path", SECTION,
        "The direct path of a node, ordered from leaf to root. (and its copath)",
        "leaf x of n = 2^d, j < d: parent(anc(x,j)) = anc(x,j+1), anc(x,j) in tree and not "
        "the root, anc(x,0) = x, anc(x,d) = root: direct_path = [anc(x,1..d)], d entries",
        "unsat", _direct_path),
    Obligation(
        "tree.direct_path.twin_not_full", SECTION,
        "The direct path of a node, ordered from leaf to root. (and its copath)",
        "n not a power of two: anc(x, log2 n) != root(n) is sat", "sat", _direct_path_twin,
        twin_of="tree.direct_path"),
    Obligation(
        "tree.copath", SECTION, "The copath of a node, ordered from leaf to root.",
        "leaf x of n = 2^d, j < d: sibling(anc(x,j)) is in the tree, at level j, not above "
        "x, and a child of anc(x,j+1)", "unsat", lambda: _copath(sibling)),
    Obligation(
        "tree.copath.twin_always_right", SECTION,
        "The copath of a node, ordered from leaf to root.",
        "as tree.copath with sibling(x) = right(parent(x))", "sat",
        lambda: _copath(sibling_always_right), twin_of="tree.copath"),
)
