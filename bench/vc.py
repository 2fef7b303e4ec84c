"""Emulation overhead of virtual clients (draft-ietf-mls-virtual-clients-00 and the
authors' later text: both profiles, `mlsvc.vc.profiles`, in the same run).

For higher-level groups of n = 16, 128, 512 (`--quick`: 16, 128) and suite 0x0001, a
virtual client of three emulators (phone, laptop, tablet, one emulation group) against
an ordinary mlsvc client doing the same operation in a group of the same size and the
same tree shape; overhead = virtual client / ordinary (median of k repetitions each):

- KeyPackage (independent of n, measured once): ordinary `create_key_package` with the
  client's long-term signature key, against `Emulator.create_key_packages(1)` +
  `accepted` (derivation of the operation, DerivationInfo, KeyPackage, and the
  KeyPackageUpload Commit in the emulation group, merged: everything the emulator does
  before the KeyPackage may be uploaded, P22). The public API does not separate the
  emulation Commit, so it is measured on its own (`emulation_commit()` + `accepted`: the
  same Commit without the action), and the derivation part is the median of the
  per-round differences of the two.
- Commit with path: ordinary `Group.commit(force_path=True)` + `merge_pending_commit`
  by the member at leaf n-1, against `Emulator.vc_commit` + `accepted` by the emulator
  "phone" of the virtual client at leaf n-1 (a new operation derived, keys, the first
  path secret, DerivationInfo sealed, the commit, merged).
- process: the creator (leaf 0, an ordinary member) processing the ordinary commit,
  against the sibling emulator "laptop" processing the virtual client's commit with
  `Emulator.deliver` (it re-derives the operation and the path from the DerivationInfo
  instead of decrypting a path secret). An extra row: the creator of the virtual
  client's group processing the virtual client's commit, against the ordinary one (what
  a virtual client costs the other members).
- send + receive: one 100-byte application message; ordinary `encrypt` by leaf n-1 +
  `process` by the creator, against `send_private_message` (FF1 reuse guard, generation
  ID, key retained) + `accepted` (strong mode: the key released) by "phone" + `deliver`
  by the sibling "laptop" (reuse-guard recovery: which emulator sent it). Also the two
  halves on their own.

Groups. Per n, two groups made alike: the creator commits one Commit adding n-1 members
by value (the last Add at leaf n-1 is the ordinary member, resp. the virtual client's
KeyPackage announced through the emulation group), and the Welcome is joined by leaf
n-1 (all three emulators for the virtual client) and by a member under each copath node
of leaf n-1 (bench.peers.copath_helpers); the other members have no state here. Two tree
shapes: "sparse" (right after the adds: every parent blank, so a path from leaf n-1 is
encrypted to the n-1 other leaves) and "full" (after each copath helper and the creator
committed with a path: log2 n encryptions per path, the state of a group in use). Every
commit is processed by every instantiated member before the next one.

Profiles. Every virtual-client row is measured for each profile (`--vc-profiles`,
default both): "draft-00" (a PPRF per emulation epoch, P2-P4) and "latest" (the operation
secret tree of latest §5.2, KeyPackage batches and seeds, DerivationInfoTBE, the reuse
guard from reuse_guard_secret, the generation ID bound to group and epoch). Per size one
ordinary group and one group per profile, made alike; each round takes one sample of the
ordinary client and one of each profile's virtual client, so both overheads come from
the same ordinary samples, and latest / draft-00 is the ratio of their medians.

Method: as bench.group: `time.perf_counter`, cyclic GC paused, interleaved rounds (each
round one sample of every side, the order rotating by round), same process. Run:
`python -m bench.vc [--quick] [--vc-profiles draft-00 latest]`; `python -m bench.vc
--profile [--n N] [--vc-profiles latest]` prints cProfile's top functions of the
virtual client's commit and of the sibling's processing (full tree; the first profile
given). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.peers import PAYLOAD, copath_helpers
from mlsvc.crypto.random import system_random
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add
from mlsvc.vc.emulator import Emulator, Outgoing, VirtualClientConfig
from mlsvc.vc.profiles import Profile

SIZES = (16, 128, 512)
QUICK_SIZES = (16, 128)
REPS = {16: 21, 128: 15, 512: 15}
KP_REPS = 21
MSG_REPS = 51
GOAL_N = 512
GOAL = 1.10  # issue: at most 1.10x for Commit and processing at n = 512

KP = "KeyPackage"
KP_EMU = "  of which emulation Commit"
KP_DERIVE = "  of which derivation+KP"
COMMIT = "Commit with path"
PROCESS = "process: sibling vs member"
PROCESS_NEXT = "process: sibling vs leaf n-2"
PROCESS_OTHER = "process by a member"
SEND_RECV = "send + receive"
SEND = "  send"
RECV = "  receive"
GOAL_ROWS = (COMMIT, PROCESS)
PROFILES: tuple[Profile, ...] = tuple(Profile)  # draft-00, latest
ORDINARY = "ordinary"


Sample = tuple[float, float]  # (wall-clock seconds, CPU seconds of this process)


def timed(fn: Callable[[], object]) -> Sample:
    """fn() timed by wall clock and by process CPU time, the cyclic GC paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if enabled:
            gc.enable()


def _plus(a: Sample, b: Sample) -> Sample:
    return a[0] + b[0], a[1] + b[1]


def _minus(a: Sample, b: Sample) -> Sample:
    return a[0] - b[0], a[1] - b[1]


def _ident(cs: CipherSuite, name: bytes) -> Identity:
    return Identity.basic(name, cs.signature.generate_key_pair(system_random))


class VirtualClient:
    """Three emulators in one emulation group following `profile`; `fan_out` delivers an
    emulation Commit to the siblings and reports it accepted to its sender."""

    def __init__(self, profile: Profile = Profile.DRAFT_00) -> None:
        cs = get_suite(1)
        vcc = VirtualClientConfig(b"vc", profile=profile)
        self.emulators = [Emulator(n, _ident(cs, n), vcc, system_random)
                          for n in (b"phone", b"laptop", b"tablet")]
        a, b, c = self.emulators
        a.create_emulation_group()
        for joiner in (b, c):  # one Add (with its NewEmulatorClientState) at a time
            kp = joiner.emulation_key_package()
            out = a.add_emulator(kp.key_package)
            for e in self.emulators:
                if e is not a and e.emulation is not None:
                    e.deliver(out.group_id, out.message)
            a.accepted(out)
            assert out.welcome is not None
            joiner.join_emulation_group(out.welcome, kp)

    def fan_out(self, sender: Emulator, out: Outgoing) -> None:
        for e in self.emulators:
            if e is not sender:
                e.deliver(out.group_id, out.message)

    def key_package(self) -> KeyPackage:
        a = self.emulators[0]
        out = a.create_key_packages(1)
        self.fan_out(a, out)
        (kp,) = a.accepted(out).key_packages
        body = MLSMessage.decode(kp).body
        assert isinstance(body, KeyPackage)
        return body


@dataclass
class Side:
    """The group of one size with a virtual client (of one profile) at leaf n-1."""

    vcreator: Group
    vc: VirtualClient
    vhelpers: list[Group]
    gid: bytes = b""

    def __post_init__(self) -> None:
        self.gid = self.vcreator.group_id

    @property
    def phone(self) -> Emulator:
        return self.vc.emulators[0]

    @property
    def laptop(self) -> Emulator:
        return self.vc.emulators[1]

    @property
    def tablet(self) -> Emulator:
        return self.vc.emulators[2]

    # virtual client ------------------------------------------------------------

    def vcommit(self) -> tuple[Sample, bytes]:
        box: list[bytes] = []

        def run() -> None:
            out = self.phone.vc_commit(self.gid)
            self.phone.accepted(out)
            box.append(out.message)

        return timed(run), box[0]

    def vprocess(self, commit: bytes) -> tuple[Sample, Sample]:
        """(sibling's deliver, the creator's process) of the virtual client's commit."""
        sibling = timed(lambda: self.laptop.deliver(self.gid, commit))
        member = timed(lambda: self.vcreator.process(commit))
        self.tablet.deliver(self.gid, commit)
        for h in self.vhelpers:
            h.process(commit)
        return sibling, member

    def vsend(self) -> tuple[Sample, bytes]:
        box: list[bytes] = []

        def run() -> None:
            out = self.phone.send_private_message(self.gid, PAYLOAD)
            self.phone.accepted(out)
            box.append(out.message)

        return timed(run), box[0]

    def vreceive(self, message: bytes) -> Sample:
        return timed(lambda: self.laptop.deliver(self.gid, message))


@dataclass
class Pair:
    """The groups of one size: ordinary members (leaf n-1: `last`) and, per profile, the
    same with the virtual client at leaf n-1 (`sides`)."""

    n: int
    creator: Group
    last: Group
    helpers: list[Group]
    sides: dict[Profile, Side]

    # ordinary ------------------------------------------------------------------

    def commit(self) -> tuple[Sample, bytes]:
        box: list[bytes] = []

        def run() -> None:
            o = self.last.commit(force_path=True)
            self.last.merge_pending_commit()
            box.append(o.commit)

        return timed(run), box[0]

    def process(self, commit: bytes) -> tuple[Sample, Sample]:
        """(the creator's process, leaf n-2's process) of the ordinary commit."""
        creator = timed(lambda: self.creator.process(commit))
        neighbour = timed(lambda: self.helpers[0].process(commit))
        for h in self.helpers[1:]:
            h.process(commit)
        return creator, neighbour

    def send(self) -> tuple[Sample, bytes]:
        box: list[bytes] = []
        return timed(lambda: box.append(self.last.encrypt(PAYLOAD))), box[0]

    def receive(self, message: bytes) -> Sample:
        return timed(lambda: self.creator.process(message))

    # tree shape ------------------------------------------------------------------

    def populate(self) -> None:
        """Each copath helper, then the creator, commits with a path (every group)."""
        groups: list[tuple[list[Group], list[Group], list[Emulator], bytes]] = [
            ([*self.helpers, self.creator], [self.creator, self.last, *self.helpers], [],
             b"")]
        for v in self.sides.values():
            groups.append(([*v.vhelpers, v.vcreator], [v.vcreator, *v.vhelpers],
                           v.vc.emulators, v.gid))
        for committers, members, emulators, gid in groups:
            for c in committers:
                o = c.commit(force_path=True)
                c.merge_pending_commit()
                for g in members:
                    if g is not c:
                        g.process(o.commit)
                for e in emulators:
                    e.deliver(gid, o.commit)


def build(n: int, profiles: Sequence[Profile] = PROFILES) -> Pair:
    """The groups of size n, one per profile besides the ordinary one (see the module
    docstring)."""
    cs = get_suite(1)
    config = GroupConfig(supported_extensions=(DEFAULT_CODEPOINTS.app_data_dictionary,))
    helper_leaves = copath_helpers(n)

    def group(last: KeyPackage) -> tuple[Group, bytes, dict[int, KeyPackageBundle]]:
        bundles = {i: create_key_package(cs, _ident(cs, b"m%d" % i), config)
                   for i in range(1, n - 1)}
        creator = Group.create(cs, _ident(cs, b"m0"), config)
        o = creator.commit([*(Add(b.key_package) for b in bundles.values()), Add(last)])
        creator.merge_pending_commit()
        assert o.welcome is not None
        return creator, o.welcome, bundles

    last_bundle = create_key_package(cs, _ident(cs, b"last"), config)
    creator, welcome, bundles = group(last_bundle.key_package)
    last = Group.join(welcome, last_bundle, config)
    helpers = [Group.join(welcome, bundles[i], config) for i in helper_leaves]
    sides: dict[Profile, Side] = {}
    for p in profiles:
        vc = VirtualClient(p)
        vcreator, vwelcome, vbundles = group(vc.key_package())
        for e in vc.emulators:
            e.welcome(vwelcome)
        vhelpers = [Group.join(vwelcome, vbundles[i], config) for i in helper_leaves]
        side = sides[p] = Side(vcreator, vc, vhelpers)
        assert int(side.phone.groups[side.gid].group.own_leaf) == n - 1
        assert int(vhelpers[0].own_leaf) == n - 2
        assert all(e.vc.profile is p for e in vc.emulators)
    assert int(last.own_leaf) == n - 1 and int(helpers[0].own_leaf) == n - 2
    return Pair(n, creator, last, helpers, sides)


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Row:
    ordinary: list[Sample] = field(default_factory=list)
    virtual: dict[Profile, list[Sample]] = field(default_factory=dict)

    @staticmethod
    def ms(samples: list[Sample], cpu: bool = False) -> float | None:
        return statistics.median(s[cpu] for s in samples) * 1000 if samples else None

    def v(self, p: Profile) -> list[Sample]:
        return self.virtual.setdefault(p, [])

    def ratio(self, p: Profile, cpu: bool = False) -> float | None:
        """Overhead of profile p's virtual client: its median / the ordinary median."""
        o, v = self.ms(self.ordinary, cpu), self.ms(self.v(p), cpu)
        return None if o is None or v is None or o <= 0 else v / o

    def between(self, cpu: bool = False) -> float | None:
        """latest / draft-00 (medians), when both were measured."""
        a, b = (self.ms(self.virtual.get(p, []), cpu) for p in PROFILES)
        return None if a is None or b is None or a <= 0 else b / a


Key = tuple[str, str, int | None]  # (operation, tree shape, n)


@dataclass
class Run:
    sizes: Sequence[int]
    profiles: Sequence[Profile] = PROFILES
    rows: dict[Key, Row] = field(default_factory=dict)

    def row(self, op: str, shape: str, n: int | None) -> Row:
        return self.rows.setdefault((op, shape, n), Row())


def _sides(i: int, profiles: Sequence[Profile]) -> list[Profile | None]:
    """Round i's order: the ordinary client (None) and each profile's virtual client,
    rotated by one each round (so each goes first, middle and last alike)."""
    sides: list[Profile | None] = [None, *profiles]
    k = i % len(sides)
    return sides[k:] + sides[:k]


def measure_key_packages(run: Run, reps: int) -> None:
    cs = get_suite(1)
    config = GroupConfig(supported_extensions=(DEFAULT_CODEPOINTS.app_data_dictionary,))
    identity = _ident(cs, b"ordinary")
    vcs = {p: VirtualClient(p) for p in run.profiles}
    total, emu, derive = (run.row(KP, "-", None), run.row(KP_EMU, "-", None),
                          run.row(KP_DERIVE, "-", None))

    def virtual(vc: VirtualClient, emulation_only: bool) -> Sample:
        phone = vc.emulators[0]
        box: list[Outgoing] = []

        def step() -> None:
            out = phone.emulation_commit() if emulation_only else phone.create_key_packages(1)
            phone.accepted(out)
            box.append(out)

        sample = timed(step)
        vc.fan_out(phone, box[0])
        return sample

    for i in range(reps):
        for side in _sides(i, run.profiles):
            if side is None:
                t = timed(lambda: create_key_package(cs, identity, config))
                for row in (total, emu, derive):
                    row.ordinary.append(t)
            else:
                t_total, t_emu = virtual(vcs[side], False), virtual(vcs[side], True)
                total.v(side).append(t_total)
                emu.v(side).append(t_emu)
                derive.v(side).append(_minus(t_total, t_emu))


def measure_size(run: Run, n: int) -> None:
    pair = build(n, run.profiles)
    reps = REPS[n]
    for shape in ("sparse", "full"):
        if shape == "full":
            pair.populate()
        commit, process, nxt, other = (run.row(op, shape, n) for op in (
            COMMIT, PROCESS, PROCESS_NEXT, PROCESS_OTHER))
        for i in range(reps):
            for p in _sides(i, run.profiles):
                if p is None:
                    t, message = pair.commit()
                    commit.ordinary.append(t)
                    creator, neighbour = pair.process(message)
                    process.ordinary.append(creator)
                    other.ordinary.append(creator)
                    nxt.ordinary.append(neighbour)
                else:
                    side = pair.sides[p]
                    t, message = side.vcommit()
                    commit.v(p).append(t)
                    sibling, member = side.vprocess(message)
                    process.v(p).append(sibling)
                    nxt.v(p).append(sibling)
                    other.v(p).append(member)
    both, send, recv = (run.row(op, "full", n) for op in (SEND_RECV, SEND, RECV))
    for i in range(MSG_REPS):
        for p in _sides(i, run.profiles):
            if p is None:
                ts, message = pair.send()
                tr = pair.receive(message)
            else:
                ts, message = pair.sides[p].vsend()
                tr = pair.sides[p].vreceive(message)
            for row, t in ((send, ts), (recv, tr), (both, _plus(ts, tr))):
                (row.ordinary if p is None else row.v(p)).append(t)


def collect(sizes: Sequence[int], profiles: Sequence[Profile] = PROFILES) -> Run:
    run = Run(sizes, tuple(profiles))
    start = time.perf_counter()
    measure_key_packages(run, KP_REPS)
    _progress("KeyPackages", start)
    for n in sizes:
        measure_size(run, n)
        gc.collect()
        _progress(f"n={n}", start)
    return run


def _progress(what: str, start: float) -> None:
    print(f"  [{what} done at {time.perf_counter() - start:.0f} s]", file=sys.stderr,
          flush=True)


# --- printing ----------------------------------------------------------------------------


def _fmt(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


ORDER = (KP, KP_EMU, KP_DERIVE, COMMIT, PROCESS, PROCESS_NEXT, PROCESS_OTHER, SEND_RECV,
         SEND, RECV)


def table(run: Run) -> list[str]:
    """The table as Markdown lines: per profile its median (wall clock) and its overhead
    by wall clock and by CPU time; with both profiles, latest / draft-00 (CPU time)."""
    ps = list(run.profiles)
    both = len(ps) == len(PROFILES)
    head = ["operation", "tree", "n", "ordinary ms"]
    head += [f"{p.value} ms" for p in ps]
    head += [f"overhead {p.value}" for p in ps]
    head += [f"overhead {p.value}, CPU" for p in ps]
    head += ["latest / draft-00, CPU"] if both else []
    lines = ["| " + " | ".join(head) + " |",
             "|---|---|" + "--:|" * (len(head) - 2)]
    for op in ORDER:
        for (o, shape, n), row in run.rows.items():
            if o == op:
                cells = [op.strip(), shape, "-" if n is None else str(n),
                         _fmt(row.ms(row.ordinary))]
                cells += [_fmt(row.ms(row.v(p))) for p in ps]
                cells += [_x(row.ratio(p)) for p in ps]
                cells += [_x(row.ratio(p, cpu=True)) for p in ps]
                cells += [_x(row.between(cpu=True))] if both else []
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def goal_lines(run: Run) -> list[str]:
    if GOAL_N not in run.sizes:
        return [f"goal (<= {GOAL:.2f}x for Commit and processing) applies at n={GOAL_N}: "
                "not measured in this run"]
    out = [f"goal at n={GOAL_N}: overhead <= {GOAL:.2f}x for Commit and processing "
           "(wall clock; CPU time; met when both are), per profile"]
    for p in run.profiles:
        for op in GOAL_ROWS:
            for shape in ("sparse", "full"):
                row = run.rows[(op, shape, GOAL_N)]
                r, c = row.ratio(p), row.ratio(p, cpu=True)
                verdict = ("n/a" if r is None or c is None else "met" if max(r, c) <= GOAL
                           else "MISSED")
                out.append(f"  {p.value:<9} {op:<28} {shape:<7} {_x(r)}; {_x(c)}: "
                           f"{verdict}")
    return out


def print_report(run: Run) -> None:
    print("Virtual client (3 emulators) against an ordinary mlsvc client, suite 0x0001, "
          "profiles: " + ", ".join(p.value for p in run.profiles))
    print(f"median ms (wall clock); k = {KP_REPS} (KeyPackage), "
          + ", ".join(f"{REPS[n]} at n={n}" for n in run.sizes)
          + f" (commit, process), {MSG_REPS} (messages); overhead = virtual / ordinary "
          "(medians),\nby wall clock and by process CPU time, each profile against the "
          "same ordinary samples")
    for line in table(run):
        print(line)
    print("KeyPackage: ordinary create_key_package vs create_key_packages(1) + accepted "
          "(incl. the\n  KeyPackageUpload emulation Commit); 'of which emulation Commit' "
          "= emulation_commit() +\n  accepted alone; 'of which derivation+KP' = median of "
          "the per-round differences.")
    print("process: the sibling emulator's deliver of the virtual client's commit vs the "
          "ordinary\n  member at leaf 0 (derives the root's key only) processing the ordinary "
          "commit; 'vs leaf\n  n-2': vs the ordinary member whose direct path is the "
          "committer's (derives all of it,\n  as a sibling must); 'process by a member': "
          "leaf 0 processing the virtual client's\n  commit vs the ordinary commit.")
    print("tree: sparse = right after the adds (n-1 encryptions per path), full = "
          "copath filled\n  (log2 n encryptions); messages are measured in the full tree.")
    for line in goal_lines(run):
        print(line)


# --- profile -----------------------------------------------------------------------------


def profile(n: int, rounds: int = 9, top: int = 25,
            vc_profile: Profile = Profile.DRAFT_00) -> None:
    """cProfile of the virtual client's commit and of the sibling's processing (full),
    for the virtual client of `vc_profile`."""
    built = build(n, (vc_profile,))
    built.populate()
    pair = built.sides[vc_profile]
    commit_prof, process_prof = cProfile.Profile(), cProfile.Profile()
    for _ in range(rounds):
        commit_prof.enable()
        out = pair.phone.vc_commit(pair.gid)
        pair.phone.accepted(out)
        commit_prof.disable()
        process_prof.enable()
        pair.laptop.deliver(pair.gid, out.message)
        process_prof.disable()
        pair.vcreator.process(out.message)
        pair.tablet.deliver(pair.gid, out.message)
        for h in pair.vhelpers:
            h.process(out.message)
    for title, prof in (("vc_commit + accepted", commit_prof),
                        ("sibling deliver", process_prof)):
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
        print(f"== {title} ({vc_profile.value}), full tree, n={n}, {rounds} rounds: top "
              f"{top} by cumulative ==")
        print(text.getvalue().strip())
        print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vc")
    parser.add_argument("--quick", action="store_true", help="n = 16, 128 only")
    parser.add_argument("--profile", action="store_true",
                        help="profile the virtual client's commit and processing")
    parser.add_argument("--n", type=int, default=GOAL_N, help="size for --profile")
    parser.add_argument("--sizes", type=int, nargs="+", choices=SIZES,
                        help="measure only these sizes")
    parser.add_argument("--vc-profiles", nargs="+", choices=[p.value for p in PROFILES],
                        default=[p.value for p in PROFILES],
                        help="the virtual client's profiles to measure (default both; "
                             "--profile takes the first)")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    profiles = tuple(dict.fromkeys(Profile(p) for p in args.vc_profiles))
    if args.profile:
        profile(args.n, vc_profile=profiles[0])
        return
    start = time.perf_counter()
    run = collect(args.sizes or (QUICK_SIZES if args.quick else SIZES),
                  tuple(p for p in PROFILES if p in profiles))
    print_report(run)
    print(f"(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
