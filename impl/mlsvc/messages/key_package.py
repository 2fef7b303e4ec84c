"""KeyPackage (RFC 9420 §10) with its KeyPackageTBS encoding, signature and reference.

`version` and `cipher_suite` are carried as integers: an unsupported value makes the
KeyPackage unusable (validation, §10.1), not unparseable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from mlsvc.codec import Reader, Struct, Writer, write_memoized
from mlsvc.crypto.labels import make_key_package_ref, sign_with_label, verify_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.messages.codepoints import WireFormat
from mlsvc.messages.extensions import Extensions, read_extensions, write_extensions
from mlsvc.messages.leaf_node import LeafNode

KEY_PACKAGE_TBS_LABEL = b"KeyPackageTBS"  # RFC 9420 §10, §17.6


@dataclass(frozen=True, slots=True)
class KeyPackage(Struct):
    """RFC 9420 §10:
    struct {
        ProtocolVersion version;
        CipherSuite cipher_suite;
        HPKEPublicKey init_key;
        LeafNode leaf_node;
        Extension extensions<V>;
        /* SignWithLabel(., "KeyPackageTBS", KeyPackageTBS) */
        opaque signature<V>;
    } KeyPackage;"""

    version: int
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: Extensions
    signature: bytes = b""
    WIRE_FORMAT: ClassVar[int] = WireFormat.MLS_KEY_PACKAGE
    # KeyPackageTBS, computed once (signature and reference both need it); not an init
    # field, so replace() never copies it.
    _content: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def _write_content(self, w: Writer) -> None:
        write_memoized(w, self, "_content", self._encode_content)

    def _encode_content(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.init_key)
        self.leaf_node.write(w)
        write_extensions(w, self.extensions)

    def write(self, w: Writer) -> None:
        self._write_content(w)
        w.opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(
            r.u16(), r.u16(), r.opaque(), LeafNode.read(r), read_extensions(r), r.opaque()
        )

    def tbs(self) -> bytes:
        """KeyPackageTBS (§10): every field above `signature`."""
        w = Writer()
        self._write_content(w)
        return bytes(w.buf)

    def signed(self, cs: CipherSuite, signature_private_key: bytes) -> KeyPackage:
        """A copy signed with SignWithLabel(sk, "KeyPackageTBS", KeyPackageTBS)."""
        sig = sign_with_label(cs, signature_private_key, KEY_PACKAGE_TBS_LABEL, self.tbs())
        return KeyPackage(
            self.version, self.cipher_suite, self.init_key, self.leaf_node, self.extensions, sig
        )

    def verify(self, cs: CipherSuite) -> bool:
        """The KeyPackage signature under `leaf_node.signature_key` (§10.1)."""
        return verify_with_label(
            cs, self.leaf_node.signature_key, KEY_PACKAGE_TBS_LABEL, self.tbs(), self.signature
        )

    def ref(self, cs: CipherSuite) -> bytes:
        """KeyPackageRef = MakeKeyPackageRef(encoded KeyPackage) (§5.2)."""
        return make_key_package_ref(cs, self.encode())
