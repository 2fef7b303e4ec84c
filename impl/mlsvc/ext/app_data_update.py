"""The AppDataUpdate proposal (draft-ietf-mls-extensions-09 §4.7).

~~~ tls-presentation
enum { invalid(0), update(1), remove(2), (255) } AppDataUpdateOperation;
struct {
    ComponentID component_id;
    AppDataUpdateOperation op;
    select (AppDataUpdate.op) {
        case update: opaque update<V>;
        case remove: struct{};
    };
} AppDataUpdate;
~~~

Wire: `uint16 component_id || uint8 op || (op == update ? opaque update<V> : nothing)`.
An op other than update/remove selects no arm, so the proposal cannot be delimited: a
`DecodeError`, as for RFC 9420's closed enums. The proposal type is
`CodePoints.app_data_update` (suggested 0x0008); `register_app_data_update` makes RFC
9420's `read_proposal` accept it (`mlsvc.messages.proposals.register_proposal_class`).

Semantics (§4.7), as pure functions the group layer calls:
- `validate_app_data_updates`: a component unknown to the application, the removal of
  an absent entry, two removes, or a remove together with updates for one component make
  the list invalid.
- `apply_app_data_updates`: per component, in Commit order, a single remove deletes the
  entry; one or more updates go to the component's handler with the current data; the
  handler's `new_data` replaces or inserts the entry (kept sorted), or its refusal (None)
  makes the list invalid. A GroupContext without app_data_dictionary gets one appended.
  The update semantics are component-defined (digest A10): the handler decides.
- `check_gce_keeps_dictionary`: once app_data_update is in required_capabilities'
  proposal_types, a GroupContextExtensions proposal must leave app_data_dictionary alone.
AppDataUpdate needs no UpdatePath (§7.3 "Path Required: N").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Writer
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.ext.codepoints import DEFAULT_CODEPOINTS, CodePoints, check_component_id
from mlsvc.ext.components import AppDataDictionary, with_dictionary
from mlsvc.messages.extensions import Extension, Extensions, RequiredCapabilities, find_extension
from mlsvc.messages.proposals import Proposal, register_proposal_class


class AppDataUpdateOperation(IntEnum):
    """§4.7: enum { invalid(0), update(1), remove(2), (255) } (invalid never on the wire)."""

    UPDATE = 1
    REMOVE = 2


@dataclass(frozen=True, slots=True)
class AppDataUpdate(Proposal):
    """§4.7 AppDataUpdate: `update` is present iff op is update."""

    component_id: int
    op: AppDataUpdateOperation
    update: bytes | None = None
    PROPOSAL_TYPE: ClassVar[int] = DEFAULT_CODEPOINTS.app_data_update

    def __post_init__(self) -> None:
        check_component_id(self.component_id)
        if (self.update is not None) != (self.op == AppDataUpdateOperation.UPDATE):
            raise ParameterError("AppDataUpdate: update data is present iff op is update")

    @classmethod
    def updating(cls, component_id: int, data: bytes) -> Self:
        return cls(component_id, AppDataUpdateOperation.UPDATE, data)

    @classmethod
    def removing(cls, component_id: int) -> Self:
        return cls(component_id, AppDataUpdateOperation.REMOVE)

    def write(self, w: Writer) -> None:
        w.u16(self.component_id)
        w.u8(self.op)
        if self.update is not None:
            w.opaque(self.update)

    @classmethod
    def read(cls, r: Reader) -> Self:
        cid = r.u16()
        op = r.u8()
        if op == AppDataUpdateOperation.UPDATE:
            return cls(cid, AppDataUpdateOperation.UPDATE, r.opaque())
        if op == AppDataUpdateOperation.REMOVE:
            return cls(cid, AppDataUpdateOperation.REMOVE)
        raise DecodeError(f"AppDataUpdate op {op} selects no arm (§4.7)")


_REGISTERED: dict[int, type[AppDataUpdate]] = {}


def register_app_data_update(cp: CodePoints = DEFAULT_CODEPOINTS) -> type[AppDataUpdate]:
    """Register the AppDataUpdate body under `cp.app_data_update` with the RFC 9420
    proposal decoder, and return the class to build proposals of that type with (a
    subclass when the code point is not the suggested one). Idempotent."""
    ptype = cp.app_data_update
    cls = _REGISTERED.get(ptype)
    if cls is None:
        if ptype == AppDataUpdate.PROPOSAL_TYPE:
            cls = AppDataUpdate
        else:
            cls = type(f"AppDataUpdate_{ptype:04x}", (AppDataUpdate,),
                       {"__slots__": (), "PROPOSAL_TYPE": ptype})
        register_proposal_class(cls)
        _REGISTERED[ptype] = cls
    return cls


UpdateHandler = Callable[[bytes | None, Sequence[bytes]], bytes | None]
"""A component's application logic for `update` (§4.7): (current data or None, the
update payloads in Commit order) -> new_data, or None to declare the updates invalid."""


def _updates_of(proposals: Iterable[Proposal], cp: CodePoints) -> list[AppDataUpdate]:
    return [p for p in proposals
            if isinstance(p, AppDataUpdate) and cp.app_data_update == p.PROPOSAL_TYPE]


def _grouped(updates: Sequence[AppDataUpdate]) -> dict[int, list[AppDataUpdate]]:
    out: dict[int, list[AppDataUpdate]] = {}
    for p in updates:
        out.setdefault(p.component_id, []).append(p)
    return out


def validate_app_data_updates(
    proposals: Iterable[Proposal], current: AppDataDictionary | None, known: Collection[int],
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> None:
    """§4.7 validity of the AppDataUpdate proposals of one proposal list."""
    for cid, ops in _grouped(_updates_of(proposals, cp)).items():
        if cid not in known:
            fail("EXT-ADU-UNKNOWN", f"component 0x{cid:04x} is not known to the application")
        removes = sum(1 for p in ops if p.op == AppDataUpdateOperation.REMOVE)
        if removes and len(ops) > 1:
            fail("EXT-ADU-MIXED", f"component 0x{cid:04x}: a remove with other operations")
        if removes and (current is None or current.get(cid) is None):
            fail("EXT-ADU-REMOVE-ABSENT", f"component 0x{cid:04x} has no data to remove")


def apply_app_data_updates(
    extensions: Extensions, proposals: Iterable[Proposal],
    handlers: Mapping[int, UpdateHandler], known: Collection[int] | None = None,
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> Extensions:
    """The GroupContext extensions after the list's AppDataUpdate proposals (§4.7).
    `known` defaults to the components with a handler. Unchanged when there are none."""
    updates = _updates_of(proposals, cp)
    if not updates:
        return extensions
    current = AppDataDictionary.find_in(extensions, cp)
    known_ids = set(handlers) if known is None else set(known)
    validate_app_data_updates(updates, current, known_ids, cp)
    data = current.as_dict() if current is not None else {}
    for cid, ops in _grouped(updates).items():
        if ops[0].op == AppDataUpdateOperation.REMOVE:
            del data[cid]
            continue
        handler = handlers.get(cid)
        if handler is None:
            fail("EXT-ADU-UNKNOWN", f"component 0x{cid:04x} has no update logic")
        new = handler(data.get(cid), [p.update for p in ops if p.update is not None])
        if new is None:
            fail("EXT-ADU-REJECTED", f"component 0x{cid:04x} rejected its updates")
        data[cid] = new
    return with_dictionary(extensions, AppDataDictionary.of(data), cp)


def check_gce_keeps_dictionary(
    current: Iterable[Extension], proposed: Iterable[Extension],
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> None:
    """§4.7: with app_data_update in the group's required_capabilities proposal_types, a
    GroupContextExtensions proposal MUST NOT add, remove or modify app_data_dictionary."""
    cur = tuple(current)
    required = RequiredCapabilities.find_in(cur)
    if required is None or cp.app_data_update not in required.proposal_types:
        return
    before = find_extension(cur, cp.app_data_dictionary)
    after = find_extension(proposed, cp.app_data_dictionary)
    if before != after:
        fail("EXT-GCE-DICT", "GroupContextExtensions changes app_data_dictionary while "
                             "app_data_update is required")
