"""The abstraction function: the implementation's state, seen as the model's world.

Theory of operation. `of_model(world)` and `of_impl(bridge)` compute the same record
(`Abstract`) from the two sides: the emulation group's current epoch, roster and leaf
count; per emulator whether it is active, the emulation epoch it has processed, the
epochs whose secrets it holds, the operations it retains (Q7) and which of them it has
punctured (per epoch), the KeyPackages it knows, and per higher-level group its epoch,
the virtual client's leaves (as model operation ids) and whether it follows the group
("ok"), must first join it ("join"), or cannot follow it ("broken"); per group the true
epoch and leaves; the KeyPackages outstanding at the DS; and every PrivateMessage with
its sender, group, epoch, generation and whether the DS delivered it. `diff` prints
what differs, path by path.

What the abstraction leaves out (hidden state, see docs/REFINEMENT.md): PPRF leaves
punctured for attempts the DS refused (the implementation never reuses them; the model
has no such attempt), retained operations no model operation corresponds to (the same
attempts), and an inactive emulator's view (only `active` is compared: a removed
emulator's state is judged by INV-REMOVED instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlsvc.messages.leaf_node import LeafNode
from mlsvc_model.state import World
from mlsvc_model.tokens import model_hash

from .bridge import VC, Bridge, GroupSide, vc_leaves


@dataclass(frozen=True)
class EmulatorView:
    active: bool
    emu_epoch: int | None = None
    known_epochs: tuple[int, ...] = ()
    retained: tuple[int, ...] = ()
    punctured: tuple[tuple[int, tuple[int, ...]], ...] = ()
    key_packages: tuple[str, ...] = ()
    groups: tuple[tuple[str, int, tuple[int, ...], str], ...] = ()


@dataclass(frozen=True)
class Abstract:
    emulation: tuple[int, tuple[tuple[str, int], ...], int]
    emulators: tuple[tuple[str, EmulatorView], ...]
    groups: tuple[tuple[str, int, tuple[int, ...]], ...]
    key_packages: tuple[str, ...]
    messages: tuple[tuple[str, str, int, int, bool], ...]
    attributions: tuple[tuple[str, str, int, int], ...]  # (receiver, sender, epoch, leaf)


def of_model(w: World) -> Abstract:
    ep = w.epoch
    senders = {m.msg_id: m.sender for m in w.messages}
    emulators = []
    for name, em in sorted(w.emulators.items()):
        if not em.active:
            emulators.append((name, EmulatorView(False)))
            continue
        punctured = []
        for e in sorted(em.known_epochs):
            leaves = em.punctured.get(e, set())
            ops = tuple(sorted(
                o for o, op in w.ops.items() if op.epoch == e
                and model_hash(op.leaf_index, op.random, w.config.pprf_bits) in leaves))
            punctured.append((e, ops))
        groups: list[tuple[str, int, tuple[int, ...], str]] = []
        for g, view in sorted(em.groups.items()):
            status = ("join" if g in em.pending_join else
                      "broken" if view.broken is not None else "ok")
            if status != "ok":
                groups.append((g, -1, (), status))
            else:
                groups.append((g, view.epoch, tuple(view.leaves), status))
        for g in sorted(em.pending_join - set(em.groups)):
            groups.append((g, -1, (), "join"))
        emulators.append((name, EmulatorView(
            True, em.emu_epoch, tuple(sorted(em.known_epochs)), tuple(sorted(em.ops)),
            tuple(punctured), tuple(sorted(em.key_packages & set(w.key_packages))),
            tuple(sorted(groups)))))
    return Abstract(
        (ep.number, tuple(sorted(ep.roster.items())), ep.leaf_count),
        tuple(emulators),
        tuple((g.name, g.epoch, tuple(g.vc_leaves)) for g in sorted(
            w.groups.values(), key=lambda g: g.name)),
        tuple(sorted(w.key_packages)),
        tuple((m.sender, m.group, m.hl_epoch, m.generation, m.delivered) for m in w.messages),
        tuple(sorted((a.receiver, senders[a.msg_id], a.epoch_used, a.leaf)
                     for a in w.attributions)),
    )


def of_impl(b: Bridge) -> Abstract:
    off = b.offset
    emu_gid = b.emulation_group_id
    current = b.ds.epoch(emu_gid)
    at_latest = [em for em in b.vc.emulators.values() if em.emu.epoch == current]
    emulation: tuple[int, tuple[tuple[str, int], ...], int] = (current - off, (), 0)
    if at_latest:
        g = at_latest[0].emu
        roster = tuple(sorted((_name(leaf), int(i)) for i, leaf in g.members()))
        emulation = (current - off, roster, g.tree.leaf_count)
    kp_of_ref = {v: k for k, v in b.kp_refs.items()}
    emulators = []
    names = sorted(set(b.vc.emulators) | set(b.vc.removed))
    for name in names:
        if name in b.vc.removed or name not in b.vc.emulators:
            emulators.append((name, EmulatorView(False)))
            continue
        em = b.vc.emulators[name]
        known = tuple(sorted(n - off for n in em.epochs.epochs))
        retained = []
        punctured = []
        for n in sorted(em.epochs.epochs):
            ep = em.epochs.epochs[n]
            ops_here = [o for o, op in b.ops.items() if op.epoch == n]
            retained += [o for o in ops_here if b.ops[o].leaf in ep.retained
                         and ep.retained[b.ops[o].leaf].random == b.ops[o].random]
            pprf = ep.pprf
            punctured.append((n - off, tuple(sorted(
                o for o in ops_here if pprf is not None and pprf.is_punctured(b.ops[o].leaf)))))
        kps = tuple(sorted(kp_of_ref[r] for r in em.key_packages if r in kp_of_ref
                           and r in b.ds.outstanding_key_packages(VC)))
        hgroups: list[tuple[str, int, tuple[int, ...], str]] = []
        for gname, side in b.groups.items():
            gid = side.group_id
            if gid in em.join_externally:
                hgroups.append((gname, -1, (), "join"))
            elif (name, gname) in b.broken:
                hgroups.append((gname, -1, (), "broken"))
            elif gid in em.groups:
                hg = em.groups[gid]
                leaves = tuple(_op(b, leaf) for _, leaf in vc_leaves(hg.group.members()))
                hgroups.append((gname, hg.group.epoch, leaves, "ok"))
        emulators.append((name, EmulatorView(
            True, em.emu.epoch - off, known, tuple(sorted(retained)), tuple(punctured), kps,
            tuple(sorted(hgroups)))))
    groups_out: list[tuple[str, int, tuple[int, ...]]] = []
    for gname, side in sorted(b.groups.items()):
        gleaves = tuple(_op(b, leaf) for _, leaf in vc_leaves(_members(side)))
        epoch = side.peer.epoch()
        groups_out.append((gname, -1 if epoch is None else epoch, gleaves))
    kps_out = tuple(sorted(kp_of_ref[r] for r in b.ds.outstanding_key_packages(VC)
                           if r in kp_of_ref))
    messages = tuple(
        (out_sender(b, out), group, out.key_id[1] if out.key_id else -1,
         out.generation if out.generation is not None else -1, accepted)
        for group, out, accepted in b.messages)
    attributions = tuple(sorted(
        (a.receiver, a.sender, -1 if a.epoch is None else a.epoch,
         -1 if a.leaf is None else a.leaf) for a in b.attributions))
    return Abstract(emulation, tuple(emulators), tuple(groups_out), kps_out, messages,
                    attributions)


def out_sender(b: Bridge, out: object) -> str:
    return next(name for name, o, _ in b.vc.sent if o is out)


def _name(leaf: object) -> str:
    from mlsvc.messages.credentials import BasicCredential
    cred = getattr(leaf, "credential", None)
    return cred.identity.decode() if isinstance(cred, BasicCredential) else "?"


def _op(b: Bridge, leaf: object) -> int:
    enc = getattr(leaf, "encryption_key", b"")
    o = b.ops_of_enc(enc)
    return -1 if o is None else o


def _members(side: GroupSide) -> list[tuple[int, LeafNode]]:
    tree = side.peer.ratchet_tree()
    return [(i // 2, n) for i, n in enumerate(tree) if i % 2 == 0 and isinstance(n, LeafNode)]


def diff(model: Abstract, impl: Abstract) -> list[str]:
    """Readable differences, one line per path that differs."""
    out: list[str] = []
    _walk("", asdict(model), asdict(impl), out)
    return out


def _walk(path: str, a: object, b: object, out: list[str]) -> None:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            _walk(f"{path}.{k}", a.get(k), b.get(k), out)
        return
    if (isinstance(a, tuple | list) and isinstance(b, tuple | list) and
            all(isinstance(x, tuple | list) and len(x) == 2 and isinstance(x[0], str)
                for x in (*a, *b))):
        _walk(path, {x[0]: x[1] for x in a}, {x[0]: x[1] for x in b}, out)
        return
    out.append(f"{path or '.'}: model {a!r} != implementation {b!r}")
