"""What every transition shares: preconditions, honest derivation, operation secrets, deletion.

Theory of operation. An emulator can use a secret when `can_derive` says so: the token
is held, or computable from held tokens without evaluating a PPRF point it has
punctured. `derive_operation_secret` is draft-00 §5.2 with P3 (one function for the
deriver), `rederive_operation` the same for a receiver with Q7's collision rule.
`collect` is the deletion rule of §5.2 ("MUST store ... until no key material derived
from it is actively used anymore"), applied when an emulator has processed every log.
"""

from __future__ import annotations

from .errors import PreconditionError
from .state import AeadUse, EmuEpoch, Emulator, Operation, PprfEval, World
from .tokens import Tok, derivable, derive_secret, expand, model_hash, pprf_eval, public_key


def require(cond: bool, transition: str, reason: str) -> None:
    """Refuse a transition whose precondition does not hold (nothing has changed yet)."""
    if not cond:
        raise PreconditionError(transition, reason)


def actor(w: World, name: str, transition: str) -> Emulator:
    """The acting emulator: it exists and has not been removed (§4.3)."""
    em = w.emulators.get(name)
    require(em is not None, transition, f"no emulator {name}")
    assert em is not None
    require(em.active, transition, f"{name} was removed from the emulation group")
    return em


def require_latest(w: World, em: Emulator, transition: str) -> None:
    """§5.5: the DS totally orders the emulation group's Commits; one on a stale epoch fails."""
    require(
        em.emu_cursor == len(w.emu_log),
        transition,
        f"{em.name} has not processed every emulation-group message (its Commit would be stale)",
    )


def require_pprf_room(w: World, em: Emulator, count: int, transition: str) -> None:
    """P3: with resampling, a deriver needs unpunctured PPRF leaves left in its epoch."""
    cfg = w.config
    if cfg.latest_operation_ratchets or cfg.no_resample_on_punctured:
        return
    used = len(em.punctured.get(em.emu_epoch, set()))
    require(
        used + count <= 2**cfg.pprf_bits, transition, "every PPRF leaf of the epoch is punctured"
    )


def fully_caught_up(w: World, em: Emulator) -> bool:
    """Whether the emulator has processed every message the DS holds for it."""
    if em.emu_cursor != len(w.emu_log):
        return False
    for g in w.vc_groups():
        view = em.groups.get(g.name)
        if g.name not in em.pending_join and (view is None or view.cursor != len(g.log)):
            return False
    return True


def can_derive(em: Emulator, tok: Tok) -> bool:
    """Honest derivation: from held tokens, never through a punctured PPRF point (P2)."""

    def blocked(t: Tok) -> bool:
        if t.label != "PPRF":
            return False
        epoch, leaf = t.info
        return leaf in em.punctured.get(int(epoch), set())

    return derivable(tok, em.held, blocked=blocked)


OPERATION_TYPES = {"key_package": 1, "leaf_node": 2}  # latest §6.1.2 VirtualClientOperationType


def reuse_guard_secret(ep: EmuEpoch) -> Tok:
    """Latest §5.2 (L5): the fifth epoch secret, DeriveSecret(emulator_epoch_secret,
    "Reuse Guard")."""
    return derive_secret(ep.emulator_epoch_secret, "Reuse Guard")


def epoch_secrets(w: World, ep: EmuEpoch) -> tuple[Tok, ...]:
    """The secrets §5.2 derives from an epoch's emulator_epoch_secret: draft-00's four,
    and under the latest profile also reuse_guard_secret (latest §5.2, L5)."""
    four = ep.four()
    return (*four, reuse_guard_secret(ep)) if w.config.latest else four


def enter_epoch(w: World, em: Emulator, k: int) -> None:
    """§5.2: on a new emulation epoch derive the four epoch secrets, then delete
    emulator_epoch_secret; the MLS epoch secret of the previous epoch goes too (RFC 9420 §9.2)."""
    ep = w.epochs[k]
    if em.emu_epoch >= 0 and em.emu_epoch != k:
        em.forget(w.epochs[em.emu_epoch].epoch_secret)
    em.learn(ep.epoch_secret, ep.emulator_epoch_secret, *epoch_secrets(w, ep))
    em.forget(ep.emulator_epoch_secret)
    em.leaf_at[k] = ep.roster[em.name]
    em.known_epochs.add(k)
    em.punctured.setdefault(k, set())
    em.emu_epoch = k


def _sub_secrets(w: World, ep: EmuEpoch, secret: Tok) -> dict[str, Tok]:
    """§5.2 (P4): the sub-secrets of an operation; F1 reads them from epoch_base_secret."""
    src = ep.base if w.config.literal_p4_subsecrets else secret
    return {
        "signature": derive_secret(src, "Signature Key"),
        "encryption": derive_secret(src, "Encryption Key"),
        "init": derive_secret(src, "Init Key"),
        "path": derive_secret(src, "Path Generation"),
        "external_init": derive_secret(src, "External Init"),  # M2
    }


def _slot_code(slot: tuple[int, ...]) -> int:
    """A latest-profile ratchet slot (leaf_index, operation_type, generation[, index]) as
    one number, so consumed generations share the PPRF's bookkeeping (em.punctured)."""
    li, typ, gen = slot[:3]
    return (li * 4 + typ) * 2**20 + gen


def slot_of_code(code: int) -> tuple[int, str, int]:
    """(leaf_index, operation type, generation) of a `_slot_code`."""
    head, gen = divmod(code, 2**20)
    li, typ = divmod(head, 4)
    name = next(k for k, v in OPERATION_TYPES.items() if v == typ)
    return li, name, gen


def consume_generation(w: World, em: Emulator, kind: str) -> tuple[int, ...]:
    """Latest §5.2 (L1, L2): the next unused generation of the emulator's own ratchet for
    this operation type in its current epoch; consumed even if the operation fails, and
    recorded (INV-PPRF-PUNCTURE's latest reading: never used again)."""
    e = em.emu_epoch
    li, typ = em.leaf_at[e], OPERATION_TYPES[kind]
    key = e * 4 + typ  # one counter per (epoch, operation type)
    gen = em.next_op_generation.get(key, 0)
    em.next_op_generation[key] = gen + 1
    slot = (li, typ, gen)
    code = _slot_code(slot)
    w.pprf_evals.append(PprfEval(em.name, e, code, code in em.punctured[e]))
    em.punctured[e].add(code)
    return slot


def operation_secret(ep: EmuEpoch, slot: tuple[int, ...], context: str) -> Tok:
    """Latest §5.2: operation_secret = ExpandWithLabel(operation_generation_secret,
    "vc operation", OperationContext{epoch_id, leaf_index, generation, operation_type,
    operation_context}); the ratchet secret of (leaf_index, operation_type, generation)
    comes from the Virtual Client Operation Secret Tree keyed by epoch_base_secret."""
    li, typ, gen = slot[:3]
    ratchet = Tok("OperationRatchet", (ep.base,), (ep.number, li, typ, gen))
    generation_secret = derive_secret(ratchet, "VC Operation Secret")
    return expand(generation_secret, "vc operation", ep.epoch_id, li, gen, typ, context)


def _draw(em: Emulator, e: int, salt: int) -> int:
    """A fresh `random`: unique per (emulator, epoch, draw); `salt` varies it."""
    n = em.draws[e] = em.draws.get(e, 0) + 1
    return ((e * 64 + int(em.name[1:])) * 4096 + n) * 256 + salt


def derive_operation_secret(
    w: World, em: Emulator, kind: str, salt: int, context: str = ""
) -> Operation:
    """§5.2, P3: operation_secret = VirtualClientSecret(Hash(HashInput{leaf_index, random})).

    The PPRF leaf is punctured. If it already was, P3 samples a new `random` (counted in
    `w.resamples`); with F4's switch the deriver evaluates it anyway. With the later
    draft's operation ratchets the input is (leaf_index, generation) instead; under the
    latest profile (L1) it is (leaf_index, operation_type, generation) with `context`
    (the group_id of a leaf_node operation) bound in.
    """
    cfg, e = w.config, em.emu_epoch
    ep, li = w.epochs[e], em.leaf_at[e]
    random = _draw(em, e, salt)
    if cfg.latest:
        slot = consume_generation(w, em, kind)
        secret = operation_secret(ep, slot, context)
    elif cfg.latest_operation_ratchets:
        generation = em.next_op_generation.get(e, 0)
        em.next_op_generation[e] = generation + 1
        slot = (li, generation)
        secret = expand(Tok("OperationRatchet", (ep.base,), (e, li, generation)), "vc operation")
    else:
        leaf = model_hash(li, random, cfg.pprf_bits)
        while leaf in em.punctured[e] and not cfg.no_resample_on_punctured:
            w.resamples[e] = w.resamples.get(e, 0) + 1
            random = _draw(em, e, salt)
            leaf = model_hash(li, random, cfg.pprf_bits)
        w.pprf_evals.append(PprfEval(em.name, e, leaf, leaf in em.punctured[e]))
        em.punctured[e].add(leaf)
        slot, secret = (leaf,), pprf_eval(ep.base, e, leaf)
    return _record_operation(w, em, kind, random, slot, secret)


def derive_key_package_batch(w: World, em: Emulator, count: int, salt: int) -> list[Operation]:
    """Latest §5.2, §5.5.1 (L3): one key_package generation for the whole upload; each
    KeyPackage's keys come from key_package_seed_secret = ExpandWithLabel(operation_secret,
    "key package seed", key_package_index); the batch operation_secret is not kept (only
    the seeds are learned). Before the latest profile: one operation per KeyPackage."""
    if not w.config.latest:
        return [derive_operation_secret(w, em, "key_package", salt + i) for i in range(count)]
    e = em.emu_epoch
    ep = w.epochs[e]
    slot = consume_generation(w, em, "key_package")
    batch = operation_secret(ep, slot, "")
    return [
        _record_operation(
            w, em, "key_package", _draw(em, e, salt + i), (*slot, i),
            expand(batch, "key package seed", i),
        )
        for i in range(count)
    ]


def _record_operation(
    w: World, em: Emulator, kind: str, random: int, slot: tuple[int, ...], secret: Tok
) -> Operation:
    """An operation derived by `em` in its current epoch: its sub-secrets, the deriver's
    bookkeeping, and the DerivationInfo encryption it causes (P6)."""
    e = em.emu_epoch
    ep, li = w.epochs[e], em.leaf_at[e]
    w.derivations[e] = w.derivations.get(e, 0) + 1
    op = Operation(
        w.next_id(), kind, em.name, e, li, random, slot, secret, **_sub_secrets(w, ep, secret)
    )
    w.ops[op.op_id] = op
    em.ops.add(op.op_id)
    em.retained[(e, slot)] = op.op_id
    em.learn(secret)
    # P6: the DerivationInfoComponent encrypts EpochInfoTBE under a key and nonce
    # expanded from epoch_encryption_key with the LeafNode's encryption_key as context.
    pub = public_key(op.encryption)
    w.aead.append(
        AeadUse(
            expand(ep.encryption_key, "key", pub),
            expand(ep.encryption_key, "nonce", pub),
            f"EpochInfoTBE(leaf_index={li}, random={random})",
            f"DerivationInfo of op {op.op_id}",
        )
    )
    return op


def rederive_operation(w: World, em: Emulator, op: Operation) -> bool:
    """§5.2 for a receiver: from (epoch_id, leaf_index, random) re-derive the operation.

    Q7: receivers puncture on first derivation and keep the operation indexed by
    (epoch, PPRF leaf); a punctured leaf is served only to the same (leaf_index, random),
    any other request is rejected and reported as a collision.
    """
    if op.op_id in em.ops:
        return True
    e = op.epoch
    if w.epochs[e].base not in em.held:
        return False
    if w.config.latest_operation_ratchets:
        em.learn(op.secret)
        em.ops.add(op.op_id)
        return True
    leaf = model_hash(op.leaf_index, op.random, w.config.pprf_bits)
    if leaf in em.punctured[e]:
        known = em.retained.get((e, (leaf,)))
        same = known is not None and (w.ops[known].leaf_index, w.ops[known].random) == (
            op.leaf_index,
            op.random,
        )
        if not same:
            w.collisions.append((em.name, e, op.op_id))
        return same
    w.pprf_evals.append(PprfEval(em.name, e, leaf, False))
    em.punctured[e].add(leaf)
    em.learn(op.secret)
    em.ops.add(op.op_id)
    em.retained[(e, (leaf,))] = op.op_id
    return True


def live_ops(w: World, em: Emulator) -> set[int]:
    """Operations whose key material is in use as the emulator knows it: the virtual
    client's LeafNodes in its group views and its outstanding KeyPackages (P13)."""
    live = {o for v in em.groups.values() if v.broken is None for o in v.leaves}
    return live | {w.kp_ops[ref] for ref in em.key_packages}


def collect(w: World, em: Emulator) -> None:
    """§5.2 deletion: once caught up, drop operation secrets no longer live and the
    epoch secrets of epochs that are neither current nor referenced by a live operation."""
    if not em.active or not fully_caught_up(w, em):
        return
    live = live_ops(w, em)
    for o in sorted(em.ops - live):
        op = w.ops[o]
        em.forget(op.secret)
        em.ops.discard(o)
        em.retained.pop((op.epoch, op.slot), None)
    referenced = {w.ops[o].epoch for o in live} | {em.emu_epoch}
    for e in sorted(em.known_epochs - referenced):
        em.forget(*epoch_secrets(w, w.epochs[e]))
        em.known_epochs.discard(e)
        em.punctured.pop(e, None)
