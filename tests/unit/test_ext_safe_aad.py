"""SafeAAD framing (extensions-09 §4.9): exact bytes, ordering, the -09 tail, the
GroupContext switch (§5) and typed errors for bad input."""

from __future__ import annotations

import hashlib

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, ParameterError, ValidationError
from mlsvc.ext.components import negotiation_dictionary
from mlsvc.ext.safe_aad import (
    SafeAAD,
    SafeAADItem,
    authenticated_data_of,
    check_authenticated_data,
    encode_items,
    make_safe_aad,
    parse,
    safe_aad_required,
)
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.key_package import create_key_package
from mlsvc.messages.mls_message import MLSMessage

SAFE_ON = (negotiation_dictionary(None, []).to_extension(),)
SAFE_OFF = (negotiation_dictionary([0x8002], None).to_extension(),)


def test_empty_safe_aad_is_one_zero_byte() -> None:
    """§4.9: no items -> a zero-length aad_items vector (OpenMLS: `00`)."""
    assert encode_items({}) == b"\x00"
    assert parse(b"\x00").items == ()


def test_items_are_sorted_on_the_wire() -> None:
    data = encode_items([(0x8002, b"ab"), (0x0001, b"")])
    assert data == bytes.fromhex("08" "0001" "00" "8002" "02" "6162")
    assert encode_items({0x8002: b"ab", 0x0001: b""}) == data
    assert encode_items([SafeAADItem(1, b""), SafeAADItem(0x8002, b"ab")]) == data
    parsed = parse(data)
    assert parsed.safe_aad.as_dict() == {1: b"", 0x8002: b"ab"}
    assert parsed.get(0x8002) == b"ab" and parsed.get(5) is None and parsed.tail == b""


def test_tail_after_the_safe_aad() -> None:
    """-09: non-safe data after the SafeAAD; the draft-10 reading forbids it."""
    data = encode_items({7: b"x"}, tail=b"rest")
    assert data == bytes.fromhex("04" "0007" "01" "78") + b"rest"
    assert parse(data).tail == b"rest"
    with pytest.raises(ValidationError) as info:
        parse(data, allow_tail=False)
    assert info.value.check_id == "EXT-SAFE-AAD-TAIL"


@pytest.mark.parametrize(
    "data",
    [bytes.fromhex("06" "0002" "00" "0001" "00"), bytes.fromhex("06" "0001" "00" "0001" "00")],
    ids=["unsorted", "duplicate"],
)
def test_unsorted_or_duplicate_items_are_rejected(data: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        parse(data)
    assert info.value.check_id == "EXT-SAFE-AAD-SORTED"


@pytest.mark.parametrize("data", [b"", b"\x05\x00\x01\x05", b"\x03\x00\x01", b"\xc0"])
def test_truncated_safe_aad_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse(data)


def test_sender_side_errors() -> None:
    with pytest.raises(ParameterError):
        make_safe_aad([(1, b""), (1, b"x")])
    with pytest.raises(ParameterError):
        SafeAAD((SafeAADItem(2, b""), SafeAADItem(1, b"")))
    with pytest.raises(ParameterError):
        SafeAADItem(0x10000, b"")


def test_the_group_context_switches_safe_aad_on() -> None:
    assert safe_aad_required(SAFE_ON)
    assert not safe_aad_required(SAFE_OFF)
    assert not safe_aad_required(())
    assert check_authenticated_data(SAFE_OFF, b"anything") is None
    parsed = check_authenticated_data(SAFE_ON, b"\x00tail")
    assert parsed is not None and parsed.tail == b"tail"
    with pytest.raises(ValidationError) as info:
        check_authenticated_data(SAFE_ON, b"")
    assert info.value.check_id == "EXT-SAFE-AAD-REQUIRED"
    with pytest.raises(ValidationError) as info:
        check_authenticated_data(SAFE_ON, bytes.fromhex("06" "0002" "00" "0001" "00"))
    assert info.value.check_id == "EXT-SAFE-AAD-SORTED"


def test_authenticated_data_of_other_messages_is_refused() -> None:
    cs = get_suite(1)
    ident = Identity.basic(b"k", cs.signature.derive_key_pair(bytes(32)))
    cfg = GroupConfig(rng=lambda n: hashlib.shake_256(b"kp").digest(n))
    kp = create_key_package(cs, ident, cfg).key_package
    with pytest.raises(ParameterError):
        authenticated_data_of(MLSMessage(kp).encode())
    with pytest.raises(DecodeError):
        authenticated_data_of(b"\x00\x01\x00\x01")
