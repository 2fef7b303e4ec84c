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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.random import SeededRandom, system_random
from mlsvc.crypto.suites import get_suite
from mlsvc.ds import Delivery, DeliveryKind, DeliveryService, Submitted
from mlsvc.errors import StateError
from mlsvc.group.config import Identity
from mlsvc.group.events import CommitApplied
from mlsvc.messages.codepoints import SenderType
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.vc.emulator import (
    Consistency,
    Emulator,
    Outgoing,
    OutgoingKind,
    Received,
    VirtualClientConfig,
)

MAX_RETRIES = 8


@dataclass(frozen=True)
class Event:
    """One delivery an emulator processed (for audits and the simulation's checks)."""

    emulator: str
    delivery: Delivery
    received: Received


class VirtualClient:
    """Emulators of one virtual client and the DS they share (see the module docstring)."""

    def __init__(self, ds: DeliveryService, vc_id: str, emulators: dict[str, Emulator],
                 *, max_retries: int = MAX_RETRIES) -> None:
        self.ds = ds
        self.id = vc_id
        self.emulators = emulators
        self.max_retries = max_retries
        self.listeners: list[Callable[[Event], None]] = []
        self.sent: list[tuple[str, Outgoing, Submitted]] = []  # every submission, in order
        self.ignored: list[tuple[str, Delivery]] = []  # deliveries for groups not held

    # --- creation --------------------------------------------------------------------------

    @classmethod
    def create(cls, ds: DeliveryService, vc_id: str, emulator_names: Sequence[str], *,
               suite: int = 1, seed: bytes | None = None,
               consistency: Consistency = Consistency.STRONG) -> VirtualClient:
        """A virtual client whose first emulator creates the emulation group and adds the
        others by Welcome, all registered at the DS. `seed` makes every random draw
        reproducible (one SeededRandom per emulator); None uses the system's."""
        if not emulator_names or len(set(emulator_names)) != len(emulator_names):
            raise StateError("a virtual client needs one or more distinct emulator names")
        config = VirtualClientConfig(vc_id.encode(), suite, consistency)
        cs = get_suite(suite)
        ems: dict[str, Emulator] = {}
        for name in emulator_names:
            rng: RandomSource = (SeededRandom(seed + b"/" + name.encode()) if seed is not None
                                 else system_random)
            ident = Identity.basic(name.encode(), cs.signature.generate_key_pair(rng))
            ems[name] = Emulator(name.encode(), ident, config, rng)
        first, *rest = emulator_names
        for name in emulator_names:
            ds.register_client(name)
        ds.register_virtual_client(vc_id, emulator_names)
        creator = ems[first]
        creator.create_emulation_group(cs.hash(b"emulation group " + vc_id.encode()))
        ds.create_group(creator.emu.group_id, creator.emu.epoch, [first])
        vc = cls(ds, vc_id, ems)
        if rest:
            kps = {n: ems[n].emulation_key_package() for n in rest}
            out = creator.emulation_commit(add=list(kps.values()))
            verdict = ds.submit(first, out.message)
            if not verdict.accepted or out.welcome is None:
                raise StateError(f"the DS refused the emulation group's first commit: "
                                 f"{verdict.reason}")
            creator.accepted(out)
            for n in rest:
                ds.add_member(creator.emu.group_id, n)
                ems[n].join_emulation_group(out.welcome, kps[n])
        return vc

    # --- the loop --------------------------------------------------------------------------

    def sync(self, names: Iterable[str] | None = None) -> list[Event]:
        """Every emulator (or those named) processes everything the DS holds for it."""
        events: list[Event] = []
        for name in (list(self.emulators) if names is None else list(names)):
            em = self.emulators[name]
            # one at a time: a delivery that fails raises, the rest stay in the mailbox
            while self.ds.pending(name):
                d = self.ds.receive(name, 1)[0]
                event = self._handle(name, em, d)
                if event is not None:
                    events.append(event)
        return events

    def _handle(self, name: str, em: Emulator, d: Delivery) -> Event | None:
        if d.kind is DeliveryKind.WELCOME:
            received = em.welcome(d.message)
        elif (d.on_behalf_of == self.id and d.group_id in em.expected_joins
              and _is_external_commit(d.message)):
            # a sibling's ExternalJoin (§5.5.2), also a resync of a group we are in
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
        """Hand one outgoing message to the DS and its verdict back to the emulator."""
        em = self.emulators[name]
        on_behalf = None if out.kind is OutgoingKind.EMULATION_COMMIT else self.id
        verdict = self.ds.submit(name, out.message, on_behalf_of=on_behalf,
                                 generation_id=out.generation_id)
        self.sent.append((name, out, verdict))
        if verdict.accepted:
            result = em.accepted(out)
            if result.key_packages:
                self.ds.upload_key_packages(self.id, result.key_packages)
            if result.next is not None:
                self._second_step(name, result.next)
            if out.kind in (OutgoingKind.COMMIT, OutgoingKind.EXTERNAL_COMMIT):
                self.publish_group_info(name, out.group_id)
        else:
            em.refused(out)
        return verdict

    def _second_step(self, name: str, out: Outgoing) -> None:
        """ExternalJoin step two (§5.5.2): the external commit. If another commit won
        the epoch, the announcement stands and the emulator commits again from the
        newest GroupInfo (a new operation each time)."""
        for _ in range(self.max_retries + 1):
            if self.submit(name, out).accepted:
                return
            self.sync([name])
            out = self.emulators[name].external_commit(out.group_id,
                                                       self.ds.group_info(out.group_id))
        raise StateError(f"{name}'s external commit was refused {self.max_retries + 1} times")

    def publish_group_info(self, name: str, group_id: bytes) -> None:
        hg = self.emulators[name].groups.get(group_id)
        if hg is not None:
            self.ds.publish_group_info(group_id, hg.group.group_info())

    def act(self, name: str, make: Callable[[Emulator], Outgoing]) -> Submitted:
        """P19/P22: sync `name`, let it act, submit; on refusal sync and act anew."""
        for _ in range(self.max_retries + 1):
            self.sync([name])
            verdict = self.submit(name, make(self.emulators[name]))
            if verdict.accepted:
                return verdict
        raise StateError(f"{name} was refused {self.max_retries + 1} times")

    # --- the virtual client's actions ------------------------------------------------------

    def upload_key_packages(self, name: str, count: int = 1,
                            group_suite: int | None = None) -> Submitted:
        return self.act(name, lambda em: em.create_key_packages(count, group_suite))

    def emulation_commit(self, name: str) -> Submitted:
        return self.act(name, lambda em: em.emulation_commit())

    def commit(self, name: str, group_id: bytes) -> Submitted:
        return self.act(name, lambda em: em.vc_commit(group_id))

    def update(self, name: str, group_id: bytes) -> Submitted:
        return self.act(name, lambda em: em.vc_update(group_id))

    def send(self, name: str, group_id: bytes, data: bytes) -> Submitted:
        return self.act(name, lambda em: em.send_private_message(group_id, data))

    def external_join(self, name: str, group_id: bytes) -> Submitted:
        """§5.5.2: the ExternalJoin Commit, then the external commit from the latest
        published GroupInfo."""
        return self.act(name, lambda em: em.external_join(group_id,
                                                          self.ds.group_info(group_id)))

    def groups(self) -> set[bytes]:
        out: set[bytes] = set()
        for em in self.emulators.values():
            out |= set(em.groups)
        return out


def _is_external_commit(message: bytes) -> bool:
    body = MLSMessage.decode(message).body
    return (isinstance(body, PublicMessage)
            and body.content.sender.sender_type == SenderType.NEW_MEMBER_COMMIT)
