"""Epoch 0 of a new group (RFC 9420 §11): made by its creator (`Group.create`), or
rebuilt from the creator's GroupInfo by a client holding the same leaf keys and the same
initial epoch secret (`Group.follow_creation`: a sibling emulator of a virtual client,
draft-ietf-mls-virtual-clients latest §5.4, where the creator derives epoch_secret =
DeriveSecret(key_package_seed_secret, "Group Creation") instead of drawing it).

Both build the state with `epoch_zero_state`, so the follower's epoch is the creator's:
same secrets, transcript hashes, secret tree and private keys.
"""

from __future__ import annotations

from mlsvc.checks import fail
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import ParameterError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.epoch import secret_tree_for
from mlsvc.group.join import (
    TreeSource,
    decode_group_info,
    tree_for_join,
    validate_joined_tree,
    verify_group_info,
)
from mlsvc.group.key_package import key_package_leaf
from mlsvc.group.state import EpochKeys, EpochState
from mlsvc.group.validation import LeafContext, validate_leaf_node
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.leaf_node import Capabilities, Lifetime
from mlsvc.schedule import key_schedule as ks
from mlsvc.schedule.transcript import interim_transcript_hash
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.treekem import TreePrivateKeys
from mlsvc.types import LeafIndex


def check_epoch_secret(cs: CipherSuite, epoch_secret: bytes) -> None:
    """An initial epoch secret given by the caller is KDF.Nh bytes (§11: "a fresh random
    value of size KDF.Nh"); ParameterError otherwise."""
    if len(epoch_secret) != cs.nh:
        raise ParameterError(f"epoch_secret must be KDF.Nh = {cs.nh} bytes of suite "
                             f"{cs.id}, not {len(epoch_secret)}")


def epoch_zero_state(cs: CipherSuite, context: GroupContext, tree: RatchetTree,
                     leaf_private_key: bytes, identity: Identity, epoch_secret: bytes,
                     config: GroupConfig) -> EpochState:
    """The creator's epoch 0 (§11): the key schedule from `epoch_secret`, the
    confirmation tag over the (empty) confirmed transcript hash, the interim transcript
    hash, the secret tree; our leaf is leaf 0."""
    secrets = ks.from_epoch_secret(cs, epoch_secret)
    tag = ks.confirmation_tag(cs, secrets.confirmation_key, context.confirmed_transcript_hash)
    keys = TreePrivateKeys(LeafIndex(0), leaf_private_key, {})
    state = EpochState(
        cs, context, tree, keys, identity,
        interim_transcript_hash(cs, context.confirmed_transcript_hash, tag), tag,
        EpochKeys.of(secrets, cs, config.additional_epoch_secrets),
        secret_tree_for(cs, secrets.encryption_secret, tree.leaf_count, config),
    )
    state.remember_resumption_psk(config.resumption_psk_history)
    return state


def create_state(cs: CipherSuite, identity: Identity, config: GroupConfig, *,
                 group_id: bytes | None, extensions: Extensions,
                 encryption_key_pair: tuple[bytes, bytes] | None,
                 capabilities: Capabilities | None, leaf_extensions: Extensions,
                 lifetime: Lifetime, epoch_secret: bytes | None) -> EpochState:
    """§11: a one-member group at epoch 0. Whatever is None is drawn from config.rng:
    the group_id (KDF.Nh bytes), the leaf's encryption key pair, the epoch secret."""
    if epoch_secret is not None:
        check_epoch_secret(cs, epoch_secret)
    group_id = group_id if group_id is not None else config.rng(cs.nh)
    if encryption_key_pair is None:
        encryption_key_pair = cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
    leaf = key_package_leaf(cs, identity, config, encryption_key_pair[1], capabilities,
                            lifetime, leaf_extensions)
    validate_leaf_node(cs, leaf, LeafContext(LeafNodeSource.KEY_PACKAGE), extensions,
                       None, config)
    tree = RatchetTree.single(cs, leaf)
    context = GroupContext(cs.id, group_id, 0, tree.tree_hash(), b"", tuple(extensions))
    return epoch_zero_state(cs, context, tree, encryption_key_pair[0], identity,
                            epoch_secret if epoch_secret is not None else config.rng(cs.nh),
                            config)


def follow_creation_state(group_info: bytes | GroupInfo, identity: Identity,
                          leaf_private_key: bytes, epoch_secret: bytes,
                          config: GroupConfig, ratchet_tree: TreeSource = None
                          ) -> EpochState:
    """The creator's epoch 0, rebuilt from its GroupInfo by a client holding the same
    leaf keys and epoch secret (draft-ietf-mls-virtual-clients latest §5.4: "If the
    GroupInfo cannot be verified using the resulting epoch state, the emulator client
    MUST reject"). Checked in this order:

    - `epoch_secret` is KDF.Nh bytes of the group's suite (ParameterError);
    - the group_id is not in use (WEL-GROUP-ID), as for any join;
    - the GroupContext is a new group's: epoch 0, empty confirmed transcript hash
      (CM-EPOCH);
    - the tree (ratchet_tree extension or `ratchet_tree`) is valid and matches, and the
      GroupInfo signature verifies with the signer's leaf, as for a joiner (§12.4.3.1);
    - the tree holds one leaf only (WEL-OWN-LEAF), with source key_package as
      `Group.create` makes it (LN-SOURCE), whose encryption_key is the public key of
      `leaf_private_key` and whose signature_key is the identity's
      (TREEKEM-PUBKEY-MISMATCH);
    - the GroupInfo's confirmation_tag verifies under the confirmation key derived from
      `epoch_secret` (CM-CONFIRMATION-TAG): a GroupInfo of another epoch secret fails
      here."""
    group_info = decode_group_info(group_info)
    context = group_info.group_context
    cs = get_suite(context.cipher_suite)
    check_epoch_secret(cs, epoch_secret)
    if config.group_id_in_use(context.group_id):
        fail("WEL-GROUP-ID", "this client is already in a group with that group_id")
    if context.epoch != 0 or context.confirmed_transcript_hash != b"":
        fail("CM-EPOCH", f"a creation GroupInfo describes epoch 0 of a new group, not epoch "
                         f"{context.epoch}")
    tree = tree_for_join(cs, group_info, ratchet_tree)
    validate_joined_tree(cs, tree, context, config)
    verify_group_info(cs, group_info, tree)
    leaf = tree.leaf(LeafIndex(0))
    if tree.leaf_count != 1 or leaf is None:
        fail("WEL-OWN-LEAF", f"a new group's tree holds only its creator's leaf, not "
                             f"{tree.leaf_count} leaves")
    if leaf.leaf_node_source != LeafNodeSource.KEY_PACKAGE:
        fail("LN-SOURCE", "the creator's leaf has source key_package")
    if cs.kem.public_key(leaf_private_key) != leaf.encryption_key:
        fail("TREEKEM-PUBKEY-MISMATCH", "the creator leaf's encryption_key is not the public "
                                        "key of the derived private key")
    if identity.signature_public_key != leaf.signature_key:
        fail("TREEKEM-PUBKEY-MISMATCH", "the derived signature key is not the creator "
                                        "leaf's")
    state = epoch_zero_state(cs, context, tree, leaf_private_key, identity, epoch_secret,
                             config)
    if not cs.verify_mac(state.secrets.confirmation_key, context.confirmed_transcript_hash,
                         group_info.confirmation_tag):
        fail("CM-CONFIRMATION-TAG", "the GroupInfo's confirmation tag does not verify under "
                                    "the given epoch secret")
    return state
