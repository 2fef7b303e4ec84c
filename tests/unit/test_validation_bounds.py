"""Every check with a numeric bound, tested at the bound and one past it (issue 16):
LN-LIFETIME's inclusive edges (not_before == now, now == not_after), LN-MAX-LIFETIME
at exactly the application's limit, and the integer ranges of the reuse guard, the
generation ID, FF1's fast path and the extension / virtual-client code points."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError, ValidationError
from mlsvc.ext.codepoints import CodePoints, check_component_id
from mlsvc.group.validation import validate_key_package
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Lifetime
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import RatchetType, VCCodePoints
from mlsvc.vc.ff1 import numerals_to_u32, prp_decrypt, prp_encrypt, u32_to_numerals
from mlsvc.vc.generation_id import private_message_context
from mlsvc.vc.reuse_guard import choose_x, leaf_count_exponent, recover_leaf_index
from tests.unit.validation_helpers import CS, NOW, config, key_package

LIMIT = 7200  # the application's maximum total lifetime in these tests (§7.2)


def _kp(lifetime: Lifetime) -> KeyPackage:
    return key_package("d", lifetime=lifetime).key_package


def _check(kp: KeyPackage, **kw: object) -> str | None:
    """The check validate_key_package fires for kp (clock at NOW), or None."""
    try:
        validate_key_package(CS, kp, (), None, config("v", **kw))
    except ValidationError as err:
        return err.check_id
    return None


@pytest.mark.parametrize(("lifetime", "expected"), [
    (Lifetime(NOW, NOW + 100), None),          # not_before == now: valid
    (Lifetime(NOW + 1, NOW + 100), "LN-LIFETIME"),
    (Lifetime(NOW - 100, NOW), None),          # now == not_after: valid
    (Lifetime(NOW - 100, NOW - 1), "LN-LIFETIME"),
    (Lifetime(NOW, NOW), None),                # a one-second window containing now
], ids=["not-before-now", "not-before-now+1", "not-after-now", "not-after-now-1", "point"])
def test_lifetime_edges_are_inclusive(lifetime: Lifetime, expected: str | None) -> None:
    assert _check(_kp(lifetime)) == expected


@pytest.mark.parametrize(("span", "expected"), [
    (LIMIT - 1, None), (LIMIT, None), (LIMIT + 1, "LN-MAX-LIFETIME"),
])
def test_max_lifetime_at_the_limit_and_one_past(span: int, expected: str | None) -> None:
    kp = _kp(Lifetime(NOW - 10, NOW - 10 + span))
    assert _check(kp, max_leaf_lifetime=LIMIT) == expected
    assert _check(kp) is None  # no limit configured


def test_max_lifetime_is_judged_even_when_the_clock_is_not() -> None:
    """LN-MAX-LIFETIME does not depend on now: a leaf not valid yet is refused for its
    span first when both apply."""
    kp = _kp(Lifetime(NOW + 10, NOW + 10 + LIMIT + 1))
    assert _check(kp, max_leaf_lifetime=LIMIT) == "LN-MAX-LIFETIME"


# --- integer ranges of the draft primitives ------------------------------------------

CS1 = get_suite(1)


def zeros(n: int) -> bytes:
    return bytes(n)


def ones(n: int) -> bytes:
    return b"\xff" * n


@pytest.mark.parametrize(("call", "ok"), [
    (lambda: leaf_count_exponent(1), 0),
    (lambda: leaf_count_exponent(1 << 32), 32),             # N = 2^32: the largest
    (lambda: leaf_count_exponent(1 << 33), None),
    (lambda: leaf_count_exponent(0), None),
    (lambda: leaf_count_exponent(3), None),
    (lambda: choose_x(3, 4, ones), 0xFFFFFFFF),              # leaf_index = N - 1
    (lambda: choose_x(4, 4, zeros), None),                   # leaf_index = N
    (lambda: choose_x(0, 4, zeros), 0),
    (lambda: choose_x(-1, 4, zeros), None),
    (lambda: private_message_context(0, RatchetType.APPLICATION), b"\0\0\0\0\1"),
    (lambda: private_message_context((1 << 32) - 1, RatchetType.HANDSHAKE),
     b"\xff\xff\xff\xff\2"),
    (lambda: private_message_context(1 << 32, RatchetType.HANDSHAKE), None),
    (lambda: private_message_context(-1, RatchetType.HANDSHAKE), None),
    (lambda: private_message_context(0, 0), None),  # type: ignore[arg-type]
    (lambda: private_message_context(0, 3), None),  # type: ignore[arg-type]
    (lambda: u32_to_numerals(0xFFFFFFFF), [1] * 32),
    (lambda: u32_to_numerals(1 << 32), None),
    (lambda: u32_to_numerals(-1), None),
    (lambda: numerals_to_u32([1] * 32), 0xFFFFFFFF),
    (lambda: numerals_to_u32([1] * 33), None),
    (lambda: prp_decrypt(bytes(16), prp_encrypt(bytes(16), 0xFFFFFFFF)), 0xFFFFFFFF),
    (lambda: prp_decrypt(bytes(16), 1 << 32), None),
    (lambda: prp_decrypt(bytes(16), -1), None),
    (lambda: check_component_id(0xFFFF), 0xFFFF),
    (lambda: check_component_id(0), 0),
    (lambda: check_component_id(0x10000), None),
    (lambda: check_component_id(-1), None),
    (lambda: CodePoints(app_data_dictionary=0xFFFF).app_data_dictionary, 0xFFFF),
    (lambda: CodePoints(app_data_dictionary=0).app_data_dictionary, 0),
    (lambda: CodePoints(app_data_dictionary=0x10000), None),
    (lambda: CodePoints(app_data_dictionary=-1), None),
    (lambda: VCCodePoints(derivation_info=0xFFFF).derivation_info, 0xFFFF),
    (lambda: VCCodePoints(derivation_info=1).derivation_info, 1),
    (lambda: VCCodePoints(derivation_info=0), None),            # non-zero (P1)
    (lambda: VCCodePoints(derivation_info=0x10000), None),
    (lambda: VCCodePoints(derivation_info=0x8002), None),       # distinct IDs
])
def test_numeric_bounds(call: Callable[[], object], ok: object) -> None:
    """At the bound the call succeeds with the value the spec gives; one past it, it
    raises ParameterError."""
    if ok is None:
        with pytest.raises(ParameterError):
            call()
    else:
        assert call() == ok


def test_recovered_leaf_index_is_below_n_for_every_class_member() -> None:
    """recover_leaf_index reduces x mod N: the largest x of the top class gives N - 1."""
    secret, nonce = bytes(CS1.nh), b"nonce"
    from mlsvc.vc.reuse_guard import make_reuse_guard

    guard = make_reuse_guard(CS1, secret, nonce, LeafIndex(3), 4, ones)
    assert recover_leaf_index(CS1, secret, nonce, guard, 4) == 3
    assert recover_leaf_index(CS1, secret, nonce, guard, 4, members={3}) == 3
    with pytest.raises(ValidationError):
        recover_leaf_index(CS1, secret, nonce, guard, 4, members={0, 1, 2})
