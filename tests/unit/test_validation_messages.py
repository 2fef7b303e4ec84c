"""RFC 9420 §6 message checks as `Group.process` runs them (MSG-*, FRAME-*), the
signature of PrivateMessage content ("nothing is accepted unsigned or
unverifiable", §6.1), and the virtual-clients reuse-guard sender check
(draft-ietf-mls-virtual-clients-00 §5.6, VC-RG-1)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.errors import CryptoError, ValidationError
from mlsvc.group.events import ApplicationMessage
from mlsvc.group.group import Group
from mlsvc.messages.codepoints import WireFormat
from mlsvc.messages.commit import Commit
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.extensions import ExternalSender, ExternalSenders
from mlsvc.messages.framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    Sender,
    SenderData,
)
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Remove
from mlsvc.messages.protection import (
    decrypt_sender_data,
    protect_private,
    unprotect_private,
    unprotect_public,
)
from mlsvc.schedule.key_schedule import sender_data_key_nonce
from mlsvc.types import LeafIndex
from mlsvc.vc.reuse_guard import make_reuse_guard, recover_leaf_index
from tests.unit.validation_helpers import (
    CS,
    check_of,
    flip,
    forge,
    identity,
    make_group,
    private_message,
    public_message,
    snapshot,
)

DS = identity("delivery service")
PRIVATE = WireFormat.MLS_PRIVATE_MESSAGE


def private_from(sender_group: Group, sender: LeafIndex, content: bytes, *,
                 signature: bytes | None = None, signer: bytes | None = None) -> bytes:
    """An application PrivateMessage from leaf `sender`, encrypted with the secret tree
    of `sender_group` (any member can derive every leaf's keys, §9) and signed with
    `signer` (default `sender_group`'s key) unless `signature` is given."""
    s = sender_group.state
    fc = FramedContent(s.context.group_id, s.context.epoch, Sender.member(sender), b"",
                       content)
    if signature is None:
        signature = fc.sign(CS, signer or s.identity.signature_private_key, PRIVATE,
                            s.context)
    ac = AuthenticatedContent(PRIVATE, fc, FramedContentAuthData(signature))
    pm = protect_private(CS, ac, s.secret_tree, s.secrets.sender_data_secret,
                         SeededRandom(b"private"))
    return MLSMessage(pm).encode()


# --- MSG-* ------------------------------------------------------------------------------------


@pytest.mark.parametrize("leaf", [LeafIndex(3), LeafIndex(77)])
def test_public_message_from_a_leaf_outside_the_tree(leaf: LeafIndex) -> None:
    a, b, _ = make_group()
    msg, _ = forge(b, Remove(LeafIndex(2)), sender=Sender.member(leaf))
    assert check_of(lambda: a.process(msg), a) == "MSG-SENDER-MEMBER"


def test_public_message_from_a_removed_member() -> None:
    a, b, c = make_group()
    out = a.commit([Remove(b.own_leaf)])
    a.merge_pending_commit()
    c.process(out.commit)
    # b's old key, a's membership key: the message passes framing
    msg, _ = forge(a, Remove(LeafIndex(2)), sender=Sender.member(LeafIndex(1)),
                   signer=b.state.identity.signature_private_key)
    assert check_of(lambda: c.process(msg), c) == "MSG-SENDER-MEMBER"


def test_private_message_from_a_removed_member() -> None:
    a, b, c = make_group()
    out = a.commit([Remove(b.own_leaf)])
    a.merge_pending_commit()
    c.process(out.commit)
    # an insider (a) encrypts under the blank leaf 1's ratchet, signed with b's old key
    msg = private_from(a, LeafIndex(1), b"as b", signer=b.state.identity.signature_private_key)
    assert check_of(lambda: c.process(msg), c) == "MSG-SENDER-MEMBER"


def test_public_message_for_another_group() -> None:
    a, b, _ = make_group()
    msg, _ = forge(b, Remove(LeafIndex(2)), group_id=b"another group")
    assert check_of(lambda: a.process(msg), a) == "MSG-GROUP"


def test_private_message_for_another_group() -> None:
    a, b, _ = make_group()
    pm = private_message(b.encrypt(b"hello"))
    bad = MLSMessage(replace(pm, group_id=b"another group")).encode()
    assert check_of(lambda: a.process(bad), a) == "MSG-GROUP"


def test_private_message_for_another_epoch() -> None:
    a, b, _ = make_group()
    pm = private_message(b.encrypt(b"hello"))
    bad = MLSMessage(replace(pm, epoch=pm.epoch + 1)).encode()
    assert check_of(lambda: a.process(bad), a) == "CM-EPOCH"


def test_external_sender_without_external_senders_extension() -> None:
    a, _, _ = make_group()
    msg, _ = forge(a, Remove(LeafIndex(2)), sender=Sender.external(0),
                   signer=DS.signature_private_key)
    assert check_of(lambda: a.process(msg), a) == "MSG-EXTERNAL-SENDER"


def test_external_sender_index_past_the_list() -> None:
    ext = ExternalSenders((ExternalSender(DS.signature_public_key, BasicCredential(b"ds")),))
    a, _, _ = make_group(extensions=(ext.to_extension(),))
    msg, _ = forge(a, Remove(LeafIndex(2)), sender=Sender.external(1),
                   signer=DS.signature_private_key)
    assert check_of(lambda: a.process(msg), a) == "MSG-EXTERNAL-SENDER"


# --- FRAME-* (messages/protection.py) -------------------------------------------------------


def test_application_data_in_a_public_message() -> None:
    a, b, _ = make_group()
    msg, _ = forge(b, b"application data in the clear")
    assert check_of(lambda: a.process(msg), a) == "FRAME-PUB-APP"


def test_unprotect_public_for_another_group() -> None:
    # Group.process checks the group first (MSG-GROUP); the protection layer on its
    # own refuses too
    a, b, _ = make_group()
    msg, _ = forge(b, Remove(LeafIndex(2)), group_id=b"another group")
    with pytest.raises(ValidationError) as err:
        unprotect_public(CS, public_message(msg), a.state.secrets.membership_key, a.context)
    assert err.value.check_id == "FRAME-GROUP"


def test_unprotect_private_for_another_group() -> None:
    a, b, _ = make_group()
    pm = private_message(b.encrypt(b"hello"))
    with pytest.raises(ValidationError) as err:
        unprotect_private(CS, replace(pm, group_id=b"another group"), a.state.secret_tree,
                          a.state.secrets.sender_data_secret, a.context)
    assert err.value.check_id == "FRAME-GROUP"


def test_private_message_sender_data_names_a_leaf_outside_the_tree() -> None:
    a, b, _ = make_group()
    pm = private_message(b.encrypt(b"hello"))
    secret = a.state.secrets.sender_data_secret
    sd = decrypt_sender_data(CS, pm, secret)
    assert sd.leaf_index == b.own_leaf
    forged = SenderData(LeafIndex(9), sd.generation, sd.reuse_guard).encode()
    key, nonce = sender_data_key_nonce(CS, secret, pm.ciphertext)
    bad = replace(pm, encrypted_sender_data=CS.aead.seal(key, nonce, pm.sender_data_aad(),
                                                          forged))
    assert check_of(lambda: a.process(MLSMessage(bad).encode()), a) == "FRAME-SENDER-LEAF"


# --- PrivateMessage authenticity (§6.1, §6.3) -------------------------------------------------


def test_application_message_with_an_invalid_signature() -> None:
    a, b, _ = make_group()
    for sig in (b"", bytes(64), b"\x01" * 64):
        msg = private_from(b, b.own_leaf, b"forged", signature=sig)
        before = snapshot(a)
        with pytest.raises(CryptoError):
            a.process(msg)
        assert snapshot(a) == before
    # b's real messages still go through
    event = a.process(b.encrypt(b"real"))
    assert isinstance(event, ApplicationMessage) and event.data == b"real"


def test_application_message_from_an_insider_posing_as_another_member() -> None:
    # c can encrypt under b's ratchet (§9), but cannot sign as b
    a, b, c = make_group()
    msg = private_from(c, b.own_leaf, b"c pretends to be b")
    before = snapshot(a)
    with pytest.raises(CryptoError):
        a.process(msg)
    assert snapshot(a) == before


def test_rejected_forgery_does_not_burn_the_senders_key() -> None:
    a, b, c = make_group()
    with pytest.raises(CryptoError):
        a.process(private_from(c, b.own_leaf, b"c pretends to be b"))
    event = a.process(b.encrypt(b"the real generation 0"))
    assert isinstance(event, ApplicationMessage)


def test_application_message_with_tampered_ciphertext() -> None:
    a, b, _ = make_group()
    pm = private_message(b.encrypt(b"hello"))
    bad = MLSMessage(replace(pm, ciphertext=flip(pm.ciphertext, 3))).encode()
    with pytest.raises(CryptoError):
        a.process(bad)
    bad = MLSMessage(replace(pm, authenticated_data=b"changed")).encode()
    with pytest.raises(CryptoError):
        a.process(bad)


def test_encrypted_commit_with_an_invalid_signature() -> None:
    a, b, _ = make_group(encrypt_handshake=True)
    s = a.state
    fc = FramedContent(s.context.group_id, s.context.epoch, Sender.member(a.own_leaf), b"",
                       Commit((), None))
    ac = AuthenticatedContent(PRIVATE, fc, FramedContentAuthData(bytes(64), bytes(CS.nh)))
    priv = protect_private(CS, ac, s.secret_tree, s.secrets.sender_data_secret,
                           SeededRandom(b"x"))
    before = snapshot(b)
    with pytest.raises(CryptoError):
        b.process(MLSMessage(priv).encode())
    assert snapshot(b) == before


# --- virtual clients: the sender a reuse guard names (draft-00 §5.6) ----------------------------


def test_reuse_guard_naming_a_leaf_that_is_not_an_emulator() -> None:
    secret, nonce = bytes(CS.nh), bytes(CS.aead.nn)
    guard = make_reuse_guard(CS, secret, nonce, LeafIndex(3), 4, SeededRandom(b"rg"))
    assert recover_leaf_index(CS, secret, nonce, guard, 4, members={0, 1, 3}) == 3
    with pytest.raises(ValidationError) as err:
        recover_leaf_index(CS, secret, nonce, guard, 4, members={0, 1, 2})
    assert err.value.check_id == "VC-RG-1"
