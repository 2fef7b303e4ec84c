"""FF1 format-preserving encryption (NIST SP 800-38G Rev. 1 §5.1, Algorithms 7 and 8)
on `cryptography`'s AES, and the small-space PRP of draft-ietf-mls-virtual-clients-00
§5.7 as the profile fixes it (DRAFT-00-PROFILE P10, Q5).

Two implementations of one function:

- `FF1`: the general algorithm, any radix in [2, 2^16], any length with
  radix^n >= 1,000,000 (SP 800-38G Rev. 1 §5.2), any tweak, AES-128/192/256. Numeral
  strings are lists of ints, most significant numeral first (NUM_radix, §4.5).
- `prp_encrypt` / `prp_decrypt`: the profile's case only (AES-128, radix 2, 32 numerals,
  empty tweak). A uint32 x is the numeral string of its bits, most significant first
  (P10), so A = x >> 16 and B = x & 0xFFFF, and every step of Algorithm 7 reduces to
  integer operations on 16-bit halves:
    * P is a constant block; Q = 0^13 || [i]^1 || [NUM(B)]^2 is exactly one block, so
      PRF(P || Q) = AES(K, AES(K, P) xor Q): one AES call per round after the first.
    * b = 2 and d = 8 <= 16, so S is the first 8 bytes of R, y = NUM(S), and since only
      y mod 2^16 enters c = (NUM(A) + y) mod 2^16, it is R[6:8].
  Tests compare the two on 10^5 random inputs.

Bit order (P10): the later draft's text and this profile map uint32 -> numerals MSB
first. A public implementation instead reverses the bits within each big-endian byte;
tests/unit/test_ff1.py shows that our values are the MSB-first ones and not the others
(docs/INTEROP.md, D4).

Both profiles (mlsvc.vc.profiles): the later text's §5.6.1 specifies this very
instantiation ("FF1 ... instantiated with AES-128 ..., with radix 2, numeral strings of
length 32, and an empty tweak", bits "from most significant to least significant",
4-byte values big-endian), the one P10 chose where draft-00 §5.7 leaves it open. So
`prp_encrypt` / `prp_decrypt` take no profile; the vc-01 vectors' spec-literal values
(`mlsvc vectors check vc-01 FILE`) confirm it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from mlsvc.crypto.block import BlockEncryptor, aes_block_encryptor
from mlsvc.errors import ParameterError
from mlsvc.vc.codepoints import FF1_AES_KEY_LENGTH, FF1_NUMERALS, FF1_RADIX

# SP 800-38G Rev. 1 §5.2: radix in [2..2^16], radix^minlen >= 1,000,000, maxlen < 2^32.
MIN_RADIX = 2
MAX_RADIX = 1 << 16
MIN_DOMAIN = 1_000_000
MAX_LENGTH = (1 << 32) - 1
MAX_TWEAK_LENGTH = (1 << 32) - 1
ROUNDS = 10
AES_KEY_LENGTHS = (16, 24, 32)

_U32_MAX = (1 << 32) - 1


def _ecb(key: bytes) -> BlockEncryptor:
    """CIPH_K of SP 800-38G §4.3: the AES block cipher (ECB on single blocks)."""
    return aes_block_encryptor(key)


def _check_key(key: bytes, lengths: Sequence[int]) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) not in lengths:
        raise ParameterError(f"AES key must be {' or '.join(map(str, lengths))} bytes")


class FF1:
    """FF1 under one AES key and one radix (SP 800-38G Rev. 1 Algorithms 7 and 8)."""

    def __init__(self, key: bytes, radix: int) -> None:
        _check_key(key, AES_KEY_LENGTHS)
        if not MIN_RADIX <= radix <= MAX_RADIX:
            raise ParameterError(f"FF1 radix {radix} outside [2, 2^16] (SP 800-38G §5.2)")
        self.radix = radix
        self._ciph = _ecb(bytes(key))

    # -- §4.5 NUM / STR ------------------------------------------------------------

    def _num(self, x: Sequence[int]) -> int:
        """NUM_radix(X): the number the numeral string X represents, MSB first."""
        v = 0
        for digit in x:
            v = v * self.radix + digit
        return v

    def _str(self, x: int, m: int) -> list[int]:
        """STR^m_radix(x): the m numerals of x, most significant first."""
        out = [0] * m
        for j in range(m - 1, -1, -1):
            x, out[j] = divmod(x, self.radix)
        return out

    def _check_input(self, x: Sequence[int], tweak: bytes) -> None:
        n = len(x)
        if n < 2 or n > MAX_LENGTH or self.radix**n < MIN_DOMAIN:
            raise ParameterError(
                f"FF1 length {n} out of range for radix {self.radix} "
                "(need n >= 2 and radix^n >= 1,000,000, SP 800-38G §5.2)"
            )
        if len(tweak) > MAX_TWEAK_LENGTH:
            raise ParameterError("FF1 tweak longer than 2^32 - 1 bytes")
        for digit in x:
            if not (isinstance(digit, int) and 0 <= digit < self.radix):
                raise ParameterError(f"numeral {digit!r} not in [0, {self.radix})")

    # -- §5.1 Algorithm 7 steps 1-6 ------------------------------------------------

    def _prf(self, data: bytes) -> bytes:
        """PRF(X) (§4.3, Algorithm 6): CBC-MAC of X under CIPH_K with a zero IV."""
        y = 0
        for off in range(0, len(data), 16):
            block = int.from_bytes(data[off : off + 16], "big") ^ y
            y = int.from_bytes(self._ciph.update(block.to_bytes(16, "big")), "big")
        return y.to_bytes(16, "big")

    def _round_value(self, p: bytes, tweak: bytes, i: int, other: int, b: int, d: int) -> int:
        """Steps 6.i-6.iv: y = NUM(S) for round i, where `other` is NUM_radix of the
        half that is hashed (B when encrypting, A when decrypting)."""
        t = len(tweak)
        q = tweak + bytes((-t - b - 1) % 16) + bytes([i]) + other.to_bytes(b, "big")
        r = self._prf(p + q)
        s = bytearray(r)
        j = 1
        while len(s) < d:  # S = R || CIPH(R xor [1]^16) || CIPH(R xor [2]^16) ...
            blk = (int.from_bytes(r, "big") ^ j).to_bytes(16, "big")
            s += self._ciph.update(blk)
            j += 1
        return int.from_bytes(bytes(s[:d]), "big")

    def _setup(self, n: int, tweak: bytes) -> tuple[int, int, int, int, bytes]:
        """Steps 1-5: u, v, b, d and the block P."""
        u = n // 2
        v = n - u
        # b = ceil(ceil(v * log2(radix)) / 8); ceil(log2(M)) = bit_length(M - 1), exact.
        b = ((self.radix**v - 1).bit_length() + 7) // 8
        d = 4 * ((b + 3) // 4) + 4
        p = (
            bytes([1, 2, 1])
            + self.radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + len(tweak).to_bytes(4, "big")
        )
        return u, v, b, d, p

    def encrypt(self, x: Sequence[int], tweak: bytes = b"") -> list[int]:
        """FF1.Encrypt(K, T, X) (Algorithm 7)."""
        self._check_input(x, tweak)
        n = len(x)
        u, v, b, d, p = self._setup(n, tweak)
        a_num, b_num = self._num(x[:u]), self._num(x[u:])
        for i in range(ROUNDS):
            y = self._round_value(p, tweak, i, b_num, b, d)
            m = u if i % 2 == 0 else v
            c = (a_num + y) % self.radix**m
            a_num, b_num = b_num, c
        # After round 9 (m = v), A has u numerals and B has v numerals.
        return self._str(a_num, u) + self._str(b_num, v)

    def decrypt(self, x: Sequence[int], tweak: bytes = b"") -> list[int]:
        """FF1.Decrypt(K, T, X) (Algorithm 8)."""
        self._check_input(x, tweak)
        n = len(x)
        u, v, b, d, p = self._setup(n, tweak)
        a_num, b_num = self._num(x[:u]), self._num(x[u:])
        for i in range(ROUNDS - 1, -1, -1):
            y = self._round_value(p, tweak, i, a_num, b, d)
            m = u if i % 2 == 0 else v
            c = (b_num - y) % self.radix**m
            a_num, b_num = c, a_num
        return self._str(a_num, u) + self._str(b_num, v)


# --- The profile's small-space PRP (§5.7, P10) -----------------------------------------


def u32_to_numerals(x: int) -> list[int]:
    """P10: a uint32 as 32 radix-2 numerals, most significant bit first."""
    _check_u32(x)
    return [(x >> (31 - j)) & 1 for j in range(FF1_NUMERALS)]


def numerals_to_u32(bits: Sequence[int]) -> int:
    """P10: 32 radix-2 numerals, most significant first, as a uint32."""
    if len(bits) != FF1_NUMERALS or any(bit not in (0, 1) for bit in bits):
        raise ParameterError("expected 32 binary numerals")
    v = 0
    for bit in bits:
        v = (v << 1) | bit
    return v


def _check_u32(x: int) -> None:
    if not isinstance(x, int) or not 0 <= x <= _U32_MAX:
        raise ParameterError(f"{x!r} is not a uint32")


# Algorithm 7 step 5 for radix 2, n = 32, t = 0: [1,2,1] [2]^3 [10] [16 mod 256] [32]^4 [0]^4.
_PROFILE_P = bytes([1, 2, 1, 0, 0, FF1_RADIX, 10, 16, 0, 0, 0, FF1_NUMERALS, 0, 0, 0, 0])


# Q = 0^13 || [i]^1 || [NUM(B)]^2 xor'ed into AES(K, P): the first 13 bytes of AES(K, P),
# then its byte 13 xor i, then its last two bytes xor B. y mod 2^16 = S[6:8] = R[6:8].
_Q_BLOCK = struct.Struct(">13sBH")
_Y_LOW16 = struct.Struct(">6xH8x")


def _profile_state(key: bytes) -> tuple[Callable[[bytes], bytes], bytes, int, int]:
    """CIPH_K and AES(K, P) (the CBC-MAC chaining value every round starts from), split
    as (first 13 bytes, byte 13, last two bytes as an int)."""
    _check_key(key, (FF1_AES_KEY_LENGTH,))
    ciph = _ecb(bytes(key)).update
    c0 = ciph(_PROFILE_P)
    return ciph, c0[:13], c0[13], (c0[14] << 8) | c0[15]


def prp_encrypt(key: bytes, x: int) -> int:
    """SmallSpacePRP.Encrypt(key, x) (§5.7): FF1-AES-128, radix 2, 32 numerals, empty
    tweak, uint32 numerals MSB first (P10). Same output as FF1(key, 2).encrypt."""
    _check_u32(x)
    ciph, head, b13, low = _profile_state(key)
    pack, unpack = _Q_BLOCK.pack, _Y_LOW16.unpack
    a, b = x >> 16, x & 0xFFFF
    for i in range(ROUNDS):
        # R = CIPH(AES(K, P) xor Q); c = (NUM(A) + y) mod 2^16; A = B; B = c.
        a, b = b, (a + unpack(ciph(pack(head, b13 ^ i, low ^ b)))[0]) & 0xFFFF
    return (a << 16) | b


def prp_decrypt(key: bytes, y: int) -> int:
    """SmallSpacePRP.Decrypt(key, y) (§5.7): inverse of `prp_encrypt` (Algorithm 8)."""
    _check_u32(y)
    ciph, head, b13, low = _profile_state(key)
    pack, unpack = _Q_BLOCK.pack, _Y_LOW16.unpack
    a, b = y >> 16, y & 0xFFFF
    for i in range(ROUNDS - 1, -1, -1):
        # Q hashes A; c = (NUM(B) - y) mod 2^16; B = A; A = c.
        a, b = (b - unpack(ciph(pack(head, b13 ^ i, low ^ a)))[0]) & 0xFFFF, a
    return (a << 16) | b


def profile_round_function(key: bytes) -> Callable[[int, int], int]:
    """The profile's FF1 round function F_K(i, B) = NUM(S) mod 2^16 for round i and
    16-bit half B (Algorithm 7 steps 6.i-6.iv). Exposed so that the Z3 Feistel encoding
    of proofs/ can be evaluated with the real round function (tests/proofs)."""
    ciph, head, b13, low = _profile_state(key)

    def f(i: int, b: int) -> int:
        if not (0 <= i < ROUNDS and 0 <= b <= 0xFFFF):
            raise ParameterError("round index or half out of range")
        y: int = _Y_LOW16.unpack(ciph(_Q_BLOCK.pack(head, b13 ^ i, low ^ b)))[0]
        return y

    return f
