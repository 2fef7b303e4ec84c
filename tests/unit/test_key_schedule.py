"""Key schedule pieces (RFC 9420 §8, §8.3-§8.5, §6.1-§6.3.2, §8.2) beyond what the
official runners cover: the Welcome path, the external-init HPKE export (known
answers of RFC 9180 A.1.1), tag verification, PSK encodings, transcript splitting."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from mlsvc.codec import Writer
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import CryptoError, ParameterError
from mlsvc.messages.proposals import PreSharedKeyID
from mlsvc.schedule import key_schedule as ks
from mlsvc.schedule import psk as psk_mod
from mlsvc.schedule import transcript as tr
from tests.conftest import VECTORS

CS = get_suite(1)


def _load(name: str) -> list[dict[str, Any]]:
    with (VECTORS / "rfc9420" / name).open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


KS = _load("key-schedule.json")


def _h(s: str) -> bytes:
    return bytes.fromhex(s)


# -- §8 epochs ------------------------------------------------------------------------


@pytest.mark.parametrize("case", KS, ids=lambda c: f"suite{c['cipher_suite']}")
def test_welcome_path_from_joiner_secret(case: dict[str, Any]) -> None:
    """A joiner holding joiner_secret (§12.4.3.1) reaches the same epoch secrets."""
    cs = get_suite(case["cipher_suite"])
    e = case["epochs"][2]
    gc = _h(e["group_context"])
    secrets = ks.epoch_from_joiner(cs, _h(e["joiner_secret"]), _h(e["psk_secret"]), gc)
    assert ks.welcome_secret(cs, _h(e["joiner_secret"]), _h(e["psk_secret"])) == _h(
        e["welcome_secret"]
    )
    for name in ("welcome_secret", "encryption_secret", "confirmation_key", "init_secret",
                 "epoch_authenticator", "membership_key", "resumption_psk"):
        assert getattr(secrets, name) == _h(e[name]), name


def test_none_means_the_zero_vector() -> None:
    """§8: "0" is the all-zero vector of KDF.Nh bytes (no PSK, Commit without path)."""
    e = KS[3]["epochs"][0]
    cs = get_suite(KS[3]["cipher_suite"])
    init, gc = _h(KS[3]["initial_init_secret"]), _h(e["group_context"])
    zero = bytes(cs.nh)
    assert ks.derive_epoch(cs, init, None, None, gc) == ks.derive_epoch(cs, init, zero, zero, gc)
    assert ks.derive_epoch(cs, init, None, None, gc).joiner_secret != _h(e["joiner_secret"])


def test_secrets_are_distinct_and_frozen() -> None:
    e = KS[0]["epochs"][0]
    s = ks.derive_epoch(CS, _h(KS[0]["initial_init_secret"]), _h(e["commit_secret"]),
                        _h(e["psk_secret"]), _h(e["group_context"]))
    values = [getattr(s, f) for f in s.__slots__]
    assert len(set(values)) == len(values)
    field_name = "init_secret"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, field_name, b"")


def test_exporter_length_bounds() -> None:
    with pytest.raises(ParameterError):
        ks.mls_exporter(CS, bytes(32), b"label", b"", 0)
    with pytest.raises(ParameterError):
        ks.mls_exporter(CS, bytes(32), b"label", b"", 1 << 16)


# -- §8.3 external init (HPKE export, RFC 9180 A.1.1 known answers) -------------------

A11_IKM_E = _h("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234")
A11_SK_R = _h("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
A11_PK_R = _h("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
A11_ENC = _h("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
A11_INFO = _h("4f6465206f6e2061204772656369616e2055726e")
A11_EXPORTS = [
    (b"", _h("3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee")),
    (b"\x00", _h("2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5")),
    (b"TestContext", _h("e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931")),
]


def test_hpke_export_known_answers() -> None:
    for ctx, want in A11_EXPORTS:
        enc, got = CS.hpke.export_sender(A11_PK_R, A11_INFO, ctx, 32, lambda n: A11_IKM_E)
        assert enc == A11_ENC
        assert got == want
        assert CS.hpke.export_receiver(A11_ENC, A11_SK_R, A11_INFO, ctx, 32) == want


@pytest.mark.parametrize("case", KS, ids=lambda c: f"suite{c['cipher_suite']}")
def test_external_init_round_trip(case: dict[str, Any]) -> None:
    cs = get_suite(case["cipher_suite"])
    e = case["epochs"][1]
    priv, pub = ks.external_key_pair(cs, _h(e["external_secret"]))
    assert pub == _h(e["external_pub"])
    seed = bytes(range(cs.kem.nsk))
    kem_output, init_joiner = ks.external_init_for_joiner(cs, pub, lambda n: seed[:n])
    assert len(init_joiner) == cs.nh
    assert ks.external_init_for_member(cs, priv, kem_output) == init_joiner
    other_seed = bytes(reversed(seed))
    kem2, init2 = ks.external_init_for_joiner(cs, pub, lambda n: other_seed[:n])
    assert kem2 != kem_output and init2 != init_joiner


def test_external_init_bad_kem_output() -> None:
    priv, _ = ks.external_key_pair(CS, bytes(32))
    with pytest.raises(CryptoError):
        ks.external_init_for_member(CS, priv, b"\x01\x02")


# -- §6.1 / §6.2 tags -----------------------------------------------------------------


def test_confirmation_tag_vector_and_tamper() -> None:
    case = _load("transcript-hashes.json")[0]
    cs = get_suite(case["cipher_suite"])
    key, cth = _h(case["confirmation_key"]), _h(case["confirmed_transcript_hash_after"])
    tag = _h(case["authenticated_content"])[-cs.nh:]  # the trailing MAC of the Commit
    assert ks.confirmation_tag(cs, key, cth) == tag
    ks.verify_confirmation_tag(cs, key, cth, tag)
    with pytest.raises(CryptoError):
        ks.verify_confirmation_tag(cs, key, cth, tag[:-1] + bytes([tag[-1] ^ 1]))
    with pytest.raises(CryptoError):
        ks.verify_confirmation_tag(cs, key, cth, tag[:-1])


def test_membership_tag_is_hmac() -> None:
    """RFC 4231 test case 2 (HMAC-SHA-256): MAC is the suite's HMAC (§5.1)."""
    data = b"what do ya want for nothing?"
    want = _h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert ks.membership_tag(CS, b"Jefe", data) == want
    ks.verify_membership_tag(CS, b"Jefe", data, want)
    with pytest.raises(CryptoError):
        ks.verify_membership_tag(CS, b"Jefe", data + b"!", want)


# -- §6.3.2 sender data ---------------------------------------------------------------


def test_sender_data_uses_only_the_sample() -> None:
    case = _load("secret-tree.json")[4]
    cs = get_suite(case["cipher_suite"])
    sd = case["sender_data"]
    secret, ct = _h(sd["sender_data_secret"]), _h(sd["ciphertext"])
    want = (_h(sd["key"]), _h(sd["nonce"]))
    assert ks.sender_data_key_nonce(cs, secret, ct) == want
    assert ks.sender_data_key_nonce(cs, secret, ct[: cs.nh]) == want
    assert ks.sender_data_key_nonce(cs, secret, ct[: cs.nh] + b"x" * 9) == want
    short = ks.sender_data_key_nonce(cs, secret, ct[: cs.nh - 1])
    assert short != want and len(short[0]) == cs.aead.nk and len(short[1]) == cs.aead.nn


# -- §8.4 PSK encodings ---------------------------------------------------------------


def test_psk_label_layout() -> None:
    """PSKLabel = PreSharedKeyID || uint16 index || uint16 count (§8.4)."""
    label = psk_mod.encode_psk_label(b"\x01\x00\x00", 1, 3)
    assert label == b"\x01\x00\x00" + b"\x00\x01" + b"\x00\x03"


def test_psk_secret_edges() -> None:
    assert psk_mod.psk_secret(CS, []) == bytes(32)  # §8.4: no PSK -> psk_secret_[0] = 0
    with pytest.raises(ParameterError):
        psk_mod.encode_psk_label(b"", 3, 3)
    with pytest.raises(ParameterError):
        psk_mod.encode_psk_label(b"", 0, 1 << 16)


def test_psk_id_struct_or_bytes_agree() -> None:
    case = next(c for c in _load("psk_secret.json") if len(c["psks"]) == 2)
    cs = get_suite(case["cipher_suite"])
    ids = [PreSharedKeyID.external(_h(p["psk_id"]), _h(p["psk_nonce"])) for p in case["psks"]]
    values = [_h(p["psk"]) for p in case["psks"]]
    want = _h(case["psk_secret"])
    assert psk_mod.psk_secret(cs, list(zip(ids, values, strict=True))) == want
    encoded: list[bytes | PreSharedKeyID] = [i.encode() for i in ids]
    assert psk_mod.psk_secret(cs, list(zip(encoded, values, strict=True))) == want
    # order matters (§8.4: "in the order listed")
    assert psk_mod.psk_secret(cs, list(zip(reversed(ids), reversed(values), strict=True))) != want


# -- §8.2 transcript ------------------------------------------------------------------


def test_transcript_vector_by_parts() -> None:
    case = _load("transcript-hashes.json")[6]
    cs = get_suite(case["cipher_suite"])
    content = _h(case["authenticated_content"])
    w = Writer()
    w.varint(cs.nh)
    cut = len(content) - cs.nh - len(w.bytes())
    confirmed = tr.confirmed_transcript_hash(
        cs, _h(case["interim_transcript_hash_before"]), content[:cut]
    )
    assert confirmed == _h(case["confirmed_transcript_hash_after"])
    interim = tr.interim_transcript_hash(cs, confirmed, content[-cs.nh:])
    assert interim == _h(case["interim_transcript_hash_after"])
