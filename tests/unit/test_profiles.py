"""The profile type and the later text's primitives (mlsvc.vc.profiles): the epoch
secrets (latest §5.2), the reuse guard's PRP key (latest §5.6.2), the generation ID's
context (latest §5.6.3), each against the latest text's formula computed here by hand
(RFC 9420 §8 ExpandWithLabel on `cryptography`'s HKDF), and the default profile
draft-00 unchanged. The public vc-01 values are checked field by field in
tests/vectors/test_vc01_vectors.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from mlsvc.crypto.labels import derive_secret
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError
from mlsvc.types import LeafIndex
from mlsvc.vc.codepoints import REUSE_GUARD_SECRET_LABEL, RatchetType
from mlsvc.vc.epoch import derive_epoch_secrets, open_epoch
from mlsvc.vc.generation_id import generation_id, private_message_context
from mlsvc.vc.profiles import DEFAULT_PROFILE, SECTIONS, Profile, profile_of
from mlsvc.vc.reuse_guard import (
    derive_prp_key,
    make_reuse_guard,
    recover_leaf_index,
    reuse_guard_key_secret,
)
from tests.conftest import VECTORS

HAVEN = json.loads(
    (VECTORS / "third-party" / "havenmessenger-interop_vc-01-vectors.json").read_text()
)
CS1 = get_suite(1)


def _expand(secret: bytes, label: bytes, context: bytes, length: int,
            alg: hashes.HashAlgorithm | None = None) -> bytes:
    full = b"MLS 1.0 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(alg or hashes.SHA256(), length, info).derive(secret)


def test_profile_names() -> None:
    assert DEFAULT_PROFILE is Profile.DRAFT_00
    assert profile_of("latest") is Profile.LATEST
    assert profile_of(Profile.DRAFT_00) is Profile.DRAFT_00
    assert str(Profile.LATEST) == "latest" and Profile.DRAFT_00.value == "draft-00"
    with pytest.raises(ParameterError):
        profile_of("draft-01")
    assert set(SECTIONS) == {"epoch_secrets", "small_space_prp", "reuse_guard",
                             "generation_id"}
    assert SECTIONS["reuse_guard"][Profile.LATEST] == "§5.6.2"


# --- (a) the epoch secrets ---------------------------------------------------------------


def test_latest_label_is_the_texts() -> None:
    # latest §5.2: reuse_guard_secret = DeriveSecret(emulator_epoch_secret, "Reuse Guard")
    assert REUSE_GUARD_SECRET_LABEL == b"Reuse Guard"


@pytest.mark.parametrize("suite_id", [1, 5, 7])
def test_epoch_secrets_per_profile(suite_id: int) -> None:
    cs = get_suite(suite_id)
    ees = bytes(range(cs.nh))
    d0 = derive_epoch_secrets(cs, ees)
    la = derive_epoch_secrets(cs, ees, "latest")
    assert d0.reuse_guard_secret is None
    assert la.reuse_guard_secret == derive_secret(cs, ees, b"Reuse Guard")
    # the four shared secrets have the same labels in both texts
    for name in ("epoch_id", "epoch_base_secret", "epoch_encryption_key",
                 "generation_id_secret"):
        assert getattr(d0, name) == getattr(la, name)
    # and draft-00's epoch is the one open_epoch opens (behaviour unchanged)
    ep = open_epoch(cs, ees, 3, 4, LeafIndex(1), {1: b"a"}, keep_base_secret=True)
    assert (ep.epoch_id, ep.generation_id_secret, ep.encryption_key, ep.base_secret) == (
        d0.epoch_id, d0.generation_id_secret, d0.epoch_encryption_key, d0.epoch_base_secret)
    with pytest.raises(ParameterError):
        derive_epoch_secrets(cs, ees[:-1], "latest")


def test_epoch_secrets_by_hand() -> None:
    """DeriveSecret(s, label) = ExpandWithLabel(s, label, "", Nh) (RFC 9420 §8)."""
    ees = bytes(32)
    la = derive_epoch_secrets(CS1, ees, Profile.LATEST)
    assert la.reuse_guard_secret == _expand(ees, b"Reuse Guard", b"", 32)
    assert la.epoch_id == _expand(ees, b"Epoch ID", b"", 32)


@pytest.mark.parametrize("case", HAVEN["epoch_secrets"], ids=lambda c: c["case"])
def test_epoch_secrets_vc01(case: dict[str, Any]) -> None:
    la = derive_epoch_secrets(CS1, bytes.fromhex(case["emulator_epoch_secret_hex"]),
                              Profile.LATEST)
    assert la.reuse_guard_secret is not None
    assert la.reuse_guard_secret.hex() == case["reuse_guard_secret_hex"]
    assert la.epoch_base_secret.hex() == case["epoch_base_secret_hex"]


# --- (b) the reuse guard's PRP key -------------------------------------------------------


def test_key_secret_per_profile() -> None:
    lns, rgs = b"\x01" * 32, b"\x02" * 32
    assert reuse_guard_key_secret(leaf_node_secret=lns, reuse_guard_secret=rgs) == lns
    assert reuse_guard_key_secret("latest", leaf_node_secret=lns,
                                  reuse_guard_secret=rgs) == rgs
    with pytest.raises(ParameterError, match="reuse_guard_secret"):
        reuse_guard_key_secret(Profile.LATEST, leaf_node_secret=lns)
    with pytest.raises(ParameterError, match="leaf_node_secret"):
        reuse_guard_key_secret(Profile.DRAFT_00, reuse_guard_secret=rgs)


def test_prp_key_is_expand_with_label_in_both_profiles() -> None:
    """latest §5.6.2 and draft-00 §5.8 share the formula; only the secret differs."""
    secret, nonce = bytes(range(32)), bytes(range(12))
    want = _expand(secret, b"reuse guard", nonce, 16)
    assert derive_prp_key(CS1, secret, nonce) == want
    assert derive_prp_key(CS1, secret, nonce, profile="latest") == want
    with pytest.raises(ParameterError, match=r"reuse_guard_secret must be Kdf.Nh"):
        derive_prp_key(CS1, bytes(31), nonce, profile="latest")
    with pytest.raises(ParameterError, match=r"leaf_node_secret must be Kdf.Nh = 32 bytes \(P8\)"):
        derive_prp_key(CS1, bytes(31), nonce)


@pytest.mark.parametrize("case", HAVEN["reuse_guard"], ids=lambda c: c["case"])
def test_reuse_guard_latest_vc01(case: dict[str, Any]) -> None:
    rgs = bytes.fromhex(case["reuse_guard_secret_hex"])
    nonce = bytes.fromhex(case["key_schedule_nonce_hex"])
    secret = reuse_guard_key_secret(Profile.LATEST, reuse_guard_secret=rgs)
    assert derive_prp_key(CS1, secret, nonce, profile=Profile.LATEST).hex() == \
        case["ours_prp_key_hex"]

    def no_rng(n: int, /) -> bytes:
        raise AssertionError("x is given")

    guard = make_reuse_guard(CS1, secret, nonce, LeafIndex(case["leaf_index_e"]),
                             case["n_e"], no_rng, case["x"], profile=Profile.LATEST)
    assert guard.hex() == case["ours_reuse_guard_hex"]
    assert recover_leaf_index(CS1, secret, nonce, guard, case["n_e"],
                              profile=Profile.LATEST) == case["ours_recovered_leaf_index"]


# --- (c) the generation ID's context ----------------------------------------------------


def test_context_per_profile() -> None:
    assert private_message_context(7, RatchetType.HANDSHAKE) == bytes.fromhex("0000000702")
    gid = bytes(range(32))
    ctx = private_message_context(7, RatchetType.HANDSHAKE, profile="latest", group_id=gid,
                                  epoch=0x0102030405060708)
    # latest §5.6.3: opaque group_id<V>; uint64 epoch; uint32 generation; RatchetType
    assert ctx == bytes([32]) + gid + bytes.fromhex("0102030405060708") + bytes.fromhex(
        "0000000702")
    # 1 + 32 + 8 + 4 + 1 bytes for a 32-byte group_id (havenmessenger's report says 47;
    # its vc-01 generation_id values are reproduced with these 46)
    assert len(private_message_context(0, RatchetType.APPLICATION, profile="latest",
                                       group_id=gid, epoch=7)) == 46
    with pytest.raises(ParameterError):  # draft-00 has neither (P11)
        private_message_context(0, RatchetType.APPLICATION, group_id=gid, epoch=7)
    with pytest.raises(ParameterError):
        private_message_context(0, RatchetType.APPLICATION, profile="latest", epoch=7)
    with pytest.raises(ParameterError):
        private_message_context(0, RatchetType.APPLICATION, profile="latest", group_id=gid)
    with pytest.raises(ParameterError):
        private_message_context(0, RatchetType.APPLICATION, profile="latest", group_id=gid,
                                epoch=1 << 64)


@pytest.mark.parametrize("case", HAVEN["generation_id"], ids=lambda c: c["case"])
def test_generation_id_latest_vc01(case: dict[str, Any]) -> None:
    secret = bytes.fromhex(case["generation_id_secret_hex"])
    group_id = bytes.fromhex(case["group_id_hex"])
    got = generation_id(CS1, secret, case["generation"], RatchetType.APPLICATION,
                        profile=Profile.LATEST, group_id=group_id, epoch=case["epoch"])
    ctx = private_message_context(case["generation"], RatchetType.APPLICATION,
                                  profile=Profile.LATEST, group_id=group_id,
                                  epoch=case["epoch"])
    assert got == _expand(secret, b"generation id", ctx, 32)
    assert got.hex() == case["ours_generation_id_hex"]
    assert got.hex() == case["openmls_extracted_generation_id_hex"]
    # draft-00's context (no group, no epoch) gives another ID
    assert generation_id(CS1, secret, case["generation"], RatchetType.APPLICATION) != got
