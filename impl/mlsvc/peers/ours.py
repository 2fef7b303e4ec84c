"""This project's engine (mlsvc.group) as a `Peer`, in-process."""

from __future__ import annotations

from collections.abc import Sequence

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.codepoints import ResumptionPSKUsage
from mlsvc.messages.extensions import Extension
from mlsvc.messages.leaf_node import Capabilities, Node, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, PreSharedKey, PreSharedKeyID, Proposal, Remove
from mlsvc.peers.base import (
    CommitResult,
    Member,
    PeerError,
    Received,
    key_package_of,
    roster_of_nodes,
)
from mlsvc.types import LeafIndex


class OurPeer:
    """Options: `seed` (randomness is drawn from a SeededRandom of seed and name, so
    runs replay), `private_handshake` (proposals and commits as PrivateMessage), and
    `capabilities` / `leaf_extensions`, put in every LeafNode this client publishes
    (KeyPackage, group creation, commit paths, Updates); both may be changed between
    operations."""

    engine = "ours"
    FEATURES = frozenset({"propose", "propose_update", "commit_update", "external_join",
                          "psk", "private_handshake", "epoch", "group_info",
                          "leaf_extensions"})

    def __init__(self, name: bytes, suite: int, *, private_handshake: bool = False,
                 seed: bytes = b"", capabilities: Capabilities | None = None,
                 leaf_extensions: Sequence[Extension] = ()) -> None:
        self.name, self.suite = name, suite
        self.cs = get_suite(suite)
        self.psks: dict[bytes, bytes] = {}
        self.rng = SeededRandom(seed + b"/" + name)
        self.private_handshake = private_handshake
        self.capabilities = capabilities
        self.leaf_extensions = tuple(leaf_extensions)
        self.identity = Identity.basic(name, self.cs.signature.generate_key_pair(self.rng))
        self.bundle: KeyPackageBundle | None = None
        self.group: Group | None = None

    def _config(self) -> GroupConfig:
        return GroupConfig(rng=self.rng, external_psks=self.psks,
                           encrypt_handshake=self.private_handshake)

    @property
    def g(self) -> Group:
        if self.group is None:
            raise PeerError("ours: not in a group")
        return self.group

    def key_package(self) -> bytes:
        self.bundle = create_key_package(self.cs, self.identity, self._config(),
                                         capabilities=self.capabilities,
                                         leaf_extensions=self.leaf_extensions)
        return MLSMessage(self.bundle.key_package).encode()

    def signature_key(self) -> bytes:
        return self.identity.signature_public_key

    def create(self, group_id: bytes) -> None:
        self.group = Group.create(self.cs, self.identity, self._config(), group_id=group_id,
                                  capabilities=self.capabilities,
                                  leaf_extensions=self.leaf_extensions)

    def join(self, welcome: bytes) -> None:
        if self.bundle is None:
            raise PeerError("ours: join needs a KeyPackage first")
        self.group = Group.join(welcome, self.bundle, self._config())

    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes:
        prior = None if remove_prior is None else LeafIndex(remove_prior)
        self.group, commit = Group.external_join(group_info, self.identity, self._config(),
                                                 remove_prior=prior)
        return commit

    def propose_add(self, key_package: bytes) -> bytes:
        return self.g.propose_add(key_package_of(key_package))

    def propose_remove(self, leaf: int, member: Member) -> bytes:
        return self.g.propose_remove(LeafIndex(leaf))

    def propose_update(self) -> bytes:
        return self.g.propose_update(capabilities=self.capabilities,
                                     leaf_extensions=self.leaf_extensions)

    def propose_psk(self, psk_id: bytes) -> bytes:
        return self.g.propose_external_psk(psk_id)

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        g = self.g
        props: list[Proposal] = [Add(key_package_of(kp)) for kp in adds]
        props += [Remove(LeafIndex(leaf)) for leaf, _ in removes]
        props += [PreSharedKey(PreSharedKeyID.external(i, self.rng(self.cs.nh))) for i in psks]
        props += [PreSharedKey(PreSharedKeyID.resumption(
            ResumptionPSKUsage.APPLICATION, g.group_id, e, self.rng(self.cs.nh)))
            for e in resumption]
        # §12.4: a path is required for empty commits and removes; we always send one
        out = g.commit(props, force_path=True, capabilities=self.capabilities,
                       leaf_extensions=self.leaf_extensions)
        g.merge_pending_commit()
        return CommitResult(out.commit, out.welcome, out.group_info)

    def commit_pending(self) -> CommitResult:
        return self.commit()

    def process(self, message: bytes) -> Received:
        ev = self.g.process(message)
        if isinstance(ev, ApplicationMessage):
            return Received("application", ev.data)
        if isinstance(ev, ProposalReceived):
            return Received("proposal")
        if not isinstance(ev, CommitApplied):  # pragma: no cover - Event is a closed union
            raise PeerError(f"ours: unexpected event {ev!r}")
        return Received("commit", removed=ev.removed_self)

    def encrypt(self, data: bytes) -> bytes:
        return self.g.encrypt(data)

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        return self.g.export_secret(label, context, length)

    def epoch(self) -> int | None:
        return self.g.epoch

    def epoch_authenticator(self) -> bytes | None:
        return self.g.epoch_authenticator

    def roster(self) -> dict[int, Member]:
        return roster_of_nodes(self.g.tree.to_nodes())

    def ratchet_tree(self) -> tuple[Node | None, ...]:
        return RatchetTreeExtension.from_nodes(self.g.tree.to_nodes()).nodes

    def group_info(self) -> bytes | None:
        return self.g.group_info()

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        self.psks[psk_id] = psk

    def close(self) -> None:
        self.group = None
