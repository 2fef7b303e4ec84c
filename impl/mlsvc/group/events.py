"""What `Group.process` reports (sans-IO: the application acts on these)."""

from __future__ import annotations

from dataclasses import dataclass

from mlsvc.messages.framing import Sender
from mlsvc.messages.proposals import Proposal, ReInit
from mlsvc.types import LeafIndex


@dataclass(frozen=True)
class ApplicationMessage:
    sender: LeafIndex
    data: bytes
    authenticated_data: bytes
    generation: int
    # from the sender data and the secret tree: what an emulator needs to recover the
    # sending emulator from a reuse guard (draft-ietf-mls-virtual-clients-00 §5.8, Q5)
    reuse_guard: bytes = b""
    key_schedule_nonce: bytes = b""


@dataclass(frozen=True)
class ProposalReceived:
    """A proposal cached for the next commit of this epoch (§12.1)."""

    ref: bytes
    proposal: Proposal
    sender: Sender
    authenticated_data: bytes


@dataclass(frozen=True)
class CommitApplied:
    """The group moved to `epoch` (§12.4.2)."""

    epoch: int
    sender: Sender
    proposals: tuple[Proposal, ...]
    added: tuple[LeafIndex, ...]
    removed: tuple[LeafIndex, ...]
    authenticated_data: bytes
    own: bool = False  # our own pending commit, merged
    removed_self: bool = False  # we were removed: the group is no longer usable
    reinit: ReInit | None = None  # a ReInit was committed: the group is closed (§11.2)


Event = ApplicationMessage | ProposalReceived | CommitApplied
