"""Transitions of the emulation group (draft-00 §4, §5.2, §5.5).

Theory of operation. Every change of the emulation group is a Commit the DS orders
(`_commit`): it opens epoch k with a new roster and leaf count (RFC 9420 §7.7 adds at
the leftmost blank, §12.3 truncates after a remove), may carry a VirtualClientAction in
its SafeAAD, and is processed at once by its sender and later, one log entry at a time,
by every other member (`process_emulation`). Adding, removing and onboarding emulators
and uploading KeyPackages are Commits with extra content.
"""

from __future__ import annotations

from dataclasses import replace

from .common import (
    actor,
    derive_key_package_batch,
    enter_epoch,
    epoch_secrets,
    fully_caught_up,
    live_ops,
    rederive_operation,
    require,
    require_latest,
    require_pprf_room,
)
from .state import EmuEntry, EmuEpoch, Emulator, World
from .tokens import Tok


def next_tree(
    roster: dict[str, int], n: int, add: str | None, remove: str | None
) -> tuple[dict[str, int], int]:
    """RFC 9420 §7.7/§12.1.1: add at the leftmost blank leaf, doubling the tree when full;
    §12.3: after a remove, truncate while the right half is blank. N stays a power of two."""
    roster = dict(roster)
    if remove is not None:
        del roster[remove]
        while n > 1 and all(i < n // 2 for i in roster.values()):
            n //= 2
    if add is not None:
        used = set(roster.values())
        leaf = min(i for i in range(n + 1) if i not in used)
        if leaf >= n:
            n *= 2
        roster[add] = leaf
    return roster, n


def _commit(
    w: World,
    em: Emulator,
    *,
    add: str | None = None,
    remove: str | None = None,
    action: str | None = None,
    key_packages: tuple[str, ...] = (),
    external_group: str | None = None,
    deleted_key_packages: tuple[str, ...] = (),
    signing_key: Tok | None = None,
) -> EmuEntry:
    """RFC 9420 §12.4 in the emulation group: open epoch k; the sender processes it at once."""
    roster, n = next_tree(w.epoch.roster, w.epoch.leaf_count, add, remove)
    k = len(w.epochs)
    w.epochs.append(EmuEpoch(k, roster, n, w.fresh("emulation_epoch_secret", k)))
    e = EmuEntry(
        "commit",
        em.name,
        k,
        action,
        key_packages,
        external_group,
        deleted_key_packages,
        signing_key,
    )
    w.emu_log.append(e)
    if action is not None:
        # SafeAAD travels in authenticated_data, which a PrivateMessage does not encrypt
        # (RFC 9420 §6.3): the DS sees every action (privacy observation).
        w.public_actions.append((action, w.epochs[k - 1].epoch_id, key_packages))
    process_emulation(w, em)
    return e


def process_emulation(w: World, em: Emulator) -> None:
    """§5.1, §5.5.1: process the next entry of the emulation group's log.

    KeyPackageUpload: re-derive each KeyPackage's operation from (epoch_id, leaf_index,
    random) and remember its KeyPackageRef. M1: the KeyPackages were derived in the epoch
    the Commit was sent in (k-1), since the Commit's AAD is bound into epoch k.
    """
    entry = w.emu_log[em.emu_cursor]
    for ref in entry.key_packages:
        if rederive_operation(w, em, w.ops[w.kp_ops[ref]]):
            em.key_packages.add(ref)
    em.key_packages -= set(entry.deleted_key_packages)
    if entry.kind == "commit":
        enter_epoch(w, em, entry.epoch)
    if entry.signing_key is not None:
        em.forget(*(t for t in list(em.held) if t.label == "signing_key"))
        em.learn(entry.signing_key)
    em.emu_cursor += 1


def emulation_commit(w: World, emulator: str) -> int:
    """§5.2: an emulation-group Commit (a plain update): new epoch, new epoch secrets."""
    em = actor(w, emulator, "emulation_commit")
    require_latest(w, em, "emulation_commit")
    return _commit(w, em).epoch


def create_key_packages(
    w: World, emulator: str, count: int, salt: int, replace_all: bool = False
) -> tuple[str, ...]:
    """§5.5.1: derive KeyPackages from the current epoch, announce them in a
    KeyPackageUpload (SafeAAD of an emulation Commit, §5.5), then upload them to the DS."""
    t = "create_key_packages"
    em = actor(w, emulator, t)
    require_latest(w, em, t)
    require(1 <= count <= 4, t, "between 1 and 4 KeyPackages")
    require_pprf_room(w, em, count, t)
    ops = derive_key_package_batch(w, em, count, salt)  # L3 under the latest profile
    refs = tuple(f"KP{len(w.kp_ops) + i}" for i in range(1, count + 1))
    for ref, op in zip(refs, ops, strict=True):
        w.kp_ops[ref] = op.op_id
        w.public_leaves.append(("key_package", op.op_id))
    deleted = tuple(sorted(w.key_packages)) if replace_all else ()
    for ref in deleted:
        del w.key_packages[ref]
    _commit(w, em, action="key_package_upload", key_packages=refs, deleted_key_packages=deleted)
    for ref, op in zip(refs, ops, strict=True):
        w.key_packages[ref] = op.op_id  # "After successfully sending the message ... upload"
    return refs


def add_emulator(w: World, emulator: str, variant: str) -> str:
    """§4.1, P13: Add + Welcome whose GroupInfo carries NewEmulatorClientState.

    The state covers every emulation epoch still referenced (epoch_id, encryption key,
    generation-ID secret, leaf count, punctured PPRF, retained operation secrets), the
    outstanding KeyPackages, the signing key, and per group either the current epoch
    state ("state_transfer") or a marker to join by external commit ("external_commit").
    M3: the provisioning emulator has processed every message first.
    """
    t = "add_emulator"
    em = actor(w, emulator, t)
    require_latest(w, em, t)
    require(variant in ("state_transfer", "external_commit"), t, f"unknown variant {variant}")
    require(fully_caught_up(w, em), t, f"{emulator} has unprocessed messages (M3)")
    require(len(w.active()) < 6, t, "at most six emulators in the model")
    name = f"E{len(w.emulators)}"
    _commit(w, em, add=name)
    new = Emulator(name, emu_epoch=-1, emu_cursor=len(w.emu_log))
    w.emulators[name] = new
    enter_epoch(w, new, len(w.epochs) - 1)
    new.learn(w.signing_key)
    live = live_ops(w, em)
    for e in {w.ops[o].epoch for o in live} - new.known_epochs:
        new.known_epochs.add(e)
        new.learn(*epoch_secrets(w, w.epochs[e]))
        new.punctured[e] = set(em.punctured.get(e, set()))
    for o in live:
        op = w.ops[o]
        new.learn(op.secret)
        new.ops.add(o)
        new.retained[(op.epoch, op.slot)] = o
    new.key_packages = set(em.key_packages)
    new.pending_join = set(em.pending_join)
    for g, view in em.groups.items():
        if variant == "state_transfer" and view.broken is None and view.epoch_secret:
            new.groups[g] = replace(view, leaves=list(view.leaves))
            new.learn(view.epoch_secret, *(k for k in view.node_keys if k in em.held))
        else:
            new.pending_join.add(g)
    return name


def remove_emulator(w: World, emulator: str, target: str) -> int:
    """§4.3: remove `target` from the emulation group.

    Baseline (the later draft's order): first delete outstanding KeyPackages at the DS
    (F6 keeps them), and let the application provide a new signing key (F11 keeps it).
    The rest of the procedure is `vc_commit` in every group from the new epoch.
    """
    t = "remove_emulator"
    em = actor(w, emulator, t)
    require_latest(w, em, t)
    victim = w.emulators.get(target)
    require(victim is not None and victim.active, t, f"{target} is not an active emulator")
    require(target != emulator, t, "an emulator does not remove itself here")
    assert victim is not None
    deleted = () if w.config.removal_keeps_key_packages else tuple(sorted(w.key_packages))
    for ref in deleted:
        del w.key_packages[ref]
    key = None if w.config.removal_keeps_signing_key else w.fresh("signing_key")
    victim.active, victim.removed_at = False, len(w.epochs)
    if key is not None:
        w.signing_key = key
    return _commit(w, em, remove=target, deleted_key_packages=deleted, signing_key=key).epoch
