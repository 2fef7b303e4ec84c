"""One world in two: the model's `World` and a running system, stepped together.

Theory of operation. `Bridge.step(name, **args)` applies the model transition `name`
(mlsvc_model.transitions.apply) and the same operation to the implementation: the
emulators of one virtual client ("vc") driven through `VirtualClient` without its
loop's own syncing (the model decides every interleaving), a `DeliveryService`, and
one member per higher-level group (our engine as a peer) standing for "another member".
Both sides must agree on whether the step is allowed: a model refusal
(PreconditionError) must meet an implementation refusal of the kind PRECONDITIONS maps
it to, and an implementation refusal of an applied step is a refinement failure. Then
the DS hands the implementation exactly the deliveries the model made (`World.delivered`
in order), emulators that have processed everything apply the deletion rule (§5.2,
`Emulator.collect(quiescent=True)`, the model's `collect`), and the caller compares the
abstraction of both states (`abstraction.py`) and checks the invariants on the
implementation's bytes (`invariants.py`).

The correspondence of names: model emulators E0, E1, ... are the implementation's
emulators of the same names; model groups G1, G2, ... are groups b"group-G1" with a
member "member-G1"; model KeyPackages KP1, ... are the DS's KeyPackageRefs in upload
order; a model operation is identified in the implementation by the PPRF leaf its
deriver punctured (epoch, leaf) and by the LeafNode encryption key it produced;
emulation epoch k of the model is the implementation's epoch k + `offset` (creating the
emulation group and adding E1 takes the implementation two epochs, the model none).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import DeliveryService, Submitted
from mlsvc.ds.errors import DeliveryError
from mlsvc.ds.state import Consistency as DSConsistency
from mlsvc.errors import MLSError, StateError
from mlsvc.group.config import Identity
from mlsvc.group.events import CommitApplied
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.peers import make_peer
from mlsvc.peers.base import Peer
from mlsvc.vc.emulator import Emulator, Outgoing
from mlsvc.vc.operation import OperationSecrets, literal_subsecrets
from mlsvc.vc.readings import Readings
from mlsvc.virtual_client import Event, VirtualClient
from mlsvc_model.common import fully_caught_up
from mlsvc_model.config import Config
from mlsvc_model.errors import PreconditionError
from mlsvc_model.state import EMULATION, Message, World
from mlsvc_model.transitions import apply, initial_world

VC = "vc"
SUITE = 1
# the model's deletion rule keeps an epoch's secrets while an emulator lags (it deletes
# only when caught up); the implementation's P19 window (R = 1) deletes earlier, which
# the model does not describe, so the bridge runs with a window that never closes and
# lets `collect(quiescent=True)` apply the model's rule (docs/REFINEMENT.md)
RETAINED = 1 << 20
READING_FIELDS = (
    "literal_p4_subsecrets", "send_before_rotation", "literal_p11_ds_scope",
    "removal_keeps_key_packages", "resync_without_remove", "reuse_guard_local_epoch",
    "random_external_init", "removal_keeps_signing_key", "derive_from_stale_epoch",
)


@dataclass(frozen=True)
class Attribution:
    """A sibling's reading of a reuse guard (§5.8), with the roster it used."""

    receiver: str
    sender: str  # who really sent it (the DS's connection)
    epoch: int | None  # the model's number of the emulation epoch it read
    leaf: int | None
    named: str | None  # the emulator at that leaf of that epoch, in the receiver's roster


class RefinementError(AssertionError):
    """The implementation did not do what the model did (or the other way round)."""


@dataclass(frozen=True)
class Precondition:
    """A model precondition and what the implementation must answer instead.

    kind "protocol": the implementation must refuse with one of `impl` (an exception
    class name, a check id, or "ds:<reason>" for a DS verdict). kind "environment": the
    precondition is about the other members or the model's size bounds, not the virtual
    client's protocol; the machine does not generate it (and a replay skips the step on
    both sides)."""

    pattern: str
    kind: str
    impl: tuple[str, ...]
    why: str


PRECONDITIONS: tuple[Precondition, ...] = (
    Precondition(r"was removed from the emulation group", "protocol",
                 ("StateError", "ds:not-a-member", "ds:not-an-emulator"),
                 "a removed emulator's requests are refused (§4.3)"),
    Precondition(r"has not processed every emulation-group message", "protocol",
                 ("StaleEmulationEpoch", "ds:commit-conflict", "ds:stale-epoch", "NotCaughtUp"),
                 "M4 / §5.5: derive and commit only on the emulation group's latest epoch"),
    Precondition(r"has unprocessed messages \(M3\)", "protocol",
                 ("NotCaughtUp",),
                 "M3 / P18: the provisioning emulator has processed every message"),
    Precondition(r"is not outstanding at the DS", "protocol",
                 ("no-key-package",),
                 "§5.5.1: a Welcome uses an outstanding KeyPackage"),
    Precondition(r"the DS accepts a Commit only on the current epoch", "protocol",
                 ("ds:commit-conflict", "ds:stale-epoch", "NotCaughtUp"),
                 "RFC 9750 §5.2 / P22: the first Commit of an epoch wins"),
    Precondition(r"its view is behind the group's epoch", "protocol",
                 ("ds:stale-epoch", "ds:commit-conflict"),
                 "the DS orders messages of the current epoch only"),
    Precondition(r"P9: .* was not a member at epoch", "protocol",
                 ("VC-SEND-BEFORE-ROTATION",),
                 "P9: a new emulator does not send before the leaf is rotated"),
    Precondition(r"no usable view", "protocol",
                 ("StateError", "ds:stale-epoch", "ds:commit-conflict", "VC-EPOCH-UNKNOWN",
                  "VC-EPOCH-DELETED"),
                 "an emulator acts only in a group it follows"),
    Precondition(r"nothing to deliver", "protocol", ("NothingToDeliver",),
                 "the DS has nothing more for this emulator in that log"),
    Precondition(r"is not an active emulator", "protocol",
                 ("VC-EMULATOR-NOT-MEMBER", "StateError"),
                 "§4.3: only a member of the emulation group is removed"),
    Precondition(r"an emulator does not remove itself", "protocol", ("StateError",),
                 "§4.3: an emulator removes another"),
    Precondition(r"first process the emulation group to epoch", "environment", (),
                 "the loop processes the DS's messages in its total order (the emulation "
                 "group's first, VirtualClient.sync); the machine draws only deliverable "
                 "messages"),
    Precondition(r"must first join .* \(P13 marker\)", "environment", (),
                 "an emulator told to join by external commit reads the group only after "
                 "its join"),
    Precondition(r"has nothing it can process", "environment", (),
                 "catch_up with nothing to do is not drawn"),
    Precondition(r"already follows .*: a resync is for an emulator without its state",
                 "environment", (), "the model offers a resync only to an emulator without "
                 "the group's state; the machine draws it only there"),
    Precondition(r"is not a group without the VC|no group G|at most six emulators|"
                 r"between 1 and 4 KeyPackages|r out of range|unknown (kind|variant)|"
                 r"no emulator E|every PPRF leaf of the epoch is punctured|the virtual "
                 r"client is not in", "environment", (),
                 "the other members' choices and the model's size bounds"),
)


def precondition_of(reason: str) -> Precondition:
    for p in PRECONDITIONS:
        if re.search(p.pattern, reason):
            return p
    raise RefinementError(f"a model precondition without a mapping: {reason!r}")


def also_refused(w: World, name: str, args: dict[str, object]) -> set[str]:
    """Implementation refusals that another precondition of the same step explains: the
    model reports the first that fails, the implementation may check another first
    (e.g. P9 before the DS's epoch check). Each is read from the model's state."""
    names: set[str] = set()
    em = w.emulators.get(str(args.get("emulator")))
    if em is None:
        return names
    if not em.active:
        names |= {"StateError", "ds:not-a-member"}
    if em.emu_cursor != len(w.emu_log):
        names |= {"StaleEmulationEpoch", "ds:commit-conflict", "ds:stale-epoch", "NotCaughtUp"}
    if not fully_caught_up(w, em):
        names.add("NotCaughtUp")
    if name == "remove_emulator" and args.get("target") == args.get("emulator"):
        names.add("StateError")
    g = w.groups.get(str(args.get("group")))
    view = em.groups.get(str(args.get("group")))
    if g is not None and view is not None:
        if view.cursor != len(g.log):
            names |= {"NotCaughtUp", "ds:commit-conflict", "ds:stale-epoch"}
        if view.epoch != g.epoch:
            names |= {"ds:stale-epoch", "ds:commit-conflict"}
        if (name == "send_private_message" and view.leaves and not w.config.send_before_rotation
                and w.ops[view.leaves[-1]].epoch not in em.leaf_at):
            names.add("VC-SEND-BEFORE-ROTATION")
    return names


def error_names(exc: BaseException) -> set[str]:
    """Every name an implementation refusal answers to: its class and base classes, its
    check id and DS code."""
    names = {c.__name__ for c in type(exc).__mro__}
    for attr in ("check_id", "code"):
        v = getattr(exc, attr, None)
        if isinstance(v, str):
            names.add(v)
    return names


class Refused(Exception):
    """The implementation refused a step (an error or a DS verdict), with its names."""

    def __init__(self, names: set[str], detail: str) -> None:
        super().__init__(detail)
        self.names = names
        self.detail = detail


class NotCaughtUp(StateError):
    """M3 / P18: the emulator has not processed everything the DS holds for it."""


@dataclass
class ImplOp:
    """What the implementation shows of one model operation."""

    epoch: int  # the implementation's emulation epoch
    leaf: int  # the PPRF leaf its deriver punctured
    leaf_index: int
    random: bytes
    operation_secret: bytes
    creator: str


@dataclass
class GroupSide:
    name: str
    group_id: bytes
    member: str
    peer: Peer


@dataclass
class StepResult:
    transition: str
    args: dict[str, object]
    model: str  # "applied -> result" or "refused: reason"
    impl: str  # "applied", "refused: names" or "skipped (environment)"


@dataclass
class Bridge:
    """See the module docstring."""

    config: Config
    seed: bytes = b"refine"
    world: World = field(init=False)
    ds: DeliveryService = field(init=False)
    vc: VirtualClient = field(init=False)
    offset: int = field(init=False)
    groups: dict[str, GroupSide] = field(default_factory=dict)
    ops: dict[int, ImplOp] = field(default_factory=dict)
    by_enc: dict[bytes, list[int]] = field(default_factory=dict)
    kp_refs: dict[str, bytes] = field(default_factory=dict)
    broken: dict[tuple[str, str], str] = field(default_factory=dict)
    history: list[StepResult] = field(default_factory=list)
    messages: list[tuple[str, Outgoing, bool]] = field(default_factory=list)
    attempts: list[tuple[str, Outgoing, bool]] = field(default_factory=list)
    # what outsiders see besides the DS's logs of the groups (which the checks read there):
    # GroupInfos, Welcomes and uploaded KeyPackages
    public: list[bytes] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.world = initial_world(self.config)
        readings = Readings(**{f: bool(getattr(self.config, f)) for f in READING_FIELDS})
        self.ds = DeliveryService(DSConsistency.STRONG,
                                  literal_p11_ds_scope=self.config.literal_p11_ds_scope)
        names = sorted(self.world.emulators)
        self.vc = VirtualClient.create(self.ds, VC, names, suite=SUITE, seed=self.seed,
                                       readings=readings, retained_epochs=RETAINED)
        self.offset = self.vc.emulators[names[0]].emu.epoch - self.world.epoch.number
        self.vc.listeners.append(self._listen)
        self._housekeeping()

    def _listen(self, event: Event) -> None:
        """Record every sibling attribution (§5.8) with the roster it was read against."""
        r = event.received
        if r.sibling_leaf is None:
            return
        em = self.vc.emulators[event.emulator]
        ep = em.epochs.epochs.get(r.sibling_epoch) if r.sibling_epoch is not None else None
        named = ep.roster.get(r.sibling_leaf) if ep is not None else None
        self.attributions.append(Attribution(
            event.emulator, event.delivery.sender,
            None if r.sibling_epoch is None else r.sibling_epoch - self.offset,
            r.sibling_leaf, None if named is None else named.decode()))

    # --- names ----------------------------------------------------------------------------

    @property
    def emulation_group_id(self) -> bytes:
        return self.vc.emulation_group_id

    def emulator(self, name: str) -> Emulator:
        em = self.vc.emulators.get(name) or self.vc.removed.get(name)
        if em is None:
            raise Refused({"StateError"}, f"no emulator {name}")
        return em

    def group_id(self, group: str) -> bytes:
        side = self.groups.get(group)
        if side is None:
            raise Refused({"StateError", "unknown-group"}, f"no group {group}")
        return side.group_id

    def ops_of_enc(self, enc: bytes) -> int | None:
        """The model operation behind a LeafNode encryption key (the newest of several
        when a literal reading makes operations share keys)."""
        ids = self.by_enc.get(enc)
        return max(ids) if ids else None

    # --- stepping -------------------------------------------------------------------------

    def step(self, name: str, **args: object) -> StepResult:
        """Apply `name` to both sides (see the module docstring); RefinementError when
        they disagree on whether it is allowed or on what it did."""
        before_ops = set(self.world.ops)
        delivered = len(self.world.delivered)
        positions = self._model_positions()
        try:
            result = apply(self.world, name, **args)
        except PreconditionError as err:
            return self._refused_by_model(name, args, err)
        res = StepResult(name, dict(args), f"applied -> {result}", "")
        try:
            self._impl(name, args, result, before_ops)
            self._replay_deliveries(delivered, positions)
        except Refused as r:
            raise RefinementError(
                f"step {len(self.world.trace)} {name}({_args(args)}): the model applied it "
                f"({result}), the implementation refused it: {r.detail}") from r
        self._housekeeping()
        res.impl = "applied"
        self.history.append(res)
        return res

    def _refused_by_model(self, name: str, args: dict[str, object],
                          err: PreconditionError) -> StepResult:
        pre = precondition_of(err.reason)
        res = StepResult(name, dict(args), f"refused: {err.reason}", "")
        if pre.kind == "environment":
            res.impl = "skipped (environment precondition)"
            self.history.append(res)
            return res
        try:
            self._impl(name, args, None, set(self.world.ops))
        except Refused as r:
            if not (r.names & (set(pre.impl) | also_refused(self.world, name, args))):
                raise RefinementError(
                    f"{name}({_args(args)}): the model refused it ({err.reason}), the "
                    f"implementation refused it differently: {r.detail} (expected one of "
                    f"{', '.join(pre.impl)})") from r
            res.impl = f"refused: {r.detail}"
            self._housekeeping()
            self.history.append(res)
            return res
        raise RefinementError(f"{name}({_args(args)}): the model refused it ({err.reason}), "
                              "the implementation applied it")

    # --- the implementation's side of each transition ------------------------------------

    def _impl(self, name: str, args: dict[str, object], result: object,
              before_ops: set[int]) -> None:
        handler: Callable[..., None] = getattr(self, f"_do_{name}")
        actor = args.get("emulator")
        if isinstance(actor, str) and actor in self.vc.removed:
            # §4.3: a removed emulator is out of the emulation group; the loop has dropped
            # it (VirtualClient.removed) and the DS no longer takes its messages
            raise Refused({"StateError", "ds:not-a-member"},
                          f"StateError: {actor} was removed from the emulation group")
        try:
            handler(result=result, **args)
        except Refused:
            raise
        except MLSError as exc:
            raise Refused(error_names(exc), f"{type(exc).__name__}: {exc}") from exc
        self._map_new_ops(before_ops, name, args)

    def _submit(self, name: str, make: Callable[[Emulator], Outgoing], *,
                derives: bool = False) -> Submitted:
        verdict = self.vc.act_now(name, make, derives=derives)
        if not verdict.accepted:
            raise Refused({f"ds:{verdict.reason}"}, f"the DS refused it ({verdict.reason})")
        return verdict

    def _do_create_group(self, result: object) -> None:
        gname = str(result) if result is not None else f"G{len(self.groups) + 1}"
        gid = b"group-" + gname.encode()
        member = "member-" + gname
        peer = make_peer("mlsvc", member.encode(), SUITE, seed=self.seed)
        peer.create(gid)
        self.ds.register_client(member)
        self.ds.create_group(gid, 0, [member])
        self.groups[gname] = GroupSide(gname, gid, member, peer)
        self._publish(gname)

    def _publish(self, group: str) -> None:
        side = self.groups[group]
        gi = side.peer.group_info()
        if gi is not None:
            self.ds.publish_group_info(side.group_id, gi)
            self.public.append(gi)

    def _member_submit(self, group: str, message: bytes) -> None:
        side = self.groups[group]
        verdict = self.ds.submit(side.member, message)
        if not verdict.accepted:
            raise Refused({f"ds:{verdict.reason}"}, f"the DS refused the member's message "
                                                    f"({verdict.reason})")

    def _members_catch_up(self) -> None:
        """The other members process everything (they are the model's truth)."""
        for side in self.groups.values():
            for d in self.ds.receive(side.member):
                if d.group_id != side.group_id or d.group_seq is None:
                    continue
                side.peer.process(d.message)

    def _do_member_commit(self, group: str, result: object) -> None:
        side = self.groups[group]
        out = side.peer.commit()
        self._member_submit(group, out.commit)
        self._publish(group)

    def _do_welcome(self, group: str, key_package: str, result: object) -> None:
        side = self.groups[group]
        ref = self.kp_refs.get(key_package)
        entry = next((e for e in self.ds.state.directory.get(VC, []) if e.ref == ref), None)
        if entry is None:
            raise Refused({"no-key-package", "DeliveryError"},
                          f"DeliveryError: {key_package} is not outstanding at the DS")
        out = side.peer.commit(adds=[entry.key_package])
        self._member_submit(group, out.commit)
        assert out.welcome is not None
        self.ds.send_welcome(side.member, side.group_id, out.welcome)
        self.public.append(out.welcome)
        self._publish(group)

    def _do_emulation_commit(self, emulator: str, result: object) -> None:
        self._submit(emulator, lambda em: em.emulation_commit())

    def _do_create_key_packages(self, emulator: str, count: int, salt: int,
                                result: object, replace_all: bool = False) -> None:
        before = set(self.ds.outstanding_key_packages(VC))
        self._submit(emulator, lambda em: em.create_key_packages(count))
        new = [r for r in self.ds.outstanding_key_packages(VC) if r not in before]
        if isinstance(result, tuple):
            if len(new) != len(result):
                raise RefinementError(f"the model made KeyPackages {result}, the DS holds "
                                      f"{len(new)} new ones")
            self.kp_refs.update(zip(map(str, result), new, strict=True))
        for e in self.ds.state.directory.get(VC, []):
            if e.ref in new:
                self.public.append(e.key_package)

    def _do_vc_commit(self, emulator: str, group: str, kind: str, salt: int,
                      result: object) -> None:
        gid = self.group_id(group)
        em = self.emulator(emulator)
        if emulator in self.vc.removed:
            raise Refused({"StateError"}, f"StateError: {emulator} was removed")
        if (emulator, group) in self.broken or gid not in em.groups:
            raise Refused({"StateError"}, f"StateError: {emulator} has no usable view of "
                                          f"{group}")
        self.require_group_caught_up(emulator, gid)
        if kind == "commit":
            self._submit(emulator, lambda e: e.vc_commit(gid), derives=True)
            return
        self._submit(emulator, lambda e: e.vc_update(gid), derives=True)
        # another member commits the Update at once (the model's "update" is one step)
        self._members_catch_up()
        side = self.groups[group]
        out = side.peer.commit_pending()
        self._member_submit(group, out.commit)
        self._publish(group)
        # the actor reads the member's commit of its own Update
        self._deliver(emulator, group)

    def _do_external_join(self, emulator: str, group: str, salt: int, result: object) -> None:
        gid = self.group_id(group)
        if emulator in self.vc.removed:
            raise Refused({"StateError"}, f"StateError: {emulator} was removed")
        self._submit(emulator, lambda em: em.external_join(gid, self.ds.group_info(gid)))
        self.broken.pop((emulator, group), None)

    def _do_add_emulator(self, emulator: str, variant: str, result: object) -> None:
        if emulator in self.vc.removed:
            raise Refused({"StateError"}, f"StateError: {emulator} was removed")
        self.require_caught_up(emulator)
        name = str(result) if result is not None else f"E{len(self.world.emulators)}"
        new = self._new_emulator(name)
        external = (sorted(self.emulator(emulator).groups) if variant == "external_commit"
                    else [])
        self.vc.add_emulator(emulator, new, external=external, join_now=False)

    def _do_onboard_external(self, salt: int, result: object) -> None:
        name = str(result)
        before = set(self.ds.outstanding_key_packages(VC))
        self.vc.onboard(self._new_emulator(name), key_packages=1)
        new = [r for r in self.ds.outstanding_key_packages(VC) if r not in before]
        step_kps = [o for o in self.world.kp_ops if self.world.kp_ops[o] in
                    {op.op_id for op in self.world.ops.values() if op.creator == name
                     and op.kind == "key_package"}]
        self.kp_refs.update(zip(sorted(step_kps, key=lambda r: int(r[2:])), new, strict=True))
        for g in self.groups:
            self.broken.pop((name, g), None)

    def _do_remove_emulator(self, emulator: str, target: str, result: object) -> None:
        if emulator in self.vc.removed:
            raise Refused({"StateError"}, f"StateError: {emulator} was removed")
        self.vc.require_latest(emulator)  # checked in the model's order (M4 first)
        if target == emulator:
            raise Refused({"StateError"}, "StateError: an emulator does not remove itself")
        self.vc.remove_emulator(emulator, target, commit_groups=False, sync=False)

    def _do_send_private_message(self, emulator: str, group: str, r: int,
                                 result: object) -> None:
        gid = self.group_id(group)
        em = self.emulator(emulator)
        if emulator in self.vc.removed:
            raise Refused({"StateError"}, f"StateError: {emulator} was removed")
        if (emulator, group) in self.broken or gid not in em.groups:
            raise Refused({"StateError"}, f"StateError: {emulator} has no usable view")
        x: int | None = None
        if result is not None:
            msg = self.world.messages[-1]
            x = msg.x
        else:
            # refused by the model: the implementation must refuse whatever x it picks
            x = None
        data = f"{emulator}/{len(self.messages)}".encode()
        out = em.send_private_message(gid, data, x=x)
        verdict = self.vc.submit(emulator, out)
        # a message the model refuses has no counterpart there; its ciphertext exists
        # all the same (INV-AEAD-UNIQUE counts it)
        (self.messages if result is not None else self.attempts).append(
            (group, out, verdict.accepted))
        if result is not None:
            delivered = "rejected" not in str(result)
            if verdict.accepted != delivered:
                said = "accepted" if verdict.accepted else f"refused ({verdict.reason})"
                raise RefinementError(
                    f"send_private_message: the model says {result}, the DS {said}")
        elif not verdict.accepted:
            raise Refused({f"ds:{verdict.reason}"}, f"the DS refused it ({verdict.reason})")

    def _do_deliver(self, emulator: str, log: str, result: object) -> None:
        if result is None:
            # refused by the model: the implementation must have nothing to hand over
            self.emulator(emulator)
            gid = (self.emulation_group_id if log == EMULATION else self.group_id(log))
            self.vc.deliver_next(emulator, gid)
        # an applied delivery is replayed from World.delivered

    def _do_catch_up(self, emulator: str, result: object) -> None:
        if result is None:
            raise Refused({"NothingToDeliver"}, "nothing to deliver")

    # --- deliveries -------------------------------------------------------------------------

    def _model_positions(self) -> dict[tuple[str, str], int]:
        """Where each emulator stands in each of the model's logs."""
        w = self.world
        out: dict[tuple[str, str], int] = {}
        for name, em in w.emulators.items():
            out[(name, EMULATION)] = em.emu_cursor
            for g in w.groups.values():
                view = em.groups.get(g.name)
                out[(name, g.name)] = view.cursor if view is not None else g.vc_join_index
        return out

    def _replay_deliveries(self, start: int, positions: dict[tuple[str, str], int]) -> None:
        """The model's deliveries of this step, one by one in the model's order (each
        log in its own order; across logs the order the model chose, which need not be
        the DS's). An emulator's own PrivateMessage, which the model hands back to a
        sender that had not caught up when it sent, the DS never sends back: nothing to
        replay."""
        for emulator, log in self.world.delivered[start:]:
            pos = positions.get((emulator, log))
            if pos is None:  # an emulator or group the step created
                pos = self.world.groups[log].vc_join_index if log != EMULATION else 0
            positions[(emulator, log)] = pos + 1
            if log != EMULATION and pos < len(self.world.groups[log].log):
                entry = self.world.groups[log].log[pos]
                if isinstance(entry, Message) and entry.sender == emulator:
                    continue
            self._deliver(emulator, log)

    def _deliver(self, emulator: str, log: str) -> None:
        """Hand `emulator` the next message of `log` that the model counts as one: an
        Update proposal goes with the Commit that follows it, and a Remove in the
        emulation group with the ResyncMessage that carries the new key (P21)."""
        gid = self.emulation_group_id if log == EMULATION else self.group_id(log)
        em = self.emulator(emulator)
        while True:
            nxt = self._next_delivery(emulator, em, gid)
            if nxt is None:
                raise Refused({"NothingToDeliver"}, f"nothing for {emulator} in {log}")
            stale_welcome = nxt.group_seq is None and gid in em.groups
            broken = self.broken.get((emulator, log))
            removal = False
            if broken is not None:
                # a view the model marked broken: the cursor moves on, nothing is read
                assert nxt.group_seq is not None
                em.cursors[gid] = nxt.group_seq
            else:
                try:
                    event = self.vc.deliver_next(emulator, gid)
                except MLSError as exc:
                    if log == EMULATION:
                        raise Refused(error_names(exc), f"{type(exc).__name__}: {exc}") from exc
                    self.broken[(emulator, log)] = f"{type(exc).__name__}: {exc}"
                    if nxt.group_seq is not None:
                        em.cursors[gid] = max(nxt.group_seq, em.cursors.get(gid, -1))
                    event = None
                ev = event.received.event if event is not None else None
                removal = isinstance(ev, CommitApplied) and bool(ev.removed)
            kind = _kind(nxt.message)
            if kind == "proposal" or stale_welcome:
                continue  # read with what follows (the model has no entry of its own)
            if removal and self._resync_follows(emulator, em, gid):
                continue
            return

    def _next_delivery(self, emulator: str, em: Emulator, gid: bytes) -> _Pending | None:
        for d in self.vc.unprocessed(emulator, gid):
            return _Pending(d.group_seq, d.message)
        return None

    def _resync_follows(self, emulator: str, em: Emulator, gid: bytes) -> bool:
        """After a Remove the implementation sends the new long-term key in a
        ResyncMessage (P21); the model's removal is one entry carrying the key, so the
        ResyncMessage right after a Remove commit goes with it."""
        nxt = self.ds.refetch(emulator, gid, em.cursors.get(gid, -1))
        return bool(nxt) and _kind(nxt[0].message) == "application"

    # --- after every step -----------------------------------------------------------------

    def _housekeeping(self) -> None:
        self._members_catch_up()
        for name in sorted(self.vc.emulators):
            if self.caught_up(name):
                self.vc.emulators[name].collect(quiescent=True)

    def caught_up(self, name: str) -> bool:
        """Whether the DS holds nothing more for `name` (the model's fully_caught_up):
        the emulation group and every group the virtual client is in, except those it
        must first join by external commit."""
        em = self.vc.emulators[name]
        if self.ds.refetch(name, self.emulation_group_id, em.cursors.get(
                self.emulation_group_id, -1)):
            return False
        for g, side in self.groups.items():
            if VC not in self.ds.members(side.group_id) or side.group_id in em.join_externally:
                continue
            if (name, g) in self.broken:
                if self.ds.refetch(name, side.group_id, em.cursors.get(side.group_id, -1)):
                    return False
                continue
            if side.group_id not in em.groups:
                return False
            if self.ds.refetch(name, side.group_id, em.cursors.get(side.group_id, -1)):
                return False
        return True

    def require_group_caught_up(self, name: str, group_id: bytes) -> None:
        """The loop commits in a group only after processing all it holds there
        (VirtualClient.act syncs first): a message of the epoch left unread would be
        undecryptable once the emulator's own commit moved it on."""
        em = self.vc.emulators[name]
        if self.ds.refetch(name, group_id, em.cursors.get(group_id, -1)):
            raise NotCaughtUp(f"{name} has unprocessed messages in that group")

    def require_caught_up(self, name: str) -> None:
        if not self.caught_up(name):
            raise NotCaughtUp(f"{name} has not processed every message the DS holds for it")

    def _new_emulator(self, name: str) -> Emulator:
        first = next(iter(self.vc.emulators.values()))
        rng = SeededRandom(self.seed + b"/" + name.encode())
        cs = get_suite(SUITE)
        ident = Identity.basic(name.encode(), cs.signature.generate_key_pair(rng))
        return Emulator(name.encode(), ident, first.vc, rng)

    # --- operations -----------------------------------------------------------------------

    def _retained(self) -> dict[tuple[str, int, int], tuple[int, bytes, bytes]]:
        out: dict[tuple[str, int, int], tuple[int, bytes, bytes]] = {}
        for name, em in self.vc.emulators.items():
            for n, ep in em.epochs.epochs.items():
                for leaf, r in ep.retained.items():
                    out[(name, n, leaf)] = (r.leaf_index, r.random, r.operation_secret)
        return out

    def _map_new_ops(self, before_ops: set[int], name: str, args: dict[str, object]) -> None:
        """Relate the operations the model just created to the PPRF leaves their deriver
        punctured and the LeafNode encryption keys they produced."""
        new = sorted(o for o in self.world.ops if o not in before_ops)
        if not new:
            return
        known = {(self.ops[o].epoch, self.ops[o].leaf) for o in self.ops}
        candidates = [k for k in self._retained_order() if (k[1], k[2]) not in known]
        by_creator: dict[str, list[tuple[str, int, int]]] = {}
        for k in candidates:
            by_creator.setdefault(k[0], []).append(k)
        for o in new:
            op = self.world.ops[o]
            mine = [k for k in by_creator.get(op.creator, [])
                    if k[1] == op.epoch + self.offset]
            if not mine:
                raise RefinementError(f"{name}: the model derived operation {o} "
                                      f"({op.creator}, epoch {op.epoch}); the implementation "
                                      "punctured no new PPRF leaf for it")
            k = mine[0]
            by_creator[op.creator].remove(k)
            li, rnd, secret = self._retained()[k]
            self.ops[o] = ImplOp(k[1], k[2], li, rnd, secret, op.creator)
        self._index_encryption_keys()

    def _retained_order(self) -> list[tuple[str, int, int]]:
        """Retained operations in the order their emulators derived them."""
        out: list[tuple[str, int, int]] = []
        for name, em in self.vc.emulators.items():
            for n in sorted(em.epochs.epochs):
                out += [(name, n, leaf) for leaf in em.epochs.epochs[n].retained]
        return out

    def _index_encryption_keys(self) -> None:
        """The LeafNode encryption key of every operation, derived as the emulators
        derive it (P4, P5; the literal reading F1 from epoch_base_secret)."""
        for o, op in self.ops.items():
            enc = self.encryption_key_of(op)
            ids = self.by_enc.setdefault(enc, [])
            if o not in ids:
                ids.append(o)

    def encryption_key_of(self, op: ImplOp) -> bytes:
        cs = get_suite(SUITE)
        secret = OperationSecrets.of(cs, op.operation_secret).encryption_key_secret
        if self.config.literal_p4_subsecrets:
            secret = self._f1_encryption_secret(op)
        return cs.kem.derive_key_pair(secret)[1]

    def _f1_encryption_secret(self, op: ImplOp) -> bytes:
        """F1: every operation of an epoch has the epoch's sub-secrets: read the one the
        creator's epoch store derives for all of them."""
        em = self.vc.emulators.get(op.creator) or self.vc.removed[op.creator]
        ep = em.epochs.epochs[op.epoch]
        return literal_subsecrets(get_suite(SUITE), ep).encryption_key_secret


@dataclass(frozen=True)
class _Pending:
    group_seq: int | None
    message: bytes


def _kind(message: bytes) -> str:
    """"proposal", "commit", "application" or "welcome" for a delivery's bytes."""
    from mlsvc.messages.codepoints import ContentType
    from mlsvc.messages.framing import PrivateMessage, PublicMessage
    body = MLSMessage.decode(message).body
    if isinstance(body, PublicMessage):
        ct = body.content.content_type
    elif isinstance(body, PrivateMessage):
        ct = body.content_type
    else:
        return "welcome"
    if ct == ContentType.PROPOSAL:
        return "proposal"
    if ct == ContentType.COMMIT:
        return "commit"
    return "application"


def _args(args: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def vc_leaves(leaves: Sequence[tuple[int, LeafNode]]) -> list[tuple[int, LeafNode]]:
    """The virtual client's leaves among a tree's (its BasicCredential)."""
    return [(i, leaf) for i, leaf in leaves
            if isinstance(leaf.credential, BasicCredential)
            and leaf.credential.identity == VC.encode()]


__all__ = ["PRECONDITIONS", "Bridge", "DeliveryError", "RefinementError", "StepResult"]
