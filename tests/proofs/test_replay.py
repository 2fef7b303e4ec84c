"""Each twin's counterexample, replayed on the concrete Python code.

A twin is sat by design; its model is a concrete failure of the broken variant. Here
the model's values are fed to the implementation (mlsvc.vc.*, mlsvc.tree.math): where
the implementation admits the situation (emulators on different leaf counts) it must
show the same failure; where it must not (N not a power of two), it must refuse it with
a typed error, while the broken arithmetic, evaluated in Python, fails as Z3 said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError
from mlsvc.tree import math as tm
from mlsvc.types import LeafCount, LeafIndex, NodeIndex
from mlsvc.vc.ff1 import prp_decrypt, prp_encrypt
from mlsvc.vc.reuse_guard import (
    choose_x,
    class_member,
    leaf_count_exponent,
    make_reuse_guard,
    recover_leaf_index,
)
from mlsvc_proofs.obligation import Result

Proof = Callable[[str], Result]
CS = get_suite(1)
SECRET = bytes(range(32))
NONCE = bytes(range(12))
KEYS = [bytes(16), bytes(range(16)), b"\xa5" * 16]


def _rng(value: int) -> Callable[[int], bytes]:
    return lambda n: value.to_bytes(n, "big")


def _twin(proof: Proof, name: str) -> Mapping[str, int]:
    r = proof(name)
    assert r.verdict == "sat", f"{name}: {r.verdict}"
    return r.witness


# --- partition -----------------------------------------------------------------------


def test_disjoint_twin_collides_in_the_implementation(proof: Proof) -> None:
    w = _twin(proof, "partition.disjoint.twin_disagree_n")
    na, nb = 1 << w["ka"], 1 << w["kb"]
    i, j = w["i"], w["j"]
    assert i != j and i < na and j < nb
    xa = class_member(w["r1"], i, w["ka"])
    xb = class_member(w["r2"], j, w["kb"])
    assert xa == xb
    # Both calls are valid on their own: the implementation cannot detect disagreement.
    ga = make_reuse_guard(CS, SECRET, NONCE, LeafIndex(i), na, _rng(w["r1"]))
    gb = make_reuse_guard(CS, SECRET, NONCE, LeafIndex(j), nb, _rng(w["r2"]))
    assert ga == gb


def test_cover_twin(proof: Proof) -> None:
    w = _twin(proof, "partition.cover.twin_not_power_of_two")
    n, x = w["n"], w["x"]
    assert n & (n - 1) and x < 2**32
    assert x // n >= 2**32 // n  # x lies outside the blocks [0, 2^32/N) x N
    with pytest.raises(ParameterError):
        leaf_count_exponent(n)


def test_class_size_twin(proof: Proof) -> None:
    w = _twin(proof, "partition.class_size.twin_not_power_of_two")
    n, i = w["n"], w["i"]
    assert n & (n - 1) and i < n
    size = (2**32 - 1 - i) // n + 1  # members of {x < 2^32 : x mod n == i}
    smallest = (2**32 - 1 - (n - 1)) // n + 1
    assert size != 2**32 // n or smallest != 2**32 // n
    with pytest.raises(ParameterError):
        choose_x(i, n, _rng(0))


def test_sampler_twin(proof: Proof) -> None:
    w = _twin(proof, "partition.sampler_in_class.twin_not_power_of_two")
    n, k, r, i = w["n"], w["k"], w["r"], w["i"]
    assert k == n.bit_length() - 1 and n & (n - 1)
    assert class_member(r, i, k) % n != i  # the implementation's formula leaves the class
    with pytest.raises(ParameterError):
        choose_x(i, n, _rng(r))


# --- Feistel -------------------------------------------------------------------------


def _table(w: Mapping[str, int], tags: tuple[str, ...]) -> dict[tuple[int, int], int]:
    table: dict[tuple[int, int], int] = {}
    for tag in tags:
        for i in range(10):
            key, val = (i, w[f"{tag}_b{i}"]), w[f"{tag}_f{i}"]
            assert table.setdefault(key, val) == val  # Z3's F is a function
    return table


def _broken_encrypt(x: int, f: Callable[[int, int], int]) -> int:
    a, b = x >> 16, x & 0xFFFF
    for i in range(10):
        a, b = b, (2 * a + f(i, b)) & 0xFFFF
    return (a << 16) | b


def _ff1_decrypt(y: int, f: Callable[[int, int], int]) -> int:
    a, b = y >> 16, y & 0xFFFF
    for i in range(9, -1, -1):
        a, b = (b - f(i, a)) & 0xFFFF, a
    return (a << 16) | b


def test_injective_twin(proof: Proof) -> None:
    w = _twin(proof, "feistel.injective.twin_noninvertible_round")
    table = _table(w, ("x1", "x2"))
    x1, x2 = w["x1"], w["x2"]
    assert x1 != x2
    f = lambda i, b: table[(i, b)]  # noqa: E731
    assert _broken_encrypt(x1, f) == _broken_encrypt(x2, f)
    for key in KEYS:  # the real PRP keeps them apart
        assert prp_encrypt(key, x1) != prp_encrypt(key, x2)


def test_inverse_twin(proof: Proof) -> None:
    w = _twin(proof, "feistel.inverse.twin_noninvertible_round")
    table = _table(w, ("enc", "dec"))
    x = w["x"]
    f = lambda i, b: table[(i, b)]  # noqa: E731
    assert _ff1_decrypt(_broken_encrypt(x, f), f) != x
    for key in KEYS:
        assert prp_decrypt(key, prp_encrypt(key, x)) == x


# --- reuse guard ---------------------------------------------------------------------


def test_unique_twin(proof: Proof) -> None:
    w = _twin(proof, "reuse_guard.unique.twin_disagree_n")
    na, nb = 1 << w["ka"], 1 << w["kb"]
    assert w["i"] != w["j"]
    ga = make_reuse_guard(CS, SECRET, NONCE, LeafIndex(w["i"]), na, _rng(w["r1"]))
    gb = make_reuse_guard(CS, SECRET, NONCE, LeafIndex(w["j"]), nb, _rng(w["r2"]))
    assert ga == gb  # two emulators, two leaf indices, one reuse guard


def test_recover_twin(proof: Proof) -> None:
    w = _twin(proof, "reuse_guard.recover.twin_disagree_n")
    ns, nr, i = 1 << w["ks"], 1 << w["kr"], w["i"]
    guard = make_reuse_guard(CS, SECRET, NONCE, LeafIndex(i), ns, _rng(w["r"]))
    assert recover_leaf_index(CS, SECRET, NONCE, guard, nr) != i
    assert recover_leaf_index(CS, SECRET, NONCE, guard, ns) == i


# --- tree math -----------------------------------------------------------------------


def _ancestor(x: int, j: int) -> int:
    return (x & ~((2 << j) - 1)) | ((1 << j) - 1)


def test_children_twin(proof: Proof) -> None:
    x = NodeIndex(_twin(proof, "tree.children.twin_parent_without_b")["x"])
    lx, rx = tm.left(x), tm.right(x)
    assert tm.parent_step(lx) == x and tm.parent_step(rx) == x
    broken = [c | (1 << tm.level(NodeIndex(c))) for c in (lx, rx)]
    assert any(p != x for p in broken)  # the parent without the b-term loses a child


def test_parent_twin(proof: Proof) -> None:
    w = _twin(proof, "tree.parent.twin_not_full")
    n, x = LeafCount(w["n"]), NodeIndex(w["x"])
    width = tm.node_width(n)
    assert x < width and x != tm.root(n)
    assert tm.parent_step(x) == w["p"] >= width  # one Appendix C step leaves the array
    assert tm.parent(x, n) < width  # mlsvc.tree.math walks up past missing nodes


def test_sibling_twin(proof: Proof) -> None:
    w = _twin(proof, "tree.sibling.twin_always_right")
    n, x = LeafCount(1 << w["d"]), NodeIndex(w["x"])
    s = tm.sibling(x, n)
    assert s != x and tm.sibling(s, n) == x and tm.parent(s, n) == tm.parent(x, n)
    broken = tm.right(tm.parent_step(x))
    assert broken == x or tm.right(tm.parent_step(broken)) != x


def test_root_twin(proof: Proof) -> None:
    d = _twin(proof, "tree.root.twin_width_2n")["d"]
    n = LeafCount(1 << d)
    assert tm.root(n) == n - 1 and tm.level(tm.root(n)) == d
    broken = (1 << tm.log2(2 * n)) - 1
    assert broken != tm.root(n)


def test_direct_path_twin(proof: Proof) -> None:
    w = _twin(proof, "tree.direct_path.twin_not_full")
    n, x = LeafCount(w["n"]), NodeIndex(2 * w["leaf"])
    d = tm.log2(n)
    closed_form = [_ancestor(x, j) for j in range(1, d + 1)]
    assert tm.direct_path(x, n) != closed_form
    assert tm.direct_path(x, n)[-1] == tm.root(n)


def test_copath_twin(proof: Proof) -> None:
    w = _twin(proof, "tree.copath.twin_always_right")
    n, x, j = LeafCount(1 << w["d"]), NodeIndex(2 * w["leaf"]), w["j"]
    real = tm.copath(x, n)[j]
    broken = tm.right(tm.parent_step(NodeIndex(_ancestor(x, j))))
    assert real != broken
    assert tm.level(real) == j
