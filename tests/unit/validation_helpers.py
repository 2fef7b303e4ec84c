"""Shared helpers of the test_validation_* files (no tests here).

They build small groups of our own clients and craft the bad inputs of the
validation tests: RFC 9420 §6 framed content signed with a member's key and MACed
with the epoch's membership key (so a semantically bad commit passes framing and
signature checks and reaches the check under test), external commits signed by the
joiner (§12.4.3.2), and Welcomes whose GroupSecrets / GroupInfo are re-encrypted
after tampering (§12.4.3.1). Every random value comes from a seeded source.

`check_of(action, *groups)` runs `action`, expects a ValidationError and checks
that the watched groups' state (epoch, epoch_authenticator, tree hash, context,
proposal cache, pending commit) did not change; it returns the check ID so a test
reads `assert check_of(...) == "LN-SIGNATURE"`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from mlsvc.crypto.labels import decrypt_with_label, encrypt_with_label, expand_with_label
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import ValidationError
from mlsvc.group.config import DEFAULT_LIFETIME, GroupConfig, Identity, default_capabilities
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.codepoints import LeafNodeSource, SenderType, WireFormat
from mlsvc.messages.commit import Commit, HPKECiphertext
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.framing import (
    AuthenticatedContent,
    Content,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
)
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import (
    Capabilities,
    LeafNode,
    Lifetime,
    Node,
    RatchetTreeExtension,
)
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.welcome import EncryptedGroupSecrets, GroupSecrets, Welcome
from mlsvc.schedule import key_schedule as ks
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex

SUITE = 1
CS = get_suite(SUITE)
NOW = 1_700_000_000  # the fixed clock of every test client (seconds since 1970)
PUBLIC = WireFormat.MLS_PUBLIC_MESSAGE
WELCOME_LABEL = b"Welcome"  # RFC 9420 §12.4.3.1 EncryptWithLabel(init_key, "Welcome", ...)




def config(name: str, **kw: Any) -> GroupConfig:
    """A client's config: seeded rng, clock fixed at NOW, plus `kw`."""
    return replace(GroupConfig(rng=SeededRandom(name.encode()), clock=lambda: NOW), **kw)


def identity(name: str, suite: int = SUITE) -> Identity:
    cs = get_suite(suite)
    return Identity.basic(name.encode(), cs.signature.derive_key_pair(
        hashlib.sha512(b"sig " + name.encode()).digest()))


def hpke_pair(name: str, suite: int = SUITE) -> tuple[bytes, bytes]:
    return get_suite(suite).kem.derive_key_pair(hashlib.sha512(b"hpke " + name.encode()).digest())


def key_package(name: str, suite: int = SUITE, cfg: GroupConfig | None = None,
                **kw: Any) -> KeyPackageBundle:
    """A valid KeyPackage of client `name` (keyword arguments go to create_key_package)."""
    return create_key_package(get_suite(suite), identity(name, suite), cfg or config(name), **kw)


def resign_key_package(kp: KeyPackage, name: str, suite: int = SUITE, **changes: Any
                       ) -> KeyPackage:
    """`kp` with `changes`, signed again by client `name` (§10: KeyPackageTBS)."""
    return replace(kp, **changes).signed(get_suite(suite), identity(name, suite)
                                         .signature_private_key)


def flip(data: bytes, at: int = 0) -> bytes:
    """`data` with one bit flipped (a garbage signature, tag or hash)."""
    b = bytearray(data)
    b[at] ^= 1
    return bytes(b)


def make_group(
    n: int = 3,
    *,
    suite: int = SUITE,
    configs: Mapping[int, GroupConfig] | None = None,
    extensions: Extensions = (),
    lifetime: Lifetime = DEFAULT_LIFETIME,
    force_path: bool = True,
    **kw: Any,
) -> list[Group]:
    """Members m0..m{n-1}: m0 creates the group and adds the others in one commit
    (with an UpdatePath by default, so parent nodes exist). `kw` goes to every
    member's config, `configs` overrides one member's config."""
    cfgs = [(configs or {}).get(i) or config(f"m{i}", **kw) for i in range(n)]
    cs = get_suite(suite)

    def caps(cfg: GroupConfig) -> Capabilities:
        return default_capabilities(suite, cfg.supported_extensions)

    alice = Group.create(cs, identity("m0", suite), cfgs[0], group_id=b"validation group",
                         extensions=extensions, lifetime=lifetime)
    bundles = [create_key_package(cs, identity(f"m{i}", suite), cfgs[i],
                                  capabilities=caps(cfgs[i]), lifetime=lifetime)
               for i in range(1, n)]
    members = [alice]
    if bundles:
        for b in bundles:
            alice.propose_add(b)
        out = alice.commit(force_path=force_path)
        alice.merge_pending_commit()
        assert out.welcome is not None
        members += [Group.join(out.welcome, b, cfgs[i + 1]) for i, b in enumerate(bundles)]
    for g in members[1:]:
        assert g.epoch_authenticator == alice.epoch_authenticator
    return members


@dataclass(frozen=True)
class Snapshot:
    epoch: int
    epoch_authenticator: bytes
    tree_hash: bytes
    context: bytes
    proposals: frozenset[bytes]
    pending: bool
    active: bool


def snapshot(g: Group) -> Snapshot:
    return Snapshot(g.epoch, g.epoch_authenticator, g.tree.tree_hash(), g.context.encode(),
                    frozenset(g.state.proposals), g.has_pending_commit, g.active)


def check_of(action: Callable[[], object], *watched: Group) -> str:
    """Run `action`; it must raise ValidationError and leave the state of every group
    in `watched` unchanged. Returns the check ID."""
    before = [snapshot(g) for g in watched]
    with pytest.raises(ValidationError) as err:
        action()
    assert [snapshot(g) for g in watched] == before, "a rejected input changed the state"
    return err.value.check_id


# --- framing (§6) ---------------------------------------------------------------------


def forge(
    g: Group,
    content: Content,
    *,
    sender: Sender | None = None,
    signer: bytes | None = None,
    epoch: int | None = None,
    group_id: bytes | None = None,
    confirmation_tag: bytes | None = None,
    signature: bytes | None = None,
    authenticated_data: bytes = b"",
) -> tuple[bytes, AuthenticatedContent]:
    """A PublicMessage carrying `content` in g's current epoch (§6.2): signed over
    FramedContentTBS with `signer` (default: g's own signature key) and, for a member
    sender, MACed with g's membership key, so it passes the framing checks. A commit
    gets an all-zero confirmation tag unless one is given (checks that run before the
    tag is verified still fire). Returns the MLSMessage bytes and the
    AuthenticatedContent (whose proposal_ref a later commit can use)."""
    s = g.state
    cs = s.cs
    sender = sender or Sender.member(g.own_leaf)
    fc = FramedContent(s.context.group_id if group_id is None else group_id,
                       s.context.epoch if epoch is None else epoch, sender,
                       authenticated_data, content)
    context = s.context if sender.signs_with_group_context else None
    if isinstance(content, Commit) and confirmation_tag is None:
        confirmation_tag = bytes(cs.nh)
    if signature is None:
        signature = fc.sign(cs, signer or s.identity.signature_private_key, PUBLIC, context)
    ac = AuthenticatedContent(PUBLIC, fc, FramedContentAuthData(signature, confirmation_tag))
    tag = None
    if sender.sender_type == SenderType.MEMBER:
        tag = ks.membership_tag(cs, s.secrets.membership_key, ac.tbm(context))
    return MLSMessage(PublicMessage(fc, ac.auth, tag)).encode(), ac


def forge_proposal(g: Group, proposal: Content, **kw: Any) -> tuple[bytes, bytes]:
    """A proposal message from g (see `forge`) and its ProposalRef (§5.2)."""
    msg, ac = forge(g, proposal, **kw)
    return msg, ac.proposal_ref(g.cipher_suite)


def public_message(data: bytes) -> PublicMessage:
    body = MLSMessage.decode(data).body
    assert isinstance(body, PublicMessage)
    return body


def private_message(data: bytes) -> PrivateMessage:
    body = MLSMessage.decode(data).body
    assert isinstance(body, PrivateMessage)
    return body


def real_commit(g: Group, **kw: Any) -> tuple[Commit, bytes]:
    """A commit g's own engine builds (then dropped from g's pending state): the
    Commit struct and its confirmation tag, to be tampered with and re-framed."""
    out = g.commit(**kw)
    g.clear_pending_commit()
    pm = public_message(out.commit)
    commit = pm.content.content
    assert isinstance(commit, Commit) and pm.auth.confirmation_tag is not None
    return commit, pm.auth.confirmation_tag


def member_leaf(g: Group, leaf: LeafIndex | None = None) -> LeafNode:
    node = g.tree.leaf(g.own_leaf if leaf is None else leaf)
    assert node is not None
    return node


def leaf_for(
    g: Group,
    source: LeafNodeSource,
    *,
    leaf_index: LeafIndex | None = None,
    signer: Identity | None = None,
    encryption_key: bytes | None = None,
    **changes: Any,
) -> LeafNode:
    """A LeafNode like g's own leaf with `source` (update or commit: signed with
    g's group_id and `leaf_index`; key_package: no group context) and `changes`,
    signed by `signer` (default g's identity)."""
    old = member_leaf(g)
    ident = signer or g.state.identity
    leaf = replace(
        old, leaf_node_source=source,
        lifetime=DEFAULT_LIFETIME if source == LeafNodeSource.KEY_PACKAGE else None,
        parent_hash=b"" if source == LeafNodeSource.COMMIT else None,
        encryption_key=encryption_key or hpke_pair(f"leaf {source} {g.own_leaf}")[1],
        signature_key=ident.signature_public_key, credential=ident.credential,
    )
    leaf = replace(leaf, **changes)
    if source == LeafNodeSource.KEY_PACKAGE:
        return leaf.signed(g.cipher_suite, ident.signature_private_key)
    index = g.own_leaf if leaf_index is None else leaf_index
    return leaf.signed(g.cipher_suite, ident.signature_private_key, g.group_id, index)


# --- Welcome and GroupInfo (§12.4.3) -----------------------------------------------------


def group_info_of(data: bytes) -> GroupInfo:
    body = MLSMessage.decode(data).body
    assert isinstance(body, GroupInfo)
    return body


def welcome_of(data: bytes) -> Welcome:
    body = MLSMessage.decode(data).body
    assert isinstance(body, Welcome)
    return body


def tree_nodes(gi: GroupInfo) -> tuple[Node | None, ...]:
    ext = RatchetTreeExtension.find_in(gi.extensions)
    assert ext is not None
    return ext.nodes


def resign_group_info(
    gi: GroupInfo,
    signed_by: Identity,
    cs: CipherSuite = CS,
    *,
    nodes: Sequence[Node | None] | None = None,
    rehash: bool = True,
    **changes: Any,
) -> GroupInfo:
    """`gi` with `changes`, a new ratchet_tree extension `nodes` (and, with `rehash`,
    the GroupContext's tree_hash set to that tree's hash), signed again by `signed_by`
    (§12.4.3 GroupInfoTBS)."""
    if nodes is not None:
        tree_ext = RatchetTreeExtension(tuple(nodes)).to_extension()
        exts = tuple(tree_ext if e.extension_type == tree_ext.extension_type else e
                     for e in gi.extensions)
        gi = replace(gi, extensions=exts)
        if rehash:
            tree_hash = RatchetTree.from_nodes(cs, list(nodes)).tree_hash()
            gi = replace(gi, group_context=replace(gi.group_context, tree_hash=tree_hash))
    return replace(gi, **changes).signed(cs, signed_by.signature_private_key)


def rewrap_welcome(
    welcome: bytes,
    joiner: KeyPackageBundle,
    *,
    group_info: Callable[[GroupInfo], GroupInfo] | None = None,
    secrets: Callable[[GroupSecrets], GroupSecrets] | None = None,
    psk_secret: bytes | None = None,
    cs: CipherSuite = CS,
) -> bytes:
    """Open the Welcome as `joiner` would (§12.4.3.1), apply `group_info` to the
    GroupInfo and `secrets` to the GroupSecrets, and encrypt both again (the GroupInfo
    under the welcome key of the new joiner_secret, the GroupSecrets to the joiner's
    init key with the new encrypted_group_info as context)."""
    w = welcome_of(welcome)
    entry = w.find_secrets(joiner.key_package.ref(cs))
    assert entry is not None
    egs = entry.encrypted_group_secrets
    gs = GroupSecrets.decode(decrypt_with_label(
        cs, joiner.init_private_key, WELCOME_LABEL, w.encrypted_group_info,
        egs.kem_output, egs.ciphertext))

    def key_nonce(joiner_secret: bytes) -> tuple[bytes, bytes]:
        secret = ks.welcome_secret(cs, joiner_secret, psk_secret)
        return (expand_with_label(cs, secret, b"key", b"", cs.aead.nk),
                expand_with_label(cs, secret, b"nonce", b"", cs.aead.nn))

    key, nonce = key_nonce(gs.joiner_secret)
    gi = GroupInfo.decode(cs.aead.open(key, nonce, b"", w.encrypted_group_info))
    new_gi = group_info(gi) if group_info else gi
    new_gs = secrets(gs) if secrets else gs
    key, nonce = key_nonce(new_gs.joiner_secret)
    egi = cs.aead.seal(key, nonce, b"", new_gi.encode())
    kem_output, ct = encrypt_with_label(cs, joiner.key_package.init_key, WELCOME_LABEL, egi,
                                        new_gs.encode(), SeededRandom(b"rewrap"))
    entries = (EncryptedGroupSecrets(entry.new_member, HPKECiphertext(kem_output, ct)),)
    return MLSMessage(Welcome(w.cipher_suite, entries, egi)).encode()


# --- external commits (§12.4.3.2) ---------------------------------------------------------


def real_external_commit(g: Group, name: str, **kw: Any) -> tuple[Commit, Identity]:
    """An external commit our engine builds for joiner `name` from g's GroupInfo
    (the joiner's group is discarded): the Commit struct and the joiner's identity."""
    ident = identity(name)
    _, data = Group.external_join(g.group_info(), ident, config(name), **kw)
    commit = public_message(data).content.content
    assert isinstance(commit, Commit)
    return commit, ident


def forge_external(g: Group, commit: Commit, joiner: Identity, **kw: Any) -> bytes:
    """`commit` as an external commit to g's current epoch (sender new_member_commit,
    no membership tag, signed by the joiner with g's GroupContext, §6.1)."""
    msg, _ = forge(g, commit, sender=Sender.new_member_commit(),
                   signer=joiner.signature_private_key, **kw)
    return msg


# --- both sides of a commit (§12.2: "A group member creating a Commit and a group member
# processing a Commit MUST verify that the list of committed proposals is valid") ---------


def received_check(committer: Group, receiver: Group, items: Sequence[Any],
                   path: Any = None) -> str:
    """The check that fires when `receiver` processes a commit from `committer`
    carrying `items` (proposals by value or ProposalRefs) and `path`, forged so that
    it is correctly signed and MACed."""
    msg, _ = forge(committer, Commit(tuple(items), path))
    return check_of(lambda: receiver.process(msg), receiver)


def commit_check(committer: Group, receiver: Group, proposals: Sequence[Any]) -> str:
    """The check that fires both when `committer` tries to commit `proposals` by value
    (Group.commit) and when `receiver` processes such a commit (forged); they must
    agree. Returns the check ID."""
    sent = check_of(lambda: committer.commit(list(proposals)), committer)
    received = received_check(committer, receiver, proposals)
    assert sent == received, f"committer says {sent}, receiver says {received}"
    return sent
