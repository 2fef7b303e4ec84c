"""The DerivationInfoComponent of a virtual client's LeafNode
(draft-ietf-mls-virtual-clients-00 §5.3; profile P6, P7, Q1, Q2, Q11).

~~~ tls
struct { opaque epoch_id<V>; opaque ciphertext<V>; } DerivationInfoComponent
struct { uint32 leaf_index; opaque random<V>; } EpochInfoTBE
~~~

`ciphertext` is EpochInfoTBE encrypted with the emulation group's AEAD (Q3) under

    key   = ExpandWithLabel(epoch_encryption_key, "key",   encryption_key, AEAD.Nk)  (P6)
    nonce = ExpandWithLabel(epoch_encryption_key, "nonce", encryption_key, AEAD.Nn)

where encryption_key is the TLS serialization of the LeafNode's `encryption_key` field
(HPKEPublicKey, opaque<V> with its length prefix; Q1) and the AAD is the raw epoch_id
(Q2). The component is the data of the ComponentData with id 0x8001 (P7) in the
LeafNode's app_data_dictionary extension, so the LeafNode signature covers it (Q11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer
from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import CryptoError, DecodeError
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS, CodePoints
from mlsvc.ext.components import AppDataDictionary
from mlsvc.messages.extensions import Extension, Extensions
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.vc.codepoints import (
    DEFAULT_VC_CODEPOINTS,
    DERIVATION_INFO_KEY_LABEL,
    DERIVATION_INFO_NONCE_LABEL,
    VCCodePoints,
)


@dataclass(frozen=True, slots=True)
class EpochInfoTBE(Struct):
    """§5.3: struct { uint32 leaf_index; opaque random<V>; } EpochInfoTBE"""

    leaf_index: int
    random: bytes

    def write(self, w: Writer) -> None:
        w.u32(self.leaf_index)
        w.opaque(self.random)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u32(), r.opaque())


@dataclass(frozen=True, slots=True)
class DerivationInfoComponent(Struct):
    """§5.3: struct { opaque epoch_id<V>; opaque ciphertext<V>; } DerivationInfoComponent"""

    epoch_id: bytes
    ciphertext: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.epoch_id)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


def _key_nonce(cs: CipherSuite, epoch_encryption_key: bytes, encryption_key: bytes
               ) -> tuple[bytes, bytes]:
    """P6/Q1: the AEAD key and nonce, with the serialized HPKEPublicKey as context."""
    w = Writer()
    w.opaque(encryption_key)
    context = w.bytes()
    key = expand_with_label(cs, epoch_encryption_key, DERIVATION_INFO_KEY_LABEL, context,
                            cs.aead.nk)
    nonce = expand_with_label(cs, epoch_encryption_key, DERIVATION_INFO_NONCE_LABEL, context,
                              cs.aead.nn)
    return key, nonce


def seal(cs: CipherSuite, epoch_id: bytes, epoch_encryption_key: bytes,
         encryption_key: bytes, info: EpochInfoTBE) -> DerivationInfoComponent:
    """The component for a LeafNode whose encryption_key is `encryption_key` (the
    emulation group's suite `cs`)."""
    key, nonce = _key_nonce(cs, epoch_encryption_key, encryption_key)
    return DerivationInfoComponent(epoch_id, cs.aead.seal(key, nonce, epoch_id,
                                                          info.encode()))


def open_info(cs: CipherSuite, component: DerivationInfoComponent, epoch_encryption_key: bytes,
              encryption_key: bytes) -> EpochInfoTBE:
    """Decrypt and parse; VC-DERIVATION-INFO when it does not decrypt or parse."""
    key, nonce = _key_nonce(cs, epoch_encryption_key, encryption_key)
    try:
        plain = cs.aead.open(key, nonce, component.epoch_id, component.ciphertext)
        return EpochInfoTBE.decode(plain)
    except (CryptoError, DecodeError) as exc:
        fail("VC-DERIVATION-INFO", f"DerivationInfo does not decrypt under the epoch's "
                                   f"key: {exc}")


def leaf_extension(component: DerivationInfoComponent, other: AppDataDictionary | None = None,
                   cp: CodePoints = DEFAULT_CODEPOINTS,
                   vcp: VCCodePoints = DEFAULT_VC_CODEPOINTS) -> Extension:
    """Q11: the LeafNode's app_data_dictionary with the component under 0x8001."""
    base = other or AppDataDictionary(())
    return base.with_entry(vcp.derivation_info, component.encode()).to_extension(cp)


def find_in_leaf(leaf: LeafNode, cp: CodePoints = DEFAULT_CODEPOINTS,
                 vcp: VCCodePoints = DEFAULT_VC_CODEPOINTS) -> DerivationInfoComponent | None:
    """The DerivationInfoComponent a LeafNode carries, None when it has none (a leaf not
    made by a virtual client). DecodeError when malformed."""
    return find_in_extensions(leaf.extensions, cp, vcp)


def find_in_extensions(extensions: Extensions, cp: CodePoints = DEFAULT_CODEPOINTS,
                       vcp: VCCodePoints = DEFAULT_VC_CODEPOINTS
                       ) -> DerivationInfoComponent | None:
    d = AppDataDictionary.find_in(extensions, cp)
    data = None if d is None else d.get(vcp.derivation_info)
    return None if data is None else DerivationInfoComponent.decode(data)
