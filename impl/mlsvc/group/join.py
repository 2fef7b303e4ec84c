"""Joining a group (RFC 9420 §12.4.3): from a Welcome (§12.4.3.1) or by an external
commit (§12.4.3.2). Both verify the GroupInfo and the ratchet tree it describes before
trusting anything in them; both return the new member's first EpochState.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlsvc.checks import fail
from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import decrypt_with_label, expand_with_label
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError, LibraryError, ParameterError
from mlsvc.group.config import GroupConfig, Identity, default_capabilities
from mlsvc.group.epoch import (
    WELCOME_LABEL,
    ProvisionalContext,
    check_confirmation_tag,
    secret_tree_for,
    stage_commit,
)
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.proposals import ResolvedProposal, apply_proposals
from mlsvc.group.state import EpochKeys, EpochState
from mlsvc.group.validation import LeafContext, validate_leaf_node
from mlsvc.messages.codepoints import (
    LeafNodeSource,
    ProtocolVersion,
    PSKType,
    ResumptionPSKUsage,
    SenderType,
    WireFormat,
)
from mlsvc.messages.commit import Commit
from mlsvc.messages.credentials import Credential
from mlsvc.messages.extensions import Extensions, ExternalPub
from mlsvc.messages.framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    PublicMessage,
    Sender,
)
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Node, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    ExternalInit,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ReInit,
    Remove,
)
from mlsvc.messages.protection import protect_public, unprotect_public, verify_signature
from mlsvc.messages.welcome import GroupSecrets, Welcome
from mlsvc.schedule import key_schedule as ks
from mlsvc.schedule.psk import psk_secret as compute_psk_secret
from mlsvc.schedule.transcript import interim_transcript_hash
from mlsvc.tree import math as tm
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.secret_tree import SecretTree
from mlsvc.tree.treekem import (
    TreePrivateKeys,
    apply_own_update_path,
    apply_path_secret,
    check_path_keys_unused,
    create_update_path,
)
from mlsvc.types import LeafIndex

TreeSource = Sequence[Node | None] | RatchetTree | None
"""A ratchet tree given out of band (§12.4.3.3), or None to use the extension."""


@dataclass(frozen=True)
class OpenedWelcome:
    group_secrets: GroupSecrets
    group_info: GroupInfo
    psk_secret: bytes | None
    linking_psk: PreSharedKeyID | None  # the reinit or branch PSK, if any (§11.2, §11.3)


@dataclass(frozen=True)
class PriorGroup:
    """What a joiner knows of the group a reinit or branch Welcome refers to (§11.2,
    §11.3): its id, epoch, resumption PSKs, the committed ReInit if any, its suite and
    its members' credentials."""

    group_id: bytes
    epoch: int
    cipher_suite: int
    resumption_psks: Mapping[tuple[bytes, int], bytes]
    reinit: ReInit | None
    credentials: tuple[Credential, ...]


_LINKING = (ResumptionPSKUsage.REINIT, ResumptionPSKUsage.BRANCH)


def open_welcome(
    cs: CipherSuite,
    welcome: Welcome,
    key_package: KeyPackage,
    init_private_key: bytes,
    external_psks: Mapping[bytes, bytes],
    resumption_psks: Mapping[tuple[bytes, int], bytes] | None = None,
) -> OpenedWelcome:
    """§12.4.3.1, first steps: find our EncryptedGroupSecrets, decrypt them, resolve the
    PSKs (external ones from the application, resumption ones from the prior group's
    history), derive the welcome key and decrypt the GroupInfo (not yet verified)."""
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
    linking = [p for p in gs.psks if p.psktype == PSKType.RESUMPTION and p.usage in _LINKING]
    if len(linking) > 1:
        # §12.4.3.1: "if a PreSharedKeyID has type resumption with usage reinit or branch,
        # verify that it is the only such PSK"
        fail("WEL-LINK-PSK-UNIQUE", "more than one reinit/branch PSK in the Welcome")
    for psk_id in gs.psks:
        value: bytes | None = None
        if psk_id.psktype == PSKType.EXTERNAL and psk_id.psk_id is not None:
            value = external_psks.get(psk_id.psk_id)
        elif (psk_id.psktype == PSKType.RESUMPTION and psk_id.psk_group_id is not None
              and psk_id.psk_epoch is not None and resumption_psks is not None):
            value = resumption_psks.get((psk_id.psk_group_id, psk_id.psk_epoch))
        if value is None:
            fail("WEL-PSK", "the Welcome needs a PSK this client does not have")
        psks.append((psk_id, value))
    psk = compute_psk_secret(cs, psks) if psks else None
    welcome_secret = ks.welcome_secret(cs, gs.joiner_secret, psk)
    key = expand_with_label(cs, welcome_secret, b"key", b"", cs.aead.nk)
    nonce = expand_with_label(cs, welcome_secret, b"nonce", b"", cs.aead.nn)
    group_info = GroupInfo.decode(cs.aead.open(key, nonce, b"", welcome.encrypted_group_info))
    return OpenedWelcome(gs, group_info, psk, linking[0] if linking else None)


def tree_for_join(cs: CipherSuite, group_info: GroupInfo, ratchet_tree: TreeSource
                  ) -> RatchetTree:
    """The tree given out of band, or the GroupInfo's ratchet_tree extension."""
    if isinstance(ratchet_tree, RatchetTree):
        return ratchet_tree.copy()
    if ratchet_tree is not None:
        return RatchetTree.from_nodes(cs, ratchet_tree)
    ext = RatchetTreeExtension.find_in(group_info.extensions)
    if ext is None:
        fail("WEL-TREE-MISSING", "no ratchet_tree extension and no tree given")
    return RatchetTree.from_nodes(cs, ext.nodes)


def validate_joined_tree(cs: CipherSuite, tree: RatchetTree, context: GroupContext,
                         config: GroupConfig) -> None:
    """§12.4.3.1: the tree hash matches, the tree is valid (parent hashes, unmerged
    leaves, unique parent keys), every leaf is valid and unique."""
    if tree.tree_hash() != context.tree_hash:
        fail("WEL-TREE-HASH", "the ratchet tree does not match the GroupContext's tree hash")
    tree.validate()
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


def verify_group_info(cs: CipherSuite, group_info: GroupInfo, tree: RatchetTree) -> None:
    """§12.4.3.1: the GroupInfo's signer is a member of `tree` and its signature
    verifies with that leaf's signature key."""
    signer = tree.leaf(group_info.signer) if group_info.signer < tree.leaf_count else None
    if signer is None:
        fail("WEL-SIGNER-LEAF", "the GroupInfo signer is not a member")
    if not group_info.verify(cs, signer.signature_key):
        fail("WEL-GROUPINFO-SIGNATURE", "GroupInfo signature does not verify")


def _check_linked_group(linking: PreSharedKeyID, context: GroupContext, tree: RatchetTree,
                        prior: PriorGroup | None, config: GroupConfig) -> None:
    """§12.4.3.1 (and §11.2, §11.3) for a Welcome carrying a reinit or branch PSK."""
    if context.epoch != 1:
        fail("WEL-LINK-EPOCH", f"a reinit/branch Welcome at epoch {context.epoch}, not 1")
    if prior is None or linking.psk_group_id != prior.group_id:  # pragma: no cover - WEL-PSK
        fail("WEL-PSK", "the Welcome refers to a group this client was not given")
    new_creds = [leaf.credential for _, leaf in tree.leaves()]

    def present(old: Credential, among: Sequence[Credential]) -> bool:
        return any(old == new or config.credential_successor(old, new) for new in among)

    if linking.usage == ResumptionPSKUsage.REINIT:
        r = prior.reinit
        if r is None or linking.psk_epoch != prior.epoch:
            fail("WEL-REINIT-MISMATCH", "the last commit of the old group had no ReInit")
        if (context.group_id, ProtocolVersion.MLS10, context.cipher_suite,
                context.extensions) != (r.group_id, r.version, r.cipher_suite, r.extensions):
            fail("WEL-REINIT-MISMATCH", "the new group does not match the ReInit proposal")
        if not all(present(old, new_creds) for old in prior.credentials):
            fail("WEL-REINIT-MEMBERS", "a member of the old group is missing from the new one")
    else:
        if context.cipher_suite != prior.cipher_suite:
            fail("WEL-BRANCH-MISMATCH", "a branch changes the cipher suite or version")
        if not all(present(new, prior.credentials) for new in new_creds):
            fail("WEL-BRANCH-MEMBERS", "a member of the branch was not in the old group")


def join_from_welcome(welcome: bytes | Welcome, key_package: KeyPackageBundle,
                      config: GroupConfig, ratchet_tree: TreeSource,
                      prior: PriorGroup | None = None) -> tuple[EpochState, GroupInfo]:
    """§12.4.3.1: the new member's state from a Welcome, and the verified GroupInfo it
    carried (its extensions may hold what the application sends only to new members).
    `prior` is the group a reinit or branch Welcome (§11.2, §11.3) refers to."""
    if isinstance(welcome, bytes):
        body = MLSMessage.decode(welcome).body
        if not isinstance(body, Welcome):
            raise DecodeError("not a Welcome message")
        welcome = body
    kp = key_package.key_package
    cs = get_suite(kp.cipher_suite)
    opened = open_welcome(cs, welcome, kp, key_package.init_private_key, config.external_psks,
                          prior.resumption_psks if prior is not None else None)
    gs, group_info, psk = opened.group_secrets, opened.group_info, opened.psk_secret
    context = group_info.group_context
    if context.cipher_suite != cs.id:
        fail("WEL-SUITE", "GroupInfo cipher suite differs from the Welcome's")
    if config.group_id_in_use(context.group_id):
        fail("WEL-GROUP-ID", "this client is already in a group with that group_id")
    tree = tree_for_join(cs, group_info, ratchet_tree)
    validate_joined_tree(cs, tree, context, config)
    verify_group_info(cs, group_info, tree)
    own = tree.find_leaf(lambda leaf: leaf == kp.leaf_node)
    if own is None:
        fail("WEL-OWN-LEAF", "our LeafNode is not in the tree")
    if opened.linking_psk is not None:
        _check_linked_group(opened.linking_psk, context, tree, prior, config)
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
        secret_tree_for(cs, secrets.encryption_secret, tree.leaf_count, config),
    )
    state.remember_resumption_psk(config.resumption_psk_history)
    return state, group_info


@dataclass(frozen=True)
class ExternalJoinOptions:
    """The joiner's choices for an external commit (every key can be given)."""

    remove_prior: LeafIndex | None = None
    external_psk_ids: Sequence[bytes] = ()
    encryption_key_pair: tuple[bytes, bytes] | None = None
    path_secret: bytes | None = None
    capabilities: Capabilities | None = None
    leaf_extensions: Extensions = ()
    authenticated_data: bytes = b""
    # DeriveKeyPair input of the ExternalInit encapsulation's ephemeral key (a virtual
    # client derives it, DRAFT-00-PROFILE P17); None: drawn from config.rng
    external_init_seed: bytes | None = None


def decode_group_info(group_info: bytes | GroupInfo) -> GroupInfo:
    """A GroupInfo, from the bytes of an MLSMessage carrying one (DecodeError if it does
    not) or as given. Nothing is verified."""
    if isinstance(group_info, bytes):
        body = MLSMessage.decode(group_info).body
        if not isinstance(body, GroupInfo):
            raise DecodeError("not a GroupInfo message")
        return body
    return group_info


def _external_pub(group_info: GroupInfo) -> bytes:
    ext_pub = ExternalPub.find_in(group_info.extensions)
    if ext_pub is None:
        fail("GI-EXTERNAL-PUB", "GroupInfo has no external_pub extension")
    return ext_pub.external_pub


def _encapsulate(cs: CipherSuite, external_pub: bytes, rng: RandomSource,
                 seed: bytes | None) -> tuple[bytes, bytes]:
    """§8.3 for the joiner: (kem_output, init_secret), the ephemeral key DeriveKeyPair
    (seed) or drawn from `rng`. The one place an external joiner encapsulates, so that
    `external_init` and `join_by_external_commit` agree."""
    return ks.external_init_for_joiner(cs, external_pub, rng, seed)


def _no_randomness(n: int) -> bytes:  # pragma: no cover - a seed is always given
    raise LibraryError("external_init draws no randomness: the seed fixes the key")


def external_init(group_info: bytes | GroupInfo, seed: bytes) -> tuple[bytes, bytes]:
    """§8.3: the (kem_output, init_secret) pair an external commit into the epoch of
    `group_info` gets when its ExternalInit's ephemeral key is DeriveKeyPair(seed):
    exactly what `join_by_external_commit` (Group.external_join) then uses with
    `external_init_seed=seed`. A virtual client's joining emulator learns the
    init_secret this way before the commit exists, to carry it in the LeafNode's
    DerivationInfo (draft-ietf-mls-virtual-clients latest §5.3, §5.5.2).

    `seed` is the ikm of the KEM's DeriveKeyPair (RFC 9180 §7.1.3) and may have any
    length: the engine imposes none. RFC 9180 says it SHOULD be at least Nsk bytes long
    and hold Nsk bytes of entropy; a virtual client passes a DeriveSecret output
    (KDF.Nh bytes). The GroupInfo is only decoded and its external_pub read
    (GI-EXTERNAL-PUB if absent); the external join itself verifies it."""
    info = decode_group_info(group_info)
    cs = get_suite(info.group_context.cipher_suite)
    return _encapsulate(cs, _external_pub(info), _no_randomness, seed)


def _group_info_state(group_info: bytes | GroupInfo, config: GroupConfig,
                      ratchet_tree: TreeSource
                      ) -> tuple[GroupInfo, CipherSuite, RatchetTree, bytes]:
    """A published GroupInfo checked as an external joiner must (§12.4.3.2): its tree
    valid and matching, its signature verified; returns it with its suite, tree and
    external_pub."""
    group_info = decode_group_info(group_info)
    context = group_info.group_context
    cs = get_suite(context.cipher_suite)
    tree = tree_for_join(cs, group_info, ratchet_tree)
    validate_joined_tree(cs, tree, context, config)
    verify_group_info(cs, group_info, tree)
    return group_info, cs, tree, _external_pub(group_info)


def _outside_state(cs: CipherSuite, group_info: GroupInfo, tree: RatchetTree,
                   identity: Identity, init_secret: bytes) -> EpochState:
    """The epoch a GroupInfo describes, as far as a non-member knows it."""
    context = group_info.group_context
    return EpochState(
        cs, context, tree, TreePrivateKeys(LeafIndex(0), b"", {}), identity,
        interim_transcript_hash(cs, context.confirmed_transcript_hash,
                                group_info.confirmation_tag),
        group_info.confirmation_tag,
        EpochKeys(b"", b"", b"", b"", b"", b"", b"", init_secret),
        SecretTree(cs, bytes(cs.nh), tree.leaf_count),
    )


def join_by_external_commit(group_info: bytes | GroupInfo, identity: Identity,
                            config: GroupConfig, ratchet_tree: TreeSource,
                            options: ExternalJoinOptions) -> tuple[EpochState, bytes]:
    """§12.4.3.2: an external commit into the epoch the GroupInfo describes; returns the
    joiner's state in the new epoch and the commit (an MLSMessage) to send."""
    group_info, cs, tree, external_pub = _group_info_state(group_info, config, ratchet_tree)
    context = group_info.group_context
    kem_output, init_secret = _encapsulate(cs, external_pub, config.rng,
                                           options.external_init_seed)
    proposals: list[Proposal] = [ExternalInit(kem_output)]
    if options.remove_prior is not None:
        proposals.append(Remove(options.remove_prior))
    proposals.extend(PreSharedKey(PreSharedKeyID.external(i, config.rng(cs.nh)))
                     for i in options.external_psk_ids)
    outside = _outside_state(cs, group_info, tree, identity, init_secret)
    resolved = [ResolvedProposal(p, Sender.new_member_commit()) for p in proposals]
    applied = apply_proposals(cs, tree, context.group_id, context.extensions, resolved,
                              None, config, external=True)
    key_pair = options.encryption_key_pair or cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
    caps = options.capabilities or default_capabilities(
        cs.id, config.supported_extensions, tuple(config.proposal_types))
    leaf = LeafNode(key_pair[1], identity.signature_public_key, identity.credential, caps,
                    LeafNodeSource.COMMIT, None, b"", tuple(options.leaf_extensions))
    new_tree = applied.tree
    own = new_tree.add_leaf(leaf)  # the leftmost free leaf, as for an Add (§12.4.3.2)
    first = options.path_secret if options.path_secret is not None else config.rng(cs.nh)
    result = create_update_path(
        cs, new_tree, own, leaf, key_pair[0], identity.signature_private_key,
        context.group_id, ProvisionalContext.after(context, applied.extensions), [], first,
        config.rng,
    )
    commit = Commit(tuple(proposals), result.update_path)
    content = FramedContent(context.group_id, context.epoch, Sender.new_member_commit(),
                            options.authenticated_data, commit)
    wire = WireFormat.MLS_PUBLIC_MESSAGE
    signature = content.sign(cs, identity.signature_private_key, wire, context)
    staged = stage_commit(outside, config, applied, new_tree, result.private_keys, identity,
                          result.commit_secret, init_secret, wire, content, signature, {})
    ac = AuthenticatedContent(wire, content, FramedContentAuthData(
        signature, staged.state.confirmation_tag))
    return staged.state, MLSMessage(protect_public(cs, ac, None, context)).encode()


def follow_external_commit(group_info: bytes | GroupInfo, commit_message: bytes,
                           identity: Identity, path_secret: bytes, leaf_private_key: bytes,
                           external_init_seed: bytes | None = None,
                           config: GroupConfig | None = None,
                           ratchet_tree: TreeSource = None, *,
                           init_secret: bytes | None = None) -> EpochState:
    """The state a sibling emulator's external commit leads to (virtual clients,
    draft-ietf-mls-virtual-clients §5.5): from the GroupInfo the sibling joined with, its
    commit, and the keys this emulator derived for the same operation (identity, first
    path secret, leaf key) plus exactly one of (ParameterError otherwise):

    - `external_init_seed` (draft-00 with DRAFT-00-PROFILE P17): the ExternalInit must
      be the encapsulation DeriveKeyPair(seed) gives (CM-SIBLING-EXTERNAL-INIT), whose
      init_secret is then used;
    - `init_secret` (the later text, DerivationInfoTBE.external_init_secret): the
      init_secret of §8.3 as the joiner carried it. The kem_output cannot be checked
      without the group's external private key; the confirmation tag proves the
      init_secret instead: a wrong one fails CM-CONFIRMATION-TAG, and so does one
      that is not KDF.Nh bytes long (checked apart: HMAC pads a short key with zeros).

    Nothing is decrypted: there must be exactly one ExternalInit (EC-ONE-EXTERNAL-INIT
    with `init_secret`), every path key must derive from the path secret
    (TREEKEM-PUBKEY-MISMATCH), the signature and confirmation tag must verify. The
    joiner's state and this one are then the same epoch."""
    if (external_init_seed is None) == (init_secret is None):
        raise ParameterError("give exactly one of external_init_seed and init_secret")
    config = config or GroupConfig()
    group_info, cs, tree, external_pub = _group_info_state(group_info, config, ratchet_tree)
    context = group_info.group_context
    kem_output: bytes | None = None
    if init_secret is None:
        kem_output, init_secret = _encapsulate(cs, external_pub, config.rng,
                                               external_init_seed)
    body = MLSMessage.decode(commit_message).body
    if not isinstance(body, PublicMessage):
        raise DecodeError("an external commit is a PublicMessage (§12.4.3.2)")
    fc = body.content
    commit = fc.content
    if (fc.sender.sender_type != SenderType.NEW_MEMBER_COMMIT or not isinstance(commit, Commit)
            or commit.path is None):
        fail("CM-NEW-MEMBER-COMMIT-PATH", "not an external commit with a path")
    if fc.group_id != context.group_id or fc.epoch != context.epoch:
        fail("MSG-GROUP", "the external commit is not for the GroupInfo's epoch")
    proposals = [p for p in commit.proposals if isinstance(p, Proposal)]
    if len(proposals) != len(commit.proposals):
        fail("EC-NO-REFERENCES", "external commit with a proposal reference")
    inits = [p for p in proposals if isinstance(p, ExternalInit)]
    if kem_output is None:
        if len(inits) != 1:
            fail("EC-ONE-EXTERNAL-INIT", "an external commit has exactly one ExternalInit")
    elif len(inits) != 1 or inits[0].kem_output != kem_output:
        fail("CM-SIBLING-EXTERNAL-INIT",
             "the ExternalInit is not the encapsulation the derived seed gives")
    leaf = commit.path.leaf_node
    unverified = unprotect_public(cs, body, b"", context)
    verified = verify_signature(cs, unverified, leaf.signature_key, context)
    if identity.signature_public_key != leaf.signature_key:
        fail("TREEKEM-PUBKEY-MISMATCH", "the derived signature key is not the leaf's")
    if len(init_secret) != cs.nh:
        # §8.3 exports KDF.Nh bytes. Checked apart because KDF.Extract takes init_secret
        # as the HMAC key, which HMAC pads with zeros: init_secret + b"\0" would confirm.
        fail("CM-CONFIRMATION-TAG", f"an init_secret of {len(init_secret)} bytes, not "
                                    f"KDF.Nh = {cs.nh}, cannot confirm the commit")
    outside = _outside_state(cs, group_info, tree, identity, init_secret)
    resolved = [ResolvedProposal(p, Sender.new_member_commit()) for p in proposals]
    applied = apply_proposals(cs, tree, context.group_id, context.extensions, resolved,
                              None, config, external=True)
    new_tree = applied.tree
    check_path_keys_unused(new_tree, commit.path)
    own = new_tree.add_leaf(leaf)
    validate_leaf_node(cs, leaf, LeafContext(LeafNodeSource.COMMIT, context.group_id, own),
                       applied.extensions, None, config, check_lifetime=False)
    commit_secret, keys = apply_own_update_path(cs, new_tree, own, commit.path, path_secret,
                                                leaf_private_key)
    ac = verified.content
    staged = stage_commit(outside, config, applied, new_tree, keys, identity, commit_secret,
                          init_secret, ac.wire_format, fc, ac.auth.signature, {})
    check_confirmation_tag(staged, ac.auth.confirmation_tag)
    return staged.state
