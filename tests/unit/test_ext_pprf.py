"""The puncturable PRF (profile P2; extensions-09 §4.4 generalised to depth d):
evaluation, puncturing, the exact PPRFState encoding, restore's checks and the O(d)
cost. Expected values come from the independent reference in test_ext_reference."""

from __future__ import annotations

import pytest

import mlsvc.ext.pprf as pprf_module
from mlsvc.crypto import labels
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import DecodeError, ParameterError, StateError, ValidationError
from mlsvc.ext.pprf import PPRF, PPRFNode, PuncturedInputError, input_from_bytes
from tests.unit import test_ext_reference as ref

CS1 = get_suite(1)
KEY = bytes(range(32))


@pytest.mark.parametrize("suite", range(1, 8))
def test_leaves_match_the_reference_in_every_suite(suite: int) -> None:
    key = bytes([suite]) * ref.nh(suite)
    p = PPRF(get_suite(suite), key, 32)
    for x in (0, 1, 0xDEADBEEF, 0xFFFFFFFF):
        assert p.evaluate(x) == ref.leaf(suite, key, 32, x)


def test_depth_zero_is_the_key_itself() -> None:
    p = PPRF(CS1, KEY, 0)
    assert p.evaluate(0) == KEY
    p.puncture(0)
    assert len(p) == 0
    with pytest.raises(PuncturedInputError):
        p.evaluate(0)


def test_evaluate_does_not_change_the_state() -> None:
    p = PPRF(CS1, KEY, 16)
    before = p.serialize()
    p.evaluate(1234)
    assert p.serialize() == before and len(p) == 1


def test_puncture_keeps_siblings_and_fails_the_punctured_input() -> None:
    p = PPRF(CS1, KEY, 8)
    assert p.evaluate_and_puncture(0x5A) == ref.leaf(1, KEY, 8, 0x5A)
    assert len(p) == 8
    with pytest.raises(PuncturedInputError) as info:
        p.evaluate(0x5A)
    assert info.value.input == 0x5A
    assert isinstance(info.value, StateError)
    with pytest.raises(PuncturedInputError):
        p.puncture(0x5A)
    for x in (0x5B, 0x58, 0x00, 0xFF):
        assert p.evaluate(x) == ref.leaf(1, KEY, 8, x)
    assert p.is_punctured(0x5A) and not p.is_punctured(0x5B)


def test_state_encoding_depth_two_by_hand() -> None:
    """Puncture 0 in a depth-2 tree: nodes "01" (leaf 1) and "1" (right child), in
    lexicographic order; PPRFNode = uint8 len || prefix<V> || node_secret<V>."""
    p = PPRF(CS1, KEY, 2)
    p.puncture(0)
    leaf1 = ref.node_secret(1, KEY, 2, 2, 0b01)
    right = ref.node_secret(1, KEY, 2, 1, 0b1)
    node_a = b"\x02" + b"\x01\x40" + b"\x20" + leaf1
    node_b = b"\x01" + b"\x01\x80" + b"\x20" + right
    body = node_a + node_b
    assert p.serialize() == ref.varint(len(body)) + body
    assert [(n.prefix_length, n.prefix) for n in p.nodes()] == [(2, 1), (1, 1)]


def test_unpunctured_state_is_the_root_with_an_empty_prefix() -> None:
    p = PPRF(CS1, KEY, 32)
    body = b"\x00" + b"\x00" + b"\x20" + KEY
    assert p.serialize() == ref.varint(len(body)) + body


def test_state_after_several_punctures_matches_the_reference() -> None:
    punctures = [0xDEADBEEF, 0xDEADBEEE, 7, 0x80000000]
    p = PPRF(CS1, KEY, 32)
    for x in punctures:
        p.puncture(x)
    assert p.serialize() == ref.state_bytes(1, KEY, 32, punctures)


def test_restore_round_trip() -> None:
    p = PPRF(CS1, KEY, 12)
    for x in (5, 4095, 2048, 6):
        p.puncture(x)
    q = PPRF.restore(CS1, 12, p.serialize())
    assert q.serialize() == p.serialize() and len(q) == len(p)
    for x in (0, 4, 7, 4094, 2049):
        assert q.evaluate(x) == ref.leaf(1, KEY, 12, x)
    with pytest.raises(PuncturedInputError):
        q.evaluate(2048)


def _node(length: int, packed: bytes, secret: bytes) -> bytes:
    return bytes([length]) + ref.varint(len(packed)) + packed + ref.varint(len(secret)) + secret


def _state(*nodes: bytes) -> bytes:
    body = b"".join(nodes)
    return ref.varint(len(body)) + body


S = bytes(32)


@pytest.mark.parametrize(
    ("data", "error", "check_id"),
    [
        (_state(_node(1, b"\x40", S)), ValidationError, "EXT-PPRF-STATE"),  # padding bit set
        (_state(_node(9, b"\x00", S)), DecodeError, None),  # 9 bits need 2 bytes
        (_state(_node(5, b"\x08", S)), ValidationError, "EXT-PPRF-STATE"),  # deeper than 4
        (_state(_node(1, b"\x00", bytes(31))), ValidationError, "EXT-PPRF-STATE"),
        (_state(_node(1, b"\x80", S), _node(1, b"\x00", S)), ValidationError,
         "EXT-PPRF-STATE"),  # unsorted
        (_state(_node(1, b"\x00", S), _node(2, b"\x40", S)), ValidationError,
         "EXT-PPRF-STATE"),  # "0" is a prefix of "01"
        (_state(_node(1, b"\x00", S), _node(1, b"\x00", S)), ValidationError,
         "EXT-PPRF-STATE"),  # duplicate
        (_state(_node(1, b"\x00", S))[:-1], DecodeError, None),  # truncated
        (_state(_node(1, b"\x00", S)) + b"\x00", DecodeError, None),  # trailing byte
    ],
)
def test_restore_rejects_bad_states(data: bytes, error: type[Exception],
                                    check_id: str | None) -> None:
    with pytest.raises(error) as info:
        PPRF.restore(CS1, 4, data)
    if check_id is not None:
        assert isinstance(info.value, ValidationError) and info.value.check_id == check_id


def test_restore_accepts_an_empty_state() -> None:
    p = PPRF(CS1, KEY, 1)
    p.puncture(0)
    p.puncture(1)
    assert p.serialize() == b"\x00"
    q = PPRF.restore(CS1, 1, b"\x00")
    assert q.is_punctured(0) and q.is_punctured(1)


@pytest.mark.parametrize("depth", [-1, 256])
def test_bad_depth(depth: int) -> None:
    with pytest.raises(ParameterError):
        PPRF(CS1, KEY, depth)
    with pytest.raises(ParameterError):
        PPRF.restore(CS1, depth, b"\x00")


def test_bad_key_length_and_inputs() -> None:
    with pytest.raises(ParameterError):
        PPRF(CS1, bytes(31), 4)
    p = PPRF(CS1, KEY, 4)
    for x in (-1, 16, 1 << 40):
        with pytest.raises(ParameterError):
            p.evaluate(x)
    with pytest.raises(ParameterError):
        PPRFNode(2, 4, S)


def test_input_from_bytes_reads_msb_first() -> None:
    assert input_from_bytes(bytes.fromhex("deadbeef99"), 32) == 0xDEADBEEF
    assert input_from_bytes(bytes.fromhex("f0"), 4) == 0xF
    assert input_from_bytes(bytes.fromhex("ffff"), 12) == 0xFFF
    with pytest.raises(ParameterError):
        input_from_bytes(b"\x00\x00\x00", 32)


def test_cost_is_linear_in_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluate: at most d ExpandWithLabel calls; puncture: at most 2d; the state grows
    by at most d - 1 entries per puncture, however many punctures came before."""
    calls = [0]
    real = labels.expand_with_label

    def counting(cs: CipherSuite, secret: bytes, label: bytes, context: bytes,
                 length: int) -> bytes:
        calls[0] += 1
        return real(cs, secret, label, context, length)

    monkeypatch.setattr(pprf_module, "expand_with_label", counting)
    d = 32
    p = PPRF(CS1, KEY, d)
    for i in range(60):
        x = (i * 0x9E3779B9) & 0xFFFFFFFF
        size = len(p)
        calls[0] = 0
        p.puncture(x)
        assert calls[0] <= 2 * d
        assert len(p) - size <= d - 1
        calls[0] = 0
        p.evaluate(x ^ 1)
        assert calls[0] <= d
