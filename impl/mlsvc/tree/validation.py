"""Checks of a ratchet tree received when joining (RFC 9420 §12.4.3.1): parent-hash
validity of every non-blank parent node (§7.9.2) and the unmerged-leaves and key
uniqueness rules. Leaf node validation (§7.3) and the tree-hash comparison with the
GroupInfo belong to the group engine.

Parent hashes are checked "top down" (§7.9.2): each non-blank parent P must have
exactly one descendant D such that D's parent hash is valid with respect to P. Then
every chain runs down to a leaf, so every non-blank parent is parent-hash valid.

Check IDs:
  TREE-UNMERGED-ORDER   §7.1 unmerged_leaves sorted in increasing order
  TREE-UNMERGED-LEAF    §12.4.3.1 entry is a non-blank leaf below the parent
  TREE-UNMERGED-PATH    §12.4.3.1 non-blank nodes between the leaf and the parent list it
  TREE-PARENT-KEY-DUP   §12.4.3.1 a parent's encryption key appears in no other node
  TREE-PARENT-HASH      §7.9.2 every non-blank parent node is parent-hash valid
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

from mlsvc.errors import ValidationError
from mlsvc.messages.leaf_node import ParentNode
from mlsvc.tree.hashes import compute_parent_hash
from mlsvc.tree.math import is_in_subtree, left, parent_step, right
from mlsvc.types import NodeIndex

if TYPE_CHECKING:
    from mlsvc.tree.ratchet_tree import RatchetTree


def _parents(tree: RatchetTree) -> list[tuple[NodeIndex, ParentNode]]:
    out: list[tuple[NodeIndex, ParentNode]] = []
    for x in range(1, tree.node_width, 2):
        node = tree.node(NodeIndex(x))
        if node is not None:
            assert isinstance(node, ParentNode)
            out.append((NodeIndex(x), node))
    return out


def parent_hash_links(tree: RatchetTree, x: NodeIndex, p: ParentNode) -> list[NodeIndex]:
    """The descendants D of parent node x whose parent hash is valid with respect
    to x (§7.9.2): D is in the resolution of a child C of x, D.parent_hash is the
    parent hash of x with copath child S (the other child), and x's unmerged leaves
    under C are exactly resolution(C) without D."""
    links: list[NodeIndex] = []
    for c, s in ((left(x), right(x)), (right(x), left(x))):
        res = tree.resolution(c)
        if not res:
            continue
        ph = compute_parent_hash(
            tree.cs, p.encryption_key, p.parent_hash,
            tree.original_tree_hash(s, p.unmerged_leaves),
        )
        unmerged_in_c = {
            NodeIndex(2 * i) for i in p.unmerged_leaves if is_in_subtree(c, NodeIndex(2 * i))
        }
        res_set = set(res)
        for d in res:
            node = tree.node(d)
            if node is None or node.parent_hash != ph:
                continue
            if unmerged_in_c == res_set - {d}:
                links.append(d)
    return links


def parent_hash_problem(tree: RatchetTree) -> str | None:
    """None if every non-blank parent node is parent-hash valid (§7.9.2), else a
    description of the first one that is not."""
    for x, p in _parents(tree):
        links = parent_hash_links(tree, x, p)
        if len(links) != 1:
            return f"parent node {x} has {len(links)} valid parent-hash links (want 1)"
    return None


def validate_tree(tree: RatchetTree) -> None:
    """§12.4.3.1 "Verify the integrity of the ratchet tree" except the tree hash and
    leaf node validation. Raises ValidationError (check IDs in the module docstring)."""
    for x, p in _parents(tree):
        unmerged = p.unmerged_leaves
        if any(a >= b for a, b in pairwise(unmerged)):
            raise ValidationError(
                "TREE-UNMERGED-ORDER", f"unmerged_leaves of node {x} not strictly increasing"
            )
        for i in unmerged:
            leaf_x = NodeIndex(2 * i)
            if leaf_x >= tree.node_width or not is_in_subtree(x, leaf_x):
                raise ValidationError(
                    "TREE-UNMERGED-LEAF", f"unmerged leaf {i} is not below node {x}"
                )
            if tree.node(leaf_x) is None:
                raise ValidationError("TREE-UNMERGED-LEAF", f"unmerged leaf {i} is blank")
            y = parent_step(leaf_x)
            while y != x:
                between = tree.node(y)
                if between is not None:
                    assert isinstance(between, ParentNode)
                    if i not in between.unmerged_leaves:
                        raise ValidationError(
                            "TREE-UNMERGED-PATH",
                            f"node {y} between leaf {i} and node {x} does not list it",
                        )
                y = parent_step(y)
        if tree.nodes_with_encryption_key(p.encryption_key) != (x,):
            raise ValidationError(
                "TREE-PARENT-KEY-DUP", f"encryption key of node {x} appears in another node"
            )
    problem = parent_hash_problem(tree)
    if problem is not None:
        raise ValidationError("TREE-PARENT-HASH", problem)
