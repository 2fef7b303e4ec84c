"""Uniqueness and recovery of reuse guards (draft-ietf-mls-virtual-clients-00 §5.6,
§5.8; DRAFT-00-PROFILE P9, P10).

The two obligations compose the sampler of `partition` (64-bit, k <= 32 symbolic) with
the FF1 Feistel network of `feistel` (round function uninterpreted: any prp_key). Both
emulators derive the same prp_key from the same (leaf_node_secret, key_schedule_nonce),
so they share one F.
"""

from __future__ import annotations

import z3

from mlsvc_proofs import feistel
from mlsvc_proofs.obligation import Obligation, Query
from mlsvc_proofs.partition import W, bv, is_u32, leaf_count, sample, valid_exponent

SECTION = "draft-00 §5.6, §5.8, P9, P10"
UNIQUE_SENTENCE = ("reuse_guard is computed in a way that ... two emulator clients will "
                   "never generate the same value")
RECOVER_SENTENCE = ("x modulo the number of leaves in the emulation group is equal to its "
                    "leaf_index (recipients recover leaf_index = Decrypt(prp_key, "
                    "reuse_guard) mod N, as the later draft states)")


def _u32(x64: z3.BitVecRef) -> z3.BitVecRef:
    return z3.Extract(31, 0, x64)


def _widen(x32: z3.BitVecRef) -> z3.BitVecRef:
    return z3.ZeroExt(W - 32, x32)


def _unique(disagree: bool) -> Query:
    _, f = feistel.uninterpreted_round()
    ka, r1, r2, i, j = bv("ka"), bv("r1"), bv("r2"), bv("i"), bv("j")
    kb = bv("kb") if disagree else ka
    g1 = feistel.encrypt(_u32(sample(r1, i, ka)), f)
    g2 = feistel.encrypt(_u32(sample(r2, j, kb)), f)
    premises = [valid_exponent(ka), valid_exponent(kb), is_u32(r1), is_u32(r2),
                z3.ULT(i, leaf_count(ka)), z3.ULT(j, leaf_count(kb)), i != j]
    if disagree:
        premises.append(ka != kb)
    return Query(premises, g1 == g2, {"ka": ka, "kb": kb, "r1": r1, "r2": r2, "i": i, "j": j})


def _recover(disagree: bool) -> Query:
    _, f = feistel.uninterpreted_round()
    ks, r, i = bv("ks"), bv("r"), bv("i")
    kr = bv("kr") if disagree else ks
    guard = feistel.encrypt(_u32(sample(r, i, ks)), f)
    recovered = z3.URem(_widen(feistel.decrypt(guard, f)), leaf_count(kr))
    premises = [valid_exponent(ks), valid_exponent(kr), is_u32(r), z3.ULT(i, leaf_count(ks))]
    if disagree:
        premises.append(ks != kr)
    return Query(premises, recovered != i, {"ks": ks, "kr": kr, "r": r, "i": i})


OBLIGATIONS: tuple[Obligation, ...] = (
    Obligation(
        "reuse_guard.unique", SECTION, UNIQUE_SENTENCE,
        "k<=32, i!=j < 2^k, any draws, any F: Enc(sample(r1,i)) == Enc(sample(r2,j)) unsat",
        "unsat", lambda: _unique(False)),
    Obligation(
        "reuse_guard.unique.twin_disagree_n", SECTION, UNIQUE_SENTENCE,
        "as reuse_guard.unique with the two emulators on leaf counts 2^ka != 2^kb",
        "sat", lambda: _unique(True), twin_of="reuse_guard.unique"),
    Obligation(
        "reuse_guard.recover", SECTION, RECOVER_SENTENCE,
        "k<=32, i < 2^k, any draw, any F: Dec(Enc(sample(r,i))) mod 2^k != i unsat",
        "unsat", lambda: _recover(False)),
    Obligation(
        "reuse_guard.recover.twin_disagree_n", SECTION, RECOVER_SENTENCE,
        "as reuse_guard.recover with sender on 2^ks leaves, receiver on 2^kr != 2^ks",
        "sat", lambda: _recover(True), twin_of="reuse_guard.recover"),
)
