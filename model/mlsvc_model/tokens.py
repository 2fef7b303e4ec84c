"""Secrets as tokens: a secret is named by the path that derived it.

Theory of operation. The model has no cryptography. A secret is a `Tok`: a label, the
secrets it was computed from (`parents`) and public inputs (`info`). Two secrets are
equal exactly when their derivation paths are equal, so "two operations share keys"
(finding F1) is plain token equality. A token without parents is fresh randomness.

Who can compute a token is decided by `derivable`: a token is derivable from a set of
known tokens when it is known, when all its parents are derivable (every KDF,
DeriveSecret, ExpandWithLabel, PRP and AEAD key is a function of its parents), or when
it is the payload of a public ciphertext (`Sealed`, i.e. HPKE in RFC 9420 §5.1.3)
whose key is derivable. A PPRF evaluation can be blocked (an honest emulator cannot
evaluate a point it has punctured; the attacker that kept everything can).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Info = int | str

# Labels of values that are public by construction (public keys), so derivable by anyone.
PUBLIC_LABELS = frozenset({"pub"})


@dataclass(frozen=True, eq=False)
class Tok:
    """An opaque secret named by its derivation path."""

    label: str
    parents: tuple[Tok, ...] = ()
    info: tuple[Info, ...] = ()
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.label, self.parents, self.info)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Tok) or self._hash != other._hash:
            return False
        return (self.label, self.info, self.parents) == (other.label, other.info, other.parents)

    def __str__(self) -> str:
        args = [str(p) for p in self.parents] + [repr(i) for i in self.info]
        return f"{self.label}({', '.join(args)})"

    def short(self) -> str:
        """A one-level rendering for traces (parents elided)."""
        inner = ", ".join(repr(i) for i in self.info)
        return f"{self.label}({'..., ' if self.parents else ''}{inner})"


@dataclass(frozen=True)
class Sealed:
    """A public ciphertext: `payload` encrypted to whoever can derive `key` (HPKE)."""

    key: Tok
    payload: Tok


def fresh(label: str, *info: Info) -> Tok:
    """Fresh randomness (no parents): known only to whoever sampled or received it."""
    return Tok(label, (), info)


def derive_secret(secret: Tok, label: str) -> Tok:
    """RFC 9420 §8: DeriveSecret(Secret, Label)."""
    return Tok("DeriveSecret", (secret,), (label,))


def expand(secret: Tok, label: str, *context: Tok | Info) -> Tok:
    """RFC 9420 §8: ExpandWithLabel(Secret, Label, Context, Length); token contexts are parents."""
    toks = tuple(c for c in context if isinstance(c, Tok))
    infos = tuple(c for c in context if not isinstance(c, Tok))
    return Tok("ExpandWithLabel", (secret, *toks), (label, *infos))


def combine(label: str, *parents: Tok) -> Tok:
    """A secret computed from several (e.g. RFC 9420 §8: epoch_secret from init and commit)."""
    return Tok(label, parents, ())


def public_key(secret: Tok) -> Tok:
    """The public half of a key pair generated from `secret` (P5): public by construction."""
    return Tok("pub", (secret,), ())


def pprf_eval(base: Tok, epoch: int, leaf: int) -> Tok:
    """P2: the PPRF leaf secret for input `leaf`, keyed by the epoch's epoch_base_secret."""
    return Tok("PPRF", (base,), (epoch, leaf))


def prp(key: Tok, x: int) -> Tok:
    """draft-00 §5.7: SmallSpacePRP.Encrypt(key, x): a permutation, equal iff key and x are."""
    return Tok("FF1", (key,), (x,))


def model_hash(leaf_index: int, random: int, bits: int) -> int:
    """P3: the PPRF leaf = first `bits` bits of Hash(HashInput{leaf_index, random}).

    The model needs only a fixed function with uniform-looking output (equal inputs give
    equal leaves, distinct inputs collide at the birthday rate); this is SplitMix64, a
    mixing function with no cryptographic claim.
    """
    z = (leaf_index * 0x9E3779B97F4A7C15 + random * 0xBF58476D1CE4E5B9 + 1) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    z ^= z >> 31
    return z >> (64 - bits)


def sealed_index(items: Iterable[Sealed]) -> dict[Tok, list[Tok]]:
    """Index public ciphertexts by payload: payload -> keys that open it."""
    index: dict[Tok, list[Tok]] = {}
    for s in items:
        index.setdefault(s.payload, []).append(s.key)
    return index


def derivable(
    target: Tok,
    known: set[Tok] | frozenset[Tok],
    *,
    sealed: Mapping[Tok, list[Tok]] | None = None,
    blocked: Callable[[Tok], bool] | None = None,
    memo: dict[Tok, bool] | None = None,
) -> bool:
    """Whether `target` can be computed from `known` (see the module docstring)."""
    memo = {} if memo is None else memo

    def go(tok: Tok) -> bool:
        if tok in memo:
            return memo[tok]
        memo[tok] = False  # cycle guard: a token never helps derive itself
        ok = tok in known or tok.label in PUBLIC_LABELS
        if not ok and tok.parents and not (blocked is not None and blocked(tok)):
            ok = all(go(p) for p in tok.parents)
        if not ok and sealed is not None:
            ok = any(go(k) for k in sealed.get(tok, ()))
        memo[tok] = ok
        return ok

    return go(target)
