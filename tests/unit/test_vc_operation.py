"""Operation secrets and their key material (draft-00 §5.2; profile P3, P4, P5, P17, Q6,
Q7, Q12). Expected values come from hashlib/hmac and `cryptography`, not from mlsvc."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import StateError, ValidationError
from mlsvc.types import LeafIndex
from mlsvc.vc.epoch import EmulationEpoch, open_epoch
from mlsvc.vc.operation import (
    MAX_RESAMPLES,
    OperationKeys,
    OperationSecrets,
    commit_derivation,
    hash_input,
    operation_keys,
    plan_derivation,
    plan_rederivation,
    pprf_leaf,
)
from tests.unit import vc_helpers as ind
from tests.unit.vc_helpers import CS, ScriptedRandom, colliding_randoms

ROSTER = {0: b"phone", 1: b"laptop", 2: b"tablet"}
EES = bytes(range(100, 132))


def fresh_epoch() -> EmulationEpoch:
    return open_epoch(CS, EES, 1, 4, LeafIndex(1), ROSTER)


# --- HashInput and the PPRF leaf (Q6, P3) ---------------------------------------------------


def test_hash_input_is_tls_encoded_byte_by_byte() -> None:
    r = bytes(range(32))
    assert hash_input(5, r) == b"\x00\x00\x00\x05" + b"\x20" + r
    assert hash_input(0xA1B2C3D4, b"") == b"\xa1\xb2\xc3\xd4\x00"
    long = b"\x11" * 64  # a 64-byte random has a 2-byte varint length (0x4040)
    assert hash_input(1, long) == b"\x00\x00\x00\x01\x40\x40" + long


def test_pprf_leaf_is_the_first_four_bytes_big_endian() -> None:
    for i in range(20):
        r = hashlib.sha256(b"r" + bytes([i])).digest()
        digest = hashlib.sha256(i.to_bytes(4, "big") + b"\x20" + r).digest()
        assert pprf_leaf(CS, i, r) == int.from_bytes(digest[:4], "big")
    # suite 7 hashes with SHA-384, still the first 4 bytes
    cs7 = get_suite(7)
    r = b"\x05" * 48
    digest = hashlib.sha384(b"\x00\x00\x00\x02\x30" + r).digest()
    assert pprf_leaf(cs7, 2, r) == int.from_bytes(digest[:4], "big")


def test_operation_secret_is_the_pprf_at_that_leaf() -> None:
    ep = fresh_epoch()
    r = b"\x42" * 32
    d = plan_rederivation(CS, ep, 2, r)
    base = ind.derive_secret("sha256", EES, b"Base Secret")
    x = ind.independent_pprf_leaf(CS, 2, r)
    assert d.leaf == x and d.fresh and d.leaf_index == 2 and d.random == r
    assert d.operation_secret == ind.pprf_eval("sha256", base, x, 32)


# --- OperationSecrets (P4, P17) ----------------------------------------------------------------


def test_operation_secrets_are_derive_secret_of_the_operation_secret() -> None:
    op = bytes(range(32))
    s = OperationSecrets.of(CS, op)
    expect = {label: ind.derive_secret("sha256", op, label) for label in (
        b"Signature Key", b"Encryption Key", b"Init Key", b"Path Generation",
        b"External Init")}
    assert s.signature_key_secret == expect[b"Signature Key"]
    assert s.encryption_key_secret == expect[b"Encryption Key"]
    assert s.init_key_secret == expect[b"Init Key"]
    assert s.path_generation_secret == expect[b"Path Generation"]
    assert s.external_init_secret == expect[b"External Init"]
    assert len(set(expect.values())) == 5


def test_two_operations_of_one_epoch_get_different_keys() -> None:
    """P4: not the literal DeriveSecret(epoch_base_secret, ...) of draft-00."""
    ep = fresh_epoch()
    a = plan_rederivation(CS, ep, 0, b"\x01" * 32)
    b = plan_rederivation(CS, ep, 0, b"\x02" * 32)
    ka, kb = (OperationSecrets.of(CS, d.operation_secret) for d in (a, b))
    assert ka.signature_key_secret != kb.signature_key_secret
    assert ka.encryption_key_secret != kb.encryption_key_secret


# --- key pairs (P5, Q12) -----------------------------------------------------------------------

KEMS = {  # suite -> (kem_id, hash, Nsk, curve or None, bitmask)
    1: (0x0020, "sha256", 32, None, 0),
    2: (0x0010, "sha256", 32, ec.SECP256R1(), 0xFF),
    3: (0x0020, "sha256", 32, None, 0),
    4: (0x0021, "sha512", 56, None, 0),
    5: (0x0012, "sha512", 66, ec.SECP521R1(), 0x01),
    6: (0x0021, "sha512", 56, None, 0),
    7: (0x0011, "sha384", 48, ec.SECP384R1(), 0xFF),
}
ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB2"
                     "48B0A77AECEC196ACCC52973", 16),
    "secp521r1": int("01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51"
                     "868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
}


def _point(curve: ec.EllipticCurve, sk: int) -> bytes:
    return ec.derive_private_key(sk, curve).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)


def derive_key_pair(kem_id: int, hash_name: str, nsk: int, curve: ec.EllipticCurve | None,
                    bitmask: int, ikm: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 §7.1.3 DeriveKeyPair, restated."""
    suite_id = b"KEM" + kem_id.to_bytes(2, "big")

    def labeled_expand(prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
        return ind.hkdf_expand(hash_name, prk, n.to_bytes(2, "big") + b"HPKE-v1" + suite_id
                               + label + info, n)

    prk = ind.hkdf_extract(hash_name, b"", b"HPKE-v1" + suite_id + b"dkp_prk" + ikm)
    if curve is None:
        sk = labeled_expand(prk, b"sk", b"", nsk)
        if kem_id == 0x0020:
            pk = x25519.X25519PrivateKey.from_private_bytes(sk).public_key()
        else:
            pk = x448.X448PrivateKey.from_private_bytes(sk).public_key()  # type: ignore[assignment]
        return sk, pk.public_bytes(Encoding.Raw, PublicFormat.Raw)
    for counter in range(256):
        cand = bytearray(labeled_expand(prk, b"candidate", bytes([counter]), nsk))
        cand[0] &= bitmask
        n = int.from_bytes(cand, "big")
        if 0 < n < ORDERS[curve.name]:
            return bytes(cand), _point(curve, n)
    raise AssertionError("no candidate")  # pragma: no cover


def signature_pair(suite: int, secret: bytes) -> tuple[bytes, bytes]:
    """P5/Q12: EdDSA seed prefix, ECDSA via the curve's DHKEM."""
    if suite in (1, 3):
        sk = secret[:32]
        return sk, ed25519.Ed25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
    if suite in (4, 6):
        sk = secret[:57]
        return sk, ed448.Ed448PrivateKey.from_private_bytes(sk).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
    return derive_key_pair(*KEMS[suite], secret)


@pytest.mark.parametrize("suite", range(1, 8))
def test_key_pairs_follow_p5_for_every_suite(suite: int) -> None:
    gcs = get_suite(suite)
    hash_name = KEMS[suite][1]
    op = hashlib.new(hash_name, b"operation").digest()
    secrets = OperationSecrets.of(gcs, op)  # an emulation group of the same KDF (Q3)
    keys = OperationKeys.of(gcs, secrets)
    assert keys.encryption == derive_key_pair(*KEMS[suite], secrets.encryption_key_secret)
    assert keys.init == derive_key_pair(*KEMS[suite], secrets.init_key_secret)
    assert keys.signature == signature_pair(suite, secrets.signature_key_secret)
    assert keys.path_secret == secrets.path_generation_secret
    assert keys.external_init_seed == secrets.external_init_secret
    assert keys.leaf_node_secret == secrets.encryption_key_secret  # P8
    # the signature key signs and verifies with the suite's scheme
    sig = gcs.signature.sign(keys.signature[0], b"m")
    assert gcs.signature.verify(keys.signature[1], b"m", sig)


@pytest.mark.parametrize("suite", [1, 2, 3])
def test_operation_keys_for_higher_groups_of_the_emulation_kdf(suite: int) -> None:
    ep = fresh_epoch()
    d = plan_rederivation(CS, ep, 0, b"\x07" * 32)
    secrets = OperationSecrets.of(CS, d.operation_secret)
    keys = operation_keys(CS, get_suite(suite), d)
    assert keys.encryption == derive_key_pair(*KEMS[suite], secrets.encryption_key_secret)
    assert keys.signature == signature_pair(suite, secrets.signature_key_secret)


@pytest.mark.parametrize("suite", [4, 5, 6, 7])
def test_operation_keys_for_another_kdf_fire_vc_suite_kdf(suite: int) -> None:
    d = plan_rederivation(CS, fresh_epoch(), 0, b"\x07" * 32)
    with pytest.raises(ValidationError) as err:
        operation_keys(CS, get_suite(suite), d)
    assert err.value.check_id == "VC-SUITE-KDF"


# --- two-phase derivation, resampling, Q7 ---------------------------------------------------


def test_plan_changes_nothing_commit_punctures_and_retains() -> None:
    ep = fresh_epoch()
    assert ep.pprf is not None
    state = ep.pprf.serialize()
    d = plan_rederivation(CS, ep, 0, b"\x01" * 32)
    assert ep.pprf.serialize() == state and ep.retained == {}
    commit_derivation(d)
    assert ep.pprf.is_punctured(d.leaf) and ep.pprf.serialize() != state
    kept = ep.retained[d.leaf]
    assert (kept.leaf_index, kept.random, kept.operation_secret) == (
        0, b"\x01" * 32, d.operation_secret)
    # Q7: served again for the same (leaf_index, random), from the entry
    again = plan_rederivation(CS, ep, 0, b"\x01" * 32)
    assert not again.fresh and again.operation_secret == d.operation_secret
    punctured = ep.pprf.serialize()
    commit_derivation(again)  # no-op
    assert ep.pprf.serialize() == punctured


def test_q7_another_request_for_a_punctured_leaf_is_a_collision() -> None:
    ep = fresh_epoch()
    ra, rb = colliding_randoms(0, 2)
    commit_derivation(plan_rederivation(CS, ep, 0, ra))
    with pytest.raises(ValidationError) as err:
        plan_rederivation(CS, ep, 2, rb)
    assert err.value.check_id == "VC-PPRF-COLLISION"
    # the same random under another leaf index lands elsewhere: no collision
    other = plan_rederivation(CS, ep, 1, ra)
    assert other.fresh and other.leaf != pprf_leaf(CS, 0, ra)


def test_receiver_checks_random_length_sender_and_deleted_epoch() -> None:
    ep = fresh_epoch()
    for bad in (b"", b"\x01" * 31, b"\x01" * 33, b"\x01" * 64):
        with pytest.raises(ValidationError) as err:
            plan_rederivation(CS, ep, 0, bad)
        assert err.value.check_id == "VC-RANDOM-LENGTH"
    with pytest.raises(ValidationError) as err:
        plan_rederivation(CS, ep, 3, b"\x01" * 32)
    assert err.value.check_id == "VC-SENDER-NOT-EMULATOR"
    ep.drop_derivation_secrets()
    with pytest.raises(ValidationError) as err:
        plan_rederivation(CS, ep, 0, b"\x01" * 32)
    assert err.value.check_id == "VC-EPOCH-DELETED"
    with pytest.raises(StateError):
        plan_derivation(CS, ep, SeededRandom(b"x"))


def test_deriver_resamples_when_its_leaf_is_punctured() -> None:
    ep = fresh_epoch()  # own leaf 1
    r1, r2 = b"\x0a" * 32, b"\x0b" * 32
    first = plan_derivation(CS, ep, ScriptedRandom(SeededRandom(b"-"), [r1]))
    assert first.resamples == 0 and first.random == r1 and first.leaf_index == 1
    commit_derivation(first)
    rng = ScriptedRandom(SeededRandom(b"-"), [r1, r1, r1, r2])
    second = plan_derivation(CS, ep, rng)
    assert second.resamples == 3 and second.random == r2 and not rng.script
    assert second.leaf == ind.independent_pprf_leaf(CS, 1, r2)


def test_deriver_gives_up_after_max_resamples() -> None:
    ep = fresh_epoch()
    r = b"\x0c" * 32
    commit_derivation(plan_derivation(CS, ep, ScriptedRandom(SeededRandom(b"-"), [r])))
    with pytest.raises(StateError):
        plan_derivation(CS, ep, lambda n: r)
    assert MAX_RESAMPLES == 64


def test_random_source_of_the_wrong_length_is_a_state_error() -> None:
    with pytest.raises(StateError):
        plan_derivation(CS, fresh_epoch(), lambda n: b"\x01" * (n - 1))
