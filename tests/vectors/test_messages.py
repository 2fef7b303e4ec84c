"""Official vectors for the wire structs: messages.json (every object decodes and
re-encodes to the same bytes), and the signature / MAC inputs of the structs
(LeafNodeTBS, KeyPackageTBS, GroupInfoTBS, FramedContentTBS with its GroupContext,
AuthenticatedContentTBM, KeyPackageRef) checked against the signatures and tags that
message-protection.json, welcome.json and tree-validation.json were generated with.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlsvc.conformance.base import h
from mlsvc.conformance.messages import run
from mlsvc.crypto.labels import decrypt_with_label, derive_secret, expand_with_label
from mlsvc.crypto.suites import get_suite
from mlsvc.messages import (
    Commit,
    ContentType,
    GroupContext,
    GroupInfo,
    GroupSecrets,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    MLSMessage,
    PublicMessage,
    RatchetTreeExtension,
    Sender,
    Welcome,
)
from mlsvc.messages.proposals import encode_proposal
from mlsvc.types import LeafIndex
from tests.conftest import VECTORS
from tests.vectors.util import assert_vector_file_passes

RFC = VECTORS / "rfc9420"


def _load(stem: str) -> list[dict[str, Any]]:
    with (RFC / f"{stem}.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def test_every_message_case_passes() -> None:
    assert assert_vector_file_passes("messages") == 300


def test_a_corrupted_message_case_is_reported() -> None:
    cases = copy.deepcopy(_load("messages")[:4])
    cases[1]["commit"] += "00"  # trailing byte: DecodeError
    cases[2]["public_message_proposal"] = cases[2]["public_message_commit"]  # wrong type
    cases[3]["mls_welcome"] = cases[3]["mls_group_info"]  # wrong wire format
    result = run(cases)
    assert result.passed == 1 and result.failed == 3, result.failures()
    details = [c.detail for c in result.failures()]
    assert "DecodeError" in details[0]
    assert "content_type" in details[1]
    assert "wire_format" in details[2]


def _group_context(case: dict[str, Any]) -> GroupContext:
    # message-protection.json: a GroupContext from the case's fields, no extensions
    return GroupContext(
        case["cipher_suite"], h(case["group_id"]), case["epoch"], h(case["tree_hash"]),
        h(case["confirmed_transcript_hash"]), (),
    )


@pytest.mark.parametrize("kind", ["proposal", "commit"])
def test_public_message_signature_and_membership_tag(kind: str) -> None:
    """FramedContentTBS (with the GroupContext of a member sender) and
    AuthenticatedContentTBM encode exactly what the vector generator signed and MACed."""
    cases = _load("message-protection")
    assert {c["cipher_suite"] for c in cases} == set(range(1, 8))
    for case in cases:
        cs = get_suite(case["cipher_suite"])
        context = _group_context(case)
        body = MLSMessage.decode(h(case[f"{kind}_pub"])).body
        assert isinstance(body, PublicMessage)
        content = body.content
        assert content.sender == Sender.member(LeafIndex(1))
        if kind == "proposal":
            assert content.content_type == ContentType.PROPOSAL
            assert not isinstance(content.content, (bytes, Commit))
            assert encode_proposal(content.content) == h(case["proposal"])
        else:
            assert isinstance(content.content, Commit)
            assert content.content.encode() == h(case["commit"])
        ac = body.authenticated_content()
        pub = h(case["signature_pub"])
        assert ac.verify(cs, pub, context), case["cipher_suite"]
        assert body.membership_tag == cs.mac(h(case["membership_key"]), ac.tbm(context))
        # a different epoch's context does not verify
        other = GroupContext(
            context.cipher_suite, context.group_id, context.epoch + 1, context.tree_hash,
            context.confirmed_transcript_hash, (),
        )
        assert not ac.verify(cs, pub, other)
        # our own signature over the same TBS verifies; EdDSA is deterministic, so for
        # the EdDSA suites it is the vector's signature byte for byte
        sig = content.sign(cs, h(case["signature_priv"]), ac.wire_format, context)
        assert content.verify(cs, pub, ac.wire_format, context, sig)
        if case["cipher_suite"] in (1, 3, 4, 6):
            assert sig == body.auth.signature


def test_welcome_key_package_group_info_signatures() -> None:
    """KeyPackageTBS, LeafNodeTBS (key_package source), KeyPackageRef and GroupInfoTBS
    against welcome.json."""
    cases = _load("welcome")
    for case in cases:
        cs = get_suite(case["cipher_suite"])
        kp = MLSMessage.decode(h(case["key_package"])).body
        wel = MLSMessage.decode(h(case["welcome"])).body
        assert isinstance(kp, KeyPackage) and isinstance(wel, Welcome)
        assert kp.leaf_node.leaf_node_source == LeafNodeSource.KEY_PACKAGE
        assert kp.verify(cs)
        assert kp.leaf_node.verify(cs)
        entry = wel.find_secrets(kp.ref(cs))
        assert entry is not None, "the Welcome names the KeyPackageRef of the key package"
        # §12.4.3.1: GroupSecrets under "Welcome", GroupInfo under the welcome key
        secrets = GroupSecrets.decode(
            decrypt_with_label(
                cs, h(case["init_priv"]), b"Welcome", wel.encrypted_group_info,
                entry.encrypted_group_secrets.kem_output,
                entry.encrypted_group_secrets.ciphertext,
            )
        )
        member_secret = cs.extract(secrets.joiner_secret, bytes(cs.nh))  # no PSKs
        welcome_secret = derive_secret(cs, member_secret, b"welcome")
        key = expand_with_label(cs, welcome_secret, b"key", b"", cs.aead.nk)
        nonce = expand_with_label(cs, welcome_secret, b"nonce", b"", cs.aead.nn)
        plain = cs.aead.open(key, nonce, b"", wel.encrypted_group_info)
        info = GroupInfo.decode(plain)
        assert info.encode() == plain
        assert info.verify(cs, h(case["signer_pub"]))
        assert not info.verify(cs, kp.leaf_node.signature_key)


def test_tree_validation_leaf_signatures() -> None:
    """LeafNodeTBS with the group context (update/commit sources) against the leaves
    of tree-validation.json, whose signatures bind the case's group_id."""
    checked = dict.fromkeys(LeafNodeSource, 0)
    for case in _load("tree-validation"):
        cs = get_suite(case["cipher_suite"])
        raw = h(case["tree"])
        tree = RatchetTreeExtension.decode(raw)
        assert tree.encode() == raw
        group_id = h(case["group_id"])
        for i, node in enumerate(tree.nodes):
            if not isinstance(node, LeafNode):
                continue
            src = node.leaf_node_source
            checked[src] += 1
            if src == LeafNodeSource.KEY_PACKAGE:
                assert node.verify(cs)
            else:
                assert node.verify(cs, group_id, i // 2)
                assert not node.verify(cs, group_id + b"x", i // 2)
                assert not node.verify(cs, group_id, i // 2 + 1)
    # the file has key_package and commit leaves (no update leaves)
    assert checked[LeafNodeSource.KEY_PACKAGE] > 0 and checked[LeafNodeSource.COMMIT] > 0, checked


def test_signed_constructors_verify_and_bind_their_context() -> None:
    """`signed(...)` fills in a signature that `verify(...)` accepts, over the TBS
    with its context (keys from message-protection.json, one EdDSA and one ECDSA suite)."""
    for case in _load("message-protection"):
        if case["cipher_suite"] not in (1, 2):
            continue
        cs = get_suite(case["cipher_suite"])
        sk, pk = h(case["signature_priv"]), h(case["signature_pub"])
        template = MLSMessage.decode(h(_load("messages")[0]["mls_key_package"])).body
        assert isinstance(template, KeyPackage)
        leaf = template.leaf_node
        update_leaf = LeafNode(
            leaf.encryption_key, pk, leaf.credential, leaf.capabilities,
            LeafNodeSource.UPDATE, None, None, leaf.extensions,
        ).signed(cs, sk, b"group", 3)
        assert update_leaf.verify(cs, b"group", 3)
        assert not update_leaf.verify(cs, b"group", 2)
        kp_leaf = LeafNode(
            leaf.encryption_key, pk, leaf.credential, leaf.capabilities,
            LeafNodeSource.KEY_PACKAGE, leaf.lifetime, None, leaf.extensions,
        ).signed(cs, sk)
        kp = KeyPackage(1, cs.id, template.init_key, kp_leaf, ()).signed(cs, sk)
        assert kp.verify(cs) and kp_leaf.verify(cs)
        assert KeyPackage.decode(kp.encode()) == kp
        info = GroupInfo(_group_context(case), (), b"\x01" * cs.nh, LeafIndex(0)).signed(cs, sk)
        assert info.verify(cs, pk)
        tampered = GroupInfo(
            info.group_context, info.extensions, info.confirmation_tag, LeafIndex(1),
            info.signature,
        )
        assert not tampered.verify(cs, pk)
