"""The next epoch from a commit, computed the same way by the committer, every receiver
and an external joiner (RFC 9420 §12.4.2 after the path, §8, §12.4.3): the provisional
GroupContext, PSK resolution, transcript hashes, key schedule, confirmation tag, secret
tree; and the GroupInfo and Welcome a committer sends (§12.4.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlsvc.checks import fail
from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import encrypt_with_label, expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.proposals import AppliedProposals
from mlsvc.group.state import EpochKeys, EpochState
from mlsvc.messages.codepoints import PSKType
from mlsvc.messages.commit import HPKECiphertext
from mlsvc.messages.extensions import Extension, Extensions, ExternalPub
from mlsvc.messages.framing import FramedContent
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import PreSharedKeyID
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
from mlsvc.tree.treekem import TreePrivateKeys
from mlsvc.types import LeafCount

WELCOME_LABEL = b"Welcome"  # RFC 9420 §12.4.3.1 EncryptWithLabel(init_key, "Welcome", ...)


@dataclass(frozen=True)
class ProvisionalContext:
    """The provisional GroupContext of §12.4.2 as a function of the new tree hash (the
    EncryptWithLabel context of the UpdatePath's path secrets)."""

    cipher_suite: int
    group_id: bytes
    epoch: int
    confirmed_transcript_hash: bytes
    extensions: Extensions

    @classmethod
    def after(cls, context: GroupContext, extensions: Extensions) -> ProvisionalContext:
        return cls(context.cipher_suite, context.group_id, context.epoch + 1,
                   context.confirmed_transcript_hash, extensions)

    def __call__(self, tree_hash: bytes) -> bytes:
        return GroupContext(self.cipher_suite, self.group_id, self.epoch, tree_hash,
                            self.confirmed_transcript_hash, self.extensions).encode()


def secret_tree_for(cs: CipherSuite, encryption_secret: bytes, leaf_count: LeafCount,
                    config: GroupConfig) -> SecretTree:
    return SecretTree(cs, encryption_secret, leaf_count,
                      max_forward_distance=config.max_forward_distance,
                      out_of_order_tolerance=config.out_of_order_tolerance)


def resolve_psk(state: EpochState, config: GroupConfig, psk: PreSharedKeyID) -> bytes:
    """§8.4: the PSK a PreSharedKeyID names (external: the application's; resumption:
    this group's history); PR-PSK-UNKNOWN if this client does not have it."""
    if psk.psktype == PSKType.EXTERNAL:
        value = config.external_psks.get(psk.psk_id) if psk.psk_id is not None else None
    elif psk.psk_group_id is not None and psk.psk_epoch is not None:
        value = state.resumption_psks.get((psk.psk_group_id, psk.psk_epoch))
    else:  # pragma: no cover - PreSharedKeyID enforces its arms
        value = None
    if value is None:
        fail("PR-PSK-UNKNOWN", "a PreSharedKeyID names a PSK this client does not have")
    return value


def psk_secret_for(state: EpochState, config: GroupConfig,
                   psk_ids: Sequence[PreSharedKeyID]) -> bytes | None:
    """psk_secret (§8.4) of the PSKs in list order; None (the zero vector) for none."""
    if not psk_ids:
        return None
    return compute_psk_secret(state.cs, [(p, resolve_psk(state, config, p)) for p in psk_ids])


@dataclass
class StagedCommit:
    """A commit's effect, computed identically by the committer and the receivers."""

    state: EpochState
    applied: AppliedProposals
    joiner_secret: bytes
    psk_secret: bytes | None
    path_secrets: dict[int, bytes]


def check_confirmation_tag(staged: StagedCommit, tag: bytes | None) -> None:
    """§12.4.2: a received commit's confirmation tag verifies under the new epoch's
    confirmation key (CM-CONFIRMATION-TAG)."""
    st = staged.state
    if tag is None or not st.cs.verify_mac(st.secrets.confirmation_key,
                                           st.context.confirmed_transcript_hash, tag):
        fail("CM-CONFIRMATION-TAG", "confirmation tag does not verify")


def stage_commit(
    previous: EpochState,
    config: GroupConfig,
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
) -> StagedCommit:
    """The new epoch from a commit (§12.4.2 steps after the path): confirmed
    transcript hash, GroupContext, key schedule (the external init secret replaces the
    previous epoch's for an external commit, §8.3), confirmation tag, secret tree."""
    cs = previous.cs
    confirmed = confirmed_transcript_hash(
        cs, previous.interim_transcript_hash,
        encode_confirmed_input(wire_format, content.encode(), signature))
    context = GroupContext(cs.id, previous.context.group_id, previous.context.epoch + 1,
                           tree.tree_hash(), confirmed, applied.extensions)
    psk = psk_secret_for(previous, config, applied.psk_ids)
    init = init_secret if init_secret is not None else previous.secrets.init_secret
    secrets = ks.derive_epoch(cs, init, commit_secret, psk, context.encode())
    tag = ks.confirmation_tag(cs, secrets.confirmation_key, confirmed)
    state = EpochState(
        cs, context, tree, keys, identity, interim_transcript_hash(cs, confirmed, tag), tag,
        EpochKeys.of(secrets, cs, config.additional_epoch_secrets),
        secret_tree_for(cs, secrets.encryption_secret, tree.leaf_count, config),
        {}, dict(previous.resumption_psks), {},
    )
    state.remember_resumption_psk(config.resumption_psk_history)
    return StagedCommit(state, applied, secrets.joiner_secret, psk, path_secrets)


def group_info_for(state: EpochState, *, ratchet_tree: bool, external_pub: bool,
                   extensions: Extensions = ()) -> GroupInfo:
    """The epoch's GroupInfo (§12.4.3), signed by this member, optionally carrying the
    ratchet tree (§12.4.3.3) and the external public key (§12.4.3.2), then `extensions`."""
    cs = state.cs
    exts: list[Extension] = []
    if ratchet_tree:
        exts.append(RatchetTreeExtension.from_nodes(state.tree.to_nodes()).to_extension())
    if external_pub:
        _, pub = ks.external_key_pair(cs, state.secrets.external_secret)
        exts.append(ExternalPub(pub).to_extension())
    exts.extend(extensions)
    return GroupInfo(state.context, tuple(exts), state.confirmation_tag,
                     state.own_leaf).signed(cs, state.identity.signature_private_key)


def build_welcome(staged: StagedCommit, group_info: GroupInfo, rng: RandomSource) -> bytes:
    """§12.4.3.1: the GroupInfo encrypted under the welcome key; GroupSecrets (joiner
    secret, the path secret of the lowest common ancestor, PSK IDs) to each new member's
    init key."""
    cs = staged.state.cs
    welcome_secret = ks.welcome_secret(cs, staged.joiner_secret, staged.psk_secret)
    key = expand_with_label(cs, welcome_secret, b"key", b"", cs.aead.nk)
    nonce = expand_with_label(cs, welcome_secret, b"nonce", b"", cs.aead.nn)
    encrypted_group_info = cs.aead.seal(key, nonce, b"", group_info.encode())
    own = tm.leaf_to_node(staged.state.own_leaf)
    psk_ids = tuple(staged.applied.psk_ids)
    secrets: list[EncryptedGroupSecrets] = []
    for leaf, kp in staged.applied.added:
        path_secret = None
        if staged.path_secrets:
            value = staged.path_secrets.get(tm.common_ancestor(own, tm.leaf_to_node(leaf)))
            path_secret = PathSecret(value) if value is not None else None
        gs = GroupSecrets(staged.joiner_secret, path_secret, psk_ids)
        kem_output, ct = encrypt_with_label(cs, kp.init_key, WELCOME_LABEL,
                                            encrypted_group_info, gs.encode(), rng)
        secrets.append(EncryptedGroupSecrets(kp.ref(cs), HPKECiphertext(kem_output, ct)))
    return MLSMessage(Welcome(cs.id, tuple(secrets), encrypted_group_info)).encode()
