"""A virtual client of several emulators, talking through one delivery service: the
public API of the virtual-client layer (draft-ietf-mls-virtual-clients-00 §5).

    ds = DeliveryService()
    alice = VirtualClient.create(ds, "alice", ["phone", "laptop", "tablet"], seed=b"demo")
    alice.upload_key_packages("phone", 2)          # KeyPackageUpload, then the upload
    ...                                            # a member fetches one and adds alice
    alice.sync()                                   # every emulator joins from the Welcome
    alice.send("laptop", group_id, b"hello")       # any device sends, siblings attribute it
    alice.commit("tablet", group_id)               # any device commits; the others follow

Theory of operation. The emulators are sans-IO (`mlsvc.vc.emulator`); this class is the
loop around them: before an emulator acts it processes everything the DS holds for it
(P19: derive only from the latest emulation epoch), then its message goes to the DS
with the virtual client as `on_behalf_of` (§5.1 fan-out), and the DS's verdict goes
back to the emulator (`accepted` / `refused`). A refused message (a concurrent Commit
won, P22; a sibling took the generation, P20) is retried after a sync, up to
`max_retries` times; nothing derived for the refused attempt is used again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.random import SeededRandom, system_random
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import Delivery, DeliveryKind, DeliveryService, Submitted, UnacceptableMessage
from mlsvc.ds.wire import welcome_refs
from mlsvc.errors import DecodeError, MLSError, StateError
from mlsvc.group.config import Identity
from mlsvc.group.events import CommitApplied
from mlsvc.messages.codepoints import SenderType
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.store import Store
from mlsvc.vc.codepoints import (
    DEFAULT_VC_CODEPOINTS,
    LATEST_VC_CODEPOINTS,
    RETAINED_EPOCHS,
    VCCodePoints,
)
from mlsvc.vc.durable import Checkpointer, restore
from mlsvc.vc.emulator import (
    Consistency,
    Emulator,
    Outgoing,
    OutgoingKind,
    Received,
    VirtualClientConfig,
)
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of
from mlsvc.vc.readings import NO_READINGS, Readings

MAX_RETRIES = 8


class NothingToDeliver(StateError):
    """`deliver_next`: the DS holds nothing more of that log for that emulator."""


class StaleEmulationEpoch(StateError):
    """M4 (`require_latest`): the DS holds emulation-group messages the emulator has not
    processed, so its latest emulation epoch is not the group's: deriving from it now
    could use an epoch the other emulators delete (finding F12)."""


@dataclass(frozen=True)
class Event:
    """One delivery an emulator processed (for audits and the simulation's checks)."""

    emulator: str
    delivery: Delivery
    received: Received


class VirtualClient:
    """Emulators of one virtual client and the DS they share (see the module docstring)."""

    def __init__(self, ds: DeliveryService, vc_id: str, emulators: dict[str, Emulator],
                 *, max_retries: int = MAX_RETRIES,
                 on_point: Callable[[str, str], None] | None = None) -> None:
        self.ds = ds
        self.id = vc_id
        self.emulators = emulators
        self.max_retries = max_retries
        # durable state (P23): one checkpointer per emulator with a store
        self.checkpoints: dict[str, Checkpointer] = {}
        # called with (emulator, point) at each step of a two-step action and around
        # every DS call, so a test can stop the process exactly there (crash tests)
        self.on_point = on_point
        self.restarts = 0
        self.duplicates = 0  # deliveries handed over twice (a faulty DS), skipped
        self.refetched = 0  # deliveries fetched again after a gap (a dropped one)
        self.rejected: set[bytes] = set()  # digests of deliveries an emulator refused
        self.rejected_by: dict[str, set[bytes]] = {}  # the same, per emulator
        self.listeners: list[Callable[[Event], None]] = []
        self.sent: list[tuple[str, Outgoing, Submitted]] = []  # every submission, in order
        self.ignored: list[tuple[str, Delivery]] = []  # deliveries for groups not held
        # Welcomes of our accepted commits the DS could not route (KeyPackages from
        # outside its directory), (group_id, welcome): for the application to deliver
        self.unrouted_welcomes: list[tuple[bytes, bytes]] = []
        self.removed: dict[str, Emulator] = {}  # removed emulators, kept for audits

    # --- creation --------------------------------------------------------------------------

    @classmethod
    def create(cls, ds: DeliveryService, vc_id: str, emulator_names: Sequence[str], *,
               suite: int = 1, seed: bytes | None = None,
               consistency: Consistency = Consistency.STRONG,
               export_observer: Callable[[int, bytes], None] | None = None,
               readings: Readings = NO_READINGS,
               retained_epochs: int = RETAINED_EPOCHS,
               profile: Profile | str = DEFAULT_PROFILE,
               codepoints: VCCodePoints | None = None) -> VirtualClient:
        """A virtual client whose first emulator creates the emulation group and adds the
        others by Welcome, all registered at the DS. `seed` makes every random draw
        reproducible (one SeededRandom per emulator); None uses the system's.
        `export_observer`: see `Emulator` (test vectors only). `readings`: literal
        readings of draft-00 (mlsvc.vc.readings; findings, never for deployment; F3 is
        the DS's own option). `retained_epochs`: R of P19. `profile`: the text the
        virtual client follows ("draft-00" or "latest", mlsvc.vc.profiles), recorded in
        the emulation group. `codepoints`: the virtual-client component IDs (default:
        draft-00's three, P7; under latest the text's one virtual_clients component,
        `LATEST_VC_CODEPOINTS`)."""
        if not emulator_names or len(set(emulator_names)) != len(emulator_names):
            raise StateError("a virtual client needs one or more distinct emulator names")
        p = profile_of(profile)
        if codepoints is None:
            codepoints = (LATEST_VC_CODEPOINTS if p is Profile.LATEST
                          else DEFAULT_VC_CODEPOINTS)
        config = VirtualClientConfig(vc_id.encode(), suite, consistency,
                                     retained_epochs=retained_epochs, readings=readings,
                                     profile=p, codepoints=codepoints)
        cs = get_suite(suite)
        ems: dict[str, Emulator] = {}
        for name in emulator_names:
            rng: RandomSource = (SeededRandom(seed + b"/" + name.encode()) if seed is not None
                                 else system_random)
            ident = Identity.basic(name.encode(), cs.signature.generate_key_pair(rng))
            ems[name] = Emulator(name.encode(), ident, config, rng,
                                 export_observer=export_observer)
        first, *rest = emulator_names
        for name in emulator_names:
            ds.register_client(name)
        ds.register_virtual_client(vc_id, [first])
        creator = ems[first]
        creator.create_emulation_group(cs.hash(b"emulation group " + vc_id.encode()))
        ds.create_group(creator.emu.group_id, creator.emu.epoch, [first])
        vc = cls(ds, vc_id, {first: creator})
        vc.publish_emulation_group_info(first)
        for n in rest:
            vc._add(first, n, ems[n], ())
        return vc

    # --- the loop --------------------------------------------------------------------------

    def sync(self, names: Iterable[str] | None = None) -> list[Event]:
        """Every emulator (or those named) processes everything the DS holds for it.

        One delivery at a time, checkpointed before it is taken from the mailbox: a
        crash repeats it at worst, and the cursor (the last DS position processed per
        group, kept with the emulator's state) skips what was processed already. Before
        a delivery, everything the DS accepted before it (its DS-wide `seq`) in the
        emulator's groups that has not reached it yet is taken from the DS's log: a
        delivery dropped on the way, or overtaken by a faulty DS's reordering across
        groups, is processed in the DS's order, so a sibling's commit never meets an
        emulation epoch that was already deleted. A delivery that fails raises; the
        rest wait."""
        events: list[Event] = []
        for name in (list(self.emulators) if names is None else list(names)):
            em = self.emulators[name]
            while self.ds.pending(name):
                d = self.ds.peek(name)
                assert d is not None
                events += self._before(name, em, d.seq)
                try:
                    event = self._once(name, em, d)
                finally:  # judged, accepted or not: its position is consumed
                    self.ds.receive(name, 1)
                    self.point(name, "delivery-taken")
                if event is not None:
                    events.append(event)
        return events

    def _watched(self, em: Emulator) -> list[bytes]:
        if em.emulation is None:
            return []
        joined = set(em.groups) | em.expected_joins
        if em.vc.profile is Profile.LATEST:
            # latest §5.5.2: no ExternalJoin announces a sibling's external join; the
            # groups the DS counts the virtual client in are where its messages come
            joined |= {gid for gid in self.ds.groups() if self.id in self.ds.members(gid)}
        return [em.emu.group_id, *sorted(joined)]

    def _missing(self, name: str, em: Emulator, before_seq: int | None) -> list[Delivery]:
        """Deliveries addressed to `name` in its groups, past its cursors (and accepted
        before `before_seq`), not refused before: in the DS's order."""
        items: list[Delivery] = []
        for gid in self._watched(em):
            items += [x for x in self.ds.refetch(name, gid, em.cursors.get(gid, -1))
                      if (before_seq is None or x.seq < before_seq)
                      and hashlib.sha256(x.message).digest() not in self.rejected]
        items += [x for x in self.ds.welcomes_for(name, -1)
                  if (before_seq is None or x.seq < before_seq)
                  and b"welcome/" + str(x.seq).encode() not in em.cursors
                  and hashlib.sha256(x.message).digest() not in self.rejected]
        return sorted(items, key=lambda x: x.seq)

    def _before(self, name: str, em: Emulator, seq: int) -> list[Event]:
        events: list[Event] = []
        for x in self._missing(name, em, seq):
            self.refetched += 1
            event = self._once(name, em, x)
            if event is not None:
                events.append(event)
        return events

    def _once(self, name: str, em: Emulator, d: Delivery) -> Event | None:
        """Handle `d` unless its position was processed already; checkpoint."""
        if d.group_seq is None:  # a Welcome: remembered by its DS-wide seq
            key, pos = b"welcome/" + str(d.seq).encode(), d.seq
            seen = key in em.cursors
        else:
            key, pos = d.group_id, d.group_seq
            seen = em.cursors.get(key, -1) >= pos
        if seen:
            self.duplicates += 1
            return None
        try:
            event = self._handle(name, em, d)
        except MLSError:
            # refused: its bytes are not tried again, but its position stays open for
            # the genuine message (a retransmission, a refetch)
            digest = hashlib.sha256(d.message).digest()
            self.rejected.add(digest)
            self.rejected_by.setdefault(name, set()).add(digest)
            raise
        em.cursors[key] = pos
        if event is not None and event.received.joined:
            self._start_cursor(em, event.received.group_id)
        self.persist(name)
        return event

    def _start_cursor(self, em: Emulator, group_id: bytes) -> None:
        """A group just joined: its positions before the epoch joined are not ours."""
        hg = em.groups.get(group_id)
        epoch = hg.group.epoch if hg is not None else em.emu.epoch
        before = [d.group_seq for d in self.ds.log(group_id)
                  if d.group_seq is not None and d.epoch is not None and d.epoch < epoch]
        if before:
            em.cursors[group_id] = max(max(before), em.cursors.get(group_id, -1))

    def catch_up(self, name: str) -> list[Event]:
        """At quiescence, ask the DS for what may have been dropped on the way: the
        rest of every group's log after the cursor (the groups of announced external
        joins included), and Welcomes never processed."""
        em = self.emulators[name]
        events: list[Event] = []
        for d in self._missing(name, em, None):
            self.refetched += 1
            event = self._once(name, em, d)
            if event is not None:
                events.append(event)
        return events

    def _unprocessed(self, name: str, em: Emulator, group_id: bytes) -> list[Delivery]:
        """The deliveries of one log addressed to `name` past its cursor, not refused
        by `name` before, in the DS's order; the Welcomes to that group not yet
        processed count too (a Welcome is the group's first delivery)."""
        refused = self.rejected_by.get(name, set())
        items = [x for x in self.ds.refetch(name, group_id, em.cursors.get(group_id, -1))
                 if hashlib.sha256(x.message).digest() not in refused]
        if em.emulation is None or group_id != em.emu.group_id:
            items += [x for x in self.ds.welcomes_for(name, -1)
                      if x.group_id == group_id
                      and b"welcome/" + str(x.seq).encode() not in em.cursors
                      and hashlib.sha256(x.message).digest() not in refused]
        return sorted(items, key=lambda x: x.seq)

    def unprocessed(self, name: str, group_id: bytes) -> list[Delivery]:
        """What `deliver_next` would hand `name` from that log, in order (reads only)."""
        return self._unprocessed(name, self.emulators[name], group_id)

    def deliver_next(self, name: str, group_id: bytes) -> Event | None:
        """Hand emulator `name` exactly the next delivery of one log past its cursor:
        the emulation group's or a higher-level group's (for a group it is not in yet,
        a Welcome to it counts as the group's first delivery; for an announced external
        join, the external commit is in the group's log), taken from the DS's log
        (`refetch`, `welcomes_for`), handled as `sync` handles a delivery, and nothing
        else: no other log moves, nothing is submitted. For drivers that control the
        interleaving (the model's `deliver`); the copy still in the mailbox is skipped
        later as a duplicate. Returns the Event (None for a delivery `sync` would
        ignore too). NothingToDeliver when nothing is left; errors of processing
        propagate as in `sync` (typed, with check ids)."""
        em = self.emulators[name]
        items = self._unprocessed(name, em, group_id)
        if not items:
            raise NothingToDeliver(f"the DS holds nothing more of group {group_id.hex()} "
                                   f"for {name}")
        return self._once(name, em, items[0])

    def require_latest(self, name: str) -> None:
        """M4 (the model's require_latest): derive only from the emulation group's
        latest epoch. StaleEmulationEpoch when the DS holds emulation-group messages for
        `name` past its cursor (not counting ones it refused: they never will be)."""
        em = self.emulators[name]
        behind = self._unprocessed(name, em, em.emu.group_id)
        if behind:
            raise StaleEmulationEpoch(f"{name} has not processed {len(behind)} "
                                      "emulation-group message(s): its epoch is stale (M4)")

    def point(self, name: str, point: str) -> None:
        if self.on_point is not None:
            self.on_point(name, point)

    def persist(self, name: str) -> None:
        """Checkpoint `name`'s state to its store, if it has one (P23)."""
        cp = self.checkpoints.get(name)
        if cp is not None:
            cp(self.emulators[name])

    def attach_store(self, name: str, store: Store) -> None:
        """From now on `name`'s state is written to `store` after every change."""
        self.checkpoints[name] = Checkpointer(store)
        self.persist(name)

    def restart(self, name: str, store: Store, rng: RandomSource) -> Emulator:
        """A restarted emulator process: its state from `store`, then every message it
        had handed the DS judged again (accepted ones found in the DS's log finish their
        action; the others are submitted again: identical bytes, so nothing is reused)."""
        em = restore(store, rng)
        self.emulators[name] = em
        self.checkpoints[name] = Checkpointer(store)
        self.restarts += 1
        self.resume(name)
        # what it may have failed to publish before it died (RFC 9420 §12.4.3.2)
        if em.emulation is not None and not em.removed:
            self.publish_emulation_group_info(name)
        for gid in sorted(em.groups):
            self.publish_group_info(name, gid)
        return em

    def resume(self, name: str) -> None:
        """Let the DS judge whatever `name` has in flight (after a restart, or after the
        loop that was driving it stopped): found in the log, accepted; otherwise
        submitted again (identical bytes); KeyPackages still to upload, uploaded."""
        em = self.emulators[name]
        outs = list(em.pending.values())
        if em.has_pending_action:
            outs.append(em.pending_action_message())
        for out in outs:
            if any(x.message == out.message for x in self.ds.log(out.group_id)):
                self._verdict(name, out, True)
            else:
                self.submit(name, out)
        self._upload(name, em)

    def _handle(self, name: str, em: Emulator, d: Delivery) -> Event | None:
        if d.kind is DeliveryKind.WELCOME and d.group_id in em.groups:
            # the emulator is in that group already (it joined by its own external
            # commit before reading the Welcome): its view starts there, the Welcome is
            # stale (found by the refinement test)
            self.ignored.append((name, d))
            return None
        if d.kind is DeliveryKind.WELCOME:
            received = em.welcome(d.message)
        elif (d.on_behalf_of == self.id and _is_external_commit(d.message)
              and (d.group_id in em.expected_joins or em.vc.profile is Profile.LATEST)):
            # a sibling's ExternalJoin (§5.5.2), also a resync of a group we are in; the
            # later text announces none: the DS's GroupInfo of that epoch is the
            # external join material (latest §5.5.2)
            gi = self.ds.group_info(d.group_id, d.epoch)
            received = em.follow_external_join(gi, d.message)
        elif (d.group_id != em.emu.group_id and d.group_id not in em.groups
              and d.on_behalf_of != self.id):
            # another member's message in a group the virtual client is not in (after a
            # Welcome it refused): nothing to process, said in `ignored`. Messages sent
            # for the virtual client are judged by the emulator (an unannounced external
            # join is VC-EXTERNAL-JOIN-UNANNOUNCED).
            self.ignored.append((name, d))
            return None
        elif em.emulation is not None and d.group_id == em.emu.group_id:
            # Welcomes the DS ordered before this message, not read yet: their
            # KeyPackages stay through a ResyncMessage (receive.deliver)
            welcomed = {ref for w in self.ds.welcomes_for(name, -1)
                        if w.seq < d.seq and b"welcome/" + str(w.seq).encode() not in em.cursors
                        for ref in welcome_refs(w.message)}
            received = em.deliver(d.group_id, d.message, welcomed=welcomed)
        else:
            received = em.deliver(d.group_id, d.message)
        ev = received.event
        if (isinstance(ev, CommitApplied) and ev.removed_self
                and self.id in self.ds.members(d.group_id)):
            self.ds.remove_member(d.group_id, self.id)  # removed: unsubscribe (RFC 9420 §12.2)
        event = Event(name, d, received)
        for listener in self.listeners:
            listener(event)
        return event

    def submit(self, name: str, out: Outgoing) -> Submitted:
        """Hand one outgoing message to the DS and its verdict back to the emulator (the
        emulator's state is durable before the message leaves, P23)."""
        self.persist(name)
        self.point(name, f"before-submit:{out.kind.value}")
        on_behalf = None if out.kind in (OutgoingKind.EMULATION_COMMIT,
                                         OutgoingKind.EMULATION_APPLICATION) else self.id
        verdict = self.ds.submit(name, out.message, on_behalf_of=on_behalf,
                                 generation_id=out.generation_id)
        self.sent.append((name, out, verdict))
        self.point(name, f"after-submit:{out.kind.value}")
        if verdict.accepted and verdict.group_seq is not None and out.kind in (
                OutgoingKind.EXTERNAL_COMMIT, OutgoingKind.EMULATION_COMMIT):
            self._joined_at(self.emulators[name], out, verdict.group_seq)
        self._verdict(name, out, verdict.accepted)
        return verdict

    def _joined_at(self, em: Emulator, out: Outgoing, group_seq: int) -> None:
        """Our external commit (a join or a resync) is where our view of the group
        starts: nothing before it is ours to process any more. An emulation Commit
        counts only where we had no position yet (onboarding, or the creator)."""
        if out.kind is OutgoingKind.EXTERNAL_COMMIT or out.group_id not in em.cursors:
            em.cursors[out.group_id] = max(group_seq, em.cursors.get(out.group_id, -1))

    def _verdict(self, name: str, out: Outgoing, accepted: bool) -> None:
        em = self.emulators[name]
        if not accepted:
            em.refused(out)
            self.persist(name)
            return
        if out.kind is OutgoingKind.COMMIT and out.welcome is not None:
            self._route_welcome(name, out.group_id, out.welcome)
        result = em.accepted(out)
        self.persist(name)
        self.point(name, f"accepted:{out.kind.value}")
        self._upload(name, em)
        if result.next is not None:
            self._second_step(name, result.next)
        if out.kind in (OutgoingKind.COMMIT, OutgoingKind.EXTERNAL_COMMIT):
            self.publish_group_info(name, out.group_id)
        if out.kind is OutgoingKind.EMULATION_COMMIT and not em.removed:
            self.publish_emulation_group_info(name)

    def _route_welcome(self, name: str, group_id: bytes, welcome: bytes) -> None:
        """The Welcome of an accepted commit of the virtual client that added members,
        handed to the DS before the emulator hears the verdict (a restart that judges
        the commit again finds it routed already: once only)."""
        if any(w.message == welcome for w in self.ds.welcomes()):
            return
        try:
            self.ds.send_welcome(name, group_id, welcome)
        except UnacceptableMessage as exc:
            if exc.code != "unknown-key-package-ref":
                raise
            # the new members' KeyPackages did not come from this DS's directory (a
            # member's Add the commit took by reference): the DS cannot route it
            self.unrouted_welcomes.append((group_id, welcome))
            return
        self.point(name, "welcome-routed")

    def _upload(self, name: str, em: Emulator) -> None:
        """KeyPackageUpload step two (§5.5.1): the KeyPackages the emulator holds for
        upload (kept with its state until the DS has them, P22/P23)."""
        if not em.to_upload:
            return
        try:
            self.ds.upload_key_packages(self.id, em.to_upload)
        except UnacceptableMessage as exc:
            if exc.code != "duplicate-key-package":  # uploaded before a crash
                raise
        self.point(name, "key-packages-uploaded")
        em.uploaded()
        self.persist(name)

    def _second_step(self, name: str, out: Outgoing) -> None:
        """ExternalJoin step two (§5.5.2): the external commit. If another commit won
        the epoch, the announcement stands and the emulator commits again from the
        newest GroupInfo (a new operation each time)."""
        em = self.emulators[name]
        for _ in range(self.max_retries + 1):
            if self.submit(name, out).accepted:
                return
            self.sync([name])
            if out.kind is OutgoingKind.EXTERNAL_COMMIT:
                out = em.external_commit(out.group_id, self.ds.group_info(out.group_id))
            else:  # a ResyncMessage: the same key, in the epoch we are now in
                out = em.resync_message(em.vc_signing_key)
        raise StateError(f"{name}'s {out.kind.value} was refused {self.max_retries + 1} "
                         "times")

    def publish_emulation_group_info(self, name: str) -> None:
        """The emulation group's GroupInfo at the DS, for onboarding (§4.2); it never
        carries a NewEmulatorClientState (only Welcomes do, P13)."""
        g = self.emulators[name].emu
        self.ds.publish_group_info(g.group_id, g.group_info())

    # --- emulation group management (§4) -------------------------------------------------

    @property
    def emulation_group_id(self) -> bytes:
        return next(iter(self.emulators.values())).emu.group_id

    def add_emulator(self, by: str, emulator: Emulator, *,
                     external: Iterable[bytes] = (), join_now: bool = True) -> None:
        """§4.1 (P13, P18): `by` (caught up first) adds `emulator` by Welcome; it gets
        every group by state transfer, except those in `external`, which it then joins by
        external commit (a resync, announced by ExternalJoin). `join_now=False` leaves
        those external joins to the caller (`external_join`, or `act_now`), for drivers
        that control the interleaving."""
        name = emulator.name.decode()
        if name in self.emulators:
            raise StateError(f"{name} is an emulator of {self.id} already")
        self.ds.register_client(name)
        self._add(by, name, emulator, tuple(external))
        if join_now:
            for gid in sorted(emulator.join_externally):
                self.external_join(name, gid)

    def _add(self, by: str, name: str, emulator: Emulator, external: tuple[bytes, ...]
             ) -> None:
        kp = emulator.emulation_key_package()
        holder: list[Outgoing] = []

        def make(em: Emulator) -> Outgoing:
            holder.append(em.add_emulator(kp.key_package, external))
            return holder[-1]

        self.act(by, make)
        welcome = holder[-1].welcome
        assert welcome is not None
        # the DS starts fanning the virtual client's messages out to the new emulator
        # from here on: it holds the state up to this point (§5.1)
        self.ds.add_member(self.emulation_group_id, name)
        self.ds.add_emulator(self.id, name)
        emulator.join_emulation_group(welcome, kp)
        # it holds the provisioner's state (P18: caught up), so it starts where it stands
        emulator.cursors = dict(self.emulators[by].cursors)
        self.emulators[name] = emulator
        self.point(name, "welcome-joined")  # step one done: a store may be attached here

    def remove_emulator(self, by: str, name: str, *, commit_groups: bool = True,
                        sync: bool = True) -> Submitted:
        """§4.3 in the order of P21: the DS deletes the outstanding KeyPackages; `by`
        commits the Remove and sends the new long-term key (ResyncMessage); then it
        commits with a path in every higher-level group from the new epoch. `name` may
        also be a device this loop no longer runs (lost, or died while being added): it
        only has to be a member of the emulation group (VC-EMULATOR-NOT-MEMBER).
        Returns the DS's verdict on the Remove.

        For drivers that control the interleaving: `commit_groups=False` leaves the
        commits in the higher-level groups to the caller; `sync=False` neither syncs `by`
        nor retries: `by` must be on the latest emulation epoch (`require_latest`,
        checked before anything changes) and a refused Remove is returned as refused,
        with nothing else done after it."""
        if name == by:
            raise StateError(f"{by} cannot remove itself")
        if sync:
            self.sync([by])
        else:
            self.require_latest(by)
        self.emulators[by].emulation_leaf_of(name.encode())  # before anything changes
        deleted: tuple[bytes, ...] = ()
        if not self.emulators[by].vc.readings.removal_keeps_key_packages:  # F6 keeps them
            deleted = self.ds.outstanding_key_packages(self.id)
            self.ds.delete_key_packages(self.id)
        known = self.emulators[by].key_packages
        suites = [known[r].group_suite if r in known else self.emulators[by].vc.emulation_suite
                  for r in deleted]  # before the Remove's acceptance forgets them

        def remove(em: Emulator) -> Outgoing:
            return em.remove_emulator(name.encode(), deleted)

        verdict = self.act(by, remove) if sync else self.act_now(by, remove)
        if not verdict.accepted:
            return verdict
        if name in self.ds.emulators(self.id):
            self.ds.remove_emulator(self.id, name)
        if name in self.ds.members(self.emulation_group_id):
            self.ds.remove_member(self.emulation_group_id, name)
        if name in self.emulators:
            self.removed[name] = self.emulators.pop(name)
        if commit_groups:
            for gid in sorted(self.emulators[by].groups):
                self.commit(by, gid)
            if deleted and self.emulators[by].vc.profile is Profile.LATEST:
                # latest §6.3: "Upload a fresh set of KeyPackages derived from the new
                # emulation-group epoch to replace those deleted in step 1"
                # as many per group suite as were deleted (a KeyPackage `by` did not
                # know yet counts for the emulation group's suite)
                for suite in sorted(set(suites)):
                    self.upload_key_packages(by, suites.count(suite), suite)
        return verdict

    def onboard(self, emulator: Emulator, key_packages: int = 1) -> None:
        """§4.2 (P14): `emulator` joins without a sibling: external commit into the
        emulation group, ResyncMessage, new KeyPackages, a resync of every group the
        virtual client is in."""
        name = emulator.name.decode()
        self.ds.register_client(name)
        for attempt in range(self.max_retries + 1):
            gi = self.ds.group_info(self.emulation_group_id)
            em, out = type(emulator).onboard_external(
                emulator.name, emulator.identity, emulator.vc, emulator.rng, gi)
            verdict = self.ds.submit(name, out.message)
            if verdict.accepted:
                break
            if attempt == self.max_retries:
                raise StateError(f"the DS refused the onboarding commit: {verdict.reason}")
            # the published GroupInfo is behind: any emulator still around republishes
            for other in self.emulators:
                self.sync([other])
                self.publish_emulation_group_info(other)
                break
        self.ds.add_emulator(self.id, name)
        self.emulators[name] = em
        result = em.accepted(out)
        assert result.next is not None
        self._second_step(name, result.next)
        self.publish_emulation_group_info(name)
        self.ds.delete_key_packages(self.id)
        self.upload_key_packages(name, key_packages)
        for gid in sorted(self.ds.groups()):
            if self.id in self.ds.members(gid):
                self.external_join(name, gid)

    def publish_group_info(self, name: str, group_id: bytes) -> None:
        hg = self.emulators[name].groups.get(group_id)
        if hg is not None:
            self.ds.publish_group_info(group_id, hg.group.group_info())

    def act(self, name: str, make: Callable[[Emulator], Outgoing], *,
            derives: bool = False) -> Submitted:
        """P19/P22: sync `name`, let it act, submit; on refusal sync and act anew.

        `derives`: `make` derives a new operation outside an emulation Commit (a commit
        or an Update in a higher-level group): after the sync, M4 holds (what a drop
        left behind in the emulation group is fetched first, then `require_latest`),
        unless the literal reading derive_from_stale_epoch (F12) is on. Actions carried
        by an emulation Commit need no such check: the DS refuses a stale one."""
        for attempt in range(self.max_retries + 1):
            self.sync([name])
            if attempt:  # refused: maybe what we miss was dropped on the way (a gap)
                self.catch_up(name)
            em = self.emulators[name]
            if derives and not em.vc.readings.derive_from_stale_epoch:
                if self._unprocessed(name, em, em.emu.group_id):
                    self.catch_up(name)
                self.require_latest(name)
            out = make(em)
            self.point(name, "derived")
            verdict = self.submit(name, out)
            if verdict.accepted:
                return verdict
        raise StateError(f"{name} was refused {self.max_retries + 1} times")

    def act_now(self, name: str, make: Callable[[Emulator], Outgoing], *,
                derives: bool = False) -> Submitted:
        """`act` without syncing and without retrying, for drivers that control the
        interleaving: `require_latest` first when `derives` (skipped under the reading
        derive_from_stale_epoch, F12; StaleEmulationEpoch, nothing derived), then one
        submission, and the DS's verdict handed to the emulator and returned. An
        accepted action's second step (KeyPackage upload, external commit) follows as
        in `act`."""
        em = self.emulators[name]
        if derives and not em.vc.readings.derive_from_stale_epoch:
            self.require_latest(name)
        out = make(em)
        self.point(name, "derived")
        return self.submit(name, out)

    # --- the virtual client's actions ------------------------------------------------------

    def upload_key_packages(self, name: str, count: int = 1,
                            group_suite: int | None = None) -> Submitted:
        return self.act(name, lambda em: em.create_key_packages(count, group_suite))

    def emulation_commit(self, name: str) -> Submitted:
        return self.act(name, lambda em: em.emulation_commit())

    def commit(self, name: str, group_id: bytes, adds: Sequence[bytes] = ()) -> Submitted:
        """A commit with a path of the virtual client in `group_id`; `adds`: KeyPackages
        (MLSMessage bytes) of members it adds, welcomed through the DS."""
        kps = [_key_package_of(kp) for kp in adds]
        return self.act(name, lambda em: em.vc_commit(group_id, kps), derives=True)

    def create_group(self, name: str, group_id: bytes, group_suite: int | None = None
                     ) -> None:
        """latest §5.4: `name` creates a higher-level group for the virtual client; the
        group creation material (its GroupInfo with the tree) is published at the DS and
        handed to every other emulator this loop runs before anything else of the group
        (each first processes what the DS holds for it, so it has the emulation epoch
        the creator used). The DS knows the group with the virtual client as its member."""
        self.sync()
        if self._unprocessed(name, self.emulators[name], self.emulation_group_id):
            self.catch_up(name)
        self.require_latest(name)
        em = self.emulators[name]
        group_info = em.create_group(group_id, group_suite)
        self.persist(name)
        self.point(name, "group-created")
        self.ds.create_group(group_id, 0, [self.id])
        self.ds.publish_group_info(group_id, group_info)
        for other in sorted(self.emulators):
            if other != name:
                self.emulators[other].follow_group_creation(group_info)
                self.persist(other)

    def update(self, name: str, group_id: bytes) -> Submitted:
        return self.act(name, lambda em: em.vc_update(group_id), derives=True)

    def send(self, name: str, group_id: bytes, data: bytes) -> Submitted:
        return self.act(name, lambda em: em.send_private_message(group_id, data))

    def external_join(self, name: str, group_id: bytes) -> Submitted:
        """§5.5.2: the ExternalJoin Commit, then the external commit from the latest
        published GroupInfo. Under the latest profile there is no ExternalJoin: the
        external commit derives a leaf_node operation at once (so M4 applies, as for a
        commit)."""
        latest = self.emulators[name].vc.profile is Profile.LATEST
        return self.act(name, lambda em: em.external_join(group_id,
                                                          self.ds.group_info(group_id)),
                        derives=latest)

    def groups(self) -> set[bytes]:
        out: set[bytes] = set()
        for em in self.emulators.values():
            out |= set(em.groups)
        return out


def _is_external_commit(message: bytes) -> bool:
    body = MLSMessage.decode(message).body
    return (isinstance(body, PublicMessage)
            and body.content.sender.sender_type == SenderType.NEW_MEMBER_COMMIT)


def _key_package_of(data: bytes) -> KeyPackage:
    body = MLSMessage.decode(data).body
    if not isinstance(body, KeyPackage):
        raise DecodeError("not a KeyPackage message")
    return body
