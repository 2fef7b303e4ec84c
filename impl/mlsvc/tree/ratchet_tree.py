"""The ratchet tree: public state of an MLS group (RFC 9420 §4, §7).

Theory of operation
-------------------
The tree is the array representation of Appendix C with a power-of-two number of
leaves (§7.7: "the tree is always full"); leaf i sits at node 2i, and a tree of n
leaves has 2n-1 node slots, each a `LeafNode`, a `ParentNode` or None (blank).
Nodes are immutable values: every change replaces a slot through `_set`, which keeps
four pieces of derived data up to date in O(log n):

* `_hashes`: the tree hash of each node (§7.8), or None when not computed yet. A
  change to node x forgets the hashes of x and its ancestors only, so after a commit
  the root hash costs O(log n) hash computations. Invariant: a node whose hash is
  cached has both children's hashes cached.
* `_occ` / `_leaf_occ`: the number of non-blank nodes / leaves in each subtree. A
  subtree with no non-blank node has an empty resolution (§4.1.1), so resolutions
  and filtered direct paths (§4.1.2) never walk blank regions, and the leftmost
  blank leaf (§12.1.1) is found by one descent.
* `_enc_keys` / `_sig_keys`: where each encryption key (any node) and signature key
  (leaves) occurs, for the uniqueness checks of §7.3 and §12.4.2 without a scan.

`copy()` copies these lists and dicts (shallow; the nodes are shared, being
immutable): about 0.05 ms at 2048 leaves (measured), cheap enough per commit.

Parent-hash verification and the join-time structural checks are in
`mlsvc.tree.validation`; the hash input encodings in `mlsvc.tree.hashes`.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TypeVar

from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError, ValidationError
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.leaf_node import LeafNode, Node, ParentNode
from mlsvc.tree.hashes import leaf_tree_hash_input, parent_tree_hash_input
from mlsvc.tree.math import is_in_subtree, left, level, parent_step, right
from mlsvc.tree.validation import parent_hash_problem, validate_tree
from mlsvc.types import LeafCount, LeafIndex, NodeIndex

_I = TypeVar("_I", bound=int)


class RatchetTree:
    """A ratchet tree of a power-of-two leaf count; nodes are Node | None (blank)."""

    __slots__ = (
        "_enc_keys",
        "_hashes",
        "_leaf_occ",
        "_nodes",
        "_occ",
        "_sig_keys",
        "cs",
        "hash_computations",
    )

    def __init__(self, cs: CipherSuite) -> None:
        """An empty one-leaf tree (a blank leaf); use `from_nodes` or `single`."""
        self.cs = cs
        self._nodes: list[Node | None] = [None]
        self._hashes: list[bytes | None] = [None]
        self._occ: list[int] = [0]
        self._leaf_occ: list[int] = [0]
        self._enc_keys: dict[bytes, tuple[NodeIndex, ...]] = {}
        self._sig_keys: dict[bytes, tuple[LeafIndex, ...]] = {}
        self.hash_computations = 0
        """Number of node tree hashes computed so far (a cache-efficiency probe)."""

    # ------------------------------------------------------------------ building

    @classmethod
    def from_nodes(cls, cs: CipherSuite, nodes: Sequence[Node | None]) -> RatchetTree:
        """The tree of a `ratchet_tree` extension (§12.4.3.3): the receiver checks
        that the last node is non-blank and pads with blanks to 2^(d+1)-1 nodes.
        ValidationError("TREE-SHAPE") for an empty list, a trailing blank, or a node
        of the wrong type for its position (leaves at even, parents at odd indices)."""
        if not nodes:
            raise ValidationError("TREE-SHAPE", "ratchet tree has no nodes")
        if nodes[-1] is None:
            raise ValidationError("TREE-SHAPE", "last node of the ratchet tree is blank")
        for x, node in enumerate(nodes):
            if node is not None and isinstance(node, LeafNode) != (x % 2 == 0):
                raise ValidationError("TREE-SHAPE", f"node {x} has the wrong type for its index")
        n = 1
        while 2 * n - 1 < len(nodes):
            n *= 2
        tree = cls(cs)
        width = 2 * n - 1
        tree._nodes = [None] * width
        tree._hashes = [None] * width
        tree._occ = [0] * width
        tree._leaf_occ = [0] * width
        for x, node in enumerate(nodes):
            if node is not None:
                tree._set(NodeIndex(x), node)
        return tree

    @classmethod
    def single(cls, cs: CipherSuite, leaf: LeafNode) -> RatchetTree:
        """The tree of a one-member group (§11: the creator at leaf 0)."""
        return cls.from_nodes(cs, [leaf])

    def to_nodes(self) -> tuple[Node | None, ...]:
        """The nodes in array order without trailing blanks (§12.4.3.3: the sender
        MUST NOT include blank nodes after the last non-blank node)."""
        end = len(self._nodes)
        while end and self._nodes[end - 1] is None:
            end -= 1
        return tuple(self._nodes[:end])

    def copy(self) -> RatchetTree:
        """An independent copy (nodes are immutable and shared; caches are copied)."""
        other = RatchetTree.__new__(RatchetTree)
        other.cs = self.cs
        other._nodes = list(self._nodes)
        other._hashes = list(self._hashes)
        other._occ = list(self._occ)
        other._leaf_occ = list(self._leaf_occ)
        other._enc_keys = dict(self._enc_keys)
        other._sig_keys = dict(self._sig_keys)
        other.hash_computations = self.hash_computations
        return other

    def __repr__(self) -> str:
        return f"RatchetTree(leaves={self.leaf_count}, members={self.member_count()})"

    # ------------------------------------------------------------------ reading

    @property
    def leaf_count(self) -> LeafCount:
        return LeafCount((len(self._nodes) + 1) // 2)

    @property
    def root(self) -> NodeIndex:
        """Root index: 2^d - 1 for 2^d leaves (§12.4.3.3)."""
        return NodeIndex(self.leaf_count - 1)

    @property
    def node_width(self) -> int:
        return len(self._nodes)

    def node(self, x: NodeIndex) -> Node | None:
        """The node at array index x; ParameterError outside the tree."""
        if not 0 <= x < len(self._nodes):
            raise ParameterError(f"node {x} outside a tree of {len(self._nodes)} nodes")
        return self._nodes[x]

    def leaf(self, i: LeafIndex) -> LeafNode | None:
        """The leaf at index i, None if blank or beyond the right edge of the tree."""
        if i < 0:
            raise ParameterError(f"negative leaf index {i}")
        if 2 * i >= len(self._nodes):
            return None
        node = self._nodes[2 * i]
        assert node is None or isinstance(node, LeafNode)
        return node

    def parent_node(self, x: NodeIndex) -> ParentNode | None:
        """The parent node at odd index x, None if blank."""
        if x % 2 != 1:
            raise ParameterError(f"node {x} is a leaf, not a parent")
        node = self.node(x)
        assert node is None or isinstance(node, ParentNode)
        return node

    def leaves(self) -> Iterator[tuple[LeafIndex, LeafNode]]:
        """The non-blank leaves in index order."""
        for x in range(0, len(self._nodes), 2):
            node = self._nodes[x]
            if node is not None:
                assert isinstance(node, LeafNode)
                yield LeafIndex(x // 2), node

    def member_count(self) -> int:
        """Number of non-blank leaves."""
        return self._leaf_occ[self.root]

    def find_leaf(self, predicate: Callable[[LeafNode], bool]) -> LeafIndex | None:
        """The lowest-indexed non-blank leaf satisfying `predicate`."""
        for i, leaf in self.leaves():
            if predicate(leaf):
                return i
        return None

    def leftmost_blank_leaf(self) -> LeafIndex | None:
        """The leftmost blank leaf (§12.1.1), None if every leaf is occupied. O(log n)."""
        x = self.root
        if self._leaf_occ[x] == self.leaf_count:
            return None
        while x % 2 == 1:
            lc = left(x)
            x = lc if self._leaf_occ[lc] < 1 << level(lc) else right(x)
        return LeafIndex(x // 2)

    def nodes_with_encryption_key(self, key: bytes) -> tuple[NodeIndex, ...]:
        """The nodes (leaves or parents) whose encryption_key is `key`. O(1)."""
        return self._enc_keys.get(key, ())

    def leaves_with_signature_key(self, key: bytes) -> tuple[LeafIndex, ...]:
        """The leaves whose signature_key is `key`. O(1)."""
        return self._sig_keys.get(key, ())

    def ancestors(self, x: NodeIndex) -> list[NodeIndex]:
        """The direct path of node x (§4.1.2): its parent up to the root."""
        self.node(x)
        out: list[NodeIndex] = []
        r = self.root
        while x != r:
            x = parent_step(x)
            out.append(x)
        return out

    def direct_path(self, i: LeafIndex) -> list[NodeIndex]:
        """The direct path of leaf i (§4.1.2)."""
        self._check_leaf_index(i)
        return self.ancestors(NodeIndex(2 * i))

    def copath_child(self, p: NodeIndex, i: LeafIndex) -> NodeIndex:
        """The child of p (an ancestor of leaf i) that is not on leaf i's direct path."""
        lc = left(p)
        return right(p) if is_in_subtree(lc, NodeIndex(2 * i)) else lc

    # ------------------------------------------------------------------ §4.1

    def resolution(self, x: NodeIndex) -> list[NodeIndex]:
        """The resolution of node x (§4.1.1): a non-blank node followed by its
        unmerged leaves; [] for a blank leaf; for a blank parent, the resolution of
        its left child then of its right child. Blank subtrees are skipped whole."""
        self.node(x)
        out: list[NodeIndex] = []
        self._resolve(x, out)
        return out

    def _resolve(self, x: NodeIndex, out: list[NodeIndex]) -> None:
        if self._occ[x] == 0:
            return
        node = self._nodes[x]
        if node is not None:
            out.append(x)
            if isinstance(node, ParentNode):
                out.extend(NodeIndex(2 * i) for i in node.unmerged_leaves)
            return
        self._resolve(left(x), out)
        self._resolve(right(x), out)

    def resolution_is_empty(self, x: NodeIndex) -> bool:
        """Whether resolution(x) is empty, i.e. the subtree of x is all blank. O(1)."""
        return self._occ[x] == 0

    def filtered_direct_path(self, i: LeafIndex) -> list[NodeIndex]:
        """The filtered direct path of leaf i (§4.1.2): its direct path without the
        nodes whose child on i's copath has an empty resolution. O(log n)."""
        self._check_leaf_index(i)
        out: list[NodeIndex] = []
        x = NodeIndex(2 * i)
        r = self.root
        while x != r:
            p = parent_step(x)
            sibling = right(p) if x < p else left(p)
            if self._occ[sibling]:
                out.append(p)
            x = p
        return out

    # ------------------------------------------------------------------ §12.1, §7.7

    def add_leaf(self, leaf: LeafNode) -> LeafIndex:
        """Apply an Add (§12.1.1): put `leaf` at the leftmost blank leaf, extending
        the tree to the right (§7.7: double the width) when there is none, and add
        its index to `unmerged_leaves` (kept sorted, §7.1) of every non-blank parent
        on its direct path. Returns the new leaf's index."""
        i = self.leftmost_blank_leaf()
        if i is None:
            i = LeafIndex(self.leaf_count)
            self._extend()
        for p in self.ancestors(NodeIndex(2 * i)):
            node = self._nodes[p]
            if node is not None:
                assert isinstance(node, ParentNode)
                unmerged = list(node.unmerged_leaves)
                if i not in unmerged:
                    bisect.insort(unmerged, i)
                self._set(p, dataclasses.replace(node, unmerged_leaves=tuple(unmerged)))
        self._set(NodeIndex(2 * i), leaf)
        return i

    def update_leaf(self, i: LeafIndex, leaf: LeafNode) -> None:
        """Apply an Update (§12.1.2): replace leaf i, blank the nodes of its direct path."""
        self._check_leaf_index(i)
        self.blank_direct_path(i)
        self._set(NodeIndex(2 * i), leaf)

    def remove_leaf(self, i: LeafIndex) -> None:
        """Apply a Remove (§12.1.3): blank leaf i and its direct path, then truncate
        (§7.7) while the right subtree of the root has no non-blank node.
        ParameterError if leaf i is blank (the proposal is invalid, §12.1.3; the
        group engine checks this first)."""
        self._check_leaf_index(i)
        if self._nodes[2 * i] is None:
            raise ParameterError(f"leaf {i} is blank: nothing to remove")
        self.blank_direct_path(i)
        self._set(NodeIndex(2 * i), None)
        self.truncate()

    def blank_direct_path(self, i: LeafIndex) -> None:
        """Blank every node on the direct path of leaf i (§7.4, §7.5, §12.1.2-3)."""
        for p in self.direct_path(i):
            if self._nodes[p] is not None:
                self._set(p, None)

    def set_leaf(self, i: LeafIndex, leaf: LeafNode | None) -> None:
        """Replace leaf i and nothing else (the path operations of treekem use it)."""
        self._check_leaf_index(i)
        self._set(NodeIndex(2 * i), leaf)

    def set_parent(self, x: NodeIndex, node: ParentNode | None) -> None:
        """Replace the parent node at odd index x and nothing else."""
        if x % 2 != 1 or not 0 < x < len(self._nodes):
            raise ParameterError(f"node {x} is not a parent of this tree")
        self._set(x, node)

    def truncate(self) -> None:
        """§7.7: while the right subtree of the root has no non-blank node, discard
        it and the root; the left subtree becomes the tree (at least one leaf stays)."""
        while len(self._nodes) > 1 and self._occ[right(self.root)] == 0:
            r = self.root
            if self._nodes[r] is not None:  # the root goes whether or not it is blank
                self._set(r, None)
            del self._nodes[r:]
            del self._hashes[r:]
            del self._occ[r:]
            del self._leaf_occ[r:]

    def _extend(self) -> None:
        """§7.7: a new blank root whose left subtree is the tree and right subtree an
        all-blank tree of the same size. Array indices of existing nodes do not
        change, so their cached hashes stay valid."""
        old_root = self.root
        width = len(self._nodes)
        self._nodes.extend([None] * (width + 1))
        self._hashes.extend([None] * (width + 1))
        self._occ.extend([0] * (width + 1))
        self._leaf_occ.extend([0] * (width + 1))
        new_root = self.root
        self._occ[new_root] = self._occ[old_root]
        self._leaf_occ[new_root] = self._leaf_occ[old_root]

    def _check_leaf_index(self, i: LeafIndex) -> None:
        if not 0 <= 2 * i < len(self._nodes):
            raise ParameterError(f"leaf {i} outside a tree of {self.leaf_count} leaves")

    def _set(self, x: NodeIndex, node: Node | None) -> None:
        """The one place a slot changes: update the key indexes, the occupancy
        counts and forget the tree hashes of x and its ancestors."""
        old = self._nodes[x]
        self._nodes[x] = node
        if old is not None:
            _index_remove(self._enc_keys, old.encryption_key, x)
            if isinstance(old, LeafNode):
                _index_remove(self._sig_keys, old.signature_key, LeafIndex(x // 2))
        if node is not None:
            _index_add(self._enc_keys, node.encryption_key, x)
            if isinstance(node, LeafNode):
                _index_add(self._sig_keys, node.signature_key, LeafIndex(x // 2))
        delta = (node is not None) - (old is not None)
        leaf_delta = delta if x % 2 == 0 else 0
        r = self.root
        y = x
        while True:
            self._hashes[y] = None
            if delta:
                self._occ[y] += delta
                self._leaf_occ[y] += leaf_delta
            if y == r:
                break
            y = parent_step(y)

    # ------------------------------------------------------------------ §7.8

    def tree_hash(self) -> bytes:
        """The tree hash of the root (§7.8), from the per-node cache."""
        return self.node_tree_hash(self.root)

    def node_tree_hash(self, x: NodeIndex) -> bytes:
        """The tree hash of node x (§7.8): Hash(TreeHashInput). Cached per node."""
        cached = self._hashes[x]
        if cached is not None:
            return cached
        node = self._nodes[x]
        if x % 2 == 0:
            assert node is None or isinstance(node, LeafNode)
            data = leaf_tree_hash_input(x // 2, node)
        else:
            assert node is None or isinstance(node, ParentNode)
            data = parent_tree_hash_input(
                node, self.node_tree_hash(left(x)), self.node_tree_hash(right(x))
            )
        value = self.cs.hash(data)
        self.hash_computations += 1
        self._hashes[x] = value
        return value

    def original_tree_hash(self, x: NodeIndex, removed: Collection[LeafIndex]) -> bytes:
        """The tree hash of x in the tree where each leaf of `removed` is blanked and
        dropped from every `unmerged_leaves` list (§7.9 original_sibling_tree_hash).
        Subtrees holding none of `removed` use the cache."""
        inside = [i for i in removed if is_in_subtree(x, NodeIndex(2 * i))]
        if not inside:
            return self.node_tree_hash(x)
        if x % 2 == 0:
            return self.cs.hash(leaf_tree_hash_input(x // 2, None))
        node = self._nodes[x]
        assert node is None or isinstance(node, ParentNode)
        if node is not None:
            kept = tuple(i for i in node.unmerged_leaves if i not in inside)
            node = dataclasses.replace(node, unmerged_leaves=kept)
        return self.cs.hash(
            parent_tree_hash_input(
                node,
                self.original_tree_hash(left(x), inside),
                self.original_tree_hash(right(x), inside),
            )
        )

    # ------------------------------------------------------------------ §7.9, §12.4.3.1

    def verify_parent_hashes(self) -> bool:
        """§7.9.2: every non-blank parent node is parent-hash valid."""
        return parent_hash_problem(self) is None

    def validate(self) -> None:
        """The tree checks of joining (§12.4.3.1) other than the tree hash and leaf
        node validation (§7.3, the group engine's): parent-hash validity, the
        unmerged-leaves rules (§7.1, §12.4.3.1) and unique parent keys. Raises
        ValidationError with a TREE-* check ID."""
        validate_tree(self)

    def invalid_leaf_signatures(self, group_id: bytes) -> list[LeafIndex]:
        """Leaves whose LeafNode signature does not verify (§7.3): key_package leaves
        without group context, update/commit leaves with (group_id, leaf_index)."""
        bad: list[LeafIndex] = []
        for i, leaf in self.leaves():
            if leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
                ok = leaf.verify(self.cs)
            else:
                ok = leaf.verify(self.cs, group_id, i)
            if not ok:
                bad.append(i)
        return bad


def _index_add(index: dict[bytes, tuple[_I, ...]], key: bytes, x: _I) -> None:
    index[key] = (*index.get(key, ()), x)


def _index_remove(index: dict[bytes, tuple[_I, ...]], key: bytes, x: _I) -> None:
    rest = tuple(y for y in index.get(key, ()) if y != x)
    if rest:
        index[key] = rest
    else:
        index.pop(key, None)
