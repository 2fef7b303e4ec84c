"""The Safe Exporter (draft-ietf-mls-extensions-09 §4.4).

    application_export_secret = DeriveSecret(epoch_secret, "application_export")
    SafeExportSecret(ComponentID) = tree_node_[LeafIndex(ComponentID)]_secret

of an Exporter Tree: a `PPRF` of depth 16 (2^16 leaves, one per uint16 ComponentID,
P1/P2) rooted at application_export_secret. LeafIndex(ComponentID) is the ID itself,
walked MSB-first (digest A2). The output is the leaf secret, Nh bytes (A6).

"Upon generating an exported secret for a component, the MLS implementation MUST regard
that component's exported secret as consumed, and delete any source key material
according to the deletion schedule in RFC 9420 §9.2": `SafeExporter.export` punctures
the tree, and a second export of the same component in the same epoch raises
`ExportConsumedError` (digest A4: this library refuses rather than caches, as OpenMLS
does; a caller that needs the value again keeps it).

Where application_export_secret comes from: the group engine keeps
DeriveSecret(epoch_secret, label) for every label in
`GroupConfig.additional_epoch_secrets`; a group configured with
`SAFE_EXPORT_CONFIG_LABELS` has it in `g.state.secrets.additional`. `SafeExporter.
from_group` takes it out of the group's state (deleting the group's copy: once the tree
exists the root must not survive elsewhere, §4.4 / RFC 9420 §9.2), and `SafeExporters`
keeps one exporter per (group_id, epoch), dropping a group's older epochs when a newer
one is opened (digest A5: the draft sets no lifetime; old trees go with the epoch).
"""

from __future__ import annotations

from typing import Final, Protocol

from mlsvc.crypto.labels import derive_secret
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import StateError
from mlsvc.ext.codepoints import APPLICATION_EXPORT_LABEL, EXPORTER_TREE_DEPTH, check_component_id
from mlsvc.ext.pprf import PPRF, PuncturedInputError

SAFE_EXPORT_CONFIG_LABELS: Final = (APPLICATION_EXPORT_LABEL,)
"""Pass as `GroupConfig(additional_epoch_secrets=...)` to make a group keep the root."""


def application_export_secret(cs: CipherSuite, epoch_secret: bytes) -> bytes:
    """§4.4: derived "in the same way as the other secrets listed in Table 4 of RFC 9420
    using the label application_export", i.e. DeriveSecret(epoch_secret, label)."""
    return derive_secret(cs, epoch_secret, APPLICATION_EXPORT_LABEL)


class ExportConsumedError(PuncturedInputError):
    """SafeExportSecret(component) was already generated in this epoch (§4.4)."""

    def __init__(self, component_id: int) -> None:
        super().__init__(component_id)
        self.component_id = component_id
        self.args = (f"SafeExportSecret(0x{component_id:04x}) was already consumed in this "
                     "epoch",)


class _GroupView(Protocol):
    """What `SafeExporter.from_group` needs of `mlsvc.group.group.Group` (structural, so
    this module does not import the engine)."""

    @property
    def group_id(self) -> bytes: ...

    @property
    def epoch(self) -> int: ...

    @property
    def cipher_suite(self) -> CipherSuite: ...

    @property
    def state(self) -> _StateView: ...


class _StateView(Protocol):
    @property
    def secrets(self) -> _SecretsView: ...


class _SecretsView(Protocol):
    @property
    def additional(self) -> dict[bytes, bytes]: ...


class SafeExporter:
    """One epoch's Exporter Tree (§4.4)."""

    __slots__ = ("epoch", "group_id", "tree")

    def __init__(self, cs: CipherSuite, application_export_secret: bytes,
                 group_id: bytes = b"", epoch: int = 0) -> None:
        self.group_id = group_id
        self.epoch = epoch
        self.tree = PPRF(cs, application_export_secret, EXPORTER_TREE_DEPTH)

    @classmethod
    def from_epoch_secret(cls, cs: CipherSuite, epoch_secret: bytes, group_id: bytes = b"",
                          epoch: int = 0) -> SafeExporter:
        return cls(cs, application_export_secret(cs, epoch_secret), group_id, epoch)

    @classmethod
    def from_group(cls, group: _GroupView, *, take: bool = True) -> SafeExporter:
        """The exporter of the group's current epoch, from the application_export_secret
        the engine derived. With `take` (the default) the group's copy is deleted.
        StateError when the group was not configured with SAFE_EXPORT_CONFIG_LABELS, or
        its secret was already taken this epoch."""
        additional = group.state.secrets.additional
        secret = additional.get(APPLICATION_EXPORT_LABEL)
        if secret is None:
            raise StateError(
                "no application_export_secret in this epoch: configure the group with "
                "GroupConfig(additional_epoch_secrets=SAFE_EXPORT_CONFIG_LABELS), and open "
                "one SafeExporter per epoch")
        if take:
            del additional[APPLICATION_EXPORT_LABEL]
        return cls(group.cipher_suite, secret, group.group_id, group.epoch)

    def export(self, component_id: int) -> bytes:
        """SafeExportSecret(component_id), consumed: the leaf and its path are deleted."""
        check_component_id(component_id)
        try:
            return self.tree.evaluate_and_puncture(component_id)
        except PuncturedInputError:
            raise ExportConsumedError(component_id) from None

    def is_consumed(self, component_id: int) -> bool:
        return self.tree.is_punctured(check_component_id(component_id))


class SafeExporters:
    """The open Exporter Trees of a client, keyed by (group_id, epoch)."""

    def __init__(self) -> None:
        self._open: dict[tuple[bytes, int], SafeExporter] = {}

    def for_group(self, group: _GroupView) -> SafeExporter:
        """The exporter of the group's current epoch, opened on first use (which takes the
        root out of the group state); the group's older epochs are dropped."""
        key = (group.group_id, group.epoch)
        exporter = self._open.get(key)
        if exporter is None:
            exporter = SafeExporter.from_group(group)
            for old in [k for k in self._open if k[0] == group.group_id]:
                del self._open[old]
            self._open[key] = exporter
        return exporter

    def export(self, group: _GroupView, component_id: int) -> bytes:
        """SafeExportSecret(component_id) in the group's current epoch (§4.4)."""
        return self.for_group(group).export(component_id)

    def forget(self, group_id: bytes) -> None:
        """Drop every tree of a group (e.g. when the client leaves it)."""
        for old in [k for k in self._open if k[0] == group_id]:
            del self._open[old]

    def __contains__(self, key: object) -> bool:
        return key in self._open
