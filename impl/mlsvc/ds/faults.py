"""A seeded, deterministic fault layer between the DS's mailboxes and the clients that
read them (docs/DS.md, "Faults, refetch and persistence").

The DS itself stays exact: it accepts, orders and addresses every message as before,
and keeps each group's log with the recipients of every entry (so `refetch` can answer
a client that noticed a gap). What the layer changes is what a client *receives*:

- **drop**: a delivery never reaches that one client (decided when the DS addresses it;
  it never enters the mailbox). The client notices the gap by `group_seq` when a later
  message of the group arrives (or by asking at quiescence) and calls
  `DeliveryService.refetch`; a dropped Welcome is found again with `welcomes_for`.
- **delay**: a delivery is held back while up to `max_delay` further deliveries are
  handed to that client. Deliveries of other groups overtake it; those of its own group
  wait behind it. A held delivery is never held past the moment nothing else is left
  for the client (the client's clock jumps), so `pending(c) > 0` always means
  `receive(c, 1)` hands something over.
- **duplicate**: after a delivery is handed over, the same `Delivery` is handed over
  once more later (after up to `max_delay` further deliveries).
- **reorder**: instead of the oldest ready delivery, the client gets another ready one:
  always the head of another group's queue (or a duplicate), so two deliveries of the
  same group are never swapped. A Welcome counts as part of the group it welcomes to,
  so it is never overtaken by that group's later messages.

Per client and group the first hand-overs are therefore in `group_seq` order with
holes where drops were; duplicates repeat a `group_seq` already handed over.

The clock of a client counts the deliveries handed to it, so `receive(c, 3)` hands over
exactly what three `receive(c, 1)` do. Every decision draws from one SeededRandom
(SHA-256 of the seed and a counter): the same policy and the same calls give the same
sequence, and the layer's state (the counter, clocks, held and duplicate queues, drops,
counters) is plain data with its own versioned snapshot (`to_bytes` / `from_bytes`),
kept by `DeliveryService.save` next to the DS state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlsvc.codec import Reader, Writer, decode_exact
from mlsvc.crypto.random import SeededRandom
from mlsvc.ds.persist import _r_delivery, _r_str, _w_delivery, _w_str
from mlsvc.ds.state import Delivery, DeliveryKind
from mlsvc.errors import DecodeError, ParameterError

__all__ = ["FaultLayer", "FaultPolicy", "FaultStats"]

MAGIC = b"mlsvc-df"
VERSION = 1
_U64 = 1 << 64


@dataclass(frozen=True)
class FaultPolicy:
    """What may go wrong, and how often: each probability is per delivery (drop,
    delay, duplicate: per delivery and client; reorder: per hand-over with a choice).
    `clients`: the clients the faults apply to (None: every client). `max_delay`: the
    most deliveries a delayed one or a duplicate waits behind."""

    seed: int
    delay: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    drop: float = 0.0
    clients: tuple[str, ...] | None = None
    max_delay: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or not 0 <= self.seed < _U64:
            raise ParameterError(f"fault seed must be a uint64, not {self.seed!r}")
        for name in ("delay", "duplicate", "reorder", "drop"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ParameterError(f"fault probability {name}={p!r} is not in [0, 1]")
            object.__setattr__(self, name, float(p))
        if self.clients is not None:
            names = tuple(self.clients)
            if not all(isinstance(c, str) and c for c in names):
                raise ParameterError("fault clients are non-empty client ids")
            object.__setattr__(self, "clients", names)
        if not isinstance(self.max_delay, int) or not 1 <= self.max_delay < (1 << 16):
            raise ParameterError(f"max_delay must be in [1, 65535], not {self.max_delay!r}")

    def applies(self, client_id: str) -> bool:
        return self.clients is None or client_id in self.clients


@dataclass
class FaultStats:
    """How often each fault happened. The first four count every delivery (Welcomes
    included); `welcomes_*` count the Welcomes among them; `handed` counts every
    hand-over to a faulty client, duplicates included."""

    delayed: int = 0
    duplicated: int = 0
    reordered: int = 0
    dropped: int = 0
    welcomes_delayed: int = 0
    welcomes_duplicated: int = 0
    welcomes_dropped: int = 0
    handed: int = 0

    def as_tuple(self) -> tuple[int, ...]:
        return (self.delayed, self.duplicated, self.reordered, self.dropped,
                self.welcomes_delayed, self.welcomes_duplicated, self.welcomes_dropped,
                self.handed)


@dataclass(frozen=True)
class _Candidate:
    delivery: Delivery
    ready_at: int
    index: int        # in the mailbox (an original) or in the copies (a duplicate)
    copy: bool


@dataclass(frozen=True)
class _Plan:
    pick: _Candidate
    clock: int        # the client's clock when it is handed over (after any jump)
    reordered: bool


@dataclass
class FaultLayer:
    """The fault layer's state (plain data) and its decisions. The DS calls `admit`
    when it addresses a delivery to a client the policy covers, and `pending`, `peek`,
    `take` with that client's mailbox (the originals not yet handed over, in `seq`
    order); the layer keeps the rest: per client a clock, the delayed originals
    (`held`: seq -> ready time), the duplicates still to come (`copies`), and every
    drop (`dropped`: (client, seq), for audits and tests)."""

    policy: FaultPolicy
    counter: int = 0
    clocks: dict[str, int] = field(default_factory=dict)
    held: dict[str, dict[int, int]] = field(default_factory=dict)
    copies: dict[str, list[tuple[Delivery, int]]] = field(default_factory=dict)
    dropped: list[tuple[str, int]] = field(default_factory=list)
    stats: FaultStats = field(default_factory=FaultStats)

    # --- randomness ----------------------------------------------------------------------

    def _rng(self) -> SeededRandom:
        rng = SeededRandom(b"mlsvc-ds-faults/" + self.policy.seed.to_bytes(8, "big"))
        rng.counter = self.counter
        return rng

    @staticmethod
    def _unit(rng: SeededRandom) -> float:
        return int.from_bytes(rng(7), "big") / float(1 << 56)

    def _wait(self, rng: SeededRandom) -> int:
        return 1 + min(int(self._unit(rng) * self.policy.max_delay), self.policy.max_delay - 1)

    def _chance(self, rng: SeededRandom, p: float) -> bool:
        return p > 0.0 and self._unit(rng) < p

    # --- the DS's calls ------------------------------------------------------------------

    def applies(self, client_id: str) -> bool:
        return self.policy.applies(client_id)

    def admit(self, client_id: str, delivery: Delivery) -> bool:
        """The DS addresses `delivery` to `client_id`: False if it is dropped on the way
        (the DS must not put it in the mailbox); True otherwise, maybe delayed."""
        rng = self._rng()
        welcome = delivery.kind is DeliveryKind.WELCOME
        try:
            if self._chance(rng, self.policy.drop):
                self.dropped.append((client_id, delivery.seq))
                self.stats.dropped += 1
                self.stats.welcomes_dropped += welcome
                return False
            if self._chance(rng, self.policy.delay):
                self.held.setdefault(client_id, {})[delivery.seq] = (
                    self.clocks.get(client_id, 0) + self._wait(rng))
                self.stats.delayed += 1
                self.stats.welcomes_delayed += welcome
            return True
        finally:
            self.counter = rng.counter

    def pending(self, client_id: str, mailbox: list[Delivery]) -> int:
        return len(mailbox) + len(self.copies.get(client_id, ()))

    def peek(self, client_id: str, mailbox: list[Delivery]) -> Delivery | None:
        """What `take` would hand over next; changes nothing."""
        plan = self._plan(client_id, mailbox, self._rng())
        return None if plan is None else plan.pick.delivery

    def take(self, client_id: str, mailbox: list[Delivery]) -> Delivery:
        """Hand one delivery over (the caller checked `pending` > 0): removes an
        original from `mailbox` or a duplicate from the copies."""
        rng = self._rng()
        plan = self._plan(client_id, mailbox, rng)
        if plan is None:
            raise ParameterError(f"nothing pending for {client_id!r}")
        pick = plan.pick
        d = pick.delivery
        welcome = d.kind is DeliveryKind.WELCOME
        if pick.copy:
            del self.copies[client_id][pick.index]
            if not self.copies[client_id]:
                del self.copies[client_id]
        else:
            del mailbox[pick.index]
            held = self.held.get(client_id)
            if held is not None:
                held.pop(d.seq, None)
                if not held:
                    del self.held[client_id]
            if self._chance(rng, self.policy.duplicate):
                self.copies.setdefault(client_id, []).append((d, plan.clock + 1 + self._wait(rng)))
                self.stats.duplicated += 1
                self.stats.welcomes_duplicated += welcome
        self.stats.reordered += plan.reordered
        self.stats.handed += 1
        self.clocks[client_id] = plan.clock + 1
        self.counter = rng.counter
        return d

    def _plan(self, client_id: str, mailbox: list[Delivery], rng: SeededRandom) -> _Plan | None:
        """The next hand-over: among the ready heads of each group's queue and the
        ready duplicates, the oldest (smallest seq), or with probability `reorder`
        another one. If none is ready the clock jumps to the earliest ready time."""
        held = self.held.get(client_id, {})
        candidates: list[_Candidate] = []
        seen: set[bytes] = set()
        for i, d in enumerate(mailbox):
            if d.group_id not in seen:      # only a group's oldest original may go next
                seen.add(d.group_id)
                candidates.append(_Candidate(d, held.get(d.seq, 0), i, False))
        for j, (d, ready_at) in enumerate(self.copies.get(client_id, ())):
            candidates.append(_Candidate(d, ready_at, j, True))
        if not candidates:
            return None
        clock = max(self.clocks.get(client_id, 0), min(c.ready_at for c in candidates))
        ready = [c for c in candidates if c.ready_at <= clock]
        oldest = min(ready, key=lambda c: (c.delivery.seq, c.copy))
        if len(ready) > 1 and self._chance(rng, self.policy.reorder):
            others = [c for c in ready if c is not oldest]
            pick = others[min(int(self._unit(rng) * len(others)), len(others) - 1)]
            return _Plan(pick, clock, True)
        return _Plan(oldest, clock, False)

    # --- snapshot ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """struct { magic "mlsvc-df"; uint16 version = 1; policy; uint64 counter;
        clocks; held; copies; dropped; stats } (probabilities as float.hex strings, so
        they round-trip exactly)."""
        w = Writer()
        w.fixed(MAGIC)
        w.u16(VERSION)
        p = self.policy
        w.u64(p.seed)
        for prob in (p.delay, p.duplicate, p.reorder, p.drop):
            _w_str(w, prob.hex())
        w.optional_with(list(p.clients) if p.clients is not None else None,
                        lambda w2, cs: w2.vector(cs, _w_str))
        w.u16(p.max_delay)
        w.u64(self.counter)

        def clock(w2: Writer, item: tuple[str, int]) -> None:
            _w_str(w2, item[0])
            w2.u64(item[1])

        def seq_ready(w2: Writer, item: tuple[int, int]) -> None:
            w2.u64(item[0])
            w2.u64(item[1])

        def held(w2: Writer, item: tuple[str, dict[int, int]]) -> None:
            _w_str(w2, item[0])
            w2.vector(list(item[1].items()), seq_ready)

        def copy(w2: Writer, item: tuple[Delivery, int]) -> None:
            _w_delivery(w2, item[0])
            w2.u64(item[1])

        def copies(w2: Writer, item: tuple[str, list[tuple[Delivery, int]]]) -> None:
            _w_str(w2, item[0])
            w2.vector(item[1], copy)

        w.vector(list(self.clocks.items()), clock)
        w.vector(list(self.held.items()), held)
        w.vector(list(self.copies.items()), copies)
        w.vector(self.dropped, clock)
        for v in self.stats.as_tuple():
            w.u64(v)
        return bytes(w.buf)

    @classmethod
    def from_bytes(cls, data: bytes) -> FaultLayer:
        """The inverse of `to_bytes`; DecodeError for anything else."""

        def prob(r: Reader) -> float:
            try:
                return float.fromhex(_r_str(r))
            except ValueError:
                raise DecodeError("a fault probability is not a float") from None

        def read(r: Reader) -> FaultLayer:
            if r.fixed(len(MAGIC)) != MAGIC:
                raise DecodeError("not a fault-layer snapshot (bad magic)")
            version = r.u16()
            if version != VERSION:
                raise DecodeError(f"unsupported fault-layer snapshot version {version}")
            seed = r.u64()
            delay, duplicate, reorder, drop = (prob(r) for _ in range(4))
            clients = r.optional(lambda r2: tuple(r2.vector(_r_str)))
            max_delay = r.u16()
            try:
                policy = FaultPolicy(seed, delay, duplicate, reorder, drop, clients, max_delay)
            except ParameterError as exc:
                raise DecodeError(f"a bad fault policy: {exc}") from None
            counter = r.u64()
            clocks = dict(r.vector(lambda r2: (_r_str(r2), r2.u64())))
            held = dict(r.vector(lambda r2: (_r_str(r2), dict(
                r2.vector(lambda r3: (r3.u64(), r3.u64()))))))
            copies = dict(r.vector(lambda r2: (_r_str(r2), r2.vector(
                lambda r3: (_r_delivery(r3), r3.u64())))))
            dropped = r.vector(lambda r2: (_r_str(r2), r2.u64()))
            stats = FaultStats(*(r.u64() for _ in range(8)))
            return cls(policy, counter, clocks, held, copies, dropped, stats)

        return decode_exact(data, read)
