"""The DerivationInfoComponent (draft-00 §5.3; profile P6, P7, Q1, Q2, Q11): exact bytes,
and the ciphertext opened with the `cryptography` AEADs under a key and nonce restated
from RFC 9420 §8."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, ValidationError
from mlsvc.ext.components import AppDataDictionary
from mlsvc.messages.extensions import Extension
from mlsvc.vc import derivation as dinfo
from tests.unit import vc_helpers as ind
from tests.unit.vc_helpers import CS, world

EPOCH_ID = bytes(range(32))
EPOCH_KEY = bytes(range(32, 64))
ENC_KEY = bytes(range(64, 96))  # an X25519 public key's 32 bytes
RANDOM = b"\xab" * 32


def test_epoch_info_tbe_and_component_bytes() -> None:
    tbe = dinfo.EpochInfoTBE(0x01020304, RANDOM)
    assert tbe.encode() == b"\x01\x02\x03\x04" + b"\x20" + RANDOM
    assert dinfo.EpochInfoTBE.decode(tbe.encode()) == tbe
    comp = dinfo.DerivationInfoComponent(EPOCH_ID, b"\x99" * 70)
    assert comp.encode() == b"\x20" + EPOCH_ID + b"\x40\x46" + b"\x99" * 70
    assert dinfo.DerivationInfoComponent.decode(comp.encode()) == comp
    with pytest.raises(DecodeError):
        dinfo.DerivationInfoComponent.decode(comp.encode() + b"\x00")


@pytest.mark.parametrize(("suite", "aead"), [(1, AESGCM), (3, ChaCha20Poly1305)])
def test_ciphertext_opens_under_the_p6_key_and_nonce(suite: int, aead: type) -> None:
    cs = get_suite(suite)
    comp = dinfo.seal(cs, EPOCH_ID, EPOCH_KEY, ENC_KEY, dinfo.EpochInfoTBE(2, RANDOM))
    assert comp.epoch_id == EPOCH_ID
    context = b"\x20" + ENC_KEY  # Q1: the serialized HPKEPublicKey, length prefix included
    nk = 16 if suite == 1 else 32
    key = ind.expand_with_label("sha256", EPOCH_KEY, b"key", context, nk)
    nonce = ind.expand_with_label("sha256", EPOCH_KEY, b"nonce", context, 12)
    plain = aead(key).decrypt(nonce, comp.ciphertext, EPOCH_ID)  # Q2: raw epoch_id as AAD
    assert plain == b"\x00\x00\x00\x02\x20" + RANDOM
    # the key without the length prefix (a plausible misreading of Q1) does not open it
    wrong = ind.expand_with_label("sha256", EPOCH_KEY, b"key", ENC_KEY, nk)
    wrong_nonce = ind.expand_with_label("sha256", EPOCH_KEY, b"nonce", ENC_KEY, 12)
    with pytest.raises(InvalidTag):
        aead(wrong).decrypt(wrong_nonce, comp.ciphertext, EPOCH_ID)
    # an AAD with a length prefix (against Q2) does not open it either
    with pytest.raises(InvalidTag):
        aead(key).decrypt(nonce, comp.ciphertext, b"\x20" + EPOCH_ID)
    assert dinfo.open_info(cs, comp, EPOCH_KEY, ENC_KEY) == dinfo.EpochInfoTBE(2, RANDOM)


@pytest.mark.parametrize("tamper", ["epoch-key", "encryption-key", "epoch-id", "ciphertext"])
def test_open_info_refuses_every_mismatch(tamper: str) -> None:
    comp = dinfo.seal(CS, EPOCH_ID, EPOCH_KEY, ENC_KEY, dinfo.EpochInfoTBE(2, RANDOM))
    epoch_key, enc = EPOCH_KEY, ENC_KEY
    if tamper == "epoch-key":
        epoch_key = b"\x00" * 32
    elif tamper == "encryption-key":
        enc = b"\x01" + ENC_KEY[1:]
    elif tamper == "epoch-id":
        comp = dinfo.DerivationInfoComponent(b"\x00" * 32, comp.ciphertext)
    else:
        comp = dinfo.DerivationInfoComponent(EPOCH_ID, comp.ciphertext[:-1] + b"\x00")
    with pytest.raises(ValidationError) as err:
        dinfo.open_info(CS, comp, epoch_key, enc)
    assert err.value.check_id == "VC-DERIVATION-INFO"


def test_a_plaintext_that_is_not_an_epoch_info_tbe_is_refused() -> None:
    context = b"\x20" + ENC_KEY
    key = ind.expand_with_label("sha256", EPOCH_KEY, b"key", context, 16)
    nonce = ind.expand_with_label("sha256", EPOCH_KEY, b"nonce", context, 12)
    for plain in (b"\x00\x00\x00\x02\x20" + RANDOM + b"\x00", b"\x00\x00"):
        comp = dinfo.DerivationInfoComponent(EPOCH_ID, AESGCM(key).encrypt(nonce, plain,
                                                                           EPOCH_ID))
        with pytest.raises(ValidationError) as err:
            dinfo.open_info(CS, comp, EPOCH_KEY, ENC_KEY)
        assert err.value.check_id == "VC-DERIVATION-INFO"


def test_component_sits_in_the_app_data_dictionary_under_0x8001() -> None:
    comp = dinfo.DerivationInfoComponent(EPOCH_ID, b"\x01\x02")
    ext = dinfo.leaf_extension(comp)
    assert ext.extension_type == 0x0006
    # AppDataDictionary { ComponentData { uint16 id; opaque data<V> } <V> }
    entry = b"\x80\x01" + ind.opaque(comp.encode())
    assert ext.extension_data == ind.opaque(entry)
    assert dinfo.find_in_extensions((ext,)) == comp
    assert dinfo.find_in_extensions(()) is None
    other = AppDataDictionary.of({0x0002: b"x"})
    assert dinfo.find_in_extensions((other.to_extension(),)) is None
    both = dinfo.leaf_extension(comp, other)
    assert AppDataDictionary.decode(both.extension_data).component_ids() == (0x0002, 0x8001)
    with pytest.raises(DecodeError):
        dinfo.find_in_extensions((Extension(0x0006, ind.opaque(b"\x80\x01\x03abc")),))


def test_virtual_client_leaf_nodes_carry_a_derivation_info_siblings_can_open() -> None:
    """Q11: in the LeafNode of the virtual client in a real group, signed with it; it
    names the emulation epoch and decrypts to the deriver's leaf and a Kdf.Nh random."""
    w = world()
    assert w.vc.commit("tablet", b"g1").accepted
    w.vc.sync()
    phone, tablet = w.em("phone"), w.em("tablet")
    g = phone.groups[b"g1"].group
    leaf = g.tree.leaf(g.own_leaf)
    assert leaf is not None
    comp = dinfo.find_in_leaf(leaf)
    assert comp is not None
    ep = phone.epochs.by_id(comp.epoch_id)
    assert ep.encryption_key is not None
    context = ind.opaque(leaf.encryption_key)
    key = ind.expand_with_label("sha256", ep.encryption_key, b"key", context, 16)
    nonce = ind.expand_with_label("sha256", ep.encryption_key, b"nonce", context, 12)
    plain = AESGCM(key).decrypt(nonce, comp.ciphertext, comp.epoch_id)
    assert plain[:4] == int(tablet.epochs.latest.own_leaf).to_bytes(4, "big")
    assert plain[4] == 32 and len(plain) == 5 + 32
    assert comp.epoch_id == tablet.epochs.latest.epoch_id
