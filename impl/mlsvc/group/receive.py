"""Receiving handshake messages (RFC 9420 §6.1, §12.1, §12.4.2): the sender's
signature, proposal validation and caching, and commit processing into the next epoch.

Theory of operation. `Group.process` authenticates the framing (membership tag or
AEAD), then calls `verify_sender`, then `receive_proposal` or `receive_commit`. The
latter works on copies and returns the next EpochState without touching the current
one, so a rejected commit leaves the member exactly where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mlsvc.checks import fail
from mlsvc.errors import StateError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.epoch import (
    ProvisionalContext,
    check_confirmation_tag,
    resolve_psk,
    stage_commit,
)
from mlsvc.group.events import CommitApplied, ProposalReceived
from mlsvc.group.proposals import (
    AppliedProposals,
    ResolvedProposal,
    apply_proposals,
    check_leaf_against_members,
    check_proposal_sender,
    check_psk_id,
)
from mlsvc.group.state import EpochState
from mlsvc.group.validation import (
    LeafContext,
    path_required,
    validate_key_package,
    validate_leaf_node,
)
from mlsvc.messages.codepoints import LeafNodeSource, SenderType
from mlsvc.messages.commit import Commit
from mlsvc.messages.extensions import ExternalSenders
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.proposals import Add, PreSharedKey, Proposal, ProposalRef, Update
from mlsvc.messages.protection import UnverifiedContent, VerifiedContent, verify_signature
from mlsvc.schedule import key_schedule as ks
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.treekem import (
    TreePrivateKeys,
    apply_own_update_path,
    check_path_keys_unused,
    process_update_path,
)


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


@dataclass(frozen=True)
class ReceivedCommit:
    """The next epoch's state (None if the commit removed us) and the event."""

    state: EpochState | None
    event: CommitApplied


def verify_sender(s: EpochState, unverified: UnverifiedContent) -> VerifiedContent:
    """Find the sender's signature key and verify (§6.1)."""
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


def receive_proposal(s: EpochState, config: GroupConfig, verified: VerifiedContent
                     ) -> ProposalReceived:
    """§12.1: validate a received proposal and cache it for a commit of this epoch."""
    fc = verified.content.content
    proposal = fc.content
    assert isinstance(proposal, Proposal)
    check_proposal_sender(proposal, fc.sender)
    if isinstance(proposal, PreSharedKey):
        check_psk_id(s.cs, proposal.psk)
    elif isinstance(proposal, Add):
        # §10.1: a KeyPackage is validated "when received by a group member in an Add"
        validate_key_package(s.cs, proposal.key_package, s.context.extensions, None,
                             config)
    elif isinstance(proposal, Update):
        # §7.3: a LeafNode is validated when received in an Update
        old = s.tree.leaf(fc.sender.leaf_index)
        validate_leaf_node(
            s.cs, proposal.leaf_node,
            LeafContext(LeafNodeSource.UPDATE, s.context.group_id, fc.sender.leaf_index,
                        old),
            s.context.extensions, None, config,
            check_lifetime=config.check_received_lifetimes)
        check_leaf_against_members(s.tree, proposal.leaf_node, fc.sender.leaf_index, old)
    ref = verified.content.proposal_ref(s.cs)
    s.proposals[ref] = ResolvedProposal(proposal, fc.sender, ref)
    return ProposalReceived(ref, proposal, fc.sender, fc.authenticated_data)


def receive_commit(s: EpochState, config: GroupConfig, verified: VerifiedContent,
                   sibling: SiblingKeySource | None = None) -> ReceivedCommit:
    """§12.4.2: validate a commit from another member (or an external joiner) and
    compute the next epoch. A commit from our own leaf needs `sibling` (CM-OWN-COMMIT).
    Nothing in `s` changes; the caller enters the returned state."""
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
            resolve_psk(s, config, rp.proposal.psk)
    committer = None if external else fc.sender.leaf_index
    applied = apply_proposals(cs, s.tree, s.context.group_id, s.context.extensions,
                              resolved, committer, config, external=external)
    if (external or path_required(applied.types, config)) and commit.path is None:
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
    keys = adopt_update_keys(s, s.keys, applied, tree)
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
                           config, check_lifetime=False)
        if external and applied.removed:
            # §12.2: the resync leaf meets the criteria of an Update of the removed leaf
            old = s.tree.leaf(applied.removed[0])
            if old is not None and (
                not config.credential_successor(old.credential, leaf.credential)
                or old.encryption_key == leaf.encryption_key
            ):
                fail("EC-RESYNC-CREDENTIAL",
                     "the resync leaf is not an acceptable Update of the removed leaf")
        check_leaf_against_members(tree, leaf, sender,
                                   None if external else s.tree.leaf(sender))
        if sibling_keys is not None:
            commit_secret, keys = apply_own_update_path(
                cs, tree, sender, commit.path, sibling_keys.path_secret,
                sibling_keys.leaf_private_key)
        elif not removed_self:
            commit_secret, keys = process_update_path(
                cs, tree, sender, commit.path, keys,
                ProvisionalContext.after(s.context, applied.extensions),
                [i for i, _ in applied.added],
            )
    if removed_self:
        event = CommitApplied(s.context.epoch + 1, fc.sender,
                              tuple(r.proposal for r in resolved),
                              tuple(i for i, _ in applied.added), tuple(applied.removed),
                              fc.authenticated_data, removed_self=True)
        return ReceivedCommit(None, event)
    identity = adopted_identity(s, applied, tree)
    if sibling_keys is not None and sibling_keys.identity is not None:
        identity = sibling_keys.identity
    staged = stage_commit(s, config, applied, tree, keys, identity, commit_secret,
                          init_secret, ac.wire_format, fc, ac.auth.signature, {})
    check_confirmation_tag(staged, ac.auth.confirmation_tag)
    event = CommitApplied(
        staged.state.context.epoch, fc.sender, tuple(r.proposal for r in resolved),
        tuple(i for i, _ in applied.added), tuple(applied.removed), fc.authenticated_data,
        reinit=applied.reinit,
    )
    return ReceivedCommit(staged.state, event)


def adopt_update_keys(s: EpochState, keys: TreePrivateKeys, applied: AppliedProposals,
                      tree: RatchetTree) -> TreePrivateKeys:
    """If another member committed our Update, our leaf now holds its key (§12.1.2)."""
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


def adopted_identity(s: EpochState, applied: AppliedProposals, tree: RatchetTree) -> Identity:
    """Our identity in the next epoch: the one our committed Update carries, if another
    member committed an Update of our leaf that changed the signature key (§12.1.2)."""
    if s.own_leaf not in applied.updated:
        return s.identity
    leaf = tree.leaf(s.own_leaf)
    if leaf is None:  # pragma: no cover
        return s.identity
    return s.pending_update_identities.get(leaf.encryption_key, s.identity)
