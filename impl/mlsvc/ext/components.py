"""Components and the app_data_dictionary extension (draft-ietf-mls-extensions-09
§4.1, §4.6, §5).

~~~ tls-presentation
uint16 ComponentID;                                           /* §4.1 (-09, P1) */
struct { ComponentID component_id; opaque data<V>; } ComponentData;      /* §4.6 */
struct { ComponentData component_data<V>; } AppDataDictionary;           /* §4.6 */
struct { ComponentID component_ids<V>; } ComponentsList;                 /* §5 */
ComponentsList app_components;   ComponentsList safe_aad;                /* §5 */
~~~

The `app_data_dictionary` extension (extension type `CodePoints.app_data_dictionary`,
suggested 0x0006) has a serialized AppDataDictionary as its `extension_data`, in
LeafNode, KeyPackage, GroupInfo and GroupContext extension lists alike (§4.6, §7.2).

Entries "MUST be sorted by component_id, and there MUST be at most one entry for each
component_id" (§4.6). The draft leaves the receiver's reaction open (digest A12); this
library rejects such a dictionary when parsing it (`ValidationError` EXT-DICT-SORTED), and
a truncated one is a `DecodeError`. Constructing an unsorted one is a `ParameterError`,
so an invalid dictionary is never written.

Negotiation (§5): in a LeafNode, `app_components` / `safe_aad` list the components the
client supports; in the GroupContext they list the components every member must
support. GREASE component values (§5.1) are ignored wherever they appear, required
lists included (a GREASE value can never be "required").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Self

from mlsvc.checks import fail
from mlsvc.codec import Reader, Struct, Writer
from mlsvc.errors import ParameterError
from mlsvc.ext.codepoints import (
    DEFAULT_CODEPOINTS,
    CodePoints,
    check_component_id,
    is_grease_component,
)
from mlsvc.messages.extensions import (
    Extension,
    Extensions,
    find_extension,
    read_u16_list,
    write_u16_list,
)
from mlsvc.messages.leaf_node import Capabilities, LeafNode


@dataclass(frozen=True, slots=True)
class ComponentData(Struct):
    """§4.6: struct { ComponentID component_id; opaque data<V>; } ComponentData;"""

    component_id: int
    data: bytes

    def __post_init__(self) -> None:
        check_component_id(self.component_id)

    def write(self, w: Writer) -> None:
        w.u16(self.component_id)
        w.opaque(self.data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.opaque())


def strictly_increasing(ids: Iterable[int]) -> bool:
    """Sorted with no duplicates (§4.6 dictionaries, §4.9 SafeAAD items)."""
    return all(a < b for a, b in pairwise(ids))


@dataclass(frozen=True, slots=True)
class AppDataDictionary(Struct):
    """§4.6: struct { ComponentData component_data<V>; } AppDataDictionary;
    entries sorted by component_id, at most one per component."""

    entries: tuple[ComponentData, ...] = ()

    def __post_init__(self) -> None:
        if not strictly_increasing([e.component_id for e in self.entries]):
            raise ParameterError("AppDataDictionary entries must be sorted and unique (§4.6)")

    @classmethod
    def of(cls, data: Mapping[int, bytes]) -> AppDataDictionary:
        """A dictionary from {component_id: data}, sorted as §4.6 requires."""
        return cls(tuple(ComponentData(cid, data[cid]) for cid in sorted(data)))

    def write(self, w: Writer) -> None:
        w.structs(self.entries)

    @classmethod
    def read(cls, r: Reader) -> Self:
        entries = r.vector(ComponentData.read)
        ids = [e.component_id for e in entries]
        if not strictly_increasing(ids):
            fail("EXT-DICT-SORTED", f"component ids {ids} are not strictly increasing")
        return cls(tuple(entries))

    def get(self, component_id: int) -> bytes | None:
        for e in self.entries:
            if e.component_id == component_id:
                return e.data
        return None

    def component_ids(self) -> tuple[int, ...]:
        return tuple(e.component_id for e in self.entries)

    def as_dict(self) -> dict[int, bytes]:
        return {e.component_id: e.data for e in self.entries}

    def with_entry(self, component_id: int, data: bytes) -> AppDataDictionary:
        """Set or replace one entry, keeping the order (§4.7 "inserted at the proper
        point to keep the vector sorted")."""
        d = self.as_dict()
        d[check_component_id(component_id)] = data
        return AppDataDictionary.of(d)

    def without(self, component_id: int) -> AppDataDictionary:
        return AppDataDictionary(tuple(e for e in self.entries if e.component_id != component_id))

    # --- as an extension (§4.6, §7.2) -------------------------------------------------------

    def to_extension(self, cp: CodePoints = DEFAULT_CODEPOINTS) -> Extension:
        return Extension(cp.app_data_dictionary, self.encode())

    @classmethod
    def find_in(
        cls, extensions: Iterable[Extension], cp: CodePoints = DEFAULT_CODEPOINTS
    ) -> AppDataDictionary | None:
        """Parse the app_data_dictionary of an extension list (LeafNode, KeyPackage,
        GroupInfo or GroupContext), or None when absent. DecodeError when truncated,
        ValidationError EXT-DICT-SORTED when unsorted or duplicated."""
        ext = find_extension(extensions, cp.app_data_dictionary)
        return None if ext is None else AppDataDictionary.decode(ext.extension_data)


def with_dictionary(
    extensions: Extensions, dictionary: AppDataDictionary, cp: CodePoints = DEFAULT_CODEPOINTS
) -> Extensions:
    """`extensions` with its app_data_dictionary replaced in place, or appended at the end
    when absent (§4.7: "add one to the end of the extensions list")."""
    new = dictionary.to_extension(cp)
    out = [new if e.extension_type == cp.app_data_dictionary else e for e in extensions]
    if not any(e.extension_type == cp.app_data_dictionary for e in extensions):
        out.append(new)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ComponentsList(Struct):
    """§5: struct { ComponentID component_ids<V>; } ComponentsList; the data of the
    `app_components` and `safe_aad` components. Received lists are kept as sent (any
    values, GREASE included, §5.1); `of` builds a sorted, duplicate-free one."""

    component_ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, ids: Iterable[int]) -> ComponentsList:
        return cls(tuple(sorted({check_component_id(i) for i in ids})))

    def write(self, w: Writer) -> None:
        write_u16_list(w, self.component_ids)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(read_u16_list(r)))

    def meaningful(self) -> frozenset[int]:
        """The listed IDs without GREASE values (§5.1: ignored by receivers)."""
        return frozenset(i for i in self.component_ids if not is_grease_component(i))


def components_list(
    dictionary: AppDataDictionary | None, component_id: int
) -> ComponentsList | None:
    """The ComponentsList stored under `component_id` (app_components or safe_aad)."""
    if dictionary is None:
        return None
    data = dictionary.get(component_id)
    return None if data is None else ComponentsList.decode(data)


@dataclass(frozen=True)
class Negotiated:
    """The two §5 lists of one object: supported (LeafNode) or required (GroupContext).
    None means the component is absent; `safe_aad is not None` in a GroupContext
    switches SafeAAD framing on (§5, §4.9)."""

    app_components: ComponentsList | None
    safe_aad: ComponentsList | None

    @classmethod
    def of_extensions(
        cls, extensions: Iterable[Extension], cp: CodePoints = DEFAULT_CODEPOINTS
    ) -> Negotiated:
        d = AppDataDictionary.find_in(extensions, cp)
        return cls(components_list(d, cp.app_components), components_list(d, cp.safe_aad))

    def required_ids(self) -> frozenset[int]:
        """Every non-GREASE component either list names."""
        out: frozenset[int] = frozenset()
        for lst in (self.app_components, self.safe_aad):
            if lst is not None:
                out |= lst.meaningful()
        return out


def negotiation_dictionary(
    app_components: Iterable[int] | None,
    safe_aad: Iterable[int] | None,
    other: Mapping[int, bytes] | None = None,
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> AppDataDictionary:
    """An AppDataDictionary with the §5 negotiation components (a None list is left
    out) and any other entries."""
    data = dict(other or {})
    if app_components is not None:
        data[cp.app_components] = ComponentsList.of(app_components).encode()
    if safe_aad is not None:
        data[cp.safe_aad] = ComponentsList.of(safe_aad).encode()
    return AppDataDictionary.of(data)


def capabilities_with_dictionary(
    caps: Capabilities, proposals: Iterable[int] = (), cp: CodePoints = DEFAULT_CODEPOINTS
) -> Capabilities:
    """`caps` with app_data_dictionary in `extensions` (RFC 9420 §7.2: a LeafNode carrying
    a non-default extension lists its type) and the given proposal types added."""
    exts = caps.extensions if cp.app_data_dictionary in caps.extensions else (
        *caps.extensions, cp.app_data_dictionary)
    props = caps.proposals + tuple(p for p in proposals if p not in caps.proposals)
    return Capabilities(caps.versions, caps.cipher_suites, exts, props, caps.credentials)


# --- capability checks (§5) -----------------------------------------------------------------


def check_required_known(
    group_extensions: Iterable[Extension], known: Collection[int],
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> Negotiated:
    """§5: the components a GroupContext requires "must be understood by the entire
    group", this client included. `known` is what the application implements (the
    §5 negotiation components themselves count as known). ValidationError
    EXT-COMPONENT-UNKNOWN otherwise; returns the parsed lists."""
    required = Negotiated.of_extensions(group_extensions, cp)
    builtin = {cp.app_components, cp.safe_aad}
    unknown = sorted(i for i in required.required_ids() if i not in known and i not in builtin)
    if unknown:
        fail("EXT-COMPONENT-UNKNOWN",
             "required components unknown to this client: "
             + ", ".join(f"0x{i:04x}" for i in unknown))
    return required


def check_leaf_supports(
    leaf: LeafNode, group_extensions: Iterable[Extension], cp: CodePoints = DEFAULT_CODEPOINTS,
    *, label: str = "leaf",
) -> None:
    """§5: a member's LeafNode supports what the GroupContext requires: the
    app_data_dictionary extension itself when the GroupContext carries one (RFC 9420
    §12.1.7), every required app_components entry in its app_components list and every
    required safe_aad entry in its safe_aad list. A leaf's own dictionary must parse
    (EXT-DICT-SORTED / DecodeError) and be listed in its capabilities (RFC 9420 §7.2)."""
    exts = tuple(group_extensions)
    has_dict = find_extension(leaf.extensions, cp.app_data_dictionary) is not None
    if has_dict and cp.app_data_dictionary not in leaf.capabilities.extensions:
        fail("EXT-DICT-NOT-IN-CAPS", f"{label} carries app_data_dictionary without listing it")
    supported = Negotiated.of_extensions(leaf.extensions, cp)
    if find_extension(exts, cp.app_data_dictionary) is None:
        return
    if cp.app_data_dictionary not in leaf.capabilities.extensions:
        fail("EXT-COMPONENT-UNSUPPORTED", f"{label} does not support app_data_dictionary")
    required = Negotiated.of_extensions(exts, cp)
    for name, req, sup in (
        ("app_components", required.app_components, supported.app_components),
        ("safe_aad", required.safe_aad, supported.safe_aad),
    ):
        if req is None:
            continue
        have = sup.meaningful() if sup is not None else frozenset()
        missing = sorted(req.meaningful() - have)
        if missing:
            fail("EXT-COMPONENT-UNSUPPORTED",
                 f"{label} lacks required {name} components "
                 + ", ".join(f"0x{i:04x}" for i in missing))


def check_group_supports(
    leaves: Iterable[tuple[int, LeafNode]], group_extensions: Iterable[Extension],
    cp: CodePoints = DEFAULT_CODEPOINTS,
) -> None:
    """`check_leaf_supports` for every member (e.g. `g.members()` against a proposed
    GroupContext; §5 "must be understood by the entire group")."""
    exts = tuple(group_extensions)
    for index, leaf in leaves:
        check_leaf_supports(leaf, exts, cp, label=f"member {index}")
