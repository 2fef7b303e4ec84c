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

from dataclasses import dataclass, field
from typing import Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer, decode_exact
from mlsvc.crypto.labels import expand_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import CryptoError, DecodeError, ParameterError
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS, CodePoints
from mlsvc.ext.components import AppDataDictionary
from mlsvc.messages.codepoints import LeafNodeSource
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


# --- the later text (profile "latest", latest §5.3) ---------------------------------------


@dataclass(frozen=True, slots=True)
class DerivationInfoTBE:
    """latest §5.3 (profile "latest"; draft-00's is `EpochInfoTBE`):

    ~~~ tls
    struct { opaque init_secret<V>; } ExternalInitSecret;
    struct {
      uint32 leaf_index;
      uint32 generation;
      select (LeafNode.leaf_node_source) {
        case key_package: uint32 key_package_index;
        case update:      struct{};
        case commit:      optional<ExternalInitSecret> external_init_secret;
      };
    } DerivationInfoTBE;
    ~~~

    The selector is the leaf_node_source of the LeafNode carrying the DerivationInfo,
    so decoding needs it (`decode_for`). The outer struct, DerivationInfo {epoch_id,
    ciphertext}, has the layout of draft-00's DerivationInfoComponent (that class is
    reused), and the AEAD key and nonce are P6's formula, which the later text adopts:
    `seal_tbe` / `open_tbe`."""

    leaf_index: int
    generation: int
    leaf_node_source: LeafNodeSource
    key_package_index: int | None = None  # key_package only
    external_init_secret: bytes | None = field(default=None, repr=False)  # commit only

    def __post_init__(self) -> None:
        source = self.leaf_node_source
        if source not in (LeafNodeSource.KEY_PACKAGE, LeafNodeSource.UPDATE,
                          LeafNodeSource.COMMIT):
            raise ParameterError(f"leaf_node_source {source!r} is not key_package, update "
                                 "or commit")
        for name, value in (("leaf_index", self.leaf_index),
                            ("generation", self.generation)):
            if not 0 <= value <= 0xFFFF_FFFF:
                raise ParameterError(f"{name} {value} is not a uint32")
        if (self.key_package_index is None) != (source is not LeafNodeSource.KEY_PACKAGE):
            raise ParameterError("key_package_index is present exactly for a key_package "
                                 "LeafNode (latest §5.3)")
        if self.key_package_index is not None and not 0 <= self.key_package_index <= 0xFFFF_FFFF:
            raise ParameterError(f"key_package_index {self.key_package_index} is not a uint32")
        if self.external_init_secret is not None and source is not LeafNodeSource.COMMIT:
            raise ParameterError("external_init_secret belongs to a commit LeafNode only "
                                 "(latest §5.3)")

    def encode(self) -> bytes:
        w = Writer()
        w.u32(self.leaf_index)
        w.u32(self.generation)
        if self.leaf_node_source is LeafNodeSource.KEY_PACKAGE:
            assert self.key_package_index is not None
            w.u32(self.key_package_index)
        elif self.leaf_node_source is LeafNodeSource.COMMIT:
            w.optional_with(self.external_init_secret, lambda w2, s: w2.opaque(s))
        return w.bytes()

    @classmethod
    def decode_for(cls, data: bytes, leaf_node_source: LeafNodeSource) -> DerivationInfoTBE:
        """Parse for a LeafNode of `leaf_node_source`, every byte consumed; DecodeError
        otherwise."""
        def read(r: Reader) -> DerivationInfoTBE:
            leaf_index, generation = r.u32(), r.u32()
            kp_index: int | None = None
            init: bytes | None = None
            if leaf_node_source is LeafNodeSource.KEY_PACKAGE:
                kp_index = r.u32()
            elif leaf_node_source is LeafNodeSource.COMMIT:
                init = r.optional(lambda r2: r2.opaque())
            elif leaf_node_source is not LeafNodeSource.UPDATE:
                raise DecodeError(f"leaf_node_source {leaf_node_source!r} carries no "
                                  "DerivationInfoTBE")
            return cls(leaf_index, generation, leaf_node_source, kp_index, init)

        return decode_exact(data, read)


def seal_tbe(cs: CipherSuite, epoch_id: bytes, epoch_encryption_key: bytes,
             encryption_key: bytes, info: DerivationInfoTBE) -> DerivationInfoComponent:
    """latest §5.3: DerivationInfo{epoch_id, ciphertext}, the serialized
    DerivationInfoTBE under derivation_info_key / derivation_info_nonce (the LeafNode's
    serialized encryption_key as context) with epoch_id as AAD, the emulation group's
    AEAD."""
    key, nonce = _key_nonce(cs, epoch_encryption_key, encryption_key)
    return DerivationInfoComponent(epoch_id, cs.aead.seal(key, nonce, epoch_id,
                                                          info.encode()))


def open_tbe(cs: CipherSuite, component: DerivationInfoComponent, epoch_encryption_key: bytes,
             leaf: LeafNode) -> DerivationInfoTBE:
    """latest §5.3: decrypt the DerivationInfo of `leaf` and parse it by the leaf's
    leaf_node_source; VC-DERIVATION-INFO when it does not decrypt or parse."""
    key, nonce = _key_nonce(cs, epoch_encryption_key, leaf.encryption_key)
    try:
        plain = cs.aead.open(key, nonce, component.epoch_id, component.ciphertext)
        return DerivationInfoTBE.decode_for(plain, LeafNodeSource(leaf.leaf_node_source))
    except (CryptoError, DecodeError, ParameterError, ValueError) as exc:
        fail("VC-DERIVATION-INFO", f"DerivationInfo does not decrypt under the epoch's "
                                   f"key or does not parse: {exc}")
