"""FF1's long-input path, checked against a second FF1 written here from NIST SP 800-38G
Rev. 1 (§4.5 NUM/STR, §5.1 Algorithms 6-8), and the input checks at their bounds.

`mlsvc.vc.ff1.FF1` builds S in step 6.iii by extending R with CIPH(R xor [j]^16) only
when d > 16, i.e. when radix^v > 2^96 (b > 12). The NIST samples never get there, so a
wrong counter in that loop would still round-trip. The reference below follows the
standard's text step by step with its own helpers (byte strings, Python's AES-ECB from
`cryptography` used directly, S as the concatenation the standard writes), shares no
code with the implementation, is itself checked on every NIST sample, and then judges
the implementation on inputs that take the loop, once (d = 20) and several times.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError
from mlsvc.types import LeafIndex
from mlsvc.vc.ff1 import FF1, profile_round_function
from mlsvc.vc.reuse_guard import choose_x, make_reuse_guard
from tests.conftest import VECTORS

NIST = json.loads((VECTORS / "ff1" / "nist-ff1.json").read_text())
ALNUM36 = "0123456789abcdefghijklmnopqrstuvwxyz"


# --- the reference, from SP 800-38G Rev. 1 -------------------------------------------


def _ciph(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _prf(key: bytes, x: bytes) -> bytes:
    """Algorithm 6: Y_0 = 0^128, Y_j = CIPH_K(Y_{j-1} xor X_j), output Y_m."""
    y = bytes(16)
    for j in range(len(x) // 16):
        xj = x[16 * j: 16 * j + 16]
        y = _ciph(key, bytes(a ^ b for a, b in zip(y, xj, strict=True)))
    return y


def _num_radix(x: list[int], radix: int) -> int:
    """§4.5 NUM_radix(X): sum x_i * radix^(m-i)."""
    m = len(x)
    total = 0
    for i in range(m):
        total = total * radix + x[i]
    return total


def _str_radix(x: int, radix: int, m: int) -> list[int]:
    """§4.5 STR^m_radix(x): the X with NUM_radix(X) = x, X[i] = floor(x / radix^(m-i))
    mod radix."""
    return [(x // radix ** (m - 1 - i)) % radix for i in range(m)]


def _be(x: int, s: int) -> bytes:
    """[x]^s: x as s bytes, most significant first."""
    return x.to_bytes(s, "big")


def ref_ff1(key: bytes, radix: int, tweak: bytes, x: list[int], *, decrypt: bool = False
            ) -> list[int]:
    """Algorithm 7 (FF1.Encrypt), or Algorithm 8 (FF1.Decrypt) with `decrypt`."""
    n, t = len(x), len(tweak)
    u = n // 2  # step 1
    v = n - u
    a, b_half = x[:u], x[u:]  # step 2
    b = math.ceil(math.ceil(v * math.log2(radix)) / 8)  # step 3
    if radix ** v > 1 << (8 * b):  # guard log2 rounding (never taken for these radixes)
        b += 1
    d = 4 * math.ceil(b / 4) + 4  # step 4
    p = (_be(1, 1) + _be(2, 1) + _be(1, 1) + _be(radix, 3) + _be(10, 1) + _be(u % 256, 1)
         + _be(n, 4) + _be(t, 4))  # step 5
    rounds = range(9, -1, -1) if decrypt else range(10)
    for i in rounds:  # step 6
        hashed = a if decrypt else b_half
        q = tweak + _be(0, (-t - b - 1) % 16) + _be(i, 1) + _be(_num_radix(hashed, radix), b)
        r = _prf(key, p + q)
        s = r
        for j in range(1, math.ceil(d / 16)):
            s += _ciph(key, bytes(c ^ k for c, k in zip(r, _be(j, 16), strict=True)))
        y = int.from_bytes(s[:d], "big")
        m = u if i % 2 == 0 else v
        if decrypt:
            c = (_num_radix(b_half, radix) - y) % radix ** m
            a, b_half = _str_radix(c, radix, m), a
        else:
            c = (_num_radix(a, radix) + y) % radix ** m
            a, b_half = b_half, _str_radix(c, radix, m)
    return a + b_half


def _alphabet(case: dict[str, Any]) -> str:
    alphabet = case.get("alphabet")
    return alphabet if isinstance(alphabet, str) else ALNUM36[: int(case["radix"])]


NIST_CASES = NIST["nist_sp800_38g_samples"] + NIST["acvp_sample_vectors"]


@pytest.mark.parametrize("case", NIST_CASES)
def test_the_reference_reproduces_every_nist_vector(case: dict[str, Any]) -> None:
    alphabet = _alphabet(case)
    key, tweak = bytes.fromhex(case["key"]), bytes.fromhex(case["tweak"])
    pt = [alphabet.index(ch) for ch in case["plaintext"]]
    ct = [alphabet.index(ch) for ch in case["ciphertext"]]
    assert ref_ff1(key, case["radix"], tweak, pt) == ct
    assert ref_ff1(key, case["radix"], tweak, ct, decrypt=True) == pt


def _d(radix: int, n: int) -> int:
    v = n - n // 2
    b = (int(radix ** v - 1).bit_length() + 7) // 8
    return 4 * ((b + 3) // 4) + 4


# (radix, n): each takes the S-extension loop; d = 20 needs one extra block, d = 44 two
# (2, 513) and (2, 600): u >= 256, where P carries u mod 256 (step 5)
LONG = [(10, 60), (10, 57), (2, 200), (36, 40), (65536, 14), (10, 200), (65536, 40),
        (2, 513), (2, 600)]


@pytest.mark.parametrize(("radix", "n"), LONG)
def test_long_inputs_take_the_extension_loop_and_match_the_reference(radix: int, n: int
                                                                   ) -> None:
    assert _d(radix, n) > 16
    rnd = random.Random(radix * 1000 + n)
    for key_len in (16, 24, 32):
        key = rnd.randbytes(key_len)
        ff1 = FF1(key, radix)
        for tweak in (b"", rnd.randbytes(11)):
            x = [rnd.randrange(radix) for _ in range(n)]
            expected = ref_ff1(key, radix, tweak, x)
            assert ff1.encrypt(x, tweak) == expected
            assert ff1.decrypt(expected, tweak) == x
            assert ref_ff1(key, radix, tweak, expected, decrypt=True) == x


def test_loop_counts_cover_one_and_several_extra_blocks() -> None:
    extra_blocks = {math.ceil(_d(r, n) / 16) - 1 for r, n in LONG}
    assert extra_blocks >= {1, 2}


def test_short_and_long_sides_of_the_d_bound() -> None:
    """radix 2: v = 96 bits gives b = 12, d = 16 (no loop); v = 97 gives b = 13, d = 20."""
    assert _d(2, 192) == 16 and _d(2, 194) == 20
    rnd = random.Random(7)
    key = rnd.randbytes(16)
    for n in (192, 193, 194):
        x = [rnd.randrange(2) for _ in range(n)]
        assert FF1(key, 2).encrypt(x, b"") == ref_ff1(key, 2, b"", x)


# --- input checks at their bounds ----------------------------------------------------


@pytest.mark.parametrize("digit", [-1, -(1 << 40)])
def test_negative_numerals_are_refused(digit: int) -> None:
    for call in (FF1(bytes(16), 10).encrypt, FF1(bytes(16), 10).decrypt):
        with pytest.raises(ParameterError):
            call([digit] + [0] * 9)


@pytest.mark.parametrize("key", ["0123456789abcdef", list(range(16)), 16, None],
                         ids=["str", "list", "int", "none"])
def test_non_bytes_keys_are_refused(key: object) -> None:
    with pytest.raises(ParameterError):
        FF1(key, 10)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        profile_round_function(key)  # type: ignore[arg-type]


@pytest.mark.parametrize(("i", "half"), [(-1, 0), (0, -1), (10, 0), (0, 0x10000)])
def test_round_function_refuses_out_of_range(i: int, half: int) -> None:
    f = profile_round_function(bytes(16))
    with pytest.raises(ParameterError):
        f(i, half)


@pytest.mark.parametrize(("i", "half"), [(0, 0), (9, 0xFFFF), (9, 0), (0, 0xFFFF)])
def test_round_function_accepts_its_bounds(i: int, half: int) -> None:
    f = profile_round_function(bytes(16))
    assert 0 <= f(i, half) <= 0xFFFF


def test_radix_and_length_bounds() -> None:
    """SP 800-38G §5.2: radix in [2, 2^16]; n >= 2 and radix^n >= 10^6."""
    FF1(bytes(16), 2)
    FF1(bytes(16), 1 << 16)
    FF1(bytes(16), 10).encrypt([0] * 6)  # 10^6 exactly
    with pytest.raises(ParameterError):
        FF1(bytes(16), 10).encrypt([0] * 5)
    FF1(bytes(16), 1000).encrypt([0] * 2)  # 1000^2 = 10^6 exactly
    with pytest.raises(ParameterError):
        FF1(bytes(16), 999).encrypt([0] * 2)
    with pytest.raises(ParameterError):
        FF1(bytes(16), 1 << 16).encrypt([0])  # n = 1 < 2 though radix^1 is large enough
    FF1(bytes(16), 10).encrypt([9] * 6)  # the largest numeral
    with pytest.raises(ParameterError):
        FF1(bytes(16), 10).encrypt([10] + [0] * 5)


# --- LeafIndex: a bool is refused as N already is -----------------------------------


@pytest.mark.parametrize("leaf", [True, False])
def test_bool_leaf_index_is_refused(leaf: bool) -> None:
    cs = get_suite(1)
    with pytest.raises(ParameterError):
        choose_x(leaf, 2, lambda n: bytes(n))
    with pytest.raises(ParameterError):
        make_reuse_guard(cs, bytes(cs.nh), b"nonce", LeafIndex(leaf), 2, lambda n: bytes(n))
    with pytest.raises(ParameterError):  # N given as a bool, for comparison
        choose_x(0, True, lambda n: bytes(n))
    assert choose_x(int(leaf), 2, lambda n: bytes(n)) == int(leaf)
