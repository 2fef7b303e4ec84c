"""Virtual client actions (draft-ietf-mls-virtual-clients-00 §5.5; profile P12, P15, P16).

~~~ tls
enum { reserved(0), key_package_upload(1), external_join(2), (255) } ActionType;  (P15)

struct {
  ActionType action_type;
  select (VirtualClientAction.action_type) {
    case key_package_upload: KeyPackageUpload key_package_upload;
    case external_join:      ExternalJoin external_join;
  };
} VirtualClientAction;

struct { KeyPackageRef key_package_ref; opaque random<V>; } KeyPackageInfo   (P12: one ref)
struct { opaque epoch_id<V>; KeyPackageInfo key_package_info<V>; } KeyPackageUpload
struct { opaque group_id<V>; } ExternalJoin
~~~

The action travels as the SafeAAD item of component 0x8002 (P7) in the
authenticated_data of the emulation-group Commit that precedes it (§5.5). P16: the
KeyPackages a KeyPackageUpload names are derived from the epoch the Commit is sent in
(k - 1 when the Commit opens epoch k), and their LeafNodes carry the leaf index of the
deriver in that epoch (EpochInfoTBE.leaf_index is the KeyPackageInfo's implicit sender).
KeyPackageRef is `opaque<V>` (RFC 9420 §5.2 MLSMessage HashReference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from mlsvc.codec import Reader, Struct, Writer, decode_exact
from mlsvc.errors import DecodeError
from mlsvc.vc.codepoints import ActionType


@dataclass(frozen=True, slots=True)
class KeyPackageInfo(Struct):
    key_package_ref: bytes
    random: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.key_package_ref)
        w.opaque(self.random)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class KeyPackageUpload(Struct):
    epoch_id: bytes
    key_package_info: tuple[KeyPackageInfo, ...]

    def write(self, w: Writer) -> None:
        w.opaque(self.epoch_id)
        w.vector(list(self.key_package_info), lambda w2, i: i.write(w2))

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(KeyPackageInfo.read)))


@dataclass(frozen=True, slots=True)
class ExternalJoin(Struct):
    group_id: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class LatestKeyPackageInfo(Struct):
    """latest §5.5.1: struct { KeyPackageRef key_package_ref; uint32 key_package_index; }
    KeyPackageInfo (the later text's; draft-00's carries `random`)."""

    key_package_ref: bytes
    key_package_index: int

    def write(self, w: Writer) -> None:
        w.opaque(self.key_package_ref)
        w.u32(self.key_package_index)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u32())


@dataclass(frozen=True, slots=True)
class LatestKeyPackageUpload(Struct):
    """latest §5.5.1: struct { opaque epoch_id<V>; uint32 leaf_index; uint32 generation;
    KeyPackageInfo key_package_info<V>; } KeyPackageUpload: one key_package generation
    (the batch) of the emulator at `leaf_index`, one KeyPackage per key_package_index
    (unique within the upload: `duplicate_indices`)."""

    epoch_id: bytes
    leaf_index: int
    generation: int
    key_package_info: tuple[LatestKeyPackageInfo, ...]

    def write(self, w: Writer) -> None:
        w.opaque(self.epoch_id)
        w.u32(self.leaf_index)
        w.u32(self.generation)
        w.vector(list(self.key_package_info), lambda w2, i: i.write(w2))

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u32(), r.u32(), tuple(r.vector(LatestKeyPackageInfo.read)))

    @property
    def duplicate_indices(self) -> bool:
        """latest §5.5.1: "MUST verify that the key_package_index values are unique
        within the upload and MUST reject the upload otherwise"."""
        indices = [i.key_package_index for i in self.key_package_info]
        return len(set(indices)) != len(indices)


@dataclass(frozen=True, slots=True)
class VirtualClientAction(Struct):
    body: KeyPackageUpload | ExternalJoin | LatestKeyPackageUpload

    @property
    def action_type(self) -> ActionType:
        return (ActionType.EXTERNAL_JOIN if isinstance(self.body, ExternalJoin)
                else ActionType.KEY_PACKAGE_UPLOAD)

    @classmethod
    def decode_latest(cls, data: bytes) -> VirtualClientAction:
        """latest §5.5: the later text's VirtualClientAction, whose only action is
        key_package_upload(1) carrying its KeyPackageUpload; DecodeError for any other
        type (external_join(2) is draft-00's) or bytes left over."""
        def read(r: Reader) -> VirtualClientAction:
            t = r.u8()
            if t != ActionType.KEY_PACKAGE_UPLOAD:
                raise DecodeError(f"ActionType {t} is not defined by the later text (latest "
                                  "§5.5: key_package_upload(1) only)")
            return cls(LatestKeyPackageUpload.read(r))

        return decode_exact(data, read)

    def write(self, w: Writer) -> None:
        w.u8(int(self.action_type))
        self.body.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        t = r.u8()
        if t == ActionType.KEY_PACKAGE_UPLOAD:
            return cls(KeyPackageUpload.read(r))
        if t == ActionType.EXTERNAL_JOIN:
            return cls(ExternalJoin.read(r))
        raise DecodeError(f"unknown ActionType {t} (§5.5)")
