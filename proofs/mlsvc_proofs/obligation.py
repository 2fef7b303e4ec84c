"""Named Z3 proof obligations and their runner.

An obligation is a query: constraints whose satisfiability answers one question.

- A *holds* obligation asserts the negation of a property the spec relies on; the
  expected verdict is `unsat` (no counterexample exists).
- A *twin* asserts the same property's negation for a deliberately broken variant
  (N not a power of two, emulators disagreeing on N, a non-invertible round, ...); the
  expected verdict is `sat`. A twin that came out unsat would mean the encoding cannot
  see the failure it is there to catch, i.e. the holds obligation may be vacuous.

Each obligation runs in a fresh `z3.Solver` (its own solver frame) with a timeout.
`unknown` (including a timeout) is a failure, never a pass. When a query is sat, the
values of its named witness expressions are read from the model, so tests/proofs can
replay the counterexample on the concrete Python code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import z3

Verdict = Literal["unsat", "sat", "unknown", "vacuous"]

DEFAULT_TIMEOUT_MS = 120_000


class EncodingError(Exception):
    """An obligation's encoding is malformed (a bug in proofs/, not a verdict)."""


@dataclass(frozen=True)
class Query:
    """What an obligation asserts: `premises` (the domain: valid ranges, the variant
    under test) and `goal` (the negated property); plus the expressions to report from
    a model. For a holds obligation the premises alone must be satisfiable, or the
    unsat verdict would be vacuous: the runner checks that too."""

    premises: Sequence[z3.BoolRef]
    goal: z3.BoolRef
    witnesses: Mapping[str, z3.BitVecRef] = field(default_factory=dict)


@dataclass(frozen=True)
class Obligation:
    """One named check. `sentence` quotes the spec text it checks; `encoding` says in a
    line how the query encodes it; `twin_of` names the holds obligation a twin guards."""

    name: str
    section: str
    sentence: str
    encoding: str
    expect: Verdict
    build: Callable[[], Query]
    twin_of: str | None = None

    @property
    def kind(self) -> str:
        return "twin" if self.twin_of is not None else "holds"


@dataclass(frozen=True)
class Result:
    name: str
    kind: str
    expect: Verdict
    verdict: Verdict
    seconds: float
    reason: str = ""
    witness: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == self.expect and self.verdict in ("sat", "unsat")


def _model_value(model: z3.ModelRef, expr: z3.BitVecRef) -> int:
    value = model.eval(expr, model_completion=True)
    if not z3.is_bv_value(value):
        raise EncodingError(f"witness {expr} did not evaluate to a bit-vector value")
    return value.as_long()


def _solver(timeout_ms: int) -> z3.Solver:
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    return solver


def run(ob: Obligation, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Result:
    """Check one obligation in its own solver; time covers building and solving (and,
    for an unsat answer, the check that the premises alone are satisfiable)."""
    start = time.perf_counter()
    query = ob.build()
    solver = _solver(timeout_ms)
    solver.add(*query.premises)
    solver.add(query.goal)
    answer = solver.check()
    if answer == z3.sat:
        model = solver.model()
        witness = {k: _model_value(model, e) for k, e in query.witnesses.items()}
        return Result(ob.name, ob.kind, ob.expect, "sat", time.perf_counter() - start,
                      witness=witness)
    if answer == z3.unsat:
        domain = _solver(timeout_ms)
        domain.add(*query.premises)
        if domain.check() != z3.sat:
            return Result(ob.name, ob.kind, ob.expect, "vacuous",
                          time.perf_counter() - start,
                          reason="the premises alone are not satisfiable")
        return Result(ob.name, ob.kind, ob.expect, "unsat", time.perf_counter() - start)
    return Result(ob.name, ob.kind, ob.expect, "unknown", time.perf_counter() - start,
                  reason=solver.reason_unknown())


def run_all(obligations: Sequence[Obligation],
            timeout_ms: int = DEFAULT_TIMEOUT_MS) -> list[Result]:
    return [run(ob, timeout_ms) for ob in obligations]
