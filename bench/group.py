"""Group-engine benchmark of project issue 3: ours against mls-rs and rfc9420.

For n = 16, 128, 512, 2048 (`--quick`: 16, 128) and suite 0x0001, the median time of:
- create + add n-1: `Group.create` and one commit adding n-1 members (Add proposals by
  value, RFC 9420 §12.4.1; no path, §12.4 Table 7), merged; Welcome and GroupInfo built;
- commit: the last member (leaf n-1, not the creator) commits an empty commit, which
  carries an UpdatePath (§12.4: a path is required when there are no proposals), and
  merges it. Twice: "sparse tree", in the group just made (parents blank, so the path
  is encrypted to the n-1 other leaves, §7.5), and "full copath", after one member
  under each of the committer's copath nodes committed (log2 n encryptions: the state
  of a group in use); the numbers of encryptions are printed;
- process: the creator processes that commit (§12.4.2);
- encrypt + decrypt: one 100-byte application message (§6.3), last member -> creator;
- extra rows: a member processing a path-less one-Add commit (the only commit rfc9420
  accepts), and one join from a Welcome (§12.4.3.1, a single sample);
- memory of one member's state: ours, tracemalloc of the objects one `Group.join`
  leaves allocated (all Python objects the Group holds, caches filled on the way
  included); the same for rfc9420; and the size of the saved state
  (mlsvc.group.serialize.save; the peers' own state exports).

Method: the median of k repetitions (k in REPS; 51 for encrypt + decrypt), each timed
with `time.perf_counter` (wall clock) and the cyclic GC paused (as `timeit`).
Repetitions are interleaved: round i takes one sample of ours, then of each peer, so a
change in machine load (other processes) hits all alike. KeyPackages, clients and
signature keys are made before and outside every timed region; commit and process
alternate (commit i is processed before commit i+1). A repetition longer than
SAMPLE_CAP stops that subject's further ones (printed as k=...). mls-rs runs with its
default rayon thread pool unless RAYON_NUM_THREADS is set. Peers: see bench.peers.

Run: `python -m bench.group [--quick]` (`python -m bench --quick` passes the flag on);
`python -m bench.group --profile [--n N]` prints cProfile's top functions of our commit
and process in both tree states. Not a test: figures only.
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

from bench.peers import (
    PAYLOAD,
    PEERS,
    PeerUnsupported,
    Subject,
    copath_helpers,
    keep_first_last,
    load,
    timed,
    traced_bytes,
)
from mlsvc.crypto.random import system_random
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import LibraryError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.serialize import save
from mlsvc.messages.commit import Commit
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add

SIZES = (16, 128, 512, 2048)
QUICK_SIZES = (16, 128)
REPS = {16: 15, 128: 11, 512: 9, 2048: 5}
ENC_REPS = 51
SAMPLE_CAP = 30.0  # seconds: a repetition longer than this is the last one

CREATE_ADD = "create + add n-1"
COMMIT = "commit, sparse tree"
PROCESS = "process, sparse tree"
COMMIT_FULL = "commit, full copath"
PROCESS_FULL = "process, full copath"
ENCDEC = "encrypt + decrypt"
PROCESS_ADD = "process 1-Add commit"
JOIN = "join Welcome (k=1)"
OPERATIONS = (CREATE_ADD, COMMIT, PROCESS, COMMIT_FULL, PROCESS_FULL, ENCDEC, PROCESS_ADD,
              JOIN)
# issue 3: targets at n = 512, in ms
TARGETS = {COMMIT: 5.0, COMMIT_FULL: 5.0, PROCESS: 2.0, PROCESS_FULL: 2.0,
           CREATE_ADD: 200.0, ENCDEC: 0.3}
TARGET_N = 512


class Ours(Subject):
    """mlsvc.group, suite 0x0001, default GroupConfig (system randomness)."""

    name = "ours"

    def __init__(self, n: int, extra: int) -> None:
        super().__init__(n, extra)
        cs = self.cs = get_suite(1)
        self.config = GroupConfig()

        def ident(name: bytes) -> Identity:
            return Identity.basic(name, cs.signature.generate_key_pair(system_random))

        self.creator_identity = ident(b"m0")
        # bundles[i - 1] is member i (leaf i after the adds)
        self.bundles = [create_key_package(cs, ident(b"m%d" % i), self.config)
                        for i in range(1, n)]
        self.adds = [Add(b.key_package) for b in self.bundles]
        self.extras = [create_key_package(cs, ident(b"x%d" % i), self.config)
                       for i in range(extra)]
        self.groups: list[tuple[Group, bytes]] = []
        self.pending = b""
        self.recipients = 0

    def create_add(self) -> float:
        out: list[tuple[Group, bytes]] = []

        def run() -> None:
            g = Group.create(self.cs, self.creator_identity, self.config)
            o = g.commit(self.adds)
            g.merge_pending_commit()
            assert o.welcome is not None
            out.append((g, o.welcome))

        seconds = timed(run)
        keep_first_last(self.groups, out[0])
        return seconds

    def setup_pair(self) -> float:
        self.creator, welcome = self.groups[-1]
        start = time.perf_counter()
        self.last = Group.join(welcome, self.bundles[-1], self.config)
        seconds = time.perf_counter() - start
        self.helpers = [Group.join(welcome, self.bundles[leaf - 1], self.config)
                        for leaf in copath_helpers(self.n)]
        return seconds

    def encrypt_decrypt(self) -> float:
        return timed(lambda: self.creator.process(self.last.encrypt(PAYLOAD)))

    def commit(self) -> float:
        out: list[bytes] = []

        def run() -> None:
            o = self.last.commit(force_path=True)
            self.last.merge_pending_commit()
            out.append(o.commit)

        seconds = timed(run)
        self.pending = out[0]
        self.recipients = path_recipients(self.pending)
        return seconds

    def process(self) -> float:
        seconds = timed(lambda: self.creator.process(self.pending))
        for h in self.helpers:
            h.process(self.pending)
        return seconds

    def populate(self) -> None:
        members = [self.creator, self.last, *self.helpers]
        for c in [*self.helpers, self.creator]:
            o = c.commit(force_path=True)
            c.merge_pending_commit()
            for g in members:
                if g is not c:
                    g.process(o.commit)

    def setup_add_pair(self) -> None:
        if len(self.groups) < 2:  # only one create + add ran: make another (untimed)
            self.create_add()
        self.first_creator, welcome = self.groups[0]
        self.member1 = Group.join(welcome, self.bundles[0], self.config)

    def process_add(self) -> float:
        o = self.first_creator.commit([Add(self.extras.pop().key_package)])
        self.first_creator.merge_pending_commit()
        return timed(lambda: self.member1.process(o.commit))

    def memory(self) -> tuple[int | None, int | None]:
        _, welcome = self.groups[0]
        size, member = traced_bytes(lambda: Group.join(welcome, self.bundles[1], self.config))
        return size, len(save(member))


def path_recipients(commit_message: bytes) -> int:
    """How many HPKE ciphertexts the UpdatePath of a PublicMessage commit carries
    (§7.6: one per node of each copath node's resolution)."""
    body = MLSMessage.decode(commit_message).body
    if not isinstance(body, PublicMessage) or not isinstance(body.content.content, Commit):
        raise LibraryError("not a PublicMessage commit")
    path = body.content.content.path
    return 0 if path is None else sum(len(p.encrypted_path_secret) for p in path.nodes)


@dataclass
class Result:
    samples: list[float] = field(default_factory=list)
    planned: int = 0
    error: str | None = None

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.samples) * 1000 if self.samples else None


Table = dict[str, dict[int, dict[str, Result]]]


@dataclass
class Run:
    sizes: Sequence[int]
    table: Table = field(default_factory=dict)
    memory: dict[int, dict[str, tuple[int | None, int | None]]] = field(
        default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    recipients: dict[tuple[int, str], int] = field(default_factory=dict)

    def put(self, op: str, n: int, who: str, r: Result) -> None:
        self.table.setdefault(op, {}).setdefault(n, {})[who] = r


def interleaved(subjects: Sequence[Subject], reps: int,
                sample: Callable[[Subject], float]) -> dict[str, Result]:
    """`reps` rounds; each round takes one sample of every subject in turn, so a
    change of machine load hits all of them alike. A subject stops after a sample
    longer than SAMPLE_CAP, or when it cannot do the operation (PeerUnsupported)."""
    results = {s.name: Result(planned=reps) for s in subjects}
    for _ in range(reps):
        for s in subjects:
            r = results[s.name]
            if r.error is not None or (r.samples and r.samples[-1] > SAMPLE_CAP):
                continue
            try:
                r.samples.append(sample(s))
            except PeerUnsupported as exc:
                r.error = str(exc)
    return results


def _progress(n: int, what: str, start: float) -> None:
    print(f"  [n={n}: {what} done at {time.perf_counter() - start:.0f} s]",
          file=sys.stderr, flush=True)


def measure(subjects: Sequence[Subject], n: int, run: Run, start: float) -> None:
    """All operations at size n, in the order bench.peers describes."""
    reps = REPS[n]

    def put(op: str, results: dict[str, Result]) -> None:
        for who, r in results.items():
            run.put(op, n, who, r)

    def create_add(s: Subject) -> float:
        seconds = s.create_add()
        gc.collect()
        return seconds

    put(CREATE_ADD, interleaved(subjects, reps, create_add))
    put(JOIN, {s.name: Result([s.setup_pair()], 1) for s in subjects})
    _progress(n, "create + add, join", start)
    put(ENCDEC, interleaved(subjects, ENC_REPS, lambda s: s.encrypt_decrypt()))

    def commit_phase(commit_op: str, process_op: str, active: Sequence[Subject]) -> None:
        processes = {s.name: Result(planned=reps) for s in active}

        def commit_then_process(s: Subject) -> float:
            seconds = s.commit()
            if isinstance(s, Ours):
                run.recipients[(n, commit_op)] = s.recipients
            p = processes[s.name]
            if p.error is None:
                try:
                    p.samples.append(s.process())
                except PeerUnsupported as exc:
                    p.error = str(exc)
            return seconds

        put(commit_op, interleaved(active, reps, commit_then_process))
        put(process_op, processes)

    commit_phase(COMMIT, PROCESS, subjects)
    populated: list[Subject] = []
    for s in subjects:
        try:
            s.populate()
            populated.append(s)
        except PeerUnsupported as exc:
            put(COMMIT_FULL, {s.name: Result(planned=reps, error=str(exc))})
    commit_phase(COMMIT_FULL, PROCESS_FULL, populated)
    _progress(n, "encrypt + decrypt, commits, processes", start)
    for s in subjects:
        s.setup_add_pair()
    put(PROCESS_ADD, interleaved(subjects, reps, lambda s: s.process_add()))
    for s in subjects:
        run.memory.setdefault(n, {})[s.name] = s.memory()
    _progress(n, "process Add, memory", start)


def collect(sizes: Sequence[int]) -> Run:
    run = Run(sizes)
    start = time.perf_counter()
    classes: tuple[type[Subject], ...] = (Ours, *PEERS)
    for n in sizes:
        subjects: list[Subject] = []
        for cls in classes:
            subject = load(cls, n, REPS[n])
            if isinstance(subject, str):
                run.missing[cls.name] = subject
            else:
                subjects.append(subject)
        _progress(n, "KeyPackages", start)
        measure(subjects, n, run, start)
        del subjects
        gc.collect()
    return run


# --- printing -------------------------------------------------------------------------------


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def cell(r: Result | None) -> str:
    if r is None or not r.samples:
        return "n/a"
    text = fmt_ms(r.median_ms)
    if len(r.samples) < r.planned:
        text += f" (k={len(r.samples)})"
    return text


def ratio(peer: Result | None, ours: Result | None) -> str:
    if peer is None or ours is None or peer.median_ms is None or not ours.median_ms:
        return "-"
    return f"{peer.median_ms / ours.median_ms:.2f}"


def print_report(run: Run) -> None:
    names = [Ours.name, *(p.name for p in PEERS)]
    peers = names[1:]
    print("MLS group engine, suite 0x0001 (X25519, AES-128-GCM, SHA-256, Ed25519)")
    print(f"median ms; k = {', '.join(f'{REPS[n]} at n={n}' for n in run.sizes)} "
          f"({ENC_REPS} for encrypt + decrypt); ratio = peer / ours (> 1: ours faster)")
    print("KeyPackages, clients and keys are generated outside the timed regions.")
    header = (f"{'operation':<22}{'n':>6}" + "".join(f"{x:>14}" for x in names)
              + "".join(f"{x + '/ours':>15}" for x in peers))
    print(header)
    print("-" * len(header))
    errors: dict[tuple[str, str, str], list[int]] = {}
    for op in OPERATIONS:
        for n in run.sizes:
            row = run.table.get(op, {}).get(n, {})
            line = f"{op:<22}{n:>6}" + "".join(f"{cell(row.get(x)):>14}" for x in names)
            line += "".join(f"{ratio(row.get(p), row.get(Ours.name)):>15}" for p in peers)
            print(line)
            for who, r in row.items():
                if r.error is not None:
                    errors.setdefault((who, op, r.error), []).append(n)
    for i, label in enumerate(("state, objects KiB", "state, serialized KiB")):
        for n in run.sizes:
            mem = run.memory.get(n, {})
            line = f"{label:<22}{n:>6}" + "".join(f"{_kib(mem.get(x), i):>14}" for x in names)
            print(line)
    print()
    print("state of one member: objects = what tracemalloc sees allocated and kept by one "
          "join (Python\n  objects; mls-rs keeps its state on the Rust heap); serialized = "
          "ours mlsvc.group.serialize.save,\n  mls-rs write_to_storage (group state + "
          "epoch records), rfc9420 serialize().")
    for op in (COMMIT, COMMIT_FULL):
        print(f"HPKE encryptions in our UpdatePath, {op}: " + ", ".join(
            f"n={n}: {c}" for (n, o), c in run.recipients.items() if o == op))
    print("sparse tree: the group right after create + add (all parents blank); full "
          "copath:\n  after one member under each copath node of the committer "
          "committed (log2 n recipients).")
    print("mls-rs: commit and create + add include applying its own pending commit.")
    print("rfc9420: adds by reference (add_member + process_proposal each); its commit "
          "applies at once;\n  its 1-Add row times the receiver's process_proposal + "
          "apply_commit.")
    for who, why in run.missing.items():
        print(f"{who}: {why}")
    for (who, op, why), ns in errors.items():
        print(f"{who} cannot do '{op}' (n={', '.join(map(str, ns))}): {why}")
    print_targets(run)


def _kib(m: tuple[int | None, int | None] | None, i: int) -> str:
    size = None if m is None else m[i]
    return "n/a" if size is None else f"{size / 1024:.0f}"


def print_targets(run: Run) -> None:
    if TARGET_N not in run.sizes:
        print(f"targets (issue 3) apply at n={TARGET_N}: not measured in this run")
        return
    print(f"targets at n={TARGET_N} (issue 3):")
    for op, target in TARGETS.items():
        row = run.table[op][TARGET_N]
        ours = row[Ours.name].median_ms
        if ours is None:
            print(f"  {op:<22} n/a")
            continue
        verdict = "met" if ours <= target else "MISSED"
        ahead = []
        for p in PEERS:
            peer = row.get(p.name)
            pm = peer.median_ms if peer is not None else None
            ahead.append(f"{p.name}: " + ("n/a" if pm is None else
                                          "ahead" if ours < pm else "BEHIND"))
        print(f"  {op:<22} {fmt_ms(ours):>8} ms <= {target:g} ms: {verdict}; "
              + ", ".join(ahead))


# --- profile ----------------------------------------------------------------------------


def profile(n: int, rounds: int = 5, top: int = 15) -> None:
    """cProfile of our commit and of our process at size n, `rounds` of each, in the
    sparse tree (right after create + add) and with the committer's copath full."""
    subject = Ours(n, 0)
    subject.create_add()
    subject.setup_pair()
    for state in ("sparse tree", "full copath"):
        if state == "full copath":
            subject.populate()
        committer, receivers = subject.last, [subject.creator, *subject.helpers]
        commit_prof, process_prof = cProfile.Profile(), cProfile.Profile()
        for _ in range(rounds):
            commit_prof.enable()
            out = committer.commit(force_path=True)
            committer.merge_pending_commit()
            commit_prof.disable()
            process_prof.enable()
            receivers[0].process(out.commit)
            process_prof.disable()
            for g in receivers[1:]:
                g.process(out.commit)
        for title, prof in (("commit", commit_prof), ("process", process_prof)):
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
            print(f"== ours, {title}, {state}, n={n}, {rounds} rounds: top {top} by "
                  "cumulative time ==")
            print(text.getvalue().strip())
            print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.group")
    parser.add_argument("--quick", action="store_true", help="n = 16, 128 only")
    parser.add_argument("--profile", action="store_true",
                        help="profile our commit and process instead of the table")
    parser.add_argument("--n", type=int, default=TARGET_N, help="size for --profile")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.profile:
        profile(args.n)
        return
    start = time.perf_counter()
    run = collect(QUICK_SIZES if args.quick else SIZES)
    print_report(run)
    print(f"(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
