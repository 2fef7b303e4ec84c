"""Ratchet tree node contents (RFC 9420 §7.1, §7.2) and the ratchet_tree extension
payload (§12.4.3.3).

`LeafNode` keeps the `select (leaf_node_source)` arms as optional fields whose
presence is checked at construction (`lifetime` iff key_package, `parent_hash` iff
commit), so every value of the class encodes. `LeafNode.tbs(group_id, leaf_index)`
is the LeafNodeTBS encoding: the group context (group_id, leaf_index) is required
for the update and commit sources and forbidden for key_package.

`Node = LeafNode | ParentNode` is the `Node` union; `write_node`/`read_node` carry
its NodeType tag. `RatchetTreeExtension` is `optional<Node> ratchet_tree<V>`.
"""

from __future__ import annotations

import struct as _struct
from dataclasses import dataclass, field
from typing import ClassVar, Self, cast

from mlsvc.codec import Reader, Struct, Writer, write_memoized
from mlsvc.crypto.labels import sign_with_label, verify_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.messages.codepoints import (
    ExtensionType,
    LeafNodeSource,
    NodeType,
    leaf_node_source_from_wire,
    node_type_from_wire,
)
from mlsvc.messages.credentials import Credential
from mlsvc.messages.extensions import (
    ExtensionPayload,
    Extensions,
    read_extensions,
    read_u16_list,
    write_extensions,
    write_u16_list,
)
from mlsvc.types import LeafIndex

LEAF_NODE_TBS_LABEL = b"LeafNodeTBS"  # RFC 9420 §7.2, §17.6


@dataclass(frozen=True, slots=True)
class Capabilities(Struct):
    """RFC 9420 §7.2:
    struct { ProtocolVersion versions<V>; CipherSuite cipher_suites<V>;
             ExtensionType extensions<V>; ProposalType proposals<V>;
             CredentialType credentials<V>; } Capabilities;
    Every list carries any uint16: unknown values MUST be ignored, not rejected."""

    versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    proposals: tuple[int, ...]
    credentials: tuple[int, ...]

    def write(self, w: Writer) -> None:
        write_u16_list(w, self.versions)
        write_u16_list(w, self.cipher_suites)
        write_u16_list(w, self.extensions)
        write_u16_list(w, self.proposals)
        write_u16_list(w, self.credentials)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(
            read_u16_list(r), read_u16_list(r), read_u16_list(r), read_u16_list(r),
            read_u16_list(r),
        )


@dataclass(frozen=True, slots=True)
class Lifetime(Struct):
    """RFC 9420 §7.2: struct { uint64 not_before; uint64 not_after; } Lifetime;
    (seconds since the Unix epoch)."""

    not_before: int
    not_after: int

    def write(self, w: Writer) -> None:
        w.u64(self.not_before)
        w.u64(self.not_after)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u64(), r.u64())


@dataclass(frozen=True, slots=True)
class LeafNode(Struct):
    """RFC 9420 §7.2:
    struct {
        HPKEPublicKey encryption_key;
        SignaturePublicKey signature_key;
        Credential credential;
        Capabilities capabilities;
        LeafNodeSource leaf_node_source;
        select (LeafNode.leaf_node_source) {
            case key_package: Lifetime lifetime;
            case update:      struct{};
            case commit:      opaque parent_hash<V>;
        };
        Extension extensions<V>;
        /* SignWithLabel(., "LeafNodeTBS", LeafNodeTBS) */
        opaque signature<V>;
    } LeafNode;"""

    encryption_key: bytes
    signature_key: bytes
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: Lifetime | None
    parent_hash: bytes | None
    extensions: Extensions
    signature: bytes = b""
    NODE_TYPE: ClassVar[NodeType] = NodeType.LEAF
    # The encoding of every field but the signature, computed once: a leaf is encoded
    # for its signature, the KeyPackage's, its reference, tree hashes and the
    # ratchet_tree extension. Not an init field: replace() never copies it.
    _content: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        src = self.leaf_node_source
        if (self.lifetime is not None) != (src == LeafNodeSource.KEY_PACKAGE):
            raise ParameterError("LeafNode: lifetime is present iff source is key_package")
        if (self.parent_hash is not None) != (src == LeafNodeSource.COMMIT):
            raise ParameterError("LeafNode: parent_hash is present iff source is commit")

    def _write_content(self, w: Writer) -> None:
        """The fields shared by LeafNode and LeafNodeTBS (all but the signature)."""
        write_memoized(w, self, "_content", self._encode_content)

    def _encode_content(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.signature_key)
        self.credential.write(w)
        self.capabilities.write(w)
        w.u8(self.leaf_node_source)
        if self.lifetime is not None:
            self.lifetime.write(w)
        elif self.parent_hash is not None:
            w.opaque(self.parent_hash)
        write_extensions(w, self.extensions)

    def write(self, w: Writer) -> None:
        self._write_content(w)
        w.opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        encryption_key = r.opaque()
        signature_key = r.opaque()
        credential = Credential.read(r)
        capabilities = Capabilities.read(r)
        source = leaf_node_source_from_wire(r.u8())
        lifetime = Lifetime.read(r) if source == LeafNodeSource.KEY_PACKAGE else None
        parent_hash = r.opaque() if source == LeafNodeSource.COMMIT else None
        extensions = read_extensions(r)
        signature = r.opaque()
        return cls(
            encryption_key, signature_key, credential, capabilities, source, lifetime,
            parent_hash, extensions, signature,
        )

    def tbs(self, group_id: bytes | None = None, leaf_index: int | None = None) -> bytes:
        """The LeafNodeTBS encoding (§7.2): the content fields, then
        `opaque group_id<V>; uint32 leaf_index;` for the update and commit sources."""
        w = Writer()
        self._write_content(w)
        if self.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
            if group_id is not None or leaf_index is not None:
                raise ParameterError("LeafNodeTBS of a key_package leaf takes no group context")
        else:
            if group_id is None or leaf_index is None:
                raise ParameterError(
                    "LeafNodeTBS of an update/commit leaf needs group_id and leaf_index"
                )
            w.opaque(group_id)
            w.u32(leaf_index)
        return bytes(w.buf)

    def signed(
        self,
        cs: CipherSuite,
        signature_private_key: bytes,
        group_id: bytes | None = None,
        leaf_index: int | None = None,
    ) -> LeafNode:
        """A copy whose signature is SignWithLabel(sk, "LeafNodeTBS", LeafNodeTBS)."""
        sig = sign_with_label(
            cs, signature_private_key, LEAF_NODE_TBS_LABEL, self.tbs(group_id, leaf_index)
        )
        return LeafNode(
            self.encryption_key, self.signature_key, self.credential, self.capabilities,
            self.leaf_node_source, self.lifetime, self.parent_hash, self.extensions, sig,
        )

    def verify(
        self, cs: CipherSuite, group_id: bytes | None = None, leaf_index: int | None = None
    ) -> bool:
        """VerifyWithLabel(signature_key, "LeafNodeTBS", LeafNodeTBS, signature) (§7.3)."""
        return verify_with_label(
            cs, self.signature_key, LEAF_NODE_TBS_LABEL, self.tbs(group_id, leaf_index),
            self.signature,
        )


def write_u32_list(w: Writer, values: tuple[int, ...]) -> None:
    """uint32 values<V>"""
    w.varint(4 * len(values))
    for v in values:
        w.u32(v)


def read_u32_list(r: Reader) -> tuple[int, ...]:
    """uint32 values<V>; a length that is not a multiple of 4 is a DecodeError."""
    data = r.opaque()
    if len(data) % 4:
        raise DecodeError("length not a multiple of 4 in a vector of uint32")
    return _struct.unpack(f">{len(data) // 4}I", data)


@dataclass(frozen=True, slots=True)
class ParentNode(Struct):
    """RFC 9420 §7.1:
    struct { HPKEPublicKey encryption_key; opaque parent_hash<V>;
             uint32 unmerged_leaves<V>; } ParentNode;
    (The sortedness of `unmerged_leaves` is a tree validation check, not a parse one.)"""

    encryption_key: bytes
    parent_hash: bytes
    unmerged_leaves: tuple[LeafIndex, ...]
    NODE_TYPE: ClassVar[NodeType] = NodeType.PARENT

    def write(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.parent_hash)
        write_u32_list(w, self.unmerged_leaves)

    @classmethod
    def read(cls, r: Reader) -> Self:
        encryption_key = r.opaque()
        parent_hash = r.opaque()
        unmerged = cast("tuple[LeafIndex, ...]", read_u32_list(r))
        return cls(encryption_key, parent_hash, unmerged)


Node = LeafNode | ParentNode
"""RFC 9420 §12.4.3.3:
struct { NodeType node_type; select (Node.node_type) {
    case leaf: LeafNode leaf_node; case parent: ParentNode parent_node; }; } Node;"""


def write_node(w: Writer, node: Node) -> None:
    w.u8(node.NODE_TYPE)
    node.write(w)


def read_node(r: Reader) -> Node:
    if node_type_from_wire(r.u8()) == NodeType.LEAF:
        return LeafNode.read(r)
    return ParentNode.read(r)


def _write_optional_node(w: Writer, node: Node | None) -> None:
    if node is None:
        w.u8(0)
    else:
        w.u8(1)
        write_node(w, node)


@dataclass(frozen=True, slots=True)
class RatchetTreeExtension(ExtensionPayload):
    """RFC 9420 §12.4.3.3: optional<Node> ratchet_tree<V>; the nodes in array order
    (Appendix C), None for a blank node.

    Checked at construction and when decoding: the vector is not empty and its
    last entry is not blank ("The receiver MUST check that the last node in
    `ratchet_tree` is non-blank"); leaves sit at even and parents at odd positions.
    The receiver pads the tree with blanks to 2^(d+1)-1 nodes (done by the tree)."""

    nodes: tuple[Node | None, ...]
    EXTENSION_TYPE: ClassVar[int] = ExtensionType.RATCHET_TREE

    def __post_init__(self) -> None:
        problem = _tree_shape_problem(self.nodes)
        if problem:
            raise ParameterError(problem)

    @classmethod
    def from_nodes(cls, nodes: tuple[Node | None, ...]) -> Self:
        """Drop trailing blank nodes (the sender MUST NOT include them) and wrap."""
        end = len(nodes)
        while end and nodes[end - 1] is None:
            end -= 1
        return cls(nodes[:end])

    def write(self, w: Writer) -> None:
        w.vector(self.nodes, _write_optional_node)

    @classmethod
    def read(cls, r: Reader) -> Self:
        nodes = tuple(r.vector(_read_optional_node))
        problem = _tree_shape_problem(nodes)
        if problem:
            raise DecodeError(problem)
        return cls(nodes)


def _read_optional_node(r: Reader) -> Node | None:
    return r.optional(read_node)


def _tree_shape_problem(nodes: tuple[Node | None, ...]) -> str:
    if not nodes:
        return "ratchet_tree is empty"
    if nodes[-1] is None:
        return "ratchet_tree ends with a blank node"
    for i, node in enumerate(nodes):
        if node is not None and isinstance(node, LeafNode) != (i % 2 == 0):
            return f"ratchet_tree node {i} has the wrong node type for its position"
    return ""
