"""An emulator's whole state in a durable store (DRAFT-00-PROFILE P23).

Theory of operation. `checkpoint(em, store)` writes the emulator as records (TLS-encoded,
mlsvc.vc.state for the shared pieces) and deletes the records of what it no longer
holds, in one atomic write; only records whose bytes changed are rewritten. `restore`
rebuilds the emulator. The loop around the emulators (mlsvc.virtual_client) checkpoints
after every change and before anything leaves the process, so that P23 holds: a PPRF
puncture, a generation consumed and a retained operation secret are in the store before
any key derived from them is sent; a deleted secret's record is deleted (and
`mlsvc.store.SQLiteStore` leaves no copy of it in the file).

Records (keys):
  meta                 identity, configuration, long-term key, joins, removals, cursors;
                       format 1, or format 2 = format 1 followed by `uint16 readings`
                       (a bit per field of mlsvc.vc.readings.Readings, in field order),
                       written only when some literal reading is on, or format 3 =
                       format 1 followed by `uint16 readings; opaque profile<V>; uint16
                       profile_component;` (the profile's name, "latest", and
                       VCCodePoints.profile), written exactly when the virtual client's
                       profile is not draft-00 (readings may then be 0). A draft-00
                       emulator writes format 1 or 2 as it always did, and a store of
                       format 1 or 2 reads as draft-00 (with the default
                       VCCodePoints.profile, which draft-00 does not use)
  emulation            the emulation group (mlsvc.group.serialize, pending commit included)
  epoch/<n>            one EmulationEpoch (mlsvc.vc.state.write_epoch; read with the
                       profile of the meta record: a latest epoch carries its operation
                       secret tree, absent outside the window, and reuse_guard_secret)
  base/<n>             F1 only (readings.literal_p4_subsecrets): that epoch's kept
                       epoch_base_secret (BaseSecret<V> of mlsvc.vc.state)
  group/<hex id>       one higher-level group: saved group, active LeafOp, proposed
                       Updates, retained sent generations
  replaced/<hex id>    a group being resynced, until the DS accepts the external commit
  kp/<hex ref>         one announced KeyPackage (HeldKeyPackage)
  outbox               messages awaiting the DS's verdict, and the pending action;
                       then, only if some awaiting application message has one, the
                       reuse-guard inputs: `struct { opaque group_id<V>; uint32 x; }
                       ReuseGuardX<V>` (a record without it reads as none)

~~~ tls
struct {
  uint8 kind; opaque group_id<V>; opaque message<V>;
  optional<opaque> generation_id<V>; optional<uint32> generation;
  optional<opaque> action<V>;                      // VirtualClientAction
  optional<KeyId> key_id; optional<opaque> nonce<V>;
  optional<opaque> group_info<V>; optional<opaque> welcome<V>;
} OutgoingRecord;
~~~
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Final

from mlsvc.codec import Reader, Writer
from mlsvc.crypto.hpke import RandomSource
from mlsvc.errors import DecodeError, ParameterError
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.group.serialize import load, save
from mlsvc.messages.key_package import KeyPackage
from mlsvc.store import Store
from mlsvc.vc.actions import VirtualClientAction
from mlsvc.vc.codepoints import VCCodePoints
from mlsvc.vc.emulator import (
    Consistency,
    Emulator,
    EmulatorStats,
    HigherGroup,
    Outgoing,
    OutgoingKind,
    VirtualClientConfig,
    _Pending,
)
from mlsvc.vc.profiles import DEFAULT_PROFILE, Profile, profile_of
from mlsvc.vc.readings import Readings
from mlsvc.vc.state import (
    HeldKeyPackage,
    LeafOp,
    read_base_secrets,
    read_epoch,
    read_identity,
    write_base_secrets,
    write_epoch,
    write_identity,
)

FORMAT: Final = 1
FORMAT_WITH_READINGS: Final = 2
FORMAT_WITH_PROFILE: Final = 3
_KINDS = list(OutgoingKind)
_READINGS = [f.name for f in fields(Readings)]


def _readings_bits(readings: Readings) -> int:
    return sum(1 << i for i, name in enumerate(_READINGS) if getattr(readings, name))


def _readings_of(bits: int) -> Readings:
    if bits >> len(_READINGS):
        raise DecodeError(f"unknown literal readings in {bits:#06x}")
    return Readings(**{name: bool(bits >> i & 1) for i, name in enumerate(_READINGS)})


def _profile_of(name: bytes) -> Profile:
    try:
        return profile_of(name.decode("ascii"))
    except (UnicodeDecodeError, ParameterError):
        raise DecodeError(f"unknown profile {name!r} in the emulator record") from None


def _with_profile_component(cp: VCCodePoints, component: int) -> VCCodePoints:
    try:
        return replace(cp, profile=component)
    except ParameterError as e:
        raise DecodeError(f"emulator record: {e}") from None


def _w_outgoing(w: Writer, o: Outgoing) -> None:
    w.u8(_KINDS.index(o.kind))
    w.opaque(o.group_id)
    w.opaque(o.message)
    w.optional_with(o.generation_id, lambda w2, v: w2.opaque(v))
    w.optional_with(o.generation, lambda w2, v: w2.u32(v))
    w.optional_with(o.action, lambda w2, v: w2.opaque(v.encode()))

    def key_id(w2: Writer, k: tuple[bytes, int, int, int]) -> None:
        w2.opaque(k[0])
        w2.u64(k[1])
        w2.u32(k[2])
        w2.u32(k[3])

    w.optional_with(o.key_id, key_id)
    w.optional_with(o.nonce, lambda w2, v: w2.opaque(v))
    w.optional_with(o.group_info, lambda w2, v: w2.opaque(v))
    w.optional_with(o.welcome, lambda w2, v: w2.opaque(v))


def _r_outgoing(r: Reader, profile: Profile = DEFAULT_PROFILE) -> Outgoing:
    k = r.u8()
    if k >= len(_KINDS):
        raise DecodeError(f"unknown outgoing kind {k}")
    kind = _KINDS[k]
    gid, message = r.opaque(), r.opaque()
    generation_id = r.optional(lambda r2: r2.opaque())
    generation = r.optional(lambda r2: r2.u32())
    decode = (VirtualClientAction.decode_latest if profile is Profile.LATEST
              else VirtualClientAction.decode)  # latest §5.5: its own KeyPackageUpload
    action = r.optional(lambda r2: decode(r2.opaque()))
    key_id = r.optional(lambda r2: (r2.opaque(), r2.u64(), r2.u32(), r2.u32()))
    nonce = r.optional(lambda r2: r2.opaque())
    group_info = r.optional(lambda r2: r2.opaque())
    welcome = r.optional(lambda r2: r2.opaque())
    return Outgoing(kind, gid, message, generation_id, generation, action, key_id, nonce,
                    group_info, welcome)


def _w_bytes_u64(w: Writer, kv: tuple[bytes, int]) -> None:
    w.opaque(kv[0])
    w.u64(kv[1])


def _w_proposed(w: Writer, kv: tuple[bytes, LeafOp]) -> None:
    w.opaque(kv[0])
    kv[1].write(w)


def _w_set(w: Writer, items: set[bytes]) -> None:
    w.vector(sorted(items), lambda w2, v: w2.opaque(v))


def _r_set(r: Reader) -> set[bytes]:
    return set(r.vector(lambda r2: r2.opaque()))


def _meta(em: Emulator) -> bytes:
    w = Writer()
    readings = _readings_bits(em.vc.readings)
    with_profile = em.vc.profile is not Profile.DRAFT_00
    w.u16(FORMAT_WITH_PROFILE if with_profile
          else FORMAT_WITH_READINGS if readings else FORMAT)
    w.opaque(em.name)
    write_identity(w, em.identity)
    vc = em.vc
    w.opaque(vc.name)
    w.u16(vc.emulation_suite)
    w.u8(0 if vc.consistency is Consistency.STRONG else 1)
    w.u32(vc.retained_epochs)
    w.u32(vc.sent_key_window)
    cp = vc.codepoints
    for v in (cp.derivation_info, cp.virtual_client_action, cp.new_emulator_client_state):
        w.u16(v)
    w.opaque(em.vc_signing_key)
    w.u8(1 if em.removed else 0)
    w.vector(sorted(em.removals.items()), _w_bytes_u64)
    for s in (em.join_externally, em.expected_joins, em.announced_joins):
        _w_set(w, s)
    w.vector(sorted(em.cursors.items()), _w_bytes_u64)
    st = em.stats
    for v in (st.resamples, st.rederivations, st.collisions):
        w.u64(v)
    if with_profile:
        w.u16(readings)
        w.opaque(vc.profile.value.encode())
        w.u16(cp.profile)
    elif readings:
        w.u16(readings)
    return w.bytes()


def _group_record(hg: HigherGroup) -> bytes:
    w = Writer()
    w.opaque(save(hg.group, with_pending=True))
    hg.active.write(w)
    w.vector(sorted(hg.proposed.items(), key=lambda kv: kv[0]), _w_proposed)
    w.vector(list(hg.sent), lambda w2, g: w2.u32(g))
    return w.bytes()


def _outbox(em: Emulator) -> bytes:
    w = Writer()
    w.vector(sorted(em.pending.values(), key=lambda o: o.group_id), _w_outgoing)
    a = em._action

    def action(w2: Writer, p: _Pending) -> None:
        _w_outgoing(w2, p.out)
        w2.vector(list(p.key_packages), lambda w3, b: _w_bundle(w3, b))
        w2.optional_with(p.external_group_info, lambda w3, v: w3.opaque(v))
        w2.optional_with(p.removing, lambda w3, v: w3.opaque(v))
        w2.u8(1 if p.onboarding else 0)
        w2.optional_with(None if p.deleted_key_packages is None
                         else sorted(p.deleted_key_packages),
                         lambda w3, v: w3.vector(v, lambda w4, ref: w4.opaque(ref)))

    w.optional_with(a, action)
    w.vector(sorted((gid, op) for gid, (op, _) in em._pending_ops.items()), _w_proposed)
    w.vector(list(em.to_upload), lambda w2, v: w2.opaque(v))
    xs = sorted((o.group_id, o.reuse_guard_x) for o in em.pending.values()
                if o.reuse_guard_x is not None)
    if xs:
        w.vector(xs, _w_group_x)
    return w.bytes()


def _w_group_x(w: Writer, item: tuple[bytes, int]) -> None:
    w.opaque(item[0])
    w.u32(item[1])


def _w_bundle(w: Writer, b: KeyPackageBundle) -> None:
    b.key_package.write(w)
    w.opaque(b.init_private_key)
    w.opaque(b.encryption_private_key)
    write_identity(w, b.identity)


def _r_bundle(r: Reader) -> KeyPackageBundle:
    kp = KeyPackage.read(r)
    return KeyPackageBundle(kp, r.opaque(), r.opaque(), read_identity(r))


def records(em: Emulator) -> dict[str, bytes]:
    """The emulator as store records (see the module docstring)."""
    out = {"meta": _meta(em), "outbox": _outbox(em)}
    if em.emulation is not None:
        out["emulation"] = save(em.emulation, with_pending=True)
    for n, e in em.epochs.epochs.items():
        w = Writer()
        write_epoch(w, e)
        out[f"epoch/{n:020d}"] = w.bytes()
        if e.base_secret is not None:
            wb = Writer()
            write_base_secrets(wb, [e])
            out[f"base/{n:020d}"] = wb.bytes()
    for gid, hg in em.groups.items():
        out[f"group/{gid.hex()}"] = _group_record(hg)
    for gid, hg in em._replaced.items():
        out[f"replaced/{gid.hex()}"] = _group_record(hg)
    for ref, kp in em.key_packages.items():
        w = Writer()
        kp.write(w)
        out[f"kp/{ref.hex()}"] = w.bytes()
    return out


class Checkpointer:
    """Writes an emulator's changed records to its store (one atomic write each time)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._written: dict[str, bytes] = dict(store.items())
        self.writes = 0

    def __call__(self, em: Emulator) -> None:
        now = records(em)
        puts = {k: v for k, v in now.items() if self._written.get(k) != v}
        deletes = [k for k in self._written if k not in now]
        if puts or deletes:
            self.store.write(puts, deletes)
            self.writes += 1
            for k in deletes:
                del self._written[k]
            self._written.update(puts)


def restore(store: Store, rng: RandomSource,
            clock: Callable[[], int] | None = None) -> Emulator:
    """The emulator a store holds (DecodeError when a record is malformed; a store with
    no emulator in it is a DecodeError too)."""
    meta = store.get("meta")
    if meta is None:
        raise DecodeError("the store holds no emulator")
    r = Reader(meta)
    fmt = r.u16()
    if fmt not in (FORMAT, FORMAT_WITH_READINGS, FORMAT_WITH_PROFILE):
        raise DecodeError("unknown emulator record format")
    name = r.opaque()
    identity = read_identity(r)
    vc_name, suite = r.opaque(), r.u16()
    consistency = Consistency.STRONG if r.u8() == 0 else Consistency.EVENTUAL
    retained, window = r.u32(), r.u32()
    cp = VCCodePoints(r.u16(), r.u16(), r.u16())
    vc_signing_key = r.opaque()
    removed = r.bool()
    removals = dict(r.vector(lambda r2: (r2.opaque(), r2.u64())))
    joins = _r_set(r), _r_set(r), _r_set(r)
    cursors = dict(r.vector(lambda r2: (r2.opaque(), r2.u64())))
    stats = EmulatorStats(r.u64(), r.u64(), r.u64())
    readings = (_readings_of(r.u16()) if fmt in (FORMAT_WITH_READINGS, FORMAT_WITH_PROFILE)
                else Readings())
    profile = DEFAULT_PROFILE
    if fmt == FORMAT_WITH_PROFILE:
        profile = _profile_of(r.opaque())
        cp = _with_profile_component(cp, r.u16())
    r.finish()
    if fmt == FORMAT_WITH_READINGS and not readings.any:
        raise DecodeError("emulator record format 2 without a literal reading")
    if fmt == FORMAT_WITH_PROFILE and profile is Profile.DRAFT_00:
        raise DecodeError("emulator record format 3 for the draft-00 profile")
    vc = VirtualClientConfig(vc_name, suite, consistency, retained, window, cp,
                             readings=readings, profile=profile)
    em = Emulator(name, identity, vc, rng, clock)
    em.vc_signing_key = vc_signing_key
    em.removed = removed
    em.removals = removals
    em.join_externally, em.expected_joins, em.announced_joins = joins
    em.cursors = cursors
    em.stats = stats
    gcfg = em.group_config()
    emu = store.get("emulation")
    if emu is not None:
        em.emulation = load(emu, em.emulation_config)
    for _, data in store.items("epoch/"):
        rr = Reader(data)
        e = read_epoch(rr, em.ecs, vc.profile)
        rr.finish()
        em.epochs.epochs[e.epoch] = e
    for _, data in store.items("base/"):
        rr = Reader(data)
        read_base_secrets(rr, list(em.epochs.epochs.values()))
        rr.finish()
    for prefix, table in (("group/", em.groups), ("replaced/", em._replaced)):
        for key, data in store.items(prefix):
            rr = Reader(data)
            group = load(rr.opaque(), gcfg)
            active = LeafOp.read(rr)
            proposed = dict(rr.vector(lambda r2: (r2.opaque(), LeafOp.read(r2))))
            sent = rr.vector(lambda r2: r2.u32())
            rr.finish()
            if group.group_id.hex() != key[len(prefix):]:
                raise DecodeError(f"record {key} holds another group")
            table[group.group_id] = HigherGroup(group, active, proposed, sent)
    for _, data in store.items("kp/"):
        rr = Reader(data)
        kp = HeldKeyPackage.read(rr)
        rr.finish()
        em.key_packages[kp.bundle.ref(em.suite_of(kp.group_suite))] = kp
    outbox = store.get("outbox")
    if outbox is not None:
        rr = Reader(outbox)
        for o in rr.vector(lambda r2: _r_outgoing(r2, vc.profile)):
            em.pending[o.group_id] = o

        def action(r2: Reader) -> _Pending:
            out = _r_outgoing(r2, vc.profile)
            kps = tuple(r2.vector(_r_bundle))
            egi = r2.optional(lambda r3: r3.opaque())
            removing = r2.optional(lambda r3: r3.opaque())
            onboarding = r2.bool()
            deleted = r2.optional(lambda r3: frozenset(r3.vector(lambda r4: r4.opaque())))
            return _Pending(out, kps, egi, removing, onboarding, deleted)

        em._action = rr.optional(action)
        em._pending_ops = dict(rr.vector(lambda r2: (r2.opaque(), (LeafOp.read(r2), None))))
        em.to_upload = rr.vector(lambda r2: r2.opaque())
        if rr.remaining():
            for gid, x in rr.vector(lambda r2: (r2.opaque(), r2.u32())):
                app = em.pending.get(gid)
                if app is None or app.kind is not OutgoingKind.APPLICATION:
                    raise DecodeError("a reuse-guard x for no awaiting application message")
                em.pending[gid] = replace(app, reuse_guard_x=x)
        rr.finish()
    return em
