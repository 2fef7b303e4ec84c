"""The transition table: one entry per draft concept, read by the explorer, CLI and docs.

`apply` is the only way the explorer and `replay` change a world: it runs the
transition, records the step in the trace (so a violation prints as a numbered
program), and lets every emulator apply the deletion rule. A transition that raises
PreconditionError has changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import emulation as emu
from . import higher as hl
from .common import collect, derive_operation_secret, enter_epoch, rederive_operation
from .config import Config
from .errors import PreconditionError
from .state import EmuEpoch, Emulator, Step, World


@dataclass(frozen=True)
class Transition:
    """A transition of the model: the function that implements a draft concept, and where
    the draft (or RFC 9420, or the profile) defines it. Its docstring is its summary."""

    section: str
    fn: Callable[..., object]
    step: bool = True  # False: a sub-step other transitions call, never applied alone

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def summary(self) -> str:
        first = " ".join((self.fn.__doc__ or "").split("\n\n")[0].split())
        return re.sub(r"^[^:]*§[^:]*: ", "", first)


_T = Transition
TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        _T("§5.2", emu.emulation_commit),
        _T("§5.2, P3", derive_operation_secret, False),
        _T("§5.2, Q7", rederive_operation, False),
        _T("§5.5.1", emu.create_key_packages),
        _T("-", hl.create_group),
        _T("§5.5.1; RFC 9420 §12.4.3.1", hl.welcome),
        _T("§5.3", hl.vc_commit),
        _T("RFC 9420 §12.4", hl.member_commit),
        _T("§5.5.2; RFC 9420 §12.4.3.2", hl.external_join),
        _T("§4.1; P13", emu.add_emulator),
        _T("§4.2; P14", hl.onboard_external),
        _T("§4.3", emu.remove_emulator),
        _T("§5.6-§5.9; P8-P11", hl.send_private_message),
        _T("§5.8", hl.receive_private_message, False),
        _T("§5.1", hl.deliver),
        _T("§5.1", hl.catch_up),
    )
}


def initial_world(config: Config, emulators: int = 2) -> World:
    """An emulation group at epoch 0 with `emulators` members, no groups, no KeyPackages."""
    w = World(config.effective())  # the latest profile supersedes some switches
    names = [f"E{i}" for i in range(emulators)]
    n = 1
    while n < emulators:
        n *= 2
    roster = {x: i for i, x in enumerate(names)}
    w.epochs.append(EmuEpoch(0, roster, n, w.fresh("emulation_epoch_secret", 0)))
    for x in names:
        em = w.emulators[x] = Emulator(x, emu_epoch=-1, emu_cursor=0)
        enter_epoch(w, em, 0)
        em.learn(w.signing_key)
    return w


def apply(w: World, name: str, **args: object) -> object:
    """Run one transition, record it, and apply the deletion rule (§5.2) everywhere."""
    t = TRANSITIONS[name]
    if not t.step:
        raise PreconditionError(name, "a sub-step, not a transition of its own")
    result = t.fn(w, **args)
    w.trace.append(Step(name, tuple(args.items()), result))
    for em in w.active():
        collect(w, em)
    return result


def replay(config: Config, steps: Iterable[Step]) -> tuple[World, list[tuple[int, str]]]:
    """Apply a trace to a fresh world; returns it and the (step number, reason) refused."""
    w = initial_world(config)
    refused: list[tuple[int, str]] = []
    for i, s in enumerate(steps, 1):
        try:
            apply(w, s.transition, **dict(s.args))
        except PreconditionError as err:
            refused.append((i, str(err)))
    return w, refused
