"""Shared test configuration: Hypothesis profiles and the pinned vector folder.

Profiles: "ci" (`make test`: bounded and derandomized, so every run explores the same
examples and a failure reproduces from the command line), "dev" (the default when
HYPOTHESIS_PROFILE is unset: random), "long" (`make test-long`: many random examples).
Every failure prints a reproduction blob (@reproduce_failure).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors"
