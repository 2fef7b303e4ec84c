"""Result types shared by the vector runners."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mlsvc.errors import MLSError

Case = dict[str, Any]


@dataclass
class CaseResult:
    index: int
    suite: int | None
    ok: bool
    skipped: bool = False
    detail: str = ""
    # Files checked field by field (the vc-01 vectors): the file's section, the kind of
    # field ("output", "input", "name", "metadata") and, when the value is reproduced
    # only under a documented deviation from the text, its ID ("D4").
    section: str = ""
    kind: str = ""
    deviation: str = ""


@dataclass
class FileResult:
    name: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.ok and not c.skipped)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.ok and not c.skipped)

    @property
    def skipped(self) -> int:
        return sum(1 for c in self.cases if c.skipped)

    def by_suite(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in self.cases:
            key = "-" if c.suite is None else str(c.suite)
            row = out.setdefault(key, {"passed": 0, "failed": 0, "skipped": 0})
            if c.skipped:
                row["skipped"] += 1
            elif c.ok:
                row["passed"] += 1
            else:
                row["failed"] += 1
        return out

    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.ok and not c.skipped]

    @property
    def deviations(self) -> int:
        """Values reproduced only under a documented deviation from the text."""
        return sum(1 for c in self.cases if c.ok and not c.skipped and c.deviation)

    def by_section(self) -> dict[str, dict[str, int]]:
        """Per section (files checked field by field; empty otherwise): how many fields
        of each kind passed, how many of those only under each deviation, how many
        failed or were skipped."""
        out: dict[str, dict[str, int]] = {}
        for c in self.cases:
            if not c.section:
                continue
            row = out.setdefault(c.section, {"failed": 0, "skipped": 0})
            if c.skipped:
                row["skipped"] += 1
            elif not c.ok:
                row["failed"] += 1
            else:
                kind = c.kind or "value"
                row[kind] = row.get(kind, 0) + 1
                if c.deviation:
                    row[c.deviation] = row.get(c.deviation, 0) + 1
        return out


class Mismatch(Exception):
    """A computed value differs from the vector (raised inside a case check)."""


def expect(what: str, got: object, want: object) -> None:
    if got != want:
        g = got.hex() if isinstance(got, bytes) else repr(got)
        w = want.hex() if isinstance(want, bytes) else repr(want)
        raise Mismatch(f"{what}: got {g[:80]}, want {w[:80]}")


def h(value: str) -> bytes:
    """A hex field of a vector."""
    return bytes.fromhex(value)


def run_cases(
    name: str,
    cases: Iterable[Case],
    check: Callable[[Case], None],
    suite_key: str | None = "cipher_suite",
) -> FileResult:
    """Run `check` on every case; a Mismatch or library error marks the case failed.

    A case never silently passes: `check` must reach its comparisons. Unexpected
    exceptions other than MLSError propagate (they are bugs to see, not failures
    to count)."""
    result = FileResult(name)
    for i, case in enumerate(cases):
        suite = case.get(suite_key) if suite_key else None
        try:
            check(case)
        except Mismatch as exc:
            result.cases.append(CaseResult(i, suite, False, detail=str(exc)))
        except MLSError as exc:
            result.cases.append(
                CaseResult(i, suite, False, detail=f"{type(exc).__name__}: {exc}")
            )
        else:
            result.cases.append(CaseResult(i, suite, True))
    return result
