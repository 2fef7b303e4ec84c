"""Welcome and the group secrets it carries (RFC 9420 §12.4.3.1).

The HPKE encryption of GroupSecrets (EncryptWithLabel "Welcome") and the AEAD
encryption of the GroupInfo are the group engine's; these are the wire structs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.messages.codepoints import WireFormat
from mlsvc.messages.commit import HPKECiphertext
from mlsvc.messages.proposals import PreSharedKeyID


@dataclass(frozen=True, slots=True)
class PathSecret(Struct):
    """RFC 9420 §12.4.3.1: struct { opaque path_secret<V>; } PathSecret;"""

    path_secret: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class GroupSecrets(Struct):
    """RFC 9420 §12.4.3.1:
    struct { opaque joiner_secret<V>; optional<PathSecret> path_secret;
             PreSharedKeyID psks<V>; } GroupSecrets;"""

    joiner_secret: bytes
    path_secret: PathSecret | None
    psks: tuple[PreSharedKeyID, ...]

    def write(self, w: Writer) -> None:
        w.opaque(self.joiner_secret)
        w.optional(self.path_secret)
        w.structs(self.psks)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(
            r.opaque(), r.optional(PathSecret.read), tuple(r.vector(PreSharedKeyID.read))
        )


@dataclass(frozen=True, slots=True)
class EncryptedGroupSecrets(Struct):
    """RFC 9420 §12.4.3.1:
    struct { KeyPackageRef new_member; HPKECiphertext encrypted_group_secrets; }
    EncryptedGroupSecrets;"""

    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def write(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), HPKECiphertext.read(r))


@dataclass(frozen=True, slots=True)
class Welcome(Struct):
    """RFC 9420 §12.4.3.1:
    struct { CipherSuite cipher_suite; EncryptedGroupSecrets secrets<V>;
             opaque encrypted_group_info<V>; } Welcome;"""

    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes
    WIRE_FORMAT: ClassVar[int] = WireFormat.MLS_WELCOME

    def write(self, w: Writer) -> None:
        w.u16(self.cipher_suite)
        w.structs(self.secrets)
        w.opaque(self.encrypted_group_info)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), tuple(r.vector(EncryptedGroupSecrets.read)), r.opaque())

    def find_secrets(self, key_package_ref: bytes) -> EncryptedGroupSecrets | None:
        """The entry whose `new_member` is this KeyPackageRef, or None (§12.4.3.1)."""
        for entry in self.secrets:
            if entry.new_member == key_package_ref:
                return entry
        return None
