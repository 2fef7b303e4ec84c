"""The delivery service (docs/DS.md): an in-process, sans-IO MLS server for clients and
the virtual clients of draft-ietf-mls-virtual-clients-00.

Modules:
  service  DeliveryService, Submitted: total order per group with an epoch check,
           fan-out to emulators (§5.1), generation IDs (§5.9, P11, P20), KeyPackage
           directory (P21), GroupInfo publication, mailboxes, audit
  state    the state as plain data (Delivery, GroupRecord, DSStats, DSState, ...)
  wire     the public fields the DS reads from MLS messages
  persist  a versioned binary snapshot of the state, and its records in a Store
  faults   FaultPolicy, FaultLayer: seeded delays, duplicates, cross-group reordering
           and drops between the mailboxes and the clients (recovered by refetch)
  errors   DeliveryError (API misuse), UnacceptableMessage (wrong kind of message)

It imports the wire structs (mlsvc.messages) and never the group engine or draft code:
it knows wire messages and public metadata, never a secret.
"""

from mlsvc.ds.errors import DeliveryError, UnacceptableMessage
from mlsvc.ds.faults import FaultLayer, FaultPolicy, FaultStats
from mlsvc.ds.service import REASONS, DeliveryService, Submitted
from mlsvc.ds.state import (
    Consistency,
    Delivery,
    DeliveryKind,
    DSState,
    DSStats,
    GenerationIdRecord,
    GroupRecord,
    KeyPackageEntry,
)
from mlsvc.ds.wire import RatchetType

__all__ = [
    "REASONS",
    "Consistency",
    "DSState",
    "DSStats",
    "Delivery",
    "DeliveryError",
    "DeliveryKind",
    "DeliveryService",
    "FaultLayer",
    "FaultPolicy",
    "FaultStats",
    "GenerationIdRecord",
    "GroupRecord",
    "KeyPackageEntry",
    "RatchetType",
    "Submitted",
    "UnacceptableMessage",
]
