"""GroupContext (RFC 9420 §8.1) and GroupInfo (§12.4.3) with its GroupInfoTBS encoding.

GroupContext's `version` is fixed (`ProtocolVersion version = mls10;`): it is not a
field here, it is written as mls10 and any other value is a DecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.crypto.labels import sign_with_label, verify_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import DecodeError
from mlsvc.messages.codepoints import ProtocolVersion, WireFormat
from mlsvc.messages.extensions import Extensions, read_extensions, write_extensions
from mlsvc.types import LeafIndex

GROUP_INFO_TBS_LABEL = b"GroupInfoTBS"  # RFC 9420 §12.4.3, §17.6


def read_mls10(r: Reader, where: str) -> None:
    """A `ProtocolVersion version = mls10` field (§6, §8.1): anything else is malformed."""
    version = r.u16()
    if version != ProtocolVersion.MLS10:
        raise DecodeError(f"{where}: protocol version {version} is not mls10")


@dataclass(frozen=True, slots=True)
class GroupContext(Struct):
    """RFC 9420 §8.1:
    struct {
        ProtocolVersion version = mls10;
        CipherSuite cipher_suite;
        opaque group_id<V>;
        uint64 epoch;
        opaque tree_hash<V>;
        opaque confirmed_transcript_hash<V>;
        Extension extensions<V>;
    } GroupContext;"""

    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: Extensions

    @property
    def version(self) -> ProtocolVersion:
        return ProtocolVersion.MLS10

    def write(self, w: Writer) -> None:
        w.u16(ProtocolVersion.MLS10)
        w.u16(self.cipher_suite)
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.opaque(self.tree_hash)
        w.opaque(self.confirmed_transcript_hash)
        write_extensions(w, self.extensions)

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_mls10(r, "GroupContext")
        return cls(
            r.u16(), r.opaque(), r.u64(), r.opaque(), r.opaque(), read_extensions(r)
        )


@dataclass(frozen=True, slots=True)
class GroupInfo(Struct):
    """RFC 9420 §12.4.3:
    struct {
        GroupContext group_context;
        Extension extensions<V>;
        MAC confirmation_tag;
        uint32 signer;
        /* SignWithLabel(., "GroupInfoTBS", GroupInfoTBS) */
        opaque signature<V>;
    } GroupInfo;"""

    group_context: GroupContext
    extensions: Extensions
    confirmation_tag: bytes
    signer: LeafIndex
    signature: bytes = b""
    WIRE_FORMAT: ClassVar[int] = WireFormat.MLS_GROUP_INFO

    def _write_content(self, w: Writer) -> None:
        self.group_context.write(w)
        write_extensions(w, self.extensions)
        w.opaque(self.confirmation_tag)
        w.u32(self.signer)

    def write(self, w: Writer) -> None:
        self._write_content(w)
        w.opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(
            GroupContext.read(r), read_extensions(r), r.opaque(), LeafIndex(r.u32()), r.opaque()
        )

    def tbs(self) -> bytes:
        """GroupInfoTBS (§12.4.3): group_context, extensions, confirmation_tag, signer."""
        w = Writer()
        self._write_content(w)
        return bytes(w.buf)

    def signed(self, cs: CipherSuite, signature_private_key: bytes) -> GroupInfo:
        """A copy signed with SignWithLabel(sk, "GroupInfoTBS", GroupInfoTBS)."""
        sig = sign_with_label(cs, signature_private_key, GROUP_INFO_TBS_LABEL, self.tbs())
        return GroupInfo(
            self.group_context, self.extensions, self.confirmation_tag, self.signer, sig
        )

    def verify(self, cs: CipherSuite, signer_signature_key: bytes) -> bool:
        """VerifyWithLabel with the key of leaf `signer` (the caller looks it up)."""
        return verify_with_label(
            cs, signer_signature_key, GROUP_INFO_TBS_LABEL, self.tbs(), self.signature
        )
