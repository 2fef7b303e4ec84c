"""The reuse guard (draft-00 §5.6, §5.8; DRAFT-00-PROFILE P8, P9, P10, Q5).

Known answers: the reuse_guard[] cases of
vectors/third-party/havenmessenger-interop_vc-01-vectors.json. Those cases start from
draft-01's `reuse_guard_secret`, which draft-00 does not have (draft-00/P8 keys the PRP
with leaf_node_secret = encryption_key_secret). The formula from that secret on,
prp_key = ExpandWithLabel(secret, "reuse guard", key_schedule_nonce, 16) and
reuse_guard = FF1(prp_key, x), is the same in both drafts, so we compare prp_key, the
reuse guard for the given x, and the recovered leaf index: not how the secret is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, ParameterError, ValidationError
from mlsvc.types import LeafIndex
from mlsvc.vc.reuse_guard import (
    CHECK_SENDER_NOT_MEMBER,
    choose_x,
    class_member,
    derive_prp_key,
    leaf_count_exponent,
    make_reuse_guard,
    recover_leaf_index,
    recover_x,
)
from tests.conftest import VECTORS

HAVEN = json.loads(
    (VECTORS / "third-party" / "havenmessenger-interop_vc-01-vectors.json").read_text()
)
CS1 = get_suite(1)
CASES = HAVEN["reuse_guard"]


def fixed(value: bytes) -> Callable[[int], bytes]:
    """An injected random source that returns `value` (checking the length asked)."""

    def rng(n: int) -> bytes:
        assert n == len(value)
        return value

    return rng


def test_vector_suite_is_0x0001() -> None:
    assert HAVEN["ciphersuite"] == "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_third_party_reuse_guard(case: dict[str, Any]) -> None:
    secret = bytes.fromhex(case["reuse_guard_secret_hex"])
    nonce = bytes.fromhex(case["key_schedule_nonce_hex"])
    n, leaf, x = case["n_e"], case["leaf_index_e"], case["x"]
    assert x % n == leaf
    assert derive_prp_key(CS1, secret, nonce).hex() == case["ours_prp_key_hex"]
    # The draw x itself selects x: its low bits already are leaf_index.
    guard = make_reuse_guard(CS1, secret, nonce, LeafIndex(leaf), n, fixed(x.to_bytes(4, "big")))
    assert guard.hex() == case["ours_reuse_guard_hex"]
    assert guard.hex() != case["openmls_reuse_guard_hex"]
    assert recover_leaf_index(CS1, secret, nonce, guard, n) == case["ours_recovered_leaf_index"]
    assert recover_x(CS1, secret, nonce, guard) == x


def _expand_with_label_by_hand(hash_alg: hashes.HashAlgorithm, secret: bytes, label: bytes,
                               context: bytes, length: int) -> bytes:
    # RFC 9420 §8: KDFLabel { uint16 length; opaque label<V>; opaque context<V> },
    # lengths < 64 so each varint prefix is one byte.
    full = b"MLS 1.0 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hash_alg, length, info).derive(secret)


@pytest.mark.parametrize("suite_id, hash_alg, nh", [(1, hashes.SHA256(), 32),
                                                     (4, hashes.SHA512(), 64),
                                                     (7, hashes.SHA384(), 48)])
def test_prp_key_uses_the_emulation_suite(suite_id: int, hash_alg: hashes.HashAlgorithm,
                                          nh: int) -> None:
    cs = get_suite(suite_id)
    secret, nonce = bytes(range(nh)), bytes(range(100, 112))
    expected = _expand_with_label_by_hand(hash_alg, secret, b"reuse guard", nonce, 16)
    assert derive_prp_key(cs, secret, nonce) == expected


# --- choosing x ----------------------------------------------------------------------


def test_choose_x_boundaries() -> None:
    ones, zeros = fixed(b"\xff\xff\xff\xff"), fixed(b"\x00\x00\x00\x00")
    assert choose_x(3, 4, ones) == 0xFFFFFFFF
    assert choose_x(3, 4, zeros) == 3
    assert choose_x(0, 4, ones) == 0xFFFFFFFC
    assert choose_x(0, 1, fixed(b"\x12\x34\x56\x78")) == 0x12345678  # N = 1: x = draw
    assert choose_x(0xDEADBEEF, 1 << 32, ones) == 0xDEADBEEF  # N = 2^32: x = leaf
    assert choose_x(5, 8, fixed(b"\x12\x34\x56\x78")) == 0x1234567D


def test_class_has_2_to_the_32_minus_k_members() -> None:
    """For N = 2^28, the 16 draws q << 28 give 16 distinct members, all in the class:
    2^32 / N of them (the partition.class_size obligation proves it for every k)."""
    k, leaf = 28, 0xABCDEF1
    xs = {class_member(q << k, leaf, k) for q in range(16)}
    assert len(xs) == 16
    assert all(x % (1 << k) == leaf and x < 1 << 32 for x in xs)


@given(k=st.integers(0, 32), r=st.integers(0, 2**32 - 1), data=st.data())
def test_choose_x_stays_in_class(k: int, r: int, data: st.DataObject) -> None:
    leaf = data.draw(st.integers(0, 2**k - 1))
    x = choose_x(leaf, 1 << k, fixed(r.to_bytes(4, "big")))
    assert 0 <= x < 2**32
    assert x % (1 << k) == leaf
    assert x >> k == r >> k  # q = r >> k: uniform when r is


@given(k=st.integers(1, 32), r1=st.integers(0, 2**32 - 1), r2=st.integers(0, 2**32 - 1),
       nonce=st.binary(min_size=12, max_size=12), data=st.data())
def test_distinct_leaves_never_collide_and_recover(k: int, r1: int, r2: int, nonce: bytes,
                                                   data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 2**k - 1))
    j = data.draw(st.integers(0, 2**k - 1).filter(lambda v: v != i))
    secret = bytes(32)
    n = 1 << k
    g1 = make_reuse_guard(CS1, secret, nonce, LeafIndex(i), n, fixed(r1.to_bytes(4, "big")))
    g2 = make_reuse_guard(CS1, secret, nonce, LeafIndex(j), n, fixed(r2.to_bytes(4, "big")))
    assert len(g1) == len(g2) == 4
    assert g1 != g2
    assert recover_leaf_index(CS1, secret, nonce, g1, n) == i
    assert recover_leaf_index(CS1, secret, nonce, g2, n) == j


def test_members_check() -> None:
    secret, nonce = bytes(32), bytes(12)
    guard = make_reuse_guard(CS1, secret, nonce, LeafIndex(2), 4, fixed(bytes(4)))
    assert recover_leaf_index(CS1, secret, nonce, guard, 4, members={0, 2}) == 2
    with pytest.raises(ValidationError) as info:
        recover_leaf_index(CS1, secret, nonce, guard, 4, members={0, 1})
    assert info.value.check_id == CHECK_SENDER_NOT_MEMBER


# --- typed errors --------------------------------------------------------------------

S32, NONCE = bytes(32), bytes(12)


@pytest.mark.parametrize("n", [0, -4, 3, 6, 12, (1 << 32) + 1, 1 << 33, True])
def test_bad_leaf_count(n: int) -> None:
    with pytest.raises(ParameterError):
        leaf_count_exponent(n)
    with pytest.raises(ParameterError):
        make_reuse_guard(CS1, S32, NONCE, LeafIndex(0), n, fixed(bytes(4)))
    with pytest.raises(ParameterError):
        recover_leaf_index(CS1, S32, NONCE, bytes(4), n)


def test_leaf_count_exponents() -> None:
    assert [leaf_count_exponent(1 << k) for k in range(33)] == list(range(33))


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_reuse_guard(CS1, S32, NONCE, LeafIndex(4), 4, fixed(bytes(4))),
        lambda: make_reuse_guard(CS1, S32, NONCE, LeafIndex(-1), 4, fixed(bytes(4))),
        lambda: make_reuse_guard(CS1, bytes(31), NONCE, LeafIndex(0), 4, fixed(bytes(4))),
        lambda: make_reuse_guard(CS1, bytes(64), NONCE, LeafIndex(0), 4, fixed(bytes(4))),
        lambda: make_reuse_guard(CS1, S32, b"", LeafIndex(0), 4, fixed(bytes(4))),
        lambda: make_reuse_guard(CS1, S32, NONCE, LeafIndex(0), 4, lambda n: bytes(3)),
        lambda: recover_leaf_index(CS1, bytes(16), NONCE, bytes(4), 4),
    ],
)
def test_caller_errors(call: Callable[[], object]) -> None:
    with pytest.raises(ParameterError):
        call()


@pytest.mark.parametrize("guard", [b"", bytes(3), bytes(5)])
def test_received_guard_of_wrong_length(guard: bytes) -> None:
    with pytest.raises(DecodeError):
        recover_leaf_index(CS1, S32, NONCE, guard, 4)
