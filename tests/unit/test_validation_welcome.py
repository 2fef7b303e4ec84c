"""RFC 9420 §12.4.3.1 joining by Welcome and §12.4.3.2 GroupInfo verification for an
external join: WEL-*, GI-*, the ratchet tree checks a joiner runs (TREE-*, leaf
validation of every tree leaf) and the Welcome path secret (TREEKEM-WELCOME-PATH).

A tampered Welcome is re-encrypted (GroupSecrets to the joiner's init key, GroupInfo
under the welcome key) and the GroupInfo re-signed by its signer, so the check under
test is the one that fires, not a decryption or signature failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from mlsvc.crypto.suites import SUITES
from mlsvc.errors import ValidationError
from mlsvc.group.group import CommitOutput, Group
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.leaf_node import LeafNode, Node, ParentNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, PreSharedKey, PreSharedKeyID, Remove
from mlsvc.messages.welcome import GroupSecrets, PathSecret
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex
from tests.unit.validation_helpers import (
    CS,
    check_of,
    config,
    flip,
    group_info_of,
    identity,
    key_package,
    leaf_for,
    make_group,
    member_leaf,
    resign_group_info,
    rewrap_welcome,
    tree_nodes,
    welcome_of,
)


def add_d(force_path: bool = True, group_size: int = 3, group_path: bool = True,
          suite: int = 1, **commit_kw: Any
          ) -> tuple[list[Group], CommitOutput, KeyPackageBundle]:
    """A group of `group_size`, and m0's commit adding client d (with an UpdatePath,
    or with d only in the unmerged leaves of the existing parent nodes)."""
    members = make_group(group_size, force_path=group_path, suite=suite)
    d = key_package("d", suite)
    out = members[0].commit([Add(d.key_package)], force_path=force_path, **commit_kw)
    assert out.welcome is not None
    return members, out, d


def join_check(welcome: bytes, d: KeyPackageBundle, **kw: Any) -> str:
    """The check that fires when d joins with `welcome` (nothing to watch: no group)."""
    return check_of(lambda: Group.join(welcome, d, config("d joins"), **kw))


def with_gi(out: CommitOutput, d: KeyPackageBundle,
            change: Callable[[GroupInfo], GroupInfo]) -> bytes:
    assert out.welcome is not None
    return rewrap_welcome(out.welcome, d, group_info=change)


# --- the Welcome itself ---------------------------------------------------------------------


def test_untampered_welcome_joins() -> None:
    # the positive case of the helpers: re-encrypting without change still joins
    members, out, d = add_d()
    assert out.welcome is not None
    joined = Group.join(with_gi(out, d, lambda gi: gi), d, config("d joins"))
    members[0].merge_pending_commit()
    assert joined.epoch_authenticator == members[0].epoch_authenticator


def test_group_id_already_in_use() -> None:
    """§12.4.3.1 "Verify that the group_id is unique among the groups that the client is
    currently participating in" (the application answers through group_id_in_use)."""
    members, out, d = add_d()
    assert out.welcome is not None
    gid = members[0].group_id
    welcome = out.welcome
    assert check_of(lambda: Group.join(welcome, d, config(
        "d joins", group_id_in_use=lambda g: g == gid))) == "WEL-GROUP-ID"


def test_no_secrets_for_our_key_package() -> None:
    _, out, _ = add_d()
    assert out.welcome is not None
    assert join_check(out.welcome, key_package("e")) == "WEL-NO-SECRETS"


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_welcome_cipher_suite_differs_from_the_key_package(suite: int) -> None:
    _, out, d = add_d(suite=suite)
    assert out.welcome is not None
    w = welcome_of(out.welcome)
    other = 1 if suite != 1 else 2
    bad = MLSMessage(replace(w, cipher_suite=other)).encode()
    assert join_check(bad, d) == "WEL-SUITE"


def test_group_info_cipher_suite_differs() -> None:
    members, out, d = add_d()
    a = members[0]

    def other_suite(gi: GroupInfo) -> GroupInfo:
        return resign_group_info(gi, a.state.identity,
                                 group_context=replace(gi.group_context, cipher_suite=2))

    assert join_check(with_gi(out, d, other_suite), d) == "WEL-SUITE"


def test_psk_the_joiner_does_not_have() -> None:
    psks = {b"psk-1": b"value"}
    a, _, _ = make_group(external_psks=psks)
    d = key_package("d")
    psk = PreSharedKey(PreSharedKeyID.external(b"psk-1", bytes(CS.nh)))
    out = a.commit([Add(d.key_package), psk])
    assert out.welcome is not None
    assert join_check(out.welcome, d) == "WEL-PSK"
    # with the PSK the same Welcome joins
    Group.join(out.welcome, d, config("d", external_psks=psks))


# --- the GroupInfo --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flipped", "empty", "other-signer"])
def test_group_info_signature_invalid(how: str) -> None:
    members, out, d = add_d()
    b = members[1]

    def bad_signature(gi: GroupInfo) -> GroupInfo:
        if how == "flipped":
            return replace(gi, signature=flip(gi.signature))
        if how == "empty":
            return replace(gi, signature=b"")
        return gi.signed(CS, b.state.identity.signature_private_key)

    assert join_check(with_gi(out, d, bad_signature), d) == "WEL-GROUPINFO-SIGNATURE"


def test_group_info_signer_outside_the_tree() -> None:
    members, out, d = add_d()
    a = members[0]

    def far_signer(gi: GroupInfo) -> GroupInfo:
        return resign_group_info(gi, a.state.identity, signer=LeafIndex(40))

    assert join_check(with_gi(out, d, far_signer), d) == "WEL-SIGNER-LEAF"


def test_group_info_signer_is_a_blank_leaf() -> None:
    a, _, _, _ = make_group(4, force_path=False)
    a.commit([Remove(LeafIndex(1)), Remove(LeafIndex(2))])
    a.merge_pending_commit()
    d = key_package("d")
    out = a.commit([Add(d.key_package)])  # d takes leaf 1, leaf 2 stays blank
    assert out.welcome is not None

    def blank_signer(gi: GroupInfo) -> GroupInfo:
        assert tree_nodes(gi)[4] is None
        return resign_group_info(gi, a.state.identity, signer=LeafIndex(2))

    welcome = rewrap_welcome(out.welcome, d, group_info=blank_signer)
    assert join_check(welcome, d) == "WEL-SIGNER-LEAF"


def test_confirmation_tag_in_the_group_info_wrong() -> None:
    members, out, d = add_d()
    a = members[0]

    def bad_tag(gi: GroupInfo) -> GroupInfo:
        return resign_group_info(gi, a.state.identity, confirmation_tag=flip(gi.confirmation_tag))

    assert join_check(with_gi(out, d, bad_tag), d) == "CM-CONFIRMATION-TAG"


def test_path_secret_that_does_not_derive_the_tree_keys() -> None:
    _, out, d = add_d(force_path=True)
    assert out.welcome is not None

    def bad_path_secret(gs: GroupSecrets) -> GroupSecrets:
        assert gs.path_secret is not None
        return replace(gs, path_secret=PathSecret(flip(gs.path_secret.path_secret)))

    welcome = rewrap_welcome(out.welcome, d, secrets=bad_path_secret)
    assert join_check(welcome, d) == "TREEKEM-WELCOME-PATH"


# --- the ratchet tree (§12.4.3.1 "Verify the integrity of the ratchet tree") -----------------


def test_tree_missing() -> None:
    _, out, d = add_d(ratchet_tree_in_welcome=False)
    assert out.welcome is not None
    assert join_check(out.welcome, d) == "WEL-TREE-MISSING"


def test_tree_given_out_of_band_with_a_trailing_blank() -> None:
    members, out, d = add_d(ratchet_tree_in_welcome=False)
    members[0].merge_pending_commit()
    nodes = (*members[0].tree.to_nodes(), None, None)
    assert out.welcome is not None
    assert join_check(out.welcome, d, ratchet_tree=nodes) == "TREE-SHAPE"


def test_tree_given_out_of_band_is_accepted() -> None:
    members, out, d = add_d(ratchet_tree_in_welcome=False)
    members[0].merge_pending_commit()
    assert out.welcome is not None
    joined = Group.join(out.welcome, d, config("d"), ratchet_tree=members[0].tree.to_nodes())
    assert joined.epoch_authenticator == members[0].epoch_authenticator


def test_tree_hash_mismatch() -> None:
    members, out, d = add_d()
    a = members[0]

    def bad_hash(gi: GroupInfo) -> GroupInfo:
        ctx = replace(gi.group_context, tree_hash=flip(gi.group_context.tree_hash))
        return resign_group_info(gi, a.state.identity, group_context=ctx)

    assert join_check(with_gi(out, d, bad_hash), d) == "WEL-TREE-HASH"


def test_tree_with_a_parent_node_that_is_not_parent_hash_valid() -> None:
    members, out, d = add_d(force_path=True)
    a = members[0]

    def bad_parent(gi: GroupInfo) -> GroupInfo:
        nodes = list(tree_nodes(gi))
        x = next(i for i, n in enumerate(nodes) if isinstance(n, ParentNode))
        parent = nodes[x]
        assert isinstance(parent, ParentNode)
        nodes[x] = replace(parent, encryption_key=CS.kem.derive_key_pair(b"other")[1])
        return resign_group_info(gi, a.state.identity, nodes=nodes)

    assert join_check(with_gi(out, d, bad_parent), d) == "TREE-PARENT-HASH"


def test_our_leaf_is_not_in_the_tree() -> None:
    # d is added without a path, so its leaf is only in unmerged_leaves and swapping
    # it keeps every parent hash valid
    members, out, d = add_d(force_path=False)
    a = members[0]
    other = key_package("d2").key_package.leaf_node

    def swap_leaf(gi: GroupInfo) -> GroupInfo:
        nodes = list(tree_nodes(gi))
        x = next(i for i, n in enumerate(nodes) if n == d.key_package.leaf_node)
        nodes[x] = other
        return resign_group_info(gi, a.state.identity, nodes=nodes)

    assert join_check(with_gi(out, d, swap_leaf), d) == "WEL-OWN-LEAF"


def tree_leaf_check(change: Callable[[list[Group]], LeafNode], **join_config: Any) -> str:
    """Replace m2's leaf in the tree of a Welcome for d (the group has no parent
    nodes, so only the tree hash depends on the leaf; it is recomputed and the
    GroupInfo re-signed), and join."""
    members, out, d = add_d(force_path=False, group_path=False)
    a = members[0]
    new_leaf = change(members)

    def swap(gi: GroupInfo) -> GroupInfo:
        nodes = list(tree_nodes(gi))
        nodes[4] = new_leaf
        return resign_group_info(gi, a.state.identity, nodes=nodes)

    assert out.welcome is not None
    welcome = rewrap_welcome(out.welcome, d, group_info=swap)
    return check_of(lambda: Group.join(welcome, d, config("d", **join_config)))


def test_tree_leaf_with_a_bad_signature() -> None:
    def bad(members: list[Group]) -> LeafNode:
        leaf = member_leaf(members[2])
        return replace(leaf, signature=flip(leaf.signature))

    assert tree_leaf_check(bad) == "LN-SIGNATURE"


def test_tree_leaf_with_another_members_encryption_key() -> None:
    def dup(members: list[Group]) -> LeafNode:
        return leaf_for(members[2], LeafNodeSource.KEY_PACKAGE,
                        encryption_key=member_leaf(members[1]).encryption_key)

    assert tree_leaf_check(dup) == "LN-UNIQUE-ENCRYPTION-KEY"


def test_tree_leaf_with_another_members_signature_key() -> None:
    def dup(members: list[Group]) -> LeafNode:
        return leaf_for(members[2], LeafNodeSource.KEY_PACKAGE, signer=identity("m1"))

    assert tree_leaf_check(dup) == "LN-UNIQUE-SIGNATURE-KEY"


def test_tree_leaf_credential_rejected_by_the_joiner() -> None:
    def mallory(members: list[Group]) -> LeafNode:
        return leaf_for(members[2], LeafNodeSource.KEY_PACKAGE, signer=identity("mallory"))

    def no_mallory(credential: object, signature_key: bytes) -> bool:
        return getattr(credential, "identity", None) != b"mallory"

    assert tree_leaf_check(mallory, credential_validator=no_mallory) == "LN-CREDENTIAL"


def test_tree_leaf_with_a_commit_source_signed_for_another_index() -> None:
    def wrong_index(members: list[Group]) -> LeafNode:
        return leaf_for(members[2], LeafNodeSource.COMMIT, leaf_index=LeafIndex(1))

    assert tree_leaf_check(wrong_index) == "LN-SIGNATURE"


# --- unmerged leaves and parent keys (§7.1, §12.4.3.1), through an external join ----------


def unmerged_group() -> tuple[Group, tuple[Node | None, ...]]:
    """m0 with a root whose unmerged_leaves are (1, 2): four members, m1 and m2
    removed with a path (the root gets a fresh key), then e and f added without one."""
    a, _, _, _ = make_group(4, force_path=False)
    a.commit([Remove(LeafIndex(1)), Remove(LeafIndex(2))])
    a.merge_pending_commit()
    a.commit([Add(key_package("e").key_package), Add(key_package("f").key_package)])
    a.merge_pending_commit()
    nodes = a.tree.to_nodes()
    root = nodes[3]
    assert isinstance(root, ParentNode) and root.unmerged_leaves == (1, 2)
    return a, nodes


def external_join_check(a: Group, nodes: list[Node | None]) -> str:
    gi = resign_group_info(group_info_of(a.group_info()), a.state.identity, nodes=nodes)
    data = MLSMessage(gi).encode()
    return check_of(lambda: Group.external_join(data, identity("x"), config("x")), a)


def with_unmerged(nodes: tuple[Node | None, ...], unmerged: tuple[int, ...]
                  ) -> list[Node | None]:
    changed = list(nodes)
    root = changed[3]
    assert isinstance(root, ParentNode)
    changed[3] = replace(root, unmerged_leaves=tuple(LeafIndex(i) for i in unmerged))
    return changed


@pytest.mark.parametrize("unmerged", [(2, 1), (1, 1, 2)], ids=["swapped", "repeated"])
def test_unmerged_leaves_not_increasing(unmerged: tuple[int, ...]) -> None:
    a, nodes = unmerged_group()
    assert external_join_check(a, with_unmerged(nodes, unmerged)) == "TREE-UNMERGED-ORDER"


def test_unmerged_leaf_outside_the_parents_subtree() -> None:
    a, nodes = unmerged_group()
    assert external_join_check(a, with_unmerged(nodes, (1, 2, 5))) == "TREE-UNMERGED-LEAF"


def test_unmerged_leaf_that_is_blank() -> None:
    a, _, _, _ = make_group(4, force_path=False)
    a.commit([Remove(LeafIndex(1)), Remove(LeafIndex(2))])
    a.merge_pending_commit()
    a.commit([Add(key_package("e").key_package)])  # leaf 1; leaf 2 stays blank
    a.merge_pending_commit()
    nodes = list(a.tree.to_nodes())
    root = nodes[3]
    assert isinstance(root, ParentNode) and root.unmerged_leaves == (1,)
    nodes[3] = replace(root, unmerged_leaves=(LeafIndex(1), LeafIndex(2)))
    assert external_join_check(a, nodes) == "TREE-UNMERGED-LEAF"


def test_parent_key_that_a_leaf_reuses() -> None:
    a, nodes = unmerged_group()
    root = nodes[3]
    assert isinstance(root, ParentNode)
    changed = list(nodes)
    # e's leaf (unmerged, so in no parent hash) replaced by one with the root's key
    e_leaf = changed[2]
    assert isinstance(e_leaf, LeafNode)
    changed[2] = replace(e_leaf, encryption_key=root.encryption_key).signed(
        CS, identity("e").signature_private_key)
    assert external_join_check(a, changed) == "TREE-PARENT-KEY-DUP"


def test_unmerged_leaf_skipped_by_an_intermediate_node() -> None:
    # §12.4.3.1: every non-blank node between an unmerged leaf and its parent lists it.
    # Through a join, parent-hash validity fails first for such a tree, so this runs
    # the tree validation on its own (the step Group.join calls).
    _, nodes = unmerged_group()
    changed = list(nodes)
    changed[1] = ParentNode(CS.kem.derive_key_pair(b"node 1")[1], b"", ())
    with pytest.raises(ValidationError) as err:
        RatchetTree.from_nodes(CS, changed).validate()
    assert err.value.check_id == "TREE-UNMERGED-PATH"


def test_untampered_unmerged_tree_external_join() -> None:
    a, nodes = unmerged_group()
    gi = resign_group_info(group_info_of(a.group_info()), a.state.identity, nodes=list(nodes))
    joiner, commit = Group.external_join(MLSMessage(gi).encode(), identity("x"), config("x"))
    a.process(commit)
    assert a.epoch_authenticator == joiner.epoch_authenticator


# --- GroupInfo for an external join (§12.4.3.2) ------------------------------------------------


def gi_check(a: Group, gi: GroupInfo | bytes) -> str:
    data = gi if isinstance(gi, bytes) else MLSMessage(gi).encode()
    return check_of(lambda: Group.external_join(data, identity("x"), config("x")), a)


def test_external_join_without_external_pub() -> None:
    a, _, _ = make_group()
    assert gi_check(a, a.group_info(external_pub=False)) == "GI-EXTERNAL-PUB"


def test_external_join_without_tree() -> None:
    a, _, _ = make_group()
    assert gi_check(a, a.group_info(ratchet_tree=False)) == "WEL-TREE-MISSING"


def test_external_join_group_info_signature_invalid() -> None:
    a, _, _ = make_group()
    gi = group_info_of(a.group_info())
    assert gi_check(a, replace(gi, signature=flip(gi.signature))) == (
        "WEL-GROUPINFO-SIGNATURE")


def test_external_join_group_info_signer_outside_the_tree() -> None:
    a, _, _ = make_group()
    gi = resign_group_info(group_info_of(a.group_info()), a.state.identity,
                           signer=LeafIndex(99))
    assert gi_check(a, gi) in {"WEL-SIGNER-LEAF", "WEL-GROUPINFO-SIGNATURE"}


def test_external_join_tree_hash_mismatch() -> None:
    a, _, _ = make_group()
    gi = group_info_of(a.group_info())
    ctx = replace(gi.group_context, tree_hash=flip(gi.group_context.tree_hash))
    assert gi_check(a, resign_group_info(gi, a.state.identity, group_context=ctx)) == (
        "WEL-TREE-HASH")


def test_external_join_tree_with_a_bad_parent() -> None:
    a, _, _ = make_group()
    gi = group_info_of(a.group_info())
    nodes = list(tree_nodes(gi))
    parent = nodes[1]
    assert isinstance(parent, ParentNode)
    nodes[1] = replace(parent, parent_hash=flip(parent.parent_hash or b"\x00"))
    assert gi_check(a, resign_group_info(gi, a.state.identity, nodes=nodes)) == (
        "TREE-PARENT-HASH")
