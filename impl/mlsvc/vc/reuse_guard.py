"""The reuse guard of a virtual client's PrivateMessage
(draft-ietf-mls-virtual-clients-00 §5.6 and §5.8; DRAFT-00-PROFILE P8, P9, P10, Q5).

§5.6: emulators that share one virtual client must never encrypt with the same key and
nonce; they "MUST prevent this by computing the reuse_guard ... instead of sampling it
randomly". §5.8: an emulator picks x with x mod N == its leaf_index and sends

    prp_key     = ExpandWithLabel(leaf_node_secret, "reuse guard", key_schedule_nonce, 16)
    reuse_guard = SmallSpacePRP.Encrypt(prp_key, x)       (4 bytes, big-endian, P10)

The later text (profile "latest", §5.6.2; mlsvc.vc.profiles) keeps the formula and
changes the secret: prp_key = ExpandWithLabel(reuse_guard_secret, "reuse guard",
key_schedule_nonce, 16), reuse_guard_secret being the fifth epoch secret of the
emulation epoch e named by the active LeafNode (latest §5.2, mlsvc.vc.epoch.
derive_epoch_secrets). `reuse_guard_key_secret(profile, ...)` is the one place that
picks the secret; the functions below take `profile=` (default draft-00) and otherwise
compute the same thing. key_schedule_nonce, N and x are the same in both texts.

Readings fixed by the profile:
- P8: `leaf_node_secret` is the encryption_key_secret of the operation that produced the
  virtual client's active LeafNode in the higher-level group (Kdf.Nh bytes).
- P9: N is the leaf count of the emulation group's tree (blanks included, a power of
  two) at the epoch named by the active LeafNode's epoch_id, and leaf_index is the
  sender's index at that epoch.
- Q5: key_schedule_nonce is the higher-level group's secret-tree nonce for this
  (sender, ratchet, generation) before the reuse-guard XOR, used raw as context;
  ExpandWithLabel uses the emulation group's suite; the PRP is AES-128 in every suite.

Choosing x. N = 2^k divides 2^32, so the class {x : x mod N == leaf_index} is
{q * 2^k + leaf_index : 0 <= q < 2^(32-k)}. Four random bytes r give q = r >> k, uniform
over 2^(32-k) values; rejection sampling would never reject here, since 2^32 is a
multiple of N, so x = (r with its low k bits replaced by leaf_index) is exactly uniform
in the class. proofs/ (partition.*) checks this for every k in 0..32.

API (pure functions; the framing layer passes the result into PrivateMessage
encryption, RFC 9420 §6.3.2, where reuse_guard is XORed into the nonce):
- `make_reuse_guard(cs, secret, key_schedule_nonce, leaf_index, n_leaves, rng, x=None)
  -> bytes`, and `make_reuse_guard_x` (the same, returning x too). `x` given: that x
  instead of a random one (the model's adversarial sender picks x; a refinement test
  replays its choice); it must be in the sender's class (`check_x`), else ParameterError
- `recover_leaf_index(cs, secret, key_schedule_nonce, reuse_guard, n_leaves) -> LeafIndex`
`cs` is the emulation group's CipherSuite (mlsvc.crypto.suites.get_suite).
"""

from __future__ import annotations

from collections.abc import Container

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError, ParameterError, ValidationError
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import (
    MAX_LEAF_COUNT_EXPONENT,
    PRP_KEY_LENGTH,
    REUSE_GUARD_LABEL,
    REUSE_GUARD_LENGTH,
)
from mlsvc.vc.ff1 import prp_decrypt, prp_encrypt
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of

CHECK_SENDER_NOT_MEMBER = "VC-RG-1"
"""Validation check: the leaf index recovered from a received reuse guard is not an
emulator of the emulation epoch (P9: only members at epoch e may send)."""

def leaf_count_exponent(n_leaves: int) -> int:
    """k with N = 2^k, 0 <= k <= 32 (P9: the leaf count of a full tree is a power of
    two; x is a uint32). Anything else is a caller error."""
    if not isinstance(n_leaves, int) or isinstance(n_leaves, bool) or n_leaves < 1:
        raise ParameterError(f"leaf count {n_leaves!r} must be a positive integer")
    if n_leaves & (n_leaves - 1):
        raise ParameterError(f"leaf count {n_leaves} is not a power of two (P9)")
    k = n_leaves.bit_length() - 1
    if k > MAX_LEAF_COUNT_EXPONENT:
        raise ParameterError(f"leaf count {n_leaves} exceeds 2^32 (x is a uint32)")
    return k


def _check_leaf_index(leaf_index: int, n_leaves: int) -> None:
    if not isinstance(leaf_index, int) or isinstance(leaf_index, bool):
        raise ParameterError(f"leaf index {leaf_index!r} is not an integer")
    if not 0 <= leaf_index < n_leaves:
        raise ParameterError(f"leaf index {leaf_index} not below the leaf count {n_leaves}")


_KEY_SECRET_NAME = {Profile.DRAFT_00: ("leaf_node_secret", "P8"),
                    Profile.LATEST: ("reuse_guard_secret", "latest §5.2")}


def reuse_guard_key_secret(profile: Profile | str = DEFAULT_PROFILE, *,
                           leaf_node_secret: bytes | None = None,
                           reuse_guard_secret: bytes | None = None) -> bytes:
    """The secret the PRP key is expanded from, per text:
    - draft-00 §5.8 with P8: `leaf_node_secret`, the encryption_key_secret of the
      operation that produced the virtual client's active LeafNode;
    - latest §5.6.2: `reuse_guard_secret` of the emulation epoch e that produced the
      active LeafNode (latest §5.2).
    The other argument is ignored; ParameterError when the one needed is missing."""
    p = profile_of(profile)
    chosen = leaf_node_secret if p is Profile.DRAFT_00 else reuse_guard_secret
    if chosen is None:
        name, ref = _KEY_SECRET_NAME[p]
        raise ParameterError(f"profile {p}: the reuse guard is keyed by {name} ({ref}), "
                             "which was not given")
    return chosen


def derive_prp_key(cs: CipherSuite, secret: bytes, key_schedule_nonce: bytes, *,
                   profile: Profile | str = DEFAULT_PROFILE) -> bytes:
    """prp_key = ExpandWithLabel(secret, "reuse guard", key_schedule_nonce, 16), with the
    emulation group's suite (Q3, Q5): draft-00 §5.8/P8 (`secret` = leaf_node_secret) or
    latest §5.6.2 (`secret` = reuse_guard_secret); see `reuse_guard_key_secret`."""
    p = profile_of(profile)
    if len(secret) != cs.nh:
        name, ref = _KEY_SECRET_NAME[p]
        raise ParameterError(f"{name} must be Kdf.Nh = {cs.nh} bytes ({ref})")
    if not isinstance(key_schedule_nonce, bytes | bytearray) or not key_schedule_nonce:
        raise ParameterError("key_schedule_nonce must be non-empty bytes (Q5)")
    return expand_with_label(
        cs, secret, REUSE_GUARD_LABEL, bytes(key_schedule_nonce), PRP_KEY_LENGTH
    )


def class_member(draw: int, leaf_index: int, k: int) -> int:
    """§5.8: the x of residue class leaf_index mod 2^k selected by a uint32 draw: the
    draw's high 32 - k bits (q = draw >> k) followed by leaf_index in the low k bits, so
    x = q * 2^k + leaf_index. Pure; callers have validated leaf_index < 2^k."""
    return ((draw >> k) << k) | leaf_index


def choose_x(leaf_index: int, n_leaves: int, rng: RandomSource) -> int:
    """§5.8: "choose a random value x such that x modulo the number of leaves in the
    emulation group is equal to its leaf_index", uniformly in that class (see the
    module docstring; proofs/ partition.*)."""
    k = leaf_count_exponent(n_leaves)
    _check_leaf_index(leaf_index, n_leaves)
    draw = rng(4)
    if not isinstance(draw, bytes) or len(draw) != 4:
        raise ParameterError("the random source must return exactly the bytes requested")
    return class_member(int.from_bytes(draw, "big"), leaf_index, k)


def check_x(x: int, leaf_index: int, n_leaves: int) -> None:
    """§5.8: an x chosen by the caller is a uint32 with x mod N == leaf_index (and N, the
    leaf index are valid); ParameterError otherwise."""
    k = leaf_count_exponent(n_leaves)
    _check_leaf_index(leaf_index, n_leaves)
    if not isinstance(x, int) or isinstance(x, bool):
        raise ParameterError(f"x {x!r} is not an integer")
    if not 0 <= x < 1 << 32:
        raise ParameterError(f"x {x} is not a uint32")
    if x & ((1 << k) - 1) != leaf_index:
        raise ParameterError(f"x {x} mod {n_leaves} is not the leaf index {leaf_index} "
                             "(§5.8)")


def make_reuse_guard_x(
    cs: CipherSuite,
    secret: bytes,
    key_schedule_nonce: bytes,
    leaf_index: LeafIndex,
    n_leaves: int,
    rng: RandomSource,
    x: int | None = None,
    *,
    profile: Profile | str = DEFAULT_PROFILE,
) -> tuple[bytes, int]:
    """`make_reuse_guard`, returning (reuse_guard, x): the x used, for audits of the
    partition (two senders' x never in one class)."""
    prp_key = derive_prp_key(cs, secret, key_schedule_nonce, profile=profile)
    if x is None:
        x = choose_x(leaf_index, n_leaves, rng)
    else:
        check_x(x, leaf_index, n_leaves)
    return prp_encrypt(prp_key, x).to_bytes(REUSE_GUARD_LENGTH, "big"), x


def make_reuse_guard(
    cs: CipherSuite,
    secret: bytes,
    key_schedule_nonce: bytes,
    leaf_index: LeafIndex,
    n_leaves: int,
    rng: RandomSource,
    x: int | None = None,
    *,
    profile: Profile | str = DEFAULT_PROFILE,
) -> bytes:
    """The 4-byte reuse_guard an emulator puts in a PrivateMessage's sender data (§5.8;
    latest §5.6.2 with profile="latest").

    `secret` is leaf_node_secret (P8; latest: reuse_guard_secret), `key_schedule_nonce`
    the higher-level group's nonce before the XOR (Q5), `leaf_index` the sender's index
    in the emulation group at epoch e and `n_leaves` that tree's leaf count N (P9), `rng`
    the injected source.
    `x`: the caller's x instead of a random one (not drawn from `rng`); it must satisfy
    `check_x`. Raises ParameterError for N not a power of two, N > 2^32, leaf_index >=
    N, a secret that is not Kdf.Nh bytes, or an x outside the sender's class."""
    return make_reuse_guard_x(cs, secret, key_schedule_nonce, leaf_index, n_leaves, rng,
                              x, profile=profile)[0]


def recover_x(cs: CipherSuite, secret: bytes, key_schedule_nonce: bytes,
              reuse_guard: bytes, *, profile: Profile | str = DEFAULT_PROFILE) -> int:
    """x = SmallSpacePRP.Decrypt(prp_key, reuse_guard) for a received reuse guard.
    Raises DecodeError if reuse_guard is not 4 bytes (RFC 9420 §6.3.2)."""
    if not isinstance(reuse_guard, bytes | bytearray) or len(reuse_guard) != REUSE_GUARD_LENGTH:
        raise DecodeError("reuse_guard must be exactly 4 bytes (RFC 9420 §6.3.2)")
    prp_key = derive_prp_key(cs, secret, key_schedule_nonce, profile=profile)
    return prp_decrypt(prp_key, int.from_bytes(reuse_guard, "big"))


def recover_leaf_index(
    cs: CipherSuite,
    secret: bytes,
    key_schedule_nonce: bytes,
    reuse_guard: bytes,
    n_leaves: int,
    members: Container[int] | None = None,
    *,
    profile: Profile | str = DEFAULT_PROFILE,
) -> LeafIndex:
    """The sender's leaf index in the emulation group at epoch e: Decrypt(prp_key,
    reuse_guard) mod N (§5.8, recovery as the later draft spells it out; P9 for N).

    Only emulators compute this (they alone know the secret). Every uint32 decrypts to
    some index, so a forged reuse guard is not detected by itself; if `members` (the
    occupied leaves at epoch e) is given, an index outside it raises
    ValidationError(VC-RG-1). DecodeError for a reuse guard that is not 4 bytes;
    ParameterError for a bad N or secret."""
    k = leaf_count_exponent(n_leaves)
    x = recover_x(cs, secret, key_schedule_nonce, reuse_guard, profile=profile)
    leaf = LeafIndex(x & ((1 << k) - 1))  # x mod 2^k
    if members is not None and leaf not in members:
        raise ValidationError(
            CHECK_SENDER_NOT_MEMBER,
            f"reuse guard decodes to leaf {leaf}, not an emulator of that epoch (P9)",
        )
    return leaf
