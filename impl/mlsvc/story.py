"""`mlsvc demo`: the virtual-client story, scripted, seeded and checked at every step.

One person, alice, has a phone, a laptop and a tablet: three emulator clients of one
virtual client (draft-ietf-mls-virtual-clients-00). She is in three groups whose other
members are clients of other MLS engines (by default one mls-rs, one ts-mls and one of
this project's engine per group). Everything goes through one delivery service (DS):

 1. the phone creates alice's emulation group and adds the laptop and the tablet;
 2. the peers create the groups "family", "work" and "club" (KeyPackages through the DS
    directory, Welcomes routed by the DS);
 3. the laptop announces KeyPackages in the emulation group (KeyPackageUpload, §5.5.1)
    and uploads them; its siblings re-derive every one;
 4. a peer fetches one and adds alice to "family", another to "work": every device
    joins from the one Welcome;
 5. each device sends in "family": the peers read alice (one member, one leaf), the
    siblings attribute the message to the device that sent it (reuse guard, §5.8);
 6. the tablet commits, the others follow by re-derivation;
 7. a fourth device, the desktop, is added by a Welcome carrying a
    NewEmulatorClientState (§4.1, P13); it may not send before the leaf is rotated from
    an epoch it is a member of (P9), rotates it, sends;
 8. the phone removes the tablet (§4.3, P21): KeyPackages deleted, a ResyncMessage with
    a new long-term key, a path commit in every group;
 9. traffic goes on; the laptop joins "club" by external commit (ExternalJoin, §5.5.2);
10. the tablet tries every message sent after its removal with everything it kept:
    it reads none of them, and each failure is a typed error.

After every step the transcript says what each party sees: the leaf of alice at each
peer, the epoch, the first bytes of the epoch authenticators and whether they agree (a
peer whose engine does not report its epoch authenticator, mls-rs, compares an
exported secret instead).

Reproducibility: alice's devices and this project's peers draw from the seed, so with
our engine as the only peer (`run_story(("ours",))`, the unit tests) every line and
every value repeats exactly; mls-rs and ts-mls draw their own randomness, so once they
commit, the epoch authenticators printed differ from run to run (the checks do not).

`run_story` returns a `StoryReport` (its `as_json` fields are the top level of `mlsvc demo
--json`, beside `story_ok` and `summary`); `start_checks` runs the verification summary
(vectors, proofs, model) in subprocesses while the story runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import Delivery, DeliveryKind, DeliveryService
from mlsvc.errors import MLSError, StateError, ValidationError
from mlsvc.group.config import Identity
from mlsvc.group.events import ApplicationMessage
from mlsvc.peers import FEATURES, available, canonical, make_peer
from mlsvc.peers.base import CommitResult, Peer
from mlsvc.vc import lifecycle
from mlsvc.vc.emulator import Emulator
from mlsvc.virtual_client import Event, VirtualClient

ENGINES = ("mls-rs", "ts-mls", "ours")
"""The peer engines of the demo: every group has one client of each."""
PEOPLE = {"mls-rs": "bob", "ts-mls": "carol", "ours": "dave"}
GROUPS = ("family", "work", "club")
DEVICES = ("phone", "laptop", "tablet")
FOURTH = "desktop"
VC_ID = "alice"
EXPORT_LABEL = b"mlsvc story agreement"
AUTH_BYTES = 4  # how much of an epoch authenticator the transcript shows


class StoryFailure(Exception):
    """A check of the story did not hold (the message says which)."""


@dataclass(frozen=True)
class Line:
    """One event of the transcript."""

    step: int
    actor: str
    action: str
    sees: str
    ok: bool

    def text(self) -> str:
        mark = "" if self.ok else "  <-- FAILED"
        return f"{self.step:>2}. {self.actor:<16} {self.action}\n      {self.sees}{mark}"

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "actor": self.actor, "action": self.action,
                "sees": self.sees, "ok": self.ok}


@dataclass
class PeerClient:
    """One peer's client in one group."""

    person: str
    engine: str
    group: str
    group_id: bytes
    peer: Peer
    member: bool = False

    @property
    def name(self) -> str:  # its name at the DS
        return f"{self.person}@{self.group}"

    @property
    def label(self) -> str:
        return f"{self.person} ({self.engine})"


@dataclass
class StoryReport:
    engines: tuple[str, ...]
    seed: int
    suite: int
    lines: list[Line] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    peers: list[dict[str, str]] = field(default_factory=list)
    devices_added: list[str] = field(default_factory=list)
    devices_removed: list[str] = field(default_factory=list)
    removed: dict[str, Any] = field(default_factory=dict)
    attributions: int = 0
    peer_reads: int = 0
    device_reads: int = 0
    seconds: float = 0.0

    @property
    def removed_device_unreadable(self) -> bool:
        r = self.removed
        return bool(r) and r["tried"] > 0 and r["read"] == 0 and r["applications"] > 0

    @property
    def ok(self) -> bool:
        return not self.failures and self.removed_device_unreadable and len(self.groups) == 3

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seed": self.seed,
            "suite": self.suite,
            "virtual_client": VC_ID,
            "groups": self.groups,
            "peers": {"engines": list(self.engines), "clients": self.peers},
            "devices_added": list(self.devices_added),
            "devices_removed": list(self.devices_removed),
            "removed_device_unreadable": self.removed_device_unreadable,
            "removed_device": dict(self.removed),
            "attributions": self.attributions,
            "peer_reads": self.peer_reads,
            "device_reads": self.device_reads,
            "failures": list(self.failures),
            "transcript": [line.as_json() for line in self.lines],
            "seconds": round(self.seconds, 3),
        }


def missing_engines(engines: Sequence[str] = ENGINES) -> dict[str, str]:
    """The engines of `engines` that cannot run here, with why (empty: all can)."""
    return {e: p for e in engines if (p := available(e)) is not None}


def _short(data: bytes) -> str:
    return data[:AUTH_BYTES].hex()


def _and(names: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return f"ValidationError {exc.check_id}"
    return type(exc).__name__


class Story:
    """The scripted scenario (see the module docstring)."""

    def __init__(self, engines: Sequence[str] = ENGINES, *, seed: int = 1, suite: int = 1,
                 echo: Callable[[str], None] | None = None) -> None:
        engines = tuple(canonical(e) for e in engines)
        if not engines or len(set(engines)) != len(engines):
            raise StateError("the story needs one or more distinct peer engines")
        self.engines = engines
        self.suite = suite
        self.seed = f"mlsvc story/{seed}".encode()
        self.echo = echo
        self.report = StoryReport(engines, seed, suite)
        self.step = 0
        self.ds = DeliveryService()
        self.vc: VirtualClient | None = None
        self.peers: dict[str, list[PeerClient]] = {}
        self.gids = {g: f"alice-{g}".encode() for g in GROUPS}
        self.joined_by: dict[str, str] = {}
        self.events: list[Event] = []  # what the devices processed since the last step
        self.read: list[tuple[PeerClient, Delivery, bytes]] = []  # peers' application reads
        self.drained: set[int] = set()  # what the tablet processed before the DS dropped it

    # --- the transcript ----------------------------------------------------------------------

    def line(self, actor: str, action: str, sees: str, ok: bool = True,
             failure: str | None = None) -> None:
        self.step += 1
        line = Line(self.step, actor, action, sees, ok)
        self.report.lines.append(line)
        if not ok:
            self.report.failures.append(f"step {self.step} ({actor}: {action}): "
                                        f"{failure or sees}")
        if self.echo is not None:
            self.echo(line.text())

    # --- wiring: DS, peers, deliveries --------------------------------------------------------

    @property
    def v(self) -> VirtualClient:
        assert self.vc is not None
        return self.vc

    def _peer_commit(self, c: PeerClient, result: CommitResult) -> None:
        """`c`'s commit through the DS: Welcome routed, GroupInfo published."""
        verdict = self.ds.submit(c.name, result.commit)
        if not verdict.accepted:
            raise StoryFailure(f"the DS refused {c.name}'s commit: {verdict.reason}")
        if result.welcome is not None:
            self.ds.send_welcome(c.name, c.group_id, result.welcome)
        gi = c.peer.group_info()
        if gi is not None:
            self.ds.publish_group_info(c.group_id, gi)

    def _peer_send(self, c: PeerClient, data: bytes) -> None:
        verdict = self.ds.submit(c.name, c.peer.encrypt(data))
        if not verdict.accepted:
            raise StoryFailure(f"the DS refused {c.name}'s message: {verdict.reason}")

    def _on_event(self, event: Event) -> None:
        self.events.append(event)

    def deliver_all(self) -> None:
        """Every device and every peer processes everything the DS holds for it."""
        for _ in range(100):
            moved = False
            for name in list(self.v.emulators):
                if self.ds.pending(name):
                    moved = True
                    self.v.sync([name])
            for clients in self.peers.values():
                for c in clients:
                    if self.ds.pending(c.name):
                        moved = True
                        self._pump(c)
            if not moved:
                return
        raise StoryFailure("deliveries did not settle")

    def _pump(self, c: PeerClient) -> None:
        for d in self.ds.receive(c.name):
            if d.kind is DeliveryKind.WELCOME:
                c.peer.join(d.message)
                c.member = True
                continue
            if not c.member:
                continue
            r = c.peer.process(d.message)
            if r.kind == "application":
                self.read.append((c, d, r.data))
            if r.removed:
                c.member = False

    def _clear(self) -> None:
        self.events.clear()
        self.read.clear()

    def members(self, group: str) -> list[PeerClient]:
        return [c for c in self.peers[group] if c.member]

    def holders(self, group: str) -> list[str]:
        gid = self.gids[group]
        return [n for n, em in self.v.emulators.items() if gid in em.groups]

    # --- what each party sees ------------------------------------------------------------------

    def group_view(self, group: str) -> tuple[str, bool, str]:
        """(text, agree, failure): alice's leaf at each peer, the epoch, the epoch
        authenticators (or exporters) of every device and peer."""
        gid = self.gids[group]
        holders = self.holders(group)
        members = self.members(group)
        problems: list[str] = []
        auths: dict[str, bytes] = {}
        epochs: set[int] = set()
        own_leaves: set[int] = set()
        for n in holders:
            g = self.v.emulators[n].groups[gid].group
            auths[n] = g.epoch_authenticator
            epochs.add(g.epoch)
            own_leaves.add(int(g.own_leaf))
        exporter_only: list[str] = []
        reference = (self.v.emulators[holders[0]].groups[gid].group.export_secret(
            EXPORT_LABEL, b"", 32) if holders else None)
        for c in members:
            a = c.peer.epoch_authenticator()
            e = c.peer.epoch()
            if e is not None:
                epochs.add(e)
            if a is not None:
                auths[c.person] = a
            else:
                mine = c.peer.export(EXPORT_LABEL, b"", 32)
                if reference is None:
                    reference = mine
                exporter_only.append(c.person)
                if mine != reference:
                    problems.append(f"{c.label} exports another secret")
        if len(set(auths.values())) > 1:
            problems.append("epoch authenticators differ: " + ", ".join(
                f"{k}={_short(v)}" for k, v in auths.items()))
        if len(epochs) > 1:
            problems.append(f"epochs differ: {sorted(epochs)}")
        leaves: dict[str, list[int]] = {}
        for c in members:
            leaves[c.person] = [i for i, m in sorted(c.peer.roster().items())
                                if m.identity == VC_ID.encode()]
        seen = {tuple(v) for v in leaves.values()}
        if holders and any(len(v) != 1 for v in leaves.values()):
            problems.append("a peer does not see alice as exactly one member: "
                            + ", ".join(f"{k}={v}" for k, v in leaves.items()))
        if holders and len(seen | {(x,) for x in own_leaves}) > 1:
            problems.append("alice's leaf differs between parties: " + ", ".join(
                f"{k}={v}" for k, v in leaves.items()) + f", devices {sorted(own_leaves)}")
        epoch = next(iter(epochs)) if len(epochs) == 1 else "?"
        people = ", ".join(c.person for c in members)
        if holders:
            leaf = next(iter(own_leaves)) if len(own_leaves) == 1 else "?"
            where = f"alice is leaf {leaf} (one member) for {people}"
        else:
            where = f"alice not a member; members {people}"
        auth = next(iter(auths.values())) if auths else b""
        parties = " ".join([*holders, *(c.person for c in members if c.person in auths)])
        extra = (f" + {', '.join(exporter_only)} by exporter" if exporter_only else "")
        verdict = "agree" if not problems else "DISAGREE"
        text = (f"{group} epoch {epoch}: {where}; auth {_short(auth)} at {parties}{extra}: "
                f"{verdict}")
        return text, not problems, "; ".join(problems)

    def emulation_view(self) -> tuple[str, bool, str]:
        ems = self.v.emulators
        auths = {n: em.emu.epoch_authenticator for n, em in ems.items()}
        epochs = {em.emu.epoch for em in ems.values()}
        any_em = next(iter(ems.values()))
        roster = " ".join(f"{any_em.epochs.latest.roster.get(int(i), b'?').decode()}={int(i)}"
                          for i, _ in any_em.emu.members())
        ok = len(set(auths.values())) == 1 and len(epochs) == 1
        text = (f"emulation epoch {min(epochs)}: {roster}; auth "
                f"{_short(next(iter(auths.values())))} at {' '.join(ems)}: "
                f"{'agree' if ok else 'DISAGREE'}")
        return text, ok, "" if ok else "the devices disagree on the emulation group"

    def show(self, actor: str, action: str, groups: Sequence[str] = (),
             emulation: bool = False, extra: Sequence[tuple[str, bool, str]] = ()) -> None:
        """One transcript line: `extra` parts first, then the views asked for."""
        parts = list(extra)
        if emulation:
            parts.append(self.emulation_view())
        parts += [self.group_view(g) for g in groups]
        ok = all(p[1] for p in parts)
        failure = "; ".join(p[2] for p in parts if not p[1])
        self.line(actor, action, " | ".join(p[0] for p in parts), ok, failure)

    # --- checks of one step ----------------------------------------------------------------------

    def peers_read(self, group: str, data: bytes) -> tuple[str, bool, str]:
        members = self.members(group)
        got = {c.person for c, d, x in self.read if d.group_id == self.gids[group] and x == data}
        self.report.peer_reads += len(got)
        missing = [c.label for c in members if c.person not in got]
        ok = not missing
        text = (f"{', '.join(c.person for c in members)} read it"
                + (f" (not: {', '.join(missing)})" if missing else ""))
        return text, ok, f"{', '.join(missing)} did not read it"

    def siblings_attribute(self, group: str, sender: str) -> tuple[str, bool, str]:
        """Every other device holding the group recovers `sender` from the reuse guard."""
        gid = self.gids[group]
        want = [n for n in self.holders(group) if n != sender]
        found: dict[str, tuple[int, str]] = {}
        for ev in self.events:
            r = ev.received
            if (ev.delivery.group_id != gid or ev.delivery.kind is not DeliveryKind.APPLICATION
                    or r.sibling_leaf is None or r.sibling_epoch is None):
                continue
            em = self.v.emulators[ev.emulator]
            name = em.epochs.epochs[r.sibling_epoch].roster.get(r.sibling_leaf, b"?").decode()
            found[ev.emulator] = (r.sibling_leaf, name)
        self.report.attributions += len(found)
        wrong = [f"{n} says {found[n][1]}" for n in want if n in found and found[n][1] != sender]
        missing = [n for n in want if n not in found]
        leaves = {found[n][0] for n in want if n in found}
        leaf = next(iter(leaves)) if len(leaves) == 1 else "?"
        ok = not wrong and not missing and len(leaves) == 1
        text = (f"{_and(want)} attribute it to {sender} (emulation leaf {leaf})"
                if ok else f"attribution FAILED: wrong {wrong}, missing {missing}")
        return text, ok, text

    def devices_read(self, group: str, data: bytes) -> tuple[str, bool, str]:
        gid = self.gids[group]
        got = {ev.emulator for ev in self.events if ev.delivery.group_id == gid
               and isinstance(ev.received.event, ApplicationMessage)
               and ev.received.event.data == data}
        self.report.device_reads += len(got)
        missing = [n for n in self.holders(group) if n not in got]
        text = (f"{', '.join(self.holders(group))} read it"
                + (f" (not: {', '.join(missing)})" if missing else ""))
        return text, not missing, f"{', '.join(missing)} did not read it"

    def check(self, what: str, ok: bool, failure: str = "") -> tuple[str, bool, str]:
        return what, ok, failure or what

    # --- the story ------------------------------------------------------------------------

    def run(self) -> StoryReport:
        start = time.perf_counter()
        try:
            self._run()
        except (MLSError, StoryFailure, AssertionError) as exc:
            self.line("story", "stopped", f"{type(exc).__name__}: {exc}", False)
        try:
            self._summarise()
        finally:
            for clients in self.peers.values():
                for c in clients:
                    c.peer.close()
            self.report.seconds = time.perf_counter() - start
        return self.report

    def _run(self) -> None:
        self._create_virtual_client()
        self._create_groups()
        self._upload_key_packages()
        self._welcome("family")
        self._welcome("work")
        for device in DEVICES:
            self._device_sends("family", device, f"hello from alice's {device}".encode())
        self._peer_sends("work", self.peers["work"][-1],
                         f"hello from {self.peers['work'][-1].person}".encode())
        self._device_commits("family", "tablet")
        self._add_fourth_device()
        marks = self._remove_tablet()
        self._device_sends("family", "laptop", b"the tablet is gone")
        self._peer_sends("work", self.peers["work"][0], b"noted")
        self._peer_commits("family", self.peers["family"][0])
        self._device_sends("work", FOURTH, b"hello from alice's desktop")
        self._external_join("club", "laptop")
        self._device_sends("club", FOURTH, b"hello, club")
        self._peer_sends("club", self.peers["club"][0], b"welcome, alice")
        self._removed_device_tries(marks)

    def _create_virtual_client(self) -> None:
        self.vc = VirtualClient.create(self.ds, VC_ID, list(DEVICES), suite=self.suite,
                                       seed=self.seed)
        self.v.listeners.append(self._on_event)
        self.deliver_all()
        self.report.devices_added += list(DEVICES)
        self.show(DEVICES[0], f"creates alice's emulation group, adds {DEVICES[1]} and "
                              f"{DEVICES[2]} by Welcome", emulation=True)

    def _create_groups(self) -> None:
        n = len(self.engines)
        for i, group in enumerate(GROUPS):
            order = [self.engines[(i + k) % n] for k in range(n)]
            if group == "club":  # joined externally: its creator publishes a GroupInfo
                order.sort(key=lambda e: "group_info" not in FEATURES[e])
            clients = []
            for engine in order:
                person = PEOPLE[engine]
                c = PeerClient(person, engine, group, self.gids[group],
                               make_peer(engine, f"{person}@{group}".encode(), self.suite,
                                         seed=self.seed))
                self.ds.register_client(c.name)
                clients.append(c)
                self.report.peers.append({"name": c.name, "person": person, "engine": engine,
                                          "group": group})
            self.peers[group] = clients
            creator, *others = clients
            creator.peer.create(self.gids[group])
            creator.member = True
            self.ds.create_group(self.gids[group], 0, [creator.name])
            gi = creator.peer.group_info()
            if gi is not None:
                self.ds.publish_group_info(self.gids[group], gi)
            for c in others:
                self.ds.upload_key_packages(c.name, [c.peer.key_package()])
            if others:
                kps = [self.ds.fetch_key_package(c.name) for c in others]
                self._peer_commit(creator, creator.peer.commit(adds=kps))
            self.deliver_all()
            added = ", ".join(c.label for c in others) or "nobody else"
            self.show(creator.label, f"creates {group} and adds {added} (KeyPackages from "
                                     "the DS directory)", [group])

    def _upload_key_packages(self) -> None:
        self._clear()
        self.v.upload_key_packages("laptop", 3)
        self.deliver_all()
        refs = {n: set(em.key_packages) for n, em in self.v.emulators.items()}
        at_ds = set(self.ds.outstanding_key_packages(VC_ID))
        ok = all(r == at_ds for r in refs.values()) and len(at_ds) == 3
        others = _and([n for n in refs if n != "laptop"])
        self.show("laptop", "announces 3 KeyPackages in the emulation group "
                            "(KeyPackageUpload) and uploads them to the DS directory",
                  emulation=True, extra=[self.check(
                      f"{others} re-derived all {len(at_ds)} (KeyPackageRefs match the DS's)",
                      ok, "the devices' KeyPackages differ from the DS's")])

    def _welcome(self, group: str) -> None:
        self._clear()
        adder = self.members(group)[0]
        kp = self.ds.fetch_key_package(VC_ID)
        self._peer_commit(adder, adder.peer.commit(adds=[kp]))
        self.deliver_all()
        self.joined_by[group] = f"Welcome from {adder.label}"
        joined = [ev.emulator for ev in self.events if ev.received.joined
                  and ev.received.group_id == self.gids[group]]
        ok = sorted(joined) == sorted(self.v.emulators)
        self.show(adder.label, f"fetches a KeyPackage of alice from the DS, adds alice to "
                               f"{group}", [group],
                  extra=[self.check(f"{', '.join(joined)} joined from the one Welcome", ok)])

    def _device_sends(self, group: str, device: str, data: bytes) -> None:
        self._clear()
        self.v.send(device, self.gids[group], data)
        self.deliver_all()
        self.show(device, f"sends {data.decode()!r} in {group}", [group],
                  extra=[self.peers_read(group, data),
                         self.siblings_attribute(group, device)])

    def _peer_sends(self, group: str, c: PeerClient, data: bytes) -> None:
        self._clear()
        self._peer_send(c, data)
        self.deliver_all()
        self.show(c.label, f"sends {data.decode()!r} in {group}", [group],
                  extra=[self.devices_read(group, data)])

    def _leaf_epoch(self, device: str, group: str) -> int:
        em = self.v.emulators[device]
        return em.epochs.by_id(em.groups[self.gids[group]].active.epoch_id).epoch

    def _device_commits(self, group: str, device: str) -> None:
        self._clear()
        self.v.commit(device, self.gids[group])
        self.deliver_all()
        others = [n for n in self.holders(group) if n != device]
        followed = {ev.emulator for ev in self.events if ev.delivery.group_id ==
                    self.gids[group] and ev.delivery.kind is not DeliveryKind.APPLICATION}
        epochs = {self._leaf_epoch(n, group) for n in self.holders(group)}
        ok = set(others) <= followed and len(epochs) == 1
        self.show(device, f"commits in {group} with a new leaf for alice", [group],
                  extra=[self.check(f"{_and(others)} followed (re-derived the leaf "
                                    f"from emulation epoch {min(epochs)})", ok)])

    def _peer_commits(self, group: str, c: PeerClient) -> None:
        self._clear()
        self._peer_commit(c, c.peer.commit())
        self.deliver_all()
        self.show(c.label, f"commits in {group} (a path update)", [group])

    def _add_fourth_device(self) -> None:
        self._clear()
        cs = get_suite(self.suite)
        rng = SeededRandom(self.seed + b"/" + FOURTH.encode())
        ident = Identity.basic(FOURTH.encode(), cs.signature.generate_key_pair(rng))
        some = self.v.emulators[DEVICES[0]]
        desktop = Emulator(FOURTH.encode(), ident, some.vc, rng)
        self.v.add_emulator(DEVICES[0], desktop)
        self.deliver_all()
        self.report.devices_added.append(FOURTH)
        held = sorted(g for g in GROUPS if self.gids[g] in desktop.groups)
        necs = (desktop.emu.welcome_group_info is not None and lifecycle.state_in(
            desktop, desktop.emu.welcome_group_info.extensions) is not None)
        published = lifecycle.state_in(desktop, lifecycle.check_published_group_info(
            desktop, self.ds.group_info(self.v.emulation_group_id)).extensions)
        ok = held == ["family", "work"] and necs and published is None
        self.show(DEVICES[0], f"adds a fourth device, {FOURTH}, by Welcome (P13)",
                  ["family"], emulation=True,
                  extra=[self.check(f"the Welcome carried a NewEmulatorClientState "
                                    f"(the published GroupInfo none); {FOURTH} holds "
                                    f"{_and(held)} by state transfer", ok)])
        # P9: the leaf in family comes from an emulation epoch the desktop was no member of
        try:
            desktop.send_private_message(self.gids["family"], b"too early")
        except ValidationError as exc:
            refused = exc.check_id == "VC-SEND-BEFORE-ROTATION"
            verdict = f"refused: {exc.check_id} (P9), nothing changed"
        else:
            refused, verdict = False, "NOT refused"
        self.line(FOURTH, "tries to send in family before alice's leaf is rotated",
                  verdict, refused)
        self._device_commits("family", FOURTH)
        self._device_sends("family", FOURTH, b"hello from alice's desktop")

    def _remove_tablet(self) -> dict[bytes, int]:
        """The removal; returns where each log stood before it."""
        self._clear()
        tablet = self.v.emulators["tablet"]
        kept_key = tablet.vc_signing_key
        before = len(self.ds.outstanding_key_packages(VC_ID))
        marks = {gid: len(self.ds.log(gid)) for gid in [self.v.emulation_group_id,
                                                         *self.gids.values()]
                 if gid in self.ds.groups()}
        self.v.remove_emulator(DEVICES[0], "tablet")
        self.deliver_all()
        self.report.devices_removed.append("tablet")
        # what reached the tablet before the DS stopped fanning out to it: its removal
        for d in self.ds.receive("tablet"):
            try:
                tablet.deliver(d.group_id, d.message)
            except MLSError:
                continue  # tried again below, with everything else sent since
            self.drained.add(d.seq)
        finished = all(lifecycle.removal_finished(em, b"tablet")
                       for em in self.v.emulators.values())
        keys = {em.vc_signing_key for em in self.v.emulators.values()}
        left = self.ds.outstanding_key_packages(VC_ID)
        ok = (finished and len(keys) == 1 and kept_key not in keys and not left
              and tablet.removed)
        self.show(DEVICES[0], "removes the tablet (P21): KeyPackages deleted at the DS, "
                              "Remove committed, ResyncMessage, a path commit in each group",
                  ["family", "work"], emulation=True,
                  extra=[self.check(
                      f"KeyPackages at the DS {before} -> {len(left)}; new long-term key "
                      f"at {', '.join(self.v.emulators)}; removal finished at every "
                      f"device; the tablet learned it was removed", ok)])
        return marks

    def _external_join(self, group: str, device: str) -> None:
        self._clear()
        self.v.external_join(device, self.gids[group])
        self.deliver_all()
        self.joined_by[group] = f"external commit by {device}"
        joined = {ev.emulator for ev in self.events if ev.received.joined
                  and ev.received.group_id == self.gids[group]}
        followed = [n for n in self.v.emulators if n in joined]
        others = [n for n in self.v.emulators if n != device]
        self.show(device, f"joins {group} by external commit (announced by an "
                          "ExternalJoin in the emulation group)", [group],
                  extra=[self.check(f"{_and(followed)} followed", followed == others)])

    def _removed_device_tries(self, marks: dict[bytes, int]) -> None:
        """Everything sent since the removal began in the groups the tablet still holds
        and in the emulation group (but its own removal, which reached it before the DS
        stopped fanning out to it), tried with all it kept: none may be readable."""
        tablet = self.v.removed["tablet"]
        errors: Counter[str] = Counter()
        tried = read = applications = 0
        where: list[str] = []
        targets = [(tablet.emu.group_id, "emulation")] + [
            (self.gids[g], g) for g in GROUPS if self.gids[g] in tablet.groups]
        for gid, name in targets:
            later = [d for d in self.ds.log(gid)[marks.get(gid, 0):]
                     if d.seq not in self.drained]
            where.append(f"{len(later)} in {name}")
            for d in later:
                tried += 1
                applications += d.kind is DeliveryKind.APPLICATION
                try:
                    tablet.deliver(gid, d.message)
                except MLSError as exc:
                    errors[_error_name(exc)] += 1
                else:
                    read += 1
        self.report.removed = {
            "device": "tablet", "tried": tried, "applications": applications, "read": read,
            "unreadable": tried - read, "errors": dict(sorted(errors.items())),
            "groups": [name for _, name in targets[1:]],
        }
        kinds = ", ".join(f"{n} x {k}" for k, n in sorted(errors.items()))
        self.line("tablet", f"(removed) tries every later message with what it kept: "
                            f"{', '.join(where)}",
                  f"read {read} of {tried} ({applications} application messages); "
                  f"errors: {kinds}", read == 0 and tried > 0 and applications > 0)

    def _summarise(self) -> None:
        for group in GROUPS:
            clients = self.peers.get(group, [])
            holders = self.holders(group) if self.vc is not None else []
            entry: dict[str, Any] = {
                "name": group, "group_id": self.gids[group].hex(),
                "creator": clients[0].label if clients else None,
                "peers": [{"name": c.name, "engine": c.engine, "member": c.member}
                          for c in clients],
                "alice_joined_by": self.joined_by.get(group),
                "devices": holders,
            }
            if holders:
                g = self.v.emulators[holders[0]].groups[self.gids[group]].group
                entry |= {"epoch": g.epoch, "alice_leaf": int(g.own_leaf),
                          "epoch_authenticator": g.epoch_authenticator.hex()}
                if clients:
                    entry["agree"] = self.group_view(group)[1]
            self.report.groups.append(entry)


def run_story(engines: Sequence[str] = ENGINES, *, seed: int = 1, suite: int = 1,
              echo: Callable[[str], None] | None = None) -> StoryReport:
    """Run the story with one peer client of each of `engines` in every group; `echo`
    gets each transcript line as it happens."""
    return Story(engines, seed=seed, suite=suite, echo=echo).run()


# --- the verification summary: vectors, proofs, model (in subprocesses) --------------------------

FINDINGS = ("F1", "F2", "F3", "F4")


def _generated_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "vectors" / "generated"


def _lanes() -> list[list[tuple[str, list[str]]]]:
    """The summary's `mlsvc` commands in three lanes, each run one command after the
    other (three processes at most beside the story: the proofs alone take a core)."""
    vectors = [("vectors", ["vectors", "--json"])]
    if _generated_dir().is_dir():
        vectors.append(("generated vectors",
                        ["vectors", "--dir", str(_generated_dir()), "--json"]))
    model = [("model", ["model", "explore", "--profile", "ci", "--json"])]
    model += [(f"finding {f}", ["model", "explore", "--profile", "ci", "--finding", f,
                                "--json"]) for f in FINDINGS]
    # the model judges the implementation (refine/, docs/REFINEMENT.md)
    vectors.append(("refinement", ["model", "refine", "--profile", "ci", "--json"]))
    # the second profile (docs/PROFILES.md): the later text run end to end with the three
    # engines, and the model's verdicts under both texts
    proofs = [("proofs", ["proofs", "--json"]),
              ("latest profile", ["vc", "simulate", "--profile", "latest", "--emulators", "3",
                                  "--groups", "2", "--peers", "mlsvc,mls-rs,ts-mls",
                                  "--ops", "150", "--seed", "3", "--json"])]
    model.append(("compare", ["model", "compare", "--json"]))
    return [proofs, vectors, model]


def _run_lane(lane: list[tuple[str, list[str]]]) -> dict[str, dict[str, Any]]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    out: dict[str, dict[str, Any]] = {}
    for name, argv in lane:
        proc = subprocess.run([sys.executable, "-m", "mlsvc.cli", *argv], text=True,
                              capture_output=True, env=env, check=False)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            doc = {"error": (proc.stderr or proc.stdout).strip()[-500:]}
        out[name] = {"rc": proc.returncode, "doc": doc}
    return out


@dataclass
class Checks:
    """The summary's commands, running in subprocesses of `mlsvc` (each prints JSON)."""

    running: list[Future[dict[str, dict[str, Any]]]]
    pool: ThreadPoolExecutor
    started: float

    def collect(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for lane in self.running:
            out.update(lane.result())
        self.pool.shutdown()
        return summarise(out, time.perf_counter() - self.started)


def start_checks() -> Checks:
    """Start the summary's commands now (they run while the story does)."""
    lanes = _lanes()
    pool = ThreadPoolExecutor(max_workers=len(lanes))
    return Checks([pool.submit(_run_lane, lane) for lane in lanes], pool,
                  time.perf_counter())


def _files(doc: dict[str, Any]) -> tuple[int, int, int, int]:
    files = doc.get("files", [])
    return (len(files), sum(f["passed"] for f in files), sum(f["failed"] for f in files),
            sum(f["skipped"] for f in files))


def summarise(results: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The summary's verdicts from each command's exit status and JSON."""
    summary: dict[str, Any] = {}
    v = results["vectors"]
    n, p, f, s = _files(v["doc"])
    summary["vectors"] = {"ok": v["rc"] == 0, "files": n, "passed": p, "failed": f,
                          "skipped": s}
    if "generated vectors" in results:
        g = results["generated vectors"]
        n, p, f, s = _files(g["doc"])
        summary["generated_vectors"] = {
            "ok": g["rc"] == 0, "files": [x["file"] for x in g["doc"].get("files", [])],
            "passed": p, "failed": f, "skipped": s}
    pr = results["proofs"]
    obligations = pr["doc"].get("obligations", [])
    summary["proofs"] = {
        "ok": pr["rc"] == 0, "obligations": len(obligations),
        "holds": sum(o["kind"] == "holds" for o in obligations),
        "twins": sum(o["kind"] == "twin" for o in obligations),
        "as_expected": sum(bool(o["ok"]) for o in obligations),
        "solver_seconds": pr["doc"].get("total_seconds"),
        "failed": [f"{o['name']}: {o['verdict']}" + (f" ({o['reason']})" if o["reason"] else "")
                   for o in obligations if not o["ok"]] or (
            [] if pr["rc"] == 0 else [str(pr["doc"].get("error", "no result"))]),
    }
    m = results["model"]
    summary["model"] = {
        "ok": m["rc"] == 0, "invariants": len(m["doc"].get("invariants_checked", [])),
        "runs": m["doc"].get("runs"), "transitions": m["doc"].get("transitions_applied"),
        "violation": (m["doc"].get("violation") or {}).get("invariant"),
        "findings": {
            f: {"reproduced": results[f"finding {f}"]["rc"] == 0,
                "invariant": (results[f"finding {f}"]["doc"].get("violation") or {})
                .get("invariant")}
            for f in FINDINGS},
    }
    summary["model"]["ok"] = summary["model"]["ok"] and all(
        x["reproduced"] for x in summary["model"]["findings"].values())
    r = results["refinement"]
    summary["refinement"] = {
        "ok": r["rc"] == 0, "runs": r["doc"].get("runs"), "steps": r["doc"].get("steps"),
        "invariants": len(r["doc"].get("invariants", [])),
        "failure": r["doc"].get("failure") or r["doc"].get("error")}
    lp, cmp = results["latest profile"], results["compare"]
    verdicts = [(f["verdicts"]["draft-00"]["verdict"], f["verdicts"]["latest"]["verdict"])
                for f in cmp["doc"].get("findings", [])]
    summary["profiles"] = {
        "ok": lp["rc"] == 0 and cmp["rc"] == 0 and not lp["doc"].get("violations", [1]),
        "ops": lp["doc"].get("ops"), "decrypted": lp["doc"].get("messages_decrypted"),
        "violations": lp["doc"].get("violations", [lp["doc"].get("error")]),
        "engines": lp["doc"].get("config", {}).get("peers"),
        "findings": len(verdicts),
        "fixed_by_latest": sum(v == ("found", "fixed") for v in verdicts),
        "still_found": sum(v == ("found", "found") for v in verdicts),
        "new_in_latest": sum(v[1] == "new" for v in verdicts)}
    summary["seconds"] = round(seconds, 1)
    summary["ok"] = all(x["ok"] for x in summary.values() if isinstance(x, dict))
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary for people."""
    def mark(ok: bool) -> str:
        return "ok" if ok else "FAILED"

    v = summary["vectors"]
    lines = [f"vectors (RFC 9420, official): {v['files']} files, {v['passed']} passed, "
             f"{v['failed']} failed, {v['skipped']} skipped: {mark(v['ok'])}"]
    g = summary.get("generated_vectors")
    if g is not None:
        lines.append(f"vectors (generated: {', '.join(g['files'])}): {g['passed']} passed, "
                     f"{g['failed']} failed: {mark(g['ok'])}")
    p = summary["proofs"]
    lines.append(f"proofs (Z3): {p['obligations']} obligations ({p['holds']} hold, "
                 f"{p['twins']} twins that must fail), {p['as_expected']} as expected, "
                 f"solver {p['solver_seconds']} s: {mark(p['ok'])}"
                 + "".join(f"\n  FAILED {f}" for f in p["failed"]))
    m = summary["model"]
    found = ", ".join(f"{f} breaks {x['invariant']}" if x["reproduced"] else f"{f} NOT reproduced"
                      for f, x in m["findings"].items())
    lines.append(f"model (draft-00): {m['invariants']} invariants held over {m['runs']} runs, "
                 f"{m['transitions']} transitions"
                 + (f" (VIOLATED: {m['violation']})" if m["violation"] else "")
                 + f"; findings: {found}: {mark(m['ok'])}")
    r = summary["refinement"]
    lines.append(f"refinement (the model judges the implementation): {r['runs']} runs, "
                 f"{r['steps']} steps, {r['invariants']} invariants on the model and on the "
                 "implementation's bytes after every step"
                 + (f": FAILED {r['failure']}" if not r["ok"] else "") + f": {mark(r['ok'])}")
    lp = summary["profiles"]
    lines.append(f"latest profile (docs/PROFILES.md): vc simulate --profile latest with "
                 f"{', '.join(lp['engines'] or [])}: {lp['ops']} operations, "
                 f"{lp['decrypted']} decryptions, {len(lp['violations'])} violations; "
                 f"model compare: of {lp['findings']} findings {lp['fixed_by_latest']} fixed "
                 f"by the later text, {lp['still_found']} still found, "
                 f"{lp['new_in_latest']} new: {mark(lp['ok'])}")
    return lines
