"""Runner for transcript-hashes.json (RFC 9420 §8.2, confirmation tag §6.1).

The vector's `authenticated_content` is an AuthenticatedContent carrying a Commit
(§6.1); its ConfirmedTranscriptHashInput (wire_format, FramedContent, signature) and
confirmation tag feed the transcript hashes (§8.2).
"""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.messages.codepoints import ContentType
from mlsvc.messages.framing import AuthenticatedContent
from mlsvc.schedule.key_schedule import confirmation_tag, verify_confirmation_tag
from mlsvc.schedule.transcript import next_transcript_hashes


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    ac = AuthenticatedContent.decode(h(case["authenticated_content"]))
    tag = ac.auth.confirmation_tag
    if ac.content.content_type != ContentType.COMMIT or tag is None:
        raise Mismatch("authenticated_content does not carry a commit")
    hashes = next_transcript_hashes(
        cs, h(case["interim_transcript_hash_before"]), ac.confirmed_transcript_hash_input(), tag
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
