"""`mlsvc vc simulate`: whole virtual-client scenarios through the delivery service, with
real peers, checked after every operation (draft-ietf-mls-virtual-clients-00 §5).

Theory of operation. One virtual client ("vc") of E emulators and G higher-level groups
whose other members are peers of the engines named (one client per engine per group:
this library's own engine, mls-rs, ts-mls). Each step picks an operation, seeded, among
those the current state allows, runs it through the DS (`VirtualClient` for the
emulators; the peers submit their own messages), delivers everything, and checks:

- agreement: in every group, every emulator and every peer that can say so has the
  same epoch authenticator; peers that cannot (mls-rs) export the same secret;
- one member: every peer that can list the tree sees the virtual client as one leaf;
- every delivered application message decrypts at every recipient (strong mode; in
  the eventual mode the ordinary members' losses are counted, P20);
- no (key, nonce) pair twice: over every PrivateMessage an emulator handed the DS
  (accepted or refused: the DS saw both), the secret-tree key (group, epoch, leaf,
  generation: one key each, RFC 9420 §9) and the nonce actually used;
- attribution: every sibling recovers from the reuse guard the emulator that sent.

Any failure is a violation with the seed and step that reproduce it; the run stops at
the first one. `SimulationReport.as_json()` is what `--json` prints.
"""

from __future__ import annotations

import functools
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import Consistency as DSConsistency
from mlsvc.ds import Delivery, DeliveryKind, DeliveryService
from mlsvc.ds.faults import FaultPolicy
from mlsvc.errors import MLSError, ParameterError, StateError
from mlsvc.group.config import Identity
from mlsvc.messages.credentials import BasicCredential
from mlsvc.peers import make_peer
from mlsvc.peers.base import Member, Peer
from mlsvc.peers.base import Received as PeerReceived
from mlsvc.store import MemoryStore, PrefixedStore, SQLiteStore, Store
from mlsvc.vc import lifecycle
from mlsvc.vc.emulator import Consistency, Emulator, OutgoingKind
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile
from mlsvc.virtual_client import Event, VirtualClient

VC_ID = "vc"
EXPORT_LABEL = b"mlsvc simulate agreement"

OP_KINDS = (
    "key_package_upload", "welcome", "vc_commit", "vc_update", "external_join",
    "emulation_commit", "vc_message", "peer_message", "peer_commit", "peer_remove_vc",
    "concurrent_messages", "concurrent_commits", "concurrent_emulation_commits",
    "add_emulator", "onboard_external", "remove_emulator",
)
MAX_EMULATORS = 5
LIFECYCLE_OPS = ("add_emulator", "onboard_external", "remove_emulator")
LIFECYCLE_WEIGHT = 0.25  # devices come and go less often than messages flow
FAULT_CLIENTS = tuple(f"em{i}" for i in range(256))  # every emulator name the run may use


@dataclass(frozen=True)
class SimulationConfig:
    emulators: int = 3
    groups: int = 2
    peers: tuple[str, ...] = ("mlsvc",)
    ops: int = 100
    seed: int = 1
    suite: int = 1
    consistency: Consistency = Consistency.STRONG
    store: str | None = None  # None, "memory" or "sqlite:PATH" (P23)
    faults: bool = False  # the DS delays, duplicates, reorders, drops on the way to emulators
    crash_rate: float = 0.0  # chance to crash the acting emulator at each point (needs a store)
    profile: Profile = DEFAULT_PROFILE  # the text the virtual client follows (issue 15)
    # how many groups (the last ones) the virtual client creates itself (latest §5.4),
    # adding the peers by its own commit; None: one under latest, none under draft-00
    vc_created_groups: int | None = None

    @property
    def groups_created_by_vc(self) -> int:
        n = (1 if self.profile is Profile.LATEST else 0) if self.vc_created_groups is None \
            else self.vc_created_groups
        if n and self.profile is not Profile.LATEST:
            raise ParameterError("draft-00 does not specify group creation by the virtual "
                                 "client: vc_created_groups needs the latest profile")
        if not 0 <= n <= self.groups:
            raise ParameterError(f"vc_created_groups {n} is not within 0..{self.groups}")
        return n


class Crash(Exception):
    """An emulator process dies here (in-process stand-in for SIGKILL: its objects are
    dropped and it restarts from its store)."""

    def __init__(self, name: str, point: str) -> None:
        super().__init__(f"{name} crashed at {point}")
        self.name = name
        self.point = point


@dataclass
class SimulationReport:
    config: SimulationConfig
    ops: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    messages_sent: int = 0
    messages_decrypted: int = 0
    messages_undecryptable: int = 0
    key_nonce_reuses: int = 0
    misattributions: int = 0
    attributions: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    crashes: int = 0
    restarts: int = 0
    messages_lost: int = 0
    emulators_added: int = 0
    emulators_removed: int = 0
    removals_finished: int = 0
    removed_reads: int = 0  # messages a removed emulator could read after the removal
    faults: dict[str, int] = field(default_factory=dict)
    duplicates_skipped: int = 0
    refetched: int = 0

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {"emulators": c.emulators, "groups": c.groups, "peers": list(c.peers),
                       "ops": c.ops, "seed": c.seed, "suite": c.suite,
                       "ds": c.consistency.value, "store": c.store, "faults": c.faults,
                       "crash_rate": c.crash_rate, "profile": c.profile.value,
                       "vc_created_groups": c.groups_created_by_vc},
            "ops": self.ops,
            "by_kind": dict(sorted(self.by_kind.items())),
            "messages_sent": self.messages_sent,
            "messages_decrypted": self.messages_decrypted,
            "messages_undecryptable": self.messages_undecryptable,
            "undecryptable_share": round(self.messages_undecryptable / max(
                1, self.messages_decrypted + self.messages_undecryptable), 4),
            "key_nonce_reuses": self.key_nonce_reuses,
            "misattributions": self.misattributions,
            "attributions": self.attributions,
            "refusals": dict(sorted(self.refusals.items())),
            "crashes": self.crashes,
            "restarts": self.restarts,
            "messages_lost": self.messages_lost,
            "emulators_added": self.emulators_added,
            "emulators_removed": self.emulators_removed,
            "removals_finished": self.removals_finished,
            "removed_reads": self.removed_reads,
            "faults": dict(sorted(self.faults.items())),
            "duplicates_skipped": self.duplicates_skipped,
            "refetched": self.refetched,
            "violations": list(self.violations),
            "seconds": round(self.seconds, 3),
            "ops_per_second": round(self.ops / self.seconds, 2) if self.seconds else 0.0,
        }


class Violation(Exception):
    """A checked property failed."""


@dataclass
class PeerClient:
    name: str
    engine: str
    group_id: bytes
    peer: Peer
    member: bool = False


class Simulation:
    """One scenario (see the module docstring)."""

    def __init__(self, config: SimulationConfig) -> None:
        if config.emulators < 1 or config.groups < 1 or not config.peers:
            raise StateError("need at least one emulator, one group and one peer engine")
        self.cfg = config
        self.rnd = random.Random(config.seed)
        self.report = SimulationReport(config)
        ds_mode = (DSConsistency.STRONG if config.consistency is Consistency.STRONG
                   else DSConsistency.EVENTUAL)
        if config.crash_rate and config.store is None:
            raise StateError("crashes need a store to restart from (--store)")
        policy = (FaultPolicy(config.seed, delay=0.15, duplicate=0.1, reorder=0.2, drop=0.05,
                              clients=FAULT_CLIENTS) if config.faults else None)
        self.ds = DeliveryService(ds_mode, faults=policy)
        self.root = _open_store(config.store)
        if self.root is not None:
            self.ds.attach_store(self.root)
        self.seed = seed = f"simulate/{config.seed}".encode()
        self.crash_rnd = random.Random(config.seed * 7919 + 1)
        self.crashes_on = False
        self.next_emulator = config.emulators
        names = [f"em{i}" for i in range(config.emulators)]
        self.vc = VirtualClient.create(self.ds, VC_ID, names, suite=config.suite,
                                       seed=seed, consistency=config.consistency,
                                       profile=config.profile)
        self.vc.on_point = self._maybe_crash
        for n in names:
            self._attach(n)
        self.decrypted: set[tuple[str, bytes, int]] = set()  # (recipient, group, position)
        self._removed_watch: list[tuple[str, dict[bytes, int]]] = []
        self.vc.listeners.append(self._on_event)
        # called with every message a peer processed (tests audit what each one read)
        self.peer_listeners: list[Callable[[PeerClient, Delivery, PeerReceived], None]] = []
        # (key, nonce) -> the ciphertext sent under it: the same bytes again (a restarted
        # emulator handing over what it had in flight) reuse nothing; other bytes would
        self.key_nonce: dict[tuple[tuple[bytes, int, int, int], bytes], bytes] = {}
        self.peers: dict[bytes, list[PeerClient]] = {}
        self.group_ids = [f"group-{g}".encode() for g in range(config.groups)]
        for g, gid in enumerate(self.group_ids):
            clients = []
            for engine in config.peers:
                name = f"{engine}@{g}"
                peer = make_peer(engine, name.encode(), config.suite, seed=seed)
                self.ds.register_client(name)
                clients.append(PeerClient(name, engine, gid, peer))
            self.peers[gid] = clients
            if g >= config.groups - config.groups_created_by_vc:
                self._vc_create_group(gid, clients)
            else:
                self._create_group(gid, clients)

    # --- set-up ------------------------------------------------------------------------

    def _create_group(self, gid: bytes, clients: list[PeerClient]) -> None:
        creator, *others = clients
        creator.peer.create(gid)
        creator.member = True
        self.ds.create_group(gid, 0, [creator.name])
        self._publish(creator)
        if others:
            for c in others:
                self.ds.upload_key_packages(c.name, [c.peer.key_package()])
            kps = [self.ds.fetch_key_package(c.name) for c in others]
            self._peer_commit(creator, lambda p: p.commit(adds=kps))
            for c in others:
                c.member = True
        self.deliver_all()

    def _vc_create_group(self, gid: bytes, clients: list[PeerClient]) -> None:
        """latest §5.4: the virtual client creates the group (its creation material
        fanned out to every emulator) and adds the peers by a commit of its own."""
        name = self.names[0]
        self.vc.create_group(name, gid, self.cfg.suite)
        for c in clients:
            self.ds.upload_key_packages(c.name, [c.peer.key_package()])
        kps = [self.ds.fetch_key_package(c.name) for c in clients]
        self.vc.commit(name, gid, kps)
        self.deliver_all()

    @property
    def names(self) -> list[str]:
        return list(self.vc.emulators)

    # --- durability and crashes (P23) ------------------------------------------------------

    def _attach(self, name: str) -> None:
        if self.root is not None:
            self.vc.attach_store(name, PrefixedStore(self.root, f"em/{name}/"))

    def _maybe_crash(self, name: str, point: str) -> None:
        if self.crashes_on and self.crash_rnd.random() < self.cfg.crash_rate:
            raise Crash(name, point)

    def _restart(self, crash: Crash) -> None:
        """The crashed emulator restarts from its store; a crash during the restart
        restarts it again."""
        self.report.crashes += 1
        name = crash.name
        assert self.root is not None
        while True:
            self.report.restarts += 1
            rng = SeededRandom(self.seed + f"/{name}/restart/{self.report.restarts}".encode())
            try:
                self.vc.restart(name, PrefixedStore(self.root, f"em/{name}/"), rng)
                return
            except Crash:
                self.report.crashes += 1

    def _crash_safe(self, action: Callable[[], None]) -> None:
        """Run `action`; a crash restarts the emulator and the action is abandoned (the
        next operations carry on, as a user would)."""
        try:
            action()
        except Crash as crash:
            self._restart(crash)
            # the abandoned operation may have left a sibling with a message in flight
            for name in self.names:
                if name != crash.name:
                    self._crash_safe(functools.partial(self.vc.resume, name))

    # --- delivery ----------------------------------------------------------------------

    def deliver_all(self) -> None:
        for _ in range(1000):
            moved = False
            for name in self.names:
                if self.ds.pending(name):
                    moved = True
                    self._crash_safe(functools.partial(self._sync, name))
            for clients in self.peers.values():
                for c in clients:
                    if self.ds.pending(c.name):
                        moved = True
                        self._pump_peer(c)
            if not moved and self.cfg.faults:
                for name in self.names:  # drops of a group's last message, of Welcomes
                    got: list[Event] = []
                    self._crash_safe(functools.partial(self._catch_up, name, got))
                    moved = moved or bool(got)
            if not moved:
                return
        raise Violation("deliveries did not settle")

    def _catch_up(self, name: str, into: list[Event]) -> None:
        if name in self.vc.emulators:
            into.extend(self.vc.catch_up(name))

    def _sync(self, name: str) -> None:
        if name in self.vc.emulators:
            self.vc.sync([name])

    def _pump_peer(self, c: PeerClient) -> None:
        for d in self.ds.receive(c.name):
            if d.kind is DeliveryKind.WELCOME:
                c.peer.join(d.message)
                c.member = True
                continue
            if not c.member:
                continue
            try:
                r = c.peer.process(d.message)
            except MLSError as exc:
                if d.kind is DeliveryKind.APPLICATION:
                    self._undecryptable(f"{c.name} cannot read a message of {d.sender}: {exc}")
                    continue
                raise
            if d.kind is DeliveryKind.APPLICATION:
                self.report.messages_decrypted += 1
                if d.group_seq is not None:
                    self.decrypted.add((c.name, d.group_id, d.group_seq))
            if r.removed:
                c.member = False
            for listener in self.peer_listeners:
                listener(c, d, r)

    def _undecryptable(self, what: str) -> None:
        self.report.messages_undecryptable += 1
        if self.cfg.consistency is Consistency.STRONG:
            raise Violation(what)

    def _on_event(self, event: Event) -> None:
        d, r = event.delivery, event.received
        if d.kind is DeliveryKind.APPLICATION:
            self.report.messages_decrypted += 1
            if d.group_seq is not None:
                self.decrypted.add((event.emulator, d.group_id, d.group_seq))
        if r.sibling_leaf is not None and r.sibling_epoch is not None:
            self.report.attributions += 1
            em = self.vc.emulators[event.emulator]
            roster = em.epochs.epochs[r.sibling_epoch].roster
            if roster.get(r.sibling_leaf) != d.sender.encode():
                self.report.misattributions += 1
                raise Violation(f"{event.emulator} attributes a message of {d.sender} to "
                                f"emulation leaf {r.sibling_leaf}")

    # --- peers ---------------------------------------------------------------------------

    def _peer_commit(self, c: PeerClient, make: Callable[[Peer], Any]) -> None:
        result = make(c.peer)
        verdict = self.ds.submit(c.name, result.commit)
        if not verdict.accepted:
            raise Violation(f"the DS refused {c.name}'s commit: {verdict.reason}")
        if result.welcome is not None:
            self.ds.send_welcome(c.name, c.group_id, result.welcome)
        self._publish(c)

    def _publish(self, c: PeerClient) -> None:
        gi = c.peer.group_info()
        if gi is not None:
            self.ds.publish_group_info(c.group_id, gi)

    def _publish_current(self) -> None:
        """Members publish the GroupInfo of each group's current epoch (RFC 9420
        §12.4.3.2) where one can: a committer that cannot (mls-rs) leaves it to others."""
        for gid in self.group_ids:
            try:
                self.ds.group_info(gid, self.ds.epoch(gid))
                continue
            except MLSError:
                pass
            for c in self._members(gid):
                gi = c.peer.group_info()
                if gi is not None:
                    self.ds.publish_group_info(gid, gi)
                    break
            else:
                for n in self._vc_in(gid):
                    self.vc.publish_group_info(n, gid)
                    break

    def _members(self, gid: bytes) -> list[PeerClient]:
        return [c for c in self.peers[gid] if c.member]

    def _vc_in(self, gid: bytes) -> list[str]:
        return [n for n in self.names if gid in self.vc.emulators[n].groups]

    # --- operations ------------------------------------------------------------------------

    def _applicable(self) -> list[str]:
        ops = ["key_package_upload", "emulation_commit", "peer_message", "peer_commit"]
        n = len(self.names)
        if n < max(MAX_EMULATORS, self.cfg.emulators):
            ops += ["add_emulator", "onboard_external"]
        if n > 2:
            ops.append("remove_emulator")
        if len(self.names) > 1:
            ops.append("concurrent_emulation_commits")
        if self.ds.outstanding_key_packages(VC_ID) and self._groups_without_vc():
            ops.append("welcome")
        if self._groups_with_vc():
            ops += ["vc_commit", "vc_update", "vc_message", "peer_remove_vc"]
            if len(self.names) > 1:
                ops += ["concurrent_messages", "concurrent_commits"]
        if self._external_targets():
            ops.append("external_join")
        return ops

    def _groups_with_vc(self) -> list[bytes]:
        return [g for g in self.group_ids if self._vc_in(g)]

    def _groups_without_vc(self) -> list[bytes]:
        return [g for g in self.group_ids if not self._vc_in(g)]

    def _external_targets(self) -> list[bytes]:
        out = []
        for g in self.group_ids:
            if not self._members(g):
                continue
            try:
                self.ds.group_info(g, self.ds.epoch(g))
            except MLSError:
                continue  # no member could publish the current epoch's GroupInfo
            out.append(g)
        return out

    def step(self) -> None:
        kinds = self._applicable()
        weights = [LIFECYCLE_WEIGHT if k in LIFECYCLE_OPS else 1.0 for k in kinds]
        self.apply(self.rnd.choices(kinds, weights)[0])

    # --- scripted use: a caller (a test, a state machine) chooses the operations ----------

    def applicable(self) -> list[str]:
        """The operation kinds (OP_KINDS) the current state allows."""
        return self._applicable()

    def apply(self, kind: str) -> None:
        """One step of `kind` (its own choices drawn from `rnd`): run it, deliver
        everything, publish GroupInfos, check."""
        if kind not in self._applicable():
            raise StateError(f"operation {kind} is not applicable now")
        lifecycle_op = kind in LIFECYCLE_OPS
        # crashes strike every operation but the multi-device lifecycle flows, whose new
        # or leaving device is outside the crashing process (docs/VIRTUAL_CLIENTS.md)
        self.crashes_on = bool(self.cfg.crash_rate) and not lifecycle_op
        try:
            self._crash_safe(getattr(self, "_op_" + kind))
            self.settle()
        finally:
            self.crashes_on = False
        self.report.ops += 1
        self.report.by_kind[kind] += 1
        self.check()

    def settle(self) -> None:
        """Deliver everything, then publish each group's current GroupInfo."""
        self.deliver_all()
        self._publish_current()

    def peer_commit(self, c: PeerClient, make: Callable[[Peer], Any]) -> None:
        """`c` commits (`make(peer)` returns its CommitResult) through the DS: Welcome
        routed, GroupInfo published; a refusal is a Violation."""
        self._peer_commit(c, make)

    def peer_send(self, c: PeerClient, data: bytes) -> None:
        """`c` sends an application message through the DS."""
        verdict = self.ds.submit(c.name, c.peer.encrypt(data))
        if not verdict.accepted:
            raise Violation(f"the DS refused {c.name}'s message: {verdict.reason}")
        self.report.messages_sent += 1

    def run(self) -> SimulationReport:
        start = time.perf_counter()
        try:
            for i in range(self.cfg.ops):
                try:
                    self.step()
                except (Violation, MLSError, AssertionError) as exc:
                    self.report.violations.append(
                        f"step {i} (seed {self.cfg.seed}): {type(exc).__name__}: {exc} | "
                        + " / ".join(traceback.format_exc().strip().splitlines()[-3:]))
                    break
        finally:
            self.close()
        self.report.seconds = time.perf_counter() - start
        for reason, n in self.ds.stats.refused_by_reason.items():
            self.report.refusals[reason] = n
        self._final_accounting()
        return self.report

    def _final_accounting(self) -> None:
        """messages_lost: accepted application messages some recipient still holding the
        group never read; the fault and recovery counters."""
        layer = self.ds.faults
        if layer is not None:
            st = layer.stats
            self.report.faults = {k: int(v) for k, v in vars(st).items()}
        self.report.duplicates_skipped = self.vc.duplicates
        self.report.refetched = self.vc.refetched
        if self.report.violations:
            return
        live = set(self.names) | {c.name for cs in self.peers.values() for c in cs if c.member}
        lost = 0
        for gid in self.group_ids:
            g = self.ds.state.groups[gid]
            for d, to in zip(g.log, g.recipients, strict=True):
                if d.kind is not DeliveryKind.APPLICATION or d.group_seq is None:
                    continue
                for r in to:
                    if r in live and self._still_in(r, gid, d) and (
                            (r, gid, d.group_seq) not in self.decrypted):
                        lost += 1
        self.report.messages_lost = lost
        if lost and self.cfg.consistency is Consistency.STRONG:
            self.report.violations.append(f"{lost} accepted messages were never read")
        self._removed_read_nothing()

    def _still_in(self, who: str, gid: bytes, d: Delivery) -> bool:
        """Whether `who` still holds the group at the message's epoch (a member removed
        since, or resynced past it, is not expected to read it)."""
        em = self.vc.emulators.get(who)
        return em is None or gid in em.groups

    def close(self) -> None:
        for clients in self.peers.values():
            for c in clients:
                c.peer.close()

    def _emulator(self, among: list[str] | None = None) -> str:
        return self.rnd.choice(among or self.names)

    def _record(self, name: str) -> None:
        """Audit every application message an emulator handed the DS since last time."""
        for who, out, verdict in self.vc.sent[self._audited:]:
            if out.kind is OutgoingKind.APPLICATION and out.key_id and out.nonce:
                pair = (out.key_id, out.nonce)
                before = self.key_nonce.setdefault(pair, out.message)
                if before != out.message:
                    self.report.key_nonce_reuses += 1
                    raise Violation(f"{who} used a (key, nonce) pair twice: {out.key_id}")
                if verdict.accepted:
                    self.report.messages_sent += 1
        self._audited = len(self.vc.sent)

    _audited = 0

    # --- the lifecycle (§4) ------------------------------------------------------------------

    def _new_emulator(self) -> Emulator:
        name = f"em{self.next_emulator}"
        self.next_emulator += 1
        some = next(iter(self.vc.emulators.values()))
        rng = SeededRandom(self.seed + b"/" + name.encode())
        ident = Identity.basic(name.encode(), get_suite(self.cfg.suite).signature
                               .generate_key_pair(rng))
        return Emulator(name.encode(), ident, some.vc, rng)

    def _op_add_emulator(self) -> None:
        """§4.1: a caught-up emulator adds a new one; some groups by external join."""
        em = self._new_emulator()
        by = self._emulator()
        groups = sorted(self.vc.emulators[by].groups)
        external = [g for g in groups if self.rnd.random() < 0.3 and g in
                    self._external_targets()]
        self.deliver_all()
        self.vc.add_emulator(by, em, external=external)
        self._attach(em.name.decode())
        self.report.emulators_added += 1

    def _op_onboard_external(self) -> None:
        """§4.2: a new emulator joins with no sibling's help."""
        em = self._new_emulator()
        self.deliver_all()
        self.vc.onboard(em, key_packages=1)
        self._attach(em.name.decode())
        self.report.emulators_added += 1

    def _op_remove_emulator(self) -> None:
        """§4.3 in the order of P21; afterwards the removal must be finished and the
        removed emulator must read nothing new."""
        by, gone = self.rnd.sample(self.names, 2)
        self.deliver_all()
        self.vc.remove_emulator(by, gone)
        self.report.emulators_removed += 1
        self.deliver_all()
        if all(lifecycle.removal_finished(em, gone.encode())
               for em in self.vc.emulators.values()):
            self.report.removals_finished += 1
        else:
            raise Violation(f"the removal of {gone} did not finish")
        # from here on, nothing of its groups may be readable to it
        self._removed_watch.append((gone, {g: len(self.ds.log(g)) for g in self.group_ids}))

    def _removed_read_nothing(self) -> None:
        """§4.3 / P21: after the removal finished, the removed emulator, with all it kept,
        reads nothing that came later (every later message of its groups is tried)."""
        for gone, marks in self._removed_watch:
            em = self.vc.removed[gone]
            for gid in list(em.groups):
                for d in self.ds.log(gid)[marks.get(gid, 0):]:
                    if d.kind is not DeliveryKind.APPLICATION:
                        continue
                    try:
                        em.deliver(gid, d.message)
                    except MLSError:
                        continue
                    self.report.removed_reads += 1
        if self.report.removed_reads:
            self.report.violations.append(
                f"removed emulators read {self.report.removed_reads} later messages")

    def _op_key_package_upload(self) -> None:
        self.vc.upload_key_packages(self._emulator(), self.rnd.randint(1, 2))

    def _op_emulation_commit(self) -> None:
        self.vc.emulation_commit(self._emulator())

    def _op_welcome(self) -> None:
        gid = self.rnd.choice(self._groups_without_vc())
        c = self.rnd.choice(self._members(gid))
        kp = self.ds.fetch_key_package(VC_ID)
        self._peer_commit(c, lambda p: p.commit(adds=[kp]))

    def _op_vc_commit(self) -> None:
        gid = self.rnd.choice(self._groups_with_vc())
        self.vc.commit(self._emulator(self._vc_in(gid)), gid)

    def _op_vc_update(self) -> None:
        gid = self.rnd.choice(self._groups_with_vc())
        name = self._emulator(self._vc_in(gid))
        if not self.vc.emulators[name].groups[gid].proposed:  # else: commit the one pending
            self.vc.update(name, gid)
        self.deliver_all()
        committers = [c for c in self._members(gid) if "commit_update" in _features(c)
                      or c.engine == "ours"]
        if committers and self.rnd.random() < 0.7:
            c = self.rnd.choice(committers)
            self._peer_commit(c, lambda p: p.commit_pending())
        else:
            self.vc.commit(self._emulator(self._vc_in(gid)), gid)

    def _op_external_join(self) -> None:
        gid = self.rnd.choice(self._external_targets())
        self.vc.external_join(self._emulator(), gid)

    def _rotate_if_needed(self, name: str, gid: bytes) -> None:
        """P9: an emulator added since the leaf's epoch rotates it before it sends;
        proposals left pending (an operation a crash cut short) are committed first
        (RFC 9420 §12.4: no application data while proposals are pending)."""
        self.vc.sync([name])
        em = self.vc.emulators[name]
        if not em.can_send(gid) or em.groups[gid].group.state.proposals:
            self.vc.commit(name, gid)
            self.deliver_all()

    def _op_vc_message(self) -> None:
        gid = self.rnd.choice(self._groups_with_vc())
        name = self._emulator(self._vc_in(gid))
        self._rotate_if_needed(name, gid)
        self.vc.send(name, gid, f"from {name} #{self.report.ops}".encode())
        self._record(name)

    def _op_peer_message(self) -> None:
        gid = self.rnd.choice(self.group_ids)
        c = self.rnd.choice(self._members(gid))
        if any(em.groups[gid].proposed for em in self.vc.emulators.values()
               if gid in em.groups):
            # an Update of the virtual client is pending (its commit was cut short by a
            # crash): RFC 9420 §12.4, a member commits before it sends application data
            self._peer_commit(c, lambda p: p.commit_pending())
            self.deliver_all()
        self.peer_send(c, f"from {c.name}".encode())

    def _op_peer_commit(self) -> None:
        gid = self.rnd.choice(self.group_ids)
        c = self.rnd.choice(self._members(gid))
        self._peer_commit(c, lambda p: p.commit())

    def _op_peer_remove_vc(self) -> None:
        gid = self.rnd.choice(self._groups_with_vc())
        c = self.rnd.choice(self._members(gid))
        hg = self.vc.emulators[self._vc_in(gid)[0]].groups[gid]
        if hg.proposed:  # §12.2: an Update and a Remove of one leaf never share a commit
            self._peer_commit(c, lambda p: p.commit_pending())
            self.deliver_all()
        leaf = hg.group.own_leaf
        node = hg.group.tree.leaf(leaf)
        assert node is not None
        cred = node.credential
        member = Member(cred.identity if isinstance(cred, BasicCredential) else b"",
                        node.signature_key)
        self._peer_commit(c, lambda p: p.commit(removes=[(int(leaf), member)]))

    def _op_concurrent_messages(self) -> None:
        """Two emulators encrypt before either hears of the other (§5.9): in the strong
        mode the DS refuses the second generation ID; the loser retries."""
        gid = self.rnd.choice(self._groups_with_vc())
        holders = self._vc_in(gid)
        if len(holders) < 2:
            return self._op_vc_message()
        a, b = self.rnd.sample(holders, 2)
        for n in (a, b):
            self._rotate_if_needed(n, gid)
        self.vc.sync([a, b])
        outs = [(n, self.vc.emulators[n].send_private_message(gid, f"race {n}".encode()))
                for n in (a, b)]
        for n, out in outs:
            if not self.vc.submit(n, out).accepted:
                self.vc.send(n, gid, f"retry {n}".encode())
        self._record(a)
        return None

    def _op_concurrent_commits(self) -> None:
        """Two emulators commit to one group at once (P22): the DS takes the first."""
        gid = self.rnd.choice(self._groups_with_vc())
        holders = self._vc_in(gid)
        if len(holders) < 2:
            return self._op_vc_commit()
        a, b = self.rnd.sample(holders, 2)
        self.vc.sync([a, b])
        outs = [(n, self.vc.emulators[n].vc_commit(gid)) for n in (a, b)]
        for n, out in outs:
            if not self.vc.submit(n, out).accepted:
                self.vc.commit(n, gid)
        return None

    def _op_concurrent_emulation_commits(self) -> None:
        a, b = self.rnd.sample(self.names, 2)
        self.vc.sync([a, b])
        outs = [(n, self.vc.emulators[n].emulation_commit()) for n in (a, b)]
        for n, out in outs:
            if not self.vc.submit(n, out).accepted:
                self.vc.emulation_commit(n)

    # --- checks ------------------------------------------------------------------------

    def check(self) -> None:
        self._record("")
        for gid in self.group_ids:
            self._check_group(gid)

    def _check_group(self, gid: bytes) -> None:
        holders = [self.vc.emulators[n] for n in self._vc_in(gid)]
        members = self._members(gid)
        auths: dict[str, bytes] = {}
        for em in holders:
            auths[em.name.decode()] = em.groups[gid].group.epoch_authenticator
        for c in members:
            a = c.peer.epoch_authenticator()
            if a is not None:
                auths[c.name] = a
        if len(set(auths.values())) > 1:
            raise Violation(f"group {gid.decode()}: epoch authenticators differ: "
                            + ", ".join(f"{k}={v.hex()[:12]}" for k, v in auths.items()))
        reference = (holders[0].groups[gid].group.export_secret(EXPORT_LABEL, b"", 32)
                     if holders else None)
        for c in members:
            if c.peer.epoch_authenticator() is None:
                mine = c.peer.export(EXPORT_LABEL, b"", 32)
                if reference is None:
                    reference = next((p.peer.export(EXPORT_LABEL, b"", 32) for p in members
                                      if p.peer.epoch_authenticator() is not None), mine)
                if mine != reference:
                    raise Violation(f"group {gid.decode()}: {c.name} exports another secret")
        if holders and len(holders) != len(self.names):
            raise Violation(f"group {gid.decode()}: only {len(holders)} of "
                            f"{len(self.names)} emulators hold the virtual client's group")
        if holders:
            leaf = holders[0].groups[gid].group.tree.leaf(holders[0].groups[gid].group.own_leaf)
            assert leaf is not None
            for c in members:
                if c.engine == "mls-rs":
                    continue  # its adapter reads no tree
                keys = [m.signature_key for m in c.peer.roster().values()]
                if keys.count(leaf.signature_key) != 1:
                    raise Violation(f"{c.name} does not see the virtual client as one member")
                if len(keys) != len(members) + 1:
                    raise Violation(f"{c.name} sees {len(keys)} members, want "
                                    f"{len(members) + 1}")


def _features(c: PeerClient) -> frozenset[str]:
    features: object = getattr(c.peer, "FEATURES", frozenset())
    return frozenset(str(f) for f in features) if isinstance(features, frozenset) else (
        frozenset())


def simulate(config: SimulationConfig) -> SimulationReport:
    return Simulation(config).run()


def _open_store(spec: str | None) -> Store | None:
    """--store: None, "memory" or "sqlite:PATH" (one file for the DS and every
    emulator, each under its own key prefix)."""
    if spec is None:
        return None
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("sqlite:") and len(spec) > len("sqlite:"):
        return SQLiteStore(spec[len("sqlite:"):], power_safe=False)
    raise StateError(f"--store takes memory or sqlite:PATH, not {spec!r}")
