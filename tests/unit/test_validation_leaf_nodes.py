"""RFC 9420 §7.3 leaf node validation (and the §7.2 content rules): every LN-* check
made to fire by a LeafNode arriving in an Add (KeyPackage), an Update, the UpdatePath
of a Commit, or the ratchet tree of a Welcome. Each bad LeafNode is correctly signed
unless the signature is what is tested, so the named check is the one that fires;
the group state must not change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from mlsvc.group.config import default_capabilities
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.proposals import ResolvedProposal
from mlsvc.messages.codepoints import CredentialType, LeafNodeSource
from mlsvc.messages.commit import UpdatePath
from mlsvc.messages.credentials import Certificate, X509Credential
from mlsvc.messages.extensions import Extension, RequiredCapabilities
from mlsvc.messages.framing import Sender
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime
from mlsvc.messages.proposals import Add, Update
from mlsvc.types import LeafIndex
from tests.unit.validation_helpers import (
    CS,
    NOW,
    SUITE,
    check_of,
    commit_check,
    config,
    flip,
    forge_proposal,
    identity,
    key_package,
    leaf_for,
    make_group,
    member_leaf,
    received_check,
    resign_key_package,
)

RICH_CAPS = Capabilities((1,), (SUITE,), (), (), (CredentialType.BASIC, CredentialType.X509))


def reject_mallory(credential: object, signature_key: bytes) -> bool:
    """An authentication service (§5.3.1) that refuses the identity b"mallory"."""
    return getattr(credential, "identity", None) != b"mallory"


def accept_all(credential: object, signature_key: bytes) -> bool:
    return True


# --- LeafNodes in KeyPackages of Add proposals (§7.3 via §10.1) ---------------------------


def test_credential_rejected_by_the_application() -> None:
    a, b, _ = make_group(credential_validator=reject_mallory)
    kp = key_package("mallory").key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-CREDENTIAL"


def test_credential_rejected_only_by_the_receiver() -> None:
    # the committer's AS accepts mallory, the receiver's does not: the receiver rejects
    a, b, _ = make_group(configs={1: config("m1", credential_validator=reject_mallory)})
    kp = key_package("mallory").key_package
    a.commit([Add(kp)])
    a.clear_pending_commit()
    assert received_check(a, b, [Add(kp)]) == "LN-CREDENTIAL"


def test_leaf_signature_invalid() -> None:
    a, b, _ = make_group()
    kp = key_package("d").key_package
    bad_leaf = replace(kp.leaf_node, signature=flip(kp.leaf_node.signature))
    kp = resign_key_package(kp, "d", leaf_node=bad_leaf)  # the KeyPackage signature is fine
    assert commit_check(a, b, [Add(kp)]) == "LN-SIGNATURE"


def test_required_capabilities_not_met() -> None:
    required = RequiredCapabilities((0xFF00,), (), ()).to_extension()
    a, b, _ = make_group(extensions=(required,), supported_extensions=(0xFF00,))
    kp = key_package("d").key_package  # capabilities without extension 0xff00
    assert commit_check(a, b, [Add(kp)]) == "LN-REQUIRED-CAPS"
    # the same KeyPackage listing 0xff00 is accepted
    ok = key_package("d", capabilities=default_capabilities(SUITE, (0xFF00,))).key_package
    out = a.commit([Add(ok)])
    a.merge_pending_commit()
    b.process(out.commit)
    assert b.epoch == a.epoch


def test_credential_type_not_supported_by_members() -> None:
    a, b, _ = make_group(credential_validator=accept_all)
    x509 = X509Credential((Certificate(b"not parsed by this test"),))
    d = replace(identity("d"), credential=x509)
    kp = create_key_package(CS, d, capabilities=RICH_CAPS).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-CRED-TYPE-SUPPORTED"


@pytest.mark.parametrize("lifetime", [Lifetime(0, NOW - 1), Lifetime(NOW + 1, NOW + 100)],
                         ids=["expired", "not-yet-valid"])
def test_lifetime_outside_now(lifetime: Lifetime) -> None:
    a, b, _ = make_group()
    kp = key_package("d", lifetime=lifetime).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-LIFETIME"


def test_extension_not_in_capabilities() -> None:
    a, b, _ = make_group()
    kp = key_package("d", leaf_extensions=(Extension(0xFF01, b"x"),)).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-EXTENSIONS-SUPPORTED"


def test_own_credential_type_not_in_capabilities() -> None:
    a, b, _ = make_group()
    caps = Capabilities((1,), (SUITE,), (), (), (CredentialType.X509,))
    kp = key_package("d", capabilities=caps).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-OWN-CRED-IN-CAPS"


@pytest.mark.parametrize("caps", [
    Capabilities((1,), (SUITE,), (0x0002,), (), (CredentialType.BASIC,)),
    Capabilities((1,), (SUITE,), (), (0x0001,), (CredentialType.BASIC,)),
], ids=["default-extension", "default-proposal"])
def test_default_types_listed_in_capabilities(caps: Capabilities) -> None:
    a, b, _ = make_group()
    kp = key_package("d", capabilities=caps).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-DEFAULT-IN-CAPS"


def test_lifetime_longer_than_the_application_maximum() -> None:
    short = Lifetime(NOW - 10, NOW + 3600)
    a, b, _ = make_group(max_leaf_lifetime=7200, lifetime=short)
    kp = key_package("d", lifetime=Lifetime(NOW - 10, NOW + 86400)).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-MAX-LIFETIME"


def test_key_package_leaf_with_update_source() -> None:
    a, b, _ = make_group()
    kp = key_package("d").key_package
    leaf = replace(kp.leaf_node, leaf_node_source=LeafNodeSource.UPDATE, lifetime=None)
    leaf = leaf.signed(CS, identity("d").signature_private_key, a.group_id, 3)
    kp = resign_key_package(kp, "d", leaf_node=leaf)
    assert commit_check(a, b, [Add(kp)]) == "LN-SOURCE"


def test_encryption_key_of_another_member() -> None:
    a, b, c = make_group()
    taken = member_leaf(c).encryption_key
    kp = key_package("d", encryption_key_pair=(b"", taken)).key_package
    assert commit_check(a, b, [Add(kp)]) == "LN-UNIQUE-ENCRYPTION-KEY"


# --- LeafNodes in Update proposals (§12.1.2) ------------------------------------------------


def update_check(make_leaf: Callable[[Group], LeafNode]) -> str:
    """m1 proposes Update(make_leaf(m1)) (correctly framed and signed): m0 and m2 must
    refuse it on receipt (§7.3), and if it reached m0's proposal cache anyway, m0 must
    refuse to commit it, with the same check."""
    a, b, c = make_group()
    update = Update(make_leaf(b))
    msg, ref = forge_proposal(b, update)
    on_receipt = check_of(lambda: a.process(msg), a)
    assert check_of(lambda: c.process(msg), c) == on_receipt
    a.state.proposals[ref] = ResolvedProposal(update, Sender.member(b.own_leaf), ref)
    assert check_of(lambda: a.commit(), a) == on_receipt
    return on_receipt


def test_update_leaf_with_key_package_source() -> None:
    assert update_check(lambda b: leaf_for(b, LeafNodeSource.KEY_PACKAGE)) == "LN-SOURCE"


def test_update_keeps_the_encryption_key() -> None:
    def same_key(b: Group) -> LeafNode:
        return leaf_for(b, LeafNodeSource.UPDATE, encryption_key=member_leaf(b).encryption_key)

    assert update_check(same_key) == "LN-UPDATE-NEW-KEY"


def test_update_leaf_signed_for_another_leaf_index() -> None:
    def other_index(b: Group) -> LeafNode:
        return leaf_for(b, LeafNodeSource.UPDATE, leaf_index=LeafIndex(2))

    assert update_check(other_index) == "LN-SIGNATURE"


def test_update_takes_the_signature_key_of_another_member() -> None:
    def stolen_key(b: Group) -> LeafNode:
        return leaf_for(b, LeafNodeSource.UPDATE, signer=identity("m2"))

    assert update_check(stolen_key) == "LN-UNIQUE-SIGNATURE-KEY"


def test_update_with_a_fresh_key_is_accepted() -> None:
    # the positive case of the helper: a valid Update is committed and processed
    a, b, c = make_group()
    msg, _ = forge_proposal(b, Update(leaf_for(b, LeafNodeSource.UPDATE)))
    a.process(msg)
    c.process(msg)
    out = a.commit()
    a.merge_pending_commit()
    c.process(out.commit)
    assert c.epoch_authenticator == a.epoch_authenticator


# --- LeafNodes in the UpdatePath of a Commit (§12.4.2) --------------------------------------


def test_path_leaf_with_update_source() -> None:
    a, b, _ = make_group()
    path = UpdatePath(leaf_for(a, LeafNodeSource.UPDATE), ())
    assert received_check(a, b, [], path) == "LN-SOURCE"


def test_path_leaf_with_bad_signature() -> None:
    a, b, _ = make_group()
    leaf = leaf_for(a, LeafNodeSource.COMMIT)
    leaf = replace(leaf, signature=flip(leaf.signature))
    assert received_check(a, b, [], UpdatePath(leaf, ())) == "LN-SIGNATURE"


def test_path_leaf_takes_the_signature_key_of_another_member() -> None:
    a, b, _ = make_group()
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT, signer=identity("m2")), ())
    assert received_check(a, b, [], path) == "LN-UNIQUE-SIGNATURE-KEY"


def test_path_leaf_takes_the_encryption_key_of_another_member() -> None:
    a, b, c = make_group()
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT,
                               encryption_key=member_leaf(c).encryption_key), ())
    # §12.4.2 "none of the public keys in the UpdatePath appear in any node of the new
    # ratchet tree" is checked before the leaf's own §7.3 uniqueness rule
    assert received_check(a, b, [], path) == "TREEKEM-KEY-REUSE"


def test_path_leaf_credential_rejected() -> None:
    a, b, _ = make_group(credential_validator=reject_mallory)
    mallory = identity("mallory")
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT, signer=mallory), ())
    assert received_check(a, b, [], path) == "LN-CREDENTIAL"


def test_path_leaf_keeps_the_committers_encryption_key() -> None:
    """§12.4.2 'Verify that the encryption_key value in the LeafNode is different from
    the committer's current leaf node'."""
    a, b, _ = make_group()
    same = (a.state.keys.leaf_private_key, member_leaf(a).encryption_key)

    def commit_and_process() -> None:
        out = a.commit(force_path=True, encryption_key_pair=same)
        a.clear_pending_commit()
        b.process(out.commit)

    assert check_of(commit_and_process, b) == "CM-PATH-LEAF-NEW-KEY"
