"""An executable model of draft-ietf-mls-virtual-clients-00 (virtual clients), no cryptography.

Secrets are tokens named by their derivation path (`tokens`); the state is in `state`;
transitions, one per draft concept, are in `emulation` and `higher` and listed in
`transitions.TRANSITIONS`; the invariants are `invariants.INVARIANTS`; switches for the
literal draft-00 readings and the later draft's rules are `config.Config`, and the
findings they show are `config.FINDINGS` (and `config.NEW_FINDINGS`, the later text's).
`Config.profile` selects the text: "draft-00" or "latest" (`config.LATEST_RULES`).
`explore` runs Hypothesis over the model, `compare` judges every finding and invariant
under both texts, and `cli.main` is the `mlsvc model explore|compare` entry point. See
docs/MODEL.md and docs/FINDINGS.md.
"""

from .config import FINDINGS, Config, Finding
from .errors import InvariantViolation, ModelError, PreconditionError
from .invariants import INVARIANTS, Invariant, observations, violations
from .transitions import TRANSITIONS, Transition, apply, initial_world, replay

__all__ = [
    "FINDINGS",
    "INVARIANTS",
    "TRANSITIONS",
    "Config",
    "Finding",
    "Invariant",
    "InvariantViolation",
    "ModelError",
    "PreconditionError",
    "Transition",
    "apply",
    "initial_world",
    "observations",
    "replay",
    "violations",
]
