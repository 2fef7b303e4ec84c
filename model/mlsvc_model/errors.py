"""The model's own errors.

The model imports nothing from the implementation (`mlsvc`), so it keeps a small
hierarchy of its own, shaped like `mlsvc.errors`: a refused transition is the
caller's mistake (a precondition of the draft), a violated invariant is a finding.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error the model raises on purpose."""


class PreconditionError(ModelError):
    """A transition is not allowed in this state (the draft forbids it, or it is impossible)."""

    def __init__(self, transition: str, reason: str) -> None:
        super().__init__(f"{transition}: {reason}")
        self.transition = transition
        self.reason = reason


class InvariantViolation(ModelError):
    """A named invariant (INV-...) does not hold. Raised by the explorer, never by transitions."""

    def __init__(self, invariant_id: str, detail: str) -> None:
        super().__init__(f"[{invariant_id}] {detail}")
        self.invariant_id = invariant_id
        self.detail = detail
