"""The refinement test: a Hypothesis state machine whose rules are the model's
transitions, each applied to the model and to the implementation through `Bridge`.

After every step: the two states' abstractions must be equal (`abstraction.diff`),
and every invariant is checked twice, by the model on its world and on the
implementation's bytes (`invariants.impl_violations`); in the baseline (every switch
off) all must hold. `refine(...)` runs it under a profile and returns a `Report`;
`replay_finding(...)` replays the model's minimal trace of a finding on the
implementation with the same literal reading switched on (and off).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)

from mlsvc_model.config import FINDINGS, Config
from mlsvc_model.explore import reproduce, stable_search
from mlsvc_model.higher import deliverable
from mlsvc_model.invariants import INVARIANTS, violations
from mlsvc_model.state import Step

from .abstraction import diff, of_impl, of_model
from .bridge import Bridge, RefinementError
from .invariants import impl_violations


@dataclass(frozen=True)
class Profile:
    max_examples: int
    steps: int


PROFILES = {"ci": Profile(40, 25), "dev": Profile(100, 30), "long": Profile(500, 40)}


@dataclass
class Report:
    """What a refinement run did and found."""

    profile: str
    seed: int | None
    runs: int = 0
    steps: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    model_refused: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failure: str | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "refines" if self.failure is None else "fails"


def check(b: Bridge, ids: tuple[str, ...] | None = None) -> list[str]:
    """The abstraction's differences and every violated invariant, on either side."""
    problems = [f"abstraction {d}" for d in diff(of_model(b.world), of_impl(b))]
    problems += [f"model {i}: {d}" for i, d in violations(b.world, ids)]
    problems += [f"implementation {i}: {d}" for i, d in impl_violations(b, ids)]
    return problems


class RefinementMachine(RuleBasedStateMachine):
    report: ClassVar[Report] = Report("ci", None)

    def __init__(self) -> None:
        super().__init__()
        self.bridge = Bridge(Config(), seed=f"refine/{self.report.runs}".encode())
        self.report.runs += 1

    # --- helpers ---------------------------------------------------------------------------

    def _step(self, name: str, **args: object) -> None:
        b = self.bridge
        try:
            res = b.step(name, **args)
        except RefinementError as err:
            self._fail(str(err))
            raise
        self.report.steps += 1
        if res.model.startswith("refused"):
            self.report.model_refused[name] += 1
            if res.impl.startswith("skipped"):
                self.report.skipped[name] += 1
        else:
            self.report.transitions[name] += 1

    def _fail(self, why: str) -> None:
        if self.report.failure is None:
            self.report.failure = why
            self.report.trace = [str(s) for s in self.bridge.world.trace]

    def _pick(self, pool: list[str], i: int) -> str:
        return pool[i % len(pool)]

    @property
    def _emulators(self) -> list[str]:
        return sorted(self.bridge.world.emulators)

    @property
    def _groups(self) -> list[str]:
        return sorted(self.bridge.world.groups)

    # --- the starting point ---------------------------------------------------------------

    @initialize(setup=st.sampled_from(["empty", "joined", "welcomed", "joined_then_added"]))
    def start(self, setup: str) -> None:
        """Where a run begins (every step an ordinary transition, in the trace): the
        virtual client in no group; in G1 by E0's external join (§5.5.2); in G1 by a
        Welcome to E0's KeyPackage (§5.5.1); or joined and then E0 adds an emulator by
        state transfer (§4.1). So the operations inside groups get most of the steps."""
        if setup == "empty":
            return
        self._step("create_group")
        if setup == "welcomed":
            self._step("create_key_packages", emulator="E0", count=1, salt=0)
            self._step("catch_up", emulator="E1")
            self._step("welcome", group="G1", key_package="KP1")
            self._step("catch_up", emulator="E0")
        else:
            self._step("external_join", emulator="E0", group="G1", salt=0)
        self._step("catch_up", emulator="E1")
        if setup == "joined_then_added":
            self._step("add_emulator", emulator="E0", variant="state_transfer")
            self._step("catch_up", emulator="E1")

    # --- rules: the model's transitions --------------------------------------------------

    @precondition(lambda self: len(self.bridge.world.groups) < 2)
    @rule()
    def create_group(self) -> None:
        self._step("create_group")

    @rule(e=st.integers(0, 7))
    def emulation_commit(self, e: int) -> None:
        self._step("emulation_commit", emulator=self._pick(self._emulators, e))

    @rule(e=st.integers(0, 7), count=st.integers(1, 2), salt=st.integers(0, 7))
    def create_key_packages(self, e: int, count: int, salt: int) -> None:
        self._step("create_key_packages", emulator=self._pick(self._emulators, e),
                   count=count, salt=salt)

    @precondition(lambda self: bool(self.bridge.world.groups) and bool(
        self.bridge.world.kp_ops))
    @rule(g=st.integers(0, 3), k=st.integers(0, 7))
    def welcome(self, g: int, k: int) -> None:
        w = self.bridge.world
        groups = [x for x in self._groups if not w.groups[x].vc_leaves]
        if not groups:
            return
        self._step("welcome", group=self._pick(groups, g),
                   key_package=self._pick(sorted(w.kp_ops), k))

    @precondition(lambda self: bool(self.bridge.world.vc_groups()))
    @rule(e=st.integers(0, 7), g=st.integers(0, 3),
          kind=st.sampled_from(["commit", "update"]), salt=st.integers(0, 7))
    def vc_commit(self, e: int, g: int, kind: str, salt: int) -> None:
        groups = sorted(x.name for x in self.bridge.world.vc_groups())
        self._step("vc_commit", emulator=self._pick(self._emulators, e),
                   group=self._pick(groups, g), kind=kind, salt=salt)

    @precondition(lambda self: bool(self.bridge.world.groups))
    @rule(g=st.integers(0, 3))
    def member_commit(self, g: int) -> None:
        self._step("member_commit", group=self._pick(self._groups, g))

    @precondition(lambda self: bool(self.bridge.world.groups))
    @rule(e=st.integers(0, 7), g=st.integers(0, 3), salt=st.integers(0, 7))
    def external_join(self, e: int, g: int, salt: int) -> None:
        w = self.bridge.world
        name = self._pick(self._emulators, e)
        em = w.emulators[name]
        groups = [x for x in self._groups if not w.groups[x].vc_leaves
                  or x in em.pending_join or em.groups.get(x) is None
                  or em.groups[x].broken is not None]
        if groups:
            self._step("external_join", emulator=name, group=self._pick(groups, g), salt=salt)

    @precondition(lambda self: len(self.bridge.world.emulators) < 4)
    @rule(e=st.integers(0, 7), how=st.sampled_from(["state_transfer", "external_commit",
                                                     "external_join"]),
          salt=st.integers(0, 7))
    def new_emulator(self, e: int, how: str, salt: int) -> None:
        if how == "external_join":
            self._step("onboard_external", salt=salt)
        else:
            self._step("add_emulator", emulator=self._pick(self._emulators, e), variant=how)

    @precondition(lambda self: len(self.bridge.world.active()) > 1)
    @rule(e=st.integers(0, 7), v=st.integers(0, 7))
    def remove_emulator(self, e: int, v: int) -> None:
        self._step("remove_emulator", emulator=self._pick(self._emulators, e),
                   target=self._pick(self._emulators, v))

    @precondition(lambda self: bool(self.bridge.world.vc_groups()))
    @rule(e=st.integers(0, 7), g=st.integers(0, 3), r=st.integers(0, 3))
    def send_private_message(self, e: int, g: int, r: int) -> None:
        groups = sorted(x.name for x in self.bridge.world.vc_groups())
        self._step("send_private_message", emulator=self._pick(self._emulators, e),
                   group=self._pick(groups, g), r=r)

    @precondition(lambda self: bool(deliverable(self.bridge.world)))
    @rule(pick=st.integers(0, 15), everything=st.booleans())
    def deliver(self, pick: int, everything: bool) -> None:
        options = deliverable(self.bridge.world)
        emulator, log = options[pick % len(options)]
        if everything:
            self._step("catch_up", emulator=emulator)
        else:
            self._step("deliver", emulator=emulator, log=log)

    @invariant()
    def refines(self) -> None:
        problems = check(self.bridge)
        if problems:
            self._fail("; ".join(problems))
            raise RefinementError("\n".join(problems))


def refine(profile: str = "ci", seed_value: int | None = None) -> Report:
    """Run the refinement machine under `profile` (derandomized unless a seed is given)."""
    p = PROFILES[profile]
    report = Report(profile, seed_value)
    machine = type("RefinementMachine", (RefinementMachine,), {"report": report})
    s = settings(max_examples=p.max_examples, stateful_step_count=p.steps, deadline=None,
                 derandomize=seed_value is None, database=None,
                 suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                 print_blob=False, phases=[Phase.generate])
    test = get_state_machine_test(machine, settings=s)
    if seed_value is not None:
        test = seed(seed_value)(test)
    with stable_search(), with_reporter(lambda _msg: None), contextlib.suppress(
            RefinementError):
        test()
    return report


@dataclass
class FindingReplay:
    """A finding's minimal model trace replayed on the implementation."""

    finding: str
    invariant: str
    trace: list[str]
    model_detail: str
    impl_step: int | None  # the first step after which impl breaks the invariant
    impl_detail: str | None
    impl_diverged: str | None  # where the implementation refused a step the model took
    baseline_refused: list[tuple[int, str]]  # the same trace with the reading off
    baseline_problems: list[str]

    @property
    def reproduced(self) -> bool:
        return self.impl_detail is not None and not self.baseline_problems


def replay_finding(finding: str, profile: str = "ci", seed_value: int | None = None
                   ) -> FindingReplay:
    f = FINDINGS[finding]
    res = reproduce(finding, profile, seed_value)
    if res.violation is None:
        raise RefinementError(f"the model did not reproduce {finding} under profile {profile}")
    steps = res.violation.trace
    on = _replay(f.config, steps, (f.invariant,))
    off = _replay(Config(), steps, None)
    return FindingReplay(finding, f.invariant, [str(s) for s in steps], res.violation.detail,
                         on.first_step, on.first_detail, on.diverged,
                         off.refused, off.problems)


@dataclass
class _Run:
    first_step: int | None = None
    first_detail: str | None = None
    diverged: str | None = None
    refused: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _replay(config: Config, steps: list[Step], watch: tuple[str, ...] | None) -> _Run:
    """Apply `steps` to a fresh bridge; with `watch`, note where the implementation first
    breaks one of those invariants; without, collect every problem at the end."""
    b = Bridge(config, seed=b"finding")
    run = _Run()
    for i, s in enumerate(steps, 1):
        try:
            res = b.step(s.transition, **dict(s.args))
        except RefinementError as err:
            run.diverged = f"step {i}: {err}"
            if watch is not None:
                found = impl_violations(b, watch)
                if found and run.first_step is None:
                    run.first_step, run.first_detail = i, found[0][1]
                break
            run.problems.append(str(err))
            return run
        if res.model.startswith("refused"):
            run.refused.append((i, res.model.removeprefix("refused: ")))
        if watch is not None and run.first_step is None:
            found = impl_violations(b, watch)
            if found:
                run.first_step, run.first_detail = i, found[0][1]
    if watch is None:
        run.problems += check(b)
    return run


__all__ = ["INVARIANTS", "PROFILES", "Report", "check", "refine", "replay_finding"]
