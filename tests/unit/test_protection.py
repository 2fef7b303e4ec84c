"""Message protection (RFC 9420 §6.2-§6.3) beyond the vectors: tampering, replay,
wrong group, and the caller-chosen reuse guard the virtual clients need."""

from __future__ import annotations

import os

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import CryptoError, ParameterError, ValidationError
from mlsvc.messages.codepoints import WireFormat
from mlsvc.messages.framing import PrivateMessage, Sender
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.proposals import Remove
from mlsvc.messages.protection import (
    ReuseGuardSource,
    framed,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
    verify_signature,
)
from mlsvc.tree.secret_tree import GenerationUnavailableError, RatchetType, SecretTree
from mlsvc.types import LeafCount, LeafIndex

CS = get_suite(1)
CTX = GroupContext(1, b"group", 3, b"\x01" * 32, b"\x02" * 32, ())
SK, PK = CS.signature.derive_key_pair(b"s" * 32)
ENC, SD = b"e" * 32, b"d" * 32


def _private(data: bytes = b"hello", reuse_guard: ReuseGuardSource | None = None
             ) -> PrivateMessage:
    fc = framed(CTX.group_id, CTX.epoch, Sender.member(LeafIndex(2)), data)
    ac = sign_content(CS, SK, WireFormat.MLS_PRIVATE_MESSAGE, fc, CTX)
    tree = SecretTree(CS, ENC, LeafCount(4))
    return protect_private(CS, ac, tree, SD, os.urandom, reuse_guard=reuse_guard)


def test_round_trip_and_replay() -> None:
    msg = _private()
    tree = SecretTree(CS, ENC, LeafCount(4))
    got = verify_signature(CS, unprotect_private(CS, msg, tree, SD, CTX), PK, CTX)
    assert got.content.content.content == b"hello"
    with pytest.raises(GenerationUnavailableError):
        unprotect_private(CS, msg, tree, SD, CTX)


def test_tampered_ciphertext_fails_and_does_not_burn_the_key() -> None:
    msg = _private()
    bad = PrivateMessage(msg.group_id, msg.epoch, msg.content_type, msg.authenticated_data,
                         msg.encrypted_sender_data,
                         msg.ciphertext[:-1] + bytes([msg.ciphertext[-1] ^ 1]))
    tree = SecretTree(CS, ENC, LeafCount(4))
    with pytest.raises(CryptoError):
        unprotect_private(CS, bad, tree, SD, CTX)
    assert unprotect_private(CS, msg, tree, SD, CTX).content.content.content == b"hello"


def test_tampered_authenticated_data_fails() -> None:
    msg = _private()
    bad = PrivateMessage(msg.group_id, msg.epoch, msg.content_type, b"x",
                         msg.encrypted_sender_data, msg.ciphertext)
    with pytest.raises(CryptoError):
        unprotect_private(CS, bad, SecretTree(CS, ENC, LeafCount(4)), SD, CTX)


def test_wrong_signature_key_fails() -> None:
    msg = _private()
    un = unprotect_private(CS, msg, SecretTree(CS, ENC, LeafCount(4)), SD, CTX)
    _, other = CS.signature.derive_key_pair(b"t" * 32)
    with pytest.raises(CryptoError):
        verify_signature(CS, un, other, CTX)


def test_other_group_is_rejected() -> None:
    msg = _private()
    other = GroupContext(1, b"other", 3, b"\x01" * 32, b"\x02" * 32, ())
    with pytest.raises(ValidationError):
        unprotect_private(CS, msg, SecretTree(CS, ENC, LeafCount(4)), SD, other)


def test_reuse_guard_is_chosen_from_the_nonce() -> None:
    seen: list[tuple[bytes, int]] = []

    def choose(nonce: bytes, generation: int) -> bytes:
        seen.append((nonce, generation))
        return nonce[:2] + b"\xab\xcd"

    msg = _private(reuse_guard=choose)
    tree = SecretTree(CS, ENC, LeafCount(4))
    un = unprotect_private(CS, msg, tree, SD, CTX)
    (nonce, generation), = seen
    assert generation == 0 and len(nonce) == CS.aead.nn
    assert un.sender_data is not None
    assert un.sender_data.reuse_guard == nonce[:2] + b"\xab\xcd"
    # the nonce the chooser saw is the secret tree's, for that sender and generation
    _, expected_nonce = SecretTree(CS, ENC, LeafCount(4)).key_for(
        LeafIndex(2), RatchetType.APPLICATION, 0
    )
    assert nonce == expected_nonce


def test_bad_reuse_guard_length_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        _private(reuse_guard=lambda nonce, gen: b"\x00" * 3)


def test_public_message_tag_and_application_refusal() -> None:
    fc = framed(CTX.group_id, CTX.epoch, Sender.member(LeafIndex(0)), Remove(LeafIndex(1)))
    ac = sign_content(CS, SK, WireFormat.MLS_PUBLIC_MESSAGE, fc, CTX)
    msg = protect_public(CS, ac, b"m" * 32, CTX)
    assert unprotect_public(CS, msg, b"m" * 32, CTX).content == ac
    with pytest.raises(CryptoError):
        unprotect_public(CS, msg, b"n" * 32, CTX)
    app = framed(CTX.group_id, CTX.epoch, Sender.member(LeafIndex(0)), b"data")
    with pytest.raises(ParameterError):
        protect_public(CS, sign_content(CS, SK, WireFormat.MLS_PUBLIC_MESSAGE, app, CTX),
                       b"m" * 32, CTX)
