"""Ciphersuites and HPKE beyond the vectors: the native/portable cross-check,
DeriveKeyPair determinism, typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsvc.crypto import labels
from mlsvc.crypto.suites import SUITES, get_suite
from mlsvc.errors import CryptoError, UnsupportedError

suite_ids = st.sampled_from(sorted(SUITES))


class Counter:
    """A deterministic random source."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.n = seed, 0

    def __call__(self, n: int) -> bytes:
        self.n += 1
        return (self.seed * (n // max(1, len(self.seed)) + 1))[:n]


@settings(max_examples=20)
@given(
    suite_ids, st.binary(min_size=1, max_size=64), st.binary(max_size=100), st.binary(max_size=40)
)
def test_seal_then_native_and_portable_open(sid: int, ikm: bytes, pt: bytes, info: bytes) -> None:
    cs = get_suite(sid)
    sk, pk = cs.kem.derive_key_pair(ikm)
    enc, ct = cs.hpke.seal_base(pk, info, b"", pt, Counter(ikm))
    assert cs.hpke.open_base(enc, sk, info, b"", ct) == pt
    assert cs.hpke.open_base_portable(enc, sk, info, b"", ct) == pt
    with pytest.raises(CryptoError):
        cs.hpke.open_base(enc, sk, info + b"x", b"", ct)


@pytest.mark.parametrize("sid", sorted(SUITES))
def test_injected_randomness_makes_encryption_deterministic(sid: int) -> None:
    cs = get_suite(sid)
    _, pk = cs.kem.derive_key_pair(b"recipient")
    a = labels.encrypt_with_label(cs, pk, b"L", b"ctx", b"pt", Counter(b"seed"))
    b = labels.encrypt_with_label(cs, pk, b"L", b"ctx", b"pt", Counter(b"seed"))
    c = labels.encrypt_with_label(cs, pk, b"L", b"ctx", b"pt", Counter(b"other"))
    assert a == b
    assert a != c


@pytest.mark.parametrize("sid", sorted(SUITES))
def test_signature_keys_derive_deterministically_and_verify(sid: int) -> None:
    cs = get_suite(sid)
    secret = bytes(range(cs.nh))
    sk, pk = cs.signature.derive_key_pair(secret)
    assert (sk, pk) == cs.signature.derive_key_pair(secret)
    sig = labels.sign_with_label(cs, sk, b"L", b"content")
    assert labels.verify_with_label(cs, pk, b"L", b"content", sig)
    assert not labels.verify_with_label(cs, pk, b"L", b"content!", sig)
    assert not labels.verify_with_label(cs, b"\x04garbage", b"L", b"content", sig)


def test_unknown_suite_is_typed() -> None:
    with pytest.raises(UnsupportedError):
        get_suite(0x0A0A)


def test_bad_public_key_is_crypto_error() -> None:
    cs = get_suite(2)
    with pytest.raises(CryptoError):
        labels.encrypt_with_label(cs, b"\x04" + b"\x00" * 64, b"L", b"", b"x", Counter(b"s"))


def test_mac_verification() -> None:
    cs = get_suite(1)
    tag = cs.mac(b"k", b"data")
    assert cs.verify_mac(b"k", b"data", tag)
    assert not cs.verify_mac(b"k", b"data", tag[:-1] + bytes([tag[-1] ^ 1]))
