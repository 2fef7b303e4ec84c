"""MLSMessage, the envelope of everything sent on the wire (RFC 9420 §6).

~~~ tls-presentation
struct {
    ProtocolVersion version = mls10;
    WireFormat wire_format;
    select (MLSMessage.wire_format) {
        case mls_public_message:  PublicMessage public_message;
        case mls_private_message: PrivateMessage private_message;
        case mls_welcome:         Welcome welcome;
        case mls_group_info:      GroupInfo group_info;
        case mls_key_package:     KeyPackage key_package;
    };
} MLSMessage;
~~~

The wire format is derived from the body's class (`WIRE_FORMAT`). A version other
than mls10, or any other wire format, is a DecodeError: the body cannot be
delimited (the registry is extensible, but no wire format is added by the drafts
this library implements).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import DecodeError
from mlsvc.messages.codepoints import ProtocolVersion
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.group_info import GroupInfo, read_mls10
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.welcome import Welcome

MLSMessageBody = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage

_BODY_READERS: dict[int, type[MLSMessageBody]] = {
    cls.WIRE_FORMAT: cls for cls in (PublicMessage, PrivateMessage, Welcome, GroupInfo, KeyPackage)
}


@dataclass(frozen=True, slots=True)
class MLSMessage(Struct):
    """RFC 9420 §6 MLSMessage; `body` is the selected arm (version is always mls10)."""

    body: MLSMessageBody

    @property
    def version(self) -> ProtocolVersion:
        return ProtocolVersion.MLS10

    @property
    def wire_format(self) -> int:
        return self.body.WIRE_FORMAT

    def write(self, w: Writer) -> None:
        w.u16(ProtocolVersion.MLS10)
        w.u16(self.wire_format)
        self.body.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        read_mls10(r, "MLSMessage")
        wire_format = r.u16()
        body_cls = _BODY_READERS.get(wire_format)
        if body_cls is None:
            raise DecodeError(f"unknown wire format 0x{wire_format:04x}")
        return cls(body_cls.read(r))
