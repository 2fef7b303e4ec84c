"""The MLS key schedule, RFC 9420 §8, and the keys it feeds directly.

- `derive_epoch`: init_secret_[n-1] + commit_secret + psk_secret + GroupContext_[n]
  -> joiner_secret, welcome_secret, epoch_secret and the secrets of Table 4 (§8),
  including init_secret_[n]. `epoch_from_joiner` starts from a joiner_secret (a
  Welcome join, §12.4.3.1). The GroupContext enters as its TLS encoding (§8.1): this
  module does not depend on the struct.
- `external_key_pair` (§8): KEM.DeriveKeyPair(external_secret); `external_init_*`
  (§8.3): the init_secret an external joiner sends through the HPKE exporter.
- `mls_exporter` (§8.5), confirmation tag (§6.1) and membership tag (§6.2) with
  constant-time verification, sender-data key and nonce (§6.3.2).

The HPKE secret export §8.3 needs (RFC 9180 §5.3) is `HpkeSuite.export_sender` /
`export_receiver` in mlsvc.crypto.hpke.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import derive_secret, expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import CryptoError, ParameterError

# §8, Table 4: labels of the secrets derived from epoch_secret.
SENDER_DATA = b"sender data"
ENCRYPTION = b"encryption"
EXPORTER = b"exporter"
EXTERNAL = b"external"
CONFIRM = b"confirm"
MEMBERSHIP = b"membership"
RESUMPTION = b"resumption"
AUTHENTICATION = b"authentication"
INIT = b"init"

EXTERNAL_INIT_EXPORT_LABEL = b"MLS 1.0 external init secret"
"""§8.3: context.export("MLS 1.0 external init secret", KDF.Nh)."""


@dataclass(frozen=True, slots=True)
class EpochSecrets:
    """The secrets of one epoch (§8). `init_secret` is init_secret_[n], the input of
    the next epoch. By §9.2 the caller keeps only what it still needs: joiner_secret,
    epoch_secret and encryption_secret (once a SecretTree holds it) are consumed."""

    joiner_secret: bytes
    welcome_secret: bytes
    epoch_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes


def _secret_or_zero(cs: CipherSuite, value: bytes | None) -> bytes:
    """`None` is the all-zero vector of length KDF.Nh (§8: "0"; §8.4 no PSKs;
    §12.4.2 a Commit without path)."""
    if value is None:
        return bytes(cs.nh)
    return value


def joiner_secret(
    cs: CipherSuite, init_secret: bytes, commit_secret: bytes | None, group_context: bytes
) -> bytes:
    """joiner_secret = ExpandWithLabel(KDF.Extract(init_secret_[n-1], commit_secret),
    "joiner", GroupContext_[n], KDF.Nh) (§8)."""
    prk = cs.extract(init_secret, _secret_or_zero(cs, commit_secret))
    return expand_with_label(cs, prk, b"joiner", group_context, cs.nh)


def welcome_secret(cs: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    """welcome_secret = DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome")
    (§8): what a joiner needs to open the GroupInfo of a Welcome (§12.4.3.1)."""
    member = cs.extract(joiner, _secret_or_zero(cs, psk_secret))
    return derive_secret(cs, member, b"welcome")


def epoch_from_joiner(
    cs: CipherSuite, joiner: bytes, psk_secret: bytes | None, group_context: bytes
) -> EpochSecrets:
    """The epoch's secrets from its joiner_secret (§8; the Welcome path of
    §12.4.3.1). `psk_secret=None` means no PSKs (the zero vector, §8.4)."""
    member = cs.extract(joiner, _secret_or_zero(cs, psk_secret))
    epoch = expand_with_label(cs, member, b"epoch", group_context, cs.nh)
    return from_epoch_secret(cs, epoch, joiner, derive_secret(cs, member, b"welcome"))


def from_epoch_secret(
    cs: CipherSuite, epoch: bytes, joiner: bytes = b"", welcome: bytes = b""
) -> EpochSecrets:
    """The secrets of Table 4 (§8) from an epoch_secret. Group creation (§11) starts
    here with "a fresh random value of size KDF.Nh" as epoch 0's epoch_secret."""
    return EpochSecrets(
        joiner_secret=joiner,
        welcome_secret=welcome,
        epoch_secret=epoch,
        sender_data_secret=derive_secret(cs, epoch, SENDER_DATA),
        encryption_secret=derive_secret(cs, epoch, ENCRYPTION),
        exporter_secret=derive_secret(cs, epoch, EXPORTER),
        external_secret=derive_secret(cs, epoch, EXTERNAL),
        confirmation_key=derive_secret(cs, epoch, CONFIRM),
        membership_key=derive_secret(cs, epoch, MEMBERSHIP),
        resumption_psk=derive_secret(cs, epoch, RESUMPTION),
        epoch_authenticator=derive_secret(cs, epoch, AUTHENTICATION),
        init_secret=derive_secret(cs, epoch, INIT),
    )


def derive_epoch(
    cs: CipherSuite,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk_secret: bytes | None,
    group_context: bytes,
) -> EpochSecrets:
    """The full key schedule of §8 for epoch n: `init_secret` is init_secret_[n-1]
    (or the random initial one, §11; or an external init secret, §8.3),
    `group_context` the encoded GroupContext_[n]. `None` for commit_secret or
    psk_secret stands for the zero vector."""
    joiner = joiner_secret(cs, init_secret, commit_secret, group_context)
    return epoch_from_joiner(cs, joiner, psk_secret, group_context)


# §8.5 Exporters


def mls_exporter(
    cs: CipherSuite, exporter_secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """MLS-Exporter(Label, Context, Length) = ExpandWithLabel(DeriveSecret(
    exporter_secret, Label), "exported", Hash(Context), Length) (§8.5)."""
    if not 0 < length <= 0xFFFF:
        raise ParameterError(f"exporter length {length} out of range (1..65535)")
    return expand_with_label(
        cs, derive_secret(cs, exporter_secret, label), b"exported", cs.hash(context), length
    )


# §8 / §8.3 External initialization


def external_key_pair(cs: CipherSuite, external_secret: bytes) -> tuple[bytes, bytes]:
    """external_priv, external_pub = KEM.DeriveKeyPair(external_secret) (§8)."""
    return cs.kem.derive_key_pair(external_secret)


def external_init_for_joiner(
    cs: CipherSuite, external_pub: bytes, rng: RandomSource, ikm_e: bytes | None = None
) -> tuple[bytes, bytes]:
    """§8.3, the external joiner: kem_output, context = SetupBaseS(external_pub, "");
    init_secret = context.export("MLS 1.0 external init secret", KDF.Nh).
    Returns (kem_output, init_secret); kem_output goes in the ExternalInit proposal.
    `ikm_e` fixes the encapsulation's ephemeral key (DeriveKeyPair(ikm_e)) instead of
    drawing it from `rng`."""
    return cs.hpke.export_sender(external_pub, b"", EXTERNAL_INIT_EXPORT_LABEL, cs.nh, rng,
                                 ikm_e)


def external_init_for_member(cs: CipherSuite, external_priv: bytes, kem_output: bytes) -> bytes:
    """§8.3, a group member: context = SetupBaseR(kem_output, external_priv, "");
    init_secret = context.export("MLS 1.0 external init secret", KDF.Nh)."""
    return cs.hpke.export_receiver(
        kem_output, external_priv, b"", EXTERNAL_INIT_EXPORT_LABEL, cs.nh
    )


# §6.1 confirmation tag, §6.2 membership tag


def confirmation_tag(
    cs: CipherSuite, confirmation_key: bytes, confirmed_transcript_hash: bytes
) -> bytes:
    """confirmation_tag = MAC(confirmation_key, GroupContext.confirmed_transcript_hash)
    (§6.1)."""
    return cs.mac(confirmation_key, confirmed_transcript_hash)


def verify_confirmation_tag(
    cs: CipherSuite, confirmation_key: bytes, confirmed_transcript_hash: bytes, tag: bytes
) -> None:
    """Constant-time check of a confirmation tag (§6.1, §12.4.2, §12.4.3.1);
    CryptoError if it does not match."""
    if not cs.verify_mac(confirmation_key, confirmed_transcript_hash, tag):
        raise CryptoError("confirmation tag does not match")


def membership_tag(cs: CipherSuite, membership_key: bytes, tbm: bytes) -> bytes:
    """membership_tag = MAC(membership_key, AuthenticatedContentTBM) (§6.2); `tbm` is
    the encoded AuthenticatedContentTBM."""
    return cs.mac(membership_key, tbm)


def verify_membership_tag(cs: CipherSuite, membership_key: bytes, tbm: bytes, tag: bytes) -> None:
    """Constant-time check of a PublicMessage membership tag (§6.2); CryptoError if
    it does not match."""
    if not cs.verify_mac(membership_key, tbm, tag):
        raise CryptoError("membership tag does not match")


# §6.3.2 sender data


def ciphertext_sample(cs: CipherSuite, ciphertext: bytes) -> bytes:
    """ciphertext_sample = ciphertext[0..KDF.Nh-1], the whole ciphertext when it is
    shorter (§6.3.2)."""
    return ciphertext[: cs.nh]


def sender_data_key_nonce(
    cs: CipherSuite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """(sender_data_key, sender_data_nonce) of §6.3.2:
    ExpandWithLabel(sender_data_secret, "key" / "nonce", ciphertext_sample, AEAD.Nk / Nn).
    `ciphertext` is the PrivateMessage's content ciphertext (sampled here)."""
    sample = ciphertext_sample(cs, ciphertext)
    key = expand_with_label(cs, sender_data_secret, b"key", sample, cs.aead.nk)
    nonce = expand_with_label(cs, sender_data_secret, b"nonce", sample, cs.aead.nn)
    return key, nonce
