"""RFC 9420 §12.4.2 commit processing (CM-*), the UpdatePath checks of §7.5 / §12.4.2
as the engine runs them (TREEKEM-*), PSK availability (§8.4, PR-PSK-UNKNOWN), and
"nothing is accepted unsigned or unverifiable": a commit or proposal whose signature
or membership tag is garbage is a CryptoError and changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlsvc.crypto.labels import encrypt_with_label
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import SUITES
from mlsvc.errors import CryptoError, StateError, ValidationError
from mlsvc.group.group import Group
from mlsvc.messages.codepoints import LeafNodeSource, ResumptionPSKUsage
from mlsvc.messages.commit import Commit, HPKECiphertext, UpdatePath
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.extensions import ExternalSender, ExternalSenders
from mlsvc.messages.framing import PublicMessage, Sender
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    ProposalRef,
    Remove,
)
from mlsvc.tree.treekem import UPDATE_PATH_NODE_LABEL, merge_update_path
from mlsvc.types import LeafIndex, NodeIndex
from tests.unit.validation_helpers import (
    CS,
    check_of,
    commit_check,
    config,
    flip,
    forge,
    forge_proposal,
    identity,
    key_package,
    leaf_for,
    make_group,
    member_leaf,
    public_message,
    real_commit,
    received_check,
    snapshot,
)

NONCE = bytes(range(CS.nh))


# --- CM-* ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [1, -1])
def test_commit_for_another_epoch(delta: int) -> None:
    a, b, _ = make_group()
    msg, _ = forge(a, Commit((), None), epoch=a.epoch + delta)
    assert check_of(lambda: b.process(msg), b) == "CM-EPOCH"


def test_proposal_for_another_epoch() -> None:
    a, b, _ = make_group()
    msg, _ = forge(a, Remove(LeafIndex(2)), epoch=a.epoch + 1)
    assert check_of(lambda: b.process(msg), b) == "CM-EPOCH"


def test_replayed_commit() -> None:
    a, b, _ = make_group()
    out = a.commit(force_path=True)
    a.merge_pending_commit()
    b.process(out.commit)
    assert check_of(lambda: b.process(out.commit), b) == "CM-EPOCH"


@pytest.mark.parametrize("items", [
    (), (Remove(LeafIndex(2)),), (GroupContextExtensions(()),),
], ids=["empty", "remove", "gce"])
def test_path_missing_where_required(items: tuple[Remove, ...]) -> None:
    a, b, _ = make_group()
    assert received_check(a, b, items, None) == "CM-PATH-REQUIRED"


def test_unknown_proposal_reference() -> None:
    a, b, _ = make_group()
    assert received_check(a, b, [ProposalRef(bytes(CS.nh))]) == "CM-UNKNOWN-REF"


def test_reference_to_a_proposal_of_another_member_not_received() -> None:
    a, b, c = make_group()
    msg, ref = forge_proposal(c, Remove(LeafIndex(1)))
    a.process(msg)  # b never received it
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT), ())
    assert received_check(a, b, [ProposalRef(ref)], path) == "CM-UNKNOWN-REF"


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_confirmation_tag_wrong_all_suites(suite: int) -> None:
    a, b, c = make_group(suite=suite)
    commit, tag = real_commit(a, force_path=True)
    msg, _ = forge(a, commit, confirmation_tag=flip(tag))
    assert check_of(lambda: b.process(msg), b) == "CM-CONFIRMATION-TAG"
    # the untampered commit is then accepted
    good, _ = forge(a, commit, confirmation_tag=tag)
    b.process(good)
    c.process(good)
    assert b.epoch_authenticator == c.epoch_authenticator


def test_confirmation_tag_of_a_commit_without_path() -> None:
    a, b, _ = make_group()
    commit, tag = real_commit(a, proposals=[Add(key_package("d").key_package)])
    assert commit.path is None
    msg, _ = forge(a, commit, confirmation_tag=flip(tag, len(tag) - 1))
    assert check_of(lambda: b.process(msg), b) == "CM-CONFIRMATION-TAG"


def test_own_commit_that_is_not_pending() -> None:
    a, _, _ = make_group()
    out = a.commit(force_path=True)
    a.clear_pending_commit()
    assert check_of(lambda: a.process(out.commit), a) == "CM-OWN-COMMIT"


def test_forged_commit_from_own_leaf() -> None:
    a, _, _ = make_group()
    msg, _ = forge(a, Commit((), UpdatePath(leaf_for(a, LeafNodeSource.COMMIT), ())))
    assert check_of(lambda: a.process(msg), a) == "CM-OWN-COMMIT"


def test_commit_from_an_external_sender() -> None:
    ds = identity("delivery service")
    ext = ExternalSenders((ExternalSender(ds.signature_public_key, BasicCredential(b"ds")),))
    a, b, _ = make_group(extensions=(ext.to_extension(),))
    msg, _ = forge(a, Commit((Remove(LeafIndex(2)),), None), sender=Sender.external(0),
                   signer=ds.signature_private_key)
    assert check_of(lambda: b.process(msg), b) == "CM-SENDER-TYPE"


# --- the UpdatePath as the engine checks it (§7.5, §7.9.2, §12.4.2) ---------------------------


def test_update_path_with_too_few_nodes() -> None:
    a, b, _ = make_group()
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT), ())
    assert received_check(a, b, [], path) == "TREEKEM-PATH-LEN"


def test_update_path_with_a_missing_ciphertext() -> None:
    a, b, _ = make_group()
    commit, tag = real_commit(a, force_path=True)
    assert commit.path is not None
    node = commit.path.nodes[-1]
    short = replace(node, encrypted_path_secret=node.encrypted_path_secret[:-1])
    path = replace(commit.path, nodes=(*commit.path.nodes[:-1], short))
    msg, _ = forge(a, replace(commit, path=path), confirmation_tag=tag)
    assert check_of(lambda: b.process(msg), b) == "TREEKEM-CIPHERTEXT-COUNT"


def test_update_path_leaf_parent_hash_wrong() -> None:
    a, b, _ = make_group()
    commit, tag = real_commit(a, force_path=True)
    assert commit.path is not None and commit.path.leaf_node.parent_hash
    leaf = replace(commit.path.leaf_node, parent_hash=flip(commit.path.leaf_node.parent_hash))
    leaf = leaf.signed(CS, a.state.identity.signature_private_key, a.group_id, a.own_leaf)
    msg, _ = forge(a, replace(commit, path=replace(commit.path, leaf_node=leaf)),
                   confirmation_tag=tag)
    assert check_of(lambda: b.process(msg), b) == "TREEKEM-PARENT-HASH"


def path_with_secret_for_b(secret: bytes) -> tuple[list[Group], bytes]:
    """m0's real commit (empty, with path) whose path secret for m1 is replaced by
    `secret`, HPKE-encrypted to m1's leaf key under the right provisional GroupContext
    (§7.5, §12.4.2), so decryption succeeds and what m1 derives from it is checked."""
    a, b, c = make_group()
    commit, tag = real_commit(a, force_path=True)
    assert commit.path is not None
    provisional = b.tree.copy()
    merge_update_path(CS, provisional, a.own_leaf, commit.path)
    ctx = replace(b.context, epoch=b.epoch + 1, tree_hash=provisional.tree_hash())
    first = commit.path.nodes[0]  # node 1, whose copath child is m1's leaf
    assert len(first.encrypted_path_secret) == 1
    kem_output, ct = encrypt_with_label(CS, member_leaf(b).encryption_key,
                                        UPDATE_PATH_NODE_LABEL, ctx.encode(), secret,
                                        SeededRandom(b"path secret"))
    node = replace(first, encrypted_path_secret=(HPKECiphertext(kem_output, ct),))
    path = replace(commit.path, nodes=(node, *commit.path.nodes[1:]))
    msg, _ = forge(a, replace(commit, path=path), confirmation_tag=tag)
    return [a, b, c], msg


@pytest.mark.parametrize("length", [0, CS.nh - 1, CS.nh + 1])
def test_path_secret_of_the_wrong_length(length: int) -> None:
    (_, b, _), msg = path_with_secret_for_b(bytes(length))
    assert check_of(lambda: b.process(msg), b) == "TREEKEM-PATH-SECRET-LEN"


def test_path_secret_that_does_not_derive_the_path_keys() -> None:
    (_, b, c), msg = path_with_secret_for_b(b"\x05" * CS.nh)
    assert check_of(lambda: b.process(msg), b) == "TREEKEM-PUBKEY-MISMATCH"
    # m2 decrypts its own, untouched, ciphertext; the changed commit changes the
    # confirmed transcript hash, so the committer's tag does not verify for m2
    assert check_of(lambda: c.process(msg), c) == "CM-CONFIRMATION-TAG"


def test_update_path_leaf_with_update_source_in_treekem() -> None:
    # the engine's leaf validation refuses it first (LN-SOURCE, see
    # test_validation_leaf_nodes); TreeKEM's own merge step refuses it as well
    a, b, _ = make_group()
    commit, _ = real_commit(a, force_path=True)
    assert commit.path is not None
    leaf = leaf_for(a, LeafNodeSource.UPDATE)
    with pytest.raises(ValidationError) as err:
        merge_update_path(CS, b.tree.copy(), a.own_leaf, replace(commit.path, leaf_node=leaf))
    assert err.value.check_id == "TREEKEM-LEAF-SOURCE"


@pytest.mark.parametrize("fault", ["blank-node", "off-tree", "wrong-leaf-key"])
def test_private_keys_inconsistent_with_the_tree(fault: str) -> None:
    a, _, _ = make_group()
    keys = a.state.keys.copy()
    if fault == "blank-node":
        keys.path_keys[NodeIndex(5)] = bytes(32)  # node 5 (above leaves 2, 3) is blank
        assert a.tree.node(NodeIndex(5)) is None
    elif fault == "off-tree":
        keys.path_keys[NodeIndex(99)] = bytes(32)
    else:
        keys.leaf_private_key = CS.kem.derive_key_pair(b"another")[0]
    keys_ok = a.state.keys.copy()
    keys_ok.check_consistent(CS, a.tree)
    with pytest.raises(ValidationError) as err:
        keys.check_consistent(CS, a.tree)
    assert err.value.check_id == "TREEKEM-PRIVATE-STATE"


def test_update_path_reusing_the_previous_path_keys() -> None:
    a, b, _ = make_group()
    secret = bytes(CS.nh)
    out = a.commit(force_path=True, path_secret=secret)
    a.merge_pending_commit()
    b.process(out.commit)
    # the same first path secret derives the same parent keys, still in the tree

    def again() -> None:
        out2 = a.commit(force_path=True, path_secret=secret)
        a.clear_pending_commit()
        b.process(out2.commit)

    assert check_of(again, b) == "TREEKEM-KEY-REUSE"


# --- PSKs must be known (§8.4, §12.4.2 "Verify that all PreSharedKey proposals ... are
# available") ------------------------------------------------------------------------------


def test_proposing_an_unknown_external_psk() -> None:
    a, _, _ = make_group()
    assert check_of(lambda: a.propose_external_psk(b"nobody has this"), a) == "PR-PSK-UNKNOWN"


def test_proposing_a_resumption_psk_of_an_unknown_epoch() -> None:
    a, _, _ = make_group()
    assert check_of(lambda: a.propose_resumption_psk(a.epoch + 5), a) == "PR-PSK-UNKNOWN"


def test_committing_an_unknown_external_psk() -> None:
    a, b, _ = make_group()
    psk = PreSharedKey(PreSharedKeyID.external(b"nobody has this", NONCE))
    assert commit_check(a, b, [psk]) == "PR-PSK-UNKNOWN"


def test_committed_psk_known_to_the_committer_only() -> None:
    psks = {b"psk-1": b"value"}
    a, b, _ = make_group(configs={0: config("m0", external_psks=psks)})
    psk = PreSharedKey(PreSharedKeyID.external(b"psk-1", NONCE))
    out = a.commit([psk])
    a.clear_pending_commit()
    assert check_of(lambda: b.process(out.commit), b) == "PR-PSK-UNKNOWN"


def test_committed_resumption_psk_of_an_epoch_the_receiver_never_saw() -> None:
    a, b, _ = make_group()
    psk = PreSharedKey(PreSharedKeyID.resumption(ResumptionPSKUsage.APPLICATION, a.group_id,
                                                 a.epoch + 7, NONCE))
    assert received_check(a, b, [psk]) == "PR-PSK-UNKNOWN"


# --- nothing unsigned or unverifiable is accepted (§6.1, §6.2) --------------------------------


def signature_variants(sig: bytes) -> list[bytes]:
    return [flip(sig), flip(sig, len(sig) - 1), b"", bytes(len(sig))]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_commit_with_a_garbage_signature_all_suites(suite: int) -> None:
    a, b, _ = make_group(suite=suite)
    commit, tag = real_commit(a, force_path=True)
    good, ac = forge(a, commit, confirmation_tag=tag)
    for sig in signature_variants(ac.auth.signature):
        msg, _ = forge(a, commit, confirmation_tag=tag, signature=sig)  # membership tag OK
        before = snapshot(b)
        with pytest.raises(CryptoError):
            b.process(msg)
        assert snapshot(b) == before
    b.process(good)
    assert b.epoch == a.epoch + 1


def test_commit_signed_by_another_member() -> None:
    a, b, c = make_group()
    commit, tag = real_commit(a, force_path=True)
    msg, _ = forge(a, commit, confirmation_tag=tag, signer=c.state.identity.signature_private_key)
    before = snapshot(b)
    with pytest.raises(CryptoError):
        b.process(msg)
    assert snapshot(b) == before


def test_proposal_with_a_garbage_signature() -> None:
    a, b, _ = make_group()
    _, ac = forge(b, Remove(LeafIndex(2)))
    for sig in signature_variants(ac.auth.signature):
        msg, _ = forge(b, Remove(LeafIndex(2)), signature=sig)
        before = snapshot(a)
        with pytest.raises(CryptoError):
            a.process(msg)
        assert snapshot(a) == before


def test_commit_with_a_garbage_membership_tag() -> None:
    a, b, _ = make_group()
    out = a.commit(force_path=True)
    pm = public_message(out.commit)
    assert pm.membership_tag is not None
    bad = MLSMessage(PublicMessage(pm.content, pm.auth, flip(pm.membership_tag))).encode()
    before = snapshot(b)
    with pytest.raises(CryptoError):
        b.process(bad)
    assert snapshot(b) == before
    b.process(out.commit)


def test_group_survives_rejections() -> None:
    # after a series of rejected inputs the members still agree on the next epoch
    a, b, c = make_group()
    bad = [Commit((Remove(a.own_leaf),), None), Commit((ProposalRef(bytes(CS.nh)),), None)]
    for commit in bad:
        msg, _ = forge(a, commit)
        for g in (b, c):
            with pytest.raises(ValidationError):
                g.process(msg)
    out = a.commit(force_path=True)
    a.merge_pending_commit()
    for g in (b, c):
        g.process(out.commit)
    assert a.epoch_authenticator == b.epoch_authenticator == c.epoch_authenticator


def test_no_application_data_while_proposals_are_uncommitted() -> None:
    a, b, _ = make_group()
    a.process(b.propose_remove(LeafIndex(2)))
    with pytest.raises(StateError):
        a.encrypt(b"application data")
