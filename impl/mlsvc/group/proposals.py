"""Proposal lists: validation (RFC 9420 §12.2) and application (§12.3), shared by the
committer and every receiver so both compute the same provisional tree.

Theory of operation. A commit's proposals are first resolved (references looked up in
the epoch's cache) into `ResolvedProposal`s, each with the sender that proposed it.
`apply_proposals` validates the list as a whole (regular or external commit rules),
then applies it in the RFC's order: GroupContextExtensions, Updates, Removes, Adds
(in list order), and collects PSK IDs, the ExternalInit and a ReInit. The tree passed
in is copied, never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlsvc.crypto.suites import CipherSuite
from mlsvc.group.config import GroupConfig
from mlsvc.group.validation import (
    DEFAULT_PROPOSAL_TYPES,
    LeafContext,
    fail,
    validate_group_context_extensions,
    validate_key_package,
    validate_leaf_node,
)
from mlsvc.messages.codepoints import (
    LeafNodeSource,
    ProposalType,
    ProtocolVersion,
    PSKType,
    SenderType,
)
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.framing import Sender
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ReInit,
    Remove,
    Update,
)
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex


@dataclass(frozen=True)
class ResolvedProposal:
    proposal: Proposal
    sender: Sender
    ref: bytes | None = None  # None when committed by value


@dataclass
class MemberIndex:
    """Counts over the members' leaves for the §7.3 uniqueness and credential checks,
    built once per commit so validating n Adds costs O(n), not O(n^2). Counts (rather
    than an intersection of capabilities) let `check` leave out the leaf an Update
    replaces: §7.3 compares a leaf with the *other* members."""

    signature_keys: dict[bytes, LeafIndex] = field(default_factory=dict)
    encryption_keys: dict[bytes, LeafIndex] = field(default_factory=dict)
    credential_types: dict[int, int] = field(default_factory=dict)  # type -> members using it
    supporters: dict[int, int] = field(default_factory=dict)  # type -> members listing it
    leaves: dict[LeafIndex, LeafNode] = field(default_factory=dict)

    @classmethod
    def from_tree(cls, tree: RatchetTree) -> MemberIndex:
        index = cls()
        for i, leaf in tree.leaves():
            index.add(i, leaf)
        return index

    def add(self, i: LeafIndex, leaf: LeafNode) -> None:
        self.leaves[i] = leaf
        self.signature_keys[leaf.signature_key] = i
        self.encryption_keys[leaf.encryption_key] = i
        t = leaf.credential.credential_type
        self.credential_types[t] = self.credential_types.get(t, 0) + 1
        for c in set(leaf.capabilities.credentials):
            self.supporters[c] = self.supporters.get(c, 0) + 1

    def replace(self, i: LeafIndex, leaf: LeafNode) -> None:
        """Leaf i becomes `leaf` (an applied Update)."""
        old = self.leaves.pop(i)
        if self.signature_keys.get(old.signature_key) == i:
            del self.signature_keys[old.signature_key]
        if self.encryption_keys.get(old.encryption_key) == i:
            del self.encryption_keys[old.encryption_key]
        self.credential_types[old.credential.credential_type] -= 1
        for c in set(old.capabilities.credentials):
            self.supporters[c] -= 1
        self.add(i, leaf)

    def check(self, leaf: LeafNode, skip: LeafIndex | None = None) -> None:
        """§7.3 against every member but `skip` (the leaf being replaced): the leaf's
        credential type is supported by all of them, every credential type they use is
        in the leaf's capabilities, and signature_key and encryption_key are unique."""
        old = self.leaves.get(skip) if skip is not None else None
        others = len(self.leaves) - (old is not None)
        old_caps = set(old.capabilities.credentials) if old is not None else set()
        t = leaf.credential.credential_type
        if self.supporters.get(t, 0) - (t in old_caps) < others:
            fail("LN-CRED-TYPE-SUPPORTED", f"credential type {t} not supported by all members")
        old_type = old.credential.credential_type if old is not None else None
        for used, count in self.credential_types.items():
            if count - (used == old_type) > 0 and used not in leaf.capabilities.credentials:
                fail("LN-CRED-TYPE-SUPPORTED", f"credential type {used} in use, not supported")
        owner = self.signature_keys.get(leaf.signature_key)
        if owner is not None and owner != skip:
            fail("LN-UNIQUE-SIGNATURE-KEY", f"signature key already used by member {owner}")
        owner = self.encryption_keys.get(leaf.encryption_key)
        if owner is not None and owner != skip:
            fail("LN-UNIQUE-ENCRYPTION-KEY", f"encryption key already used by member {owner}")


def check_leaf_against_members(
    tree: RatchetTree, leaf: LeafNode, skip: LeafIndex, previous: LeafNode | None = None
) -> None:
    """The §7.3 checks of one LeafNode against the other members (all but `skip`). Key
    uniqueness uses the tree's key indexes (O(1)). The credential-type rules scan the
    members (O(n)) unless `previous`, the leaf this one replaces, has the same
    credential type and lists no credential type that this leaf does not list
    (previous's credential capabilities are a subset of this leaf's). Then neither
    half can fail: every member supported that type when `previous` was accepted (and
    every later member had to support it), and every type in use was in previous's
    capabilities, hence in this leaf's."""
    for i in tree.leaves_with_signature_key(leaf.signature_key):
        if i != skip:
            fail("LN-UNIQUE-SIGNATURE-KEY", f"signature key already used by member {i}")
    for x in tree.nodes_with_encryption_key(leaf.encryption_key):
        if x % 2 == 0 and x // 2 != skip:
            fail("LN-UNIQUE-ENCRYPTION-KEY", f"encryption key already used by member {x // 2}")
    t = leaf.credential.credential_type
    own_caps = leaf.capabilities.credentials
    if previous is not None and previous.credential.credential_type == t and set(
            previous.capabilities.credentials) <= set(own_caps):  # previous ⊆ this leaf
        return
    for i, other in tree.leaves():
        if i == skip:
            continue
        if t not in other.capabilities.credentials:
            fail("LN-CRED-TYPE-SUPPORTED", f"member {i} does not support credential type {t}")
        if other.credential.credential_type not in own_caps:
            fail("LN-CRED-TYPE-SUPPORTED",
                 f"credential type {other.credential.credential_type} in use, not supported")


@dataclass
class AppliedProposals:
    """The provisional state after a proposal list (§12.3)."""

    tree: RatchetTree
    extensions: Extensions
    added: list[tuple[LeafIndex, KeyPackage]]
    removed: list[LeafIndex]
    updated: list[LeafIndex]
    psk_ids: list[PreSharedKeyID]
    external_init: ExternalInit | None
    reinit: ReInit | None
    types: list[int]


def _leaf_check(
    cs: CipherSuite, leaf: LeafNode, where: LeafContext, extensions: Extensions,
    members: MemberIndex, config: GroupConfig, skip: LeafIndex | None,
) -> None:
    validate_leaf_node(cs, leaf, where, extensions, None, config,
                       check_lifetime=config.check_received_lifetimes)
    members.check(leaf, skip)


def apply_proposals(
    cs: CipherSuite,
    tree: RatchetTree,
    group_id: bytes,
    extensions: Extensions,
    resolved: Sequence[ResolvedProposal],
    committer: LeafIndex | None,
    config: GroupConfig,
    *,
    external: bool = False,
) -> AppliedProposals:
    """Validate (§12.2) and apply (§12.3). `committer` is None for an external commit."""
    proposals = [r.proposal for r in resolved]
    types = [p.proposal_type for p in proposals]
    if external:
        _validate_external_list(proposals, config)
    else:
        _validate_regular_list(resolved, committer, tree)

    new_tree = tree.copy()
    gce = [p for p in proposals if isinstance(p, GroupContextExtensions)]
    new_extensions = gce[0].extensions if gce else extensions
    changed = bool(gce)
    for ptype, rule in config.proposal_types.items():  # non-default types (ProposalTypeRule)
        of_type = [p for p in proposals if p.proposal_type == ptype]
        if of_type and rule.apply is not None:
            new_extensions = rule.apply(new_extensions, of_type)
            changed = True

    has_updates = any(isinstance(p, Update) for p in proposals)
    has_adds = any(isinstance(p, Add) for p in proposals)
    # built only when a leaf is checked: an empty commit stays O(path), not O(n)
    members = MemberIndex.from_tree(tree) if has_updates else MemberIndex()
    updated: list[LeafIndex] = []
    for r in resolved:
        if isinstance(r.proposal, Update):
            sender = r.sender.leaf_index
            old = tree.leaf(sender)
            if old is None:  # pragma: no cover - the sender was checked non-blank
                fail("PR-UPDATE-SENDER", "Update from a blank leaf")
            _leaf_check(cs, r.proposal.leaf_node,
                        LeafContext(LeafNodeSource.UPDATE, group_id, sender, old),
                        new_extensions, members, config, skip=sender)
            new_tree.update_leaf(sender, r.proposal.leaf_node)
            members.replace(sender, r.proposal.leaf_node)
            updated.append(sender)
    removed: list[LeafIndex] = []
    for p in proposals:
        if isinstance(p, Remove):
            new_tree.remove_leaf(p.removed)
            removed.append(p.removed)
    if changed:
        # §12.1.7: the members that remain (not those removed by this commit) support the
        # new extensions; members added below are checked against them as KeyPackages
        validate_group_context_extensions(new_extensions, new_tree,
                                          config.supported_extensions)
    if has_adds and (removed or updated or not has_updates):
        members = MemberIndex.from_tree(new_tree)
    added: list[tuple[LeafIndex, KeyPackage]] = []
    for p in proposals:
        if isinstance(p, Add):
            kp = p.key_package
            if kp.leaf_node.signature_key in members.signature_keys:
                fail("PL-ADD-EXISTING", "Add of a client already in the group")
            validate_key_package(cs, kp, new_extensions, None, config)
            members.check(kp.leaf_node)
            index = new_tree.add_leaf(kp.leaf_node)
            members.add(index, kp.leaf_node)
            added.append((index, kp))
    if config.proposal_list_validator is not None:
        config.proposal_list_validator(extensions, new_extensions, proposals,
                                       list(tree.leaves()))
    psk_ids = [p.psk for p in proposals if isinstance(p, PreSharedKey)]
    ext_inits = [p for p in proposals if isinstance(p, ExternalInit)]
    reinits = [p for p in proposals if isinstance(p, ReInit)]
    return AppliedProposals(
        new_tree, new_extensions, added, removed, updated, psk_ids,
        ext_inits[0] if ext_inits else None, reinits[0] if reinits else None, types,
    )


def _validate_regular_list(
    resolved: Sequence[ResolvedProposal], committer: LeafIndex | None, tree: RatchetTree
) -> None:
    """§12.2, regular commits."""
    touched: set[LeafIndex] = set()
    add_keys: set[bytes] = set()
    psk_ids: set[bytes] = set()
    n_gce = 0
    proposals = [r.proposal for r in resolved]
    for r in resolved:
        p = r.proposal
        if isinstance(p, Update):
            if r.sender.sender_type != SenderType.MEMBER:
                fail("PR-UPDATE-SENDER", "Update from a non-member sender")
            if committer is not None and r.sender.leaf_index == committer:
                fail("PL-UPDATE-BY-COMMITTER", "the committer cannot commit its own Update")
            leaf = r.sender.leaf_index
            if leaf in touched:
                fail("PL-SAME-LEAF", f"several Update/Remove proposals for leaf {leaf}")
            touched.add(leaf)
        elif isinstance(p, Remove):
            if p.removed >= tree.leaf_count or tree.leaf(p.removed) is None:
                fail("PR-REMOVE-BLANK", f"Remove of blank or absent leaf {p.removed}")
            if committer is not None and p.removed == committer:
                fail("PL-REMOVE-COMMITTER", "the committer cannot remove itself")
            if p.removed in touched:
                fail("PL-SAME-LEAF", f"several Update/Remove proposals for leaf {p.removed}")
            touched.add(p.removed)
        elif isinstance(p, Add):
            key = p.key_package.leaf_node.signature_key
            if key in add_keys:
                fail("PL-DUP-ADD", "two Adds for the same client (same signature key)")
            add_keys.add(key)
        elif isinstance(p, PreSharedKey):
            encoded = p.psk.encode()
            if encoded in psk_ids:
                fail("PL-DUP-PSK", "two PreSharedKey proposals with the same PreSharedKeyID")
            psk_ids.add(encoded)
        elif isinstance(p, GroupContextExtensions):
            n_gce += 1
            if n_gce > 1:
                fail("PL-DUP-GCE", "several GroupContextExtensions proposals")
        elif isinstance(p, ReInit):
            if len(proposals) > 1:
                fail("PL-REINIT-ALONE", "ReInit together with other proposals")
            if p.version < ProtocolVersion.MLS10:
                fail("PR-REINIT-VERSION", f"ReInit to protocol version {p.version}")
        elif isinstance(p, ExternalInit):
            fail("PL-EXTERNAL-INIT", "ExternalInit in a regular commit")
        if p.proposal_type not in DEFAULT_PROPOSAL_TYPES:
            _check_proposal_type_supported(p.proposal_type, tree, touched)


def _check_proposal_type_supported(
    ptype: int, tree: RatchetTree, exempt: Iterable[LeafIndex]
) -> None:
    skip = set(exempt)
    for i, leaf in tree.leaves():
        if i not in skip and ptype not in leaf.capabilities.proposals:
            fail("PL-UNSUPPORTED-TYPE", f"member {i} does not support proposal 0x{ptype:04x}")


def _validate_external_list(proposals: Sequence[Proposal], config: GroupConfig) -> None:
    """§12.2, external commits."""
    n_init = sum(1 for p in proposals if isinstance(p, ExternalInit))
    if n_init != 1:
        fail("EC-ONE-EXTERNAL-INIT", f"{n_init} ExternalInit proposals")
    if sum(1 for p in proposals if isinstance(p, Remove)) > 1:
        fail("EC-AT-MOST-ONE-REMOVE", "more than one Remove in an external commit")
    for p in proposals:
        rule = config.proposal_types.get(p.proposal_type)
        if rule is not None and rule.external_commit_allowed:
            continue
        if not isinstance(p, ExternalInit | Remove | PreSharedKey):
            fail("EC-ONLY-ALLOWED", f"proposal type 0x{p.proposal_type:04x} in an external "
                                    "commit")
    seen: set[bytes] = set()
    for p in proposals:
        if isinstance(p, PreSharedKey):
            encoded = p.psk.encode()
            if encoded in seen:
                fail("PL-DUP-PSK", "two PreSharedKey proposals with the same PreSharedKeyID")
            seen.add(encoded)


def check_proposal_sender(proposal: Proposal, sender: Sender) -> None:
    """§12.1.8 / Table 7: which senders may send which proposal types."""
    st = sender.sender_type
    t = proposal.proposal_type
    if st == SenderType.NEW_MEMBER_PROPOSAL and t != ProposalType.ADD:
        fail("PR-SENDER-TYPE", "new_member_proposal senders may only propose Add")
    if st == SenderType.EXTERNAL and t in (ProposalType.UPDATE, ProposalType.EXTERNAL_INIT):
        fail("PR-SENDER-TYPE", "external senders cannot propose Update or ExternalInit")
    if st == SenderType.MEMBER and t == ProposalType.EXTERNAL_INIT:
        fail("PR-SENDER-TYPE", "ExternalInit is only sent inside external commits")


def check_psk_id(cs: CipherSuite, psk: PreSharedKeyID) -> None:
    """§8.4: psk_nonce has length KDF.Nh; §8.6: only application-usage resumption PSKs
    in ordinary commits (reinit/branch ones belong to the Welcome of a new group)."""
    if len(psk.psk_nonce) != cs.nh:
        fail("PR-PSK-NONCE", f"psk_nonce of {len(psk.psk_nonce)} bytes, want {cs.nh}")
    if psk.psktype == PSKType.RESUMPTION and psk.usage is not None and psk.usage != 1:
        fail("PR-PSK-USAGE", "resumption PSK with usage other than application in a commit")
