"""One emulator client of a virtual client (draft-ietf-mls-virtual-clients-00 §5), sans-IO.

Theory of operation. An `Emulator` holds its membership of the emulation group (an
ordinary `Group` with SafeAAD on, P7), the secrets of the emulation epochs it keeps
(`EpochStore`, §5.2, P19), its view of every higher-level group the virtual client is
in (one `Group` per group, all sharing the virtual client's leaf), and the KeyPackages
the virtual client has announced. Its methods carry the model's transition names
(model/mlsvc_model: create_key_packages, welcome, vc_commit, vc_update, external_join,
send_private_message, deliver) and return `Outgoing` messages; the caller hands them to
the delivery service and reports the verdict with `accepted` or `refused`. Nothing
leaves the emulator in a state that depends on a verdict it has not heard:

- P22: an action that needs the emulation group's agreement (KeyPackageUpload,
  ExternalJoin) is a Commit there first; its second step (uploading the KeyPackages,
  the external commit) is produced only by `accepted`.
- The deriving emulator punctures its PPRF leaf as soon as it derives (P3); a refused
  attempt's keys are never used again (a retry derives anew).
- Receivers derive in two phases (`plan_rederivation`, then `commit_derivation` once the
  message is accepted by the engine), so a rejected message changes nothing.
- P20: in the strong mode every PrivateMessage carries its generation ID and keeps its
  key until the DS's verdict (refused: the key stays so the sibling's winning message
  on that generation can be read); in the eventual mode sent keys stay for W
  generations.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from mlsvc.checks import fail
from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import StateError
from mlsvc.ext.codepoints import APPLICATION_EXPORT_LABEL, DEFAULT_CODEPOINTS, CodePoints
from mlsvc.ext.components import (
    AppDataDictionary,
    capabilities_with_dictionary,
    negotiation_dictionary,
)
from mlsvc.ext.safe_aad import check_authenticated_data, encode_items
from mlsvc.ext.safe_export import SAFE_EXPORT_CONFIG_LABELS, SafeExporter
from mlsvc.group.config import GroupConfig, Identity, default_capabilities
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.extensions import Extension, Extensions, RequiredCapabilities
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Capabilities, LeafNode, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, Proposal, Remove
from mlsvc.types import LeafIndex
from mlsvc.vc import derivation as dinfo
from mlsvc.vc import lifecycle, receive
from mlsvc.vc.actions import (
    ExternalJoin,
    KeyPackageInfo,
    KeyPackageUpload,
    LatestKeyPackageInfo,
    LatestKeyPackageUpload,
    VirtualClientAction,
)
from mlsvc.vc.codepoints import (
    DEFAULT_VC_CODEPOINTS,
    EVENTUAL_SENT_KEY_WINDOW,
    RETAINED_EPOCHS,
    OperationType,
    RatchetType,
    VCCodePoints,
)
from mlsvc.vc.codepoints import (
    Consistency as Consistency,
)
from mlsvc.vc.epoch import EmulationEpoch, EpochStore, open_epoch
from mlsvc.vc.generation_id import generation_id
from mlsvc.vc.operation import (
    Derivation,
    OperationKeys,
    derive_and_commit,
    latest_operation_keys,
    leaf_node_secret,
    literal_subsecrets,
    operation_keys,
)
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile
from mlsvc.vc.readings import NO_READINGS, Readings

# re-exported: the emulator's API names these (they live beside what uses them)
from mlsvc.vc.receive import Received as Received
from mlsvc.vc.receive import (
    _group_info_suite,
    _identity_of,
)
from mlsvc.vc.reuse_guard import check_x, make_reuse_guard_x, reuse_guard_key_secret
from mlsvc.vc.state import HeldKeyPackage, LeafOp
from mlsvc.vc.state import HigherGroup as HigherGroup


@dataclass(frozen=True)
class VirtualClientConfig:
    """What the emulators of one virtual client share (profile P7, P19, P20)."""

    name: bytes  # the virtual client's identity (BasicCredential) in higher-level groups
    emulation_suite: int = 1
    consistency: Consistency = Consistency.STRONG
    retained_epochs: int = RETAINED_EPOCHS
    sent_key_window: int = EVENTUAL_SENT_KEY_WINDOW
    codepoints: VCCodePoints = DEFAULT_VC_CODEPOINTS
    ext_codepoints: CodePoints = DEFAULT_CODEPOINTS
    # literal readings of draft-00 (mlsvc.vc.readings): findings, never for deployment
    readings: Readings = NO_READINGS
    # the text the virtual client follows (mlsvc.vc.profiles): draft-00 or the later
    # text; recorded in the emulation group's GroupContext (VCCodePoints.profile)
    profile: Profile = DEFAULT_PROFILE


class OutgoingKind(Enum):
    EMULATION_COMMIT = "emulation_commit"
    COMMIT = "commit"
    PROPOSAL = "proposal"
    APPLICATION = "application"
    EXTERNAL_COMMIT = "external_commit"
    EMULATION_APPLICATION = "emulation_application"  # a ResyncMessage (§4.2, P14)


@dataclass(frozen=True)
class Outgoing:
    """A message an emulator wants the DS to order (and what it is about)."""

    kind: OutgoingKind
    group_id: bytes
    message: bytes
    generation_id: bytes | None = None
    generation: int | None = None
    action: VirtualClientAction | None = None
    # application: the AEAD nonce actually used (key_schedule_nonce XOR reuse_guard) and
    # the (sender leaf, generation) naming the secret-tree key, for the key/nonce audit
    key_id: tuple[bytes, int, int, int] | None = None  # (group_id, epoch, leaf, generation)
    nonce: bytes | None = None
    group_info: bytes | None = None  # external commit: the GroupInfo it was made from
    welcome: bytes | None = None  # emulation Commit adding emulators: their Welcome
    # application: the reuse guard's input x (§5.8), for audits of the partition
    reuse_guard_x: int | None = None


@dataclass(frozen=True)
class Accepted:
    """What `accepted` hands back: KeyPackages to upload (KeyPackageUpload step two), or
    the external commit to send (ExternalJoin step two)."""

    key_packages: tuple[bytes, ...] = ()
    next: Outgoing | None = None


@dataclass
class EmulatorStats:
    resamples: int = 0  # P3: the deriver's leaf was punctured
    rederivations: int = 0
    collisions: int = 0  # Q7 / F5


@dataclass
class _Pending:
    """An emulation Commit carrying an action, waiting for the DS's verdict (P22)."""

    out: Outgoing
    key_packages: tuple[KeyPackageBundle, ...] = ()
    external_group_info: bytes | None = None
    removing: bytes | None = None  # a Remove of this emulator (§4.3)
    onboarding: bool = False  # our external commit into the emulation group (§4.2)
    deleted_key_packages: frozenset[bytes] | None = None  # P21: what the DS deleted


class Emulator:
    """An emulator client (see the module docstring)."""

    def __init__(self, name: bytes, identity: Identity, vc: VirtualClientConfig,
                 rng: RandomSource, clock: Callable[[], int] | None = None, *,
                 export_observer: Callable[[int, bytes], None] | None = None) -> None:
        """`export_observer(epoch, application_export_secret)` sees the Safe Exporter's
        root of every emulation epoch before it is consumed: for generating test
        vectors (mlsvc.conformance.vc) only, never in a deployment."""
        self.name = name
        self.export_observer = export_observer
        self.identity = identity  # long-term signing key in the emulation group (Q8)
        self.vc = vc
        self.rng = rng
        self.ecs: CipherSuite = get_suite(vc.emulation_suite)
        self.emulation_config = self._emulation_config(clock)
        self.emulation: Group | None = None
        self.epochs = EpochStore(vc.retained_epochs)
        self.groups: dict[bytes, HigherGroup] = {}
        self.key_packages: dict[bytes, HeldKeyPackage] = {}
        self.expected_joins: set[bytes] = set()  # a sibling's ExternalJoin, commit not seen
        self.announced_joins: set[bytes] = set()  # our own ExternalJoin, commit not accepted
        self._replaced: dict[bytes, HigherGroup] = {}  # resync: the group until accepted
        self.pending: dict[bytes, Outgoing] = {}  # group_id -> our message awaiting a verdict
        self._action: _Pending | None = None
        self._pending_ops: dict[bytes, tuple[LeafOp, Derivation | None]] = {}
        self.stats = EmulatorStats()
        # §4: the virtual client's long-term signing key (Q8; rotated on removal, P21),
        # emulators removed (name -> the emulation epoch their removal opened), groups a
        # new emulator must join by external commit (P13), and whether we were removed
        self.vc_signing_key = b""
        self.removals: dict[bytes, int] = {}
        self.join_externally: set[bytes] = set()
        self.removed = False
        # the loop's delivery cursors (group_id -> last DS position processed), kept with
        # the state so a restart neither loses nor repeats a delivery
        self.cursors: dict[bytes, int] = {}
        # KeyPackageUpload step two: KeyPackages to hand the DS (until `uploaded`)
        self.to_upload: list[bytes] = []

    # --- configuration --------------------------------------------------------------------

    def _emulation_config(self, clock: Callable[[], int] | None) -> GroupConfig:
        cp = self.vc.ext_codepoints

        def validator(context: GroupContext, authenticated_data: bytes) -> None:
            check_authenticated_data(context.extensions, authenticated_data, cp)

        def one_leaf_per_emulator(old: Extensions, new: Extensions,
                                  proposals: Sequence[Proposal],
                                  members: Sequence[tuple[LeafIndex, LeafNode]]) -> None:
            removed = {p.removed for p in proposals if isinstance(p, Remove)}
            present = {_identity_of(leaf) for i, leaf in members if i not in removed}
            for p in proposals:
                if isinstance(p, Add):
                    ident = _identity_of(p.key_package.leaf_node)
                    if ident in present:
                        fail("VC-EMULATOR-DUPLICATE", f"emulator {ident!r} is a member "
                                                      "already (§4.1)")
                    present.add(ident)

        config = GroupConfig(rng=self.rng, supported_extensions=(cp.app_data_dictionary,),
                             additional_epoch_secrets=SAFE_EXPORT_CONFIG_LABELS,
                             message_validator=validator,
                             proposal_list_validator=one_leaf_per_emulator)
        return config if clock is None else replace(config, clock=clock)

    def group_config(self) -> GroupConfig:
        """The GroupConfig of the virtual client's higher-level groups."""
        return GroupConfig(rng=self.rng,
                           supported_extensions=(self.vc.ext_codepoints.app_data_dictionary,),
                           group_id_in_use=lambda group_id: group_id in self.groups)

    def _emulation_capabilities(self) -> Capabilities:
        return capabilities_with_dictionary(default_capabilities(self.ecs.id),
                                            cp=self.vc.ext_codepoints)

    def _emulation_leaf_extensions(self) -> tuple[Extension, ...]:
        a = self.vc.codepoints.virtual_client_action
        return (negotiation_dictionary([a], [a], cp=self.vc.ext_codepoints)
                .to_extension(self.vc.ext_codepoints),)

    def emulation_group_context(self) -> tuple[Extension, ...]:
        """P7: app_data_dictionary with safe_aad listing VirtualClientAction, and
        required_capabilities making every member support app_data_dictionary."""
        cp = self.vc.ext_codepoints
        a = self.vc.codepoints.virtual_client_action
        d = negotiation_dictionary([a], [a], cp=cp)
        if self.vc.profile is not Profile.DRAFT_00:
            # issue 15: the profile recorded in the group (absent: draft-00)
            d = d.with_entry(self.vc.codepoints.profile, self.vc.profile.value.encode())
        return (d.to_extension(cp),
                RequiredCapabilities((cp.app_data_dictionary,), (), ()).to_extension())

    def _check_profile(self, group: Group) -> None:
        """The emulation group's recorded profile (`recorded_profile`) must be this
        emulator's configured one: VC-PROFILE-MISMATCH otherwise."""
        found = recorded_profile(group.context.extensions, self.vc.ext_codepoints,
                                 self.vc.codepoints)
        if found is not self.vc.profile:
            fail("VC-PROFILE-MISMATCH", f"the emulation group follows {found.value}, this "
                                        f"emulator is configured for {self.vc.profile.value}")

    # --- the emulation group (§4, §5.2) ------------------------------------------------

    def create_emulation_group(self, group_id: bytes | None = None) -> None:
        """The first emulator creates the emulation group (an ordinary MLS group)."""
        if self.emulation is not None:
            raise StateError("this emulator already is in an emulation group")
        self.emulation = Group.create(
            self.ecs, self.identity, self.emulation_config, group_id=group_id,
            extensions=self.emulation_group_context(),
            capabilities=self._emulation_capabilities(),
            leaf_extensions=self._emulation_leaf_extensions())
        self.vc_signing_key = self.rng(self.ecs.nh)
        self._open_emulation_epoch()

    def emulation_key_package(self) -> KeyPackageBundle:
        """An ordinary KeyPackage for joining the emulation group."""
        return create_key_package(self.ecs, self.identity, self.emulation_config,
                                  capabilities=self._emulation_capabilities(),
                                  leaf_extensions=self._emulation_leaf_extensions())

    def join_emulation_group(self, welcome: bytes, key_package: KeyPackageBundle) -> None:
        """§4.1: join from a Welcome whose GroupInfo carries the NewEmulatorClientState
        (VC-NECS-MISSING otherwise); nothing changes on error."""
        if self.emulation is not None:
            raise StateError("this emulator already is in an emulation group")
        group = Group.join(welcome, key_package, self.emulation_config)
        assert group.welcome_group_info is not None
        self._check_profile(group)
        self.emulation = group
        try:
            lifecycle.install(self, group.welcome_group_info)
        except BaseException:
            self.emulation = None
            self.epochs = EpochStore(self.vc.retained_epochs)
            self.groups.clear()
            self.key_packages.clear()
            self.join_externally.clear()
            raise
        self._open_emulation_epoch()

    @classmethod
    def onboard_external(cls, name: bytes, identity: Identity, vc: VirtualClientConfig,
                         rng: RandomSource, emulation_group_info: bytes
                         ) -> tuple[Emulator, Outgoing]:
        """§4.2 steps 1-2: a new emulator joins the emulation group by external commit
        with a fresh long-term signing key for the virtual client. After the DS accepts
        the commit, `accepted` returns the ResyncMessage to send."""
        em = cls(name, identity, vc, rng)
        lifecycle.check_published_group_info(em, emulation_group_info)
        group, commit = Group.external_join(
            emulation_group_info, identity, em.emulation_config,
            capabilities=em._emulation_capabilities(),
            leaf_extensions=em._emulation_leaf_extensions(),
            authenticated_data=encode_items({}))  # SafeAAD framing is on there (P7)
        em._check_profile(group)
        em.emulation = group
        em.vc_signing_key = rng(em.ecs.nh)
        out = Outgoing(OutgoingKind.EMULATION_COMMIT, group.group_id, commit)
        em._action = _Pending(out, onboarding=True)
        return em, out

    @property
    def has_pending_action(self) -> bool:
        return self._action is not None

    def uploaded(self) -> None:
        """The DS holds the KeyPackages of our last KeyPackageUpload (§5.5.1)."""
        self.to_upload = []

    def pending_action_message(self) -> Outgoing:
        """The emulation Commit of the pending action (awaiting the DS's verdict)."""
        if self._action is None:
            raise StateError("no action pending")
        return self._action.out

    def suite_of(self, suite: int) -> CipherSuite:
        return get_suite(suite)

    @property
    def emu(self) -> Group:
        if self.emulation is None:
            raise StateError("not in an emulation group yet")
        return self.emulation

    def _open_emulation_epoch(self) -> None:
        """§5.2 for the emulation group's new epoch; emulator_epoch_secret is not kept."""
        g = self.emu
        if self.export_observer is not None:
            root = g.state.secrets.additional.get(APPLICATION_EXPORT_LABEL)
            if root is not None:
                self.export_observer(g.epoch, root)
        secret = SafeExporter.from_group(g).export(self.vc.codepoints.derivation_info)
        roster = {int(i): _identity_of(leaf) for i, leaf in g.members()}
        self.epochs.add(open_epoch(self.ecs, secret, g.epoch, g.tree.leaf_count, g.own_leaf,
                                   roster,
                                   keep_base_secret=self.vc.readings.literal_p4_subsecrets,
                                   profile=self.vc.profile))
        self.collect()

    def collect(self, quiescent: bool = False) -> list[int]:
        """Delete emulation epochs no live key material references (§5.2 "until no key
        material derived from it is actively used anymore"); returns their numbers.

        `quiescent=True`: the caller asserts that this emulator has processed everything
        the DS holds for it. Then the model's deletion rule applies
        (mlsvc_model.common.collect): every unreferenced epoch but the latest goes,
        regardless of the P19 window (EpochStore.collect_quiescent), and every retained
        operation (Q7) whose operation is not live any more is dropped from its epoch
        (live: the active and proposed LeafNodes of every group, including a group being
        resynced and a commit awaiting its verdict, and the held KeyPackages; a retained
        operation is related to its LeafOp by leaf_node_secret)."""
        if not quiescent:
            refs: set[bytes] = set()
            for hg in self.groups.values():
                refs.add(hg.active.epoch_id)
                refs.update(op.epoch_id for op in hg.proposed.values())
            refs.update(kp.op.epoch_id for kp in self.key_packages.values())
            return self.epochs.collect(refs)
        live = self._live_ops()
        gone = self.epochs.collect_quiescent({op.epoch_id for op in live})
        for ep in self.epochs.epochs.values():
            for leaf, kept in list(ep.retained.items()):
                op = LeafOp(ep.epoch_id, self._leaf_node_secret(ep, kept.operation_secret))
                if op not in live:
                    del ep.retained[leaf]
        return gone

    def _live_ops(self) -> set[LeafOp]:
        """The operations whose key material is in use (mlsvc_model.common.live_ops)."""
        live: set[LeafOp] = set()
        for hg in (*self.groups.values(), *self._replaced.values()):
            live.add(hg.active)
            live.update(hg.proposed.values())
        live.update(op for op, _ in self._pending_ops.values())
        live.update(kp.op for kp in self.key_packages.values())
        return live

    def _leaf_node_secret(self, ep: EmulationEpoch, operation_secret: bytes) -> bytes:
        """P8: an operation's leaf_node_secret (its encryption_key_secret). Under F1
        every operation of the epoch has the epoch's (so a live one keeps them all)."""
        if self.vc.readings.literal_p4_subsecrets and ep.base_secret is not None:
            return literal_subsecrets(self.ecs, ep).encryption_key_secret
        return leaf_node_secret(self.ecs, operation_secret)

    def operation_keys(self, group_suite: CipherSuite, d: Derivation) -> OperationKeys:
        """The keys of an operation in a group of `group_suite` (P4, P5; the literal
        reading F1 takes the sub-secrets from epoch_base_secret)."""
        return operation_keys(self.ecs, group_suite, d,
                              literal_p4_subsecrets=self.vc.readings.literal_p4_subsecrets)

    def emulation_commit(self, action: VirtualClientAction | None = None) -> Outgoing:
        """A Commit with a path in the emulation group (an emulator's own update, and the
        vehicle of every action, §5.5) with the action as SafeAAD item."""
        return self._emulation_commit(action)

    def _emulation_commit(self, action: VirtualClientAction | None = None,
                          proposals: Sequence[Proposal] = (),
                          welcome_extensions: Extensions = ()) -> Outgoing:
        if self._action is not None or self.emu.has_pending_commit:
            raise StateError("an emulation Commit of this emulator is already pending")
        items = {} if action is None else {
            self.vc.codepoints.virtual_client_action: action.encode()}
        out = self.emu.commit(proposals, force_path=True, authenticated_data=encode_items(items),
                              welcome_extensions=welcome_extensions)
        result = Outgoing(OutgoingKind.EMULATION_COMMIT, self.emu.group_id, out.commit,
                          action=action, welcome=out.welcome)
        self._action = _Pending(result)
        return result

    # --- §4 emulation group management (details in lifecycle.py) -------------------------

    def add_emulator(self, key_package: KeyPackage, external: Collection[bytes] = ()
                     ) -> Outgoing:
        """§4.1 (P13, P18): Add a new emulator; its Welcome carries the state it needs.
        Groups in `external` it joins by external commit instead of state transfer."""
        ident = _identity_of(key_package.leaf_node)
        if ident in {_identity_of(leaf) for _, leaf in self.emu.members()}:
            fail("VC-EMULATOR-DUPLICATE", f"emulator {ident!r} is a member already (§4.1)")
        state = lifecycle.state_for_new_emulator(self, external)
        return self._emulation_commit(
            proposals=[Add(key_package)],
            welcome_extensions=(lifecycle.welcome_extension(self, state),))

    def remove_emulator(self, name: bytes, deleted_key_packages: Collection[bytes] | None = None
                        ) -> Outgoing:
        """§4.3 (P21) step three: commit the Remove; `accepted` returns the ResyncMessage
        with the virtual client's new long-term key (step two, in the new epoch).
        `deleted_key_packages`: the refs the DS deleted in step one; `accepted` forgets
        those (None: every KeyPackage held). A KeyPackage a Welcome used before the
        deletion stays, for that Welcome (found by the refinement test)."""
        if name == self.name:
            raise StateError("an emulator does not remove itself this way")
        out = self._emulation_commit(proposals=[Remove(self.emulation_leaf_of(name))])
        assert self._action is not None
        self._action.removing = name
        self._action.deleted_key_packages = (None if deleted_key_packages is None
                                             else frozenset(deleted_key_packages))
        return out

    def emulation_leaf_of(self, name: bytes) -> LeafIndex:
        """The emulation-group leaf of emulator `name` (VC-EMULATOR-NOT-MEMBER)."""
        leaf = next((i for i, node in self.emu.members() if _identity_of(node) == name), None)
        if leaf is None:
            fail("VC-EMULATOR-NOT-MEMBER", f"{name!r} is no emulator of this virtual client")
        return leaf

    def resync_message(self, key: bytes) -> Outgoing:
        """§4.2 / P14: a ResyncMessage with the virtual client's long-term key."""
        msg = self.emu.encrypt(lifecycle.ResyncMessage(key).encode(), encode_items({}))
        result = Outgoing(OutgoingKind.EMULATION_APPLICATION, self.emu.group_id, msg)
        self.pending[self.emu.group_id] = result
        return result

    # --- actions (§5.5) ------------------------------------------------------------------

    def _derive(self) -> Derivation:
        """A new operation from the emulation group's latest epoch (P19), punctured at
        once by the deriver (P3)."""
        d = derive_and_commit(self.ecs, self.epochs.latest, self.rng)
        self.stats.resamples += d.resamples
        return d

    def _vc_identity(self, keys: OperationKeys) -> Identity:
        return Identity(BasicCredential(self.vc.name), *keys.signature)

    def _leaf_capabilities(self, group_suite: int) -> Capabilities:
        return capabilities_with_dictionary(default_capabilities(group_suite),
                                            cp=self.vc.ext_codepoints)

    def _derivation_extension(self, d: Derivation, encryption_key: bytes) -> Extension:
        ep = d.epoch
        assert ep.encryption_key is not None
        comp = dinfo.seal(self.ecs, ep.epoch_id, ep.encryption_key, encryption_key,
                          dinfo.EpochInfoTBE(d.leaf_index, d.random))
        return dinfo.leaf_extension(comp, None, self.vc.ext_codepoints, self.vc.codepoints)

    def _leaf_material(self, group_id: bytes, group_suite: CipherSuite,
                       source: LeafNodeSource, external_init_secret: bytes | None = None
                       ) -> tuple[OperationKeys, Extension, bytes]:
        """The keys, the DerivationInfo extension and the emulation epoch_id of a new
        LeafNode of the virtual client in `group_id` (an Update, a commit's path or an
        external commit, §5.3): draft-00 from a new PPRF operation; latest §5.2/§5.3 from
        the next generation of this emulator's leaf_node ratchet with the group_id as
        operation_context, consumed at once (a retry takes a fresh one), the
        DerivationInfoTBE naming it (with the external init secret of an external
        commit)."""
        if self.vc.profile is Profile.LATEST:
            ep = self.epochs.latest
            if ep.tree is None or ep.encryption_key is None:
                raise StateError(f"emulation epoch {ep.epoch} has no operation secret tree "
                                 "(it is not a latest epoch)")
            op = ep.tree.next_operation(int(ep.own_leaf), OperationType.LEAF_NODE, group_id)
            keys = latest_operation_keys(self.ecs, group_suite, op.sub_secrets(self.ecs))
            tbe = dinfo.DerivationInfoTBE(op.leaf_index, op.generation, source,
                                          external_init_secret=external_init_secret)
            comp = dinfo.seal_tbe(self.ecs, ep.epoch_id, ep.encryption_key,
                                  keys.encryption[1], tbe)
            ext = dinfo.leaf_extension(comp, None, self.vc.ext_codepoints,
                                       self.vc.codepoints)
            return keys, ext, ep.epoch_id
        d = self._derive()
        keys = self.operation_keys(group_suite, d)
        return keys, self._derivation_extension(d, keys.encryption[1]), d.epoch.epoch_id

    def latest_key_package_of(self, ep: EmulationEpoch, leaf_index: int, generation: int,
                              index: int, keys: OperationKeys, group_suite: int
                              ) -> HeldKeyPackage:
        """A KeyPackage from a seed's keys: its LeafNode carries the DerivationInfo with
        (leaf_index, generation, key_package_index) of latest §5.3."""
        assert ep.encryption_key is not None
        gcs = get_suite(group_suite)
        tbe = dinfo.DerivationInfoTBE(leaf_index, generation, LeafNodeSource.KEY_PACKAGE,
                                      key_package_index=index)
        comp = dinfo.seal_tbe(self.ecs, ep.epoch_id, ep.encryption_key, keys.encryption[1],
                              tbe)
        bundle = create_key_package(
            gcs, self._vc_identity(keys), self.group_config(), init_key_pair=keys.init,
            encryption_key_pair=keys.encryption,
            capabilities=self._leaf_capabilities(group_suite),
            leaf_extensions=(dinfo.leaf_extension(comp, None, self.vc.ext_codepoints,
                                                  self.vc.codepoints),))
        return HeldKeyPackage(bundle, LeafOp(ep.epoch_id, keys.leaf_node_secret), group_suite)

    def create_group(self, group_id: bytes, group_suite: int | None = None,
                     extensions: Extensions = ()) -> bytes:
        """latest §5.4: the virtual client creates a higher-level group. The creator
        LeafNode (leaf_node_source key_package) comes from a dedicated key_package
        operation: a fresh generation, the single seed of key_package_index 0, no
        KeyPackageUpload (the batch is closed at once); the group's first epoch_secret
        is DeriveSecret(key_package_seed_secret, "Group Creation") with the group's
        suite. Returns the group creation material (the GroupInfo, with the ratchet
        tree) that the application MUST fan out to every current emulator before
        anything else of the group (they call `follow_group_creation`). A retry takes a
        fresh generation (call again). StateError under draft-00, which does not
        address group creation by the virtual client (docs/PROFILES.md)."""
        if self.vc.profile is not Profile.LATEST:
            raise StateError("draft-00 does not specify how the virtual client creates a "
                             "group (latest §5.4 does: use the latest profile)")
        if group_id in self.groups:
            raise StateError(f"the virtual client is in group {group_id.hex()} already")
        suite = group_suite or self.vc.emulation_suite
        gcs = get_suite(suite)
        _check_suite_kdf(self.ecs, gcs)
        ep = self.epochs.latest
        if ep.tree is None or ep.encryption_key is None:
            raise StateError(f"emulation epoch {ep.epoch} has no operation secret tree")
        own = int(ep.own_leaf)
        batch = ep.tree.next_key_package_batch(own, [0])
        keys = latest_operation_keys(self.ecs, gcs, batch.sub_secrets(self.ecs, 0))
        tbe = dinfo.DerivationInfoTBE(own, batch.generation, LeafNodeSource.KEY_PACKAGE,
                                      key_package_index=0)
        comp = dinfo.seal_tbe(self.ecs, ep.epoch_id, ep.encryption_key, keys.encryption[1],
                              tbe)
        g = Group.create(gcs, self._vc_identity(keys), self.group_config(),
                         group_id=group_id, extensions=extensions,
                         encryption_key_pair=keys.encryption,
                         capabilities=self._leaf_capabilities(suite),
                         leaf_extensions=(dinfo.leaf_extension(comp, None,
                                                               self.vc.ext_codepoints,
                                                               self.vc.codepoints),),
                         epoch_secret=batch.group_creation_epoch_secret(gcs))
        self.groups[group_id] = HigherGroup(g, LeafOp(ep.epoch_id, keys.leaf_node_secret))
        return g.group_info()

    def follow_group_creation(self, group_info: bytes) -> Received:
        """A sibling's group creation material (receive.follow_group_creation)."""
        return receive.follow_group_creation(self, group_info)

    def _create_latest_key_packages(self, count: int, suite: int) -> Outgoing:
        """latest §5.5.1: one key_package generation for the batch, a seed per
        key_package_index 0..count-1 (consecutive from zero, as the text recommends), the
        batch closed by the KeyPackageUpload (the seeds are not kept)."""
        ep = self.epochs.latest
        if ep.tree is None:
            raise StateError(f"emulation epoch {ep.epoch} has no operation secret tree")
        own = int(ep.own_leaf)
        batch = ep.tree.next_key_package_batch(own, range(count))
        gcs = get_suite(suite)
        held = [self.latest_key_package_of(
                    ep, own, batch.generation, i,
                    latest_operation_keys(self.ecs, gcs, batch.sub_secrets(self.ecs, i)),
                    suite)
                for i in range(count)]
        infos = tuple(LatestKeyPackageInfo(h.bundle.ref(gcs), i) for i, h in enumerate(held))
        action = VirtualClientAction(LatestKeyPackageUpload(ep.epoch_id, own,
                                                            batch.generation, infos))
        out = self.emulation_commit(action)
        assert self._action is not None
        self._action.key_packages = tuple(h.bundle for h in held)
        for h in held:
            self.key_packages[h.bundle.ref(gcs)] = h
        return out

    def _key_package(self, d: Derivation, group_suite: int) -> HeldKeyPackage:
        gcs = get_suite(group_suite)
        keys = self.operation_keys(gcs, d)
        bundle = create_key_package(
            gcs, self._vc_identity(keys), self.group_config(), init_key_pair=keys.init,
            encryption_key_pair=keys.encryption,
            capabilities=self._leaf_capabilities(group_suite),
            leaf_extensions=(self._derivation_extension(d, keys.encryption[1]),))
        return HeldKeyPackage(bundle, LeafOp(d.epoch.epoch_id, keys.leaf_node_secret),
                              group_suite)

    def create_key_packages(self, count: int, group_suite: int | None = None) -> Outgoing:
        """§5.5.1 step one: derive `count` KeyPackages from the current epoch (P16) and
        announce them in a KeyPackageUpload Commit. `accepted` returns them for upload."""
        if count < 1:
            raise StateError("create at least one KeyPackage")
        suite = group_suite or self.vc.emulation_suite
        gcs = get_suite(suite)
        _check_suite_kdf(self.ecs, gcs)  # before anything is derived or punctured
        if self.vc.profile is Profile.LATEST:
            return self._create_latest_key_packages(count, suite)
        derived = [self._derive() for _ in range(count)]
        held = [self._key_package(d, suite) for d in derived]
        infos = [KeyPackageInfo(h.bundle.ref(gcs), d.random) for h, d in zip(held, derived,
                                                                             strict=True)]
        action = VirtualClientAction(KeyPackageUpload(self.epochs.latest.epoch_id,
                                                      tuple(infos)))
        out = self.emulation_commit(action)
        assert self._action is not None
        self._action.key_packages = tuple(h.bundle for h in held)
        for h in held:
            self.key_packages[h.bundle.ref(get_suite(suite))] = h
        return out

    def external_join(self, group_id: bytes, group_info: bytes) -> Outgoing:
        """§5.5.2 step one: an ExternalJoin Commit; `accepted` then returns the external
        commit into `group_id` made from `group_info` (P17)."""
        _check_suite_kdf(self.ecs, _group_info_suite(group_info))  # before announcing it
        if self.vc.profile is Profile.LATEST:
            # latest §5.5.2: no ExternalJoin action; the external commit reaches the
            # siblings through the DS with its external join material
            self._require_no_pending(group_id)
            return self.external_commit(group_id, group_info)
        out = self.emulation_commit(VirtualClientAction(ExternalJoin(group_id)))
        assert self._action is not None
        self._action.external_group_info = group_info
        return out

    def accepted(self, out: Outgoing) -> Accepted:
        """The DS accepted `out`: enter its epoch, and produce the action's second step."""
        if out.kind is OutgoingKind.EMULATION_COMMIT:
            pending = self._action
            if pending is None or pending.out != out:
                raise StateError("no such emulation Commit pending")
            self._action = None
            if pending.onboarding:
                # an external commit: the group is in the new epoch already (§4.2)
                self._open_emulation_epoch()
                return Accepted(next=self.resync_message(self.vc_signing_key))
            self.emu.merge_pending_commit()
            self._open_emulation_epoch()
            if pending.removing is not None:
                self.removals[pending.removing] = self.emu.epoch
                readings = self.vc.readings
                if not readings.removal_keeps_signing_key:  # F11 keeps it
                    self.vc_signing_key = self.rng(self.ecs.nh)  # P21: a new long-term key
                if not readings.removal_keeps_key_packages:  # F6 keeps them
                    gone = pending.deleted_key_packages  # P21: the DS deleted them
                    for ref in list(self.key_packages) if gone is None else gone:
                        self.key_packages.pop(ref, None)
                self.collect()
                return Accepted(next=self.resync_message(self.vc_signing_key))
            if pending.key_packages:
                self.to_upload = [MLSMessage(b.key_package).encode()
                                  for b in pending.key_packages]
                return Accepted(key_packages=tuple(self.to_upload))
            if pending.external_group_info is not None:
                assert isinstance(out.action, VirtualClientAction)
                body = out.action.body
                assert isinstance(body, ExternalJoin)
                self.announced_joins.add(body.group_id)
                return Accepted(next=self.external_commit(body.group_id,
                                                          pending.external_group_info))
            return Accepted()
        pending_out = self.pending.pop(out.group_id, None)
        if pending_out != out:
            raise StateError("no such message pending in that group")
        if out.kind is OutgoingKind.EMULATION_APPLICATION:
            return Accepted()
        if out.kind is OutgoingKind.COMMIT:
            hg = self.groups[out.group_id]
            hg.group.merge_pending_commit()
            receive.after_commit(self, hg)
        elif out.kind is OutgoingKind.EXTERNAL_COMMIT:
            self.announced_joins.discard(out.group_id)  # the group is installed already
            self.join_externally.discard(out.group_id)
            self._replaced.pop(out.group_id, None)
        elif out.kind is OutgoingKind.APPLICATION and out.generation is not None:
            hg = self.groups[out.group_id]
            if self.vc.consistency is Consistency.STRONG:
                hg.group.release_sent_key(out.generation)  # §9.2: nobody else used it
            else:
                self._keep_sent(hg, out.generation)
        return Accepted()

    def _keep_sent(self, hg: HigherGroup, generation: int) -> None:
        """P20 (eventual): the shared leaf's keys stay for W generations, then go."""
        if generation not in hg.sent:
            hg.sent.append(generation)
        while len(hg.sent) > self.vc.sent_key_window:
            hg.group.release_sent_key(hg.sent.pop(0))

    def refused(self, out: Outgoing) -> None:
        """The DS refused `out` (another message won, P20/P22): drop it; nothing derived
        for it is used again. A refused application message keeps its generation's key
        so the winner on that generation can be read."""
        if out.kind is OutgoingKind.EMULATION_COMMIT:
            if self._action is None or self._action.out != out:
                raise StateError("no such emulation Commit pending")
            for b in self._action.key_packages:
                self.key_packages.pop(b.ref(get_suite(b.key_package.cipher_suite)), None)
            self._action = None
            self.emu.clear_pending_commit()
            return
        if self.pending.pop(out.group_id, None) != out:
            raise StateError("no such message pending in that group")
        if out.kind is OutgoingKind.COMMIT:
            self.groups[out.group_id].group.clear_pending_commit()
            self._pending_ops.pop(out.group_id, None)
        elif out.kind is OutgoingKind.EXTERNAL_COMMIT:
            prior = self._replaced.pop(out.group_id, None)
            if prior is None:
                del self.groups[out.group_id]
            else:
                self.groups[out.group_id] = prior  # a refused resync: keep our leaf
        elif out.kind is OutgoingKind.APPLICATION and out.generation is not None:
            self.groups[out.group_id].sent.append(out.generation)

    # --- acting in a higher-level group (§5.3) -------------------------------------------

    def _require_no_pending(self, group_id: bytes) -> None:
        if group_id in self.pending:
            raise StateError("a message of this emulator in that group awaits the DS")

    def _group(self, group_id: bytes) -> HigherGroup:
        hg = self.groups.get(group_id)
        if hg is None:
            raise StateError(f"the virtual client is not in group {group_id.hex()}")
        return hg

    def vc_commit(self, group_id: bytes, adds: Sequence[KeyPackage] = ()) -> Outgoing:
        """A Commit with a path from the virtual client's leaf (§5.3): LeafNode keys and
        the first path secret derived from a new operation, DerivationInfo attached.
        `adds`: KeyPackages of new members the commit adds (their Welcome is
        `Outgoing.welcome`, for the caller to route once the DS accepts the commit)."""
        self._require_no_pending(group_id)
        hg = self._group(group_id)
        g = hg.group
        keys, ext, epoch_id = self._leaf_material(group_id, g.cipher_suite,
                                                  LeafNodeSource.COMMIT)
        out = g.commit([Add(kp) for kp in adds], force_path=True,
                       path_secret=keys.path_secret, encryption_key_pair=keys.encryption,
                       identity=self._vc_identity(keys), leaf_extensions=(ext,))
        self._pending_ops[group_id] = (LeafOp(epoch_id, keys.leaf_node_secret), None)
        result = Outgoing(OutgoingKind.COMMIT, group_id, out.commit, welcome=out.welcome)
        self.pending[group_id] = result
        return result

    def vc_update(self, group_id: bytes) -> Outgoing:
        """An Update proposal of the virtual client's leaf (§5.3) from a new operation."""
        self._require_no_pending(group_id)
        hg = self._group(group_id)
        if hg.proposed:
            # RFC 9420 §12.2: one Update per leaf in a commit; ours is waiting already
            raise StateError("an Update of the virtual client's leaf is pending in this "
                             "epoch: commit it first")
        keys, ext, epoch_id = self._leaf_material(group_id, hg.group.cipher_suite,
                                                  LeafNodeSource.UPDATE)
        msg = hg.group.propose_update(encryption_key_pair=keys.encryption,
                                      identity=self._vc_identity(keys), leaf_extensions=(ext,))
        hg.proposed[keys.encryption[1]] = LeafOp(epoch_id, keys.leaf_node_secret)
        result = Outgoing(OutgoingKind.PROPOSAL, group_id, msg)
        self.pending[group_id] = result
        return result

    def external_commit(self, group_id: bytes, group_info: bytes) -> Outgoing:
        """§5.5.2 step two: the external commit into `group_id` (after the ExternalJoin
        Commit was accepted; again after a refusal, from a newer GroupInfo)."""
        latest = self.vc.profile is Profile.LATEST
        if group_id not in self.announced_joins and not latest:
            raise StateError("announce the external join first (§5.5.2: MUST send an "
                             "ExternalJoin message to the emulation group)")
        gi_suite = _group_info_suite(group_info)
        lifecycle.check_published_group_info(self, group_info)
        init_seed: bytes | None = None
        init_secret: bytes | None = None
        if latest:
            # latest §5.3: the init secret of a fresh encapsulation travels in the
            # DerivationInfoTBE (no ExternalInit seed is derived)
            _check_suite_kdf(self.ecs, gi_suite)
            init_seed = self.rng(gi_suite.kem.nsk)
            init_secret = Group.external_init(group_info, init_seed)[1]
        keys, ext, epoch_id = self._leaf_material(group_id, gi_suite, LeafNodeSource.COMMIT,
                                                  external_init_secret=init_secret)
        old = self.groups.get(group_id)
        readings = self.vc.readings
        # a resync removes the virtual client's prior leaf: never two leaves (F7); a new
        # emulator without the group's state finds that leaf by the credential. The
        # literal reading resync_without_remove (F7) keeps it.
        remove_prior = None if readings.resync_without_remove else (
            old.group.own_leaf if old is not None else _vc_leaf(group_info, self.vc.name))
        # P17: the ExternalInit from the operation, so siblings can follow; the literal
        # reading random_external_init (F10) encapsulates at random (they cannot)
        seed = None if readings.random_external_init else keys.external_init_seed
        if latest:
            seed = init_seed
        group, commit = Group.external_join(
            group_info, self._vc_identity(keys), self.group_config(),
            remove_prior=remove_prior, encryption_key_pair=keys.encryption,
            path_secret=keys.path_secret, capabilities=self._leaf_capabilities(gi_suite.id),
            leaf_extensions=(ext,), external_init_seed=seed)
        if old is not None:
            self._replaced[group_id] = old
        self.groups[group_id] = HigherGroup(group, LeafOp(epoch_id, keys.leaf_node_secret))
        result = Outgoing(OutgoingKind.EXTERNAL_COMMIT, group_id, commit,
                          group_info=group_info)
        self.pending[group_id] = result
        return result

    def can_send(self, group_id: bytes) -> bool:
        """P9: whether this emulator was a member of the emulation epoch the virtual
        client's LeafNode in `group_id` comes from (else: rotate the leaf first)."""
        hg = self._group(group_id)
        ep = self.epochs.by_id(hg.active.epoch_id)
        return ep.roster.get(int(ep.own_leaf)) == _identity_of_identity(self.identity)

    def reuse_guard_position(self, group_id: bytes) -> tuple[LeafIndex, int]:
        """§5.8, P9: (leaf_index, N) for this emulator's reuse guard in `group_id`: its
        index and the leaf count at the emulation epoch e the active LeafNode names;
        VC-SEND-BEFORE-ROTATION when it was no member of e. The literal readings take
        this emulator's current (latest) emulation epoch instead: always
        (reuse_guard_local_epoch, F8), or when it was no member of e
        (send_before_rotation, F2, which also lifts the refusal)."""
        hg = self._group(group_id)
        ep = self.epochs.by_id(hg.active.epoch_id)
        readings = self.vc.readings
        if readings.reuse_guard_local_epoch:
            cur = self.epochs.latest
            return cur.own_leaf, cur.leaf_count
        if not self.can_send(group_id):
            if readings.send_before_rotation:
                cur = self.epochs.latest
                return cur.own_leaf, cur.leaf_count
            fail("VC-SEND-BEFORE-ROTATION", "this emulator was no member of the emulation "
                                            "epoch the virtual client's leaf comes from (P9)")
        return ep.own_leaf, ep.leaf_count

    def send_private_message(self, group_id: bytes, data: bytes, *, x: int | None = None
                             ) -> Outgoing:
        """§5.6-§5.9: an application message with the FF1 reuse guard (P8-P10, Q5) and,
        in the strong mode, its generation ID (Q4).

        `x`: the reuse guard's input chosen by the caller instead of at random (the
        model's adversarial sender picks it; a refinement test replays that choice). It
        must be a uint32 with x mod N == leaf_index for the epoch the reuse guard uses
        (`reuse_guard_position`), else ParameterError before anything changes (the
        sending ratchet does not advance). The x used is `Outgoing.reuse_guard_x`."""
        self._require_no_pending(group_id)
        hg = self._group(group_id)
        ep = self.epochs.by_id(hg.active.epoch_id)  # Q4: the generation ID's epoch e
        leaf_index, n_leaves = self.reuse_guard_position(group_id)
        if x is not None:
            check_x(x, leaf_index, n_leaves)  # before the ratchet moves
        seen: list[tuple[bytes, int, bytes, int]] = []

        key_secret = reuse_guard_key_secret(ep.profile,
                                            leaf_node_secret=hg.active.leaf_node_secret,
                                            reuse_guard_secret=ep.reuse_guard_secret)

        def guard(nonce: bytes, generation: int) -> bytes:
            rg, used_x = make_reuse_guard_x(self.ecs, key_secret, nonce,
                                            leaf_index, n_leaves, self.rng, x)
            seen.append((nonce, generation, rg, used_x))
            return rg

        g = hg.group
        msg = g.encrypt(data, reuse_guard=guard, retain_key=True)
        nonce, generation, rg, used_x = seen[0]
        latest = ep.profile is Profile.LATEST  # latest §5.6.3: group_id and epoch bound in
        gid = generation_id(self.ecs, ep.generation_id_secret, generation,
                            RatchetType.APPLICATION, profile=ep.profile,
                            group_id=group_id if latest else None,
                            epoch=g.epoch if latest else None)
        used = bytes(a ^ b for a, b in zip(nonce[:4], rg, strict=True)) + nonce[4:]
        result = Outgoing(OutgoingKind.APPLICATION, group_id, msg,
                          generation_id=gid if self.vc.consistency is Consistency.STRONG
                          else None, generation=generation,
                          key_id=(group_id, g.epoch, int(g.own_leaf), generation), nonce=used,
                          reuse_guard_x=used_x)
        self.pending[group_id] = result
        return result

    # --- receiving (§5.1: the DS fans the virtual client's messages out to us) ------------
    # (mlsvc.vc.receive: the Welcome, the emulation group, siblings' messages)

    def welcome(self, welcome: bytes) -> Received:
        """Join a higher-level group from a Welcome for an announced KeyPackage
        (receive.welcome)."""
        return receive.welcome(self, welcome)

    def deliver(self, group_id: bytes, message: bytes, *,
                welcomed: Collection[bytes] = ()) -> Received:
        """Process one message the DS delivered (receive.deliver)."""
        return receive.deliver(self, group_id, message, welcomed=welcomed)

    def follow_external_join(self, group_info: bytes, commit: bytes) -> Received:
        """A sibling's announced external commit (receive.follow_external_join)."""
        return receive.follow_external_join(self, group_info, commit)


def _identity_of_identity(identity: Identity) -> bytes:
    cred = identity.credential
    return cred.identity if isinstance(cred, BasicCredential) else cred.encode()


def _check_suite_kdf(emulation_suite: CipherSuite, group_suite: CipherSuite) -> None:
    """Q3 for a local request, checked before any state changes (operation_keys checks
    it again at derivation time)."""
    if group_suite.nh != emulation_suite.nh:
        fail("VC-SUITE-KDF", "the higher-level group's KDF differs from the emulation "
                             "group's (Q3)")


def _vc_leaf(group_info: bytes, vc_name: bytes) -> LeafIndex | None:
    """The virtual client's leaf in a published GroupInfo's tree (its BasicCredential),
    or None when it has none."""
    body = MLSMessage.decode(group_info).body
    assert isinstance(body, GroupInfo)
    ext = RatchetTreeExtension.find_in(body.extensions)
    if ext is None:
        return None
    for i, node in enumerate(ext.nodes[::2]):
        if isinstance(node, LeafNode):
            cred = node.credential
            if isinstance(cred, BasicCredential) and cred.identity == vc_name:
                return LeafIndex(i)
    return None


def recorded_profile(extensions: Extensions, cp: CodePoints = DEFAULT_CODEPOINTS,
                     vcp: VCCodePoints = DEFAULT_VC_CODEPOINTS) -> Profile:
    """The profile an emulation group's GroupContext records (issue 15): the entry
    `vcp.profile` of its app_data_dictionary holds the profile's name in ASCII
    ("latest"); no entry means draft-00 (groups made before the profile was recorded,
    and the draft-00 test vectors, whose GroupContext has none). VC-PROFILE-MISMATCH for
    an entry naming no known profile, or naming draft-00 (which is never written)."""
    d = AppDataDictionary.find_in(extensions, cp)
    data = None if d is None else d.get(vcp.profile)
    if data is None:
        return Profile.DRAFT_00
    try:
        found = Profile(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        found = None
    if found is None or found is Profile.DRAFT_00:
        fail("VC-PROFILE-MISMATCH", f"the emulation group records an unknown profile "
                                    f"{data!r}")
    return found
