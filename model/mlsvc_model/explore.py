"""Exploring the model with a Hypothesis RuleBasedStateMachine.

Theory of operation. `ModelMachine` drives one `World` through `transitions.apply`,
drawing emulators, groups and KeyPackages from bundles; rule preconditions keep it to
states where the rule can apply, and a transition that still refuses (its own
precondition, e.g. a removed emulator) is counted, not assumed away. After every step
the selected invariants are checked. `explore` runs it under a profile and returns the
counts and, for a violation, the shortest failing trace seen (Hypothesis shrinks it;
the final replay of the minimal example is among those seen). Runs are derandomized
unless a seed is given, so the CLI is reproducible.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import ClassVar

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    get_state_machine_test,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from .config import ALL_FINDINGS, Config
from .errors import InvariantViolation, PreconditionError
from .higher import deliverable
from .invariants import INVARIANTS, observations, violations
from .state import Step, World
from .tokens import model_hash
from .transitions import apply, initial_world, replay


@contextlib.contextmanager
def stable_search() -> Iterator[None]:
    """Make a derandomized search depend on nothing but its settings.

    Hypothesis mixes into its draws constants it collects from every local module that
    happens to be imported (hypothesis.internal.conjecture.providers), so the same
    derandomized exploration finds different traces under `mlsvc model`, under pytest
    with one test file and under the full suite: a finding found in one may be missed in
    another. Inside this context the pool of local constants is empty. (An internal of
    Hypothesis: if it moves, the search still runs, only without this guarantee.)"""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a future Hypothesis layout
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    if original is None:  # pragma: no cover
        yield
        return
    empty = type(original())()
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if cache is not None:
        cache.clear()  # permitted constants computed from the pool before
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original
        if cache is not None:
            cache.clear()


@dataclass(frozen=True)
class Profile:
    max_examples: int  # runs of the state machine
    steps: int  # steps per run
    finding_examples: int  # budget when searching for a finding (stops at the first)


PROFILES = {
    "ci": Profile(150, 25, 400),
    "dev": Profile(30, 30, 400),
    "long": Profile(2000, 60, 4000),
}


@dataclass
class Recorder:
    """What the runs of one exploration did."""

    runs: int = 0
    steps: int = 0
    refused: int = 0
    observed: Counter[str] = field(default_factory=Counter)
    best: tuple[list[Step], str, str] | None = None

    def record(self, trace: list[Step], invariant_id: str, detail: str) -> None:
        if self.best is None or len(trace) < len(self.best[0]):
            self.best = (list(trace), invariant_id, detail)


SALT = st.integers(0, 7)
SETUPS = st.sampled_from(["empty", "joined", "joined_then_added", "joined_then_sent"])


def apply_flexibly(w: World, name: str, args: dict[str, object]) -> object:
    """Apply a transition with the given emulator and group; if the model refuses, try
    the other emulators and groups in turn (a refused transition changes nothing), so a
    drawn value that cannot act does not waste a step. Raises if every attempt fails."""
    attempts = [args]
    for key, pool in (("emulator", w.emulators), ("group", w.groups)):
        if key in args and pool:
            names = sorted(pool)
            i = names.index(str(args[key])) if args[key] in names else 0
            attempts = [dict(a, **{key: n}) for a in attempts for n in names[i:] + names[:i]]
    for a in attempts[:-1]:
        try:
            return apply(w, name, **a)
        except PreconditionError:
            continue
    return apply(w, name, **attempts[-1])


class ModelMachine(RuleBasedStateMachine):
    """The model alone: every rule is one transition of `transitions.TRANSITIONS`."""

    config: ClassVar[Config] = Config()
    checked: ClassVar[tuple[str, ...]] = tuple(INVARIANTS)
    recorder: ClassVar[Recorder] = Recorder()

    emulators = Bundle[str]("emulators")
    groups = Bundle[str]("groups")
    key_packages = Bundle[str]("key_packages")

    def __init__(self) -> None:
        super().__init__()
        self.world: World = initial_world(self.config)
        self.recorder.runs += 1

    def _do(self, name: str, **args: object) -> object:
        try:
            result = apply_flexibly(self.world, name, args)
        except PreconditionError:
            self.recorder.refused += 1
            return None
        self.recorder.steps += 1
        return result

    def _vc_in_a_group(self) -> bool:
        return bool(self.world.vc_groups())

    def _room(self) -> bool:
        return len(self.world.emulators) < 4

    def _setup(self, setup: str) -> None:
        """The starting point of a run, done once (by whichever initialize rule runs
        first): "empty"; "joined": a group the virtual client joined by E0's external
        join (§5.5.2), E1 caught up; "joined_then_added": then E0 adds an emulator by
        state transfer (§4.1), whose leaf did not exist at the leaf's epoch (P9);
        "joined_then_sent": E0 then sends, E1 has not seen it (concurrent senders). All
        steps are ordinary transitions and appear in the trace."""
        if self.world.trace:
            return
        name = str(self._do("create_group"))
        if setup != "empty":
            self._do("external_join", emulator="E0", group=name, salt=0)
            self._do("catch_up", emulator="E1")
        if setup == "joined_then_added":
            self._do("add_emulator", emulator="E0", variant="state_transfer")
            self._do("catch_up", emulator="E1")
        if setup == "joined_then_sent":
            self._do("send_private_message", emulator="E0", group=name, r=0)

    @initialize(target=emulators, setup=SETUPS)
    def start(self, setup: str) -> MultipleResults[str]:
        self._setup(setup)
        return multiple(*sorted(self.world.emulators))

    @initialize(target=groups, setup=SETUPS)
    def first_group(self, setup: str) -> MultipleResults[str]:
        self._setup(setup)
        return multiple(*sorted(self.world.groups))

    @rule(target=groups)
    def create_group(self) -> MultipleResults[str]:
        if len(self.world.groups) >= 2:
            return multiple()
        return multiple(str(self._do("create_group")))

    @rule(emulator=emulators)
    def emulation_commit(self, emulator: str) -> None:
        self._do("emulation_commit", emulator=emulator)

    @rule(target=key_packages, emulator=emulators, count=st.integers(1, 2), salt=SALT)
    def create_key_packages(self, emulator: str, count: int, salt: int) -> MultipleResults[str]:
        refs = self._do("create_key_packages", emulator=emulator, count=count, salt=salt)
        return multiple(*map(str, refs)) if isinstance(refs, tuple) else multiple()

    @rule(group=groups, key_package=consumes(key_packages))
    def welcome(self, group: str, key_package: str) -> None:
        self._do("welcome", group=group, key_package=key_package)

    @precondition(_vc_in_a_group)
    @rule(emulator=emulators, group=groups, kind=st.sampled_from(["commit", "update"]), salt=SALT)
    def vc_commit(self, emulator: str, group: str, kind: str, salt: int) -> None:
        self._do("vc_commit", emulator=emulator, group=group, kind=kind, salt=salt)

    @rule(group=groups)
    def member_commit(self, group: str) -> None:
        self._do("member_commit", group=group)

    @rule(emulator=emulators, group=groups, salt=SALT)
    def external_join(self, emulator: str, group: str, salt: int) -> None:
        self._do("external_join", emulator=emulator, group=group, salt=salt)

    @precondition(_room)
    @rule(
        target=emulators,
        emulator=emulators,
        how=st.sampled_from(["state_transfer", "external_commit", "external_join"]),
        salt=SALT,
    )
    def new_emulator(self, emulator: str, how: str, salt: int) -> MultipleResults[str]:
        """A new emulator: added with NewEmulatorClientState (§4.1, either variant of
        P13), or joining by itself (§4.2)."""
        if how == "external_join":
            name = self._do("onboard_external", salt=salt)
        else:
            name = self._do("add_emulator", emulator=emulator, variant=how)
        return multiple(name) if isinstance(name, str) else multiple()

    @precondition(lambda self: len(self.world.active()) > 1)
    @rule(emulator=emulators, victim=emulators)
    def remove_emulator(self, emulator: str, victim: str) -> None:
        self._do("remove_emulator", emulator=emulator, target=victim)

    @precondition(_vc_in_a_group)
    @rule(emulator=emulators, group=groups, r=st.integers(0, 3))
    def send_private_message(self, emulator: str, group: str, r: int) -> None:
        self._do("send_private_message", emulator=emulator, group=group, r=r)

    def _pending(self) -> bool:
        return bool(deliverable(self.world))

    @precondition(_pending)
    @rule(pick=st.integers(0, 15), everything=st.booleans())
    def deliver(self, pick: int, everything: bool) -> None:
        """The DS chooses which pending message to deliver next (each log in order), or
        one emulator processes everything it can."""
        options = deliverable(self.world)
        emulator, log = options[pick % len(options)]
        if everything:
            self._do("catch_up", emulator=emulator)
        else:
            self._do("deliver", emulator=emulator, log=log)

    @invariant()
    def invariants_hold(self) -> None:
        found = violations(self.world, self.checked)
        if found:
            self.recorder.record(self.world.trace, *found[0])
            raise InvariantViolation(*found[0])

    def teardown(self) -> None:
        self.recorder.observed.update(observations(self.world))


@dataclass
class Violation:
    invariant: str
    detail: str
    trace: list[Step]
    also: list[tuple[str, str]]  # every invariant that fails at the end of the trace
    baseline_refused: list[tuple[int, str]]  # the same trace with every switch off
    baseline_violations: list[tuple[str, str]]
    world: World


@dataclass
class Result:
    profile: str
    config: Config
    checked: tuple[str, ...]
    runs: int
    steps: int
    refused: int
    observed: dict[str, int]
    violation: Violation | None


def machine_class(
    config: Config, checked: tuple[str, ...], recorder: Recorder
) -> type[ModelMachine]:
    """A ModelMachine bound to a configuration, the invariants to check and a recorder."""
    attrs = {"config": config, "checked": checked, "recorder": recorder}
    return type("ModelMachine", (ModelMachine,), attrs)


_EXPLORED: dict[tuple[object, ...], Result] = {}


def explore(
    config: Config,
    profile: str = "ci",
    checked: tuple[str, ...] | None = None,
    seed_value: int | None = None,
    max_examples: int | None = None,
) -> Result:
    """Run the state machine under `profile`; stop at the first violation and shrink it.

    Every run is reproducible (derandomized, or seeded), so the result of one set of
    arguments is computed once per process and shared (`compare` and `reproduce` ask
    for the same searches): treat it as read-only."""
    checked = tuple(INVARIANTS) if checked is None else checked
    key = (config, profile, checked, seed_value, max_examples)
    if key not in _EXPLORED:
        _EXPLORED[key] = _explore(config, profile, checked, seed_value, max_examples)
    return _EXPLORED[key]


def _explore(
    config: Config,
    profile: str,
    checked: tuple[str, ...],
    seed_value: int | None,
    max_examples: int | None,
) -> Result:
    p = PROFILES[profile]
    recorder = Recorder()
    s = settings(
        max_examples=max_examples or p.max_examples,
        stateful_step_count=p.steps,
        deadline=None,
        derandomize=seed_value is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        phases=[Phase.generate],
    )
    test = get_state_machine_test(machine_class(config, checked, recorder), settings=s)
    if seed_value is not None:
        test = seed(seed_value)(test)
    with stable_search(), with_reporter(lambda _msg: None), contextlib.suppress(
            InvariantViolation):
        test()
    violation = None
    if recorder.best is not None:
        trace, inv, detail = recorder.best
        trace = minimize(config, trace, inv)
        world, _ = replay(config, trace)
        detail = dict(violations(world, (inv,))).get(inv, detail)
        base_world, base_refused = replay(Config(profile=config.profile), trace)
        violation = Violation(
            inv, detail, trace, violations(world), base_refused, violations(base_world), world
        )
    return Result(
        profile,
        config,
        checked,
        recorder.runs,
        recorder.steps,
        recorder.refused,
        dict(recorder.observed),
        violation,
    )


def first_failure(config: Config, steps: list[Step], invariant: str) -> list[Step] | None:
    """Replay `steps`; the applied prefix up to the first step where `invariant` fails."""
    w = initial_world(config)
    for s in steps:
        try:
            apply_flexibly(w, s.transition, dict(s.args))
        except PreconditionError:
            continue
        if violations(w, (invariant,)):
            return list(w.trace)
    return None


def _simpler(step: Step) -> list[Step]:
    """The same step with one argument made simpler (a lower emulator or number)."""
    out = []
    for i, (key, value) in enumerate(step.args):
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            smaller: list[object] = [v for v in (0, 1) if v < value]
        elif key in ("emulator", "target") and isinstance(value, str):
            smaller = [f"E{n}" for n in range(int(value[1:]))]
        else:
            continue
        for v in smaller:
            args = (*step.args[:i], (key, v), *step.args[i + 1 :])
            out.append(Step(step.transition, args))
    return out


def minimize(config: Config, trace: list[Step], invariant: str) -> list[Step]:
    """Shrink a failing trace until no single step can be removed or made simpler
    (a lower emulator, 0 or 1) without losing the violation; steps a change makes
    impossible are dropped with it. Replays are cheap and deterministic."""
    best = first_failure(config, trace, invariant) or trace

    def candidates(steps: list[Step]) -> Iterator[list[Step]]:
        for i in range(len(steps)):
            yield steps[:i] + steps[i + 1 :]
        for i, step in enumerate(steps):
            for simpler in _simpler(step):
                yield [*steps[:i], simpler, *steps[i + 1 :]]

    def size(steps: list[Step]) -> tuple[int, str]:
        return len(steps), repr([s.args for s in steps])

    improved = True
    while improved:
        improved = False
        for cand in candidates(best):
            found = first_failure(config, cand, invariant)
            if found is not None and size(found) < size(best):
                best, improved = found, True
                break
    return best


def reproduce(
    finding_id: str,
    profile: str = "ci",
    seed_value: int | None = None,
    spec: str | None = None,
) -> Result:
    """Search for a finding: its switch on, only its invariant checked. Without a seed,
    a derandomized search first, then (if it found nothing) searches with seeds 1, 2:
    deterministic, and a miss in one search order does not hide the finding. `spec`
    ("draft-00" or "latest") overrides the text the finding's configuration reads (F13
    and later: their own is "latest")."""
    f = ALL_FINDINGS[finding_id]
    config = f.config if spec is None else replace(f.config, profile=spec)
    return search(config, f.invariant, profile, seed_value)


def search(
    config: Config, invariant: str, profile: str = "ci", seed_value: int | None = None
) -> Result:
    """`reproduce` for any configuration and invariant (the finding budget, seeds None,
    1, 2 until the invariant fails)."""
    budget = PROFILES[profile].finding_examples
    seeds = [seed_value] if seed_value is not None else [None, 1, 2]
    total_runs = total_steps = total_refused = 0
    for sv in seeds:
        r = explore(config, profile, (invariant,), sv, budget)
        total_runs, total_steps = total_runs + r.runs, total_steps + r.steps
        total_refused += r.refused
        if r.violation is not None:
            break
    # a copy: `explore` results are shared (_EXPLORED), never changed
    return replace(r, runs=total_runs, steps=total_steps, refused=total_refused)


@dataclass(frozen=True)
class BirthdayRow:
    bits: int
    k: int  # derivations in one epoch
    expected: float  # k(k-1) / 2^(bits+1): expected colliding pairs
    observed: float | None  # mean colliding pairs over the trials (None: not simulated)


def birthday(
    bits: int, ks: tuple[int, ...], trials: int = 200, rng_seed: int = 7
) -> list[BirthdayRow]:
    """P3 against the birthday bound: colliding PPRF leaves among k derivations of one
    epoch, simulated with the model's Hash stand-in (no simulation above 20 bits)."""
    rng = random.Random(rng_seed)
    rows = []
    for k in ks:
        expected = k * (k - 1) / 2 ** (bits + 1)
        observed = None
        if bits <= 20:
            total = 0
            for _ in range(trials):
                counts = Counter(
                    model_hash(rng.randrange(8), rng.getrandbits(64), bits) for _ in range(k)
                )
                total += sum(c * (c - 1) // 2 for c in counts.values())
            observed = total / trials
        rows.append(BirthdayRow(bits, k, expected, observed))
    return rows
