"""The secret tree and its per-leaf hash ratchets, RFC 9420 §9, with the deletion
schedule of §9.2.

Derivation (§9): the root holds encryption_secret; a parent's children get
ExpandWithLabel(parent, "tree", "left"/"right", KDF.Nh); a leaf's secret seeds two
ratchets, ExpandWithLabel(leaf, "handshake"/"application", "", KDF.Nh); step j of a
ratchet gives DeriveTreeSecret(secret_j, "key"/"nonce", j, AEAD.Nk/Nn) and
secret_{j+1} = DeriveTreeSecret(secret_j, "secret", j, KDF.Nh).

Laziness: nothing is derived at construction. The first key of a leaf walks down
from its lowest stored ancestor, deriving both children at each level (2 per level,
O(log n)); work never depends on the group size otherwise.

Deletion (§9.2): a node secret is removed as soon as its two children exist; a leaf
secret as soon as its two ratchets exist; a ratchet secret as soon as its successor
exists; a key/nonce as soon as it is handed out for use. Skipped generations keep
their key/nonce only within `out_of_order_tolerance` generations below the newest
derived one (each usable once); generations more than `max_forward_distance` ahead
are refused. All state is plain data (`SecretTreeState`) to allow persistence.

Secret trees have the ratchet tree's shape (§9), whose leaf count is a power of two
(§7.8); other counts are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mlsvc.crypto.labels import derive_tree_secret, expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import LibraryError, ParameterError, RemoteError, StateError
from mlsvc.tree.math import direct_path, leaf_to_node, root
from mlsvc.types import LeafCount, LeafIndex, NodeIndex

MAX_GENERATION = 0xFFFF_FFFF
"""Generations are uint32 (§6.3.2 PrivateMessageContent / §9.1 DeriveTreeSecret)."""

DEFAULT_MAX_FORWARD_DISTANCE = 1000
DEFAULT_OUT_OF_ORDER_TOLERANCE = 5


class RatchetType(Enum):
    """The two ratchets of a leaf (§9); the value is the derivation label."""

    HANDSHAKE = "handshake"
    APPLICATION = "application"


class SecretTreeError(RemoteError):
    """A received message asks for a key the secret tree cannot give (§9.2)."""


class GenerationTooFarError(SecretTreeError):
    """The generation is more than max_forward_distance ahead of the ratchet."""


class GenerationUnavailableError(SecretTreeError):
    """The generation's key was already used or deleted (§9.2): replay, or outside
    the out-of-order window."""


@dataclass(slots=True)
class HashRatchet:
    """One sender ratchet (§9.1): `secret` is ratchet_secret_[N]_[generation], the
    next generation not yet derived; `retained` maps skipped (or derived but not yet
    consumed) generations to (key, nonce)."""

    generation: int
    secret: bytes
    retained: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)

    def copy(self) -> HashRatchet:
        return HashRatchet(self.generation, self.secret, dict(self.retained))


@dataclass(slots=True)
class SecretTreeState:
    """Everything a SecretTree holds, as plain data. `nodes` contains only derived
    node secrets whose children are not derived yet (the frontier)."""

    leaf_count: int
    max_forward_distance: int
    out_of_order_tolerance: int
    nodes: dict[int, bytes]
    handshake: dict[int, HashRatchet] = field(default_factory=dict)
    application: dict[int, HashRatchet] = field(default_factory=dict)

    def copy(self) -> SecretTreeState:
        """An independent copy (e.g. to roll back a failed message processing)."""
        return SecretTreeState(
            self.leaf_count,
            self.max_forward_distance,
            self.out_of_order_tolerance,
            dict(self.nodes),
            {k: r.copy() for k, r in self.handshake.items()},
            {k: r.copy() for k, r in self.application.items()},
        )


def check_config(leaf_count: int, max_forward_distance: int, tolerance: int) -> None:
    """ParameterError unless the leaf count is a power of two (§7.8) and both bounds of
    the deletion schedule (§9.2) are >= 0."""
    if leaf_count < 1 or leaf_count & (leaf_count - 1):
        raise ParameterError(f"secret tree leaf count {leaf_count} is not a power of two")
    if max_forward_distance < 0 or tolerance < 0:
        raise ParameterError("max_forward_distance and out_of_order_tolerance must be >= 0")


def pop_leaf_secret(cs: CipherSuite, nodes: dict[int, bytes], leaf_count: int,
                    leaf: LeafIndex) -> bytes:
    """The tree part of §9: derive tree_node_[leaf]_secret from its lowest stored
    ancestor in `nodes` (the frontier: node index -> secret), a parent's children being
    ExpandWithLabel(parent, "tree", "left"/"right", KDF.Nh), deleting each consumed node
    secret (§9.2). Returns the leaf secret, removed from `nodes`. Shared with any tree of
    this shape rooted elsewhere (the virtual clients' operation secret tree)."""
    n = LeafCount(leaf_count)
    leaf_node = leaf_to_node(leaf)
    path = [leaf_node, *direct_path(leaf_node, n)]  # leaf .. root
    start = next((i for i, x in enumerate(path) if x in nodes), None)
    if start is None:
        raise LibraryError(f"secret tree: no stored ancestor for leaf {leaf}")
    for i in range(start, 0, -1):
        parent = path[i]
        child = path[i - 1]
        secret = nodes.pop(parent)
        left_secret = expand_with_label(cs, secret, b"tree", b"left", cs.nh)
        right_secret = expand_with_label(cs, secret, b"tree", b"right", cs.nh)
        # Children of parent p at level k are p -/+ 2^(k-1); the path child is one.
        offset = parent - child if child < parent else child - parent
        nodes[NodeIndex(parent - offset)] = left_secret
        nodes[NodeIndex(parent + offset)] = right_secret
    return nodes.pop(leaf_node)


class SecretTree:
    """The secret tree of one epoch (§9). Not thread-safe; one per group epoch."""

    __slots__ = ("_cs", "state")

    def __init__(
        self,
        cs: CipherSuite,
        encryption_secret: bytes,
        leaf_count: int,
        *,
        max_forward_distance: int = DEFAULT_MAX_FORWARD_DISTANCE,
        out_of_order_tolerance: int = DEFAULT_OUT_OF_ORDER_TOLERANCE,
    ) -> None:
        check_config(leaf_count, max_forward_distance, out_of_order_tolerance)
        self._cs = cs
        # §9: tree_node_[root]_secret = encryption_secret.
        top = root(LeafCount(leaf_count))
        self.state = SecretTreeState(
            leaf_count, max_forward_distance, out_of_order_tolerance, {top: encryption_secret}
        )

    @classmethod
    def from_state(cls, cs: CipherSuite, state: SecretTreeState) -> SecretTree:
        """Resume from a stored state (the object is used as is, not copied)."""
        check_config(state.leaf_count, state.max_forward_distance, state.out_of_order_tolerance)
        tree = cls.__new__(cls)
        tree._cs = cs
        tree.state = state
        return tree

    @property
    def leaf_count(self) -> int:
        return self.state.leaf_count

    # -- tree part (§9) ---------------------------------------------------------------

    def _leaf_secret(self, leaf: LeafIndex) -> bytes:
        """Derive tree_node_[leaf]_secret, removed from the state (the caller turns it
        into the two ratchets at once); see `pop_leaf_secret`."""
        return pop_leaf_secret(self._cs, self.state.nodes, self.state.leaf_count, leaf)

    def _ratchet(self, leaf: LeafIndex, rtype: RatchetType) -> HashRatchet:
        if not 0 <= leaf < self.state.leaf_count:
            raise ParameterError(f"leaf {leaf} outside a secret tree of {self.leaf_count}")
        table = self.state.handshake if rtype is RatchetType.HANDSHAKE else self.state.application
        ratchet = table.get(leaf)
        if ratchet is not None:
            return ratchet
        # §9: both ratchets start from the leaf secret, which is then consumed (§9.2).
        cs = self._cs
        secret = self._leaf_secret(leaf)
        hs = expand_with_label(cs, secret, b"handshake", b"", cs.nh)
        app = expand_with_label(cs, secret, b"application", b"", cs.nh)
        self.state.handshake[leaf] = HashRatchet(0, hs)
        self.state.application[leaf] = HashRatchet(0, app)
        return table[leaf]

    # -- ratchet part (§9.1) ----------------------------------------------------------

    def _key_nonce(self, secret: bytes, generation: int) -> tuple[bytes, bytes]:
        cs = self._cs
        key = derive_tree_secret(cs, secret, b"key", generation, cs.aead.nk)
        nonce = derive_tree_secret(cs, secret, b"nonce", generation, cs.aead.nn)
        return key, nonce

    def _step(self, ratchet: HashRatchet) -> None:
        """ratchet_secret_[j+1] = DeriveTreeSecret(secret_j, "secret", j, KDF.Nh);
        secret_j is dropped (§9.2)."""
        cs = self._cs
        ratchet.secret = derive_tree_secret(cs, ratchet.secret, b"secret", ratchet.generation,
                                            cs.nh)
        ratchet.generation += 1

    def next_key(self, leaf: LeafIndex, rtype: RatchetType, *, retain: bool = False
                 ) -> tuple[int, bytes, bytes]:
        """For sending (§9.1): (generation, key, nonce) of the next unused generation
        of our own ratchet, which moves past it (the key is not kept, §9.2). With
        `retain` the key stays retained like a skipped one, so that a message another
        sender of the same leaf sent on that generation can still be read (virtual
        clients: emulators share a leaf, draft-00 §5.9, DRAFT-00-PROFILE P20), until
        `consume_key` or `release_key` deletes it."""
        ratchet = self._ratchet(leaf, rtype)
        generation = ratchet.generation
        if generation > MAX_GENERATION:
            raise StateError("sender ratchet exhausted (generation is a uint32)")
        key, nonce = self._key_nonce(ratchet.secret, generation)
        self._step(ratchet)
        if retain:
            ratchet.retained[generation] = (key, nonce)
        return generation, key, nonce

    def release_key(self, leaf: LeafIndex, rtype: RatchetType, generation: int) -> bool:
        """Delete a retained key if it is still held (§9.2); whether it was."""
        ratchet = self._ratchet(leaf, rtype)
        return ratchet.retained.pop(generation, None) is not None

    def peek_key(
        self, leaf: LeafIndex, rtype: RatchetType, generation: int
    ) -> tuple[bytes, bytes]:
        """For receiving, first half: (key, nonce) of `generation`, left retained until
        `consume_key` (so a message that fails to decrypt does not burn the key).
        Ratchets forward as needed, retaining skipped keys within the window.

        Raises GenerationTooFarError beyond max_forward_distance and
        GenerationUnavailableError for a generation already used or deleted."""
        if not 0 <= generation <= MAX_GENERATION:
            raise ParameterError(f"generation {generation} is not a uint32")
        ratchet = self._ratchet(leaf, rtype)
        st = self.state
        if generation < ratchet.generation:
            kept = ratchet.retained.get(generation)
            if kept is None:
                raise GenerationUnavailableError(
                    f"{rtype.value} generation {generation} of leaf {leaf} already used or "
                    f"deleted (ratchet at {ratchet.generation})"
                )
            return kept
        if generation - ratchet.generation > st.max_forward_distance:
            raise GenerationTooFarError(
                f"{rtype.value} generation {generation} of leaf {leaf} is more than "
                f"{st.max_forward_distance} ahead of {ratchet.generation}"
            )
        # Keys kept: generations >= newest - tolerance (newest = `generation`).
        lowest_kept = generation - st.out_of_order_tolerance
        while ratchet.generation <= generation:
            j = ratchet.generation
            if j >= lowest_kept:
                ratchet.retained[j] = self._key_nonce(ratchet.secret, j)
            self._step(ratchet)
        for old in [g for g in ratchet.retained if g < lowest_kept]:
            del ratchet.retained[old]
        return ratchet.retained[generation]

    def consume_key(self, leaf: LeafIndex, rtype: RatchetType, generation: int) -> None:
        """For receiving, second half: delete the key of `generation` after a
        successful decryption (§9.2). GenerationUnavailableError if it is not held."""
        ratchet = self._ratchet(leaf, rtype)
        if ratchet.retained.pop(generation, None) is None:
            raise GenerationUnavailableError(
                f"{rtype.value} generation {generation} of leaf {leaf} is not held"
            )

    def key_for(
        self, leaf: LeafIndex, rtype: RatchetType, generation: int
    ) -> tuple[bytes, bytes]:
        """For receiving: (key, nonce) of `generation`, consumed at once (§9.2): a
        second call for the same generation raises GenerationUnavailableError."""
        key_nonce = self.peek_key(leaf, rtype, generation)
        self.consume_key(leaf, rtype, generation)
        return key_nonce
