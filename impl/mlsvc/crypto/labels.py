"""Labeled operations of RFC 9420: ExpandWithLabel and DeriveSecret (§8),
DeriveTreeSecret (§9), Sign/VerifyWithLabel (§5.1.2), Encrypt/DecryptWithLabel
(§5.1.3), RefHash and the KeyPackage and proposal references (§5.2).

Every label gets the "MLS 1.0 " prefix here and nowhere else.
"""

from __future__ import annotations

from mlsvc.codec import Writer
from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.suites import CipherSuite

MLS_PREFIX = b"MLS 1.0 "

# RFC 9420 §5.2
KEY_PACKAGE_REF_LABEL = b"MLS 1.0 KeyPackage Reference"
PROPOSAL_REF_LABEL = b"MLS 1.0 Proposal Reference"


def _kdf_label(label: bytes, context: bytes, length: int) -> bytes:
    """struct { uint16 length; opaque label<V>; opaque context<V>; } KDFLabel (§8)."""
    w = Writer()
    w.u16(length)
    w.opaque(MLS_PREFIX + label)
    w.opaque(context)
    return bytes(w.buf)


def expand_with_label(
    cs: CipherSuite, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """ExpandWithLabel(Secret, Label, Context, Length) = KDF.Expand(Secret, KDFLabel, Length)."""
    return cs.expand(secret, _kdf_label(label, context, length), length)


def derive_secret(cs: CipherSuite, secret: bytes, label: bytes) -> bytes:
    """DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", KDF.Nh)."""
    return expand_with_label(cs, secret, label, b"", cs.nh)


def derive_tree_secret(
    cs: CipherSuite, secret: bytes, label: bytes, generation: int, length: int
) -> bytes:
    """DeriveTreeSecret(Secret, Label, Generation, Length) (§9):
    ExpandWithLabel(Secret, Label, uint32 Generation, Length)."""
    return expand_with_label(cs, secret, label, generation.to_bytes(4, "big"), length)


def labeled_content(label: bytes, content: bytes) -> bytes:
    """SignContent / EncryptContext: { opaque label<V> = "MLS 1.0 " + Label;
    opaque content<V>; } (§5.1.2, §5.1.3)."""
    w = Writer()
    w.opaque(MLS_PREFIX + label)
    w.opaque(content)
    return bytes(w.buf)


def sign_with_label(cs: CipherSuite, private_key: bytes, label: bytes, content: bytes) -> bytes:
    """SignWithLabel(SignatureKey, Label, Content) (§5.1.2)."""
    return cs.signature.sign(private_key, labeled_content(label, content))


def verify_with_label(
    cs: CipherSuite, public_key: bytes, label: bytes, content: bytes, signature: bytes
) -> bool:
    """VerifyWithLabel(VerificationKey, Label, Content, SignatureValue) (§5.1.2)."""
    return cs.signature.verify(public_key, labeled_content(label, content), signature)


def encrypt_with_label(
    cs: CipherSuite,
    public_key: bytes,
    label: bytes,
    context: bytes,
    plaintext: bytes,
    rng: RandomSource,
) -> tuple[bytes, bytes]:
    """EncryptWithLabel (§5.1.3) = SealBase(PublicKey, EncryptContext, "", Plaintext).
    Returns (kem_output, ciphertext)."""
    return cs.hpke.seal_base(public_key, labeled_content(label, context), b"", plaintext, rng)


def decrypt_with_label(
    cs: CipherSuite,
    private_key: bytes,
    label: bytes,
    context: bytes,
    kem_output: bytes,
    ciphertext: bytes,
) -> bytes:
    """DecryptWithLabel (§5.1.3) = OpenBase(KEMOutput, PrivateKey, EncryptContext, "", CT).
    Raises CryptoError on failure."""
    return cs.hpke.open_base(kem_output, private_key, labeled_content(label, context), b"",
                             ciphertext)


def ref_hash(cs: CipherSuite, label: bytes, value: bytes) -> bytes:
    """RefHash(label, value) = Hash(RefHashInput{opaque label<V>; opaque value<V>}) (§5.2)."""
    w = Writer()
    w.opaque(label)
    w.opaque(value)
    return cs.hash(bytes(w.buf))


def make_key_package_ref(cs: CipherSuite, key_package: bytes) -> bytes:
    """MakeKeyPackageRef(value) = RefHash("MLS 1.0 KeyPackage Reference", value)."""
    return ref_hash(cs, KEY_PACKAGE_REF_LABEL, key_package)


def make_proposal_ref(cs: CipherSuite, authenticated_content: bytes) -> bytes:
    """MakeProposalRef(value) = RefHash("MLS 1.0 Proposal Reference", value)."""
    return ref_hash(cs, PROPOSAL_REF_LABEL, authenticated_content)
