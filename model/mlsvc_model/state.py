"""The state of the draft-00 model: the emulation group, emulators, groups, the DS.

Theory of operation. `World` is everything at once: the truth (each emulation epoch with
its roster and leaf count N, each higher-level group with the virtual client's leaves),
each emulator's local view (what it has processed, holds and deleted), the delivery
service (one totally ordered log per group, fanned out to every emulator) and a history
(operations, AEAD uses, PPRF evaluations, attributions) that the invariants read.
Emulators process the logs one entry at a time, so they lag behind each other; that is
where concurrency comes from. Transitions live in `emulation.py` and `higher.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import VC_COMPONENT_ID, Config
from .tokens import Sealed, Tok, derive_secret, fresh, prp, sealed_index

EMULATION = "emulation"  # the emulation group's log at the DS


@dataclass(frozen=True)
class EmuEpoch:
    """One epoch of the emulation group and the secrets draft-00 §5.2 derives from it."""

    number: int
    roster: dict[str, int]  # emulator -> leaf index (RFC 9420 §7.7 leftmost blank)
    leaf_count: int  # N: leaves of the ratchet tree, blanks included (P9)
    epoch_secret: Tok

    @property
    def emulator_epoch_secret(self) -> Tok:
        """§5.2: emulator_epoch_secret = SafeExportSecret(XXX), XXX = 0x8001 (P7)."""
        return Tok("SafeExportSecret", (self.epoch_secret,), (VC_COMPONENT_ID,))

    def secret(self, label: str) -> Tok:
        """§5.2: DeriveSecret(emulator_epoch_secret, label) for the four epoch secrets."""
        return derive_secret(self.emulator_epoch_secret, label)

    @property
    def epoch_id(self) -> Tok:
        return self.secret("Epoch ID")

    @property
    def base(self) -> Tok:
        return self.secret("Base Secret")

    @property
    def encryption_key(self) -> Tok:
        return self.secret("Encryption Key")

    @property
    def generation_id_secret(self) -> Tok:
        return self.secret("Generation ID Secret")

    def four(self) -> tuple[Tok, Tok, Tok, Tok]:
        return (self.epoch_id, self.base, self.encryption_key, self.generation_id_secret)

    def member_at(self, leaf: int) -> str | None:
        return next((n for n, i in self.roster.items() if i == leaf), None)


@dataclass(frozen=True)
class Operation:
    """A virtual-client operation (§5.2): an operation_secret and its four sub-secrets."""

    op_id: int
    kind: str  # "key_package" or "leaf_node"
    creator: str
    epoch: int  # the emulation epoch whose epoch_base_secret keys it
    leaf_index: int  # HashInput.leaf_index: the creator's leaf at `epoch`
    random: int  # HashInput.random (P3: Kdf.Nh fresh bytes; here a unique number)
    slot: tuple[int, ...]  # PPRF leaf (P3), or (leaf_index, generation) for op ratchets
    secret: Tok  # operation_secret
    signature: Tok  # signature_key_secret
    encryption: Tok  # encryption_key_secret
    init: Tok  # init_key_secret
    path: Tok  # path_generation_secret
    external_init: Tok  # M2: external-commit KEM randomness

    def keys(self) -> tuple[Tok, Tok, Tok, Tok]:
        return (self.signature, self.encryption, self.init, self.path)


@dataclass(frozen=True)
class EmuEntry:
    """A message in the emulation group's log: a Commit (§5.5) or a ResyncMessage (P14)."""

    kind: str  # "commit" or "resync"
    sender: str
    epoch: int  # the epoch the commit opens (for resync: the current one)
    action: str | None = None  # VirtualClientAction in SafeAAD: key_package_upload, external_join
    key_packages: tuple[str, ...] = ()  # KeyPackageUpload refs
    external_group: str | None = None  # ExternalJoin.group_id
    deleted_key_packages: tuple[str, ...] = ()
    signing_key: Tok | None = None  # new long-term signing key (removal, ResyncMessage)


@dataclass(frozen=True)
class GroupEntry:
    """A handshake in a higher-level group's log that opens a new epoch."""

    kind: str  # welcome, vc_commit, vc_update, external_join, member_commit
    epoch: int  # the epoch it opens
    epoch_secret: Tok
    leaves: tuple[int, ...]  # the virtual client's LeafNodes afterwards
    node_keys: frozenset[Tok]  # private keys on its filtered direct path afterwards
    op_id: int | None = None  # the operation behind the virtual client's new LeafNode
    sealed_to: tuple[Tok, ...] = ()  # HPKE: `payloads` are encrypted to each of these
    payloads: tuple[Tok, ...] = ()
    actor: str | None = None  # the emulator that sent it (None: another member)


@dataclass(frozen=True)
class Message:
    """A PrivateMessage sent by an emulator on behalf of the virtual client (§5.6-§5.9)."""

    msg_id: int
    group: str
    hl_epoch: int
    sender: str
    leaf_op: int  # the virtual client's LeafNode it is sent from
    generation: int
    ratchet: int
    emu_epoch: int  # the emulation epoch whose N and leaf index built x
    x: int
    key: Tok
    nonce: Tok
    prp_key: Tok
    generation_id: Tok | None
    delivered: bool

    @property
    def reuse_guard(self) -> Tok:
        """§5.8: reuse_guard = SmallSpacePRP.Encrypt(prp_key, x)."""
        return prp(self.prp_key, self.x)


@dataclass
class GroupView:
    """An emulator's view of a higher-level group (what it has processed of the log)."""

    cursor: int
    epoch: int
    epoch_secret: Tok | None
    leaves: list[int]
    node_keys: frozenset[Tok]
    next_generation: int = 0
    broken: str | None = None  # why it could not follow the group


@dataclass
class Emulator:
    """An emulator client and its local view (§4, §5)."""

    name: str
    emu_epoch: int
    emu_cursor: int
    active: bool = True
    removed_at: int | None = None  # the emulation epoch that removed it
    leaf_at: dict[int, int] = field(default_factory=dict)  # epoch -> own leaf index
    known_epochs: set[int] = field(default_factory=set)  # epochs it has state for
    punctured: dict[int, set[int]] = field(default_factory=dict)  # epoch -> PPRF leaves
    ops: set[int] = field(default_factory=set)  # operations it has derived or received
    retained: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)  # Q7
    key_packages: set[str] = field(default_factory=set)  # outstanding, as it knows them
    groups: dict[str, GroupView] = field(default_factory=dict)
    pending_join: set[str] = field(default_factory=set)  # P13 "join by external commit"
    held: set[Tok] = field(default_factory=set)
    ever: set[Tok] = field(default_factory=set)  # everything it ever held (attacker view)
    deleted: set[Tok] = field(default_factory=set)
    next_op_generation: dict[int, int] = field(default_factory=dict)  # later draft
    draws: dict[int, int] = field(default_factory=dict)  # `random` values drawn per epoch

    def learn(self, *toks: Tok) -> None:
        self.held.update(toks)
        self.ever.update(toks)

    def forget(self, *toks: Tok) -> None:
        for t in toks:
            if t in self.held:
                self.held.discard(t)
                self.deleted.add(t)


@dataclass(frozen=True)
class AeadUse:
    key: Tok
    nonce: Tok
    plaintext: str
    where: str


@dataclass(frozen=True)
class PprfEval:
    emulator: str
    epoch: int
    leaf: int
    was_punctured: bool


@dataclass(frozen=True)
class Attribution:
    receiver: str
    msg_id: int
    epoch_used: int
    leaf: int  # x mod N recovered by the receiver


@dataclass(frozen=True)
class Step:
    """One applied transition, as the trace shows it."""

    transition: str
    args: tuple[tuple[str, object], ...]
    result: object = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args)
        res = "" if self.result is None else f" -> {self.result}"
        return f"{self.transition}({args}){res}"


@dataclass
class World:
    """Everything the model knows; see the module docstring."""

    config: Config
    epochs: list[EmuEpoch] = field(default_factory=list)
    emulators: dict[str, Emulator] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    emu_log: list[EmuEntry] = field(default_factory=list)
    key_packages: dict[str, int] = field(default_factory=dict)  # at the DS: ref -> op
    kp_ops: dict[str, int] = field(default_factory=dict)  # every KeyPackage ever: ref -> op
    ops: dict[int, Operation] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    sealed: list[Sealed] = field(default_factory=list)  # public ciphertexts
    aead: list[AeadUse] = field(default_factory=list)
    pprf_evals: list[PprfEval] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)
    ds_genids: dict[tuple[object, ...], int] = field(default_factory=dict)
    ds_reports: list[tuple[int, int]] = field(default_factory=list)  # (rejected, earlier)
    collisions: list[tuple[str, int, int]] = field(default_factory=list)  # Q7 rejects
    derivations: dict[int, int] = field(default_factory=dict)  # per emulation epoch
    resamples: dict[int, int] = field(default_factory=dict)  # per emulation epoch (P3)
    public_actions: list[tuple[str, Tok, tuple[str, ...]]] = field(default_factory=list)
    public_leaves: list[tuple[str, int]] = field(default_factory=list)  # (where, op)
    signing_key: Tok = field(default_factory=lambda: fresh("signing_key", 0))
    trace: list[Step] = field(default_factory=list)
    # every (emulator, log) the DS handed over, in order (a refinement check replays them)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    counter: int = 0
    _sealed_index: dict[Tok, list[Tok]] | None = None

    def fresh(self, label: str, *info: int | str) -> Tok:
        self.counter += 1
        return fresh(label, self.counter, *info)

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def seal(self, key: Tok, payload: Tok) -> None:
        self.sealed.append(Sealed(key, payload))
        self._sealed_index = None

    def sealed_by_payload(self) -> dict[Tok, list[Tok]]:
        if self._sealed_index is None:
            self._sealed_index = sealed_index(self.sealed)
        return self._sealed_index

    @property
    def epoch(self) -> EmuEpoch:
        return self.epochs[-1]

    def active(self) -> list[Emulator]:
        return [e for e in self.emulators.values() if e.active]

    def vc_groups(self) -> list[Group]:
        return [g for g in self.groups.values() if g.vc_leaves]


@dataclass
class Group:
    """A higher-level group as its other members and the DS see it."""

    name: str
    epoch: int
    epoch_secret: Tok
    vc_leaves: list[int] = field(default_factory=list)  # the virtual client's LeafNodes
    node_keys: frozenset[Tok] = frozenset()  # private keys on the VC's filtered direct path
    log: list[GroupEntry | Message] = field(default_factory=list)
    vc_join_index: int = 0  # where an emulator without a view starts reading
