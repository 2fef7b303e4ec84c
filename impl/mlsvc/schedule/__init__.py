"""The key schedule of RFC 9420 §8: epoch secrets (key_schedule), PSKs (psk) and
transcript hashes (transcript). The secret tree (§9) is mlsvc.tree.secret_tree."""

from mlsvc.schedule.key_schedule import (
    EpochSecrets,
    confirmation_tag,
    derive_epoch,
    epoch_from_joiner,
    external_key_pair,
    mls_exporter,
    sender_data_key_nonce,
    verify_confirmation_tag,
)
from mlsvc.schedule.psk import psk_secret
from mlsvc.schedule.transcript import TranscriptHashes, next_transcript_hashes

__all__ = [
    "EpochSecrets",
    "TranscriptHashes",
    "confirmation_tag",
    "derive_epoch",
    "epoch_from_joiner",
    "external_key_pair",
    "mls_exporter",
    "next_transcript_hashes",
    "psk_secret",
    "sender_data_key_nonce",
    "verify_confirmation_tag",
]
