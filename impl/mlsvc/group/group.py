"""A member's view of one MLS group (RFC 9420 §11-§13), sans-IO.

Theory of operation. A `Group` holds one `EpochState`. Methods that send return the
bytes of an MLSMessage for the delivery service; `process(bytes)` consumes what the
delivery service delivers and returns an event. Randomness, time and credential
validation come from the `GroupConfig`.

- `Group.create` (§11), `Group.join` (Welcome, §12.4.3.1) and `Group.external_join`
  (§12.4.3.2) make a group.
- `propose_*` (§12.1) send a proposal and cache it; `commit` (§12.4.1) builds a
  Commit, the new epoch's state (kept as the pending commit), a Welcome for new
  members and a GroupInfo; `merge_pending_commit` moves to the new epoch once the
  delivery service confirms the commit.
- `process` authenticates a message through the typed stages of
  `messages.protection`, then caches proposals, applies commits (§12.4.2), or returns
  application data.

Every key a client would draw at random can be passed explicitly instead (the
virtual clients of draft-ietf-mls-virtual-clients-00 choose them): the leaf's
encryption key pair, the signature key pair (via a new `Identity`), the first path
secret of an UpdatePath, the reuse guard of a PrivateMessage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from mlsvc.crypto.labels import decrypt_with_label, encrypt_with_label, expand_with_label
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError, StateError
from mlsvc.group.config import DEFAULT_LIFETIME, GroupConfig, Identity, default_capabilities
from mlsvc.group.events import ApplicationMessage, CommitApplied, Event, ProposalReceived
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.proposals import (
    AppliedProposals,
    ResolvedProposal,
    apply_proposals,
    check_leaf_against_members,
    check_proposal_sender,
    check_psk_id,
)
from mlsvc.group.state import EpochKeys, EpochState
from mlsvc.group.validation import (
    LeafContext,
    fail,
    path_required,
    validate_key_package,
    validate_leaf_node,
)
from mlsvc.messages.codepoints import (
    ContentType,
    LeafNodeSource,
    ProtocolVersion,
    PSKType,
    ResumptionPSKUsage,
    SenderType,
    WireFormat,
)
from mlsvc.messages.commit import Commit, HPKECiphertext, UpdatePath
from mlsvc.messages.extensions import Extension, Extensions, ExternalPub, ExternalSenders
from mlsvc.messages.framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
)
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    ProposalRef,
    ReInit,
    Remove,
    Update,
)
from mlsvc.messages.protection import (
    ReuseGuardSource,
    UnverifiedContent,
    VerifiedContent,
    consume_private_key,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
    verify_signature,
)
from mlsvc.messages.welcome import EncryptedGroupSecrets, GroupSecrets, PathSecret, Welcome
from mlsvc.schedule import key_schedule as ks
from mlsvc.schedule.psk import psk_secret as compute_psk_secret
from mlsvc.schedule.transcript import (
    confirmed_transcript_hash,
    encode_confirmed_input,
    interim_transcript_hash,
)
from mlsvc.tree import math as tm
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.secret_tree import SecretTree
from mlsvc.tree.treekem import (
    TreePrivateKeys,
    apply_path_secret,
    check_path_keys_unused,
    create_update_path,
    derive_node_key_pair,
    merge_update_path,
    path_secrets_along,
    process_update_path,
)
from mlsvc.types import LeafCount, LeafIndex

WELCOME_LABEL = b"Welcome"  # RFC 9420 §12.4.3.1 EncryptWithLabel(init_key, "Welcome", ...)


@dataclass(frozen=True)
class CommitOutput:
    """What `commit` produces: the commit (MLSMessage bytes) for the group, a Welcome
    for the members it adds (None if none), and the new epoch's signed GroupInfo (with
    the ratchet tree and external_pub), built only when first read: encoding the whole
    tree costs O(n) and most commits never publish one."""

    commit: bytes
    welcome: bytes | None
    _group_info: Callable[[], bytes] = field(repr=False, compare=False)

    @property
    def group_info(self) -> bytes:
        return self._group_info()


@dataclass(frozen=True)
class SiblingCommitKeys:
    """What an emulator shares with a sibling emulator that committed from their common
    leaf (draft-ietf-mls-virtual-clients-00 §5.3): the first path secret the sibling
    used, the private key of the new leaf's encryption_key, and the new identity if the
    signature key changed. The engine re-derives the whole path from the path secret
    and checks every public key against the commit."""

    path_secret: bytes
    leaf_private_key: bytes
    identity: Identity | None = None


class SiblingKeySource(Protocol):
    """Given the committed LeafNode (whose extensions carry the DerivationInfo an
    emulator needs), return the keys, or None if this commit is not a sibling's."""

    def __call__(self, leaf_node: LeafNode, /) -> SiblingCommitKeys | None: ...


@dataclass
class _PendingCommit:
    message: bytes
    state: EpochState
    event: CommitApplied


@dataclass
class _StagedCommit:
    """A commit's effect, computed identically by the committer and the receivers."""

    state: EpochState
    applied: AppliedProposals
    joiner_secret: bytes
    psk_ids: list[PreSharedKeyID]
    path_secrets: dict[int, bytes]


class Group:
    """One member's state in one group. See the module docstring."""

    def __init__(self, state: EpochState, config: GroupConfig) -> None:
        self._state = state
        self.config = config
        self._pending: _PendingCommit | None = None
        self.active = True
        self.reinit: ReInit | None = None

    # --- inspection -------------------------------------------------------------------

    @property
    def state(self) -> EpochState:
        return self._state

    @property
    def cipher_suite(self) -> CipherSuite:
        return self._state.cs

    @property
    def group_id(self) -> bytes:
        return self._state.context.group_id

    @property
    def epoch(self) -> int:
        return self._state.context.epoch

    @property
    def context(self) -> GroupContext:
        return self._state.context

    @property
    def tree(self) -> RatchetTree:
        return self._state.tree

    @property
    def own_leaf(self) -> LeafIndex:
        return self._state.own_leaf

    @property
    def epoch_authenticator(self) -> bytes:
        return self._state.secrets.epoch_authenticator

    @property
    def has_pending_commit(self) -> bool:
        return self._pending is not None

    def members(self) -> list[tuple[LeafIndex, LeafNode]]:
        return list(self._state.tree.leaves())

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (§8.5)."""
        return ks.mls_exporter(self._state.cs, self._state.secrets.exporter_secret, label,
                               context, length)

    def _require_active(self) -> None:
        if not self.active:
            raise StateError("this group is no longer active (removed or reinitialized)")

    # --- creation (§11) ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        cs: CipherSuite | int,
        identity: Identity,
        config: GroupConfig | None = None,
        *,
        group_id: bytes | None = None,
        extensions: Extensions = (),
        encryption_key_pair: tuple[bytes, bytes] | None = None,
        capabilities: Capabilities | None = None,
        leaf_extensions: Extensions = (),
        lifetime: Lifetime = DEFAULT_LIFETIME,
        epoch_secret: bytes | None = None,
    ) -> Group:
        """A one-member group at epoch 0 (§11)."""
        cs = get_suite(cs) if isinstance(cs, int) else cs
        config = config or GroupConfig()
        group_id = group_id if group_id is not None else config.rng(cs.nh)
        if encryption_key_pair is None:
            encryption_key_pair = cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
        caps = capabilities or default_capabilities(cs.id, config.supported_extensions,
                                                    tuple(config.proposal_types))
        leaf = LeafNode(
            encryption_key_pair[1], identity.signature_public_key, identity.credential, caps,
            LeafNodeSource.KEY_PACKAGE, lifetime, None, tuple(leaf_extensions),
        ).signed(cs, identity.signature_private_key)
        validate_leaf_node(cs, leaf, LeafContext(LeafNodeSource.KEY_PACKAGE), extensions,
                           None, config)
        tree = RatchetTree.single(cs, leaf)
        context = GroupContext(cs.id, group_id, 0, tree.tree_hash(), b"", tuple(extensions))
        secrets = ks.from_epoch_secret(cs, epoch_secret or config.rng(cs.nh))
        tag = ks.confirmation_tag(cs, secrets.confirmation_key, b"")
        keys = TreePrivateKeys(LeafIndex(0), encryption_key_pair[0], {})
        state = EpochState(
            cs, context, tree, keys, identity,
            interim_transcript_hash(cs, b"", tag), tag,
            EpochKeys.of(secrets, cs, config.additional_epoch_secrets),
            _secret_tree(cs, secrets.encryption_secret, tree.leaf_count, config),
        )
        state.remember_resumption_psk(config.resumption_psk_history)
        return cls(state, config)

    # --- framing helpers ----------------------------------------------------------------

    def _handshake_wire_format(self) -> WireFormat:
        return (WireFormat.MLS_PRIVATE_MESSAGE if self.config.encrypt_handshake
                else WireFormat.MLS_PUBLIC_MESSAGE)

    def _send(
        self, content: FramedContent, wire_format: WireFormat,
        confirmation_tag: bytes | None = None,
        signed: AuthenticatedContent | None = None,
        reuse_guard: ReuseGuardSource | None = None,
    ) -> tuple[bytes, AuthenticatedContent]:
        s = self._state
        ac = signed or sign_content(s.cs, s.identity.signature_private_key, wire_format,
                                    content, s.context, confirmation_tag)
        if wire_format == WireFormat.MLS_PUBLIC_MESSAGE:
            body = protect_public(s.cs, ac, s.secrets.membership_key, s.context)
            return MLSMessage(body).encode(), ac
        priv = protect_private(s.cs, ac, s.secret_tree, s.secrets.sender_data_secret,
                               self.config.rng, padding=self.config.padding,
                               reuse_guard=reuse_guard)
        return MLSMessage(priv).encode(), ac

    def _framed(self, content: Proposal | Commit | bytes, authenticated_data: bytes
                ) -> FramedContent:
        s = self._state
        return FramedContent(s.context.group_id, s.context.epoch, Sender.member(s.own_leaf),
                             authenticated_data, content)

    # --- application messages (§6.3) ------------------------------------------------------

    def encrypt(
        self, data: bytes, authenticated_data: bytes = b"", *,
        reuse_guard: ReuseGuardSource | None = None,
    ) -> bytes:
        """An application message as a PrivateMessage (§6.3)."""
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is pending: merge or clear it before sending")
        if self._state.proposals:
            # §12.4: "A group member that has observed one or more valid proposals within
            # an epoch MUST send a Commit message before sending application data."
            raise StateError("proposals of this epoch are pending: commit them first")
        msg, _ = self._send(self._framed(data, authenticated_data),
                            WireFormat.MLS_PRIVATE_MESSAGE, reuse_guard=reuse_guard)
        return msg

    # --- proposals (§12.1) ---------------------------------------------------------------

    def _propose(self, proposal: Proposal, authenticated_data: bytes) -> bytes:
        self._require_active()
        wire = self._handshake_wire_format()
        msg, ac = self._send(self._framed(proposal, authenticated_data), wire)
        ref = ac.proposal_ref(self._state.cs)
        self._state.proposals[ref] = ResolvedProposal(proposal, Sender.member(self.own_leaf),
                                                      ref)
        return msg

    def propose(self, proposal: Proposal, authenticated_data: bytes = b"") -> bytes:
        """Send any proposal, e.g. of a non-default type the application registered
        (register_proposal_class, GroupConfig.proposal_types)."""
        check_proposal_sender(proposal, Sender.member(self.own_leaf))
        return self._propose(proposal, authenticated_data)

    def propose_add(self, key_package: KeyPackageBundle | KeyPackage,
                    authenticated_data: bytes = b"") -> bytes:
        kp = key_package.key_package if isinstance(key_package, KeyPackageBundle) else (
            key_package)
        if not isinstance(kp, KeyPackage):
            raise StateError("propose_add takes a KeyPackage or KeyPackageBundle")
        return self._propose(Add(kp), authenticated_data)

    def propose_remove(self, leaf: LeafIndex, authenticated_data: bytes = b"") -> bytes:
        return self._propose(Remove(leaf), authenticated_data)

    def propose_update(
        self, *, encryption_key_pair: tuple[bytes, bytes] | None = None,
        identity: Identity | None = None, capabilities: Capabilities | None = None,
        leaf_extensions: Extensions | None = None, authenticated_data: bytes = b"",
    ) -> bytes:
        """An Update (§12.1.2) with a new leaf encryption key (and optionally a new
        signature key / credential via `identity`)."""
        s = self._state
        leaf = self._new_leaf(LeafNodeSource.UPDATE, encryption_key_pair, identity,
                              capabilities, leaf_extensions)
        node, priv = leaf
        s.pending_update_keys[node.encryption_key] = priv
        if identity is not None:
            s.identity = identity
        return self._propose(Update(node), authenticated_data)

    def propose_external_psk(self, psk_id: bytes, authenticated_data: bytes = b"") -> bytes:
        psk = PreSharedKeyID.external(psk_id, self.config.rng(self._state.cs.nh))
        if psk_id not in self.config.external_psks:
            fail("PR-PSK-UNKNOWN", "unknown external PSK")
        return self._propose(PreSharedKey(psk), authenticated_data)

    def propose_resumption_psk(self, epoch: int, authenticated_data: bytes = b"") -> bytes:
        psk = PreSharedKeyID.resumption(ResumptionPSKUsage.APPLICATION, self.group_id, epoch,
                                        self.config.rng(self._state.cs.nh))
        self._resolve_psk(psk)
        return self._propose(PreSharedKey(psk), authenticated_data)

    def propose_reinit(self, group_id: bytes, cipher_suite: int, extensions: Extensions = (),
                       authenticated_data: bytes = b"") -> bytes:
        return self._propose(ReInit(group_id, ProtocolVersion.MLS10, cipher_suite,
                                    tuple(extensions)), authenticated_data)

    def propose_group_context_extensions(self, extensions: Extensions,
                                         authenticated_data: bytes = b"") -> bytes:
        return self._propose(GroupContextExtensions(tuple(extensions)), authenticated_data)

    def _new_leaf(
        self, source: LeafNodeSource, encryption_key_pair: tuple[bytes, bytes] | None,
        identity: Identity | None, capabilities: Capabilities | None,
        leaf_extensions: Extensions | None, *, sign: bool = True,
    ) -> tuple[LeafNode, bytes]:
        s = self._state
        cs = s.cs
        old = s.tree.leaf(s.own_leaf)
        if old is None:  # pragma: no cover - our own leaf is never blank
            raise StateError("own leaf is blank")
        if encryption_key_pair is None:
            encryption_key_pair = cs.kem.derive_key_pair(self.config.rng(cs.kem.nsk))
        ident = identity or s.identity
        leaf = LeafNode(
            encryption_key_pair[1], ident.signature_public_key, ident.credential,
            capabilities or old.capabilities, source, None,
            b"" if source == LeafNodeSource.COMMIT else None,  # set by create_update_path
            old.extensions if leaf_extensions is None else tuple(leaf_extensions),
        )
        if sign:
            leaf = leaf.signed(cs, ident.signature_private_key, s.context.group_id,
                               s.own_leaf)
        return leaf, encryption_key_pair[0]

    # --- PSKs (§8.4) -----------------------------------------------------------------------

    def _resolve_psk(self, psk: PreSharedKeyID) -> bytes:
        if psk.psktype == PSKType.EXTERNAL:
            assert psk.psk_id is not None
            value = self.config.external_psks.get(psk.psk_id)
        else:
            assert psk.psk_group_id is not None and psk.psk_epoch is not None
            value = self._state.resumption_psks.get((psk.psk_group_id, psk.psk_epoch))
        if value is None:
            fail("PR-PSK-UNKNOWN", "a PreSharedKeyID names a PSK this client does not have")
        return value

    def _psk_secret(self, psk_ids: Sequence[PreSharedKeyID]) -> bytes | None:
        if not psk_ids:
            return None
        return compute_psk_secret(self._state.cs,
                                  [(p, self._resolve_psk(p)) for p in psk_ids])

    # --- committing (§12.4.1) ---------------------------------------------------------------

    def commit(
        self,
        proposals: Sequence[Proposal] = (),
        *,
        include_pending: bool = True,
        by_reference: bool = True,
        force_path: bool = False,
        path_secret: bytes | None = None,
        encryption_key_pair: tuple[bytes, bytes] | None = None,
        identity: Identity | None = None,
        capabilities: Capabilities | None = None,
        leaf_extensions: Extensions | None = None,
        authenticated_data: bytes = b"",
        ratchet_tree_in_welcome: bool = True,
        external_pub: bool = True,
        reuse_guard: ReuseGuardSource | None = None,
    ) -> CommitOutput:
        """Build a Commit of the cached proposals of this epoch (by reference, or by value
        with `by_reference=False`) plus `proposals` (by value). The result is held as the
        pending commit until `merge_pending_commit` (§12.4.1: "the committer ... MUST NOT
        apply the new epoch until the commit is confirmed")."""
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is already pending")
        s = self._state
        cs = s.cs
        items: list[ProposalOrRef] = []
        resolved: list[ResolvedProposal] = []
        if include_pending:
            for ref, rp in s.proposals.items():
                items.append(ProposalRef(ref) if by_reference else rp.proposal)
                resolved.append(rp if by_reference else replace(rp, ref=None))
        for p in proposals:
            check_proposal_sender(p, Sender.member(s.own_leaf))
            items.append(p)
            resolved.append(ResolvedProposal(p, Sender.member(s.own_leaf)))
        for rp in resolved:
            if isinstance(rp.proposal, PreSharedKey):
                check_psk_id(cs, rp.proposal.psk)
        applied = apply_proposals(cs, s.tree, s.context.group_id, s.context.extensions,
                                  resolved, s.own_leaf, self.config)
        need_path = force_path or path_required(applied.types, self.config)
        new_ident = identity or s.identity
        path: UpdatePath | None = None
        commit_secret: bytes | None = None
        new_keys = s.keys
        path_secrets: dict[int, bytes] = {}
        tree = applied.tree
        if need_path:
            leaf, leaf_priv = self._new_leaf(LeafNodeSource.COMMIT, encryption_key_pair,
                                             identity, capabilities, leaf_extensions,
                                             sign=False)
            first = path_secret if path_secret is not None else self.config.rng(cs.nh)
            ctx_for = self._provisional_context(applied.extensions)
            result = create_update_path(
                cs, tree, s.own_leaf, leaf, leaf_priv, new_ident.signature_private_key,
                s.context.group_id, ctx_for, [i for i, _ in applied.added], first,
                self.config.rng,
            )
            path, commit_secret = result.update_path, result.commit_secret
            new_keys = result.private_keys
            path_secrets = {int(k): v for k, v in result.path_secrets.items()}
        commit = Commit(tuple(items), path)
        wire = self._handshake_wire_format()
        content = self._framed(commit, authenticated_data)
        signature = content.sign(cs, s.identity.signature_private_key, wire, s.context)
        staged = self._stage(
            applied, tree, new_keys, new_ident, commit_secret, None, wire, content,
            signature, path_secrets,
        )
        tag = staged.state.confirmation_tag
        ac = AuthenticatedContent(wire, content, FramedContentAuthData(signature, tag))
        message, _ = self._send(content, wire, signed=ac, reuse_guard=reuse_guard)

        @functools.cache
        def group_info(ratchet_tree: bool = True) -> GroupInfo:
            return self._group_info(staged.state, ratchet_tree=ratchet_tree,
                                    external_pub=external_pub)

        welcome = None
        if applied.added:
            welcome = self._welcome(staged, group_info(ratchet_tree_in_welcome))
        event = CommitApplied(
            staged.state.context.epoch, Sender.member(s.own_leaf),
            tuple(r.proposal for r in resolved), tuple(i for i, _ in applied.added),
            tuple(applied.removed), authenticated_data, own=True,
            reinit=applied.reinit,
        )
        self._pending = _PendingCommit(message, staged.state, event)
        return CommitOutput(message, welcome, lambda: MLSMessage(group_info()).encode())

    def merge_pending_commit(self) -> CommitApplied:
        """Move to the epoch of our own pending commit (after the DS accepted it)."""
        if self._pending is None:
            raise StateError("no pending commit")
        pending, self._pending = self._pending, None
        self._enter(pending.state, pending.event)
        return pending.event

    def take_epoch_secret(self, label: bytes) -> bytes:
        """Hand over (and delete from the group) an additional epoch secret kept for
        `label` (GroupConfig.additional_epoch_secrets); StateError if already taken."""
        value = self._state.secrets.additional.pop(label, None)
        if value is None:
            raise StateError(f"no epoch secret {label!r} in this epoch (taken or not kept)")
        return value

    def remember_leaf_key(self, private_key: bytes) -> None:
        """Hold the HPKE private key of a leaf an Update may install for our leaf (a
        sibling emulator's Update for the shared leaf, draft-00 §5.4)."""
        s = self._state
        s.pending_update_keys[s.cs.kem.public_key(private_key)] = private_key

    def clear_pending_commit(self) -> None:
        """Drop our pending commit (the DS rejected it, or another commit won)."""
        self._pending = None

    def _enter(self, state: EpochState, event: CommitApplied) -> None:
        self._state = state
        if event.reinit is not None:
            self.reinit = event.reinit
            self.active = False
        if event.removed_self:
            self.active = False

    def _provisional_context(self, extensions: Extensions) -> _ContextFor:
        s = self._state.context
        return _ContextFor(s.cipher_suite, s.group_id, s.epoch + 1,
                           s.confirmed_transcript_hash, extensions)

    def _stage(
        self,
        applied: AppliedProposals,
        tree: RatchetTree,
        keys: TreePrivateKeys,
        identity: Identity,
        commit_secret: bytes | None,
        init_secret: bytes | None,
        wire_format: int,
        content: FramedContent,
        signature: bytes,
        path_secrets: dict[int, bytes],
    ) -> _StagedCommit:
        """The new epoch from a commit (§12.4.2 steps after the path): transcript hash,
        GroupContext, key schedule, confirmation tag, secret tree."""
        s = self._state
        cs = s.cs
        confirmed = confirmed_transcript_hash(
            cs, s.interim_transcript_hash,
            encode_confirmed_input(wire_format, content.encode(), signature))
        context = GroupContext(cs.id, s.context.group_id, s.context.epoch + 1,
                               tree.tree_hash(), confirmed, applied.extensions)
        psk = self._psk_secret(applied.psk_ids)
        init = init_secret if init_secret is not None else s.secrets.init_secret
        secrets = ks.derive_epoch(cs, init, commit_secret, psk, context.encode())
        tag = ks.confirmation_tag(cs, secrets.confirmation_key, confirmed)
        state = EpochState(
            cs, context, tree, keys, identity, interim_transcript_hash(cs, confirmed, tag), tag,
            EpochKeys.of(secrets, cs, self.config.additional_epoch_secrets),
            _secret_tree(cs, secrets.encryption_secret, tree.leaf_count, self.config),
            {}, dict(s.resumption_psks), {},
        )
        state.remember_resumption_psk(self.config.resumption_psk_history)
        return _StagedCommit(state, applied, secrets.joiner_secret, applied.psk_ids,
                             path_secrets)

    # --- GroupInfo and Welcome (§12.4.3) -------------------------------------------------

    def _group_info(self, state: EpochState, *, ratchet_tree: bool, external_pub: bool
                    ) -> GroupInfo:
        cs = state.cs
        exts: list[Extension] = []
        if ratchet_tree:
            exts.append(RatchetTreeExtension.from_nodes(state.tree.to_nodes()).to_extension())
        if external_pub:
            _, pub = ks.external_key_pair(cs, state.secrets.external_secret)
            exts.append(ExternalPub(pub).to_extension())
        return GroupInfo(state.context, tuple(exts), state.confirmation_tag,
                         state.own_leaf).signed(cs, state.identity.signature_private_key)

    def group_info(self, *, ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """The current epoch's signed GroupInfo as an MLSMessage (§12.4.3)."""
        return MLSMessage(self._group_info(self._state, ratchet_tree=ratchet_tree,
                                           external_pub=external_pub)).encode()

    def _welcome(self, staged: _StagedCommit, group_info: GroupInfo) -> bytes:
        """§12.4.3.1: GroupInfo encrypted under the welcome key; GroupSecrets (joiner
        secret, the path secret of the lowest common ancestor, PSK IDs) to each new
        member's init key."""
        cs = staged.state.cs
        welcome_secret = ks.welcome_secret(cs, staged.joiner_secret,
                                           self._psk_secret(staged.psk_ids))
        key = expand_with_label(cs, welcome_secret, b"key", b"", cs.aead.nk)
        nonce = expand_with_label(cs, welcome_secret, b"nonce", b"", cs.aead.nn)
        encrypted_group_info = cs.aead.seal(key, nonce, b"", group_info.encode())
        own = tm.leaf_to_node(staged.state.own_leaf)
        secrets: list[EncryptedGroupSecrets] = []
        for leaf, kp in staged.applied.added:
            path_secret = None
            if staged.path_secrets:
                lca = tm.common_ancestor(own, tm.leaf_to_node(leaf))
                value = staged.path_secrets.get(lca)
                path_secret = PathSecret(value) if value is not None else None
            gs = GroupSecrets(staged.joiner_secret, path_secret, tuple(staged.psk_ids))
            kem_output, ct = encrypt_with_label(cs, kp.init_key, WELCOME_LABEL,
                                                encrypted_group_info, gs.encode(),
                                                self.config.rng)
            secrets.append(EncryptedGroupSecrets(kp.ref(cs), HPKECiphertext(kem_output, ct)))
        return MLSMessage(Welcome(cs.id, tuple(secrets), encrypted_group_info)).encode()

    @classmethod
    def join(
        cls,
        welcome: bytes | Welcome,
        key_package: KeyPackageBundle,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: Sequence[object] | RatchetTree | None = None,
    ) -> Group:
        """Join from a Welcome (§12.4.3.1)."""
        config = config or GroupConfig()
        if isinstance(welcome, bytes):
            body = MLSMessage.decode(welcome).body
            if not isinstance(body, Welcome):
                raise DecodeError("not a Welcome message")
            welcome = body
        kp = key_package.key_package
        cs = get_suite(kp.cipher_suite)
        opened = open_welcome(cs, welcome, kp, key_package.init_private_key,
                              config.external_psks)
        gs, group_info, psk = opened.group_secrets, opened.group_info, opened.psk_secret
        context = group_info.group_context
        if context.cipher_suite != cs.id:
            fail("WEL-SUITE", "GroupInfo cipher suite differs from the Welcome's")
        if config.group_id_in_use(context.group_id):
            fail("WEL-GROUP-ID", "this client is already in a group with that group_id")
        tree = _tree_for_join(cs, group_info, ratchet_tree)
        _validate_joined_tree(cs, tree, context, config)
        signer = tree.leaf(group_info.signer) if group_info.signer < tree.leaf_count else None
        if signer is None:
            fail("WEL-SIGNER-LEAF", "the GroupInfo signer is not a member")
        if not group_info.verify(cs, signer.signature_key):
            fail("WEL-GROUPINFO-SIGNATURE", "GroupInfo signature does not verify")
        own = tree.find_leaf(lambda leaf: leaf == kp.leaf_node)
        if own is None:
            fail("WEL-OWN-LEAF", "our LeafNode is not in the tree")
        secrets = ks.epoch_from_joiner(cs, gs.joiner_secret, psk, context.encode())
        if not cs.verify_mac(secrets.confirmation_key, context.confirmed_transcript_hash,
                             group_info.confirmation_tag):
            fail("CM-CONFIRMATION-TAG", "GroupInfo confirmation tag does not verify")
        keys = TreePrivateKeys(own, key_package.encryption_private_key, {})
        if gs.path_secret is not None:
            lca = tm.common_ancestor(tm.leaf_to_node(own), tm.leaf_to_node(group_info.signer))
            keys = apply_path_secret(cs, tree, keys, lca, gs.path_secret.path_secret)
        state = EpochState(
            cs, context, tree, keys, key_package.identity,
            interim_transcript_hash(cs, context.confirmed_transcript_hash,
                                    group_info.confirmation_tag),
            group_info.confirmation_tag,
            EpochKeys.of(secrets, cs, config.additional_epoch_secrets),
            _secret_tree(cs, secrets.encryption_secret, tree.leaf_count, config),
        )
        state.remember_resumption_psk(config.resumption_psk_history)
        return cls(state, config)

    # --- external join (§12.4.3.2) --------------------------------------------------------

    @classmethod
    def external_join(
        cls,
        group_info: bytes | GroupInfo,
        identity: Identity,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: Sequence[object] | RatchetTree | None = None,
        remove_prior: LeafIndex | None = None,
        external_psk_ids: Sequence[bytes] = (),
        encryption_key_pair: tuple[bytes, bytes] | None = None,
        path_secret: bytes | None = None,
        capabilities: Capabilities | None = None,
        leaf_extensions: Extensions = (),
        authenticated_data: bytes = b"",
    ) -> tuple[Group, bytes]:
        """Join by external commit; returns the new member's group (already in the new
        epoch) and the commit to send. The caller must discard the group if the delivery
        service rejects the commit."""
        config = config or GroupConfig()
        if isinstance(group_info, bytes):
            body = MLSMessage.decode(group_info).body
            if not isinstance(body, GroupInfo):
                raise DecodeError("not a GroupInfo message")
            group_info = body
        context = group_info.group_context
        cs = get_suite(context.cipher_suite)
        tree = _tree_for_join(cs, group_info, ratchet_tree)
        _validate_joined_tree(cs, tree, context, config)
        signer = tree.leaf(group_info.signer) if group_info.signer < tree.leaf_count else None
        if signer is None or not group_info.verify(cs, signer.signature_key):
            fail("WEL-GROUPINFO-SIGNATURE", "GroupInfo signature does not verify")
        ext_pub = ExternalPub.find_in(group_info.extensions)
        if ext_pub is None:
            fail("GI-EXTERNAL-PUB", "GroupInfo has no external_pub extension")
        kem_output, init_secret = ks.external_init_for_joiner(cs, ext_pub.external_pub,
                                                              config.rng)
        proposals: list[Proposal] = [ExternalInit(kem_output)]
        if remove_prior is not None:
            proposals.append(Remove(remove_prior))
        psk_ids = [PreSharedKeyID.external(i, config.rng(cs.nh)) for i in external_psk_ids]
        proposals.extend(PreSharedKey(p) for p in psk_ids)
        # A provisional state for the epoch the GroupInfo describes; we are not a member.
        interim = interim_transcript_hash(cs, context.confirmed_transcript_hash,
                                          group_info.confirmation_tag)
        placeholder = EpochState(
            cs, context, tree, TreePrivateKeys(LeafIndex(0), b"", {}), identity, interim,
            group_info.confirmation_tag,
            EpochKeys(b"", b"", b"", b"", b"", b"", b"", init_secret),
            SecretTree(cs, bytes(cs.nh), tree.leaf_count),
        )
        joiner = cls(placeholder, config)
        resolved = [ResolvedProposal(p, Sender.new_member_commit()) for p in proposals]
        applied = apply_proposals(cs, tree, context.group_id, context.extensions, resolved,
                                  None, config, external=True)
        if encryption_key_pair is None:
            encryption_key_pair = cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
        caps = capabilities or default_capabilities(cs.id, config.supported_extensions,
                                                    tuple(config.proposal_types))
        leaf = LeafNode(encryption_key_pair[1], identity.signature_public_key,
                        identity.credential, caps, LeafNodeSource.COMMIT, None, b"",
                        tuple(leaf_extensions))
        new_tree = applied.tree
        own = new_tree.add_leaf(leaf)
        first = path_secret if path_secret is not None else config.rng(cs.nh)
        result = create_update_path(
            cs, new_tree, own, leaf, encryption_key_pair[0], identity.signature_private_key,
            context.group_id, joiner._provisional_context(applied.extensions), [], first,
            config.rng,
        )
        commit = Commit(tuple(proposals), result.update_path)
        content = FramedContent(context.group_id, context.epoch, Sender.new_member_commit(),
                                authenticated_data, commit)
        wire = WireFormat.MLS_PUBLIC_MESSAGE
        signature = content.sign(cs, identity.signature_private_key, wire, context)
        staged = joiner._stage(applied, new_tree, result.private_keys, identity,
                               result.commit_secret, init_secret, wire, content, signature, {})
        ac = AuthenticatedContent(wire, content, FramedContentAuthData(
            signature, staged.state.confirmation_tag))
        message = MLSMessage(protect_public(cs, ac, None, context)).encode()
        return cls(staged.state, config), message

    # --- receiving (§12.4.2, §6) ----------------------------------------------------------

    def process(
        self, message: bytes | MLSMessage, *, sibling: SiblingKeySource | None = None
    ) -> Event:
        """Authenticate and apply one message from the delivery service.

        A commit sent from our own leaf that is not our pending commit is rejected
        (CM-OWN-COMMIT) unless `sibling` supplies the keys of the emulator that sent it
        (virtual clients: several emulators share one leaf)."""
        self._require_active()
        msg = MLSMessage.decode(message) if isinstance(message, bytes) else message
        body = msg.body
        s = self._state
        if isinstance(body, PublicMessage):
            if body.content.group_id != s.context.group_id:
                fail("MSG-GROUP", "message for another group")
            if body.content.epoch != s.context.epoch:
                fail("CM-EPOCH", f"message of epoch {body.content.epoch}, group is at "
                                 f"{s.context.epoch}")
            if self.config.message_validator is not None:
                self.config.message_validator(s.context, body.content.authenticated_data)
            unverified = unprotect_public(s.cs, body, s.secrets.membership_key, s.context)
        elif isinstance(body, PrivateMessage):
            if body.group_id != s.context.group_id:
                fail("MSG-GROUP", "message for another group")
            if body.epoch != s.context.epoch:
                fail("CM-EPOCH", f"message of epoch {body.epoch}, group is at "
                                 f"{s.context.epoch}")
            if self.config.message_validator is not None:
                self.config.message_validator(s.context, body.authenticated_data)
            unverified = unprotect_private(s.cs, body, s.secret_tree,
                                           s.secrets.sender_data_secret, s.context,
                                           consume=False)
        else:
            raise StateError("process takes PublicMessage or PrivateMessage; use join() for "
                             "a Welcome")
        verified = self._verify(unverified)
        if verified.sender_data is not None:
            consume_private_key(s.secret_tree, verified)
        fc = verified.content.content
        if fc.content_type == ContentType.APPLICATION:
            # a PublicMessage never gets here: unprotect_public refuses application data
            assert isinstance(fc.content, bytes) and verified.sender_data is not None
            return ApplicationMessage(fc.sender.leaf_index, fc.content, fc.authenticated_data,
                                      verified.sender_data.generation)
        if fc.content_type == ContentType.PROPOSAL:
            return self._receive_proposal(verified)
        return self._receive_commit(verified, msg, sibling)

    def _verify(self, unverified: UnverifiedContent) -> VerifiedContent:
        """Find the sender's signature key and verify (§6.1)."""
        s = self._state
        fc = unverified.content.content
        st = fc.sender.sender_type
        if st == SenderType.MEMBER:
            leaf = s.tree.leaf(fc.sender.leaf_index) if (
                fc.sender.leaf_index < s.tree.leaf_count) else None
            if leaf is None:
                fail("MSG-SENDER-MEMBER", f"sender leaf {fc.sender.leaf_index} is blank")
            key = leaf.signature_key
        elif st == SenderType.EXTERNAL:
            senders = ExternalSenders.find_in(s.context.extensions)
            idx = fc.sender.index or 0
            if senders is None or idx >= len(senders.senders):
                fail("MSG-EXTERNAL-SENDER", f"no external sender {idx}")
            key = senders.senders[idx].signature_key
        elif st == SenderType.NEW_MEMBER_COMMIT:
            if not isinstance(fc.content, Commit) or fc.content.path is None:
                fail("CM-NEW-MEMBER-COMMIT-PATH", "external commit without a path")
            key = fc.content.path.leaf_node.signature_key
        else:
            if not isinstance(fc.content, Add):
                fail("PR-SENDER-TYPE", "new_member_proposal senders may only propose Add")
            key = fc.content.key_package.leaf_node.signature_key
        return verify_signature(s.cs, unverified, key, s.context)

    def _receive_proposal(self, verified: VerifiedContent) -> ProposalReceived:
        s = self._state
        fc = verified.content.content
        proposal = fc.content
        assert isinstance(proposal, Proposal)
        check_proposal_sender(proposal, fc.sender)
        if isinstance(proposal, PreSharedKey):
            check_psk_id(s.cs, proposal.psk)
        elif isinstance(proposal, Add):
            # §10.1: a KeyPackage is validated "when received by a group member in an Add"
            validate_key_package(s.cs, proposal.key_package, s.context.extensions, None,
                                 self.config)
        elif isinstance(proposal, Update):
            # §7.3: a LeafNode is validated when received in an Update
            old = s.tree.leaf(fc.sender.leaf_index)
            validate_leaf_node(
                s.cs, proposal.leaf_node,
                LeafContext(LeafNodeSource.UPDATE, s.context.group_id, fc.sender.leaf_index,
                            old),
                s.context.extensions, None, self.config,
                check_lifetime=self.config.check_received_lifetimes)
            check_leaf_against_members(s.tree, proposal.leaf_node, fc.sender.leaf_index, old)
        ref = verified.content.proposal_ref(s.cs)
        s.proposals[ref] = ResolvedProposal(proposal, fc.sender, ref)
        return ProposalReceived(ref, proposal, fc.sender, fc.authenticated_data)

    def _receive_commit(self, verified: VerifiedContent, msg: MLSMessage,
                        sibling: SiblingKeySource | None = None) -> CommitApplied:
        s = self._state
        cs = s.cs
        ac = verified.content
        fc = ac.content
        commit = fc.content
        assert isinstance(commit, Commit)
        st = fc.sender.sender_type
        if st not in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT):
            fail("CM-SENDER-TYPE", f"commit from sender type {st!r}")
        external = st == SenderType.NEW_MEMBER_COMMIT
        sibling_keys: SiblingCommitKeys | None = None
        if not external and fc.sender.leaf_index == s.own_leaf:
            if self._pending is not None and self._pending.message == msg.encode():
                return self.merge_pending_commit()
            if sibling is not None and commit.path is not None:
                sibling_keys = sibling(commit.path.leaf_node)
            if sibling_keys is None:
                fail("CM-OWN-COMMIT", "our own commit, but not the pending one")
        resolved: list[ResolvedProposal] = []
        for item in commit.proposals:
            if isinstance(item, ProposalRef):
                if external:
                    fail("EC-NO-REFERENCES", "external commit with a proposal reference")
                rp = s.proposals.get(item.ref)
                if rp is None:
                    fail("CM-UNKNOWN-REF", "unknown proposal reference")
                resolved.append(rp)
            else:
                check_proposal_sender(item, fc.sender)
                resolved.append(ResolvedProposal(item, fc.sender))
        for rp in resolved:
            if isinstance(rp.proposal, PreSharedKey):
                check_psk_id(cs, rp.proposal.psk)
                self._resolve_psk(rp.proposal.psk)
        committer = None if external else fc.sender.leaf_index
        applied = apply_proposals(cs, s.tree, s.context.group_id, s.context.extensions,
                                  resolved, committer, self.config, external=external)
        if (external or path_required(applied.types, self.config)) and commit.path is None:
            fail("CM-PATH-REQUIRED", "the proposals require a path")
        tree = applied.tree
        if commit.path is not None:
            if not external:
                old_leaf = s.tree.leaf(fc.sender.leaf_index)
                if old_leaf is not None and (
                        old_leaf.encryption_key == commit.path.leaf_node.encryption_key):
                    fail("CM-PATH-LEAF-NEW-KEY", "the committer's leaf keeps its encryption key")
            # §12.4.2: no public key of the UpdatePath appears in the new tree (checked
            # before an external joiner's leaf is placed)
            check_path_keys_unused(tree, commit.path)
        keys = self._adopt_update_keys(s.keys, applied, tree)
        removed_self = s.own_leaf in applied.removed
        commit_secret = None
        init_secret = None
        if external:
            assert applied.external_init is not None and commit.path is not None
            sender = tree.add_leaf(commit.path.leaf_node)
            ext_priv, _ = ks.external_key_pair(cs, s.secrets.external_secret)
            init_secret = ks.external_init_for_member(cs, ext_priv,
                                                      applied.external_init.kem_output)
        else:
            sender = fc.sender.leaf_index
        if commit.path is not None:
            leaf = commit.path.leaf_node
            validate_leaf_node(cs, leaf, LeafContext(LeafNodeSource.COMMIT, s.context.group_id,
                                                     sender), applied.extensions, None,
                               self.config, check_lifetime=False)
            if external and applied.removed:
                # §12.2: the resync leaf meets the criteria of an Update of the removed leaf
                old = s.tree.leaf(applied.removed[0])
                if old is not None and (
                    not self.config.credential_successor(old.credential, leaf.credential)
                    or old.encryption_key == leaf.encryption_key
                ):
                    fail("EC-RESYNC-CREDENTIAL",
                         "the resync leaf is not an acceptable Update of the removed leaf")
            check_leaf_against_members(tree, leaf, sender,
                                       None if external else s.tree.leaf(sender))
            if sibling_keys is not None:
                commit_secret, keys = _apply_sibling_path(cs, tree, sender, commit.path,
                                                          sibling_keys)
            elif not removed_self:
                commit_secret, keys = process_update_path(
                    cs, tree, sender, commit.path, keys,
                    self._provisional_context(applied.extensions),
                    [i for i, _ in applied.added],
                )
        if removed_self:
            event = CommitApplied(s.context.epoch + 1, fc.sender,
                                  tuple(r.proposal for r in resolved),
                                  tuple(i for i, _ in applied.added), tuple(applied.removed),
                                  fc.authenticated_data, removed_self=True)
            self.active = False
            return event
        identity = s.identity
        if sibling_keys is not None and sibling_keys.identity is not None:
            identity = sibling_keys.identity
        staged = self._stage(applied, tree, keys, identity, commit_secret, init_secret,
                             ac.wire_format, fc, ac.auth.signature, {})
        if ac.auth.confirmation_tag is None or not cs.verify_mac(
                staged.state.secrets.confirmation_key,
                staged.state.context.confirmed_transcript_hash, ac.auth.confirmation_tag):
            fail("CM-CONFIRMATION-TAG", "confirmation tag does not verify")
        event = CommitApplied(
            staged.state.context.epoch, fc.sender, tuple(r.proposal for r in resolved),
            tuple(i for i, _ in applied.added), tuple(applied.removed), fc.authenticated_data,
            reinit=applied.reinit,
        )
        self._pending = None
        self._enter(staged.state, event)
        return event

    def _adopt_update_keys(self, keys: TreePrivateKeys, applied: AppliedProposals,
                           tree: RatchetTree) -> TreePrivateKeys:
        """If another member committed our Update, our leaf now holds its key (§12.1.2)."""
        s = self._state
        if s.own_leaf not in applied.updated:
            return keys
        leaf = tree.leaf(s.own_leaf)
        if leaf is None:  # pragma: no cover
            return keys
        priv = s.pending_update_keys.get(leaf.encryption_key)
        if priv is None:
            raise StateError("our leaf was updated with a key we do not hold")
        new = keys.copy()
        new.leaf_private_key = priv
        return new


@dataclass(frozen=True)
class OpenedWelcome:
    group_secrets: GroupSecrets
    group_info: GroupInfo
    psk_secret: bytes | None


def open_welcome(
    cs: CipherSuite,
    welcome: Welcome,
    key_package: KeyPackage,
    init_private_key: bytes,
    external_psks: Mapping[bytes, bytes],
) -> OpenedWelcome:
    """§12.4.3.1, first steps: find our EncryptedGroupSecrets, decrypt them, resolve the
    PSKs, derive the welcome key and decrypt the GroupInfo (not yet verified)."""
    if welcome.cipher_suite != key_package.cipher_suite:
        fail("WEL-SUITE", "Welcome and KeyPackage cipher suites differ")
    entry = welcome.find_secrets(key_package.ref(cs))
    if entry is None:
        fail("WEL-NO-SECRETS", "no EncryptedGroupSecrets for our KeyPackage")
    gs = GroupSecrets.decode(decrypt_with_label(
        cs, init_private_key, WELCOME_LABEL, welcome.encrypted_group_info,
        entry.encrypted_group_secrets.kem_output, entry.encrypted_group_secrets.ciphertext,
    ))
    psks: list[tuple[PreSharedKeyID, bytes]] = []
    for psk_id in gs.psks:
        value = (external_psks.get(psk_id.psk_id) if psk_id.psktype == PSKType.EXTERNAL
                 and psk_id.psk_id is not None else None)
        if value is None:
            fail("WEL-PSK", "the Welcome needs a PSK this client does not have")
        psks.append((psk_id, value))
    psk = compute_psk_secret(cs, psks) if psks else None
    welcome_secret = ks.welcome_secret(cs, gs.joiner_secret, psk)
    key = expand_with_label(cs, welcome_secret, b"key", b"", cs.aead.nk)
    nonce = expand_with_label(cs, welcome_secret, b"nonce", b"", cs.aead.nn)
    group_info = GroupInfo.decode(cs.aead.open(key, nonce, b"", welcome.encrypted_group_info))
    return OpenedWelcome(gs, group_info, psk)


@dataclass(frozen=True)
class _ContextFor:
    """The provisional GroupContext of §12.4.2 as a function of the new tree hash."""

    cipher_suite: int
    group_id: bytes
    epoch: int
    confirmed_transcript_hash: bytes
    extensions: Extensions

    def __call__(self, tree_hash: bytes) -> bytes:
        return GroupContext(self.cipher_suite, self.group_id, self.epoch, tree_hash,
                            self.confirmed_transcript_hash, self.extensions).encode()


def _apply_sibling_path(
    cs: CipherSuite, tree: RatchetTree, sender: LeafIndex, path: UpdatePath,
    keys: SiblingCommitKeys,
) -> tuple[bytes, TreePrivateKeys]:
    """Merge a sibling emulator's UpdatePath for our shared leaf, re-deriving every node
    key from the first path secret (RFC 9420 §7.4) and checking it against the path."""
    if cs.kem.public_key(keys.leaf_private_key) != path.leaf_node.encryption_key:
        fail("TREEKEM-PUBKEY-MISMATCH", "sibling leaf key does not match the committed leaf")
    fdp = merge_update_path(cs, tree, sender, path)
    secrets, commit_secret = path_secrets_along(cs, keys.path_secret, len(fdp))
    path_keys = {}
    for node, secret, upn in zip(fdp, secrets, path.nodes, strict=True):
        priv, pub = derive_node_key_pair(cs, secret)
        if pub != upn.encryption_key:
            fail("TREEKEM-PUBKEY-MISMATCH", f"sibling path secret does not derive node {node}")
        path_keys[node] = priv
    return commit_secret, TreePrivateKeys(sender, keys.leaf_private_key, path_keys)


def _secret_tree(cs: CipherSuite, encryption_secret: bytes, leaf_count: LeafCount,
                 config: GroupConfig) -> SecretTree:
    return SecretTree(cs, encryption_secret, leaf_count,
                      max_forward_distance=config.max_forward_distance,
                      out_of_order_tolerance=config.out_of_order_tolerance)


def _tree_for_join(
    cs: CipherSuite, group_info: GroupInfo, ratchet_tree: Sequence[object] | RatchetTree | None
) -> RatchetTree:
    if isinstance(ratchet_tree, RatchetTree):
        return ratchet_tree.copy()
    if ratchet_tree is not None:
        return RatchetTree.from_nodes(cs, ratchet_tree)  # type: ignore[arg-type]
    ext = RatchetTreeExtension.find_in(group_info.extensions)
    if ext is None:
        fail("WEL-TREE-MISSING", "no ratchet_tree extension and no tree given")
    return RatchetTree.from_nodes(cs, ext.nodes)


def _validate_joined_tree(cs: CipherSuite, tree: RatchetTree, context: GroupContext,
                          config: GroupConfig) -> None:
    """§12.4.3.1: tree hash, parent hashes, every leaf valid."""
    if tree.tree_hash() != context.tree_hash:
        fail("WEL-TREE-HASH", "the ratchet tree does not match the GroupContext's tree hash")
    tree.validate()  # parent hashes, unmerged leaves, unique parent keys (TREE-* checks)
    seen_sig: set[bytes] = set()
    seen_enc: set[bytes] = set()
    for i, leaf in tree.leaves():
        gid = None if leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE else context.group_id
        idx = None if gid is None else i
        validate_leaf_node(cs, leaf, LeafContext(leaf.leaf_node_source, gid, idx),
                           context.extensions, None, config, check_lifetime=False)
        if leaf.signature_key in seen_sig:
            fail("LN-UNIQUE-SIGNATURE-KEY", f"signature key of leaf {i} repeats")
        if leaf.encryption_key in seen_enc:
            fail("LN-UNIQUE-ENCRYPTION-KEY", f"encryption key of leaf {i} repeats")
        seen_sig.add(leaf.signature_key)
        seen_enc.add(leaf.encryption_key)

