"""The modulus partition behind the reuse guard (draft-ietf-mls-virtual-clients-00 §5.8,
DRAFT-00-PROFILE P9).

§5.8: "emulator clients choose a random value x such that x modulo the number of leaves
in the emulation group is equal to its leaf_index". With N = 2^k leaves (P9) the
residue classes of the 32-bit space modulo N are what keeps emulators apart.

Encoding: 64-bit bit-vectors, so that N = 2^32 (k = 32) and the size of the space,
2^32, are representable; x, r < 2^32 are uint32 values zero-extended. k is symbolic
with k <= 32, so each obligation covers all 33 leaf counts in one query. The sampler is
the implementation's `class_member`: x = ((r >> k) << k) | leaf_index, for a uint32
draw r (impl/mlsvc/vc/reuse_guard.py).
"""

from __future__ import annotations

import z3

from mlsvc_proofs.obligation import Obligation, Query

W = 64
SPACE_BITS = 32
SECTION = "draft-00 §5.8, P9"
SENTENCE = ("emulator clients choose a random value x such that x modulo the number of "
            "leaves in the emulation group is equal to its leaf_index")


def bv(name: str) -> z3.BitVecRef:
    return z3.BitVec(name, W)


def const(v: int) -> z3.BitVecRef:
    return z3.BitVecVal(v, W)


SPACE = const(1 << SPACE_BITS)


def leaf_count(k: z3.BitVecRef) -> z3.BitVecRef:
    """N = 2^k."""
    return const(1) << k


def valid_exponent(k: z3.BitVecRef) -> z3.BoolRef:
    """P9: 0 <= k <= 32 (N a power of two, at most 2^32)."""
    return z3.ULE(k, const(SPACE_BITS))


def is_u32(x: z3.BitVecRef) -> z3.BoolRef:
    return z3.ULT(x, SPACE)


def sample(r: z3.BitVecRef, leaf: z3.BitVecRef, k: z3.BitVecRef) -> z3.BitVecRef:
    """reuse_guard.class_member: the draw's high 32 - k bits, then leaf_index."""
    return (z3.LShR(r, k) << k) | leaf


def not_power_of_two(n: z3.BitVecRef) -> z3.BoolRef:
    """2 < N <= 2^32 and N has more than one bit set."""
    return z3.And(z3.UGT(n, const(2)), z3.ULE(n, SPACE), (n & (n - 1)) != const(0))


def _block_decomposition(x: z3.BitVecRef, n: z3.BitVecRef) -> z3.BoolRef:
    """x = q * N + i with i = x mod N < N and q = x div N < 2^32 div N. Euclidean
    division is unique, so (q, i) is the only candidate: this is "x lies in one of the
    blocks [0, 2^32 / N) x N" without a quantifier."""
    i, q = z3.URem(x, n), z3.UDiv(x, n)
    return z3.And(z3.ULT(i, n), z3.ULT(q, z3.UDiv(SPACE, n)), q * n + i == x)


# --- disjoint ------------------------------------------------------------------------


def _disjoint() -> Query:
    k, r1, r2, i, j = bv("k"), bv("r1"), bv("r2"), bv("i"), bv("j")
    n = leaf_count(k)
    return Query(
        [valid_exponent(k), is_u32(r1), is_u32(r2), z3.ULT(i, n), z3.ULT(j, n), i != j],
        sample(r1, i, k) == sample(r2, j, k),
        {"k": k, "r1": r1, "r2": r2, "i": i, "j": j},
    )


def _disjoint_twin() -> Query:
    ka, kb, r1, r2, i, j = bv("ka"), bv("kb"), bv("r1"), bv("r2"), bv("i"), bv("j")
    return Query(
        [valid_exponent(ka), valid_exponent(kb), ka != kb, is_u32(r1), is_u32(r2),
         z3.ULT(i, leaf_count(ka)), z3.ULT(j, leaf_count(kb)), i != j],
        sample(r1, i, ka) == sample(r2, j, kb),
        {"ka": ka, "kb": kb, "r1": r1, "r2": r2, "i": i, "j": j},
    )


# --- cover ---------------------------------------------------------------------------


def _cover() -> Query:
    k, x = bv("k"), bv("x")
    return Query([valid_exponent(k), is_u32(x)],
                 z3.Not(_block_decomposition(x, leaf_count(k))), {"k": k, "x": x})


def _cover_twin() -> Query:
    n, x = bv("n"), bv("x")
    return Query([not_power_of_two(n), is_u32(x)], z3.Not(_block_decomposition(x, n)),
                 {"n": n, "x": x})


# --- class size ----------------------------------------------------------------------


def _class_size_claim(n: z3.BitVecRef, i: z3.BitVecRef, q1: z3.BitVecRef,
                      q2: z3.BitVecRef, x: z3.BitVecRef) -> z3.BoolRef:
    """phi_i(q) = q * N + i is a bijection from [0, 2^32 div N) onto the class of i:
    injective, into the class and the 32-bit space, and onto (every class member x
    is phi_i(x div N) with x div N in range). So the class has 2^32 / N members."""
    m = z3.UDiv(SPACE, n)

    def phi(q: z3.BitVecRef) -> z3.BitVecRef:
        return q * n + i

    injective = z3.Implies(z3.And(z3.ULT(q1, m), z3.ULT(q2, m), q1 != q2), phi(q1) != phi(q2))
    into = z3.Implies(z3.ULT(q1, m), z3.And(is_u32(phi(q1)), z3.URem(phi(q1), n) == i))
    onto = z3.Implies(z3.And(is_u32(x), z3.URem(x, n) == i),
                      z3.And(z3.ULT(z3.UDiv(x, n), m), phi(z3.UDiv(x, n)) == x))
    return z3.And(injective, into, onto)


def _class_size() -> Query:
    k, i, q1, q2, x = bv("k"), bv("i"), bv("q1"), bv("q2"), bv("x")
    n = leaf_count(k)
    return Query([valid_exponent(k), z3.ULT(i, n)], z3.Not(_class_size_claim(n, i, q1, q2, x)),
                 {"k": k, "i": i, "q1": q1, "q2": q2, "x": x})


def _class_size_twin() -> Query:
    n, i, q1, q2, x = bv("n"), bv("i"), bv("q1"), bv("q2"), bv("x")
    return Query([not_power_of_two(n), z3.ULT(i, n)],
                 z3.Not(_class_size_claim(n, i, q1, q2, x)),
                 {"n": n, "i": i, "q1": q1, "q2": q2, "x": x})


# --- the sampler stays in its class --------------------------------------------------


def _sampler() -> Query:
    k, r, i = bv("k"), bv("r"), bv("i")
    n = leaf_count(k)
    s, q = sample(r, i, k), z3.LShR(r, k)
    claim = z3.And(
        is_u32(s),
        z3.URem(s, n) == i,  # inside the class of leaf_index
        z3.ULT(q, z3.UDiv(SPACE, n)), s == q * n + i,  # s = phi_i(q), q = r >> k
        r == q * n + z3.URem(r, n),  # r <-> (q, r mod N) is a bijection: q is uniform
    )
    return Query([valid_exponent(k), is_u32(r), z3.ULT(i, n)], z3.Not(claim),
                 {"k": k, "r": r, "i": i})


def _sampler_twin() -> Query:
    # N not a power of two, k = floor(log2 N): what `class_member` would compute if the
    # leaf-count check were missing.
    n, k, r, i = bv("n"), bv("k"), bv("r"), bv("i")
    return Query(
        [not_power_of_two(n), z3.ULE(leaf_count(k), n), z3.ULT(n, leaf_count(k + 1)),
         valid_exponent(k), is_u32(r), z3.ULT(i, n)],
        z3.URem(sample(r, i, k), n) != i,
        {"n": n, "k": k, "r": r, "i": i},
    )


OBLIGATIONS: tuple[Obligation, ...] = (
    Obligation(
        "partition.disjoint", SECTION, SENTENCE,
        "k<=32, i!=j < 2^k, r1,r2 uint32: sample(r1,i) == sample(r2,j) is unsat",
        "unsat", _disjoint),
    Obligation(
        "partition.disjoint.twin_disagree_n", SECTION, SENTENCE,
        "as partition.disjoint, but the two emulators use leaf counts 2^ka != 2^kb",
        "sat", _disjoint_twin, twin_of="partition.disjoint"),
    Obligation(
        "partition.cover", SECTION, SENTENCE,
        "k<=32, x uint32: x = (x div N) * N + x mod N with x div N < 2^32/N; negation unsat",
        "unsat", _cover),
    Obligation(
        "partition.cover.twin_not_power_of_two", SECTION, SENTENCE,
        "as partition.cover with N symbolic, 2 < N <= 2^32, not a power of two",
        "sat", _cover_twin, twin_of="partition.cover"),
    Obligation(
        "partition.class_size", SECTION, SENTENCE,
        "q -> q*N + i is a bijection [0, 2^32/N) -> class(i) for all k<=32, i<N",
        "unsat", _class_size),
    Obligation(
        "partition.class_size.twin_not_power_of_two", SECTION, SENTENCE,
        "as partition.class_size with N not a power of two",
        "sat", _class_size_twin, twin_of="partition.class_size"),
    Obligation(
        "partition.sampler_in_class", SECTION, SENTENCE,
        "class_member(r,i,k) is uint32, == i mod N, == (r>>k)*N + i; r <-> (r>>k, r mod N)",
        "unsat", _sampler),
    Obligation(
        "partition.sampler_in_class.twin_not_power_of_two", SECTION, SENTENCE,
        "class_member with N not a power of two and k = floor(log2 N): x mod N != i is sat",
        "sat", _sampler_twin, twin_of="partition.sampler_in_class"),
)
