"""Commit and UpdatePath (RFC 9420 §7.6, §12.4), and HPKECiphertext (§7.6), which the
Welcome (§12.4.3.1) reuses.

Whether `path` may be absent (§12.4: "By default, the `path` field of a Commit MUST
be populated") depends on the proposals: a validation rule, not a parse one; see
`codepoints.PATH_REQUIRED_PROPOSAL_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.proposals import (
    ProposalOrRef,
    read_proposal_or_ref,
    write_proposal_or_ref,
)


@dataclass(frozen=True, slots=True)
class HPKECiphertext(Struct):
    """RFC 9420 §7.6: struct { opaque kem_output<V>; opaque ciphertext<V>; } HPKECiphertext;"""

    kem_output: bytes
    ciphertext: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class UpdatePathNode(Struct):
    """RFC 9420 §7.6:
    struct { HPKEPublicKey encryption_key; HPKECiphertext encrypted_path_secret<V>; }
    UpdatePathNode;  (one ciphertext per node of the copath node's resolution)"""

    encryption_key: bytes
    encrypted_path_secret: tuple[HPKECiphertext, ...]

    def write(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.structs(self.encrypted_path_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.read)))


@dataclass(frozen=True, slots=True)
class UpdatePath(Struct):
    """RFC 9420 §7.6: struct { LeafNode leaf_node; UpdatePathNode nodes<V>; } UpdatePath;
    (`nodes` follow the sender's filtered direct path, leaf to root)"""

    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)
        w.structs(self.nodes)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r), tuple(r.vector(UpdatePathNode.read)))


@dataclass(frozen=True, slots=True)
class Commit(Struct):
    """RFC 9420 §12.4:
    struct { ProposalOrRef proposals<V>; optional<UpdatePath> path; } Commit;"""

    proposals: tuple[ProposalOrRef, ...]
    path: UpdatePath | None

    def write(self, w: Writer) -> None:
        w.vector(self.proposals, write_proposal_or_ref)
        w.optional(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(read_proposal_or_ref)), r.optional(UpdatePath.read))
