"""Unit tests of the ratchet tree (RFC 9420 §4.1, §7.7-§7.9, §12.1.1-3, §12.4.3).

Expected shapes come from the RFC's figures and rules, written out by hand here.
Leaves carry dummy keys (no signatures needed for tree shapes and hashes).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from mlsvc.conformance.registry import default_dir
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError, ValidationError
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.leaf_node import (
    Capabilities,
    LeafNode,
    Lifetime,
    Node,
    ParentNode,
    RatchetTreeExtension,
)
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex, NodeIndex

CS = get_suite(1)
L = LeafIndex
N = NodeIndex


def leaf(tag: int) -> LeafNode:
    """A LeafNode with encryption key and signature key derived from `tag`."""
    return LeafNode(
        encryption_key=b"enc" + tag.to_bytes(4, "big"),
        signature_key=b"sig" + tag.to_bytes(4, "big"),
        credential=BasicCredential(b"member-%d" % tag),
        capabilities=Capabilities((1,), (1,), (), (), (1,)),
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=Lifetime(0, 2**64 - 1),
        parent_hash=None,
        extensions=(),
    )


def parent(tag: int, unmerged: tuple[int, ...] = ()) -> ParentNode:
    return ParentNode(b"penc" + tag.to_bytes(4, "big"), b"", tuple(L(i) for i in unmerged))


def tree_of(nodes: list[Node | None]) -> RatchetTree:
    return RatchetTree.from_nodes(CS, nodes)


# ---------------------------------------------------------------------- building


def test_from_nodes_pads_to_a_full_tree_and_to_nodes_truncates() -> None:
    # 3 leaves sent as 5 nodes (§12.4.3.3): padded to 4 leaves / 7 nodes.
    nodes: list[Node | None] = [leaf(0), None, leaf(1), None, leaf(2)]
    tree = tree_of(nodes)
    assert tree.leaf_count == 4 and tree.node_width == 7
    assert tree.leaf(L(3)) is None and tree.node(N(6)) is None
    assert tree.to_nodes() == tuple(nodes)
    assert tree.member_count() == 3


@pytest.mark.parametrize(
    "nodes",
    [
        [],
        [leaf(0), None],
        [leaf(0), None, None],
        [parent(0)],
        [leaf(0), leaf(1), leaf(2)],
    ],
)
def test_from_nodes_rejects_bad_shapes(nodes: list[Node | None]) -> None:
    with pytest.raises(ValidationError) as err:
        tree_of(nodes)
    assert err.value.check_id == "TREE-SHAPE"


def test_single_member_tree() -> None:
    tree = RatchetTree.single(CS, leaf(7))
    assert tree.leaf_count == 1 and tree.root == 0
    assert tree.filtered_direct_path(L(0)) == []
    assert list(tree.leaves()) == [(L(0), leaf(7))]


def test_copy_is_independent() -> None:
    tree = tree_of([leaf(0), None, leaf(1)])
    before = tree.tree_hash()
    other = tree.copy()
    other.add_leaf(leaf(2))
    other.update_leaf(L(0), leaf(9))
    assert tree.to_nodes() == (leaf(0), None, leaf(1))
    assert tree.tree_hash() == before
    assert other.tree_hash() != before
    assert tree.nodes_with_encryption_key(leaf(9).encryption_key) == ()


# ---------------------------------------------------------------------- add (§12.1.1)


def test_add_extends_when_full() -> None:
    # §7.7 figure "Extending the Tree to Make Room for a Third Member".
    tree = tree_of([leaf(0), parent(10), leaf(1)])
    i = tree.add_leaf(leaf(2))
    assert i == 2 and tree.leaf_count == 4
    # X (node 1) keeps its place; new blank root 3; the new leaf 2 has only blank
    # ancestors on its direct path (5 and the new root 3), so no unmerged entry.
    assert tree.to_nodes() == (leaf(0), parent(10), leaf(1), None, leaf(2))


def test_add_uses_the_leftmost_blank_leaf() -> None:
    tree = tree_of([leaf(0), None, None, None, leaf(2), None, leaf(3)])
    assert tree.leftmost_blank_leaf() == 1
    assert tree.add_leaf(leaf(9)) == 1
    assert tree.leftmost_blank_leaf() is None
    assert tree.add_leaf(leaf(10)) == 4 and tree.leaf_count == 8


def test_add_records_unmerged_leaves_in_sorted_order() -> None:
    # Leaves 0, 2 blank... node 3 (root) lists [3]; adding at leaf 1 must give [1, 3]
    # at the root and [1] at node 1 (§12.1.1, §7.1 sorted).
    nodes: list[Node | None] = [leaf(0), parent(1), None, parent(3, (3,)), leaf(2), None, leaf(3)]
    tree = tree_of(nodes)
    assert tree.add_leaf(leaf(9)) == 1
    root = tree.parent_node(N(3))
    node1 = tree.parent_node(N(1))
    assert root is not None and root.unmerged_leaves == (1, 3)
    assert node1 is not None and node1.unmerged_leaves == (1,)
    assert tree.parent_node(N(5)) is None  # blank stays blank


# ---------------------------------------------------------------------- update / remove


def test_update_replaces_the_leaf_and_blanks_its_direct_path() -> None:
    nodes: list[Node | None] = [leaf(0), parent(1), leaf(1), parent(3), leaf(2), parent(5), leaf(3)]
    tree = tree_of(nodes)
    tree.update_leaf(L(2), leaf(20))
    assert tree.to_nodes() == (leaf(0), parent(1), leaf(1), None, leaf(20), None, leaf(3))


def test_remove_truncates_the_right_half() -> None:
    # §7.7 figure "Cleaning Up after Removing Member C": 4 leaves A B C _ -> 2 leaves.
    nodes: list[Node | None] = [leaf(0), parent(1), leaf(1), parent(3), leaf(2)]
    tree = tree_of(nodes)
    tree.remove_leaf(L(2))
    assert tree.leaf_count == 2
    assert tree.to_nodes() == (leaf(0), parent(1), leaf(1))


def test_remove_in_the_middle_does_not_truncate() -> None:
    nodes: list[Node | None] = [leaf(0), parent(1), leaf(1), parent(3), leaf(2)]
    tree = tree_of(nodes)
    tree.remove_leaf(L(1))
    assert tree.leaf_count == 4
    assert tree.to_nodes() == (leaf(0), None, None, None, leaf(2))


def test_remove_truncates_repeatedly() -> None:
    # §12.1.3: rightmost non-blank leaf 1 -> 2^d > 1 -> 2 leaves, from 8.
    tree = tree_of([leaf(0), None, leaf(1), None, None, None, None, None, leaf(4)])
    assert tree.leaf_count == 8
    tree.remove_leaf(L(4))
    assert tree.leaf_count == 2
    tree.remove_leaf(L(1))
    assert tree.leaf_count == 1
    tree.remove_leaf(L(0))
    assert tree.leaf_count == 1 and tree.member_count() == 0


def test_remove_blank_or_outside_leaf_is_refused() -> None:
    tree = tree_of([leaf(0), None, None, None, leaf(2)])
    with pytest.raises(ParameterError):
        tree.remove_leaf(L(1))
    with pytest.raises(ParameterError):
        tree.remove_leaf(L(4))


# ---------------------------------------------------------------------- §4.1


def _figure_resolution_tree() -> RatchetTree:
    """RFC 9420 §4.1.1 figure "A Tree with Blanks and Unmerged Leaves": leaves
    A B _ D E F _ H; X = node 3 with unmerged [B]; Y = node 9; the rest blank."""
    nodes: list[Node | None] = [None] * 15
    for i in (0, 1, 3, 4, 5, 7):
        nodes[2 * i] = leaf(i)
    nodes[3] = parent(100, (1,))
    nodes[9] = parent(101)
    return tree_of(nodes)


def test_resolution_examples_of_section_4_1_1() -> None:
    tree = _figure_resolution_tree()
    assert tree.resolution(N(3)) == [3, 2]  # X -> [X, B]
    assert tree.resolution(N(4)) == []  # leaf 2
    assert tree.resolution(N(12)) == []  # leaf 6
    assert tree.resolution(N(7)) == [3, 2, 9, 14]  # top -> [X, B, Y, H]
    # and by the rules: a blank parent concatenates its children's resolutions
    assert tree.resolution(N(1)) == [0, 2]
    assert tree.resolution(N(5)) == [6]
    assert tree.resolution(N(13)) == [14]
    assert tree.resolution(N(11)) == [9, 14]


def test_filtered_direct_paths_of_section_4_1_2() -> None:
    # Figure "A Complete Tree with Five Members": A B _ _ E F G _, T=1, W=7, X=9, Y=11.
    nodes: list[Node | None] = [None] * 15
    for i in (0, 1, 4, 5, 6):
        nodes[2 * i] = leaf(i)
    for x in (1, 7, 9, 11):
        nodes[x] = parent(x)
    tree = tree_of(nodes[:13])  # trailing blanks are not sent (§12.4.3.3)
    assert tree.direct_path(L(0)) == [1, 3, 7]
    assert tree.filtered_direct_path(L(0)) == [1, 7]  # A: T, W
    assert tree.filtered_direct_path(L(1)) == [1, 7]  # B: T, W
    assert tree.filtered_direct_path(L(4)) == [9, 11, 7]  # E: X, Y, W
    assert tree.filtered_direct_path(L(5)) == [9, 11, 7]  # F: X, Y, W
    assert tree.filtered_direct_path(L(6)) == [11, 7]  # G: Y, W


def test_filtered_direct_path_skips_blank_copath_subtrees() -> None:
    # Leaves A B C _, X = node 1, root node 3 with C unmerged: A's copath child 5 holds
    # only C, so the root stays on A's filtered path, and A encrypts to [C] under 5;
    # C's copath child 6 is an empty leaf, so node 5 leaves C's filtered path.
    tree = tree_of([leaf(0), parent(1), leaf(1), parent(3, (2,)), leaf(2)])
    assert tree.filtered_direct_path(L(0)) == [1, 3]
    assert tree.filtered_direct_path(L(2)) == [3]
    assert tree.resolution(N(5)) == [4]
    assert tree.resolution(N(3)) == [3, 4]
    assert tree.resolution_is_empty(N(6))


def test_key_indexes_follow_changes() -> None:
    tree = tree_of([leaf(0), parent(5), leaf(1)])
    assert tree.nodes_with_encryption_key(parent(5).encryption_key) == (1,)
    assert tree.leaves_with_signature_key(leaf(1).signature_key) == (1,)
    tree.update_leaf(L(1), leaf(2))
    assert tree.nodes_with_encryption_key(parent(5).encryption_key) == ()
    assert tree.leaves_with_signature_key(leaf(1).signature_key) == ()
    assert tree.leaves_with_signature_key(leaf(2).signature_key) == (1,)
    assert tree.find_leaf(lambda n: n.signature_key == leaf(2).signature_key) == 1
    assert tree.find_leaf(lambda n: False) is None


# ---------------------------------------------------------------------- §7.8 caching


def _big_tree(n: int) -> RatchetTree:
    nodes: list[Node | None] = [None] * (2 * n - 1)
    for i in range(n):
        nodes[2 * i] = leaf(i)
    for x in range(1, 2 * n - 1, 2):
        nodes[x] = parent(10_000 + x)
    return tree_of(nodes)


def test_tree_hash_of_one_leaf_change_is_logarithmic() -> None:
    n = 2048
    tree = _big_tree(n)
    tree.tree_hash()
    assert tree.hash_computations == 2 * n - 1  # every node once, cold
    tree.tree_hash()
    assert tree.hash_computations == 2 * n - 1  # all cached
    before = tree.hash_computations
    tree.update_leaf(L(1234), leaf(99_999))
    tree.tree_hash()
    assert tree.hash_computations - before == 1 + 11  # the leaf and its 11 ancestors
    before = tree.hash_computations
    tree.copy().add_leaf(leaf(5))  # the copy's work is not counted here
    assert tree.hash_computations == before


def test_cached_hash_matches_a_cold_recomputation() -> None:
    tree = _big_tree(64)
    tree.tree_hash()
    tree.update_leaf(L(5), leaf(500))
    tree.remove_leaf(L(63))
    tree.add_leaf(leaf(600))
    cold = tree_of(list(tree.to_nodes()))
    assert cold.tree_hash() == tree.tree_hash()
    for x in range(tree.node_width):
        assert cold.node_tree_hash(N(x)) == tree.node_tree_hash(N(x))


def test_extension_keeps_old_hashes_and_truncation_restores_them() -> None:
    tree = _big_tree(8)
    old_root = tree.tree_hash()
    left_hashes = [tree.node_tree_hash(N(x)) for x in range(15)]
    before = tree.hash_computations
    i = tree.add_leaf(leaf(77))
    assert i == 8
    assert tree.node_tree_hash(N(7)) == old_root  # the old tree is the new left subtree
    tree.tree_hash()
    # new root + right subtree of 16 nodes... only the 15 new-half nodes and the root
    assert tree.hash_computations - before == 16
    tree.remove_leaf(i)
    assert tree.leaf_count == 8
    assert [tree.node_tree_hash(N(x)) for x in range(15)] == left_hashes


# ---------------------------------------------------------------------- §7.9.2, §12.4.3.1


def _vector_tree_with_unmerged_leaves() -> RatchetTree:
    with (default_dir() / "tree-validation.json").open() as f:
        cases = json.load(f)
    for case in cases:
        if case["cipher_suite"] != 1:
            continue
        tree = RatchetTree.from_nodes(
            CS, RatchetTreeExtension.decode(bytes.fromhex(case["tree"])).nodes
        )
        for x in range(1, tree.node_width, 2):
            node = tree.parent_node(N(x))
            if node is not None and len(node.unmerged_leaves) >= 1:
                return tree
    raise AssertionError("no vector tree with unmerged leaves")


def _first_with_unmerged(tree: RatchetTree) -> tuple[NodeIndex, ParentNode]:
    for x in range(1, tree.node_width, 2):
        node = tree.parent_node(N(x))
        if node is not None and node.unmerged_leaves:
            return N(x), node
    raise AssertionError("no parent with unmerged leaves")


def test_valid_vector_tree_validates() -> None:
    tree = _vector_tree_with_unmerged_leaves()
    assert tree.verify_parent_hashes()
    tree.validate()


def test_tampered_parent_hash_is_detected() -> None:
    tree = _vector_tree_with_unmerged_leaves()
    x, node = _first_with_unmerged(tree)
    tree.set_parent(x, dataclasses.replace(node, parent_hash=b"\x00" * 32))
    assert not tree.verify_parent_hashes()
    with pytest.raises(ValidationError) as err:
        tree.validate()
    assert err.value.check_id == "TREE-PARENT-HASH"


def test_unmerged_leaf_out_of_order_is_detected() -> None:
    tree = _vector_tree_with_unmerged_leaves()
    x, node = _first_with_unmerged(tree)
    bad = (*node.unmerged_leaves, node.unmerged_leaves[0])
    tree.set_parent(x, dataclasses.replace(node, unmerged_leaves=bad))
    with pytest.raises(ValidationError) as err:
        tree.validate()
    assert err.value.check_id == "TREE-UNMERGED-ORDER"


def test_unmerged_leaf_outside_the_subtree_is_detected() -> None:
    tree = _vector_tree_with_unmerged_leaves()
    x, node = _first_with_unmerged(tree)
    tree.set_parent(x, dataclasses.replace(node, unmerged_leaves=(L(tree.leaf_count),)))
    with pytest.raises(ValidationError) as err:
        tree.validate()
    assert err.value.check_id == "TREE-UNMERGED-LEAF"


def test_unmerged_leaf_missing_on_the_way_up_is_detected() -> None:
    # Node 3 lists leaf 0 but the non-blank node 1 between them does not.
    tree = tree_of([leaf(0), parent(1), leaf(1), parent(3, (0,)), leaf(2)])
    with pytest.raises(ValidationError) as err:
        tree.validate()
    assert err.value.check_id == "TREE-UNMERGED-PATH"


def test_duplicate_parent_key_is_detected() -> None:
    tree = tree_of([leaf(0), parent(1), leaf(1), parent(1), leaf(2)])
    with pytest.raises(ValidationError) as err:
        tree.validate()
    assert err.value.check_id == "TREE-PARENT-KEY-DUP"
