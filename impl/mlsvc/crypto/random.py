"""Random sources. Every random byte the library uses comes from a source the caller
injects (`GroupConfig.rng`, function arguments), so runs can be reproduced.

- `system_random`: the operating system's generator, the default everywhere.
- `SeededRandom`: SHA-256(seed || counter) blocks, for tests, vector generation and
  reproducible demonstrations. Never for keys that protect anything.
"""

from __future__ import annotations

import hashlib
import os


def system_random(n: int) -> bytes:
    """The production random source."""
    return os.urandom(n)


class SeededRandom:
    """Deterministic bytes: SHA-256(seed || uint64 counter) blocks, counter from 1."""

    __slots__ = ("counter", "seed")

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, n: int, /) -> bytes:
        out = b""
        while len(out) < n:
            self.counter += 1
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
        return out[:n]
