"""Code points, labels and check IDs of draft-ietf-mls-extensions-09, in one table.

The -09 IANA section (§7) gives extension and proposal types as "suggested" values
(digest ambiguity A11): they live in `CodePoints`, a frozen dataclass whose defaults are
the suggested values. A deployment that uses other values builds its own `CodePoints`
and passes it to the functions of this package; nothing in the protocol code names a
number. The MLS Component Types registry (§7.5, "Initial Contents") is fixed by the draft,
but is kept in the same table so that a deployment can move it too.

Labels are given without the "MLS 1.0 " prefix: `mlsvc.crypto.labels` adds it
(RFC 9420 §8; profile Q10).

The validation rules this package enforces are the EXT-* rows of the one table of
named checks, `mlsvc.checks.CHECKS`; they are raised with `mlsvc.checks.fail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mlsvc.errors import ParameterError


@dataclass(frozen=True)
class CodePoints:
    """Every code point this package puts on the wire (-09 §7 / profile P1, A11)."""

    # MLS Extension Types (§7.2 "MLS Extension Types"; all "suggested")
    app_data_dictionary: int = 0x0006
    supported_wire_formats: int = 0x0007
    required_wire_formats: int = 0x0008
    # MLS Proposal Types (§7.3 "MLS Proposal Types"; all "suggested"). 0x0008 is both an
    # extension type and a proposal type in -09: different registries, no clash.
    app_data_update: int = 0x0008
    app_ephemeral: int = 0x0009
    self_remove: int = 0x000A
    app_ack_proposal: int = 0x000B
    # MLS Component Types (§7.5 "MLS Component Types", initial contents)
    app_components: int = 0x0001
    safe_aad: int = 0x0002
    content_media_types: int = 0x0003
    last_resort_key_package: int = 0x0004
    app_ack_component: int = 0x0005

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not 0 <= value <= 0xFFFF:
                raise ParameterError(f"code point {name}={value} is not a uint16")


DEFAULT_CODEPOINTS: Final = CodePoints()
"""The values -09 suggests (profile P1)."""

# --- Component IDs (§4.1, §7.5) -----------------------------------------------------------

COMPONENT_ID_MAX: Final = 0xFFFF
"""§4.1 (-09): uint16 ComponentID (profile P1; -08 had uint32, digest A1)."""

COMPONENT_RESERVED: Final = 0x0000
"""§7.5 MLS Component Types: 0x0000 RESERVED."""

PRIVATE_USE_COMPONENTS: Final = range(0x8000, 0x10000)
"""§7.5: 0x8000-0xFFFF are reserved for private use."""

GREASE_COMPONENTS: Final = frozenset(0x0A0A + 0x1010 * i for i in range(8))
"""§7.5: the component registry's GREASE values 0x0A0A, 0x1A1A, ..., 0x7A7A (only the
range 0x0000-0x7FFF is registrable, so 8 values, not RFC 9420's 15)."""

COMPONENT_BASE_LABEL: Final = b"MLS Component"
"""§4.1 (-09): ComponentOperationLabel.base_label (profile P1; -08 had "Application")."""

# --- Safe Exporter (§4.4) -----------------------------------------------------------------

APPLICATION_EXPORT_LABEL: Final = b"application_export"
"""§4.4: application_export_secret = DeriveSecret(epoch_secret, "application_export")
(underscore as written, digest A3)."""

EXPORTER_TREE_DEPTH: Final = 16
"""§4.4: the Exporter Tree always has 2^16 leaves, one per ComponentID."""

TREE_LABEL: Final = b"tree"
LEFT_CONTEXT: Final = b"left"
RIGHT_CONTEXT: Final = b"right"
"""RFC 9420 §9 (the Secret Tree the Exporter Tree copies, P2):
left(N) = ExpandWithLabel(N, "tree", "left", Nh), right(N) likewise with "right"."""

# --- Validation checks ------------------------------------------------------------------------



def check_component_id(value: int) -> int:
    """A ComponentID is a uint16 (§4.1); the caller's value otherwise is a ParameterError."""
    if not isinstance(value, int) or not 0 <= value <= COMPONENT_ID_MAX:
        raise ParameterError(f"ComponentID {value!r} is not a uint16")
    return value


def is_grease_component(value: int) -> bool:
    """True for the component registry's GREASE values (§5.1, §7.5)."""
    return value in GREASE_COMPONENTS
