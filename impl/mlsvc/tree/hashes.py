"""Hash inputs of the ratchet tree: tree hashes (RFC 9420 §7.8) and parent hashes
(§7.9), as pure encoding functions. The caching and the walk over the tree live in
`ratchet_tree.RatchetTree`; the parent-hash checks of §7.9.2 in `parent_hash`.

~~~ tls-presentation
struct { NodeType node_type; select (TreeHashInput.node_type) {
    case leaf: LeafNodeHashInput leaf_node; case parent: ParentNodeHashInput parent_node;
}; } TreeHashInput;
struct { uint32 leaf_index; optional<LeafNode> leaf_node; } LeafNodeHashInput;
struct { optional<ParentNode> parent_node; opaque left_hash<V>; opaque right_hash<V>; }
    ParentNodeHashInput;
struct { HPKEPublicKey encryption_key; opaque parent_hash<V>;
         opaque original_sibling_tree_hash<V>; } ParentHashInput;
~~~
"""

from __future__ import annotations

from mlsvc.codec import Writer
from mlsvc.crypto.suites import CipherSuite
from mlsvc.messages.codepoints import NodeType
from mlsvc.messages.leaf_node import LeafNode, ParentNode


def leaf_tree_hash_input(leaf_index: int, leaf: LeafNode | None) -> bytes:
    """TreeHashInput of a leaf (§7.8): node_type leaf, then LeafNodeHashInput.
    The optional LeafNode is absent iff the leaf is blank."""
    w = Writer()
    w.u8(NodeType.LEAF)
    w.u32(leaf_index)
    w.optional(leaf)
    return bytes(w.buf)


def parent_tree_hash_input(node: ParentNode | None, left_hash: bytes, right_hash: bytes) -> bytes:
    """TreeHashInput of a parent (§7.8): node_type parent, then ParentNodeHashInput.
    The optional ParentNode is absent iff the node is blank."""
    w = Writer()
    w.u8(NodeType.PARENT)
    w.optional(node)
    w.opaque(left_hash)
    w.opaque(right_hash)
    return bytes(w.buf)


def parent_hash_input(
    encryption_key: bytes, parent_hash: bytes, original_sibling_tree_hash: bytes
) -> bytes:
    """ParentHashInput (§7.9)."""
    w = Writer()
    w.opaque(encryption_key)
    w.opaque(parent_hash)
    w.opaque(original_sibling_tree_hash)
    return bytes(w.buf)


def compute_parent_hash(
    cs: CipherSuite, encryption_key: bytes, parent_hash: bytes, original_sibling_tree_hash: bytes
) -> bytes:
    """The parent hash of a node P with copath child S (§7.9): Hash(ParentHashInput)
    with P's key, P's own `parent_hash` field and the original tree hash of S."""
    return cs.hash(parent_hash_input(encryption_key, parent_hash, original_sibling_tree_hash))
