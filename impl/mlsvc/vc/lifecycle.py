"""Emulation group management (draft-ietf-mls-virtual-clients-00 §4; profile P13, P14,
P18, P21): adding an emulator by Welcome with a NewEmulatorClientState, onboarding by
external join with a ResyncMessage, removing an emulator.

Theory of operation.
- Add (§4.1, P13, P18): a caught-up emulator with nothing pending commits an Add to the
  emulation group; the Welcome's GroupInfo (only that one: never a published GroupInfo)
  carries the NewEmulatorClientState (mlsvc.vc.state) under component 0x8003. The new
  emulator installs it: the referenced emulation epochs (with their punctured PPRFs;
  under the profile "latest", their operation secret trees, each a copy taken when the
  state is built, never the provisioner's live tree, and reuse_guard_secret), every
  higher-level group by state transfer or marked for an external join, the
  announced KeyPackages, the virtual client's long-term signing key. It holds no index in
  the epochs it was given, so it cannot send in a group until the virtual client's leaf
  there comes from an epoch it is a member of (P9; VC-SEND-BEFORE-ROTATION).
- Onboard (§4.2, P14): without a sibling online, a new emulator joins the emulation group
  by external commit (from a published GroupInfo, which must not carry a
  NewEmulatorClientState: VC-NECS-OUTSIDE-WELCOME), sends a ResyncMessage with the
  virtual client's new long-term key as its first application message there, replaces
  the KeyPackages and resyncs every higher-level group by external commit (removing the
  virtual client's prior leaf: never two leaves, finding F7).
- Remove (§4.3, P21), in the profile's order: the DS deletes every outstanding
  KeyPackage (F6); the remover commits the Remove; it gives the remaining emulators a new
  long-term signing key in a ResyncMessage of the new epoch, which the removed emulator
  cannot read (F11); then it commits with a path in every higher-level group, from the
  new epoch. `removal_finished` holds once every virtual-client leaf comes from an
  emulation epoch at or after the removal; until then the removed emulator can still
  read those groups, as the profile says.

~~~ tls
struct { opaque signature_private_key<V>; } ResyncMessage;     // §4.2
~~~
A ResyncMessage is an application message of the emulation group (P14). Receiving one,
an emulator adopts the key and forgets the announced KeyPackages (the DS has deleted
them: onboarding replaces them, removal deletes them).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import StateError
from mlsvc.ext.components import AppDataDictionary
from mlsvc.messages.extensions import Extension, Extensions
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.vc.epoch import EmulationEpoch
from mlsvc.vc.operation_tree import OperationSecretTree
from mlsvc.vc.state import (
    GroupTransfer,
    HigherGroup,
    NewEmulatorClientState,
    decode_state,
    transfer_group,
)

if TYPE_CHECKING:
    from mlsvc.vc.emulator import Emulator


@dataclass(frozen=True, slots=True)
class ResyncMessage(Struct):
    """§4.2: struct { opaque signature_private_key<V>; } ResyncMessage;"""

    signature_private_key: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.signature_private_key)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


def state_for_new_emulator(em: Emulator, external: Collection[bytes] = ()
                           ) -> NewEmulatorClientState:
    """P13 from a provisioning emulator, which must be caught up and have nothing
    pending (P18: the caller has processed every message of every group first)."""
    if em.pending or em.has_pending_action:
        raise StateError("P18: a provisioning emulator has nothing in flight")
    unknown = set(external) - set(em.groups)
    if unknown:
        raise StateError(f"not in the groups {sorted(g.hex() for g in unknown)}")
    groups: list[GroupTransfer] = []
    for gid, hg in sorted(em.groups.items()):
        if gid in external:
            groups.append(GroupTransfer(gid, None))
        else:
            groups.append(transfer_group(hg.group, hg.active, sorted(hg.proposed.items())))
    # a group the provisioner itself must still join by external commit (P13), the new
    # emulator must join that way too (found by the refinement test: it lost the marker)
    groups += [GroupTransfer(gid, None) for gid in sorted(em.join_externally - set(em.groups))]
    groups.sort(key=lambda t: t.group_id)
    return NewEmulatorClientState(
        em.vc_signing_key,
        tuple(_transferable(em, em.epochs.epochs[n]) for n in sorted(em.epochs.epochs)),
        tuple(groups), tuple(em.key_packages[r] for r in sorted(em.key_packages)),
        em.vc.profile)


def _transferable(em: Emulator, e: EmulationEpoch) -> EmulationEpoch:
    """The epoch as the state carries it: a latest epoch with a copy of its operation
    secret tree (`OperationTreeState.copy`), so that the state is what the tree was when
    it was built and the provisioner's later derivations never reach it."""
    if e.tree is None:
        return e
    return replace(e, tree=OperationSecretTree.from_state(em.ecs, e.tree.state.copy()))


def welcome_extension(em: Emulator, state: NewEmulatorClientState) -> Extension:
    """The GroupInfo extension of the Welcome: app_data_dictionary with 0x8003."""
    d = AppDataDictionary.of({em.vc.codepoints.new_emulator_client_state: state.encode()})
    return d.to_extension(em.vc.ext_codepoints)


def state_in(em: Emulator, extensions: Extensions) -> bytes | None:
    d = AppDataDictionary.find_in(extensions, em.vc.ext_codepoints)
    return None if d is None else d.get(em.vc.codepoints.new_emulator_client_state)


def check_published_group_info(em: Emulator, group_info: bytes) -> GroupInfo:
    """A GroupInfo published for external joins never carries a NewEmulatorClientState
    (P13): VC-NECS-OUTSIDE-WELCOME."""
    body = MLSMessage.decode(group_info).body
    if not isinstance(body, GroupInfo):
        from mlsvc.errors import DecodeError
        raise DecodeError("not a GroupInfo message")
    if state_in(em, body.extensions) is not None:
        fail("VC-NECS-OUTSIDE-WELCOME", "a published GroupInfo carries a "
                                        "NewEmulatorClientState (only a Welcome may, P13)")
    return body


def install(em: Emulator, group_info: GroupInfo) -> None:
    """The new emulator takes over the state a Welcome's GroupInfo carries (P13); the
    emulation group is joined already, its current epoch not yet opened."""
    data = state_in(em, group_info.extensions)
    if data is None:
        fail("VC-NECS-MISSING", "the Welcome into the emulation group carries no "
                                "NewEmulatorClientState (P13)")
    state = decode_state(data, em.ecs.id, em.vc.profile)
    config = em.group_config()
    groups = {g.group_id: g for g in state.groups}
    transferred = {gid: g.group(config) for gid, g in groups.items() if g.saved_group}
    own = em.emu.own_leaf
    for e in state.epochs:  # decoded just now: a tree here is this emulator's alone
        em.epochs.epochs[e.epoch] = EmulationEpoch(
            e.epoch, e.epoch_id, e.leaf_count, own, e.roster, e.generation_id_secret,
            e.pprf, e.encryption_key, e.retained, e.base_secret, tree=e.tree,
            reuse_guard_secret=e.reuse_guard_secret)
    for gid, group in transferred.items():
        g = groups[gid]
        assert g.active is not None
        em.groups[gid] = HigherGroup(group, g.active, dict(g.proposed))
    em.join_externally.update(gid for gid, g in groups.items() if g.saved_group is None)
    for kp in state.key_packages:
        em.key_packages[kp.bundle.ref(em.suite_of(kp.group_suite))] = kp
    em.vc_signing_key = state.signature_private_key


def removal_finished(em: Emulator, removed: bytes) -> bool:
    """P21: every virtual-client leaf comes from an emulation epoch at or after the
    removal of `removed` (known from the Remove this emulator processed or sent)."""
    epoch = em.removals.get(removed)
    if epoch is None:
        raise StateError(f"no removal of {removed!r} seen")
    for hg in em.groups.values():
        e = em.epochs.by_id(hg.active.epoch_id)
        if e.epoch < epoch:
            return False
    return True
