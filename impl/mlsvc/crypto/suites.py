"""The seven ciphersuites of RFC 9420 §17.1, on `cryptography`.

A `CipherSuite` bundles the KEM/KDF/AEAD (HPKE), the hash and the signature scheme.
Keys cross this boundary as bytes, in the encodings RFC 9420 puts on the wire:

- HPKE private keys: RFC 9180 SerializePrivateKey (raw scalar); public keys:
  SerializePublicKey (raw X25519/X448, uncompressed point for NIST curves).
- Signature private keys: the Ed25519/Ed448 seed, or the ECDSA scalar (I2OSP, Nsk
  bytes); public keys: raw EdDSA key or uncompressed point. ECDSA signatures are DER
  (TLS 1.3 SignatureScheme, RFC 9420 §5.1.2), made with RFC 6979 deterministic nonces.
"""

from __future__ import annotations

import functools
import hmac as _hmac
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mlsvc.crypto.hpke import (
    Aead,
    AeadId,
    DhKem,
    HpkeSuite,
    Kdf,
    KdfId,
    KemId,
    RandomSource,
)
from mlsvc.errors import CryptoError, UnsupportedError


class CipherSuiteId(IntEnum):
    """RFC 9420 §17.1 MLS Cipher Suites registry (recommended suites)."""

    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 0x0001
    MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 0x0002
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 0x0003
    MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448 = 0x0004
    MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 0x0005
    MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448 = 0x0006
    MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 0x0007


class SignatureSchemeId(IntEnum):
    """TLS 1.3 SignatureScheme values used by RFC 9420 suites."""

    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    ECDSA_SECP521R1_SHA512 = 0x0603
    ED25519 = 0x0807
    ED448 = 0x0808


# scheme -> (curve, hash, the DHKEM of that curve used to derive keys from secrets: P5, Q12)
_ECDSA: dict[SignatureSchemeId, tuple[ec.EllipticCurve, type[hashes.HashAlgorithm], KemId]] = {
    SignatureSchemeId.ECDSA_SECP256R1_SHA256:
        (ec.SECP256R1(), hashes.SHA256, KemId.DHKEM_P256_SHA256),
    SignatureSchemeId.ECDSA_SECP384R1_SHA384:
        (ec.SECP384R1(), hashes.SHA384, KemId.DHKEM_P384_SHA384),
    SignatureSchemeId.ECDSA_SECP521R1_SHA512:
        (ec.SECP521R1(), hashes.SHA512, KemId.DHKEM_P521_SHA512),
}

_SigPrivate = ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ec.EllipticCurvePrivateKey
_SigPublic = ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class SignatureScheme:
    id: SignatureSchemeId

    @property
    def seed_length(self) -> int:
        """Length of the private key encoding (Ed25519/Ed448 seed, ECDSA Nsk)."""
        if self.id == SignatureSchemeId.ED25519:
            return 32
        if self.id == SignatureSchemeId.ED448:
            return 57
        return DhKem(_ECDSA[self.id][2]).nsk

    def public_key(self, private_key: bytes) -> bytes:
        sk = _load_sig_private(self.id, bytes(private_key))
        if isinstance(sk, ec.EllipticCurvePrivateKey):
            return sk.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def derive_key_pair(self, secret: bytes) -> tuple[bytes, bytes]:
        """A key pair from a secret (DRAFT-00-PROFILE P5, Q12): EdDSA seed = the first
        32/57 bytes; ECDSA scalar = RFC 9180 DeriveKeyPair of that curve's DHKEM."""
        if self.id in _ECDSA:
            sk, _ = DhKem(_ECDSA[self.id][2]).derive_key_pair(secret)
        else:
            if len(secret) < self.seed_length:
                raise CryptoError("secret shorter than the signature seed")
            sk = bytes(secret[: self.seed_length])
        return sk, self.public_key(sk)

    def generate_key_pair(self, rng: RandomSource) -> tuple[bytes, bytes]:
        if self.id in _ECDSA:
            sk, _ = DhKem(_ECDSA[self.id][2]).derive_key_pair(rng(self.seed_length))
            return sk, self.public_key(sk)
        return self.derive_key_pair(rng(self.seed_length))

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        sk = _load_sig_private(self.id, bytes(private_key))
        if isinstance(sk, ec.EllipticCurvePrivateKey):
            algo = ec.ECDSA(_ECDSA[self.id][1](), deterministic_signing=True)
            return sk.sign(message, algo)
        return sk.sign(message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            pk = _load_sig_public(self.id, bytes(public_key))
        except CryptoError:
            return False
        try:
            if isinstance(pk, ec.EllipticCurvePublicKey):
                pk.verify(signature, message, ec.ECDSA(_ECDSA[self.id][1]()))
            else:
                pk.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def validate_public_key(self, public_key: bytes) -> bool:
        try:
            _load_sig_public(self.id, bytes(public_key))
        except CryptoError:
            return False
        return True


@functools.lru_cache(maxsize=4096)
def _load_sig_private(scheme: SignatureSchemeId, sk: bytes) -> _SigPrivate:
    try:
        if scheme == SignatureSchemeId.ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(sk)
        if scheme == SignatureSchemeId.ED448:
            return ed448.Ed448PrivateKey.from_private_bytes(sk)
        curve = _ECDSA[scheme][0]
        return ec.derive_private_key(int.from_bytes(sk, "big"), curve)
    except ValueError as exc:
        raise CryptoError(f"invalid signature private key: {exc}") from None


@functools.lru_cache(maxsize=8192)
def _load_sig_public(scheme: SignatureSchemeId, pk: bytes) -> _SigPublic:
    try:
        if scheme == SignatureSchemeId.ED25519:
            return ed25519.Ed25519PublicKey.from_public_bytes(pk)
        if scheme == SignatureSchemeId.ED448:
            return ed448.Ed448PublicKey.from_public_bytes(pk)
        return ec.EllipticCurvePublicKey.from_encoded_point(_ECDSA[scheme][0], pk)
    except ValueError as exc:
        raise CryptoError(f"invalid signature public key: {exc}") from None


@dataclass(frozen=True)
class CipherSuite:
    """An RFC 9420 ciphersuite: HPKE (KEM, KDF, AEAD), hash and signature scheme."""

    id: CipherSuiteId
    hpke: HpkeSuite
    signature: SignatureScheme

    @property
    def kdf(self) -> Kdf:
        return self.hpke.kdf

    @property
    def aead(self) -> Aead:
        return self.hpke.aead

    @property
    def kem(self) -> DhKem:
        return self.hpke.kem

    @property
    def nh(self) -> int:
        """Kdf.Nh: the output size of the suite's hash."""
        return self.hpke.kdf.nh

    def hash(self, data: bytes) -> bytes:
        return self.hpke.kdf.hash(data)

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        return self.hpke.kdf.extract(salt, ikm)

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return self.hpke.kdf.expand(prk, info, length)

    def mac(self, key: bytes, data: bytes) -> bytes:
        return self.hpke.kdf.mac(key, data)

    def verify_mac(self, key: bytes, data: bytes, tag: bytes) -> bool:
        """Constant-time MAC comparison."""
        return _hmac.compare_digest(self.mac(key, data), tag)


def _suite(
    sid: CipherSuiteId, kem: KemId, kdf: KdfId, aead: AeadId, sig: SignatureSchemeId
) -> CipherSuite:
    return CipherSuite(sid, HpkeSuite(DhKem(kem), Kdf(kdf), Aead(aead)), SignatureScheme(sig))


SUITES: dict[int, CipherSuite] = {
    s.id: s
    for s in (
        _suite(CipherSuiteId(1), KemId.DHKEM_X25519_SHA256, KdfId.HKDF_SHA256,
               AeadId.AES_128_GCM, SignatureSchemeId.ED25519),
        _suite(CipherSuiteId(2), KemId.DHKEM_P256_SHA256, KdfId.HKDF_SHA256,
               AeadId.AES_128_GCM, SignatureSchemeId.ECDSA_SECP256R1_SHA256),
        _suite(CipherSuiteId(3), KemId.DHKEM_X25519_SHA256, KdfId.HKDF_SHA256,
               AeadId.CHACHA20_POLY1305, SignatureSchemeId.ED25519),
        _suite(CipherSuiteId(4), KemId.DHKEM_X448_SHA512, KdfId.HKDF_SHA512,
               AeadId.AES_256_GCM, SignatureSchemeId.ED448),
        _suite(CipherSuiteId(5), KemId.DHKEM_P521_SHA512, KdfId.HKDF_SHA512,
               AeadId.AES_256_GCM, SignatureSchemeId.ECDSA_SECP521R1_SHA512),
        _suite(CipherSuiteId(6), KemId.DHKEM_X448_SHA512, KdfId.HKDF_SHA512,
               AeadId.CHACHA20_POLY1305, SignatureSchemeId.ED448),
        _suite(CipherSuiteId(7), KemId.DHKEM_P384_SHA384, KdfId.HKDF_SHA384,
               AeadId.AES_256_GCM, SignatureSchemeId.ECDSA_SECP384R1_SHA384),
    )
}


def get_suite(suite_id: int) -> CipherSuite:
    """The ciphersuite for a code point, or UnsupportedError."""
    try:
        return SUITES[suite_id]
    except KeyError:
        raise UnsupportedError(f"unsupported ciphersuite 0x{suite_id:04x}") from None


