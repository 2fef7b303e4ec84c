"""The generation ID (draft-00 §5.9; DRAFT-00-PROFILE P11, Q4).

No published vector uses draft-00's 5-byte PrivateMessageContext, so:
- the context encoding is checked byte for byte against Q4's layout;
- the ID is checked against ExpandWithLabel computed here by hand with `cryptography`'s
  HKDF-Expand (RFC 9420 §8), for three KDFs;
- the label and the ExpandWithLabel wiring are checked against the third-party
  generation_id[] values of draft-01 by feeding `generation_id_for_context` draft-01's
  context {opaque group_id<V>; uint64 epoch; uint32 generation; RatchetType}, encoded
  by hand below (that context does not apply to draft-00, the label does).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError
from mlsvc.vc.codepoints import RatchetType
from mlsvc.vc.generation_id import (
    generation_id,
    generation_id_for_context,
    private_message_context,
)
from tests.conftest import VECTORS

HAVEN = json.loads(
    (VECTORS / "third-party" / "havenmessenger-interop_vc-01-vectors.json").read_text()
)


def test_context_layout() -> None:
    # Q4: uint32 generation, uint8 ratchet_type (application 1, handshake 2).
    assert private_message_context(0, RatchetType.APPLICATION) == bytes.fromhex("0000000001")
    assert private_message_context(0x01020304, RatchetType.HANDSHAKE) == bytes.fromhex(
        "0102030402")
    assert private_message_context(2**32 - 1, RatchetType.APPLICATION) == bytes.fromhex(
        "ffffffff01")


def _by_hand(hash_alg: hashes.HashAlgorithm, secret: bytes, context: bytes, nh: int) -> bytes:
    label = b"MLS 1.0 generation id"
    info = (nh.to_bytes(2, "big") + bytes([len(label)]) + label + bytes([len(context)])
            + context)
    return HKDFExpand(hash_alg, nh, info).derive(secret)


@pytest.mark.parametrize("suite_id, hash_alg, nh", [(1, hashes.SHA256(), 32),
                                                     (7, hashes.SHA384(), 48),
                                                     (5, hashes.SHA512(), 64)])
def test_generation_id_is_expand_with_label(suite_id: int, hash_alg: hashes.HashAlgorithm,
                                            nh: int) -> None:
    cs = get_suite(suite_id)
    secret = bytes(range(7, 7 + nh))
    for gen, rt, ctx in ((0, RatchetType.APPLICATION, "0000000001"),
                         (1000, RatchetType.HANDSHAKE, "000003e802")):
        got = generation_id(cs, secret, gen, rt)
        assert len(got) == nh
        assert got == _by_hand(hash_alg, secret, bytes.fromhex(ctx), nh)


def test_handshake_and_application_differ() -> None:
    cs, secret = get_suite(1), bytes(32)
    assert generation_id(cs, secret, 5, RatchetType.APPLICATION) != generation_id(
        cs, secret, 5, RatchetType.HANDSHAKE)


CASES = HAVEN["generation_id"]


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_label_against_draft01_values(case: dict[str, Any]) -> None:
    group_id = bytes.fromhex(case["group_id_hex"])
    assert len(group_id) < 64  # one-byte varint prefix
    ratchet = {"application": 1, "handshake": 2}[case["ratchet_type"]]
    context01 = (bytes([len(group_id)]) + group_id + case["epoch"].to_bytes(8, "big")
                 + case["generation"].to_bytes(4, "big") + bytes([ratchet]))
    secret = bytes.fromhex(case["generation_id_secret_hex"])
    got = generation_id_for_context(get_suite(1), secret, context01)
    assert got.hex() == case["ours_generation_id_hex"]
    # And draft-00's context gives a different value (P11: no group, no epoch).
    assert generation_id(get_suite(1), secret, case["generation"],
                         RatchetType(ratchet)).hex() != case["ours_generation_id_hex"]


@pytest.mark.parametrize("gen, rt", [(-1, RatchetType.APPLICATION),
                                     (2**32, RatchetType.APPLICATION),
                                     (0, 0), (0, 3)])
def test_bad_context(gen: int, rt: int) -> None:
    with pytest.raises(ParameterError):
        private_message_context(gen, rt)  # type: ignore[arg-type]  # deliberately ill-typed


def test_bad_secret_length() -> None:
    with pytest.raises(ParameterError):
        generation_id(get_suite(1), bytes(48), 0, RatchetType.APPLICATION)
