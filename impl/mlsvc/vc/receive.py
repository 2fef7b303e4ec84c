"""Receiving (draft-ietf-mls-virtual-clients-00 §5.1, §5.3, §5.5; profile P6, P16, P17,
Q7): what an emulator does with what the delivery service hands it.

Theory of operation. The functions take the `Emulator` (mlsvc.vc.emulator, whose public
`welcome`, `deliver` and `follow_external_join` call them) and change it only once the
engine has accepted the message: re-derivations are planned first (`plan_rederivation`)
and committed after (`commit_derivation`), so a typed error leaves every state as it was.
- the emulation group: a KeyPackageUpload's KeyPackages are re-created from the epoch its
  Commit is sent in (P16) and checked against the announced refs; an ExternalJoin makes
  the group an expected join; a ResyncMessage gives the new long-term key (§4.2, P21);
- a higher-level group: a sibling's commit or Update from the shared leaf is re-derived
  from its DerivationInfo (§5.3) and every key compared with the wire; a sibling's
  application message is attributed by its reuse guard (§5.8);
- a sibling's external commit is followed from the GroupInfo it used (P17).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlsvc.checks import fail
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError, StateError, ValidationError
from mlsvc.ext.components import Negotiated
from mlsvc.ext.safe_aad import check_authenticated_data
from mlsvc.group.config import Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied, Event
from mlsvc.group.group import Group
from mlsvc.group.receive import SiblingCommitKeys
from mlsvc.messages.codepoints import LeafNodeSource, SenderType
from mlsvc.messages.commit import Commit
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.leaf_node import LeafNode, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Remove, Update
from mlsvc.messages.welcome import Welcome
from mlsvc.types import LeafIndex
from mlsvc.vc import derivation as dinfo
from mlsvc.vc import lifecycle
from mlsvc.vc.actions import (
    ExternalJoin,
    KeyPackageUpload,
    LatestKeyPackageUpload,
    VirtualClientAction,
)
from mlsvc.vc.codepoints import Consistency, OperationType
from mlsvc.vc.epoch import EmulationEpoch
from mlsvc.vc.operation import (
    Derivation,
    OperationKeys,
    commit_derivation,
    latest_operation_keys,
    plan_rederivation,
)
from mlsvc.vc.operation_tree import KeyPackageBatch, OperationSecretTree, PlannedOperation
from mlsvc.vc.profiles import Profile
from mlsvc.vc.reuse_guard import recover_leaf_index, reuse_guard_key_secret
from mlsvc.vc.state import HeldKeyPackage, HigherGroup, LeafOp

if TYPE_CHECKING:
    from mlsvc.vc.emulator import Emulator


@dataclass(frozen=True)
class Received:
    """What `deliver` observed: the engine event, and for a sibling's application
    message the emulation leaf it decodes to (attribution, §5.8)."""

    group_id: bytes
    event: Event | None
    sibling_leaf: int | None = None
    sibling_epoch: int | None = None
    joined: bool = False


def welcome(em: Emulator, welcome: bytes) -> Received:
    """Join a higher-level group from a Welcome for one of the virtual client's
    announced KeyPackages (§5.5.1: "check which init_key to use based on the
    KeyPackageRef"). VC-WELCOME-UNANNOUNCED when it names none."""
    body = MLSMessage.decode(welcome).body
    if not isinstance(body, Welcome):
        raise DecodeError("not a Welcome message")
    held = next((em.key_packages[s.new_member] for s in body.secrets
                 if s.new_member in em.key_packages), None)
    if held is None:
        fail("VC-WELCOME-UNANNOUNCED", "the Welcome is for no KeyPackage the virtual "
                                       "client announced")
    g = Group.join(body, held.bundle, em.group_config())  # WEL-GROUP-ID if a member
    em.groups[g.group_id] = HigherGroup(g, held.op)
    del em.key_packages[held.bundle.ref(g.cipher_suite)]  # one-time use (§10)
    em.collect()
    return Received(g.group_id, None, joined=True)

def deliver(em: Emulator, group_id: bytes, message: bytes, *,
            welcomed: Collection[bytes] = ()) -> Received:
    """Process one message the DS delivered: the emulation group's or a higher-level
    group's. A typed error leaves every state unchanged. `welcomed`: the KeyPackageRefs
    of Welcomes the DS ordered before this message that the emulator has not read yet;
    a ResyncMessage, which says the DS deleted the announced KeyPackages (P14, P21),
    leaves those (the DS had handed them out before; found by the refinement test)."""
    if em.emulation is not None and group_id == em.emulation.group_id:
        return _deliver_emulation(em, message, frozenset(welcomed))
    hg = em.groups.get(group_id)
    msg = MLSMessage.decode(message)  # once: every check below reads the same decoding
    if _external_commit_of_ours(msg, hg):
        if group_id in em.expected_joins or em.vc.profile is Profile.LATEST:
            raise StateError("an announced external commit: use follow_external_join")
        fail("VC-EXTERNAL-JOIN-UNANNOUNCED", "an external commit of the virtual client "
                                             "(joining, or replacing its leaf) that no "
                                             "ExternalJoin announced")
    if hg is None:
        raise StateError(f"no group {group_id.hex()}: use follow_external_join for an "
                         "announced external join")
    return _deliver_higher(em, group_id, hg, msg)

def _deliver_emulation(em: Emulator, message: bytes, welcomed: frozenset[bytes]) -> Received:
    g = em.emu
    msg = MLSMessage.decode(message)
    body = msg.body
    aad = body.content.authenticated_data if isinstance(body, PublicMessage) else (
        body.authenticated_data if isinstance(body, PrivateMessage) else b"")
    action = _action_of(em, aad)
    plans: list[tuple[HeldKeyPackage, Derivation | PlannedOperation]] = []
    if action is not None and isinstance(action.body, KeyPackageUpload):
        plans = [(h, d) for h, d in _rederive_key_packages(em, action.body, g, msg)]
    elif action is not None and isinstance(action.body, LatestKeyPackageUpload):
        plans = _rederive_latest_key_packages(em, action.body, g, msg)
    roster = {int(i): _identity_of(leaf) for i, leaf in g.members()}
    event = g.process(msg)
    committed: set[int] = set()
    for held, d in plans:
        if id(d) not in committed:  # a latest batch is one operation for every KeyPackage
            _commit(d)
            committed.add(id(d))
        em.key_packages[held.bundle.ref(get_suite(held.group_suite))] = held
    if isinstance(event, CommitApplied):
        if event.removed_self:
            em.removed = True  # §4.3: nothing more to derive or send
            return Received(g.group_id, event)
        em._open_emulation_epoch()
        for leaf in event.removed:
            name = roster.get(int(leaf))
            if name is not None:
                em.removals[name] = g.epoch
        if action is not None and isinstance(action.body, ExternalJoin):
            em.expected_joins.add(action.body.group_id)
    elif isinstance(event, ApplicationMessage):
        # §4.2, P14, P21: a ResyncMessage gives the virtual client's new long-term
        # key; the announced KeyPackages are gone from the DS (replaced or deleted)
        resync = lifecycle.ResyncMessage.decode(event.data)
        em.vc_signing_key = resync.signature_private_key
        # the literal reading removal_keeps_key_packages (F6): after a removal (the
        # epoch a Remove opened) the DS kept them, and so do the emulators
        if not (em.vc.readings.removal_keeps_key_packages
                and g.epoch in em.removals.values()):
            for ref in [r for r in em.key_packages if r not in welcomed]:
                del em.key_packages[ref]
        em.collect()
    return Received(g.group_id, event)

def _action_of(em: Emulator, authenticated_data: bytes) -> VirtualClientAction | None:
    parsed = check_authenticated_data(em.emu.context.extensions, authenticated_data,
                                      em.vc.ext_codepoints)
    if parsed is None:
        return None
    announced = Negotiated.of_extensions(em.emu.context.extensions,
                                         em.vc.ext_codepoints).safe_aad
    known = set() if announced is None else announced.meaningful()
    for item in parsed.items:
        if item.component_id not in known:
            fail("VC-ACTION-UNANNOUNCED", f"SafeAAD item 0x{item.component_id:04x} is not "
                                          "a component the safe_aad list announces")
    data = parsed.get(em.vc.codepoints.virtual_client_action)
    if data is None:
        return None
    if em.vc.profile is Profile.LATEST:
        return VirtualClientAction.decode_latest(data)  # latest §5.5
    return VirtualClientAction.decode(data)

def _rederive_key_packages(em: Emulator, kpu: KeyPackageUpload, g: Group, msg: MLSMessage
                           ) -> list[tuple[HeldKeyPackage, Derivation]]:
    """P16: the KeyPackages of a KeyPackageUpload come from the epoch the Commit is
    sent in; recreate each and check its ref (VC-KPU-UNKNOWN-REF)."""
    body = msg.body
    if not isinstance(body, PublicMessage):
        raise DecodeError("an emulation Commit carrying an action is a PublicMessage")
    sender = body.content.sender.leaf_index
    ep = em.epochs.for_derivation(kpu.epoch_id)
    if ep.epoch != g.epoch:
        fail("VC-EPOCH-UNKNOWN", "a KeyPackageUpload names another epoch than the one "
                                 "its Commit is sent in (P16)")
    out: list[tuple[HeldKeyPackage, Derivation]] = []
    for info in kpu.key_package_info:
        d = _plan_rederivation(em, ep, int(sender), info.random)
        suite = _suite_for_ref(em, info.key_package_ref, d)
        if suite is None:
            fail("VC-KPU-UNKNOWN-REF", "no KeyPackage derived from this KeyPackageInfo has "
                                       "the announced KeyPackageRef")
        out.append((suite, d))
    return out

def _rederive_latest_key_packages(em: Emulator, kpu: LatestKeyPackageUpload, g: Group,
                                  msg: MLSMessage
                                  ) -> list[tuple[HeldKeyPackage, Derivation | PlannedOperation]]:
    """latest §5.5.1: reject duplicate key_package_index values
    (VC-KPU-DUPLICATE-INDEX); the batch operation of (epoch_id, leaf_index, generation,
    key_package, "") re-derived on a copy of the tree, a seed per index, each KeyPackage
    re-created and its ref checked (VC-KPU-UNKNOWN-REF). As for draft-00 (P16) the epoch
    is the one the Commit is sent in and leaf_index the Commit's sender
    (VC-KPU-SENDER)."""
    body = msg.body
    if not isinstance(body, PublicMessage):
        raise DecodeError("an emulation Commit carrying an action is a PublicMessage")
    if kpu.duplicate_indices:
        fail("VC-KPU-DUPLICATE-INDEX", "the key_package_index values of a KeyPackageUpload "
                                       "are not unique (latest §5.5.1)")
    sender = body.content.sender.leaf_index
    if kpu.leaf_index != sender:
        fail("VC-KPU-SENDER", f"a KeyPackageUpload names leaf {kpu.leaf_index}, its Commit "
                              f"comes from leaf {sender}")
    ep = em.epochs.for_derivation(kpu.epoch_id)
    if ep.epoch != g.epoch:
        fail("VC-EPOCH-UNKNOWN", "a KeyPackageUpload names another epoch than the one "
                                 "its Commit is sent in (P16)")
    tree = _tree_of(ep)
    plan = PlannedOperation.plan(em.ecs, tree, kpu.leaf_index, OperationType.KEY_PACKAGE,
                                 kpu.generation)
    batch = KeyPackageBatch.from_operation(em.ecs, plan.operation,
                                           [i.key_package_index for i in kpu.key_package_info])
    out: list[tuple[HeldKeyPackage, Derivation | PlannedOperation]] = []
    for info in kpu.key_package_info:
        sub = batch.sub_secrets(em.ecs, info.key_package_index)
        held = None
        for suite in (em.vc.emulation_suite, *_SUITES):
            gcs = get_suite(suite)
            if gcs.nh != em.ecs.nh:
                continue
            candidate = em.latest_key_package_of(ep, kpu.leaf_index, kpu.generation,
                                                 info.key_package_index,
                                                 latest_operation_keys(em.ecs, gcs, sub), suite)
            if candidate.bundle.ref(gcs) == info.key_package_ref:
                held = candidate
                break
        if held is None:
            fail("VC-KPU-UNKNOWN-REF", "no KeyPackage derived from this KeyPackageInfo has "
                                       "the announced KeyPackageRef")
        out.append((held, plan))
    return out


def _tree_of(ep: EmulationEpoch) -> OperationSecretTree:
    """The epoch's operation secret tree (latest §5.2): VC-EPOCH-DELETED when the
    epoch is outside the window, VC-PROFILE-MISMATCH when it is a draft-00 epoch."""
    if ep.tree is None:
        if ep.profile is Profile.DRAFT_00:
            fail("VC-PROFILE-MISMATCH", f"emulation epoch {ep.epoch} is a draft-00 epoch")
        fail("VC-EPOCH-DELETED", f"emulation epoch {ep.epoch} has no derivation secrets")
    return ep.tree


def _commit(d: Derivation | PlannedOperation) -> None:
    """Commit a planned re-derivation: draft-00 punctures and retains (Q7), latest
    consumes the generation in the tree (R4)."""
    if isinstance(d, PlannedOperation):
        d.commit()
    else:
        commit_derivation(d)


def _latest_leaf_keys(em: Emulator, ep: EmulationEpoch, leaf: LeafNode,
                      comp: dinfo.DerivationInfoComponent, group_id: bytes,
                      group_suite: CipherSuite
                      ) -> tuple[dinfo.DerivationInfoTBE, OperationKeys, PlannedOperation]:
    """latest §5.3 for an update or commit LeafNode: the DerivationInfoTBE (parsed by
    the leaf's leaf_node_source), the leaf_node operation (epoch_id, leaf_index,
    generation, leaf_node, group_id) planned on a copy of the tree, its keys checked
    against the leaf (VC-REDERIVED-KEY-MISMATCH)."""
    assert ep.encryption_key is not None
    tbe = dinfo.open_tbe(em.ecs, comp, ep.encryption_key, leaf)
    if tbe.leaf_node_source is LeafNodeSource.KEY_PACKAGE:
        fail("VC-DERIVATION-INFO", "a key_package LeafNode where an update or commit "
                                   "LeafNode is required")
    if tbe.leaf_index not in ep.roster:
        fail("VC-SENDER-NOT-EMULATOR",
             f"leaf {tbe.leaf_index} is no emulator of emulation epoch {ep.epoch}")
    plan = PlannedOperation.plan(em.ecs, _tree_of(ep), tbe.leaf_index,
                                 OperationType.LEAF_NODE, tbe.generation, group_id)
    keys = latest_operation_keys(em.ecs, group_suite, plan.operation.sub_secrets(em.ecs))
    if keys.encryption[1] != leaf.encryption_key or keys.signature[1] != leaf.signature_key:
        fail("VC-REDERIVED-KEY-MISMATCH", "a re-derived key differs from the LeafNode's")
    return tbe, keys, plan


def _suite_for_ref(em: Emulator, ref: bytes, d: Derivation) -> HeldKeyPackage | None:
    for suite in (em.vc.emulation_suite, *_SUITES):
        gcs = get_suite(suite)
        if gcs.nh != em.ecs.nh:
            continue
        held = em._key_package(d, suite)
        if held.bundle.ref(gcs) == ref:
            return held
    return None

def _plan_rederivation(em: Emulator, ep: EmulationEpoch, leaf_index: int, random: bytes
                       ) -> Derivation:
    """plan_rederivation, counting Q7 collisions (F5)."""
    try:
        return plan_rederivation(em.ecs, ep, leaf_index, random)
    except ValidationError as exc:
        if exc.check_id == "VC-PPRF-COLLISION":
            em.stats.collisions += 1
        raise

def _sibling_keys(em: Emulator, leaf: LeafNode, g: Group
                  ) -> tuple[SiblingCommitKeys, LeafOp, Derivation | PlannedOperation]:
    """Re-derive a sibling's LeafNode (§5.3) and check its public keys
    (VC-REDERIVED-KEY-MISMATCH). Nothing is punctured yet."""
    comp = dinfo.find_in_leaf(leaf, em.vc.ext_codepoints, em.vc.codepoints)
    if comp is None:
        fail("VC-DERIVATION-INFO", "the virtual client's LeafNode has no DerivationInfo")
    ep = em.epochs.for_derivation(comp.epoch_id)
    assert ep.encryption_key is not None
    d: Derivation | PlannedOperation
    if ep.profile is Profile.LATEST:
        _, keys, d = _latest_leaf_keys(em, ep, leaf, comp, g.group_id, g.cipher_suite)
    else:
        tbe = dinfo.open_info(em.ecs, comp, ep.encryption_key, leaf.encryption_key)
        d = _plan_rederivation(em, ep, tbe.leaf_index, tbe.random)
        keys = em.operation_keys(g.cipher_suite, d)
        if (keys.encryption[1] != leaf.encryption_key
                or keys.signature[1] != leaf.signature_key):
            fail("VC-REDERIVED-KEY-MISMATCH", "a re-derived key differs from the LeafNode's")
    ident = Identity(leaf.credential, *keys.signature)
    em.stats.rederivations += 1
    return (SiblingCommitKeys(keys.path_secret, keys.encryption[0], ident),
            LeafOp(ep.epoch_id, keys.leaf_node_secret), d)

def _deliver_higher(em: Emulator, group_id: bytes, hg: HigherGroup, msg: MLSMessage) -> Received:
    g = hg.group
    found: list[tuple[LeafOp, Derivation | PlannedOperation]] = []

    def sibling(leaf: LeafNode) -> SiblingCommitKeys:
        keys, op, d = _sibling_keys(em, leaf, g)
        found.append((op, d))
        return keys

    update = _own_update(msg, g.own_leaf)
    update_plan: tuple[SiblingCommitKeys, LeafOp, Derivation | PlannedOperation] | None = None
    if update is not None:
        update_plan = _sibling_keys(em, update, g)
    eventual = em.vc.consistency is Consistency.EVENTUAL
    tree_before = (g.state.secret_tree.state.copy()
                   if isinstance(msg.body, PrivateMessage) else None)
    event = g.process(msg, sibling=sibling, retain_own_key=eventual)
    for _, d in found:
        _commit(d)
    if update_plan is not None:
        keys, op, d = update_plan
        _commit(d)
        g.remember_leaf_key(keys.leaf_private_key, keys.identity)
        hg.proposed[g.state.cs.kem.public_key(keys.leaf_private_key)] = op
    if isinstance(event, CommitApplied):
        if found:
            hg.active = found[0][0]
        if event.removed_self:
            del em.groups[group_id]
        else:
            after_commit(em, hg)
        em.collect()
    if isinstance(event, ApplicationMessage) and event.sender == g.own_leaf:
        # §5.8, P9: decode with N of the epoch e the active LeafNode names, and check
        # the leaf against e's roster (VC-RG-1). The literal reading
        # reuse_guard_local_epoch (F8) decodes with this emulator's own current epoch
        # and, as the model does, names whatever leaf that gives (a blank one too): the
        # attribution is (sibling_epoch, sibling_leaf) of the local epoch.
        local = em.vc.readings.reuse_guard_local_epoch
        ep = em.epochs.latest if local else em.epochs.by_id(hg.active.epoch_id)
        key_ep = em.epochs.by_id(hg.active.epoch_id)  # latest §5.6.2: epoch e's secret
        key_secret = reuse_guard_key_secret(key_ep.profile,
                                            leaf_node_secret=hg.active.leaf_node_secret,
                                            reuse_guard_secret=key_ep.reuse_guard_secret)
        try:
            leaf = recover_leaf_index(em.ecs, key_secret,
                                      event.key_schedule_nonce, event.reuse_guard,
                                      ep.leaf_count, None if local else ep.roster)
        except ValidationError:
            assert tree_before is not None
            g.state.secret_tree.state = tree_before  # VC-RG-1: the key is not burnt
            raise
        if eventual:
            em._keep_sent(hg, event.generation)
        return Received(group_id, event, sibling_leaf=int(leaf), sibling_epoch=ep.epoch)
    return Received(group_id, event)

def after_commit(em: Emulator, hg: HigherGroup) -> None:
    """After a commit: the active LeafNode's operation is the one whose encryption key
    the leaf now has (a committed Update, or a path of ours or a sibling's)."""
    g = hg.group
    gid = g.group_id
    pending = em._pending_ops.pop(gid, None)
    leaf = g.tree.leaf(g.own_leaf)
    assert leaf is not None
    if leaf.encryption_key in hg.proposed:
        hg.active = hg.proposed[leaf.encryption_key]
    elif pending is not None:
        hg.active = pending[0]
    hg.proposed.clear()
    hg.sent.clear()

def follow_external_join(em: Emulator, group_info: bytes, commit: bytes) -> Received:
    """A sibling's external commit (announced by an ExternalJoin, §5.5.2): rebuild the
    group it joined from the GroupInfo it used and the re-derived keys (P17)."""
    body = MLSMessage.decode(commit).body
    if not isinstance(body, PublicMessage):
        raise DecodeError("an external commit is a PublicMessage (RFC 9420 §12.4.3.2)")
    group_id = body.content.group_id
    latest = em.vc.profile is Profile.LATEST  # latest §5.5.2: no announcement
    if group_id not in em.expected_joins and not latest:
        fail("VC-EXTERNAL-JOIN-UNANNOUNCED", "an external commit of the virtual client "
                                             "no ExternalJoin announced")
    content = body.content.content
    if not isinstance(content, Commit) or content.path is None:
        fail("CM-NEW-MEMBER-COMMIT-PATH", "not an external commit with a path")
    gcs = _group_info_suite(group_info)
    comp = dinfo.find_in_leaf(content.path.leaf_node, em.vc.ext_codepoints,
                              em.vc.codepoints)
    if comp is None:
        fail("VC-DERIVATION-INFO", "the external commit's LeafNode has no DerivationInfo")
    ep = em.epochs.for_derivation(comp.epoch_id)
    assert ep.encryption_key is not None
    leaf = content.path.leaf_node
    if ep.profile is Profile.LATEST:
        return _follow_latest_external_join(em, ep, comp, leaf, gcs, group_info, commit)
    tbe = dinfo.open_info(em.ecs, comp, ep.encryption_key, leaf.encryption_key)
    d = _plan_rederivation(em, ep, tbe.leaf_index, tbe.random)
    keys = em.operation_keys(gcs, d)
    if keys.encryption[1] != leaf.encryption_key or keys.signature[1] != leaf.signature_key:
        fail("VC-REDERIVED-KEY-MISMATCH", "a re-derived key differs from the LeafNode's")
    group = Group.follow_external_join(
        group_info, commit, Identity(leaf.credential, *keys.signature),
        SiblingCommitKeys(keys.path_secret, keys.encryption[0]), keys.external_init_seed,
        em.group_config())
    commit_derivation(d)
    em.expected_joins.discard(group_id)
    em.groups[group_id] = HigherGroup(group, LeafOp(ep.epoch_id, keys.leaf_node_secret))
    em.collect()
    return Received(group_id, None, joined=True)


def _follow_latest_external_join(em: Emulator, ep: EmulationEpoch,
                                 comp: dinfo.DerivationInfoComponent, leaf: LeafNode,
                                 gcs: CipherSuite, group_info: bytes, commit: bytes
                                 ) -> Received:
    """latest §5.3, §5.5.2: the external join material (the GroupInfo the sibling
    used) with the external Commit: the leaf_node operation re-derived, and the init
    secret taken from the DerivationInfoTBE (VC-EXTERNAL-INIT-MISSING when absent)."""
    gi = MLSMessage.decode(group_info).body
    assert isinstance(gi, GroupInfo)
    group_id = gi.group_context.group_id
    tbe, keys, plan = _latest_leaf_keys(em, ep, leaf, comp, group_id, gcs)
    if tbe.external_init_secret is None:
        fail("VC-EXTERNAL-INIT-MISSING", "the external Commit's DerivationInfoTBE carries "
                                         "no external_init_secret (latest §5.3)")
    group = Group.follow_external_join(
        group_info, commit, Identity(leaf.credential, *keys.signature),
        SiblingCommitKeys(keys.path_secret, keys.encryption[0]), None, em.group_config(),
        init_secret=tbe.external_init_secret)
    plan.commit()
    em.expected_joins.discard(group_id)
    em.groups[group_id] = HigherGroup(group, LeafOp(ep.epoch_id, keys.leaf_node_secret))
    em.collect()
    return Received(group_id, None, joined=True)


def follow_group_creation(em: Emulator, group_info: bytes) -> Received:
    """latest §5.4, a sibling's group creation material: verify the GroupInfo and its
    tree (Group.follow_creation), decrypt the DerivationInfo of the creator LeafNode
    (key_package, key_package_index 0: VC-DERIVATION-INFO otherwise), re-derive the
    dedicated key_package operation on a copy of the tree, check the leaf's keys
    (VC-REDERIVED-KEY-MISMATCH), re-derive epoch_secret and rebuild epoch 0 ("If the
    GroupInfo cannot be verified using the resulting epoch state, the emulator client
    MUST reject": CM-CONFIRMATION-TAG). Nothing changes on error."""
    if em.vc.profile is not Profile.LATEST:
        raise StateError("group creation by the virtual client is latest §5.4 only")
    body = MLSMessage.decode(group_info).body
    if not isinstance(body, GroupInfo):
        raise DecodeError("not a GroupInfo message")
    group_id = body.group_context.group_id
    if group_id in em.groups:
        raise StateError(f"the virtual client is in group {group_id.hex()} already")
    tree_ext = RatchetTreeExtension.find_in(body.extensions)
    leaf = None if tree_ext is None or not tree_ext.nodes else tree_ext.nodes[0]
    if not isinstance(leaf, LeafNode):
        fail("VC-DERIVATION-INFO", "the group creation material has no creator LeafNode")
    comp = dinfo.find_in_leaf(leaf, em.vc.ext_codepoints, em.vc.codepoints)
    if comp is None:
        fail("VC-DERIVATION-INFO", "the creator LeafNode has no DerivationInfo")
    ep = em.epochs.for_derivation(comp.epoch_id)
    assert ep.encryption_key is not None
    tree = _tree_of(ep)
    tbe = dinfo.open_tbe(em.ecs, comp, ep.encryption_key, leaf)
    if tbe.leaf_node_source is not LeafNodeSource.KEY_PACKAGE or tbe.key_package_index != 0:
        fail("VC-DERIVATION-INFO", "a creator LeafNode is a key_package LeafNode with "
                                   "key_package_index 0 (latest §5.4)")
    if tbe.leaf_index not in ep.roster:
        fail("VC-SENDER-NOT-EMULATOR",
             f"leaf {tbe.leaf_index} is no emulator of emulation epoch {ep.epoch}")
    gcs = get_suite(body.group_context.cipher_suite)
    plan = PlannedOperation.plan(em.ecs, tree, tbe.leaf_index, OperationType.KEY_PACKAGE,
                                 tbe.generation)
    batch = KeyPackageBatch.from_operation(em.ecs, plan.operation, [0])
    keys = latest_operation_keys(em.ecs, gcs, batch.sub_secrets(em.ecs, 0))
    if keys.encryption[1] != leaf.encryption_key or keys.signature[1] != leaf.signature_key:
        fail("VC-REDERIVED-KEY-MISMATCH", "a re-derived key differs from the LeafNode's")
    group = Group.follow_creation(group_info, Identity(leaf.credential, *keys.signature),
                                  keys.encryption[0], batch.group_creation_epoch_secret(gcs),
                                  em.group_config())
    plan.commit()
    em.groups[group_id] = HigherGroup(group, LeafOp(ep.epoch_id, keys.leaf_node_secret))
    em.collect()
    return Received(group_id, None, joined=True)


_SUITES = (1, 2, 3, 4, 5, 6, 7)


def _identity_of(leaf: LeafNode) -> bytes:
    cred = leaf.credential
    return cred.identity if isinstance(cred, BasicCredential) else cred.encode()


def _external_commit_of_ours(message: MLSMessage, hg: HigherGroup | None) -> bool:
    """An external commit the virtual client made: delivered for a group it is not in
    (the DS fans it out to the virtual client it acts for), or removing its leaf (a
    resync: EC-RESYNC-CREDENTIAL makes the joiner the virtual client)."""
    body = message.body
    if (not isinstance(body, PublicMessage)
            or body.content.sender.sender_type != SenderType.NEW_MEMBER_COMMIT):
        return False
    commit = body.content.content
    return hg is None or (isinstance(commit, Commit) and any(
        isinstance(p, Remove) and p.removed == hg.group.own_leaf for p in commit.proposals))


def _own_update(msg: MLSMessage, own_leaf: LeafIndex) -> LeafNode | None:
    """The LeafNode of an Update proposal from our own (shared) leaf, sent as a
    PublicMessage by a sibling."""
    body = msg.body
    if not isinstance(body, PublicMessage):
        return None
    fc = body.content
    if (fc.sender.sender_type != SenderType.MEMBER or fc.sender.leaf_index != own_leaf
            or not isinstance(fc.content, Update)):
        return None
    return fc.content.leaf_node


def _group_info_suite(group_info: bytes) -> CipherSuite:
    body = MLSMessage.decode(group_info).body
    if not isinstance(body, GroupInfo):
        raise DecodeError("not a GroupInfo message")
    return get_suite(body.group_context.cipher_suite)
