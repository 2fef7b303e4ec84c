"""Runner for messages.json (RFC 9420 §6-§12; upstream README "Messages").

Every listed object must decode with its struct and re-encode to the same bytes.
The `mls_*` and `*_message*` fields are MLSMessages, whose wire format (and, for a
PublicMessage, content type) must also be the one the field names; `ratchet_tree`
is the ratchet_tree extension payload (`optional<Node> ratchet_tree<V>`); the
`*_proposal` fields are the bare proposal bodies (Add, Update, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mlsvc.codec import Struct
from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.messages.codepoints import ContentType, WireFormat
from mlsvc.messages.commit import Commit
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    ReInit,
    Remove,
    Update,
)
from mlsvc.messages.welcome import GroupSecrets

# field -> struct whose encoding the field holds
_STRUCT_FIELDS: dict[str, type[Struct]] = {
    "ratchet_tree": RatchetTreeExtension,
    "group_secrets": GroupSecrets,
    "add_proposal": Add,
    "update_proposal": Update,
    "remove_proposal": Remove,
    "pre_shared_key_proposal": PreSharedKey,
    "re_init_proposal": ReInit,
    "external_init_proposal": ExternalInit,
    "group_context_extensions_proposal": GroupContextExtensions,
    "commit": Commit,
}

# field -> (wire format, content type of a PublicMessage or None)
_MESSAGE_FIELDS: dict[str, tuple[WireFormat, ContentType | None]] = {
    "mls_welcome": (WireFormat.MLS_WELCOME, None),
    "mls_group_info": (WireFormat.MLS_GROUP_INFO, None),
    "mls_key_package": (WireFormat.MLS_KEY_PACKAGE, None),
    "public_message_application": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.APPLICATION),
    "public_message_proposal": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.PROPOSAL),
    "public_message_commit": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.COMMIT),
    "private_message": (WireFormat.MLS_PRIVATE_MESSAGE, None),
}

FIELDS = tuple(_MESSAGE_FIELDS) + tuple(_STRUCT_FIELDS)


S = TypeVar("S", bound=Struct)


def _round_trip(field: str, data: bytes, decode: Callable[[bytes], S]) -> S:
    value = decode(data)
    expect(f"{field} re-encoded", value.encode(), data)
    return value


def _check(case: Case) -> None:
    missing = [f for f in FIELDS if f not in case]
    if missing:
        raise Mismatch(f"fields missing from the case: {missing}")
    for field, (wire_format, content_type) in _MESSAGE_FIELDS.items():
        msg = _round_trip(field, h(case[field]), MLSMessage.decode)
        expect(f"{field} wire_format", msg.wire_format, wire_format)
        if content_type is not None:
            body = msg.body
            if not isinstance(body, PublicMessage):
                raise Mismatch(f"{field}: body is {type(body).__name__}")
            expect(f"{field} content_type", body.content.content_type, content_type)
    for field, cls in _STRUCT_FIELDS.items():
        _round_trip(field, h(case[field]), cls.decode)


def run(cases: list[Case]) -> FileResult:
    return run_cases("messages", cases, _check, suite_key=None)
