"""Transitions in higher-level groups and at the DS (draft-00 §4.2, §5.1, §5.3, §5.5-§5.9).

Theory of operation. A higher-level group is seen from outside: its epoch secret, the
virtual client's LeafNodes and the private keys on its direct path (`node_keys`), and
the DS's log. Key schedule as tokens: epoch_secret[n+1] = f(init_secret[n],
commit_secret), commit_secret = DeriveSecret(path_secret, "path") (RFC 9420 §8, §7.4).
A path secret reaching the virtual client from another member is a public ciphertext
to its node keys. Every emulator reads every log of the virtual client's groups (§5.1
fan-out) through `deliver`, which dispatches to `apply_group_entry` or
`receive_private_message`.
"""

from __future__ import annotations

from .common import (
    actor,
    can_derive,
    collect,
    derive_operation_secret,
    rederive_operation,
    require,
    require_latest,
    require_pprf_room,
    reuse_guard_secret,
)
from .config import APPLICATION
from .emulation import _commit, create_key_packages, process_emulation
from .errors import PreconditionError
from .state import (
    EMULATION,
    AeadUse,
    Attribution,
    EmuEntry,
    Emulator,
    Group,
    GroupEntry,
    GroupView,
    Message,
    World,
)
from .tokens import Tok, combine, derive_secret, expand, prp, public_key


def _next_epoch_secret(init_from: Tok, commit_secret: Tok) -> Tok:
    """RFC 9420 §8: the next epoch's secret from init_secret and commit_secret."""
    return combine("epoch_secret", init_from, commit_secret)


def _open_epoch(w: World, g: Group, entry: GroupEntry, *, join: bool = False) -> None:
    """Append a handshake to the group's log (DS total order) and move the group on."""
    for key in entry.sealed_to:
        for payload in entry.payloads:
            w.seal(key, payload)
    g.log.append(entry)
    g.epoch, g.epoch_secret = entry.epoch, entry.epoch_secret
    g.vc_leaves, g.node_keys = list(entry.leaves), entry.node_keys
    if join:
        g.vc_join_index = len(g.log) - 1


def create_group(w: World) -> str:
    """A higher-level group of other members that the virtual client is not in yet."""
    name = f"G{len(w.groups) + 1}"
    w.groups[name] = Group(name, 0, w.fresh("hl_epoch_secret", name))
    return name


def member_commit(w: World, group: str) -> int:
    """RFC 9420 §12.4: another member commits with a path; the path secret reaching the
    virtual client is encrypted to the nodes on its direct path (RFC 9420 §7.6)."""
    g = w.groups.get(group)
    require(g is not None, "member_commit", f"no group {group}")
    assert g is not None
    path = w.fresh("path_secret", group)
    nodes = g.node_keys | {path} if g.vc_leaves else frozenset()
    es = _next_epoch_secret(derive_secret(g.epoch_secret, "init"), derive_secret(path, "path"))
    entry = GroupEntry(
        "member_commit",
        g.epoch + 1,
        es,
        tuple(g.vc_leaves),
        nodes,
        sealed_to=tuple(sorted(g.node_keys, key=str)),
        payloads=(path,),
    )
    _open_epoch(w, g, entry)
    return g.epoch


def welcome(w: World, group: str, key_package: str) -> int:
    """§5.5.1, RFC 9420 §12.4.3.1: another member adds the virtual client with one of its
    KeyPackages; every emulator finds the init_key by KeyPackageRef."""
    t = "welcome"
    g = w.groups.get(group)
    require(g is not None and not g.vc_leaves, t, f"{group} is not a group without the VC")
    require(key_package in w.key_packages, t, f"{key_package} is not outstanding at the DS")
    assert g is not None
    op = w.ops[w.key_packages.pop(key_package)]
    path = w.fresh("path_secret", group)
    es = _next_epoch_secret(derive_secret(g.epoch_secret, "init"), derive_secret(path, "path"))
    entry = GroupEntry(
        "welcome",
        g.epoch + 1,
        es,
        (op.op_id,),
        frozenset({op.encryption, path}),
        op.op_id,
        sealed_to=(op.init,),
        payloads=(es, path),
    )
    _open_epoch(w, g, entry, join=True)
    w.public_leaves.append((group, op.op_id))
    return g.epoch


def vc_commit(w: World, emulator: str, group: str, kind: str, salt: int) -> int:
    """§5.3: a new LeafNode for the virtual client from the current emulation epoch.

    "commit": a Commit with an UpdatePath whose first path_secret is
    path_generation_secret. "update": an Update proposal that another member commits
    (its path secret is encrypted to the new leaf). The leaf replaced is the newest one.
    """
    t = "vc_commit"
    em = actor(w, emulator, t)
    g = w.groups.get(group)
    view = em.groups.get(group)
    require(kind in ("commit", "update"), t, f"unknown kind {kind}")
    require(g is not None and view is not None and view.broken is None, t, "no usable view")
    assert g is not None and view is not None
    require(view.cursor == len(g.log), t, "the DS accepts a Commit only on the current epoch")
    if not w.config.derive_from_stale_epoch:
        require_latest(w, em, t)  # M4: derive only from the emulation group's latest epoch
    require_pprf_room(w, em, 1, t)
    op = derive_operation_secret(w, em, "leaf_node", salt, group)  # L1: context = group_id
    if kind == "commit":
        payloads: tuple[Tok, ...] = ()
        commit, nodes = derive_secret(op.path, "path"), frozenset({op.encryption, op.path})
    else:
        path = w.fresh("path_secret", group)
        payloads, commit, nodes = (
            (path,),
            derive_secret(path, "path"),
            frozenset({op.encryption, path}),
        )
    es = _next_epoch_secret(derive_secret(g.epoch_secret, "init"), commit)
    entry = GroupEntry(
        f"vc_{kind}",
        g.epoch + 1,
        es,
        (*g.vc_leaves[:-1], op.op_id),
        nodes,
        op.op_id,
        sealed_to=(op.encryption,) if payloads else (),
        payloads=payloads,
        actor=emulator,
    )
    _open_epoch(w, g, entry)
    w.public_leaves.append((group, op.op_id))
    apply_group_entry(w, em, view, entry)
    view.cursor += 1
    return g.epoch


def external_join(w: World, emulator: str, group: str, salt: int) -> int:
    """§5.5.2: an ExternalJoin action in the emulation group, then an external Commit
    (RFC 9420 §12.4.3.2) with LeafNode and path from the new emulation epoch.

    If the virtual client is already a member this is a resync: the prior leaf is
    removed (F7 keeps it). M2: the KEM randomness of the ExternalInit is derived from the
    operation secret, so other emulators can follow (F10 samples it).

    Latest profile: no ExternalJoin action (L9), the LeafNode comes from the emulator's
    current epoch; the init secret is random (RFC 9420 §8.3) and travels in the
    DerivationInfoTBE, i.e. encrypted under the DerivationInfo key (L10).
    """
    t = "external_join"
    em = actor(w, emulator, t)
    if not (w.config.latest and w.config.stale_external_join):
        # draft-00: the ExternalJoin action's Commit is refused on a stale epoch (§5.5);
        # latest: nothing but M4 orders it (F13 drops M4 here)
        require_latest(w, em, t)
    g = w.groups.get(group)
    require(g is not None, t, f"no group {group}")
    assert g is not None
    view = em.groups.get(group)
    require(
        not g.vc_leaves or group in em.pending_join or view is None or view.broken is not None,
        t,
        f"{emulator} already follows {group}: a resync is for an emulator without its state",
    )
    require_pprf_room(w, em, 1, t)
    latest = w.config.latest
    if not latest:
        _commit(w, em, action="external_join", external_group=group)
    op = derive_operation_secret(w, em, "leaf_node", salt, group)
    random_init = w.config.random_external_init or latest
    ext_init = w.fresh("external_init") if random_init else op.external_init
    em.learn(ext_init)
    resync = bool(g.vc_leaves)
    keep = resync and w.config.resync_without_remove
    leaves = (*g.vc_leaves, op.op_id) if keep else (op.op_id,)
    nodes = frozenset({op.encryption, op.path}) | (g.node_keys if keep else frozenset())
    external_priv = derive_secret(g.epoch_secret, "external")  # RFC 9420 §8.3
    sealed: tuple[Tok, ...] = (external_priv,)
    if latest:  # L10: external_init_secret in the DerivationInfoTBE
        ep = w.epochs[op.epoch]
        sealed = (external_priv, expand(ep.encryption_key, "key", public_key(op.encryption)))
    es = _next_epoch_secret(ext_init, derive_secret(op.path, "path"))
    entry = GroupEntry(
        "external_join",
        g.epoch + 1,
        es,
        leaves,
        nodes,
        op.op_id,
        sealed_to=sealed,
        payloads=(ext_init,),
        actor=emulator,
    )
    _open_epoch(w, g, entry, join=not resync)
    w.public_leaves.append((group, op.op_id))
    em.pending_join.discard(group)
    em.forget(*(v.epoch_secret for v in [em.groups.get(group)] if v and v.epoch_secret))
    view = GroupView(len(g.log) - 1, g.epoch - 1, None, [], frozenset())
    em.groups[group] = view
    apply_group_entry(w, em, view, entry)
    view.cursor += 1
    return g.epoch


def apply_group_entry(w: World, em: Emulator, view: GroupView, entry: GroupEntry) -> None:
    """Process a handshake: re-derive the virtual client's new LeafNode (§5.3: "uses the
    epoch_id to determine the epoch of the emulator group from which to derive"), open
    what was encrypted to it, and move to the new epoch, or mark the view broken."""
    if view.broken is not None:
        return
    if entry.op_id is not None and not rederive_operation(w, em, w.ops[entry.op_id]):
        view.broken = f"cannot re-derive operation {entry.op_id} ({entry.kind})"
        return
    if any(can_derive(em, k) for k in entry.sealed_to):
        em.learn(*entry.payloads)
    if not can_derive(em, entry.epoch_secret):
        view.broken = f"cannot derive epoch {entry.epoch} ({entry.kind})"
        return
    if entry.kind == "welcome":
        # the Welcome used the KeyPackage (RFC 9420 §16.8: once): no longer outstanding,
        # so its operation lives on only as the leaf (found by the refinement test)
        em.key_packages -= {ref for ref, o in w.kp_ops.items() if o == entry.op_id}
    old_paths = {k for k in view.node_keys if k.label == "path_secret"} - entry.node_keys
    spent = (t for t in entry.payloads if t.label != "path_secret" and t != entry.epoch_secret)
    em.forget(*old_paths, *spent)
    if view.epoch_secret is not None:
        em.forget(view.epoch_secret)  # RFC 9420 §9.2: the old epoch's secrets go
    em.learn(entry.epoch_secret)
    view.epoch, view.epoch_secret = entry.epoch, entry.epoch_secret
    view.leaves, view.node_keys, view.next_generation = list(entry.leaves), entry.node_keys, 0


def send_private_message(w: World, emulator: str, group: str, r: int) -> str:
    """§5.6-§5.9: encrypt with the virtual client's sending ratchet and a computed reuse
    guard; attach a generation ID; the DS orders it or reports a collision.

    x = leaf_index_e + N_e * r (so x mod N_e = leaf_index_e, P9), prp_key =
    ExpandWithLabel(leaf_node_secret, "reuse guard", key_schedule_nonce, 16) with P8's
    leaf_node_secret, reuse_guard = FF1(prp_key, x). generation_id =
    ExpandWithLabel(generation_id_secret_e, "generation id", PrivateMessageContext).
    The sender's randomness is adversarial: if some x already used under the same key
    has the sender's residue, it picks that x (the draft's guarantee, "two emulator
    clients will never generate the same value", must hold for every choice); else
    x = leaf_index + N * r.
    """
    t = "send_private_message"
    cfg = w.config
    em = actor(w, emulator, t)
    g = w.groups.get(group)
    view = em.groups.get(group)
    require(g is not None and view is not None and view.broken is None, t, "no usable view")
    assert g is not None and view is not None and view.epoch_secret is not None
    require(view.epoch == g.epoch, t, "its view is behind the group's epoch")
    require(0 <= r <= cfg.guard_random_max, t, "r out of range")
    leaf = w.ops[view.leaves[-1]]
    e = leaf.epoch
    if cfg.reuse_guard_local_epoch:
        used = em.emu_epoch  # F8: "the number of leaves in the emulation group", locally
    elif e in em.leaf_at:
        used = e  # P9
    else:
        require(cfg.send_before_rotation, t, f"P9: {emulator} was not a member at epoch {e}")
        used = em.emu_epoch  # F2: its own current leaf index and leaf count
    li, n = em.leaf_at[used], w.epochs[used].leaf_count
    gen, es = view.next_generation, view.epoch_secret
    key = expand(es, "key", leaf.op_id, APPLICATION, gen)
    clash = [m.x for m in w.messages if m.key == key and m.x % n == li]
    x = clash[0] if clash else li + n * r
    ksn = expand(es, "nonce", leaf.op_id, APPLICATION, gen)  # key_schedule_nonce
    if cfg.latest:  # L5: prp_key from reuse_guard_secret of epoch e
        prp_key = expand(reuse_guard_secret(w.epochs[used]), "reuse guard", ksn)
    else:  # P8: leaf_node_secret
        prp_key = expand(leaf.encryption, "reuse guard", ksn)
    nonce = combine("nonce_xor_reuse_guard", ksn, prp(prp_key, x))
    genid: Tok | None = None
    if cfg.ds_generation_ids:
        ctx = (
            (group, g.epoch, gen, APPLICATION)
            if cfg.latest_generation_id_context
            else (gen, APPLICATION)
        )
        genid = expand(w.epochs[e].generation_id_secret, "generation id", *ctx)  # Q4
    own_scope = cfg.literal_p11_ds_scope or cfg.latest_generation_id_context
    scope: tuple[object, ...] = (genid,) if own_scope else (group, g.epoch, genid)
    earlier = w.ds_genids.get(scope) if genid is not None else None
    msg = Message(
        w.next_id(),
        group,
        g.epoch,
        emulator,
        leaf.op_id,
        gen,
        APPLICATION,
        used,
        x,
        key,
        nonce,
        prp_key,
        genid,
        delivered=earlier is None,
    )
    w.messages.append(msg)
    w.aead.append(
        AeadUse(key, nonce, f"M{msg.msg_id}", f"{group} epoch {g.epoch} generation {gen}")
    )
    view.next_generation = gen + 1
    if earlier is not None:
        w.ds_reports.append((msg.msg_id, earlier))
        return f"M{msg.msg_id} rejected (generation-ID collision with M{earlier})"
    if genid is not None:
        w.ds_genids[scope] = msg.msg_id
    if view.cursor == len(g.log):
        view.cursor += 1  # its own message needs no processing
    g.log.append(msg)
    return f"M{msg.msg_id}"


def receive_private_message(w: World, em: Emulator, view: GroupView, msg: Message) -> None:
    """§5.8: a receiving emulator inverts the reuse guard with the shared prp_key and
    attributes the message to leaf x mod N_e of epoch e (as the later draft spells out);
    it also moves its view of the sending ratchet past the generation (RFC 9420 §9.2)."""
    if view.broken is None and msg.sender != em.name:
        leaf = w.ops[msg.leaf_op]
        used = em.emu_epoch if w.config.reuse_guard_local_epoch else leaf.epoch
        recovered = msg.x % w.epochs[used].leaf_count if can_derive(em, msg.prp_key) else -1
        w.attributions.append(Attribution(em.name, msg.msg_id, used, recovered))
    view.next_generation = max(view.next_generation, msg.generation + 1)


def _next_item(w: World, em: Emulator, log: str) -> tuple[GroupView | None, GroupEntry | Message]:
    """The next message of a group's log for this emulator, if it can process it now."""
    t = "deliver"
    g = w.groups.get(log)
    require(g is not None and bool(g.vc_leaves), t, f"the virtual client is not in {log}")
    require(log not in em.pending_join, t, f"{em.name} must first join {log} (P13 marker)")
    assert g is not None
    view = em.groups.get(log)
    cursor = view.cursor if view is not None else g.vc_join_index
    require(cursor < len(g.log), t, "nothing to deliver")
    item = g.log[cursor]
    if isinstance(item, GroupEntry) and item.op_id is not None:
        op = w.ops[item.op_id]
        needed = op.epoch + (1 if op.kind == "key_package" else 0)
        require(em.emu_epoch >= needed, t, f"first process the emulation group to epoch {needed}")
    return view, item


def deliverable(w: World) -> list[tuple[str, str]]:
    """Every (emulator, log) whose next message the DS can deliver now."""
    out = []
    for em in w.active():
        if em.emu_cursor < len(w.emu_log):
            out.append((em.name, EMULATION))
        for g in sorted(w.vc_groups(), key=lambda g: g.name):
            try:
                _next_item(w, em, g.name)
            except PreconditionError:
                continue
            out.append((em.name, g.name))
    return out


def deliver(w: World, emulator: str, log: str) -> str:
    """§5.1: the DS hands the emulator the next message of a log (the emulation group's,
    or a group of the virtual client's: fan-out to every emulator)."""
    em = actor(w, emulator, "deliver")
    if log == EMULATION:
        require(em.emu_cursor < len(w.emu_log), "deliver", "nothing to deliver")
        w.delivered.append((emulator, log))
        process_emulation(w, em)
        return "processed"
    view, item = _next_item(w, em, log)
    w.delivered.append((emulator, log))
    if view is None:
        view = em.groups[log] = GroupView(w.groups[log].vc_join_index, -1, None, [], frozenset())
    if isinstance(item, Message):
        receive_private_message(w, em, view, item)
    else:
        apply_group_entry(w, em, view, item)
    view.cursor += 1
    return "broken: " + view.broken if view.broken else "processed"


def catch_up(w: World, emulator: str) -> int:
    """Deliver everything the emulator can process now; the number of messages."""
    em = actor(w, emulator, "catch_up")
    done, progress = 0, True
    while progress:
        progress = False
        for log in [EMULATION, *sorted(g.name for g in w.vc_groups())]:
            try:
                deliver(w, emulator, log)
            except PreconditionError:
                continue
            done, progress = done + 1, True
    require(done > 0, "catch_up", f"{em.name} has nothing it can process")
    return done


def onboard_external(w: World, salt: int) -> str:
    """§4.2 Joining externally: (1) a fresh credential with a new signing key; (2) an
    external join into the emulation group and a ResyncMessage (P14) with the key;
    (3) replace all active KeyPackages from the new epoch; (4) external-join every group
    of the virtual client from the new epoch (a resync, see `external_join`)."""
    t = "onboard_external"
    require(len(w.active()) < 6, t, "at most six emulators in the model")
    name = f"E{len(w.emulators)}"
    new = Emulator(name, emu_epoch=-1, emu_cursor=len(w.emu_log))
    w.emulators[name] = new
    key = w.fresh("signing_key")
    _commit(w, new, add=name)
    w.emu_log.append(EmuEntry("resync", name, len(w.epochs) - 1, signing_key=key))
    w.signing_key = key
    process_emulation(w, new)
    create_key_packages(w, name, 1, salt, replace_all=True)
    for g in w.vc_groups():
        new.pending_join.add(g.name)
        external_join(w, name, g.name, salt)
    collect(w, new)
    return name
