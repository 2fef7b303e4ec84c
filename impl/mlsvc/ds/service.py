"""The delivery service: total order per group, fan-out to emulators, generation IDs,
the KeyPackage directory and GroupInfo publication (RFC 9420 §16, RFC 9750;
draft-ietf-mls-virtual-clients-00 §5.1, §5.9; profile P11, P20, P21, P22).

Theory of operation
-------------------
Sans-IO and deterministic: each method is one request a client makes to the server;
`submit` and `send_welcome` put `Delivery` items into per-client mailboxes, and the
driver (a simulation, or a network front end) pops them with `receive`. There is no
clock, thread or randomness; the DS-wide `seq` orders everything it accepted.

Who is who. A *client* has a mailbox. A *virtual client* (vc) is an id with a list of
emulators (clients); it has no mailbox of its own: wherever a vc is a recipient, each
of its emulators is. A group member is a client id or a vc id.

Per group the DS keeps a total order with an epoch check, as a strongly consistent DS
does (RFC 9750 §5.2; profile P22): a message is accepted only at the group's current
epoch; the first Commit for an epoch moves the group to the next one, so a concurrent
second Commit for that epoch loses ("commit-conflict"), and so does every other
message still at the old epoch ("stale-epoch"). Both consistency modes keep this order;
they differ only for generation IDs (P20).

The DS reads public fields only (wire.py): wire format, group_id, epoch, content_type,
a PublicMessage's sender type, KeyPackageRefs, a published GroupInfo's group and epoch.
It never holds a secret and verifies no signature: the members judge what it relays.

A refused submission returns `Submitted(accepted=False, reason=...)` and changes no
state (only `stats` counts it). Wrong use of the API raises DeliveryError; a
well-formed message of the wrong kind raises UnacceptableMessage; bytes that do not
parse raise DecodeError; in every case the state is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from mlsvc.ds.errors import DeliveryError, UnacceptableMessage
from mlsvc.ds.faults import FaultLayer, FaultPolicy
from mlsvc.ds.persist import (
    RecordStore,
    SavedMarks,
    decode_snapshot,
    encode_snapshot,
    load_records,
    state_records,
)
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
from mlsvc.ds.wire import (
    MessageHeader,
    group_info_id,
    key_package_ref,
    ratchet_type_of,
    read_header,
    welcome_refs,
)
from mlsvc.errors import ParameterError
from mlsvc.messages.codepoints import ContentType, WireFormat

__all__ = [
    "Consistency",
    "DSStats",
    "Delivery",
    "DeliveryKind",
    "DeliveryService",
    "Submitted",
]

def _require_after(after: int, what: str) -> None:
    if isinstance(after, bool) or not isinstance(after, int) or after < -1:
        raise ParameterError(f"{what} must be an int >= -1, not {after!r}")


# Submitted.reason values (docs/DS.md lists the rule behind each).
STALE_EPOCH = "stale-epoch"
COMMIT_CONFLICT = "commit-conflict"
GENERATION_ID_COLLISION = "generation-id-collision"
MISSING_GENERATION_ID = "missing-generation-id"
UNKNOWN_GROUP = "unknown-group"
NOT_A_MEMBER = "not-a-member"
NOT_AN_EMULATOR = "not-an-emulator"
CHECK_OF_REASON = {GENERATION_ID_COLLISION: "VC-GENERATION-ID-COLLISION",
                   MISSING_GENERATION_ID: "VC-GENERATION-ID-MISSING"}
"""Refusals that enforce a named check of draft-00 §5.9 / P20."""

REASONS = (STALE_EPOCH, COMMIT_CONFLICT, GENERATION_ID_COLLISION, MISSING_GENERATION_ID,
           UNKNOWN_GROUP, NOT_A_MEMBER, NOT_AN_EMULATOR)


@dataclass(frozen=True)
class Submitted:
    """The DS's answer to `submit`: accepted with its place in the group's order and
    the Delivery every recipient got, or refused with a reason (one of REASONS)."""

    accepted: bool
    reason: str | None
    group_seq: int | None
    delivery: Delivery | None

    @property
    def check_id(self) -> str | None:
        """The named check (mlsvc.checks) a refusal enforces, where it is one of the
        drafts' rules (docs/VALIDATION.md); None otherwise."""
        return CHECK_OF_REASON.get(self.reason) if self.reason is not None else None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _changes_state(method: Callable[Concatenate[DeliveryService, _P], _R]
                   ) -> Callable[Concatenate[DeliveryService, _P], _R]:
    """A request that changes the state: with a store attached (`attach_store`), the
    change is written before the answer is returned. A request that raises changed
    nothing (every method checks before it mutates), so nothing is written."""

    def wrapper(self: DeliveryService, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        result = method(self, *args, **kwargs)
        if self._store is not None:
            self._flush()
        return result

    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = method.__qualname__
    wrapper.__doc__ = method.__doc__
    return wrapper


class DeliveryService:
    """An in-process MLS delivery service for clients and virtual clients."""

    def __init__(self, consistency: Consistency = Consistency.STRONG, *,
                 faults: FaultPolicy | None = None,
                 literal_p11_ds_scope: bool = False) -> None:
        """`literal_p11_ds_scope`: the literal reading of draft-00 §5.9 (finding F3,
        mlsvc.vc.readings; for spec authors and the refinement test, never for
        deployment): generation-ID collisions are scoped by the generation ID alone,
        as a DS that sees only `struct { uint32 generation; RatchetType ratchet_type; }
        PrivateMessageContext` would, instead of by (group, epoch, ratchet type) (P11).
        Kept in snapshots and stores."""
        if not isinstance(consistency, Consistency):
            raise ParameterError(f"consistency must be a Consistency, not {consistency!r}")
        if faults is not None and not isinstance(faults, FaultPolicy):
            raise ParameterError(f"faults must be a FaultPolicy, not {faults!r}")
        if not isinstance(literal_p11_ds_scope, bool):
            raise ParameterError("literal_p11_ds_scope must be a bool")
        self._s = DSState(consistency=consistency, literal_p11_ds_scope=literal_p11_ds_scope)
        self.stats = DSStats()
        self._faults = FaultLayer(faults) if faults is not None else None
        self._store: RecordStore | None = None
        self._marks = SavedMarks()
        self._rebuild_indexes()

    # --- derived indexes (rebuilt from the plain state on restore) ---------------------

    def _rebuild_indexes(self) -> None:
        self._gen_index: set[tuple[bytes, int, int, bytes]] = {
            self._scope(g.scope) for g in self._s.generation_ids}
        self._outstanding: dict[bytes, str] = {
            e.ref: e.owner for entries in self._s.directory.values() for e in entries}

    # --- inspection -------------------------------------------------------------------

    @property
    def consistency(self) -> Consistency:
        return self._s.consistency

    @property
    def literal_p11_ds_scope(self) -> bool:
        """The literal reading F3 (see the constructor)."""
        return self._s.literal_p11_ds_scope

    @property
    def faults(self) -> FaultLayer | None:
        """The fault layer (faults.py) if one is attached: its policy, state and
        `stats` (counts of each fault)."""
        return self._faults

    @property
    def state(self) -> DSState:
        """The plain-data state (read it, do not mutate it): what the server stores."""
        return self._s

    def clients(self) -> tuple[str, ...]:
        return tuple(self._s.clients)

    def virtual_clients(self) -> tuple[str, ...]:
        return tuple(self._s.virtual_clients)

    def groups(self) -> tuple[bytes, ...]:
        return tuple(self._s.groups)

    # --- clients and virtual clients (draft-00 §5.1) -----------------------------------

    @_changes_state
    def register_client(self, client_id: str) -> None:
        """A client with a mailbox. DeliveryError if the id is taken (by a client or a
        virtual client: members of a group name either)."""
        self._require_new_id(client_id)
        self._s.clients.append(client_id)
        self._s.mailboxes[client_id] = []

    @_changes_state
    def register_virtual_client(self, vc_id: str, emulators: Iterable[str]) -> None:
        """A virtual client emulated by `emulators` (registered clients; may be empty)."""
        self._require_new_id(vc_id)
        ems = list(emulators)
        for e in ems:
            self._require_client(e)
        if len(set(ems)) != len(ems):
            raise DeliveryError("duplicate-emulator", f"{vc_id!r}: an emulator is listed twice")
        self._s.virtual_clients[vc_id] = ems

    @_changes_state
    def add_emulator(self, vc_id: str, emulator: str) -> None:
        ems = self._require_vc(vc_id)
        self._require_client(emulator)
        if emulator in ems:
            raise DeliveryError("already-an-emulator", f"{emulator!r} already emulates {vc_id!r}")
        ems.append(emulator)

    @_changes_state
    def remove_emulator(self, vc_id: str, emulator: str) -> None:
        """From now on `emulator` neither receives the vc's traffic nor may act for it
        (its mailbox keeps what was already delivered)."""
        ems = self._require_vc(vc_id)
        if emulator not in ems:
            raise DeliveryError("not-an-emulator", f"{emulator!r} does not emulate {vc_id!r}")
        ems.remove(emulator)

    def emulators(self, vc_id: str) -> tuple[str, ...]:
        return tuple(self._require_vc(vc_id))

    # --- groups ------------------------------------------------------------------------

    @_changes_state
    def create_group(self, group_id: bytes, epoch: int, members: Iterable[str]) -> None:
        """Make the DS aware of a group at `epoch` with these members (client or vc ids)."""
        if group_id in self._s.groups:
            raise DeliveryError("group-exists", f"group {group_id.hex()} already exists")
        if not isinstance(epoch, int) or not 0 <= epoch < (1 << 64):
            raise ParameterError(f"epoch {epoch!r} is not a uint64")
        ms = list(members)
        for m in ms:
            self._require_id(m)
        if len(set(ms)) != len(ms):
            raise DeliveryError("duplicate-member", "a member is listed twice")
        self._s.groups[group_id] = GroupRecord(group_id, epoch, ms)

    @_changes_state
    def add_member(self, group_id: bytes, member: str) -> None:
        g = self._require_group(group_id)
        self._require_id(member)
        if member in g.members:
            raise DeliveryError("already-a-member", f"{member!r} is already a member")
        g.members.append(member)

    @_changes_state
    def remove_member(self, group_id: bytes, member: str) -> None:
        g = self._require_group(group_id)
        if member not in g.members:
            raise DeliveryError(NOT_A_MEMBER, f"{member!r} is not a member")
        g.members.remove(member)

    def members(self, group_id: bytes) -> tuple[str, ...]:
        return tuple(self._require_group(group_id).members)

    def epoch(self, group_id: bytes) -> int:
        return self._require_group(group_id).epoch

    # --- the total order ---------------------------------------------------------------

    @_changes_state
    def submit(self, sender: str, message: bytes, *, on_behalf_of: str | None = None,
               generation_id: bytes | None = None) -> Submitted:
        """Submit a PublicMessage or PrivateMessage (MLSMessage bytes) to its group.

        `sender` is the submitting client; `on_behalf_of` the virtual client it acts for
        (it must be one of its emulators); `generation_id` the draft-00 §5.9 ID of a
        PrivateMessage (required from an emulator in STRONG mode, ignored in EVENTUAL).
        DecodeError / UnacceptableMessage / DeliveryError / ParameterError for input the
        DS cannot take (state unchanged); otherwise accepted or refused with a reason."""
        self._require_client(sender)
        if on_behalf_of is not None:
            self._require_vc(on_behalf_of)
        if generation_id is not None and (
                not isinstance(generation_id, bytes) or not generation_id):
            raise ParameterError("generation_id must be non-empty bytes")
        header = read_header(message)
        if generation_id is not None and header.wire_format != WireFormat.MLS_PRIVATE_MESSAGE:
            raise ParameterError("a generation ID names a secret-tree generation: only a "
                                 "PrivateMessage has one (draft-00 §5.9)")
        reason = self._judge(sender, on_behalf_of, header, generation_id)
        if reason is not None:
            self.stats.refuse(reason)
            if reason == GENERATION_ID_COLLISION:
                self.stats.generation_id_collisions += 1
            return Submitted(False, reason, None, None)
        return self._accept(sender, on_behalf_of, header, message, generation_id)

    def _judge(self, sender: str, on_behalf_of: str | None, header: MessageHeader,
               generation_id: bytes | None) -> str | None:
        """The reason to refuse, or None to accept. Reads state, changes nothing."""
        if on_behalf_of is not None and sender not in self._s.virtual_clients[on_behalf_of]:
            return NOT_AN_EMULATOR
        g = self._s.groups.get(header.group_id)
        if g is None:
            return UNKNOWN_GROUP
        actor = on_behalf_of or sender
        if actor not in g.members and not header.from_non_member:
            return NOT_A_MEMBER
        if header.epoch != g.epoch:
            # RFC 9750 §5.2 / P22: the first Commit of an epoch wins; a later one for the
            # same epoch conflicts with it. Anything else off the current epoch is stale.
            if header.is_commit and header.epoch in g.commit_epochs:
                return COMMIT_CONFLICT
            return STALE_EPOCH
        if (self._s.consistency == Consistency.STRONG
                and header.wire_format == WireFormat.MLS_PRIVATE_MESSAGE):
            # draft-00 §5.9, P20: an emulator's PrivateMessage carries its generation ID;
            # the DS accepts it iff the (group, epoch, ratchet type) has not seen it (P11).
            if on_behalf_of is not None and generation_id is None:
                return MISSING_GENERATION_ID
            if generation_id is not None and self._gen_scope(header, generation_id) \
                    in self._gen_index:
                return GENERATION_ID_COLLISION
        return None

    def _gen_scope(self, header: MessageHeader, generation_id: bytes
                   ) -> tuple[bytes, int, int, bytes]:
        return self._scope((header.group_id, header.epoch,
                            int(ratchet_type_of(header.content_type)), generation_id))

    def _scope(self, scope: tuple[bytes, int, int, bytes]) -> tuple[bytes, int, int, bytes]:
        """P11: a generation ID is unique per (group, epoch, ratchet type); under the
        literal reading F3 the DS knows the ID only, so its scope is the ID alone."""
        return (b"", 0, 0, scope[3]) if self._s.literal_p11_ds_scope else scope

    def _accept(self, sender: str, on_behalf_of: str | None, header: MessageHeader,
                message: bytes, generation_id: bytes | None) -> Submitted:
        g = self._s.groups[header.group_id]
        kind = (DeliveryKind.APPLICATION if header.content_type == ContentType.APPLICATION
                else DeliveryKind.HANDSHAKE)
        delivery = Delivery(self._next_seq(), kind, g.group_id, len(g.log), header.epoch,
                            sender, message, on_behalf_of)
        recipients = self._recipients(g.members, sender, on_behalf_of)
        g.log.append(delivery)
        g.recipients.append(list(recipients))
        if header.is_commit:
            g.commit_epochs.append(g.epoch)
            g.epoch += 1
        if header.is_external_commit:
            actor = on_behalf_of or sender
            if actor not in g.members:
                g.members.append(actor)
        if (generation_id is not None and self._s.consistency == Consistency.STRONG):
            rec = GenerationIdRecord(g.group_id, header.epoch,
                                     int(ratchet_type_of(header.content_type)),
                                     generation_id, delivery.seq, sender, on_behalf_of)
            self._s.generation_ids.append(rec)
            self._gen_index.add(self._scope(rec.scope))
        self._deliver(delivery, recipients)
        self.stats.accepted += 1
        return Submitted(True, None, delivery.group_seq, delivery)

    def _recipients(self, members: Iterable[str], sender: str,
                    on_behalf_of: str | None) -> list[str]:
        """draft-00 §5.1: every member, a vc expanded to its emulators, plus every
        emulator of the vc the sender acts for; each once, never the sender."""
        out: list[str] = []
        seen = {sender}

        def add(client: str) -> None:
            if client not in seen:
                seen.add(client)
                out.append(client)

        for m in members:
            for c in self._s.virtual_clients.get(m, [m]):
                add(c)
        if on_behalf_of is not None:
            for c in self._s.virtual_clients[on_behalf_of]:
                add(c)
        return out

    def _deliver(self, delivery: Delivery, recipients: Iterable[str]) -> None:
        for c in recipients:
            self.stats.deliveries += 1
            if (self._faults is not None and self._faults.applies(c)
                    and not self._faults.admit(c, delivery)):
                continue  # dropped on the way to c: only refetch finds it
            self._s.mailboxes[c].append(delivery)

    def _next_seq(self) -> int:
        seq = self._s.next_seq
        self._s.next_seq += 1
        return seq

    # --- Welcome routing ---------------------------------------------------------------

    @_changes_state
    def send_welcome(self, sender: str, group_id: bytes, welcome: bytes) -> tuple[str, ...]:
        """Deliver a Welcome to the owner of every KeyPackageRef in it that this
        directory handed out (fetched) or still holds; a vc owner gets it at every
        emulator. The owners become members of `group_id`. Returns the recipients.

        `sender` must be a member of the group, or an emulator of a vc member.
        UnacceptableMessage("unknown-key-package-ref") if no ref is known."""
        self._require_client(sender)
        g = self._require_group(group_id)
        if sender not in g.members and not any(
                sender in self._s.virtual_clients.get(m, ()) for m in g.members):
            raise DeliveryError(NOT_A_MEMBER, f"{sender!r} is not a member of the group "
                                              "nor an emulator of one")
        owners: list[str] = []
        consumed: list[bytes] = []
        for ref in welcome_refs(welcome):
            owner = self._s.handed_out.get(ref)
            if owner is None and ref in self._outstanding:
                owner = self._outstanding[ref]
                consumed.append(ref)
            if owner is not None and owner not in owners:
                owners.append(owner)
        if not owners:
            raise UnacceptableMessage("unknown-key-package-ref",
                                      "no KeyPackageRef of the Welcome came from this directory")
        # A KeyPackage a Welcome used without a fetch is used up (RFC 9420 §16.8).
        for ref in consumed:
            self._take_outstanding(ref)
        recipients = self._recipients(owners, sender, None)
        delivery = Delivery(self._next_seq(), DeliveryKind.WELCOME, group_id, None, None,
                            sender, welcome)
        for owner in owners:
            if owner not in g.members:
                g.members.append(owner)
        self._s.welcomes.append(delivery)
        self._s.welcome_recipients.append(list(recipients))
        self._deliver(delivery, recipients)
        self.stats.welcomes += 1
        return tuple(recipients)

    # --- KeyPackage directory ----------------------------------------------------------

    @_changes_state
    def upload_key_packages(self, owner: str, key_packages: Sequence[bytes]) -> tuple[bytes, ...]:
        """Store KeyPackages (MLSMessage or bare) for `owner` (a client or vc), in order.
        Returns their KeyPackageRefs, computed here (RFC 9420 §5.2). All or nothing:
        UnacceptableMessage("duplicate-key-package") if a ref is already known."""
        self._require_id(owner)
        entries = [KeyPackageEntry(key_package_ref(kp), bytes(kp), owner)
                   for kp in key_packages]
        refs = [e.ref for e in entries]
        if len(set(refs)) != len(refs) or any(
                r in self._outstanding or r in self._s.handed_out for r in refs):
            raise UnacceptableMessage("duplicate-key-package",
                                      "a KeyPackage was uploaded before")
        self._s.directory.setdefault(owner, []).extend(entries)
        for e in entries:
            self._outstanding[e.ref] = owner
        self.stats.key_packages_uploaded += len(entries)
        return tuple(refs)

    @_changes_state
    def fetch_key_package(self, owner: str) -> bytes:
        """The owner's oldest outstanding KeyPackage, removed from the directory (each
        is used once, RFC 9420 §16.8); its ref is remembered for Welcome routing.
        DeliveryError("no-key-package") if there is none."""
        self._require_id(owner)
        entries = self._s.directory.get(owner)
        if not entries:
            raise DeliveryError("no-key-package", f"{owner!r} has no outstanding KeyPackage")
        entry = entries[0]
        self._take_outstanding(entry.ref)
        self.stats.key_packages_fetched += 1
        return entry.key_package

    def _take_outstanding(self, ref: bytes) -> None:
        owner = self._outstanding.pop(ref)
        entries = self._s.directory[owner]
        entries[:] = [e for e in entries if e.ref != ref]
        if not entries:
            del self._s.directory[owner]
        self._s.handed_out[ref] = owner

    @_changes_state
    def delete_key_packages(self, owner: str) -> int:
        """P21 (finding F6): delete every outstanding KeyPackage of `owner`, so none can
        be fetched or welcomed any more. Returns how many there were."""
        self._require_id(owner)
        entries = self._s.directory.pop(owner, [])
        for e in entries:
            del self._outstanding[e.ref]
        self.stats.key_packages_deleted += len(entries)
        return len(entries)

    def outstanding_key_packages(self, owner: str) -> tuple[bytes, ...]:
        """The refs of the owner's outstanding KeyPackages, oldest first."""
        self._require_id(owner)
        return tuple(e.ref for e in self._s.directory.get(owner, []))

    # --- GroupInfo publication ---------------------------------------------------------

    @_changes_state
    def publish_group_info(self, group_id: bytes, group_info: bytes) -> None:
        """Publish a GroupInfo (MLSMessage or bare) for external joins (RFC 9420
        §12.4.3.2). Its GroupContext must name `group_id` and an epoch the group has
        reached; a later publication for the same epoch replaces the earlier one."""
        g = self._require_group(group_id)
        gid, epoch = group_info_id(group_info)
        if gid != group_id:
            raise UnacceptableMessage("group-id-mismatch",
                                      f"GroupInfo is for group {gid.hex()}")
        if epoch > g.epoch:
            raise UnacceptableMessage(
                "future-epoch", f"GroupInfo for epoch {epoch}, group is at {g.epoch}: "
                                "submit the Commit first")
        g.group_infos[epoch] = bytes(group_info)
        self.stats.group_infos_published += 1

    def group_info(self, group_id: bytes, epoch: int | None = None) -> bytes:
        """The GroupInfo of the highest published epoch, or the one for `epoch`.
        DeliveryError("no-group-info") if none."""
        g = self._require_group(group_id)
        if not g.group_infos or (epoch is not None and epoch not in g.group_infos):
            which = "any epoch" if epoch is None else f"epoch {epoch}"
            raise DeliveryError("no-group-info", f"no GroupInfo published for {which}")
        return g.group_infos[max(g.group_infos) if epoch is None else epoch]

    # --- mailboxes ---------------------------------------------------------------------

    def pending(self, client_id: str) -> int:
        """How many deliveries `receive` would hand over now (with faults: the
        undropped originals and the duplicates to come, delayed ones included)."""
        box = self._mailbox(client_id)
        if self._faults is not None and self._faults.applies(client_id):
            return self._faults.pending(client_id, box)
        return len(box)

    @_changes_state
    def receive(self, client_id: str, limit: int | None = None) -> list[Delivery]:
        """Pop up to `limit` (all if None) deliveries, oldest first (with faults: in
        the order the fault layer decides, each group's order kept)."""
        box = self._mailbox(client_id)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ParameterError(f"limit must be a non-negative int, not {limit!r}")
        if self._faults is not None and self._faults.applies(client_id):
            faults = self._faults
            out: list[Delivery] = []   # None: until nothing is left, duplicates included
            while faults.pending(client_id, box) and (limit is None or len(out) < limit):
                out.append(faults.take(client_id, box))
            return out
        n = len(box) if limit is None else min(limit, len(box))
        out = box[:n]
        del box[:n]
        return out

    def peek(self, client_id: str) -> Delivery | None:
        """What `receive(client_id, 1)` would hand over, or None; changes nothing."""
        box = self._mailbox(client_id)
        if self._faults is not None and self._faults.applies(client_id):
            return self._faults.peek(client_id, box)
        return box[0] if box else None

    def _mailbox(self, client_id: str) -> list[Delivery]:
        self._require_client(client_id)
        return self._s.mailboxes[client_id]

    # --- refetch: a client that noticed a gap asks again ------------------------------

    def refetch(self, client_id: str, group_id: bytes, after_group_seq: int) -> list[Delivery]:
        """The group's accepted messages after `after_group_seq` (-1: from the start)
        that were addressed to `client_id` when the DS accepted them, in group order.

        What a client calls when a `group_seq` is missing (a drop), or at quiescence to
        learn whether the last messages of a group were lost. It reads the log only:
        the mailbox, the fault layer and the state are unchanged, so the client drops
        what it already has by `group_seq`. DeliveryError for an unknown client
        ("unknown-client", "not-a-client") or group ("unknown-group")."""
        self._require_client(client_id)
        g = self._require_group(group_id)
        _require_after(after_group_seq, "after_group_seq")
        return [d for d, to in zip(g.log[after_group_seq + 1:],
                                   g.recipients[after_group_seq + 1:], strict=True)
                if client_id in to]

    def welcomes_for(self, client_id: str, after_seq: int) -> list[Delivery]:
        """The Welcomes sent to `client_id` with a DS-wide `seq` after `after_seq`
        (-1: all), oldest first: a client that finds a group's messages without its
        Welcome (a dropped Welcome) asks here. Reads only; DeliveryError for an unknown
        client."""
        self._require_client(client_id)
        _require_after(after_seq, "after_seq")
        return [d for d, to in zip(self._s.welcomes, self._s.welcome_recipients, strict=True)
                if d.seq > after_seq and client_id in to]

    # --- audit: what a real server learns ---------------------------------------------

    def log(self, group_id: bytes) -> tuple[Delivery, ...]:
        """The group's accepted messages in total order."""
        return tuple(self._require_group(group_id).log)

    def generation_ids(self, group_id: bytes | None = None) -> tuple[GenerationIdRecord, ...]:
        """The generation-ID index (all groups, or one) in acceptance order."""
        return tuple(r for r in self._s.generation_ids
                     if group_id is None or r.group_id == group_id)

    def welcomes(self) -> tuple[Delivery, ...]:
        return tuple(self._s.welcomes)

    # --- persistence -------------------------------------------------------------------

    def to_bytes(self, *, include_stats: bool = True) -> bytes:
        """A versioned snapshot of the state (persist.py), with the counters unless
        `include_stats` is False."""
        return encode_snapshot(self._s, self.stats if include_stats else None)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeliveryService:
        """A DS restored from `to_bytes` (counters zero if they were left out)."""
        state, stats = decode_snapshot(data)
        ds = cls(state.consistency, literal_p11_ds_scope=state.literal_p11_ds_scope)
        ds._s = state
        ds.stats = stats if stats is not None else DSStats()
        ds._rebuild_indexes()
        return ds

    # --- durable state in a Store (mlsvc.store, P23) -----------------------------------

    def save(self, store: RecordStore) -> None:
        """Write the whole DS to `store` in one atomic write: "ds/state" (the versioned
        snapshot without the growing parts), one record per log entry, Welcome,
        generation ID and GroupInfo, and "ds/faults" (the fault layer's snapshot) if a
        fault layer is attached. Any other "ds/" record in the store is deleted."""
        puts = state_records(self._s, self.stats, SavedMarks())
        if self._faults is not None:
            puts["ds/faults"] = self._faults.to_bytes()
        stale = [k for k, _ in store.items("ds/") if k not in puts]
        store.write(puts, stale)
        if store is self._store:
            self._marks = SavedMarks.of(self._s)

    @classmethod
    def load(cls, store: RecordStore, *, attach: bool = False) -> DeliveryService:
        """The DS saved in `store` (with its fault layer, if one was saved), continuing
        exactly where the saved one stopped. `attach=True` keeps writing to the store
        after every state-changing call (see `attach_store`). DeliveryError
        ("no-saved-state") if the store holds no DS; DecodeError if its records are
        malformed or incomplete."""
        state, stats, faults = load_records(store)
        ds = cls(state.consistency, literal_p11_ds_scope=state.literal_p11_ds_scope)
        ds._s = state
        ds.stats = stats if stats is not None else DSStats()
        ds._faults = FaultLayer.from_bytes(faults) if faults is not None else None
        ds._rebuild_indexes()
        if attach:
            ds._store = store
            ds._marks = SavedMarks.of(state)
        return ds

    def attach_store(self, store: RecordStore) -> None:
        """Save to `store` now and after every state-changing call from now on, before
        the call returns (write-through): a process that dies after any call returned
        restarts with `DeliveryService.load(store)` as the DS was after that call. Each
        write is one atomic `Store.write` of the changed records only (the log,
        Welcomes, generation IDs and GroupInfos are append-only records)."""
        self._store = store
        self.save(store)

    @property
    def store(self) -> RecordStore | None:
        return self._store

    def _flush(self) -> None:
        assert self._store is not None
        puts = state_records(self._s, self.stats, self._marks)
        if self._faults is not None:
            puts["ds/faults"] = self._faults.to_bytes()
        self._store.write(puts)
        self._marks = SavedMarks.of(self._s)

    # --- lookups -----------------------------------------------------------------------

    def _require_new_id(self, ident: str) -> None:
        if not isinstance(ident, str) or not ident:
            raise ParameterError(f"an id is a non-empty str, not {ident!r}")
        if ident in self._s.mailboxes or ident in self._s.virtual_clients:
            raise DeliveryError("id-taken", f"{ident!r} is already registered")

    def _require_client(self, client_id: str) -> None:
        if client_id not in self._s.mailboxes:
            code = "not-a-client" if client_id in self._s.virtual_clients else "unknown-client"
            raise DeliveryError(code, f"{client_id!r} is not a registered client")

    def _require_vc(self, vc_id: str) -> list[str]:
        ems = self._s.virtual_clients.get(vc_id)
        if ems is None:
            raise DeliveryError("unknown-virtual-client",
                                f"{vc_id!r} is not a registered virtual client")
        return ems

    def _require_id(self, ident: str) -> None:
        if ident not in self._s.mailboxes and ident not in self._s.virtual_clients:
            raise DeliveryError("unknown-client", f"{ident!r} is neither a client nor a "
                                                  "virtual client")

    def _require_group(self, group_id: bytes) -> GroupRecord:
        g = self._s.groups.get(group_id)
        if g is None:
            raise DeliveryError(UNKNOWN_GROUP, f"unknown group {bytes(group_id).hex()}")
        return g
