"""Safe AAD (draft-ietf-mls-extensions-09 §4.9) and a thin layer over `Group` for it.

~~~ tls-presentation
struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem;
struct { SafeAADItem aad_items<V>; } SafeAAD;
~~~

The SafeAAD struct is the start of the `authenticated_data` of a PublicMessage
(`FramedContent.authenticated_data`, covered by the signature and membership tag) or a
PrivateMessage (in the clear, and the AEAD's PrivateContentAAD), RFC 9420 §6.

Decisions (digest A7, A8; profile P1):
- Presence: SafeAAD framing is on exactly when the GroupContext of the message's epoch
  has the `safe_aad` component in its app_data_dictionary, even with an empty list (§5);
  then `authenticated_data` MUST parse as a SafeAAD (ValidationError
  EXT-SAFE-AAD-REQUIRED otherwise). With no items it is the single byte 00 (§4.9).
- Order: items are in strictly increasing component_id order; unsorted or duplicated
  items are rejected (EXT-SAFE-AAD-SORTED; "sorted in increasing numerical order",
  OpenMLS rejects duplicates too). The sender side sorts for the caller.
- Tail: -09 lets "non-safe data" follow the SafeAAD ("MUST come before"); it is kept as
  `ParsedAAD.tail`. `allow_tail=False` gives the draft-10 reading (the whole field is
  the SafeAAD; EXT-SAFE-AAD-TAIL).
- Unknown components: items of components the application does not know (GREASE
  included) are ignored (§5.1); components the GroupContext requires must be known
  (EXT-COMPONENT-UNKNOWN, checked by `SafeAADGroup` before processing).

`SafeAADGroup` checks the framing of a received message on the wire, before
`Group.process` authenticates or applies anything, so a malformed SafeAAD leaves the
group state untouched (for a PrivateMessage no secret-tree key is consumed either). For
a PublicMessage it also checks, before processing, the GroupContextExtensions and
AppDataUpdate proposals carried by value (`check_proposed_extensions`: §4.6, §4.7, §5).
A PrivateMessage's proposals cannot be seen before decryption: rejecting them before the
state changes needs a hook in the engine (docs/EXTENSIONS.md, "Hooks").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import DecodeError, ParameterError, StateError
from mlsvc.ext.app_data_update import (
    AppDataUpdate,
    check_gce_keeps_dictionary,
    validate_app_data_updates,
)
from mlsvc.ext.codepoints import (
    DEFAULT_CODEPOINTS,
    CodePoints,
    check_component_id,
)
from mlsvc.ext.components import (
    AppDataDictionary,
    Negotiated,
    check_group_supports,
    check_required_known,
    strictly_increasing,
)
from mlsvc.group.events import Event
from mlsvc.group.group import CommitOutput, Group
from mlsvc.messages.commit import Commit
from mlsvc.messages.extensions import Extension
from mlsvc.messages.framing import PrivateMessage, PublicMessage
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import GroupContextExtensions, Proposal


@dataclass(frozen=True, slots=True)
class SafeAADItem(Struct):
    """§4.9: struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem;"""

    component_id: int
    aad_item_data: bytes

    def __post_init__(self) -> None:
        check_component_id(self.component_id)

    def write(self, w: Writer) -> None:
        w.u16(self.component_id)
        w.opaque(self.aad_item_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.opaque())


@dataclass(frozen=True, slots=True)
class SafeAAD(Struct):
    """§4.9: struct { SafeAADItem aad_items<V>; } SafeAAD; items strictly increasing."""

    aad_items: tuple[SafeAADItem, ...] = ()

    def __post_init__(self) -> None:
        ids = [i.component_id for i in self.aad_items]
        if not strictly_increasing(ids):
            raise ParameterError("SafeAAD items must be sorted by component_id, no duplicates")

    def write(self, w: Writer) -> None:
        w.structs(self.aad_items)

    @classmethod
    def read(cls, r: Reader) -> Self:
        items = r.vector(SafeAADItem.read)
        ids = [i.component_id for i in items]
        if not strictly_increasing(ids):
            fail("EXT-SAFE-AAD-SORTED", f"component ids {ids} are not strictly increasing")
        return cls(tuple(items))

    def get(self, component_id: int) -> bytes | None:
        for item in self.aad_items:
            if item.component_id == component_id:
                return item.aad_item_data
        return None

    def as_dict(self) -> dict[int, bytes]:
        return {i.component_id: i.aad_item_data for i in self.aad_items}


ItemsLike = Mapping[int, bytes] | Iterable[SafeAADItem | tuple[int, bytes]]


def make_safe_aad(items: ItemsLike) -> SafeAAD:
    """A SafeAAD from {component_id: data} or (component_id, data) pairs, sorted as §4.9
    requires. A component given twice is the caller's error (ParameterError)."""
    pairs: list[tuple[int, bytes]] = []
    if isinstance(items, Mapping):
        pairs = [(int(k), bytes(v)) for k, v in items.items()]
    else:
        for it in items:
            if isinstance(it, SafeAADItem):
                pairs.append((it.component_id, it.aad_item_data))
            else:
                pairs.append((int(it[0]), bytes(it[1])))
    ids = [cid for cid, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ParameterError("a component appears twice in the SafeAAD items")
    return SafeAAD(tuple(SafeAADItem(cid, data) for cid, data in sorted(pairs)))


def encode_items(items: ItemsLike, tail: bytes = b"") -> bytes:
    """`authenticated_data` = SafeAAD || tail (§4.9: safe items before non-safe data)."""
    return make_safe_aad(items).encode() + bytes(tail)


@dataclass(frozen=True)
class ParsedAAD:
    """A received authenticated_data: its SafeAAD and the -09 non-safe tail."""

    safe_aad: SafeAAD
    tail: bytes

    @property
    def items(self) -> tuple[SafeAADItem, ...]:
        return self.safe_aad.aad_items

    def get(self, component_id: int) -> bytes | None:
        return self.safe_aad.get(component_id)

    def known(self, known_components: Collection[int]) -> dict[int, bytes]:
        """The items of components the application knows; the others (GREASE
        included) are ignored (§5.1)."""
        return {i.component_id: i.aad_item_data for i in self.items
                if i.component_id in known_components}


def parse(authenticated_data: bytes, *, allow_tail: bool = True) -> ParsedAAD:
    """Parse the SafeAAD at the start of `authenticated_data` (§4.9). DecodeError when
    truncated, ValidationError EXT-SAFE-AAD-SORTED / EXT-SAFE-AAD-TAIL."""
    r = Reader(bytes(authenticated_data))
    safe = SafeAAD.read(r)
    tail = bytes(authenticated_data[r.pos:])
    if tail and not allow_tail:
        fail("EXT-SAFE-AAD-TAIL", f"{len(tail)} bytes after the SafeAAD")
    return ParsedAAD(safe, tail)


def safe_aad_required(group_extensions: Iterable[Extension],
                      cp: CodePoints = DEFAULT_CODEPOINTS) -> bool:
    """§5: the safe_aad component present in the GroupContext's app_data_dictionary."""
    return Negotiated.of_extensions(group_extensions, cp).safe_aad is not None


def check_authenticated_data(
    group_extensions: Iterable[Extension], authenticated_data: bytes,
    cp: CodePoints = DEFAULT_CODEPOINTS, *, allow_tail: bool = True,
) -> ParsedAAD | None:
    """The receiver's §4.9 rule: None when the GroupContext does not switch SafeAAD on;
    otherwise the parsed SafeAAD, or ValidationError (EXT-SAFE-AAD-REQUIRED when it does
    not parse, EXT-SAFE-AAD-SORTED, EXT-SAFE-AAD-TAIL)."""
    if not safe_aad_required(group_extensions, cp):
        return None
    try:
        return parse(authenticated_data, allow_tail=allow_tail)
    except DecodeError as exc:
        fail("EXT-SAFE-AAD-REQUIRED", f"authenticated_data is not a SafeAAD: {exc}")


def authenticated_data_of(message: bytes | MLSMessage) -> bytes:
    """The `authenticated_data` of a PublicMessage or PrivateMessage, read from the wire
    without authenticating or decrypting anything (RFC 9420 §6.2, §6.3)."""
    msg = MLSMessage.decode(message) if isinstance(message, bytes) else message
    body = msg.body
    if isinstance(body, PublicMessage):
        return body.content.authenticated_data
    if isinstance(body, PrivateMessage):
        return body.authenticated_data
    raise ParameterError("only PublicMessage and PrivateMessage carry authenticated_data")


def check_proposed_extensions(
    current: Iterable[Extension], members: Iterable[tuple[int, LeafNode]],
    proposals: Iterable[Proposal], known_components: Collection[int],
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> None:
    """The ext rules for proposals that change the GroupContext, checked against the
    current GroupContext extensions and members: a GroupContextExtensions proposal's
    app_data_dictionary parses (DecodeError, EXT-DICT-SORTED), requires only known
    components (EXT-COMPONENT-UNKNOWN) that every current member supports
    (EXT-COMPONENT-UNSUPPORTED), and leaves the dictionary alone once app_data_update is
    required (EXT-GCE-DICT, §4.7); AppDataUpdate proposals form a valid list (§4.7)."""
    cur = tuple(current)
    leaves = tuple(members)
    props = tuple(proposals)
    for p in props:
        if isinstance(p, GroupContextExtensions):
            check_required_known(p.extensions, known_components, cp)
            check_gce_keeps_dictionary(cur, p.extensions, cp)
            check_group_supports(leaves, p.extensions, cp)
    if any(isinstance(p, AppDataUpdate) for p in props):
        validate_app_data_updates(props, AppDataDictionary.find_in(cur, cp), known_components,
                                  cp)


@dataclass(frozen=True)
class SafeAADEvent:
    """What `SafeAADGroup.process` returns: the group's event and its SafeAAD (None when
    the GroupContext of the message's epoch does not use SafeAAD)."""

    event: Event
    safe_aad: ParsedAAD | None


class SafeAADGroup:
    """A thin layer over `Group` that frames and checks SafeAAD (§4.9). It holds no state
    of its own beyond its settings: `group` stays the engine's object."""

    def __init__(
        self, group: Group, *, known_components: Collection[int] = (),
        codepoints: CodePoints = DEFAULT_CODEPOINTS, allow_tail: bool = True,
    ) -> None:
        self.group = group
        self.known_components = frozenset(known_components)
        self.codepoints = codepoints
        self.allow_tail = allow_tail

    @property
    def required(self) -> bool:
        """Whether the current GroupContext switches SafeAAD on."""
        return safe_aad_required(self.group.context.extensions, self.codepoints)

    def frame(self, items: ItemsLike = (), tail: bytes = b"") -> bytes:
        """The authenticated_data for a message of the current epoch. StateError when
        items are given but the GroupContext does not use SafeAAD (the receivers would
        read them as opaque bytes), or a tail is given under `allow_tail=False`."""
        if not self.required:
            if make_safe_aad(items).aad_items:
                raise StateError("the GroupContext has no safe_aad component: SafeAAD items "
                                 "cannot be attached (§4.9, §5)")
            return bytes(tail)
        if tail and not self.allow_tail:
            raise StateError("a non-safe tail is not allowed (draft-10 reading configured)")
        return encode_items(items, tail)

    def commit(self, items: ItemsLike = (), tail: bytes = b"", **kwargs: Any) -> CommitOutput:
        """`Group.commit` with SafeAAD items in the commit's authenticated_data. The
        GroupContext of the current epoch decides the framing (the commit is sent in it)."""
        if "authenticated_data" in kwargs:
            raise ParameterError("pass items/tail, not authenticated_data")
        return self.group.commit(authenticated_data=self.frame(items, tail), **kwargs)

    def encrypt(self, data: bytes, items: ItemsLike = (), tail: bytes = b"",
                **kwargs: Any) -> bytes:
        """`Group.encrypt` with SafeAAD items."""
        return self.group.encrypt(data, self.frame(items, tail), **kwargs)

    def check(self, message: bytes | MLSMessage) -> ParsedAAD | None:
        """The receive-side checks, on the wire and before any state change: the current
        GroupContext's required components are known (EXT-COMPONENT-UNKNOWN), the
        authenticated_data is a well-formed SafeAAD when required, and (for a
        PublicMessage, whose content is in the clear) the GroupContextExtensions and
        AppDataUpdate proposals it carries by value pass `check_proposed_extensions`."""
        msg = MLSMessage.decode(message) if isinstance(message, bytes) else message
        g = self.group
        exts = g.context.extensions
        check_required_known(exts, self.known_components, self.codepoints)
        parsed = check_authenticated_data(exts, authenticated_data_of(msg), self.codepoints,
                                          allow_tail=self.allow_tail)
        body = msg.body
        if isinstance(body, PublicMessage):
            content = body.content.content
            proposals: list[Proposal] = []
            if isinstance(content, Proposal):
                proposals = [content]
            elif isinstance(content, Commit):
                proposals = [p for p in content.proposals if isinstance(p, Proposal)]
            check_proposed_extensions(exts, g.members(), proposals, self.known_components,
                                      self.codepoints)
        return parsed

    def process(self, message: bytes | MLSMessage) -> SafeAADEvent:
        """`check`, then `Group.process` (which authenticates the authenticated_data with
        the rest of the message). The SafeAAD returned is only trustworthy because
        `Group.process` returned. Caveat (engine hook needed, docs/EXTENSIONS.md): the
        content of a PrivateMessage handshake is not visible before `Group.process`, so
        its proposals are checked only after the commit is applied, by the caller."""
        msg = MLSMessage.decode(message) if isinstance(message, bytes) else message
        parsed = self.check(msg)
        event = self.group.process(msg)
        return SafeAADEvent(event, parsed)
