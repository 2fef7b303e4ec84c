"""Properties of the ratchet tree and TreeKEM over random histories.

1. Structure (no crypto): random Add/Update/Remove and path-like merges; after each
   step the incremental tree agrees with reference definitions written from the
   RFC text (resolution §4.1.1, filtered direct path §4.1.2, leftmost blank leaf
   §12.1.1, truncation §7.7), its cached tree hashes agree with a cold
   recomputation, its key indexes with a scan, and a copy taken before the step is
   unaffected.
2. TreeKEM (suite 1): random commits with Add/Update/Remove proposals and an
   UpdatePath; every member processes the path on its own copy and must reach the
   committer's commit secret and tree hash; joiners use the Welcome path secret;
   then the tree validates (§12.4.3.1) and every member's keys satisfy the tree
   invariant (see `SimGroup.check_invariants`).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlsvc.crypto.suites import get_suite
from mlsvc.messages.leaf_node import LeafNode, Node, ParentNode
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.treekem import derive_node_key_pair
from mlsvc.types import LeafIndex, NodeIndex
from tests.unit.test_ratchet_tree import leaf
from tests.unit.test_treekem import SimGroup

CS = get_suite(1)

# ---------------------------------------------------------------------- references


def _level(x: int) -> int:
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def ref_resolution(nodes: list[Node | None], x: int) -> list[int]:
    """§4.1.1, literally."""
    node = nodes[x]
    if node is not None:
        extra = [2 * i for i in node.unmerged_leaves] if isinstance(node, ParentNode) else []
        return [x, *extra]
    if x % 2 == 0:
        return []
    k = _level(x)
    return ref_resolution(nodes, x ^ (1 << (k - 1))) + ref_resolution(nodes, x ^ (3 << (k - 1)))


def ref_direct_path_and_copath(width: int, x: int) -> list[tuple[int, int]]:
    """(parent, copath child) pairs from x up to the root of a full tree."""
    root = (1 << (width.bit_length() - 1)) - 1
    out = []
    while x != root:
        k = _level(x)
        p = x | (1 << k) if (x >> (k + 1)) & 1 == 0 else (x & ~(1 << (k + 1))) | (1 << k)
        sibling = p + (p - x)
        out.append((p, sibling))
        x = p
    return out


def padded(tree: RatchetTree) -> list[Node | None]:
    nodes = list(tree.to_nodes())
    return nodes + [None] * (tree.node_width - len(nodes))


def check_against_references(tree: RatchetTree) -> None:
    nodes = padded(tree)
    width = len(nodes)
    n = (width + 1) // 2
    assert n & (n - 1) == 0
    # §7.7: no all-blank right half unless the tree is a single leaf
    if n > 1:
        assert any(node is not None for node in nodes[n:])
    for x in range(width):
        assert tree.resolution(NodeIndex(x)) == ref_resolution(nodes, x)
    for i in range(n):
        want = [p for p, s in ref_direct_path_and_copath(width, 2 * i) if ref_resolution(nodes, s)]
        assert tree.filtered_direct_path(LeafIndex(i)) == want
    blanks = [i for i in range(n) if nodes[2 * i] is None]
    assert tree.leftmost_blank_leaf() == (blanks[0] if blanks else None)
    assert tree.member_count() == n - len(blanks)
    # key indexes
    for node in nodes:
        if node is not None:
            holders = [y for y, o in enumerate(nodes) if o is not None
                       and o.encryption_key == node.encryption_key]
            assert list(tree.nodes_with_encryption_key(node.encryption_key)) == holders
    # cached hashes against a cold tree
    cold = RatchetTree.from_nodes(CS, tree.to_nodes()) if tree.to_nodes() else None
    if cold is not None:
        for x in range(width):
            assert cold.node_tree_hash(NodeIndex(x)) == tree.node_tree_hash(NodeIndex(x))


# ---------------------------------------------------------------------- 1. structure

_op = st.tuples(st.sampled_from(["add", "add", "remove", "update", "path"]), st.integers(0, 99))


def _members(tree: RatchetTree) -> list[LeafIndex]:
    return [i for i, _ in tree.leaves()]


def _fake_path(tree: RatchetTree, i: LeafIndex, tag: int) -> None:
    """What merging an UpdatePath does to the public tree (§7.5), with made-up keys."""
    fdp = tree.filtered_direct_path(i)
    tree.blank_direct_path(i)
    for p in fdp:
        tree.set_parent(p, ParentNode(b"path-%d-%d" % (tag, p), b"", ()))
    old = tree.leaf(i)
    assert isinstance(old, LeafNode)
    tree.set_leaf(i, leaf(10_000 + tag))


@given(st.lists(_op, min_size=1, max_size=25))
def test_incremental_tree_matches_the_references(ops: list[tuple[str, int]]) -> None:
    tree = RatchetTree.single(CS, leaf(0))
    tree.tree_hash()
    for step, (kind, arg) in enumerate(ops, start=1):
        before = tree.copy()
        before_nodes = before.to_nodes()
        before_hash = before.tree_hash()
        members = _members(tree)
        tag = 1000 * step + arg
        if kind == "add":
            tree.add_leaf(leaf(tag))
        elif kind == "remove" and len(members) > 1:
            tree.remove_leaf(members[arg % len(members)])
        elif kind == "update" and members:
            tree.update_leaf(members[arg % len(members)], leaf(tag))
        elif kind == "path" and members:
            _fake_path(tree, members[arg % len(members)], tag)
        check_against_references(tree)
        assert before.to_nodes() == before_nodes and before.tree_hash() == before_hash


# ---------------------------------------------------------------------- 2. TreeKEM

_commit = st.tuples(
    st.integers(0, 99),  # committer (k-th member)
    st.integers(0, 2),  # adds
    st.lists(st.integers(0, 99), max_size=2),  # removes (k-th members)
    st.lists(st.integers(0, 99), max_size=2),  # updates (k-th members)
)


@given(st.binary(min_size=4, max_size=4), st.lists(_commit, min_size=1, max_size=6))
def test_random_commits_keep_every_member_in_sync(
    seed: bytes, commits: list[tuple[int, int, list[int], list[int]]]
) -> None:
    g = SimGroup(CS, seed)
    for committer_k, adds, removes_k, updates_k in commits:
        members = sorted(g.keys)
        committer = members[committer_k % len(members)]
        others = [m for m in members if m != committer]
        removes = sorted({others[k % len(others)] for k in removes_k}) if others else []
        rest = [m for m in others if m not in removes]
        updates = sorted({rest[k % len(rest)] for k in updates_k}) if rest else []
        g.commit(committer, adds, tuple(removes), tuple(updates))


@given(st.binary(min_size=32, max_size=32))
def test_node_key_pair_is_a_function_of_the_path_secret(secret: bytes) -> None:
    priv, pub = derive_node_key_pair(CS, secret)
    assert derive_node_key_pair(CS, secret) == (priv, pub)
    assert CS.kem.public_key(priv) == pub
