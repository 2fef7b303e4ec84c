"""Transcript hashes, RFC 9420 §8.2.

    confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] ||
                                         ConfirmedTranscriptHashInput_[n])
    interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] ||
                                         InterimTranscriptHashInput_[n])

    struct { WireFormat wire_format; FramedContent content; opaque signature<V>; }
        ConfirmedTranscriptHashInput;
    struct { MAC confirmation_tag; } InterimTranscriptHashInput;   /* opaque<V> */

Both hashes start as the empty string (epoch 0). This module works on bytes: the
caller passes the encoded FramedContent (content_type commit) or the already-encoded
ConfirmedTranscriptHashInput, so it does not depend on the framing structs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsvc.codec import Writer
from mlsvc.crypto.suites import CipherSuite

INITIAL_TRANSCRIPT_HASH = b""
"""confirmed_transcript_hash_[0] = interim_transcript_hash_[0] = "" (§8.2)."""


@dataclass(frozen=True, slots=True)
class TranscriptHashes:
    """The pair carried from epoch to epoch (§8.2)."""

    confirmed: bytes
    interim: bytes


def encode_confirmed_input(wire_format: int, framed_content: bytes, signature: bytes) -> bytes:
    """ConfirmedTranscriptHashInput (§8.2): uint16 wire_format || FramedContent ||
    opaque signature<V>."""
    w = Writer()
    w.u16(wire_format)
    w.fixed(framed_content)
    w.opaque(signature)
    return w.bytes()


def encode_interim_input(confirmation_tag: bytes) -> bytes:
    """InterimTranscriptHashInput (§8.2): MAC confirmation_tag, i.e. opaque<V>."""
    w = Writer()
    w.opaque(confirmation_tag)
    return w.bytes()


def confirmed_transcript_hash(
    cs: CipherSuite, interim_before: bytes, confirmed_input: bytes
) -> bytes:
    """Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n]) (§8.2)."""
    return cs.hash(interim_before + confirmed_input)


def interim_transcript_hash(cs: CipherSuite, confirmed: bytes, confirmation_tag: bytes) -> bytes:
    """Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n]) (§8.2).
    A joiner computes it from the GroupInfo's confirmation_tag (§12.4.3.1)."""
    return cs.hash(confirmed + encode_interim_input(confirmation_tag))


def next_transcript_hashes(
    cs: CipherSuite, interim_before: bytes, confirmed_input: bytes, confirmation_tag: bytes
) -> TranscriptHashes:
    """Both hashes of the epoch a Commit creates (§8.2)."""
    confirmed = confirmed_transcript_hash(cs, interim_before, confirmed_input)
    return TranscriptHashes(confirmed, interim_transcript_hash(cs, confirmed, confirmation_tag))
