"""What every peer adapter shares: the `Peer` protocol, the values it exchanges and
its errors.

A `Peer` is one client of one MLS engine, a member of at most one group. Everything
that crosses between engines is RFC 9420 MLSMessage bytes (§6): KeyPackages, Welcomes,
GroupInfos, PublicMessages and PrivateMessages. A committer moves to the new epoch as
soon as it commits (the caller's delivery service is assumed to accept every commit,
§12.4.1); the others move when they `process` it.

Not every engine offers everything: an adapter raises `PeerError` for an operation its
engine cannot do, and its `FEATURES` set names the optional ones it offers (see
`mlsvc.peers.FEATURES`). Methods that report state the engine cannot report
(`epoch`, `epoch_authenticator`, `group_info`) return None instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mlsvc.errors import MLSError
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode, Node
from mlsvc.messages.mls_message import MLSMessage

INSTALL_HINT = "run `make setup` in the mlsvc repository"

# Optional features (beyond the common core: KeyPackage, create, Add/Welcome, commits
# with a path, Removes, application messages, exporter, roster, ratchet tree):
#   propose          Add/Remove proposals, committed by reference by any member
#   propose_update   sends Update proposals (RFC 9420 §12.1.2)
#   commit_update    commits an Update proposal received from another member (§12.4)
#   external_join    joins by external commit (§12.4.3.2)
#   psk              external and resumption PSKs (§8.4, §8.6)
#   private_handshake  proposals and commits as PrivateMessage
#   epoch            reports its epoch and epoch authenticator
#   group_info       publishes a GroupInfo (§12.4.3)
#   leaf_extensions  puts chosen extensions (and capabilities) in its own LeafNodes
OPTIONAL_FEATURES = frozenset({
    "propose", "propose_update", "commit_update", "external_join", "psk",
    "private_handshake", "epoch", "group_info", "leaf_extensions",
})


class PeerError(MLSError):
    """A peer engine refused an operation (its own error message is kept), or the
    adapter does not offer it."""


class PeerUnavailable(MLSError):
    """A peer engine is not installed or does not start."""


@dataclass(frozen=True)
class Member:
    """A member as another member names it: basic credential identity and signature key
    (RFC 9420 §5.3); mls-rs removes by this, the others by leaf index."""

    identity: bytes
    signature_key: bytes


@dataclass(frozen=True)
class CommitResult:
    """A commit (MLSMessage bytes), the Welcome for the members it adds (None if none)
    and the new epoch's GroupInfo (None when the engine gives none)."""

    commit: bytes
    welcome: bytes | None
    group_info: bytes | None


@dataclass(frozen=True)
class Received:
    """What processing a message did: "application" (with `data`), "proposal" or
    "commit"; `removed` when the commit removed the receiver itself."""

    kind: str
    data: bytes = b""
    removed: bool = False


class Peer(Protocol):
    engine: str
    name: bytes
    suite: int

    def key_package(self) -> bytes:
        """A fresh KeyPackage MLSMessage; `join` uses the last one made."""
        ...

    def signature_key(self) -> bytes: ...
    def create(self, group_id: bytes) -> None: ...
    def join(self, welcome: bytes) -> None: ...
    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes: ...
    def propose_add(self, key_package: bytes) -> bytes: ...
    def propose_remove(self, leaf: int, member: Member) -> bytes: ...
    def propose_update(self) -> bytes: ...
    def propose_psk(self, psk_id: bytes) -> bytes: ...

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        """A commit with a path of the proposals received by `process` this epoch (by
        reference) plus Adds of `adds`, Removes of `removes` (leaf, member) and PSKs
        (by value); the committer is in the new epoch when it returns."""
        ...

    def commit_pending(self) -> CommitResult:
        """A commit of the proposals received by `process` this epoch, and nothing else."""
        ...

    def process(self, message: bytes) -> Received: ...
    def encrypt(self, data: bytes) -> bytes: ...
    def export(self, label: bytes, context: bytes, length: int) -> bytes: ...
    def epoch(self) -> int | None: ...
    def epoch_authenticator(self) -> bytes | None: ...
    def roster(self) -> dict[int, Member]: ...
    def ratchet_tree(self) -> tuple[Node | None, ...]: ...
    def group_info(self) -> bytes | None: ...
    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None: ...
    def close(self) -> None: ...


def unsupported(engine: str, what: str) -> PeerError:
    return PeerError(f"{engine} adapter does not offer {what}")


def key_package_of(message: bytes) -> KeyPackage:
    """The KeyPackage inside a KeyPackage MLSMessage."""
    body = MLSMessage.decode(message).body
    if not isinstance(body, KeyPackage):
        raise PeerError("expected a KeyPackage MLSMessage")
    return body


def roster_of_nodes(nodes: Sequence[object]) -> dict[int, Member]:
    """Leaves of a ratchet tree in array form (RFC 9420 Appendix C): leaf i at node 2i."""
    out: dict[int, Member] = {}
    for i in range(0, len(nodes), 2):
        leaf = nodes[i]
        if not isinstance(leaf, LeafNode):
            continue
        cred = leaf.credential
        ident = cred.identity if isinstance(cred, BasicCredential) else b""
        out[i // 2] = Member(ident, leaf.signature_key)
    return out
