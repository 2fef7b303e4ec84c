"""The Z3 encodings of proofs/ compute what the implementation computes.

The obligations are only as good as their encodings. Each Z3 function is evaluated on
concrete values (constant folding with z3.simplify) and compared with:
- RFC 9420 Appendix C as implemented in mlsvc.tree.math (level, left, right, parent,
  sibling, root, node_width, log2, direct path, copath, subtree membership);
- the FF1 fast path mlsvc.vc.ff1.prp_encrypt / prp_decrypt, with the encoding's
  uninterpreted round replaced by the real AES round function;
- the sampler mlsvc.vc.reuse_guard.class_member.
"""

from __future__ import annotations

import random

import pytest
import z3

from mlsvc.tree import math as tm
from mlsvc.types import LeafCount, NodeIndex
from mlsvc.vc.ff1 import profile_round_function, prp_decrypt, prp_encrypt
from mlsvc.vc.reuse_guard import class_member
from mlsvc_proofs import feistel, partition
from mlsvc_proofs import tree_math as zt


def ev(expr: z3.BitVecRef) -> int:
    v = z3.simplify(expr)
    assert z3.is_bv_value(v), f"not constant: {v}"
    return v.as_long()


def holds(expr: z3.BoolRef) -> bool:
    v = z3.simplify(expr)
    assert z3.is_true(v) or z3.is_false(v)
    return z3.is_true(v)


_RND = random.Random(9420)
EDGE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 15, 16, 31, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1,
        0xBFFFFFFF, 2**32 - 3, 2**32 - 2]
NODES = EDGE + [_RND.getrandbits(32) for _ in range(120)] + [
    (_RND.getrandbits(32 - k) << k) | ((1 << k) - 1) for k in range(1, 32)]
NODES = [x for x in NODES if x < 2**32 - 1]


@pytest.mark.parametrize("x", NODES)
def test_node_functions(x: int) -> None:
    c = zt.c(x)
    nx = NodeIndex(x)
    assert ev(zt.level(c)) == tm.level(nx)
    assert ev(zt.parent_step(c)) == tm.parent_step(nx)
    if tm.level(nx) > 0:
        assert ev(zt.left(c)) == tm.left(nx)
        assert ev(zt.right(c)) == tm.right(nx)
    y = NodeIndex(NODES[(NODES.index(x) + 1) % len(NODES)])
    assert holds(zt.in_subtree(c, zt.c(y))) == tm.is_in_subtree(nx, y)
    assert holds(zt.in_subtree(c, c))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 100, 2**16, 2**16 + 1, 2**30 + 5, 2**31])
def test_tree_size_functions(n: int) -> None:
    c = zt.c(n)
    assert ev(zt.node_width(c)) == tm.node_width(LeafCount(n))
    assert ev(zt.root(c)) == tm.root(LeafCount(n))
    assert ev(zt.log2(c)) == tm.log2(n)
    assert holds(zt.not_full(c)) == (n > 2 and n & (n - 1) != 0)


@pytest.mark.parametrize("d", [0, 1, 2, 3, 5, 8, 16, 31])
def test_paths_in_full_trees(d: int) -> None:
    n = LeafCount(1 << d)
    leaves = {0, n - 1, n // 2} | {_RND.randrange(n) for _ in range(4)}
    for leaf in leaves:
        x = NodeIndex(2 * leaf)
        path = tm.direct_path(x, n)
        assert len(path) == d
        closed = [ev(zt.ancestor(zt.c(x), zt.c(j))) for j in range(1, d + 1)]
        assert closed == path
        cop = [ev(zt.sibling(zt.c(ev(zt.ancestor(zt.c(x), zt.c(j)))))) for j in range(d)]
        assert cop == tm.copath(x, n)
        for node in [x, *path][:-1]:
            assert ev(zt.sibling(zt.c(node))) == tm.sibling(node, n)
            assert ev(zt.parent_step(zt.c(node))) == tm.parent(node, n)


KEYS = [bytes(16), bytes(range(16)), bytes.fromhex("f5f8698dfbca10db1bb94cbd727b1b76")]


def _real_round(key: bytes) -> feistel.RoundFn:
    f = profile_round_function(key)

    def apply(i: int, b: z3.BitVecRef) -> z3.BitVecRef:
        return z3.BitVecVal(f(i, ev(b)), 16)

    return apply


@pytest.mark.parametrize("key", KEYS)
def test_feistel_encoding_is_ff1(key: bytes) -> None:
    f = _real_round(key)
    for x in (0, 1, 0x80000000, 0xFFFFFFFF, 0x12345678, _RND.getrandbits(32)):
        y = ev(feistel.encrypt(z3.BitVecVal(x, 32), f))
        assert y == prp_encrypt(key, x)
        assert ev(feistel.decrypt(z3.BitVecVal(y, 32), f)) == x == prp_decrypt(key, y)


def test_feistel_twin_round_differs_from_ff1() -> None:
    f = _real_round(KEYS[1])
    x = 0x00018000
    assert ev(feistel.encrypt(z3.BitVecVal(x, 32), f, feistel.broken_combine)) != prp_encrypt(
        KEYS[1], x)


def test_sampler_encoding_is_class_member() -> None:
    for k in range(33):
        for _ in range(6):
            r, leaf = _RND.getrandbits(32), _RND.getrandbits(k) if k else 0
            got = ev(partition.sample(partition.const(r), partition.const(leaf),
                                      partition.const(k)))
            assert got == class_member(r, leaf, k)
            assert ev(partition.leaf_count(partition.const(k))) == 1 << k
