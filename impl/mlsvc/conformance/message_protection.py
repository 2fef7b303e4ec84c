"""Runner for message-protection.json (RFC 9420 §6.1-§6.3)."""

from __future__ import annotations

import os

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import ParameterError
from mlsvc.messages.codepoints import WireFormat
from mlsvc.messages.commit import Commit
from mlsvc.messages.framing import Content, PrivateMessage, PublicMessage, Sender
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import decode_proposal, encode_proposal
from mlsvc.messages.protection import (
    framed,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
    verify_signature,
)
from mlsvc.tree.secret_tree import SecretTree
from mlsvc.types import LeafCount, LeafIndex

SENDER = LeafIndex(1)  # "use the member with LeafIndex 1 as the sender"


def _encode_content(content: Content) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, Commit):
        return content.encode()
    return encode_proposal(content)


def _tree(cs: CipherSuite, case: Case) -> SecretTree:
    return SecretTree(cs, h(case["encryption_secret"]), LeafCount(2))


def _check_one(cs: CipherSuite, case: Case, ctx: GroupContext, name: str, raw: Content) -> None:
    sig_priv, sig_pub = h(case["signature_priv"]), h(case["signature_pub"])
    membership_key, sd_secret = h(case["membership_key"]), h(case["sender_data_secret"])
    want = _encode_content(raw)
    is_commit = isinstance(raw, Commit)
    tag = bytes(cs.nh) if is_commit else None  # any tag: protection does not check it

    # The vector's PublicMessage verifies and yields the raw content.
    if f"{name}_pub" in case:
        msg = MLSMessage.decode(h(case[f"{name}_pub"])).body
        if not isinstance(msg, PublicMessage):
            raise Mismatch(f"{name}_pub is not a PublicMessage")
        got = verify_signature(cs, unprotect_public(cs, msg, membership_key, ctx), sig_pub, ctx)
        expect(f"{name}_pub content", _encode_content(got.content.content.content), want)

    # Our PublicMessage round-trips; application data must be refused.
    fc = framed(ctx.group_id, ctx.epoch, Sender.member(SENDER), raw)
    ac = sign_content(cs, sig_priv, WireFormat.MLS_PUBLIC_MESSAGE, fc, ctx, tag)
    if isinstance(raw, bytes):
        try:
            protect_public(cs, ac, membership_key, ctx)
        except ParameterError:
            pass
        else:
            raise Mismatch("application data was protected as a PublicMessage")
    else:
        pub = PublicMessage.decode(protect_public(cs, ac, membership_key, ctx).encode())
        got = verify_signature(cs, unprotect_public(cs, pub, membership_key, ctx), sig_pub, ctx)
        expect(f"our {name} PublicMessage content", _encode_content(got.content.content.content),
               want)

    # The vector's PrivateMessage decrypts and verifies.
    msg = MLSMessage.decode(h(case[f"{name}_priv"])).body
    if not isinstance(msg, PrivateMessage):
        raise Mismatch(f"{name}_priv is not a PrivateMessage")
    got = verify_signature(cs, unprotect_private(cs, msg, _tree(cs, case), sd_secret, ctx),
                           sig_pub, ctx)
    expect(f"{name}_priv content", _encode_content(got.content.content.content), want)
    expect(f"{name}_priv sender", got.content.content.sender, Sender.member(SENDER))

    # Our PrivateMessage decrypts with a fresh tree built from the same secret.
    ac = sign_content(cs, sig_priv, WireFormat.MLS_PRIVATE_MESSAGE, fc, ctx, tag)
    priv = protect_private(cs, ac, _tree(cs, case), sd_secret, os.urandom, padding=7)
    priv = PrivateMessage.decode(priv.encode())
    got = verify_signature(cs, unprotect_private(cs, priv, _tree(cs, case), sd_secret, ctx),
                           sig_pub, ctx)
    expect(f"our {name} PrivateMessage content", _encode_content(got.content.content.content),
           want)


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    ctx = GroupContext(case["cipher_suite"], h(case["group_id"]), case["epoch"],
                       h(case["tree_hash"]), h(case["confirmed_transcript_hash"]), ())
    _check_one(cs, case, ctx, "proposal", decode_proposal(h(case["proposal"])))
    _check_one(cs, case, ctx, "commit", Commit.decode(h(case["commit"])))
    _check_one(cs, case, ctx, "application", h(case["application"]))


def run(cases: list[Case]) -> FileResult:
    return run_cases("message-protection", cases, _check)
