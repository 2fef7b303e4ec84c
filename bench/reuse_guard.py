"""Reuse guards per second (draft-00 §5.8), with a new key for every guard.

Measured in one run, on the same inputs:
- ours, full: mlsvc.vc.reuse_guard.make_reuse_guard with a new (leaf_node_secret,
  key_schedule_nonce) each time: ExpandWithLabel for prp_key, the draw, FF1;
- ours, FF1 only: mlsvc.vc.ff1.prp_encrypt with a new 16-byte key each time;
- ours, general FF1: mlsvc.vc.ff1.FF1 (the reference algorithm), same inputs;
- libffx and fastfpe (PyPI) FF1 with a new key each time, radix 2, 32 numerals, empty
  tweak, if installed: `pip install libffx fastfpe` (not project dependencies).
Each third-party result is also checked against ours (P10: MSB-first numerals).

Run: `python -m bench.reuse_guard` (the lead wires it into `make bench`). Not a test.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlsvc.crypto.suites import get_suite
from mlsvc.types import LeafIndex
from mlsvc.vc.ff1 import FF1, numerals_to_u32, prp_encrypt, u32_to_numerals
from mlsvc.vc.reuse_guard import make_reuse_guard

COUNT = 20_000
REPEATS = 3
TARGET = 100_000


def _rate(fn: Callable[[int], object], count: int) -> float:
    """Best of REPEATS: calls per second of fn(i) for i in range(count)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(count):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return count / best


def _load(module: str) -> Any | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _third_party(keys: Sequence[bytes], xs: Sequence[int]
                 ) -> list[tuple[str, Callable[[int], int] | None, str]]:
    out: list[tuple[str, Callable[[int], int] | None, str]] = []
    ffx = _load("ffx")
    if ffx is None:
        out.append(("libffx", None, "not installed (pip install libffx)"))
    else:
        def libffx(i: int) -> int:
            y: int = ffx.FF1(keys[i]).encrypt_int(xs[i], domain=1 << 32)
            return y
        out.append(("libffx", libffx, "FF1(key).encrypt_int(x, domain=2**32)"))
    fastfpe = _load("fastfpe.ff1")
    if fastfpe is None:
        out.append(("fastfpe", None, "not installed (pip install fastfpe)"))
    else:
        hex_keys = [k.hex() for k in keys]

        def fast(i: int) -> int:
            return int(fastfpe.encrypt(hex_keys[i], "", "01", format(xs[i], "032b")), 2)
        out.append(("fastfpe", fast, "ff1.encrypt(key_hex, '', '01', 32-bit string)"))
    return out


def main() -> None:
    rnd = os.urandom
    keys = [rnd(16) for _ in range(COUNT)]
    xs = [int.from_bytes(rnd(4), "big") for _ in range(COUNT)]
    secrets = [rnd(32) for _ in range(COUNT)]
    nonces = [rnd(12) for _ in range(COUNT)]
    draws = [rnd(4) for _ in range(COUNT)]
    cs = get_suite(1)

    def full(i: int) -> bytes:
        return make_reuse_guard(cs, secrets[i], nonces[i], LeafIndex(i & 7), 8,
                                lambda n: draws[i])

    def ff1_only(i: int) -> int:
        return prp_encrypt(keys[i], xs[i])

    def general(i: int) -> int:
        return numerals_to_u32(FF1(keys[i], 2).encrypt(u32_to_numerals(xs[i])))

    print(f"reuse guards per second, new key each time, {COUNT} per run, best of {REPEATS}")
    print(f"(suite 0x0001; FF1-AES-128, radix 2, 32 numerals, empty tweak; target "
          f">= {TARGET:,}/s)")
    rows: list[tuple[str, float | None, str]] = [
        ("mlsvc make_reuse_guard", _rate(full, COUNT), "prp_key derivation + draw + FF1"),
        ("mlsvc prp_encrypt", _rate(ff1_only, COUNT), "FF1 only (fast path)"),
        ("mlsvc FF1 (general)", _rate(general, COUNT // 4), "reference algorithm"),
    ]
    for name, fn, how in _third_party(keys, xs):
        if fn is None:
            rows.append((name, None, how))
            continue
        try:
            agree = all(fn(i) == prp_encrypt(keys[i], xs[i]) for i in range(200))
        except (ValueError, TypeError) as exc:  # its own API refused the parameters
            rows.append((name, None, f"does not support radix 2 / 32 numerals: {exc}"))
            continue
        note = how + ("; agrees with ours" if agree else "; DISAGREES with ours (bit order?)")
        rows.append((name, _rate(fn, COUNT), note))
    for name, rate, note in rows:
        shown = f"{rate:>12,.0f}/s" if rate is not None else f"{'n/a':>14}"
        print(f"  {name:<24} {shown}  {note}")
    ours = rows[0][1]
    if ours is not None:
        verdict = "meets" if ours >= TARGET else "misses"
        print(f"make_reuse_guard {verdict} the {TARGET:,}/s target ({ours:,.0f}/s)")


if __name__ == "__main__":
    main()
