"""HPKE base mode (RFC 9180) with DHKEM, as RFC 9420 uses it.

`cryptography` ships HPKE natively for DHKEM(X25519), DHKEM(P-256/384/521); it lacks
three things MLS needs, which are written here and nothing more:

- DeriveKeyPair (RFC 9180 §7.1.3), used by RFC 9420 §4 for node keys from secrets;
- DHKEM(X448, HKDF-SHA512), needed by ciphersuites 4 and 6;
- encryption with an ephemeral key drawn from a caller-injected random source (the
  native API draws it internally, which would make tests and emulators
  non-deterministic). Encryption therefore always runs through `seal_base` here;
  decryption uses the native implementation where it covers the KEM (see `open_base`),
  and a test cross-checks the two paths.

Only the single-shot base mode with empty AAD and sequence number 0 is needed by MLS
(RFC 9420 §5.1.3 EncryptWithLabel: SealBase(pk, context, "", plaintext)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives import hpke as native
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mlsvc.errors import CryptoError


class KemId(IntEnum):
    """RFC 9180 §7.1."""

    DHKEM_P256_SHA256 = 0x0010
    DHKEM_P384_SHA384 = 0x0011
    DHKEM_P521_SHA512 = 0x0012
    DHKEM_X25519_SHA256 = 0x0020
    DHKEM_X448_SHA512 = 0x0021


class KdfId(IntEnum):
    """RFC 9180 §7.2."""

    HKDF_SHA256 = 0x0001
    HKDF_SHA384 = 0x0002
    HKDF_SHA512 = 0x0003


class AeadId(IntEnum):
    """RFC 9180 §7.3."""

    AES_128_GCM = 0x0001
    AES_256_GCM = 0x0002
    CHACHA20_POLY1305 = 0x0003


_HASHES: dict[KdfId, type[hashes.HashAlgorithm]] = {
    KdfId.HKDF_SHA256: hashes.SHA256,
    KdfId.HKDF_SHA384: hashes.SHA384,
    KdfId.HKDF_SHA512: hashes.SHA512,
}
_NH = {KdfId.HKDF_SHA256: 32, KdfId.HKDF_SHA384: 48, KdfId.HKDF_SHA512: 64}


@dataclass(frozen=True)
class Kdf:
    """HKDF with one hash (RFC 5869), as `cryptography` provides it."""

    id: KdfId

    @property
    def nh(self) -> int:
        return _NH[self.id]

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        h = hmac.HMAC(salt if salt else b"\x00" * self.nh, _HASHES[self.id]())
        h.update(ikm)
        return h.finalize()

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return HKDFExpand(_HASHES[self.id](), length, info).derive(prk)

    def mac(self, key: bytes, data: bytes) -> bytes:
        h = hmac.HMAC(key, _HASHES[self.id]())
        h.update(data)
        return h.finalize()

    def hash(self, data: bytes) -> bytes:
        h = hashes.Hash(_HASHES[self.id]())
        h.update(data)
        return h.finalize()


@dataclass(frozen=True)
class Aead:
    """The AEADs of RFC 9420 ciphersuites, on `cryptography`."""

    id: AeadId

    @property
    def nk(self) -> int:
        return 16 if self.id == AeadId.AES_128_GCM else 32

    @property
    def nn(self) -> int:
        return 12

    def _cipher(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        if len(key) != self.nk:
            raise CryptoError(f"AEAD key must be {self.nk} bytes, got {len(key)}")
        if self.id == AeadId.CHACHA20_POLY1305:
            return ChaCha20Poly1305(key)
        return AESGCM(key)

    def seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._cipher(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._cipher(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise CryptoError("AEAD authentication failed") from None


class RandomSource(Protocol):
    """An injected source of random bytes (os.urandom in production)."""

    def __call__(self, n: int, /) -> bytes: ...


_CURVES: dict[KemId, tuple[ec.EllipticCurve, int, int]] = {
    # curve, Nsk, order
    KemId.DHKEM_P256_SHA256: (
        ec.SECP256R1(),
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    KemId.DHKEM_P384_SHA384: (
        ec.SECP384R1(),
        48,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    ),
    KemId.DHKEM_P521_SHA512: (
        ec.SECP521R1(),
        66,
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
    ),
}
_KEM_KDF = {
    KemId.DHKEM_P256_SHA256: KdfId.HKDF_SHA256,
    KemId.DHKEM_P384_SHA384: KdfId.HKDF_SHA384,
    KemId.DHKEM_P521_SHA512: KdfId.HKDF_SHA512,
    KemId.DHKEM_X25519_SHA256: KdfId.HKDF_SHA256,
    KemId.DHKEM_X448_SHA512: KdfId.HKDF_SHA512,
}
_NATIVE_KEM = {
    KemId.DHKEM_P256_SHA256: native.KEM.P256,
    KemId.DHKEM_P384_SHA384: native.KEM.P384,
    KemId.DHKEM_P521_SHA512: native.KEM.P521,
    KemId.DHKEM_X25519_SHA256: native.KEM.X25519,
}
_NATIVE_KDF = {
    KdfId.HKDF_SHA256: native.KDF.HKDF_SHA256,
    KdfId.HKDF_SHA384: native.KDF.HKDF_SHA384,
    KdfId.HKDF_SHA512: native.KDF.HKDF_SHA512,
}
_NATIVE_AEAD = {
    AeadId.AES_128_GCM: native.AEAD.AES_128_GCM,
    AeadId.AES_256_GCM: native.AEAD.AES_256_GCM,
    AeadId.CHACHA20_POLY1305: native.AEAD.CHACHA20_POLY1305,
}

_PrivateKey = x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class DhKem:
    """DHKEM(Group, HKDF) of RFC 9180 §4.1. Keys travel as raw bytes:
    private keys as Nsk-byte scalars, public keys as SerializePublicKey output."""

    id: KemId

    @property
    def kdf(self) -> Kdf:
        return Kdf(_KEM_KDF[self.id])

    @property
    def suite_id(self) -> bytes:
        return b"KEM" + self.id.to_bytes(2, "big")

    @property
    def nsk(self) -> int:
        if self.id in _CURVES:
            return _CURVES[self.id][1]
        return 32 if self.id == KemId.DHKEM_X25519_SHA256 else 56

    @property
    def nsecret(self) -> int:
        return self.kdf.nh

    def labeled_extract(self, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return self.kdf.extract(salt, b"HPKE-v1" + self.suite_id + label + ikm)

    def labeled_expand(self, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return self.kdf.expand(
            prk, length.to_bytes(2, "big") + b"HPKE-v1" + self.suite_id + label + info, length
        )

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """RFC 9180 §7.1.3 DeriveKeyPair; returns (private, public) as bytes."""
        sk = self._derive_private(ikm)
        return _private_bytes(sk, self.nsk), _public_bytes(sk)

    def _derive_private(self, ikm: bytes) -> _PrivateKey:
        dkp_prk = self.labeled_extract(b"", b"dkp_prk", ikm)
        if self.id in _CURVES:
            _, nsk, order = _CURVES[self.id]
            bitmask = 0x01 if self.id == KemId.DHKEM_P521_SHA512 else 0xFF
            for counter in range(256):
                candidate = bytearray(
                    self.labeled_expand(dkp_prk, b"candidate", bytes([counter]), nsk)
                )
                candidate[0] &= bitmask
                sk = int.from_bytes(candidate, "big")
                if sk != 0 and sk < order:
                    return _load_private_uncached(self.id, bytes(candidate))
            raise CryptoError("DeriveKeyPairError")  # pragma: no cover - probability 2^-256
        return _load_private_uncached(self.id, self.labeled_expand(dkp_prk, b"sk", b"", self.nsk))

    def private_key(self, sk: bytes) -> _PrivateKey:
        return _load_private(self.id, bytes(sk))

    def public_key(self, sk: bytes) -> bytes:
        return _public_bytes(self.private_key(sk))

    def _dh(self, sk: _PrivateKey, pk: bytes) -> bytes:
        try:
            if isinstance(sk, x25519.X25519PrivateKey):
                return sk.exchange(x25519.X25519PublicKey.from_public_bytes(pk))
            if isinstance(sk, x448.X448PrivateKey):
                return sk.exchange(x448.X448PublicKey.from_public_bytes(pk))
            curve = _CURVES[self.id][0]
            peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, pk)
            return sk.exchange(ec.ECDH(), peer)
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"invalid HPKE public key: {exc}") from None

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> bytes:
        eae_prk = self.labeled_extract(b"", b"eae_prk", dh)
        return self.labeled_expand(eae_prk, b"shared_secret", kem_context, self.nsecret)

    def encap(self, pk_r: bytes, rng: RandomSource, ikm_e: bytes | None = None
              ) -> tuple[bytes, bytes]:
        """Encap(pkR) (RFC 9180 §4.1): returns (shared_secret, enc). The ephemeral key is
        DeriveKeyPair(rng(Nsk)), RFC 9180's GenerateKeyPair as its test vectors use it
        (ikmE), so known answers can be checked; or DeriveKeyPair(ikm_e) when the caller
        chooses it (a virtual client's external commit, DRAFT-00-PROFILE P17)."""
        sk_e = self._derive_private(rng(self.nsk) if ikm_e is None else ikm_e)
        enc = _public_bytes(sk_e)
        dh = self._dh(sk_e, pk_r)
        return self._extract_and_expand(dh, enc + pk_r), enc

    def decap(self, enc: bytes, sk_r: bytes) -> bytes:
        sk = self.private_key(sk_r)
        dh = self._dh(sk, enc)
        return self._extract_and_expand(dh, enc + _public_bytes(sk))


@functools.lru_cache(maxsize=4096)
def _load_private(kem: KemId, sk: bytes) -> _PrivateKey:
    return _load_private_uncached(kem, sk)


def _load_private_uncached(kem: KemId, sk: bytes) -> _PrivateKey:
    try:
        if kem == KemId.DHKEM_X25519_SHA256:
            return x25519.X25519PrivateKey.from_private_bytes(sk)
        if kem == KemId.DHKEM_X448_SHA512:
            return x448.X448PrivateKey.from_private_bytes(sk)
        curve, nsk, _ = _CURVES[kem]
        # RFC 9180 §7.1.2 serializes the scalar in Nsk bytes; some implementations drop
        # leading zero bytes (P-521 keys of 65 bytes appear in the official RFC 9420
        # vectors), so a shorter big-endian scalar is read as the same integer.
        if not 0 < len(sk) <= nsk:
            raise ValueError(f"private key must be at most {nsk} bytes")
        return ec.derive_private_key(int.from_bytes(sk, "big"), curve)
    except ValueError as exc:
        raise CryptoError(f"invalid HPKE private key: {exc}") from None


def _private_bytes(sk: _PrivateKey, nsk: int) -> bytes:
    """SerializePrivateKey (RFC 9180 §7.1.2)."""
    if isinstance(sk, ec.EllipticCurvePrivateKey):
        return sk.private_numbers().private_value.to_bytes(nsk, "big")
    return sk.private_bytes_raw()


def _public_bytes(sk: _PrivateKey) -> bytes:
    if isinstance(sk, ec.EllipticCurvePrivateKey):
        return sk.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class HpkeSuite:
    """An HPKE ciphersuite (KEM, KDF, AEAD), base mode only."""

    kem: DhKem
    kdf: Kdf
    aead: Aead

    @property
    def suite_id(self) -> bytes:
        return (
            b"HPKE"
            + self.kem.id.to_bytes(2, "big")
            + self.kdf.id.to_bytes(2, "big")
            + self.aead.id.to_bytes(2, "big")
        )

    def _labeled_extract(self, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return self.kdf.extract(salt, b"HPKE-v1" + self.suite_id + label + ikm)

    def _labeled_expand(self, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return self.kdf.expand(
            prk, length.to_bytes(2, "big") + b"HPKE-v1" + self.suite_id + label + info, length
        )

    def _key_schedule_context(self, info: bytes) -> bytes:
        """mode_base || psk_id_hash || info_hash (RFC 9180 §5.1); depends only on
        `info`, so a commit encrypting many path secrets under one GroupContext
        computes it once (cached)."""
        return _schedule_context(self, info)

    def _key_schedule_base(self, shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        """RFC 9180 §5.1 KeySchedule<ROLE>(mode_base, shared_secret, info, "", "")."""
        context = self._key_schedule_context(info)
        secret = self._labeled_extract(shared_secret, b"secret", b"")
        key = self._labeled_expand(secret, b"key", context, self.aead.nk)
        base_nonce = self._labeled_expand(secret, b"base_nonce", context, self.aead.nn)
        return key, base_nonce

    def _exporter_secret(self, shared_secret: bytes, info: bytes) -> bytes:
        """RFC 9180 §5.1: exporter_secret of the base-mode key schedule."""
        context = self._key_schedule_context(info)
        secret = self._labeled_extract(shared_secret, b"secret", b"")
        return self._labeled_expand(secret, b"exp", context, self.kdf.nh)

    def export_sender(
        self, pk_r: bytes, info: bytes, exporter_context: bytes, length: int, rng: RandomSource,
        ikm_e: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """SetupBaseS(pkR, info) then Context.Export(exporter_context, L) (RFC 9180
        §5.1.1, §5.3); the native API has no exporter. Returns (enc, exported value).
        `ikm_e`: see `encap`."""
        shared_secret, enc = self.kem.encap(pk_r, rng, ikm_e)
        exporter = self._exporter_secret(shared_secret, info)
        return enc, self._labeled_expand(exporter, b"sec", exporter_context, length)

    def export_receiver(
        self, enc: bytes, sk_r: bytes, info: bytes, exporter_context: bytes, length: int
    ) -> bytes:
        """SetupBaseR(enc, skR, info) then Context.Export(exporter_context, L)."""
        shared_secret = self.kem.decap(enc, sk_r)
        exporter = self._exporter_secret(shared_secret, info)
        return self._labeled_expand(exporter, b"sec", exporter_context, length)

    def seal_base(
        self, pk_r: bytes, info: bytes, aad: bytes, plaintext: bytes, rng: RandomSource
    ) -> tuple[bytes, bytes]:
        """SealBase: returns (enc, ciphertext)."""
        shared_secret, enc = self.kem.encap(pk_r, rng)
        key, nonce = self._key_schedule_base(shared_secret, info)
        return enc, self.aead.seal(key, nonce, aad, plaintext)

    def open_base_portable(
        self, enc: bytes, sk_r: bytes, info: bytes, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """OpenBase written out (used for X448, and as the cross-check of the native path)."""
        shared_secret = self.kem.decap(enc, sk_r)
        key, nonce = self._key_schedule_base(shared_secret, info)
        return self.aead.open(key, nonce, aad, ciphertext)

    def open_base(
        self, enc: bytes, sk_r: bytes, info: bytes, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """OpenBase: the native implementation where it covers the KEM and AAD is empty."""
        native_kem = _NATIVE_KEM.get(self.kem.id)
        if native_kem is None or aad:
            return self.open_base_portable(enc, sk_r, info, aad, ciphertext)
        suite = _native_suite(native_kem, self.kdf.id, self.aead.id)
        sk = self.kem.private_key(sk_r)
        if isinstance(sk, x448.X448PrivateKey):  # pragma: no cover - X448 is never native
            return self.open_base_portable(enc, sk_r, info, aad, ciphertext)
        try:
            return suite.decrypt(enc + ciphertext, sk, info=info)
        except (InvalidTag, ValueError):
            raise CryptoError("HPKE decryption failed") from None


@functools.lru_cache(maxsize=256)
def _schedule_context(suite: HpkeSuite, info: bytes) -> bytes:
    psk_id_hash = suite._labeled_extract(b"", b"psk_id_hash", b"")
    info_hash = suite._labeled_extract(b"", b"info_hash", info)
    return b"\x00" + psk_id_hash + info_hash


@functools.lru_cache(maxsize=64)
def _native_suite(kem: native.KEM, kdf: KdfId, aead: AeadId) -> native.Suite:
    return native.Suite(kem, _NATIVE_KDF[kdf], _NATIVE_AEAD[aead])
