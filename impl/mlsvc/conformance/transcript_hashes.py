"""Runner for transcript-hashes.json (RFC 9420 §8.2, confirmation tag §6.1).

The AuthenticatedContent of a Commit encodes as
    wire_format || FramedContent || signature<V> || confirmation_tag<V>
= ConfirmedTranscriptHashInput || InterimTranscriptHashInput (§6.1, §8.2).

The framing structs (mlsvc.messages.framing) did not exist when this runner was
written, so it reads the FramedContent header (§6) with a minimal private parser,
requires content_type commit, parses the Commit body with mlsvc.messages.commit,
and lets `transcript.split_authenticated_commit` take signature<V> and
confirmation_tag<V> with exact consumption. Once framing exists, `_framed_content_end`
can be replaced by its AuthenticatedContent decoder.
"""

from __future__ import annotations

from mlsvc.codec import Reader
from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError
from mlsvc.messages.commit import Commit
from mlsvc.schedule.key_schedule import confirmation_tag, verify_confirmation_tag
from mlsvc.schedule.transcript import next_transcript_hashes, split_authenticated_commit

_COMMIT = 3  # ContentType.commit (§6)
_SENDERS_WITH_INDEX = (1, 2)  # SenderType member, external: uint32 index (§6)
_SENDERS_WITHOUT_INDEX = (3, 4)  # new_member_proposal, new_member_commit


def _framed_content_end(authenticated_content: bytes) -> int:
    """Offset just after the FramedContent of an AuthenticatedContent carrying a
    Commit (§6): wire_format; group_id<V>; epoch; Sender; authenticated_data<V>;
    content_type; Commit."""
    r = Reader(authenticated_content)
    r.u16()  # wire_format
    r.opaque()  # group_id
    r.u64()  # epoch
    sender_type = r.u8()
    if sender_type in _SENDERS_WITH_INDEX:
        r.u32()
    elif sender_type not in _SENDERS_WITHOUT_INDEX:
        raise DecodeError(f"unknown sender type {sender_type}")
    r.opaque()  # authenticated_data
    content_type = r.u8()
    if content_type != _COMMIT:
        raise Mismatch(f"authenticated_content carries content type {content_type}, not commit")
    Commit.read(r)
    return r.pos


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    content = h(case["authenticated_content"])
    confirmed_input, tag = split_authenticated_commit(content, _framed_content_end(content))
    hashes = next_transcript_hashes(
        cs, h(case["interim_transcript_hash_before"]), confirmed_input, tag
    )
    expect("confirmed_transcript_hash_after", hashes.confirmed,
           h(case["confirmed_transcript_hash_after"]))
    expect("interim_transcript_hash_after", hashes.interim,
           h(case["interim_transcript_hash_after"]))
    key = h(case["confirmation_key"])
    expect("confirmation_tag", confirmation_tag(cs, key, hashes.confirmed), tag)
    verify_confirmation_tag(cs, key, h(case["confirmed_transcript_hash_after"]), tag)


def run(cases: list[Case]) -> FileResult:
    return run_cases("transcript-hashes", cases, _check)
