"""FF1 (NIST SP 800-38G) and the profile's small-space PRP (draft-00 §5.7, P10).

Known answers: every vector in vectors/ff1/nist-ff1.json (NIST samples and ACVP), and
the FF1 values of vectors/third-party/havenmessenger-interop_vc-01-vectors.json, whose
"ours_*" values use the MSB-first bit mapping of P10 and "openmls_*" values reverse the
bits within each big-endian byte. The fast path is compared with the general algorithm.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from mlsvc.errors import ParameterError
from mlsvc.vc.ff1 import (
    FF1,
    numerals_to_u32,
    profile_round_function,
    prp_decrypt,
    prp_encrypt,
    u32_to_numerals,
)
from tests.conftest import VECTORS

NIST = json.loads((VECTORS / "ff1" / "nist-ff1.json").read_text())
HAVEN = json.loads(
    (VECTORS / "third-party" / "havenmessenger-interop_vc-01-vectors.json").read_text()
)
ALNUM36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _alphabet(case: dict[str, Any]) -> str:
    alphabet = case.get("alphabet")
    if isinstance(alphabet, str):
        return alphabet
    radix = int(case["radix"])
    assert radix <= 36, "vector file: radix > 36 must name its alphabet"
    return ALNUM36[:radix]


ALL_NIST = [(f"sample{c['sample']}", c) for c in NIST["nist_sp800_38g_samples"]] + [
    (f"acvp{c['tcId']}", c) for c in NIST["acvp_sample_vectors"]
]


def test_vector_file_is_complete() -> None:
    assert len(NIST["nist_sp800_38g_samples"]) == 9
    assert len(NIST["acvp_sample_vectors"]) == 7


@pytest.mark.parametrize("case", [c for _, c in ALL_NIST], ids=[n for n, _ in ALL_NIST])
def test_nist_vector(case: dict[str, Any]) -> None:
    alphabet = _alphabet(case)
    assert len(alphabet) == case["radix"]
    key = bytes.fromhex(case["key"])
    assert len(key) * 8 == case["aes"]
    tweak = bytes.fromhex(case["tweak"])
    ff1 = FF1(key, case["radix"])
    pt = [alphabet.index(ch) for ch in case["plaintext"]]
    ct = [alphabet.index(ch) for ch in case["ciphertext"]]
    assert ff1.encrypt(pt, tweak) == ct
    assert ff1.decrypt(ct, tweak) == pt


# --- the profile's PRP and the bit order (P10) ---------------------------------------


def _reverse_bits_in_bytes(x: int) -> int:
    """Reverse the bit order inside each byte of x's big-endian encoding: the mapping
    of fpe's BinaryNumeralString::from_bytes_le(x.to_be_bytes()). An involution."""
    out = bytearray()
    for byte in x.to_bytes(4, "big"):
        out.append(int(f"{byte:08b}"[::-1], 2))
    return int.from_bytes(out, "big")


def _bit_reversed_encrypt(key: bytes, x: int) -> int:
    """The deliberately wrong variant: LSB-first numerals within each byte."""
    bits = u32_to_numerals(_reverse_bits_in_bytes(x))
    return _reverse_bits_in_bytes(numerals_to_u32(FF1(key, 2).encrypt(bits)))


PRP_CASES = HAVEN["small_space_prp"]


@pytest.mark.parametrize("case", PRP_CASES, ids=[c["case"] for c in PRP_CASES])
def test_prp_reproduces_msb_first_values(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["key_hex"])
    x = case["plaintext"]
    assert prp_encrypt(key, x) == case["ours_ciphertext"]
    assert prp_decrypt(key, case["ours_ciphertext"]) == x
    general = FF1(key, 2)
    assert numerals_to_u32(general.encrypt(u32_to_numerals(x))) == case["ours_ciphertext"]
    assert prp_encrypt(key, x) != case["openmls_ciphertext"]


@pytest.mark.parametrize("case", PRP_CASES, ids=[c["case"] for c in PRP_CASES])
def test_bit_reversed_variant_reproduces_openmls_values(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["key_hex"])
    assert _bit_reversed_encrypt(key, case["plaintext"]) == case["openmls_ciphertext"]
    assert _bit_reversed_encrypt(key, case["plaintext"]) != case["ours_ciphertext"]


def test_reuse_guard_cases_tell_bit_orders_apart() -> None:
    """The reuse_guard[] cases give x and prp_key: FF1 of x only (their prp_key label
    derivation is checked in test_reuse_guard)."""
    for case in HAVEN["reuse_guard"]:
        key = bytes.fromhex(case["ours_prp_key_hex"])
        ours = bytes.fromhex(case["ours_reuse_guard_hex"])
        theirs = bytes.fromhex(case["openmls_reuse_guard_hex"])
        assert prp_encrypt(key, case["x"]).to_bytes(4, "big") == ours
        assert _bit_reversed_encrypt(key, case["x"]).to_bytes(4, "big") == theirs
        assert ours != theirs


def test_numeral_mapping_is_msb_first() -> None:
    assert u32_to_numerals(0x80000001) == [1] + [0] * 30 + [1]
    assert u32_to_numerals(0x00000002)[-2:] == [1, 0]
    assert numerals_to_u32([0] * 31 + [1]) == 1
    assert _reverse_bits_in_bytes(0x01020304) == 0x8040C020


# --- fast path == general FF1 --------------------------------------------------------


def _compare(n: int, seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(n):
        key = rnd.randbytes(16)
        x = rnd.getrandbits(32)
        y = prp_encrypt(key, x)
        assert numerals_to_u32(FF1(key, 2).encrypt(u32_to_numerals(x))) == y, (key.hex(), x)
        assert prp_decrypt(key, y) == x


def test_fast_path_matches_general_1e5() -> None:
    """10^5 random (key, x): about 5 s on one core, so it runs by default."""
    _compare(100_000, seed=0x5EED)


def test_fast_path_decrypt_matches_general() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        key, y = rnd.randbytes(16), rnd.getrandbits(32)
        assert prp_decrypt(key, y) == numerals_to_u32(FF1(key, 2).decrypt(u32_to_numerals(y)))


@pytest.mark.slow  # about 45 s: deselected by default, run by make test-long
def test_fast_path_matches_general_1e6() -> None:
    _compare(1_000_000, seed=0xF00D)


def test_round_function_matches_fast_path() -> None:
    """The round function exported for the proofs' Feistel encoding rebuilds the PRP."""
    key = bytes(range(16))
    f = profile_round_function(key)
    for x in (0, 1, 0xFFFFFFFF, 0x12345678):
        a, b = x >> 16, x & 0xFFFF
        for i in range(10):
            a, b = b, (a + f(i, b)) & 0xFFFF
        assert (a << 16) | b == prp_encrypt(key, x)
    with pytest.raises(ParameterError):
        f(10, 0)


def test_general_ff1_other_lengths_roundtrip() -> None:
    rnd = random.Random(3)
    for radix, n in ((2, 20), (2, 33), (10, 7), (10, 6), (36, 5), (65536, 2), (7, 11)):
        for key_len in (16, 24, 32):
            ff1 = FF1(rnd.randbytes(key_len), radix)
            x = [rnd.randrange(radix) for _ in range(n)]
            for tweak in (b"", b"t", rnd.randbytes(40)):
                y = ff1.encrypt(x, tweak)
                assert len(y) == n and all(0 <= d < radix for d in y)
                assert ff1.decrypt(y, tweak) == x


# --- typed errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: prp_encrypt(bytes(15), 0),
        lambda: prp_encrypt(bytes(24), 0),  # Q5: AES-128 only
        lambda: prp_decrypt(bytes(17), 0),
        lambda: prp_encrypt(bytes(16), 1 << 32),
        lambda: prp_encrypt(bytes(16), -1),
        lambda: FF1(bytes(20), 10),
        lambda: FF1(bytes(16), 1),
        lambda: FF1(bytes(16), (1 << 16) + 1),
        lambda: FF1(bytes(16), 10).encrypt([1, 2, 3, 4, 5]),  # 10^5 < 10^6
        lambda: FF1(bytes(16), 2).encrypt([0] * 19),  # 2^19 < 10^6
        lambda: FF1(bytes(16), 10).encrypt([0] * 9 + [10]),
        lambda: numerals_to_u32([0] * 31),
        lambda: numerals_to_u32([0] * 31 + [2]),
        lambda: u32_to_numerals(1 << 32),
    ],
)
def test_parameter_errors(call: Callable[[], object]) -> None:
    with pytest.raises(ParameterError):
        call()
