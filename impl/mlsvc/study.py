"""`mlsvc study costs`: the cost study of draft-ietf-mls-virtual-clients-00 §6-§8
("Virtual clients for performance", "Smaller Trees", "Fewer blanks", "Emulation
costs"), measured on real objects of this project (docs/COSTS.md).

For U users with D devices each, two ways to put the users in a higher-level group:

- plain: the draft's "simple multi-client" alternative, one leaf per device (U*D
  leaves), each device an ordinary `Group`;
- virtual: one leaf per user (U leaves). The last user is a real `VirtualClient` of
  D emulators at a `DeliveryService`; the other U-1 users' leaves are ordinary
  clients. The higher-level tree, and every other member's cost, is the same as if
  they were virtual clients too (a virtual client's leaf, commits and messages are
  ordinary MLS objects to the others); the DS registers each of them as a virtual
  client of D emulators, so its fan-out (the delivery counts) is that of a world of
  virtual clients. Emulation-side costs are measured on the one real virtual client.

Theory of operation. Each group is built the way bench/group.py does: the creator
(leaf 0) adds everybody in one commit of Add proposals (no path). Before commits are
timed, one member under each node of the committer's copath commits once (the
committer is the last leaf: a plain device, or the virtual client), so the commit
encrypts to about log2(n) nodes as in a group in use. Then, per (U, D):

- tree: nodes (array width), non-blank nodes, and the encoded bytes of the
  ratchet_tree extension (RFC 9420 §12.4.3.3) of the creator's tree after the build
  (only leaves non-blank);
- commit: median over `reps` of the committer's commit with a path (build time,
  `Group.commit` / `Emulator.vc_commit`), its bytes, its HPKE ciphertexts, the
  creator's time to process it, DS deliveries; for the virtual client also the time
  its D-1 siblings take to follow it;
- update (a device refreshes its keys, for each G in `groups`): plain, a path commit
  by the device in each of the G groups; virtual, an emulation-group commit plus a
  virtual-client commit in each of the G groups. The G groups are assumed alike: the
  per-group figures are the measured ones, multiplied by G;
- welcome (adding one user): plain, D KeyPackages uploaded and fetched at the DS, one
  commit of D Adds, its Welcome; virtual, a new virtual client of D emulators uploads
  one KeyPackage (a KeyPackageUpload emulation commit), one Add, its Welcome, which
  the DS delivers to the D emulators;
- emulation: per virtual-client operation (KeyPackageUpload, emulation commit, vc
  commit, vc Update, application message, ExternalJoin), the messages and bytes in
  the emulation group and the deliveries the DS made (counted from what each emulator
  processed: emulation-group deliveries, fan-out copies of the virtual client's own
  higher-level messages to its siblings) and the DS's own delivery counter;
- churn (for U in `churn_users`): a group "in use" (built member by member, each new
  member committing with a path before adding the next, so no parent is blank), then
  k device replacements (the new device in, the old out). Plain: a sibling device (a
  device of the next user if D = 1) commits the Remove (with its path) and then the
  Add of the new device; the removed leaf's direct path is blanked. Virtual: the
  device change happens in the emulation group (an Add, a Remove with a path); in the
  higher-level group the user's leaf commits with a path, as §4.3 requires of a
  removal (the real virtual client through the DS when it is the user hit, otherwise
  the ordinary client standing for the user). Blank nodes of the higher-level tree,
  and the mean number of HPKE ciphertexts a path commit of a member would carry, are
  recorded after each event. The emulator lifecycle (§4.1, §4.3; P13, P21) is not
  implemented yet, so the emulation-group half of a replacement is measured on an
  ordinary MLS group of D members (the emulation group is one) and its Welcome lacks
  the NewEmulatorClientState component (a lower bound).

Every figure comes from the objects: tree sizes from `RatchetTree`, bytes from the
messages' encodings, deliveries from the DS, times from `time.perf_counter` with the
cyclic GC paused. Suite 0x0001; randomness seeded (byte counts are reproducible, times
are not). CSV files and PNG plots (matplotlib, Agg) go to `out`.
"""

from __future__ import annotations

import csv
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.ds import DeliveryKind, DeliveryService
from mlsvc.errors import StateError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import CommitOutput, Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.commit import Commit
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, Remove
from mlsvc.tree.math import copath, is_in_subtree, leaf_to_node
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex
from mlsvc.virtual_client import Event, VirtualClient

PLAIN = "plain"
VIRTUAL = "virtual"
SUITE = 1
PAYLOAD = b"m" * 100
SUPPORTED_EXTENSIONS = (6,)  # the application_data_dictionary of virtual-client leaves

DEFAULT_USERS = (4, 16, 64, 256)
DEFAULT_DEVICES = (1, 2, 3, 4, 5)
DEFAULT_GROUPS = (1, 10)
DEFAULT_CHURN_USERS = (16,)
DEFAULT_CHURN_EVENTS = 8
DEFAULT_OUT = "study-costs"


def default_reps(users: int) -> int:
    """Repetitions of each timed commit: sparse at the largest size."""
    return 7 if users <= 64 else 3


@dataclass(frozen=True)
class CostsConfig:
    users: tuple[int, ...] = DEFAULT_USERS
    devices: tuple[int, ...] = DEFAULT_DEVICES
    groups: tuple[int, ...] = DEFAULT_GROUPS
    churn_users: tuple[int, ...] = DEFAULT_CHURN_USERS
    churn_events: int = DEFAULT_CHURN_EVENTS
    reps: int | None = None  # None: default_reps(U)
    seed: int = 1
    out: Path = Path(DEFAULT_OUT)
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.users or min(self.users) < 2 or max(self.users) > 256:
            raise ValueError("users: each U in 2..256")
        if not self.devices or min(self.devices) < 1 or max(self.devices) > 5:
            raise ValueError("devices: each D in 1..5")
        if not self.groups or min(self.groups) < 1:
            raise ValueError("groups: each G >= 1")
        if self.churn_users and (min(self.churn_users) < 2 or max(self.churn_users) > 256):
            raise ValueError("churn users: each U in 2..256")
        if self.churn_events < 0 or (self.reps is not None and self.reps < 1):
            raise ValueError("churn events >= 0, reps >= 1")


# --- rows (one CSV file each) ----------------------------------------------------------------


@dataclass
class TreeRow:
    users: int
    devices: int
    variant: str
    leaves: int
    nodes: int
    non_blank_nodes: int
    blank_nodes: int
    ratchet_tree_bytes: int


@dataclass
class CommitRow:
    users: int
    devices: int
    variant: str
    leaves: int
    reps: int
    commit_ms: float
    process_ms: float
    sibling_follow_ms: float  # virtual: mean time of one sibling emulator to follow; plain 0
    commit_bytes: int
    path_ciphertexts: int
    ds_deliveries: int  # per commit, from the DS's counter
    sparse_commit_ms: float  # one commit right after the build (all parents blank), k=1
    sparse_commit_bytes: int
    sparse_path_ciphertexts: int


@dataclass
class WelcomeRow:
    users: int
    devices: int
    variant: str
    key_packages: int
    key_package_bytes: int
    emulation_messages: int
    emulation_bytes: int
    commit_bytes: int
    welcome_bytes: int
    welcome_deliveries: int


@dataclass
class UpdateRow:
    users: int
    devices: int
    groups: int
    variant: str
    messages: int
    bytes_sent: int
    ds_deliveries: int
    bytes_delivered: int
    committer_ms: float
    siblings_ms: float  # virtual: the other emulators following (each, summed); plain 0


@dataclass
class EmulationRow:
    users: int
    devices: int
    operation: str
    emulation_messages: int
    emulation_bytes: int
    emulation_deliveries: int  # emulation-group messages processed by the siblings
    higher_messages: int  # messages the virtual client sent to higher-level groups
    higher_bytes: int
    sibling_copies: int  # DS fan-out copies of those to the sender's siblings
    member_deliveries: int  # other members' messages the emulators processed (e.g. the
    # commit of an Update; the Welcome); every emulator gets each
    ds_deliveries: int  # the DS's counter over the whole operation (every recipient)


@dataclass
class ChurnRow:
    users: int
    devices: int
    variant: str
    event: int
    leaves: int
    nodes: int
    blank_nodes: int
    blank_parents: int
    mean_path_ciphertexts: float
    ratchet_tree_bytes: int
    higher_bytes: int  # bytes sent to the higher-level group by this event
    emulation_bytes: int  # bytes sent in the emulation group by this event


@dataclass
class CostsResult:
    tree: list[TreeRow] = field(default_factory=list)
    commit: list[CommitRow] = field(default_factory=list)
    welcome: list[WelcomeRow] = field(default_factory=list)
    update: list[UpdateRow] = field(default_factory=list)
    emulation: list[EmulationRow] = field(default_factory=list)
    churn: list[ChurnRow] = field(default_factory=list)
    seconds: float = 0.0

    def tables(self) -> dict[str, list[Any]]:
        return {"tree": self.tree, "commit": self.commit, "welcome": self.welcome,
                "update": self.update, "emulation": self.emulation, "churn": self.churn}


# --- measuring helpers ------------------------------------------------------------------------

_T = TypeVar("_T")


def timed(fn: Callable[[], _T]) -> tuple[_T, float]:
    """(fn(), seconds), with the cyclic GC paused (as `timeit` does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        value = fn()
        return value, time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def tree_counts(tree: RatchetTree) -> tuple[int, int, int, int]:
    """(nodes, non-blank nodes, blank parent nodes, encoded bytes of the ratchet_tree
    extension): the tree as a joiner downloads it (RFC 9420 §12.4.3.3)."""
    nodes = tree.to_nodes()
    non_blank = sum(1 for n in nodes if n is not None)
    blank_parents = sum(1 for i, n in enumerate(nodes) if i % 2 == 1 and n is None)
    ext = RatchetTreeExtension.from_nodes(nodes).to_extension()
    return len(nodes), non_blank, blank_parents, len(ext.encode())


def path_ciphertexts(commit_message: bytes) -> int:
    """The HPKE ciphertexts in the UpdatePath of a PublicMessage commit (§7.6)."""
    body = MLSMessage.decode(commit_message).body
    if not isinstance(body, PublicMessage) or not isinstance(body.content.content, Commit):
        raise StateError("not a PublicMessage commit")
    path = body.content.content.path
    return 0 if path is None else sum(len(p.encrypted_path_secret) for p in path.nodes)


def mean_path_ciphertexts(tree: RatchetTree) -> float:
    """Mean, over the members, of the HPKE ciphertexts a path commit of that member
    would carry in this tree: the resolutions of its filtered direct path's copath
    children (§7.5, §7.6)."""
    total, members = 0, 0
    for i, _ in tree.leaves():
        members += 1
        total += sum(len(tree.resolution(tree.copath_child(p, i)))
                     for p in tree.filtered_direct_path(i))
    return total / members if members else 0.0


def copath_covers(n: int, x: int) -> list[int]:
    """For leaf x of an n-member tree: the leftmost member leaf under each node of x's
    copath (RFC 9420 Appendix C), nearest first; one commit of each fills x's copath."""
    width = 1
    while width < n:
        width *= 2
    out: list[int] = []
    for c in copath(leaf_to_node(LeafIndex(x)), width):  # type: ignore[arg-type]
        leaves = [i for i in range(n) if is_in_subtree(leaf_to_node(LeafIndex(i)), c)]
        if leaves:
            out.append(leaves[0])
    return out


class Members:
    """Identities and KeyPackages of a study, all from one seed."""

    def __init__(self, label: str, seed: int) -> None:
        self.cs: CipherSuite = get_suite(SUITE)
        self.rng = SeededRandom(f"{label}/{seed}".encode())
        self.config = GroupConfig(rng=self.rng, supported_extensions=SUPPORTED_EXTENSIONS)

    def identity(self, name: str) -> Identity:
        return Identity.basic(name.encode(), self.cs.signature.generate_key_pair(self.rng))

    def key_package(self, name: str) -> KeyPackageBundle:
        return create_key_package(self.cs, self.identity(name), self.config)

    def create(self, name: str, group_id: bytes) -> Group:
        return Group.create(self.cs, self.identity(name), self.config, group_id=group_id)


@dataclass
class Plain:
    """An ordinary member at the DS: `sender` its client id, `vc` the virtual client
    it stands for (virtual variant) or None."""

    sender: str
    vc: str | None
    group: Group


class World:
    """One higher-level group of U users at a DS (see the module docstring)."""

    def __init__(self, variant: str, users: int, devices: int, seed: int) -> None:
        self.variant, self.users, self.devices = variant, users, devices
        self.m = Members(f"{variant}/{users}/{devices}", seed)
        self.ds = DeliveryService()
        self.gid = f"g/{variant}/{users}/{devices}".encode()
        self.members: dict[int, Plain] = {}  # leaf -> ordinary member we hold
        self.vc: VirtualClient | None = None
        self.events: list[Event] = []
        self.vc_leaf = -1
        if variant == PLAIN:
            for u in range(users):
                for d in range(devices):
                    self.ds.register_client(dev(u, d))
        else:
            for u in range(users - 1):
                names = [dev(u, d) for d in range(devices)]
                for n in names:
                    self.ds.register_client(n)
                self.ds.register_virtual_client(user(u), names)
            vc_names = [dev(users - 1, d) for d in range(devices)]
            self.vc = VirtualClient.create(self.ds, user(users - 1), vc_names,
                                           seed=f"vc/{users}/{devices}/{seed}".encode())
            self.vc.listeners.append(self.events.append)

    @property
    def n(self) -> int:
        return self.users * self.devices if self.variant == PLAIN else self.users

    def ids(self, leaf: int) -> tuple[str, str | None]:
        """(client id, virtual client it acts for) of the ordinary member at `leaf`."""
        if self.variant == PLAIN:
            u, d = divmod(leaf, self.devices)
            return dev(u, d), None
        return dev(leaf, 0), user(leaf)

    def actor(self, leaf: int) -> str:
        sender, vc = self.ids(leaf)
        return vc or sender

    def build(self) -> tuple[bytes, list[KeyPackageBundle]]:
        """The creator adds everybody in one commit; returns the Welcome and the
        KeyPackage bundles of leaves 1..n-1 (None-free: the vc's is not a bundle)."""
        sender, vc = self.ids(0)
        creator = Plain(sender, vc, self.m.create(sender, self.gid))
        self.members[0] = creator
        self.ds.create_group(self.gid, 0, [self.actor(0)])
        bundles: list[KeyPackageBundle] = []
        adds: list[Add] = []
        plain_leaves = self.n if self.variant == PLAIN else self.n - 1
        for leaf in range(1, plain_leaves):
            b = self.m.key_package(self.ids(leaf)[0])
            bundles.append(b)
            adds.append(Add(b.key_package))
        if self.vc is not None:
            first = next(iter(self.vc.emulators))
            self.vc.upload_key_packages(first, 1)
            kp = MLSMessage.decode(self.ds.fetch_key_package(self.vc.id)).body
            assert isinstance(kp, KeyPackage)
            adds.append(Add(kp))
            self.vc_leaf = self.n - 1
        out = creator.group.commit(adds)
        self.submit(creator, out)
        for leaf in range(1, plain_leaves):
            self.ds.add_member(self.gid, self.actor(leaf))
        assert out.welcome is not None
        if self.vc is not None:
            self.ds.send_welcome(creator.sender, self.gid, out.welcome)
            self.vc.sync()
        return out.welcome, bundles

    def submit(self, p: Plain, out: CommitOutput) -> int:
        """Submit an ordinary member's commit and merge it; the DS deliveries made."""
        before = self.ds.stats.deliveries
        verdict = self.ds.submit(p.sender, out.commit, on_behalf_of=p.vc)
        if not verdict.accepted:
            raise StateError(f"the DS refused a commit: {verdict.reason}")
        p.group.merge_pending_commit()
        return self.ds.stats.deliveries - before

    def pump(self, p: Plain) -> None:
        """An ordinary member processes what the DS holds for it in this group."""
        for d in self.ds.receive(p.sender):
            if d.kind is not DeliveryKind.WELCOME and d.group_id == self.gid:
                p.group.process(d.message)

    def join(self, leaf: int, welcome: bytes, bundle: KeyPackageBundle) -> Plain:
        sender, vc = self.ids(leaf)
        p = Plain(sender, vc, Group.join(welcome, bundle, self.m.config))
        self.members[leaf] = p
        self.ds.receive(p.sender)  # what it got before it joined is not for it
        return p

    def everyone_current(self) -> None:
        for p in self.members.values():
            self.pump(p)
        if self.vc is not None:
            self.vc.sync()


def dev(u: int, d: int) -> str:
    return f"u{u}.d{d}"


def user(u: int) -> str:
    return f"u{u}"


# --- one (U, D, variant) --------------------------------------------------------------------


def measure_world(variant: str, users: int, devices: int, groups: Sequence[int], reps: int,
                  seed: int, result: CostsResult) -> None:
    w = World(variant, users, devices, seed)
    welcome, bundles = w.build()
    creator = w.members[0]
    nodes, non_blank, _, tree_bytes = tree_counts(creator.group.tree)
    result.tree.append(TreeRow(users, devices, variant, w.n, nodes, non_blank,
                               nodes - non_blank, tree_bytes))
    # one commit in the tree as built (every parent blank: the path is encrypted to
    # every other leaf), then fill the committer's copath (a group in use) and time the
    # committer's commits
    x = w.n - 1
    covers = [c for c in copath_covers(w.n, x) if c != x]
    for c in covers:
        if c not in w.members:
            w.join(c, welcome, bundles[c - 1])
    if variant == PLAIN:
        w.join(x, welcome, bundles[x - 1])
    sparse_message, sparse_s = one_commit(w, x)
    for c in covers:
        h = w.members[c]
        w.everyone_current()
        w.submit(h, h.group.commit(force_path=True))
    w.everyone_current()
    commit_s: list[float] = []
    process_s: list[float] = []
    follow_s: list[float] = []
    commit_bytes = ciphertexts = deliveries = 0
    committer = w.members.get(x)
    vc = w.vc
    name = next(iter(vc.emulators)) if vc is not None else ""
    siblings = [n for n in vc.emulators if n != name] if vc is not None else []
    for _ in range(reps):
        if committer is not None:
            out, s = timed(lambda: committer.group.commit(force_path=True))
            deliveries = w.submit(committer, out)
            message = out.commit
        else:
            assert vc is not None
            em = vc.emulators[name]
            vout, s = timed(lambda: em.vc_commit(w.gid))  # noqa: B023 (called at once)
            before = w.ds.stats.deliveries
            if not vc.submit(name, vout).accepted:
                raise StateError("the DS refused the virtual client's commit")
            deliveries = w.ds.stats.deliveries - before
            message = vout.message
            if siblings:
                _, f = timed(lambda: vc.sync(siblings))
                follow_s.append(f / len(siblings))
        commit_s.append(s)
        commit_bytes, ciphertexts = len(message), path_ciphertexts(message)
        _, p = timed(lambda: w.pump(creator))
        process_s.append(p)
        for c2, h in w.members.items():
            if c2 not in (0, x):
                w.pump(h)
    commit_ms = statistics.median(commit_s) * 1000
    follow_ms = statistics.median(follow_s) * 1000 if follow_s else 0.0
    result.commit.append(CommitRow(
        users, devices, variant, w.n, reps, round(commit_ms, 3),
        round(statistics.median(process_s) * 1000, 3), round(follow_ms, 3),
        commit_bytes, ciphertexts, deliveries, round(sparse_s * 1000, 3), len(sparse_message),
        path_ciphertexts(sparse_message)))
    emu_bytes = emu_deliveries = 0
    emu_ms = emu_follow_ms = 0.0
    if variant == VIRTUAL:
        assert w.vc is not None
        ops = emulation_ops(w)
        result.emulation.extend(EmulationRow(users, devices, op, *vals)
                                for op, vals in ops.items())
        er = ops["emulation_commit"]
        emu_bytes, emu_deliveries = er[1], er[7]
        emu_ms, emu_follow_ms = w_emulation_times(w)
    for g in groups:
        if variant == PLAIN:
            result.update.append(UpdateRow(
                users, devices, g, variant, g, g * commit_bytes, g * deliveries,
                g * deliveries * commit_bytes, round(g * commit_ms, 3), 0.0))
        else:
            result.update.append(UpdateRow(
                users, devices, g, variant, 1 + g, emu_bytes + g * commit_bytes,
                emu_deliveries + g * deliveries,
                emu_deliveries * emu_bytes + g * deliveries * commit_bytes,
                round(emu_ms + g * commit_ms, 3),
                round((devices - 1) * (emu_follow_ms + g * follow_ms), 3)))
    result.welcome.append(add_one_user(w))


def one_commit(w: World, x: int) -> tuple[bytes, float]:
    """The committer at leaf x (a plain member, or the virtual client) commits once with
    a path; everybody follows. Returns the commit and its build time."""
    committer = w.members.get(x)
    if committer is not None:
        out, s = timed(lambda: committer.group.commit(force_path=True))
        w.submit(committer, out)
        message = out.commit
    else:
        assert w.vc is not None
        name = next(iter(w.vc.emulators))
        em = w.vc.emulators[name]
        vout, s = timed(lambda: em.vc_commit(w.gid))
        if not w.vc.submit(name, vout).accepted:
            raise StateError("the DS refused the virtual client's commit")
        message = vout.message
    w.everyone_current()
    return message, s


def w_emulation_times(w: World) -> tuple[float, float]:
    """Median ms of an emulation-group commit (build) and of one sibling following it."""
    assert w.vc is not None
    name = next(iter(w.vc.emulators))
    em = w.vc.emulators[name]
    build: list[float] = []
    follow: list[float] = []
    siblings = [n for n in w.vc.emulators if n != name]
    for _ in range(3):
        w.vc.sync()
        out, s = timed(em.emulation_commit)
        if not w.vc.submit(name, out).accepted:
            raise StateError("the DS refused an emulation commit")
        build.append(s)
        if siblings:
            _, f = timed(lambda: w.vc.sync(siblings) if w.vc else None)
            follow.append(f / len(siblings))
    return (statistics.median(build) * 1000,
            statistics.median(follow) * 1000 if follow else 0.0)


def emulation_ops(w: World) -> dict[str, tuple[int, ...]]:
    """The traffic of each virtual-client operation (EmulationRow's columns)."""
    vc = w.vc
    assert vc is not None
    name = next(iter(vc.emulators))
    creator = w.members[0]
    emu_gid = vc.emulators[name].emu.group_id
    g2 = w.gid + b"/external"
    host = Plain("x0", None, w.m.create("x0", g2))
    w.ds.register_client("x0")
    w.ds.create_group(g2, 0, ["x0"])
    w.ds.publish_group_info(g2, host.group.group_info())

    def update() -> None:
        vc.update(name, w.gid)
        w.pump(creator)
        w.submit(creator, creator.group.commit(force_path=True))

    ops: dict[str, Callable[[], object]] = {
        "key_package_upload": lambda: vc.upload_key_packages(name, 1),
        "emulation_commit": lambda: vc.emulation_commit(name),
        "vc_commit": lambda: vc.commit(name, w.gid),
        "vc_update": update,
        "application_message": lambda: vc.send(name, w.gid, PAYLOAD),
        "external_join": lambda: vc.external_join(name, g2),
    }
    out: dict[str, tuple[int, ...]] = {}
    for op, run in ops.items():
        vc.sync()
        w.pump(creator)
        sent_before, ds_before = len(vc.sent), w.ds.stats.deliveries
        w.events.clear()
        run()
        vc.sync()
        w.pump(creator)
        sent = [(n, o) for n, o, v in vc.sent[sent_before:] if v.accepted]
        emu = [o for _, o in sent if o.group_id == emu_gid]
        higher = [o for _, o in sent if o.group_id != emu_gid]
        emu_deliveries = sum(1 for e in w.events if e.delivery.group_id == emu_gid)
        copies = sum(1 for e in w.events if e.delivery.group_id != emu_gid
                     and e.delivery.on_behalf_of == vc.id)
        member = sum(1 for e in w.events if e.delivery.group_id != emu_gid
                     and e.delivery.on_behalf_of != vc.id)
        out[op] = (len(emu), sum(len(o.message) for o in emu), emu_deliveries, len(higher),
                   sum(len(o.message) for o in higher), copies, member,
                   w.ds.stats.deliveries - ds_before)
    w.ds.receive("x0")
    return out


def add_one_user(w: World) -> WelcomeRow:
    """The creator adds one more user (plain: D devices; virtual: one virtual client of
    D emulators), through the DS directory; the Welcome is delivered."""
    creator = w.members[0]
    w.everyone_current()
    new_u = w.users
    emu_messages = emu_bytes = 0
    if w.variant == PLAIN:
        for d in range(w.devices):
            w.ds.register_client(dev(new_u, d))
            b = w.m.key_package(dev(new_u, d))
            w.ds.upload_key_packages(dev(new_u, d), [MLSMessage(b.key_package).encode()])
        kps = [w.ds.fetch_key_package(dev(new_u, d)) for d in range(w.devices)]
    else:
        names = [dev(new_u, d) for d in range(w.devices)]
        newcomer = VirtualClient.create(w.ds, user(new_u), names, seed=b"newcomer")
        before = len(newcomer.sent)
        newcomer.upload_key_packages(names[0], 1)
        emu = [o for _, o, v in newcomer.sent[before:] if v.accepted]
        emu_messages, emu_bytes = len(emu), sum(len(o.message) for o in emu)
        newcomer.sync()
        kps = [w.ds.fetch_key_package(user(new_u))]
    adds: list[Add] = []
    for raw in kps:
        kp = MLSMessage.decode(raw).body
        assert isinstance(kp, KeyPackage)
        adds.append(Add(kp))
    out = creator.group.commit(adds)
    w.submit(creator, out)
    assert out.welcome is not None
    recipients = w.ds.send_welcome(creator.sender, w.gid, out.welcome)
    return WelcomeRow(w.users, w.devices, w.variant, len(kps), sum(len(k) for k in kps),
                      emu_messages, emu_bytes, len(out.commit), len(out.welcome),
                      len(recipients))


# --- churn ------------------------------------------------------------------------------------


def churn_victims(users: int, devices: int, events: int, seed: int) -> list[tuple[int, int]]:
    """The devices replaced, in order: the first is the last user's (the virtual client's
    in the virtual variant), then users and devices at random (seeded)."""
    rnd = random.Random(seed)
    out = [(users - 1, devices - 1)]
    while len(out) < events:
        out.append((rnd.randrange(users), rnd.randrange(devices)))
    return out[:events]


def churn_row(users: int, devices: int, variant: str, event: int, tree: RatchetTree,
              higher: int, emulation: int) -> ChurnRow:
    nodes, non_blank, blank_parents, tree_bytes = tree_counts(tree)
    return ChurnRow(users, devices, variant, event, tree.member_count(), nodes,
                    nodes - non_blank, blank_parents, round(mean_path_ciphertexts(tree), 3),
                    tree_bytes, higher, emulation)


def sequential_group(m: Members, gid: bytes, names: Sequence[str],
                     keep: Callable[[int], bool],
                     on_commit: Callable[[int, CommitOutput], None] | None = None,
                     ) -> dict[int, Group]:
    """A group "in use": member i adds member i+1 in a commit with a path, the joiner
    does the same; the last one commits with a path once more. Returns the members for
    which keep(leaf) holds, each current."""
    kept: dict[int, Group] = {}
    g = m.create(names[0], gid)
    bundles = [m.key_package(n) for n in names[1:]]

    def commit(leaf: int, grp: Group, proposals: Sequence[Add]) -> CommitOutput:
        out = grp.commit(proposals, force_path=True)
        grp.merge_pending_commit()
        for k, other in kept.items():
            if k != leaf:
                other.process(out.commit)
        if on_commit is not None:
            on_commit(leaf, out)
        return out

    if keep(0):
        kept[0] = g
    for i in range(1, len(names)):
        out = commit(i - 1, g, [Add(bundles[i - 1].key_package)])
        assert out.welcome is not None
        g = Group.join(out.welcome, bundles[i - 1], m.config)
        if keep(i):
            kept[i] = g
    commit(len(names) - 1, g, [])
    if len(names) - 1 not in kept:
        kept[len(names) - 1] = g
    return kept


def churn_plain(users: int, devices: int, events: int, seed: int) -> list[ChurnRow]:
    m = Members(f"churn/plain/{users}/{devices}", seed)
    victims = churn_victims(users, devices, events, seed)

    def committer(u: int, d: int) -> int:
        return u * devices + (d + 1) % devices if devices > 1 else ((u + 1) % users) * devices

    need = {committer(u, d) for u, d in victims}
    names = [dev(u, d) for u in range(users) for d in range(devices)]
    members = sequential_group(m, b"churn-plain", names, lambda leaf: leaf in need)
    tree = next(iter(members.values())).tree
    rows = [churn_row(users, devices, PLAIN, 0, tree, 0, 0)]
    leaf_of = {(u, d): u * devices + d for u in range(users) for d in range(devices)}

    def commit(cg: Group, proposals: Sequence[Add | Remove], path: bool) -> CommitOutput:
        out = cg.commit(proposals, force_path=path)
        cg.merge_pending_commit()
        for other in members.values():
            if other is not cg:
                other.process(out.commit)
        return out

    for k, (u, d) in enumerate(victims, start=1):
        cg = members[leaf_of[(u, (d + 1) % devices)] if devices > 1
                     else leaf_of[((u + 1) % users, 0)]]
        victim = leaf_of[(u, d)]
        members.pop(victim, None)  # removed: it processes nothing more
        removal = commit(cg, [Remove(LeafIndex(victim))], True)  # Remove needs a path
        bundle = m.key_package(f"{dev(u, d)}.{k}")
        addition = commit(cg, [Add(bundle.key_package)], False)  # Add: no path (§12.4)
        assert addition.welcome is not None
        new = Group.join(addition.welcome, bundle, m.config)
        leaf_of[(u, d)] = int(new.own_leaf)
        members[int(new.own_leaf)] = new
        sent = len(removal.commit) + len(addition.commit) + len(addition.welcome)
        rows.append(churn_row(users, devices, PLAIN, k, cg.tree, sent, 0))
    return rows


def emulation_replacement_bytes(devices: int, seed: int) -> int:
    """Bytes one device replacement sends in an emulation group of D members (an
    ordinary MLS group): the Add of the new device and its Welcome, then the Remove of
    the old one with a path (§4.3), both committed by another member."""
    m = Members(f"emulation/{devices}", seed)
    names = [f"e{d}" for d in range(devices)]
    g = m.create(names[0], b"emulation")
    bundles = [m.key_package(n) for n in names[1:]]
    if bundles:
        g.commit([Add(b.key_package) for b in bundles])
        g.merge_pending_commit()
    new = m.key_package("e-new")
    out = g.commit([Add(new.key_package)])
    g.merge_pending_commit()
    assert out.welcome is not None
    sent = len(out.commit) + len(out.welcome)
    old = LeafIndex(devices - 1) if devices > 1 else None
    if old is None:  # D = 1: the new device removes the old (leaf 0) after joining
        joined = Group.join(out.welcome, new, m.config)
        out2 = joined.commit([Remove(LeafIndex(0))], force_path=True)
    else:
        out2 = g.commit([Remove(old)], force_path=True)
    return sent + len(out2.commit)


def churn_virtual(users: int, devices: int, events: int, seed: int) -> list[ChurnRow]:
    m = Members(f"churn/virtual/{users}/{devices}", seed)
    victims = churn_victims(users, devices, events, seed)
    emu_bytes = emulation_replacement_bytes(devices, seed)
    need = {u for u, _ in victims if u != users - 1}
    ds = DeliveryService()
    gid = b"churn-virtual"
    vc_names = [dev(users - 1, d) for d in range(devices)]
    vc = VirtualClient.create(ds, user(users - 1), vc_names,
                              seed=f"churn/{users}/{devices}/{seed}".encode())
    for u in range(users - 1):
        ds.register_client(user(u))
    vc.upload_key_packages(vc_names[0], 1)
    names = [user(u) for u in range(users - 1)]

    ds.create_group(gid, 0, [user(0)])

    def relay(leaf: int, out: CommitOutput) -> None:
        # every commit of the build goes through the DS (the virtual client follows the
        # group from its Welcome on); member leaf+1 joins with the commit adding it
        if not ds.submit(user(leaf), out.commit).accepted:
            raise StateError("the DS refused a commit of the build")
        if leaf + 1 < users - 1:
            ds.add_member(gid, user(leaf + 1))

    members = sequential_group(m, gid, names, lambda u: u in need or u == users - 2, relay)
    last = members[users - 2]
    kp = MLSMessage.decode(ds.fetch_key_package(vc.id)).body
    assert isinstance(kp, KeyPackage)
    out = last.commit([Add(kp)], force_path=True)
    if not ds.submit(user(users - 2), out.commit).accepted:
        raise StateError("the DS refused the commit adding the virtual client")
    last.merge_pending_commit()
    for leaf, g in members.items():
        if leaf != users - 2:
            g.process(out.commit)
    assert out.welcome is not None
    ds.send_welcome(user(users - 2), gid, out.welcome)
    vc.sync()

    def vc_commit(name: str) -> int:
        before = len(vc.sent)
        vc.commit(name, gid)
        vc.sync()
        sent = [o for _, o, v in vc.sent[before:] if v.accepted]
        for o in sent:
            for g in members.values():
                g.process(o.message)
        return sum(len(o.message) for o in sent)

    vc_commit(vc_names[0])  # the virtual client's leaf has committed too: a group in use
    for u in members:
        ds.receive(user(u))
    tree = last.tree
    rows = [churn_row(users, devices, VIRTUAL, 0, tree, 0, 0)]
    for k, (u, d) in enumerate(victims, start=1):
        if u == users - 1:
            # a remaining emulator commits (§4.3): the one after the replaced device
            higher = vc_commit(vc_names[(d + 1) % devices])
        else:
            g = members[u]
            o = g.commit(force_path=True)
            if not ds.submit(user(u), o.commit).accepted:
                raise StateError("the DS refused a commit")
            g.merge_pending_commit()
            for leaf, other in members.items():
                if leaf != u:
                    other.process(o.commit)
            vc.sync()
            higher = len(o.commit)
        for leaf in members:
            ds.receive(user(leaf))
        rows.append(churn_row(users, devices, VIRTUAL, k, tree_of(members, last), higher,
                              emu_bytes))
    return rows


def tree_of(members: dict[int, Group], fallback: Group) -> RatchetTree:
    return next(iter(members.values()), fallback).tree


# --- the study --------------------------------------------------------------------------------


def run_costs(config: CostsConfig) -> CostsResult:
    result = CostsResult()
    start = time.perf_counter()

    def progress(what: str) -> None:
        if config.progress:
            print(f"  [{what}: {time.perf_counter() - start:.0f} s]", file=sys.stderr,
                  flush=True)

    for u in config.users:
        reps = config.reps or default_reps(u)
        for d in config.devices:
            measure_world(PLAIN, u, d, config.groups, reps, config.seed, result)
            measure_world(VIRTUAL, u, d, config.groups, reps, config.seed, result)
            gc.collect()
            progress(f"U={u} D={d}")
    for u in config.churn_users:
        for d in config.devices:
            result.churn.extend(churn_plain(u, d, config.churn_events, config.seed))
            result.churn.extend(churn_virtual(u, d, config.churn_events, config.seed))
            progress(f"churn U={u} D={d}")
    result.seconds = round(time.perf_counter() - start, 1)
    return result


def write_csv(out: Path, result: CostsResult) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, rows in result.tables().items():
        if not rows:
            continue
        path = out / f"{name}.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([fl.name for fl in fields(rows[0])])
            for r in rows:
                writer.writerow(list(asdict(r).values()))
        paths.append(path)
    return paths


def format_table(rows: Sequence[Any]) -> str:
    if not rows:
        return "(none)"
    names = [fl.name for fl in fields(rows[0])]
    cells = [[str(v) for v in asdict(r).values()] for r in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
              for row in cells]
    return "\n".join(lines)


def print_tables(result: CostsResult) -> None:
    for name, rows in result.tables().items():
        print(f"== {name} ==")
        print(format_table(rows))
        print()


def run(config: CostsConfig) -> CostsResult:
    """Measure, write the CSV files (and the plots), print the tables."""
    result = run_costs(config)
    paths = write_csv(config.out, result)
    if config.plots:
        paths += plot_all(result, config.out)
    print_tables(result)
    print(f"wrote {len(paths)} files to {config.out}/ in {result.seconds} s: "
          + ", ".join(p.name for p in paths))
    return result


def parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def select(rows: Iterable[Any], **where: object) -> list[Any]:
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


# --- plots ------------------------------------------------------------------------------------

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def plot_all(result: CostsResult, out: Path) -> list[Path]:
    """One PNG per table (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out.mkdir(parents=True, exist_ok=True)
    devices = sorted({r.devices for r in result.tree})
    paths: list[Path] = []

    def figure(title: str, panels: int = 2) -> tuple[Figure, list[Axes]]:
        fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.0), dpi=80)
        fig.suptitle(title, fontsize=10)
        return fig, list(axes) if panels > 1 else [axes]

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)

    def by_users(ax: Axes, rows: Sequence[Any], y: str, ylabel: str, title: str,
                 scale: float = 1.0) -> None:
        for i, d in enumerate(devices):
            for variant, style in ((PLAIN, "-o"), (VIRTUAL, "--s")):
                pts = sorted((r.users, getattr(r, y) * scale) for r in rows
                             if r.devices == d and r.variant == variant)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style,
                            color=COLORS[i % len(COLORS)], markersize=4,
                            label=f"{variant}, D={d}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("users U (log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)

    if result.tree:
        fig, (a, b) = figure("Smaller trees: the higher-level ratchet tree "
                             "(plain: U*D leaves; virtual: U leaves)")
        by_users(a, result.tree, "ratchet_tree_bytes", "ratchet_tree extension (KiB)",
                 "encoded tree a joiner downloads", 1 / 1024)
        by_users(b, result.tree, "nodes", "tree nodes (array width)", "tree nodes")
        a.legend(fontsize=7, ncol=2)
        save(fig, "tree.png")
    if result.commit:
        fig, (a, b) = figure("Smaller trees: a commit with a path by the last leaf "
                             "(plain device / virtual client), copath filled")
        by_users(a, result.commit, "commit_ms", "commit build time (ms, median)",
                 "commit time")
        by_users(b, result.commit, "commit_bytes", "commit size (KiB)", "commit bytes",
                 1 / 1024)
        a.legend(fontsize=7, ncol=2)
        save(fig, "commit.png")
    if result.welcome:
        fig, (a, b) = figure("Adding one user: the Welcome (with the ratchet tree)")
        by_users(a, result.welcome, "welcome_bytes", "Welcome size (KiB)", "Welcome bytes",
                 1 / 1024)
        by_users(b, result.welcome, "welcome_deliveries", "Welcome copies delivered",
                 "DS deliveries of the Welcome")
        b.set_yscale("linear")
        a.legend(fontsize=7, ncol=2)
        save(fig, "welcome.png")
    if result.update:
        u_max = max(r.users for r in result.update)
        fig, (a, b) = figure(f"A device refreshes its keys, U={u_max}, in G groups "
                             "(virtual: emulation commit + G vc commits)")
        for i, g in enumerate(sorted({r.groups for r in result.update})):
            for variant, style in ((PLAIN, "-o"), (VIRTUAL, "--s")):
                rows = sorted((r.devices, r.bytes_sent, r.committer_ms) for r in result.update
                              if r.users == u_max and r.groups == g and r.variant == variant)
                xs = [r[0] for r in rows]
                label = f"{variant}, G={g}"
                a.plot(xs, [r[1] / 1024 for r in rows], style, color=COLORS[i],
                       label=label, markersize=4)
                b.plot(xs, [r[2] for r in rows], style, color=COLORS[i], label=label,
                       markersize=4)
        for ax, ylabel in ((a, "bytes sent (KiB)"), (b, "committing device's time (ms)")):
            ax.set_xlabel("devices per user D")
            ax.set_ylabel(ylabel)
            ax.set_xticks(devices)
            ax.grid(True, alpha=0.3)
        a.set_title("bytes the device sends", fontsize=10)
        b.set_title("time of the committing device", fontsize=10)
        a.legend(fontsize=8)
        save(fig, "update.png")
    if result.churn:
        u_churn = min(r.users for r in result.churn)
        fig, (a, b) = figure(f"Fewer blanks: device replacements, U={u_churn} users "
                             "(plain: U*D leaves; virtual: U leaves)")
        for i, d in enumerate(sorted({r.devices for r in result.churn})):
            for variant, style in ((PLAIN, "-o"), (VIRTUAL, "--s")):
                rows = sorted((r.event, r.blank_parents, r.mean_path_ciphertexts)
                              for r in result.churn if r.users == u_churn
                              and r.devices == d and r.variant == variant)
                xs = [r[0] for r in rows]
                label = f"{variant}, D={d}"
                a.plot(xs, [r[1] for r in rows], style, color=COLORS[i % len(COLORS)],
                       label=label, markersize=4)
                b.plot(xs, [r[2] for r in rows], style, color=COLORS[i % len(COLORS)],
                       label=label, markersize=4)
        a.set_ylabel("blank parent nodes (higher-level tree)")
        b.set_ylabel("HPKE ciphertexts per path commit")
        a.set_title("blanks after k replacements", fontsize=10)
        b.set_title("a member's path commit (mean over members)", fontsize=10)
        for ax in (a, b):
            ax.set_xlabel("device replacements k")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
        a.legend(fontsize=7, ncol=2)
        save(fig, "churn.png")
    if result.emulation:
        u_e = max(r.users for r in result.emulation)
        fig, (a, b) = figure(f"Emulation costs per virtual-client operation, U={u_e}")
        ops = list(dict.fromkeys(r.operation for r in result.emulation))
        markers = "osd^v<>"
        for i, op in enumerate(ops):
            rows = sorted((r.devices, r.emulation_bytes + r.higher_bytes,
                           r.emulation_deliveries + r.sibling_copies)
                          for r in result.emulation if r.users == u_e and r.operation == op)
            xs = [r[0] for r in rows]
            style = "-" + markers[i % len(markers)]
            a.plot(xs, [r[1] / 1024 for r in rows], style, label=op, markersize=4)
            b.plot(xs, [r[2] for r in rows], style, label=op, markersize=4)
        a.set_ylabel("bytes sent (KiB)")
        b.set_ylabel("deliveries to the sender's siblings")
        a.set_title("emulation group + higher-level bytes", fontsize=10)
        b.set_title("emulation-group deliveries + DS fan-out copies", fontsize=10)
        for ax in (a, b):
            ax.set_xlabel("emulators per virtual client D")
            ax.set_xticks(devices)
            ax.grid(True, alpha=0.3)
        a.legend(fontsize=7)
        save(fig, "emulation.png")
    return paths
