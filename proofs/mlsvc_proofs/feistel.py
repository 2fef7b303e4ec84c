"""The FF1 Feistel structure for the profile's split, over bit-vectors
(NIST SP 800-38G Rev. 1 Algorithms 7 and 8; draft-00 §5.7; DRAFT-00-PROFILE P10).

For radix 2 and n = 32 numerals, u = v = 16 and every round computes
    c = (NUM(A) + y) mod 2^16;  A, B = B, c
where y = NUM(S) comes from AES under the key: y depends only on the key, the round
index i and B. Only y mod 2^16 enters c, so the round function is modelled as an
uninterpreted F : (uint8 round, uint16 B) -> uint16. A statement proved for an
uninterpreted F holds for every key, whatever AES computes. The uint32 input is the
numeral string MSB first (P10): A = x[31:16], B = x[15:0]; the output is A || B.

`encrypt` / `decrypt` take the round function as a Python callable returning a Z3
term, so tests/proofs can also evaluate the same encoding with the real FF1 round
function (mlsvc.vc.ff1.profile_round_function) and compare it with the implementation.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from mlsvc_proofs.obligation import Obligation, Query

ROUNDS = 10
HALF = 16
SECTION = "draft-00 §5.7, P10; SP 800-38G Alg. 7-8"
SENTENCE = ("A small-space pseudorandom permutation (PRP) ... works similar to a block "
            "cipher ... output = SmallSpacePRP.Encrypt(key, input); "
            "input = SmallSpacePRP.Decrypt(key, output)")

RoundFn = Callable[[int, z3.BitVecRef], z3.BitVecRef]
Combine = Callable[[z3.BitVecRef, z3.BitVecRef], z3.BitVecRef]


def uninterpreted_round(name: str = "F") -> tuple[z3.FuncDeclRef, RoundFn]:
    """F(i, B) as a Z3 uninterpreted function of (uint8 i, uint16 B) -> uint16."""
    f = z3.Function(name, z3.BitVecSort(8), z3.BitVecSort(HALF), z3.BitVecSort(HALF))

    def apply(i: int, b: z3.BitVecRef) -> z3.BitVecRef:
        return f(z3.BitVecVal(i, 8), b)

    return f, apply


def ff1_combine(a: z3.BitVecRef, y: z3.BitVecRef) -> z3.BitVecRef:
    """Algorithm 7 step 6.vi: c = (NUM(A) + y) mod 2^16 (bit-vector addition wraps)."""
    return a + y


def broken_combine(a: z3.BitVecRef, y: z3.BitVecRef) -> z3.BitVecRef:
    """A non-invertible round for the twins: c = (2 * NUM(A) + y) mod 2^16 loses A's
    top bit."""
    return a + a + y


def encrypt(x: z3.BitVecRef, f: RoundFn, combine: Combine = ff1_combine) -> z3.BitVecRef:
    """Algorithm 7 for radix 2, n = 32, on a 32-bit x (MSB-first numerals)."""
    a, b = z3.Extract(31, 16, x), z3.Extract(15, 0, x)
    for i in range(ROUNDS):
        a, b = b, combine(a, f(i, b))
    return z3.Concat(a, b)


def decrypt(y: z3.BitVecRef, f: RoundFn) -> z3.BitVecRef:
    """Algorithm 8 for radix 2, n = 32: c = (NUM(B) - y) mod 2^16; B = A; A = c."""
    a, b = z3.Extract(31, 16, y), z3.Extract(15, 0, y)
    for i in range(ROUNDS - 1, -1, -1):
        a, b = b - f(i, a), a
    return z3.Concat(a, b)


def _round_witnesses(x: z3.BitVecRef, f: RoundFn, tag: str,
                     combine: Combine) -> dict[str, z3.BitVecRef]:
    """The (B, F(i, B)) pairs of every round on input x: enough of F's model to replay
    a counterexample in Python."""
    out: dict[str, z3.BitVecRef] = {}
    a, b = z3.Extract(31, 16, x), z3.Extract(15, 0, x)
    for i in range(ROUNDS):
        y = f(i, b)
        out[f"{tag}_b{i}"] = b
        out[f"{tag}_f{i}"] = y
        a, b = b, combine(a, y)
    return out


def _decrypt_witnesses(y: z3.BitVecRef, f: RoundFn, tag: str) -> dict[str, z3.BitVecRef]:
    """The (A, F(i, A)) pairs that decryption of y queries, round 9 down to 0."""
    out: dict[str, z3.BitVecRef] = {}
    a, b = z3.Extract(31, 16, y), z3.Extract(15, 0, y)
    for i in range(ROUNDS - 1, -1, -1):
        v = f(i, a)
        out[f"{tag}_b{i}"] = a
        out[f"{tag}_f{i}"] = v
        a, b = b - v, a
    return out


def _injective(combine: Combine) -> Query:
    _, f = uninterpreted_round()
    x1, x2 = z3.BitVec("x1", 32), z3.BitVec("x2", 32)
    return Query(
        [x1 != x2], encrypt(x1, f, combine) == encrypt(x2, f, combine),
        {"x1": x1, "x2": x2, **_round_witnesses(x1, f, "x1", combine),
         **_round_witnesses(x2, f, "x2", combine)},
    )


def _inverse() -> Query:
    _, f = uninterpreted_round()
    x, y = z3.BitVec("x", 32), z3.BitVec("y", 32)
    both_ways = z3.And(decrypt(encrypt(x, f), f) == x, encrypt(decrypt(y, f), f) == y)
    return Query([], z3.Not(both_ways), {"x": x, "y": y})


def _inverse_twin() -> Query:
    # Only the Dec(Enc(x)) half; the witnesses are the points where encryption and
    # decryption query F, so the counterexample replays in Python.
    _, f = uninterpreted_round()
    x = z3.BitVec("x", 32)
    y = encrypt(x, f, broken_combine)
    return Query([], decrypt(y, f) != x,
                 {"x": x, **_round_witnesses(x, f, "enc", broken_combine),
                  **_decrypt_witnesses(y, f, "dec")})


OBLIGATIONS: tuple[Obligation, ...] = (
    Obligation(
        "feistel.injective", SECTION, SENTENCE,
        "16+16-bit halves, 10 rounds, F uninterpreted: x1 != x2 and Enc(x1) == Enc(x2) unsat",
        "unsat", lambda: _injective(ff1_combine)),
    Obligation(
        "feistel.injective.twin_noninvertible_round", SECTION, SENTENCE,
        "as feistel.injective with the round c = 2A + F(i, B)",
        "sat", lambda: _injective(broken_combine), twin_of="feistel.injective"),
    Obligation(
        "feistel.inverse", SECTION, SENTENCE,
        "F uninterpreted: Dec(Enc(x)) != x or Enc(Dec(y)) != y is unsat",
        "unsat", _inverse),
    Obligation(
        "feistel.inverse.twin_noninvertible_round", SECTION, SENTENCE,
        "encryption round c = 2A + F(i, B), FF1 decryption: Dec(Enc(x)) != x is sat",
        "sat", _inverse_twin, twin_of="feistel.inverse"),
)
