"""The delivery service's state as plain data: what a real server would store.

Everything here is bytes, ints, strs, lists and dicts in dataclasses, so the state can
be written to a file or a database row by row (persist.py encodes it; the SQLite store
of the next issue can map each record to a table). Nothing here is a secret: a test
that reads a `DSState` reads what a server operator could read.

Records:
  Delivery            one accepted message (or Welcome), as recipients get it
  GroupRecord         a group: epoch, members (client or virtual-client ids), accepted
                      log and each entry's recipients, the epochs a Commit closed,
                      published GroupInfos by epoch
  GenerationIdRecord  one accepted generation ID (draft-00 §5.9) with its scope
  KeyPackageEntry     one uploaded KeyPackage: its ref (computed by the DS), bytes, owner
  DSStats             counters; kept apart from the state so a refused submission can be
                      shown to change the state not at all while still being counted
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Consistency(Enum):
    """draft-00 §5.9 / profile P20: how the DS coordinates generations.

    STRONG (default): an emulator's PrivateMessage carries a generation ID; the DS
    accepts it iff no accepted message in the same (group, epoch, ratchet type) has that
    ID. EVENTUAL: no IDs; emulators keep sent keys for a window instead."""

    STRONG = "strong"
    EVENTUAL = "eventual"


class DeliveryKind(Enum):
    """What a mailbox item is: a handshake message (Proposal or Commit, Public- or
    PrivateMessage), an application message (PrivateMessage application), a Welcome."""

    HANDSHAKE = "handshake"
    APPLICATION = "application"
    WELCOME = "welcome"


@dataclass(frozen=True)
class Delivery:
    """One item in a client's mailbox; the same object goes to every recipient.

    `seq` is DS-wide and strictly increasing (the deterministic order of everything the
    DS accepted); `group_seq` the position in the group's total order (None for a
    Welcome); `epoch` the epoch in the clear header (None for a Welcome: its GroupInfo
    is encrypted); `sender` the submitting client (the connection a server sees);
    `on_behalf_of` the virtual client it claimed to act for, if any; `message` the
    MLSMessage bytes exactly as submitted."""

    seq: int
    kind: DeliveryKind
    group_id: bytes
    group_seq: int | None
    epoch: int | None
    sender: str
    message: bytes
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class GenerationIdRecord:
    """An accepted generation ID (draft-00 §5.9) in its scope (P11: the DS scopes by
    group and epoch itself, the ID does not). `seq` is the accepted message's."""

    group_id: bytes
    epoch: int
    ratchet_type: int  # RatchetType: application 1, handshake 2
    generation_id: bytes
    seq: int
    sender: str
    on_behalf_of: str | None

    @property
    def scope(self) -> tuple[bytes, int, int, bytes]:
        return (self.group_id, self.epoch, self.ratchet_type, self.generation_id)


@dataclass(frozen=True)
class KeyPackageEntry:
    """An uploaded KeyPackage: its KeyPackageRef (RFC 9420 §5.2, computed by the DS),
    the bytes exactly as uploaded, and the owner (a client or a virtual client)."""

    ref: bytes
    key_package: bytes
    owner: str


@dataclass
class GroupRecord:
    """A group as the DS knows it. `members` are client or virtual-client ids in the
    order they joined; `log` the accepted messages in total order; `commit_epochs` the
    epochs whose Commit the DS accepted (each closed that epoch); `group_infos` the
    GroupInfo published for each epoch (bytes as published); `recipients[i]` the
    clients `log[i]` was addressed to when it was accepted (what `refetch` answers
    from: membership and emulators change later)."""

    group_id: bytes
    epoch: int
    members: list[str] = field(default_factory=list)
    log: list[Delivery] = field(default_factory=list)
    commit_epochs: list[int] = field(default_factory=list)
    group_infos: dict[int, bytes] = field(default_factory=dict)
    recipients: list[list[str]] = field(default_factory=list)


@dataclass
class DSStats:
    """Counters of what the DS did; `refused_by_reason` maps a Submitted.reason to a
    count. `deliveries` counts mailbox insertions (one per recipient)."""

    accepted: int = 0
    refused: int = 0
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    generation_id_collisions: int = 0
    deliveries: int = 0
    welcomes: int = 0
    key_packages_uploaded: int = 0
    key_packages_fetched: int = 0
    key_packages_deleted: int = 0
    group_infos_published: int = 0

    def refuse(self, reason: str) -> None:
        self.refused += 1
        self.refused_by_reason[reason] = self.refused_by_reason.get(reason, 0) + 1


@dataclass
class DSState:
    """The whole state of one delivery service.

    `clients` are registered client ids; `virtual_clients` maps a virtual-client id to
    its emulators (client ids); `mailboxes` has one FIFO per client; `directory` the
    outstanding KeyPackages per owner (FIFO); `handed_out` maps each KeyPackageRef the
    directory gave away (fetched, or consumed by a Welcome) to its owner, for Welcome
    routing; `welcomes` every Welcome delivered and `welcome_recipients[i]` the clients
    `welcomes[i]` went to (for `welcomes_for`)."""

    consistency: Consistency = Consistency.STRONG
    next_seq: int = 0
    clients: list[str] = field(default_factory=list)
    virtual_clients: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[bytes, GroupRecord] = field(default_factory=dict)
    mailboxes: dict[str, list[Delivery]] = field(default_factory=dict)
    directory: dict[str, list[KeyPackageEntry]] = field(default_factory=dict)
    handed_out: dict[bytes, str] = field(default_factory=dict)
    generation_ids: list[GenerationIdRecord] = field(default_factory=list)
    welcomes: list[Delivery] = field(default_factory=list)
    welcome_recipients: list[list[str]] = field(default_factory=list)
    # the literal reading of draft-00 §5.9 (finding F3, never for deployment): scope
    # generation-ID collisions by the ID alone, not by (group, epoch, ratchet type)
    literal_p11_ds_scope: bool = False
