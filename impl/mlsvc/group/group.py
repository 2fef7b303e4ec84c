"""A member's view of one MLS group (RFC 9420 §11-§13), sans-IO.

Theory of operation. A `Group` holds one `EpochState`. Methods that send return the
bytes of an MLSMessage for the delivery service; `process(bytes)` consumes what the
delivery service delivers and returns an event. Randomness, time and credential
validation come from the `GroupConfig`.

- `Group.create` (§11), `Group.join` (Welcome, §12.4.3.1) and `Group.external_join`
  (§12.4.3.2) make a group. `Group.follow_creation` and `Group.follow_external_join`
  rebuild the state a sibling emulator (a virtual client sharing our leaf) reached by
  creating a group or joining one externally, from the keys both derived.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import StateError
from mlsvc.group.config import DEFAULT_LIFETIME, GroupConfig, Identity
from mlsvc.group.create import create_state, follow_creation_state
from mlsvc.group.epoch import (
    ProvisionalContext,
    build_welcome,
    group_info_for,
    resolve_psk,
    stage_commit,
)
from mlsvc.group.events import ApplicationMessage, CommitApplied, Event
from mlsvc.group.join import (
    ExternalJoinOptions,
    PriorGroup,
    TreeSource,
    external_init,
    follow_external_commit,
    join_by_external_commit,
    join_from_welcome,
)
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.proposals import (
    ResolvedProposal,
    apply_proposals,
    check_proposal_sender,
    check_psk_id,
)
from mlsvc.group.receive import (
    SiblingCommitKeys,
    SiblingKeySource,
    receive_commit,
    receive_proposal,
    verify_sender,
)
from mlsvc.group.state import EpochState
from mlsvc.group.validation import (
    fail,
    path_required,
)
from mlsvc.messages.codepoints import (
    ContentType,
    LeafNodeSource,
    ProtocolVersion,
    ResumptionPSKUsage,
    SenderType,
    WireFormat,
)
from mlsvc.messages.commit import Commit, UpdatePath
from mlsvc.messages.extensions import Extensions
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
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
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
    consume_private_key,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
)
from mlsvc.messages.welcome import Welcome
from mlsvc.schedule import key_schedule as ks
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.secret_tree import RatchetType
from mlsvc.tree.treekem import (
    create_update_path,
)
from mlsvc.types import LeafIndex


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


@dataclass
class _PendingCommit:
    message: bytes
    state: EpochState
    event: CommitApplied


class Group:
    """One member's state in one group. See the module docstring."""

    def __init__(self, state: EpochState, config: GroupConfig) -> None:
        self._state = state
        self.config = config
        self._pending: _PendingCommit | None = None
        self.active = True
        self.reinit: ReInit | None = None
        # the verified GroupInfo of the Welcome this member joined from (Group.join)
        self.welcome_group_info: GroupInfo | None = None

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
        """A one-member group at epoch 0 (§11). `epoch_secret` (KDF.Nh bytes of the
        suite, ParameterError otherwise) replaces the random initial epoch secret: a
        virtual client derives it so that sibling emulators can rebuild the epoch
        (`follow_creation`; draft-ietf-mls-virtual-clients latest §5.4). The creator
        leaf (source key_package) takes `encryption_key_pair` (private, public),
        the identity's signature key and credential, `capabilities`,
        `leaf_extensions` and `lifetime`; what is not given is drawn from config.rng."""
        cs = get_suite(cs) if isinstance(cs, int) else cs
        config = config or GroupConfig()
        state = create_state(cs, identity, config, group_id=group_id, extensions=extensions,
                             encryption_key_pair=encryption_key_pair,
                             capabilities=capabilities, leaf_extensions=leaf_extensions,
                             lifetime=lifetime, epoch_secret=epoch_secret)
        return cls(state, config)

    @classmethod
    def follow_creation(
        cls,
        group_info: bytes | GroupInfo,
        identity: Identity,
        leaf_private_key: bytes,
        epoch_secret: bytes,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: TreeSource = None,
    ) -> Group:
        """The creator's epoch 0, for a client that holds the creator leaf's keys
        (`identity`, the private key of its encryption_key) and the `epoch_secret` it
        was created with: a sibling emulator of a virtual client that created the group
        (draft-ietf-mls-virtual-clients latest §5.4). The GroupInfo is verified as a
        joiner does, then against the epoch the secret gives (its confirmation tag,
        CM-CONFIRMATION-TAG); the result is the creator's state, the same leaf 0
        (mlsvc.group.create.follow_creation_state lists the checks)."""
        config = config or GroupConfig()
        state = follow_creation_state(group_info, identity, leaf_private_key, epoch_secret,
                                      config, ratchet_tree)
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
        retain_key: bool = False,
    ) -> tuple[bytes, AuthenticatedContent]:
        s = self._state
        ac = signed or sign_content(s.cs, s.identity.signature_private_key, wire_format,
                                    content, s.context, confirmation_tag)
        if wire_format == WireFormat.MLS_PUBLIC_MESSAGE:
            body = protect_public(s.cs, ac, s.secrets.membership_key, s.context)
            return MLSMessage(body).encode(), ac
        priv = protect_private(s.cs, ac, s.secret_tree, s.secrets.sender_data_secret,
                               self.config.rng, padding=self.config.padding,
                               reuse_guard=reuse_guard, retain_key=retain_key)
        return MLSMessage(priv).encode(), ac

    def _framed(self, content: Proposal | Commit | bytes, authenticated_data: bytes
                ) -> FramedContent:
        s = self._state
        return FramedContent(s.context.group_id, s.context.epoch, Sender.member(s.own_leaf),
                             authenticated_data, content)

    # --- application messages (§6.3) ------------------------------------------------------

    def encrypt(
        self, data: bytes, authenticated_data: bytes = b"", *,
        reuse_guard: ReuseGuardSource | None = None, retain_key: bool = False,
    ) -> bytes:
        """An application message as a PrivateMessage (§6.3). `retain_key` keeps the
        generation's key until `release_sent_key` (emulators sharing a leaf may need to
        read a sibling's message on the same generation, draft-00 §5.9)."""
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is pending: merge or clear it before sending")
        if self._state.proposals:
            # §12.4: "A group member that has observed one or more valid proposals within
            # an epoch MUST send a Commit message before sending application data."
            raise StateError("proposals of this epoch are pending: commit them first")
        msg, _ = self._send(self._framed(data, authenticated_data),
                            WireFormat.MLS_PRIVATE_MESSAGE, reuse_guard=reuse_guard,
                            retain_key=retain_key)
        return msg

    def release_sent_key(self, generation: int) -> bool:
        """Delete the retained key of an application generation we sent (§9.2)."""
        return self._state.secret_tree.release_key(self.own_leaf, RatchetType.APPLICATION,
                                                   generation)

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
            # the new signature key signs only once the Update is committed (§12.1.2):
            # until then the tree still holds the old one
            s.pending_update_identities[node.encryption_key] = identity
        return self._propose(Update(node), authenticated_data)

    def propose_external_psk(self, psk_id: bytes, authenticated_data: bytes = b"") -> bytes:
        psk = PreSharedKeyID.external(psk_id, self.config.rng(self._state.cs.nh))
        if psk_id not in self.config.external_psks:
            fail("PR-PSK-UNKNOWN", "unknown external PSK")
        return self._propose(PreSharedKey(psk), authenticated_data)

    def propose_resumption_psk(self, epoch: int, authenticated_data: bytes = b"") -> bytes:
        psk = PreSharedKeyID.resumption(ResumptionPSKUsage.APPLICATION, self.group_id, epoch,
                                        self.config.rng(self._state.cs.nh))
        resolve_psk(self._state, self.config, psk)
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
        welcome_extensions: Extensions = (),
    ) -> CommitOutput:
        """Build a Commit of the cached proposals of this epoch (by reference, or by value
        with `by_reference=False`) plus `proposals` (by value). The result is held as the
        pending commit until `merge_pending_commit` (§12.4.1: "the committer ... MUST NOT
        apply the new epoch until the commit is confirmed"). `welcome_extensions` go into
        the GroupInfo of the Welcome only, never into the one published for external
        joins (e.g. draft-ietf-mls-virtual-clients' NewEmulatorClientState)."""
        return self._commit(
            proposals, include_pending=include_pending, by_reference=by_reference,
            force_path=force_path, path_secret=path_secret,
            encryption_key_pair=encryption_key_pair, identity=identity,
            capabilities=capabilities, leaf_extensions=leaf_extensions,
            authenticated_data=authenticated_data,
            ratchet_tree_in_welcome=ratchet_tree_in_welcome, external_pub=external_pub,
            reuse_guard=reuse_guard, linking_psk=None, welcome_extensions=welcome_extensions,
        )

    def _commit(
        self,
        proposals: Sequence[Proposal],
        *,
        include_pending: bool,
        by_reference: bool,
        force_path: bool,
        path_secret: bytes | None,
        encryption_key_pair: tuple[bytes, bytes] | None,
        identity: Identity | None,
        capabilities: Capabilities | None,
        leaf_extensions: Extensions | None,
        authenticated_data: bytes,
        ratchet_tree_in_welcome: bool,
        external_pub: bool,
        reuse_guard: ReuseGuardSource | None,
        linking_psk: PreSharedKeyID | None,
        welcome_extensions: Extensions = (),
    ) -> CommitOutput:
        """`commit`, plus the reinit/branch PSK of a new group's first commit (§11.2,
        §11.3): the only place a resumption PSK of usage reinit or branch may appear."""
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is already pending")
        s = self._state
        cs = s.cs
        items: list[ProposalOrRef] = []
        resolved: list[ResolvedProposal] = []
        own_update_superseded = False
        if include_pending:
            for ref, rp in s.proposals.items():
                if (isinstance(rp.proposal, Update) and rp.sender.sender_type ==
                        SenderType.MEMBER and rp.sender.leaf_index == s.own_leaf):
                    # §12.2: a committer must not commit its own Update; the path it
                    # sends instead refreshes its leaf (forced below)
                    own_update_superseded = True
                    continue
                items.append(ProposalRef(ref) if by_reference else rp.proposal)
                resolved.append(rp if by_reference else replace(rp, ref=None))
        for p in proposals:
            check_proposal_sender(p, Sender.member(s.own_leaf))
            items.append(p)
            resolved.append(ResolvedProposal(p, Sender.member(s.own_leaf)))
        for rp in resolved:
            if isinstance(rp.proposal, PreSharedKey):
                check_psk_id(cs, rp.proposal.psk)
        if linking_psk is not None:
            if s.context.epoch != 0:
                raise StateError("a reinit/branch PSK belongs to a new group's first commit")
            linking = PreSharedKey(linking_psk)
            items.append(linking)
            resolved.append(ResolvedProposal(linking, Sender.member(s.own_leaf)))
        applied = apply_proposals(cs, s.tree, s.context.group_id, s.context.extensions,
                                  resolved, s.own_leaf, self.config)
        need_path = (force_path or own_update_superseded
                     or path_required(applied.types, self.config))
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
        staged = stage_commit(s, self.config, applied, tree, new_keys, new_ident,
                              commit_secret, None, wire, content, signature, path_secrets)
        tag = staged.state.confirmation_tag
        ac = AuthenticatedContent(wire, content, FramedContentAuthData(signature, tag))
        message, _ = self._send(content, wire, signed=ac, reuse_guard=reuse_guard)

        @functools.cache
        def group_info(ratchet_tree: bool = True, for_welcome: bool = False) -> GroupInfo:
            return group_info_for(staged.state, ratchet_tree=ratchet_tree,
                                  external_pub=external_pub,
                                  extensions=welcome_extensions if for_welcome else ())

        welcome = None
        if applied.added:
            welcome = build_welcome(staged, group_info(ratchet_tree_in_welcome, True),
                                    self.config.rng)
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

    def remember_leaf_key(self, private_key: bytes, identity: Identity | None = None) -> None:
        """Hold the HPKE private key of a leaf an Update may install for our leaf (a
        sibling emulator's Update for the shared leaf, draft-00 §5.4), and the identity
        whose signature key that Update carries, adopted if the Update is committed."""
        s = self._state
        public = s.cs.kem.public_key(private_key)
        s.pending_update_keys[public] = private_key
        if identity is not None:
            s.pending_update_identities[public] = identity

    @property
    def pending_commit(self) -> tuple[bytes, EpochState] | None:
        """Our pending commit (the MLSMessage) and the epoch it leads to, or None."""
        p = self._pending
        return None if p is None else (p.message, p.state)

    def restore_pending_commit(self, message: bytes, state: EpochState) -> None:
        """Make a saved pending commit pending again (group.serialize.load)."""
        if self._pending is not None:
            raise StateError("a commit is already pending")
        event = CommitApplied(state.context.epoch, Sender.member(self.own_leaf), (), (), (),
                              b"", own=True)
        self._pending = _PendingCommit(message, state, event)

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

    def _provisional_context(self, extensions: Extensions) -> ProvisionalContext:
        return ProvisionalContext.after(self._state.context, extensions)

    def group_info(self, *, ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """The current epoch's signed GroupInfo as an MLSMessage (§12.4.3)."""
        return MLSMessage(group_info_for(self._state, ratchet_tree=ratchet_tree,
                                         external_pub=external_pub)).encode()

    @classmethod
    def join(
        cls,
        welcome: bytes | Welcome,
        key_package: KeyPackageBundle,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: TreeSource = None,
        resumption_from: Group | None = None,
    ) -> Group:
        """Join from a Welcome (§12.4.3.1); `ratchet_tree` if it came out of band;
        `resumption_from` our state in the group a reinit or branch Welcome refers to
        (§11.2, §11.3), whose resumption PSKs and membership it is checked against."""
        config = config or GroupConfig()
        prior = resumption_from._prior() if resumption_from is not None else None
        state, group_info = join_from_welcome(welcome, key_package, config, ratchet_tree,
                                              prior)
        group = cls(state, config)
        group.welcome_group_info = group_info
        return group

    def _prior(self) -> PriorGroup:
        s = self._state
        return PriorGroup(s.context.group_id, s.context.epoch, s.context.cipher_suite,
                          dict(s.resumption_psks), self.reinit,
                          tuple(leaf.credential for _, leaf in s.tree.leaves()))

    @classmethod
    def reinit_group(
        cls,
        old: Group,
        key_packages: Sequence[KeyPackageBundle | KeyPackage],
        identity: Identity | None = None,
        config: GroupConfig | None = None,
    ) -> tuple[Group, CommitOutput]:
        """§11.2 step 3: the new group a committed ReInit asks for, with the other
        members added and the reinit resumption PSK linking it to the old group. The
        new group's first commit is pending (merge it once the DS accepts it)."""
        if old.reinit is None:
            raise StateError("the old group's last commit carried no ReInit")
        r = old.reinit
        return cls._linked(old, ResumptionPSKUsage.REINIT, get_suite(r.cipher_suite),
                           r.group_id, r.extensions, key_packages, identity, config)

    @classmethod
    def branch(
        cls,
        old: Group,
        key_packages: Sequence[KeyPackageBundle | KeyPackage],
        group_id: bytes | None = None,
        extensions: Extensions = (),
        identity: Identity | None = None,
        config: GroupConfig | None = None,
    ) -> tuple[Group, CommitOutput]:
        """§11.3: a subgroup of `old` with the same version and cipher suite, linked by
        a branch resumption PSK of old's current epoch."""
        old._require_active()
        cfg = config or old.config
        gid = group_id if group_id is not None else cfg.rng(old.cipher_suite.nh)
        return cls._linked(old, ResumptionPSKUsage.BRANCH, old.cipher_suite, gid, extensions,
                           key_packages, identity, config)

    @classmethod
    def _linked(
        cls, old: Group, usage: ResumptionPSKUsage, cs: CipherSuite, group_id: bytes,
        extensions: Extensions, key_packages: Sequence[KeyPackageBundle | KeyPackage],
        identity: Identity | None, config: GroupConfig | None,
    ) -> tuple[Group, CommitOutput]:
        cfg = config or old.config
        ident = identity or old.state.identity
        new = cls.create(cs, ident, cfg, group_id=group_id, extensions=extensions)
        old_key = (old.group_id, old.epoch)
        new.state.resumption_psks[old_key] = old.state.resumption_psks[old_key]
        psk = PreSharedKeyID.resumption(usage, old.group_id, old.epoch, cfg.rng(cs.nh))
        adds = [Add(k.key_package if isinstance(k, KeyPackageBundle) else k)
                for k in key_packages]
        out = new._commit(
            adds, include_pending=False, by_reference=False, force_path=False,
            path_secret=None, encryption_key_pair=None, identity=None, capabilities=None,
            leaf_extensions=None, authenticated_data=b"", ratchet_tree_in_welcome=True,
            external_pub=True, reuse_guard=None, linking_psk=psk,
        )
        return new, out

    @classmethod
    def external_join(
        cls,
        group_info: bytes | GroupInfo,
        identity: Identity,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: TreeSource = None,
        remove_prior: LeafIndex | None = None,
        external_psk_ids: Sequence[bytes] = (),
        encryption_key_pair: tuple[bytes, bytes] | None = None,
        path_secret: bytes | None = None,
        capabilities: Capabilities | None = None,
        leaf_extensions: Extensions = (),
        authenticated_data: bytes = b"",
        external_init_seed: bytes | None = None,
    ) -> tuple[Group, bytes]:
        """Join by external commit (§12.4.3.2); returns the new member's group (already
        in the new epoch) and the commit to send. Discard the group if the delivery
        service rejects the commit. `external_init_seed` fixes the ExternalInit's
        ephemeral key (DeriveKeyPair(seed)) so that sibling emulators can follow the
        commit (`follow_external_join`; DRAFT-00-PROFILE P17)."""
        config = config or GroupConfig()
        options = ExternalJoinOptions(remove_prior, tuple(external_psk_ids),
                                      encryption_key_pair, path_secret, capabilities,
                                      tuple(leaf_extensions), authenticated_data,
                                      external_init_seed)
        state, message = join_by_external_commit(group_info, identity, config, ratchet_tree,
                                                 options)
        return cls(state, config), message

    @staticmethod
    def external_init(group_info: bytes | GroupInfo, seed: bytes) -> tuple[bytes, bytes]:
        """(kem_output, init_secret) of an external commit into the epoch of
        `group_info` whose ExternalInit key is DeriveKeyPair(seed): what
        `external_join(..., external_init_seed=seed)` then uses, known beforehand (to
        carry init_secret in the LeafNode). `seed` may have any length; RFC 9180 §7.1.3
        asks for at least Nsk bytes of entropy (mlsvc.group.join.external_init)."""
        return external_init(group_info, seed)

    @classmethod
    def follow_external_join(
        cls,
        group_info: bytes | GroupInfo,
        commit: bytes,
        identity: Identity,
        keys: SiblingCommitKeys,
        external_init_seed: bytes | None = None,
        config: GroupConfig | None = None,
        *,
        ratchet_tree: TreeSource = None,
        init_secret: bytes | None = None,
    ) -> Group:
        """The group a sibling emulator joined by `commit` (an external commit into the
        epoch of `group_info`), rebuilt from the keys this emulator derived for the same
        operation: the same epoch as the joiner's. Give exactly one of
        `external_init_seed` (draft-00: the ExternalInit must be the encapsulation the
        seed gives) and `init_secret` (the later text: the init_secret the joiner
        carried, proven by the confirmation tag); ParameterError otherwise
        (mlsvc.group.join.follow_external_commit)."""
        config = config or GroupConfig()
        state = follow_external_commit(group_info, commit, identity, keys.path_secret,
                                       keys.leaf_private_key, external_init_seed, config,
                                       ratchet_tree, init_secret=init_secret)
        return cls(state, config)

    # --- receiving (§12.4.2, §6) ----------------------------------------------------------

    def process(
        self, message: bytes | MLSMessage, *, sibling: SiblingKeySource | None = None,
        retain_own_key: bool = False,
    ) -> Event:
        """Authenticate and apply one message from the delivery service.

        A commit sent from our own leaf that is not our pending commit is rejected
        (CM-OWN-COMMIT) unless `sibling` supplies the keys of the emulator that sent it
        (virtual clients: several emulators share one leaf). `retain_own_key` keeps the
        key of a PrivateMessage from our own leaf until `release_sent_key`, so a second
        message of a sibling on the same generation stays readable (an eventually
        consistent DS, DRAFT-00-PROFILE P20)."""
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
        verified = verify_sender(s, unverified)
        if verified.sender_data is not None and not (
                retain_own_key and verified.sender_data.leaf_index == s.own_leaf):
            consume_private_key(s.secret_tree, verified)
        fc = verified.content.content
        if fc.content_type == ContentType.APPLICATION:
            # a PublicMessage never gets here: unprotect_public refuses application data
            assert isinstance(fc.content, bytes) and verified.sender_data is not None
            return ApplicationMessage(fc.sender.leaf_index, fc.content, fc.authenticated_data,
                                      verified.sender_data.generation,
                                      verified.sender_data.reuse_guard,
                                      verified.key_schedule_nonce or b"")
        if fc.content_type == ContentType.PROPOSAL:
            return receive_proposal(s, self.config, verified)
        if (fc.sender.sender_type == SenderType.MEMBER and fc.sender.leaf_index == s.own_leaf
                and self._pending is not None and self._pending.message == msg.encode()):
            return self.merge_pending_commit()  # our own commit, confirmed by the DS
        received = receive_commit(s, self.config, verified, sibling)
        self._pending = None
        if received.state is None:
            self.active = False  # removed from the group
        else:
            self._enter(received.state, received.event)
        return received.event
