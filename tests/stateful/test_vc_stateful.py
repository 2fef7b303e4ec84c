"""A virtual client (draft-ietf-mls-virtual-clients-00 §5) driven by Hypothesis: every
operation of `mlsvc vc simulate` is a rule, in any interleaving, through the delivery
service, with the simulation's own checks after every rule.

The machine wraps one `mlsvc.simulate.Simulation`. `initialize` draws its configuration
(2-5 emulators, 2-3 higher-level groups, the peer engines besides ours: none, mls-rs,
ts-mls or both, the suite where mls-rs is absent) and hands the simulation a Hypothesis
random source, so every choice inside an operation (which emulator, which group,
which peer) is drawn by Hypothesis too, replayed and shrunk with the rest. The rules are
the operation kinds (OP_KINDS), each guarded by the precondition
`Simulation.applicable()` states (the same as `Simulation._applicable`), and each runs
through `Simulation.apply`: the operation, delivery of everything, GroupInfo
publication, `Simulation.check()` (agreement of epoch authenticators or, for mls-rs, of
an exported secret; the virtual client one member of every tree; every application
message decrypted; no (key, nonce) pair twice; every sibling attributing each message
to its sender). An exception there (a Violation, an MLSError, a crash) is recorded with
its traceback; the invariants then fail on any recorded violation, and run
`Simulation.check()` again between rules.

Two machines: a strongly consistent DS (every message readable by everyone), and an
eventually consistent one (P20): there a second sibling message on a generation may be
lost to ordinary members (counted, accepted), never to an emulator (a violation).

Both profiles (mlsvc.vc.profiles, docs/PROFILES.md): each machine runs with the virtual
client following draft-00 and, as a subclass, the later text ("latest"); the profile is
fixed per machine (not drawn), so a failure names its text, and the invariants check that
every emulator, those added during the run included, follows it and that its emulation
group records it.

Sizes: HYPOTHESIS_PROFILE=ci (make test) runs each strong machine for 12 examples of 20
steps and each eventual one for 6 of 20 (draft-00 had 20 and 10 alone; about 25 s for the
four on two cores); "long" (make test-long) 300 and 150 examples of 40 steps under each
profile; "dev" as ci but random.

The lifecycle kinds (add_emulator, onboard_external, remove_emulator) are rules too;
their preconditions hold only where the simulation offers them.
"""

from __future__ import annotations

import os
import random
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mlsvc.peers import PeerUnavailable
from mlsvc.simulate import OP_KINDS, Simulation, SimulationConfig
from mlsvc.vc.emulator import Consistency, recorded_profile
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile
from tests.interop.conftest import missing_peer, require

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
LONG = PROFILE == "long"
STEPS = 40 if LONG else 20
PEER_SETS = (("mlsvc",), ("mlsvc", "mls-rs"), ("mlsvc", "ts-mls"),
             ("mlsvc", "mls-rs", "ts-mls"))
# How the run begins: the virtual client in no group, or already in one (by Welcome or
# external commit), so that the vc's operations get most of the steps. Hypothesis
# favours the rules that sort first (by name), which would otherwise starve `welcome`.
ENTRIES = ((), ("key_package_upload", "welcome"), ("external_join",))


def machine_settings(examples: int, long_examples: int) -> settings:
    return settings(
        max_examples=long_examples if LONG else examples,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def when_applicable(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The rule's precondition: `kind` is among the operations the state allows."""
    return precondition(lambda self: kind in self.allowed())


class VirtualClientMachine(RuleBasedStateMachine):
    CONSISTENCY = Consistency.STRONG
    VC_PROFILE = DEFAULT_PROFILE  # the text the virtual client follows (draft-00)

    def __init__(self) -> None:
        super().__init__()
        self.sim: Simulation | None = None
        self.violations: list[str] = []

    @property
    def s(self) -> Simulation:
        assert self.sim is not None
        return self.sim

    def allowed(self) -> list[str]:
        """The operation kinds the state allows (none after a violation)."""
        if self.sim is None or self.violations:
            return []
        return self.sim.applicable()

    @initialize(emulators=st.integers(2, 5), groups=st.integers(2, 3),
                peers=st.sampled_from(PEER_SETS), data=st.data(),
                rnd=st.randoms(use_true_random=False),
                entry=st.sampled_from(ENTRIES))
    def start(self, emulators: int, groups: int, peers: tuple[str, ...],
              data: st.DataObject, rnd: random.Random, entry: tuple[str, ...]) -> None:
        suite = 1 if "mls-rs" in peers else data.draw(st.sampled_from([1, 3]), label="suite")
        config = SimulationConfig(emulators=emulators, groups=groups, peers=peers,
                                  suite=suite, seed=0, consistency=self.CONSISTENCY,
                                  profile=self.VC_PROFILE)
        try:
            self.sim = Simulation(config)
        except PeerUnavailable as exc:  # e.g. the ts-mls bridge does not start
            missing_peer("/".join(peers), str(exc))
        self.s.rnd = rnd
        event(f"peers {'+'.join(peers)}")
        self.s.settle()  # every group's current GroupInfo published
        for kind in entry:
            self.do(kind)

    def do(self, kind: str) -> None:
        event(kind)
        try:
            self.s.apply(kind)
        except Exception as exc:  # a Violation, an MLSError or a crash: all recorded
            self.violations.append(
                f"{kind} at op {self.s.report.ops}: {type(exc).__name__}: {exc}\n"
                + traceback.format_exc())
            self.s.report.violations.append(self.violations[-1])

    # --- the rules: one per operation kind (OP_KINDS) -------------------------------------

    @when_applicable("key_package_upload")
    @rule()
    def key_package_upload(self) -> None:
        self.do("key_package_upload")

    @when_applicable("welcome")
    @rule()
    def welcome(self) -> None:
        self.do("welcome")

    @when_applicable("vc_commit")
    @rule()
    def vc_commit(self) -> None:
        self.do("vc_commit")

    @when_applicable("vc_update")
    @rule()
    def vc_update(self) -> None:
        self.do("vc_update")

    @when_applicable("external_join")
    @rule()
    def external_join(self) -> None:
        self.do("external_join")

    @when_applicable("emulation_commit")
    @rule()
    def emulation_commit(self) -> None:
        self.do("emulation_commit")

    @when_applicable("vc_message")
    @rule()
    def vc_message(self) -> None:
        self.do("vc_message")

    @when_applicable("peer_message")
    @rule()
    def peer_message(self) -> None:
        self.do("peer_message")

    @when_applicable("peer_commit")
    @rule()
    def peer_commit(self) -> None:
        self.do("peer_commit")

    @when_applicable("peer_remove_vc")
    @rule()
    def peer_remove_vc(self) -> None:
        self.do("peer_remove_vc")

    @when_applicable("concurrent_messages")
    @rule()
    def concurrent_messages(self) -> None:
        self.do("concurrent_messages")

    @when_applicable("concurrent_commits")
    @rule()
    def concurrent_commits(self) -> None:
        self.do("concurrent_commits")

    @when_applicable("concurrent_emulation_commits")
    @rule()
    def concurrent_emulation_commits(self) -> None:
        self.do("concurrent_emulation_commits")

    # the emulator lifecycle (§4.1-§4.3), where the simulation offers it
    @when_applicable("add_emulator")
    @rule()
    def add_emulator(self) -> None:
        self.do("add_emulator")

    @when_applicable("onboard_external")
    @rule()
    def onboard_external(self) -> None:
        self.do("onboard_external")

    @when_applicable("remove_emulator")
    @rule()
    def remove_emulator(self) -> None:
        self.do("remove_emulator")

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def no_violation(self) -> None:
        assert not self.violations, self.violations[0]
        if self.sim is not None:
            r = self.sim.report
            assert not r.violations and r.key_nonce_reuses == 0 and r.misattributions == 0
            if self.CONSISTENCY is Consistency.STRONG:
                assert r.messages_undecryptable == 0

    @invariant()
    def checked(self) -> None:
        if self.sim is not None and not self.violations:
            self.sim.check()

    @invariant()
    def follows_its_profile(self) -> None:
        if self.sim is not None:
            for name, em in self.sim.vc.emulators.items():
                assert em.vc.profile is self.VC_PROFILE, name
                assert recorded_profile(em.emu.context.extensions) is self.VC_PROFILE, name

    def teardown(self) -> None:
        if self.sim is not None:
            self.sim.close()


class EventualVirtualClientMachine(VirtualClientMachine):
    """P20, an eventually consistent DS: ordinary members may lose a sibling's second
    message on a generation (Simulation counts it); emulators may not (a violation)."""

    CONSISTENCY = Consistency.EVENTUAL


class LatestVirtualClientMachine(VirtualClientMachine):
    """The strong machine with the virtual client following the later text."""

    VC_PROFILE = Profile.LATEST


class LatestEventualVirtualClientMachine(EventualVirtualClientMachine):
    """The eventual machine (P20) with the virtual client following the later text."""

    VC_PROFILE = Profile.LATEST


MACHINES: dict[tuple[Consistency, Profile], type[VirtualClientMachine]] = {
    (Consistency.STRONG, Profile.DRAFT_00): VirtualClientMachine,
    (Consistency.STRONG, Profile.LATEST): LatestVirtualClientMachine,
    (Consistency.EVENTUAL, Profile.DRAFT_00): EventualVirtualClientMachine,
    (Consistency.EVENTUAL, Profile.LATEST): LatestEventualVirtualClientMachine,
}
PROFILES = [pytest.param(p, id=p.value) for p in Profile]


def test_every_op_kind_is_a_rule() -> None:
    rules = {r.function.__name__ for r in VirtualClientMachine().rules}
    assert set(OP_KINDS) <= rules, set(OP_KINDS) - rules


def _require_peers() -> None:
    for engine in ("mls-rs", "ts-mls"):
        require(engine)


def test_machines_follow_their_profile() -> None:
    for (consistency, profile), machine in MACHINES.items():
        assert machine.CONSISTENCY is consistency and machine.VC_PROFILE is profile


@pytest.mark.parametrize("profile", PROFILES)
def test_virtual_client_machine(profile: Profile) -> None:
    _require_peers()
    run_state_machine_as_test(MACHINES[Consistency.STRONG, profile],
                              settings=machine_settings(12, 300))


@pytest.mark.parametrize("profile", PROFILES)
def test_virtual_client_machine_eventual(profile: Profile) -> None:
    _require_peers()
    run_state_machine_as_test(MACHINES[Consistency.EVENTUAL, profile],
                              settings=machine_settings(6, 150))

