"""Pre-shared keys in the key schedule, RFC 9420 §8.4.

`psk_secret` chains the PSKs of a Commit (or of a Welcome's GroupSecrets) in the
order listed:

    psk_extracted_[i] = KDF.Extract(0, psk_[i])
    psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
    psk_secret_[0]    = 0
    psk_secret_[i]    = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])

with PSKLabel = { PreSharedKeyID id; uint16 index; uint16 count; }. A PSK id is the
PreSharedKeyID struct of mlsvc.messages.proposals (any object with `encode()`), or its
TLS encoding as bytes.
This module only computes: looking a PSK up, and refusing an unknown one, is the
group engine's job (§8.4, §12.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError


class PreSharedKeyID(Protocol):
    """Anything that encodes as a PreSharedKeyID (mlsvc.messages.proposals has the
    struct; the key schedule sits below the messages layer, so it only needs this)."""

    def encode(self) -> bytes: ...

DERIVED_PSK_LABEL = b"derived psk"

MAX_PSKS = 0xFFFF
"""PSKLabel.index and .count are uint16 (§8.4)."""


def _id_bytes(psk_id: bytes | PreSharedKeyID) -> bytes:
    return psk_id if isinstance(psk_id, bytes) else psk_id.encode()


def encode_psk_label(psk_id: bytes | PreSharedKeyID, index: int, count: int) -> bytes:
    """struct { PreSharedKeyID id; uint16 index; uint16 count; } PSKLabel (§8.4)."""
    if not (0 <= index < count <= MAX_PSKS):
        raise ParameterError(f"PSK index {index} / count {count} out of range")
    return _id_bytes(psk_id) + index.to_bytes(2, "big") + count.to_bytes(2, "big")


def psk_secret(cs: CipherSuite, psks: Sequence[tuple[bytes | PreSharedKeyID, bytes]]) -> bytes:
    """psk_secret over (PreSharedKeyID, psk value) pairs in the order listed (§8.4).

    No PSKs gives psk_secret_[0], the all-zero vector of length KDF.Nh.
    """
    count = len(psks)
    if count > MAX_PSKS:
        raise ParameterError(f"{count} PSKs exceed the uint16 count of PSKLabel")
    zero = bytes(cs.nh)
    secret = zero
    for index, (psk_id, psk) in enumerate(psks):
        extracted = cs.extract(zero, psk)
        label = encode_psk_label(psk_id, index, count)
        psk_input = expand_with_label(cs, extracted, DERIVED_PSK_LABEL, label, cs.nh)
        secret = cs.extract(psk_input, secret)
    return secret
