"""A versioned binary encoding of the delivery service's state (DSState, DSStats).

Written with the library's TLS codec (mlsvc.codec), so every field is length-delimited
and decoding consumes the input exactly:

    struct {
      opaque magic[8] = "mlsvc-ds";
      uint16 version;                  // 1, or 2: the DS has an option set
      select (version) { case 2: uint8 options; };   // bit 0: literal_p11_ds_scope (F3)
      DSState state;
      optional<DSStats> stats;
    } DSSnapshot;

Version 1 is written whenever no option is set (every snapshot of a profile DS), so
the encoding of such a DS is unchanged.

Strings are UTF-8 opaque<V>; an `int | None` is optional<uint64>; dicts are vectors of
(key, value) pairs in insertion order, so encode(decode(x)) == x and a restored DS
delivers in the same order as the original. An unknown magic or version, or any
malformed field, is a DecodeError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from mlsvc.codec import Reader, Writer, decode_exact
from mlsvc.ds.errors import DeliveryError
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
from mlsvc.errors import DecodeError

MAGIC = b"mlsvc-ds"
VERSION = 1
VERSION_WITH_OPTIONS = 2
_OPTION_LITERAL_P11_DS_SCOPE = 1

T = TypeVar("T")

_CONSISTENCY = {c: i for i, c in enumerate(Consistency, start=1)}
_KIND = {k: i for i, k in enumerate(DeliveryKind, start=1)}


def _enum_from(table: dict[T, int], value: int, what: str) -> T:
    for k, v in table.items():
        if v == value:
            return k
    raise DecodeError(f"unknown {what} {value}")


# --- primitives -----------------------------------------------------------------------

def _w_str(w: Writer, s: str) -> None:
    w.opaque(s.encode("utf-8"))


def _r_str(r: Reader) -> str:
    try:
        return r.opaque().decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a DS snapshot string is not UTF-8") from None


def _w_opt_int(w: Writer, v: int | None) -> None:
    w.optional_with(v, Writer.u64)


def _r_opt_int(r: Reader) -> int | None:
    return r.optional(Reader.u64)


def _w_opt_str(w: Writer, v: str | None) -> None:
    w.optional_with(v, _w_str)


def _r_opt_str(r: Reader) -> str | None:
    return r.optional(_r_str)


def _w_names(w: Writer, names: list[str]) -> None:
    w.vector(names, _w_str)


def _r_names(r: Reader) -> list[str]:
    return r.vector(_r_str)


# --- records --------------------------------------------------------------------------

def _w_delivery(w: Writer, d: Delivery) -> None:
    w.u64(d.seq)
    w.u8(_KIND[d.kind])
    w.opaque(d.group_id)
    _w_opt_int(w, d.group_seq)
    _w_opt_int(w, d.epoch)
    _w_str(w, d.sender)
    w.opaque(d.message)
    _w_opt_str(w, d.on_behalf_of)


def _r_delivery(r: Reader) -> Delivery:
    return Delivery(r.u64(), _enum_from(_KIND, r.u8(), "delivery kind"), r.opaque(),
                    _r_opt_int(r), _r_opt_int(r), _r_str(r), r.opaque(), _r_opt_str(r))


def _w_group(w: Writer, g: GroupRecord) -> None:
    w.opaque(g.group_id)
    w.u64(g.epoch)
    w.vector(g.members, _w_str)
    w.vector(g.log, _w_delivery)
    w.vector(g.commit_epochs, Writer.u64)

    def info(w2: Writer, item: tuple[int, bytes]) -> None:
        w2.u64(item[0])
        w2.opaque(item[1])

    w.vector(list(g.group_infos.items()), info)
    w.vector(g.recipients, _w_names)


def _r_group(r: Reader) -> GroupRecord:
    group_id, epoch = r.opaque(), r.u64()
    members = r.vector(_r_str)
    log = r.vector(_r_delivery)
    commit_epochs = r.vector(Reader.u64)
    infos = r.vector(lambda r2: (r2.u64(), r2.opaque()))
    recipients = r.vector(_r_names)
    if len(recipients) != len(log):
        raise DecodeError("a DS snapshot group has recipients for "
                          f"{len(recipients)} of {len(log)} log entries")
    return GroupRecord(group_id, epoch, members, log, commit_epochs, dict(infos), recipients)


def _w_gen(w: Writer, g: GenerationIdRecord) -> None:
    w.opaque(g.group_id)
    w.u64(g.epoch)
    w.u8(g.ratchet_type)
    w.opaque(g.generation_id)
    w.u64(g.seq)
    _w_str(w, g.sender)
    _w_opt_str(w, g.on_behalf_of)


def _r_gen(r: Reader) -> GenerationIdRecord:
    return GenerationIdRecord(r.opaque(), r.u64(), r.u8(), r.opaque(), r.u64(), _r_str(r),
                              _r_opt_str(r))


def _w_kp(w: Writer, e: KeyPackageEntry) -> None:
    w.opaque(e.ref)
    w.opaque(e.key_package)
    _w_str(w, e.owner)


def _r_kp(r: Reader) -> KeyPackageEntry:
    return KeyPackageEntry(r.opaque(), r.opaque(), _r_str(r))


def _w_stats(w: Writer, s: DSStats) -> None:
    for v in (s.accepted, s.refused, s.generation_id_collisions, s.deliveries, s.welcomes,
              s.key_packages_uploaded, s.key_packages_fetched, s.key_packages_deleted,
              s.group_infos_published):
        w.u64(v)

    def reason(w2: Writer, item: tuple[str, int]) -> None:
        _w_str(w2, item[0])
        w2.u64(item[1])

    w.vector(list(s.refused_by_reason.items()), reason)


def _r_stats(r: Reader) -> DSStats:
    nums = [r.u64() for _ in range(9)]
    reasons = dict(r.vector(lambda r2: (_r_str(r2), r2.u64())))
    return DSStats(nums[0], nums[1], reasons, *nums[2:])


# --- the snapshot ---------------------------------------------------------------------

def _w_state(w: Writer, s: DSState) -> None:
    w.u8(_CONSISTENCY[s.consistency])
    w.u64(s.next_seq)
    w.vector(s.clients, _w_str)

    def vc(w2: Writer, item: tuple[str, list[str]]) -> None:
        _w_str(w2, item[0])
        w2.vector(item[1], _w_str)

    w.vector(list(s.virtual_clients.items()), vc)
    w.vector(list(s.groups.values()), _w_group)

    def mailbox(w2: Writer, item: tuple[str, list[Delivery]]) -> None:
        _w_str(w2, item[0])
        w2.vector(item[1], _w_delivery)

    w.vector(list(s.mailboxes.items()), mailbox)

    def directory(w2: Writer, item: tuple[str, list[KeyPackageEntry]]) -> None:
        _w_str(w2, item[0])
        w2.vector(item[1], _w_kp)

    w.vector(list(s.directory.items()), directory)

    def handed(w2: Writer, item: tuple[bytes, str]) -> None:
        w2.opaque(item[0])
        _w_str(w2, item[1])

    w.vector(list(s.handed_out.items()), handed)
    w.vector(s.generation_ids, _w_gen)
    w.vector(s.welcomes, _w_delivery)
    w.vector(s.welcome_recipients, _w_names)


def _r_state(r: Reader) -> DSState:
    consistency = _enum_from(_CONSISTENCY, r.u8(), "consistency")
    next_seq = r.u64()
    clients = r.vector(_r_str)
    vcs = dict(r.vector(lambda r2: (_r_str(r2), r2.vector(_r_str))))
    groups = {g.group_id: g for g in r.vector(_r_group)}
    mailboxes = dict(r.vector(lambda r2: (_r_str(r2), r2.vector(_r_delivery))))
    directory = dict(r.vector(lambda r2: (_r_str(r2), r2.vector(_r_kp))))
    handed_out = dict(r.vector(lambda r2: (r2.opaque(), _r_str(r2))))
    gens = r.vector(_r_gen)
    welcomes = r.vector(_r_delivery)
    welcome_recipients = r.vector(_r_names)
    if len(welcome_recipients) != len(welcomes):
        raise DecodeError("a DS snapshot has recipients for "
                          f"{len(welcome_recipients)} of {len(welcomes)} Welcomes")
    return DSState(consistency, next_seq, clients, vcs, groups, mailboxes, directory,
                   handed_out, gens, welcomes, welcome_recipients)


def encode_snapshot(state: DSState, stats: DSStats | None) -> bytes:
    """DSSnapshot: the state, and the counters unless `stats` is None."""
    w = Writer()
    w.fixed(MAGIC)
    options = _OPTION_LITERAL_P11_DS_SCOPE if state.literal_p11_ds_scope else 0
    w.u16(VERSION_WITH_OPTIONS if options else VERSION)
    if options:
        w.u8(options)
    _w_state(w, state)
    w.optional_with(stats, _w_stats)
    return bytes(w.buf)


def decode_snapshot(data: bytes) -> tuple[DSState, DSStats | None]:
    """The inverse of encode_snapshot; DecodeError for anything else."""

    def read(r: Reader) -> tuple[DSState, DSStats | None]:
        if r.fixed(len(MAGIC)) != MAGIC:
            raise DecodeError("not a delivery service snapshot (bad magic)")
        version = r.u16()
        if version not in (VERSION, VERSION_WITH_OPTIONS):
            raise DecodeError(f"unsupported delivery service snapshot version {version}")
        options = r.u8() if version == VERSION_WITH_OPTIONS else 0
        if version == VERSION_WITH_OPTIONS and options != _OPTION_LITERAL_P11_DS_SCOPE:
            raise DecodeError(f"unknown delivery service options {options:#04x}")
        state = _r_state(r)
        state.literal_p11_ds_scope = bool(options & _OPTION_LITERAL_P11_DS_SCOPE)
        return state, r.optional(_r_stats)

    return decode_exact(data, read)


# --- the records in a Store ------------------------------------------------------------
#
# DeliveryService.save / attach_store keep the DS in a key-value Store (mlsvc.store) as:
#
#   ds/state                       DSSnapshot above, with every group's log, recipients
#                                  and GroupInfos, the Welcomes and the generation IDs
#                                  left out (they grow with traffic)
#   ds/log/<group hex>/<gseq hex>  LogRecord { Delivery; opaque recipients<V>; }
#   ds/welcome/<seq hex>           LogRecord of a Welcome
#   ds/genid/<index hex>           a GenerationIdRecord
#   ds/groupinfo/<group hex>/<epoch hex>   the GroupInfo bytes as published
#   ds/faults                      the fault layer's snapshot (faults.py), if attached
#
# Numbers are 16 hex digits, so the store's key order is their order. The parts left
# out of ds/state only grow (append, or replace a GroupInfo), so a write-through after
# each call writes ds/state and the new records only, in one atomic Store.write.


class RecordStore(Protocol):
    """What the DS needs of a `mlsvc.store.Store` (MemoryStore, SQLiteStore)."""

    def get(self, key: str) -> bytes | None: ...

    def items(self, prefix: str = "") -> list[tuple[str, bytes]]: ...

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None: ...


STATE_KEY = "ds/state"
FAULTS_KEY = "ds/faults"
_LOG, _WELCOME, _GENID, _INFO = "ds/log/", "ds/welcome/", "ds/genid/", "ds/groupinfo/"


@dataclass
class SavedMarks:
    """How much of each growing part a store already holds (for write-through)."""

    log: dict[bytes, int] = field(default_factory=dict)
    welcomes: int = 0
    generation_ids: int = 0
    group_infos: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, s: DSState) -> SavedMarks:
        return cls({gid: len(g.log) for gid, g in s.groups.items()}, len(s.welcomes),
                   len(s.generation_ids),
                   {(gid, e): info for gid, g in s.groups.items()
                    for e, info in g.group_infos.items()})


def _n(v: int) -> str:
    return f"{v:016x}"


def _encode_entry(d: Delivery, recipients: list[str]) -> bytes:
    w = Writer()
    _w_delivery(w, d)
    _w_names(w, recipients)
    return bytes(w.buf)


def _decode_entry(data: bytes) -> tuple[Delivery, list[str]]:
    return decode_exact(data, lambda r: (_r_delivery(r), _r_names(r)))


def state_records(s: DSState, stats: DSStats | None, marks: SavedMarks) -> dict[str, bytes]:
    """ds/state and every growing record not yet covered by `marks`."""
    groups = {gid: GroupRecord(gid, g.epoch, g.members, [], g.commit_epochs, {}, [])
              for gid, g in s.groups.items()}
    head = DSState(s.consistency, s.next_seq, s.clients, s.virtual_clients, groups,
                   s.mailboxes, s.directory, s.handed_out, [], [], [],
                   literal_p11_ds_scope=s.literal_p11_ds_scope)
    puts = {STATE_KEY: encode_snapshot(head, stats)}
    for gid, g in s.groups.items():
        for i in range(marks.log.get(gid, 0), len(g.log)):
            puts[f"{_LOG}{gid.hex()}/{_n(i)}"] = _encode_entry(g.log[i], g.recipients[i])
        for e, info in g.group_infos.items():
            if marks.group_infos.get((gid, e)) is not info:
                puts[f"{_INFO}{gid.hex()}/{_n(e)}"] = info
    for i in range(marks.welcomes, len(s.welcomes)):
        puts[f"{_WELCOME}{_n(s.welcomes[i].seq)}"] = _encode_entry(
            s.welcomes[i], s.welcome_recipients[i])
    for i in range(marks.generation_ids, len(s.generation_ids)):
        w = Writer()
        _w_gen(w, s.generation_ids[i])
        puts[f"{_GENID}{_n(i)}"] = bytes(w.buf)
    return puts


def _split_key(key: str, prefix: str) -> tuple[bytes, int]:
    try:
        gid_hex, num = key[len(prefix):].rsplit("/", 1)
        return bytes.fromhex(gid_hex), int(num, 16)
    except ValueError:
        raise DecodeError(f"malformed DS record key {key!r}") from None


def _key_num(key: str, prefix: str) -> int:
    try:
        return int(key[len(prefix):], 16)
    except ValueError:
        raise DecodeError(f"malformed DS record key {key!r}") from None


def load_records(store: RecordStore) -> tuple[DSState, DSStats | None, bytes | None]:
    """The state, counters and fault-layer snapshot saved by `state_records`.
    DeliveryError("no-saved-state") if there is no ds/state; DecodeError if a record is
    malformed, belongs to no group, or a log entry or Welcome is missing."""
    head = store.get(STATE_KEY)
    if head is None:
        raise DeliveryError("no-saved-state", "the store holds no delivery service")
    s, stats = decode_snapshot(head)
    if s.welcomes or s.generation_ids or any(
            g.log or g.group_infos for g in s.groups.values()):
        raise DecodeError("ds/state is a full snapshot, not the store layout")

    def group(gid: bytes, key: str) -> GroupRecord:
        g = s.groups.get(gid)
        if g is None:
            raise DecodeError(f"DS record {key!r} is for an unknown group")
        return g

    for key, value in store.items(_LOG):
        gid, gseq = _split_key(key, _LOG)
        g = group(gid, key)
        d, to = _decode_entry(value)
        if (d.group_id, d.group_seq, gseq) != (gid, len(g.log), len(g.log)) \
                or d.kind is DeliveryKind.WELCOME:
            raise DecodeError(f"DS record {key!r} is out of place (a log entry is missing)")
        g.log.append(d)
        g.recipients.append(to)
    for key, value in store.items(_WELCOME):
        d, to = _decode_entry(value)
        if d.seq != _key_num(key, _WELCOME) or d.kind is not DeliveryKind.WELCOME:
            raise DecodeError(f"DS record {key!r} is not that Welcome")
        s.welcomes.append(d)
        s.welcome_recipients.append(to)
    seqs = sorted([d.seq for g in s.groups.values() for d in g.log]
                  + [d.seq for d in s.welcomes])
    if seqs != list(range(s.next_seq)):
        raise DecodeError("the DS records do not hold every accepted message and Welcome")
    for key, value in store.items(_GENID):
        if _key_num(key, _GENID) != len(s.generation_ids):
            raise DecodeError(f"DS record {key!r} is out of place")
        s.generation_ids.append(decode_exact(value, _r_gen))
    for key, value in store.items(_INFO):
        gid, epoch = _split_key(key, _INFO)
        group(gid, key).group_infos[epoch] = value
    return s, stats, store.get(FAULTS_KEY)
