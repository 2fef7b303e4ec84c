"""The named invariants (INV-...) and the observations, as data.

Each invariant quotes the sentence it comes from and has a check over the world that
returns None when it holds, or a description of the first counterexample. The
explorer checks them after every step; docs/MODEL.md is written from this table.
Observations are counts that are reported but not asserted (privacy and PPRF
statistics), because the baseline reading itself exhibits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .common import can_derive, fully_caught_up, slot_of_code
from .state import Emulator, Message, Operation, World
from .tokens import Tok, derivable, expand, public_key


@dataclass(frozen=True)
class Invariant:
    id: str
    title: str
    sentence: str
    section: str
    check: Callable[[World], str | None]


def _caught_up_views(w: World) -> Iterable[tuple[str, str, object]]:
    for g in w.vc_groups():
        for em in w.active():
            v = em.groups.get(g.name)
            if v is not None and g.name not in em.pending_join and v.cursor == len(g.log):
                yield em.name, g.name, v


def agree(w: World) -> str | None:
    """Every caught-up emulator has the group's epoch, epoch secret and leaves, and
    every emulator caught up in the emulation group knows every outstanding KeyPackage."""
    for em in w.active():
        for g in w.vc_groups():
            v = em.groups.get(g.name)
            if v is None or g.name in em.pending_join or v.cursor != len(g.log) or v.broken:
                continue
            if (v.epoch, v.epoch_secret, v.leaves) != (g.epoch, g.epoch_secret, g.vc_leaves):
                return (
                    f"{em.name} sees {g.name} at epoch {v.epoch} with leaves {v.leaves}; "
                    f"the group is at epoch {g.epoch} with leaves {g.vc_leaves}"
                )
        if em.emu_cursor == len(w.emu_log) and not set(w.key_packages) <= em.key_packages:
            missing = sorted(set(w.key_packages) - em.key_packages)
            return f"{em.name} does not know the outstanding KeyPackages {missing}"
    return None


def rederive(w: World) -> str | None:
    """Every emulator can compute every live key of the virtual client from what it
    holds: leaves, direct-path keys and epoch secret of each group it has processed,
    outstanding KeyPackages, and (when caught up) the signing key."""
    for em in w.active():
        for g in w.vc_groups():
            v = em.groups.get(g.name)
            if v is None or g.name in em.pending_join:
                continue
            if v.broken:
                return f"{em.name} cannot follow {g.name}: {v.broken}"
            ops = [w.ops[o] for o in v.leaves]
            need = [t for op in ops for t in (op.signature, op.encryption)] + sorted(
                v.node_keys, key=str
            )
            if v.epoch_secret is not None:
                need.append(v.epoch_secret)
            for t in need:
                if not can_derive(em, t):
                    return f"{em.name} cannot re-derive {t.short()} of {g.name}"
        for ref in sorted(em.key_packages & set(w.key_packages)):
            op = w.ops[w.key_packages[ref]]
            if not all(can_derive(em, t) for t in (op.init, op.encryption, op.signature)):
                return f"{em.name} cannot re-derive the keys of {ref}"
        if fully_caught_up(w, em) and w.signing_key not in em.held:
            return f"{em.name} does not hold the virtual client's signing key"
    return None


def op_keys_distinct(w: World) -> str | None:
    owner: dict[Tok, Operation] = {}
    for op in w.ops.values():
        for name, t in zip(
            ("signature", "encryption", "init", "path_generation"), op.keys(), strict=True
        ):
            other = owner.setdefault(t, op)
            if other is not op:
                return (
                    f"operations {other.op_id} ({other.creator}, {other.kind}) and "
                    f"{op.op_id} ({op.creator}, {op.kind}) share {name}_key_secret"
                )
    return None


def aead_unique(w: World) -> str | None:
    seen: dict[tuple[Tok, Tok], tuple[str, str]] = {}
    for u in w.aead:
        first = seen.setdefault((u.key, u.nonce), (u.plaintext, u.where))
        if first[0] != u.plaintext:
            return (
                f"{first[0]} ({first[1]}) and {u.plaintext} ({u.where}) "
                "are encrypted under the same key and nonce"
            )
    return None


def pprf_puncture(w: World) -> str | None:
    """Under the latest profile the PPRF is gone and the same check reads latest §5.2
    (L2): a consumed operation-ratchet generation is never used again."""
    for ev in w.pprf_evals:
        if ev.was_punctured:
            if w.config.latest:
                li, kind, gen = slot_of_code(ev.leaf)
                return (
                    f"{ev.emulator} used generation {gen} of the {kind} ratchet of leaf {li} "
                    f"of epoch {ev.epoch} a second time"
                )
            where = f"leaf {ev.leaf} of epoch {ev.epoch}"
            return f"{ev.emulator} evaluated the PPRF at {where} after puncturing it"
    return None


def removal_finished(w: World, r: Emulator) -> bool:
    """§4.3: removed, and every group's virtual-client leaves come from an epoch at or
    after the removal (a Commit with path from the new epoch in every group)."""
    if r.removed_at is None:
        return False
    return all(w.ops[o].epoch >= r.removed_at for g in w.vc_groups() for o in g.vc_leaves)


def removed_learns_nothing(w: World) -> str | None:
    """Once every group's virtual-client leaves come from an epoch at or after the
    removal, the removed emulator (assumed to keep everything it ever held, and to see
    every public ciphertext) derives no live secret and nothing of a later epoch."""
    for r in w.emulators.values():
        if r.removed_at is None or not removal_finished(w, r):
            continue
        groups = w.vc_groups()
        targets: list[tuple[str, Tok]] = [("the long-term signing key", w.signing_key)]
        for ep in w.epochs[r.removed_at :]:
            targets.append((f"emulation epoch {ep.number}'s epoch secret", ep.epoch_secret))
            targets.append((f"epoch_base_secret of emulation epoch {ep.number}", ep.base))
        for g in groups:
            targets.append((f"{g.name} epoch {g.epoch} secret", g.epoch_secret))
            targets += [(f"a direct-path key in {g.name}", k) for k in sorted(g.node_keys, key=str)]
            targets += [(f"leaf op {o} in {g.name}", w.ops[o].encryption) for o in g.vc_leaves]
        for ref, o in sorted(w.key_packages.items()):
            targets.append((f"the init key of outstanding {ref}", w.ops[o].init))
        memo: dict[Tok, bool] = {}
        for what, tok in targets:
            if derivable(tok, r.ever, sealed=w.sealed_by_payload(), memo=memo):
                return (
                    f"{r.name}, removed at emulation epoch {r.removed_at}, derives {what} "
                    "after the removal procedure finished"
                )
    return None


def attribution(w: World) -> str | None:
    msgs = {m.msg_id: m for m in w.messages}
    for a in w.attributions:
        m = msgs[a.msg_id]
        who = w.epochs[a.epoch_used].member_at(a.leaf)
        if who != m.sender:
            return (
                f"{a.receiver} attributes M{m.msg_id} from {m.sender} to leaf {a.leaf} "
                f"of emulation epoch {a.epoch_used} ({who or 'a blank leaf'})"
            )
    return None


def one_leaf(w: World) -> str | None:
    for g in w.groups.values():
        if len(g.vc_leaves) > 1:
            return f"{g.name} has {len(g.vc_leaves)} leaves of the virtual client"
    return None


def no_emulator_identity(w: World) -> str | None:
    """An outsider (no secrets, every public ciphertext) cannot invert a reuse guard or
    open a DerivationInfo: the two places an emulator's leaf index is carried."""
    memo: dict[Tok, bool] = {}
    sealed = w.sealed_by_payload()
    for m in w.messages:
        if derivable(m.prp_key, frozenset(), sealed=sealed, memo=memo):
            return f"an outsider can invert the reuse guard of M{m.msg_id}"
    for where, o in w.public_leaves:
        op = w.ops[o]
        key = expand(w.epochs[op.epoch].encryption_key, "key", public_key(op.encryption))
        if derivable(key, frozenset(), sealed=sealed, memo=memo):
            return f"an outsider can open the DerivationInfo of op {o} in {where}"
    return None


def _scope(m: Message) -> tuple[object, ...]:
    return (m.group, m.hl_epoch, m.leaf_op, m.ratchet, m.generation)


def ds_no_false_collision(w: World) -> str | None:
    msgs = {m.msg_id: m for m in w.messages}
    for rejected, earlier in w.ds_reports:
        a, b = msgs[rejected], msgs[earlier]
        if _scope(a) != _scope(b):
            return (
                f"the DS rejected M{a.msg_id} ({a.group} epoch {a.hl_epoch} generation "
                f"{a.generation}) as colliding with M{b.msg_id} ({b.group} epoch "
                f"{b.hl_epoch} generation {b.generation})"
            )
    return None


def delivered_decryptable(w: World) -> str | None:
    seen: dict[tuple[object, ...], int] = {}
    for m in w.messages:
        if m.delivered:
            first = seen.setdefault(_scope(m), m.msg_id)
            if first != m.msg_id:
                return (
                    f"M{first} and M{m.msg_id} were both delivered in {m.group} epoch "
                    f"{m.hl_epoch} generation {m.generation}: the second cannot be decrypted"
                )
    return None


def deletion(w: World) -> str | None:
    for em in w.active():
        if any(t.label == "SafeExportSecret" for t in em.held):
            return f"{em.name} still holds an emulator_epoch_secret"
        if not fully_caught_up(w, em):
            continue
        live = {o for v in em.groups.values() if v.broken is None for o in v.leaves}
        live |= {w.kp_ops[ref] for ref in em.key_packages}
        stale = [o for o in em.ops if o not in live]
        if stale:
            return f"{em.name} keeps operation secrets {sorted(stale)} no longer in use"
        referenced = {w.ops[o].epoch for o in live} | {em.emu_epoch}
        kept = [e for e in em.known_epochs if e not in referenced and w.epochs[e].base in em.held]
        if kept:
            return f"{em.name} keeps epoch_base_secret of unreferenced epochs {kept}"
    return None


INVARIANTS: dict[str, Invariant] = {
    i.id: i
    for i in (
        Invariant(
            "INV-AGREE",
            "all emulators agree on the virtual client's keys",
            (
                "Given an epoch_id, random and the leaf_index of the emulator client performing "
                "the virtual client operation, other emulator clients can derive the "
                "operation_secret and use it to perform the same operation."
            ),
            "§5.2",
            agree,
        ),
        Invariant(
            "INV-REDERIVE",
            "every emulator can re-derive every live key from what it holds",
            (
                "Emulator client MUST store both the (punctured) epoch_base_secret and the "
                "epoch_id until no key material derived from it is actively used anymore."
            ),
            "§5.2",
            rederive,
        ),
        Invariant(
            "INV-OP-KEYS-DISTINCT",
            "no two operations share key material",
            (
                "The pprf_input is then used to derive an operation_secret. [...] There are "
                "four types of MLS-related secrets that can be derived from an "
                "operation_secret."
            ),
            "§5.2; RFC 9420 §7.3, §10",
            op_keys_distinct,
        ),
        Invariant(
            "INV-AEAD-UNIQUE",
            "no two messages share (key, nonce)",
            (
                "Critically, if two emulator clients encrypt a message with both the same key "
                "and nonce simultaneously, this could compromise the message's confidentiality "
                "and integrity."
            ),
            "§5.6; P6 for DerivationInfo",
            aead_unique,
        ),
        Invariant(
            "INV-PPRF-PUNCTURE",
            "a punctured PPRF point is never evaluated again",
            (
                "Upon generating an exported secret for a component, the MLS implementation "
                'MUST regard that component\'s exported secret as "consumed", and delete any '
                "source key material."
            ),
            "extensions-09 §4.4 via §5.2; P2",
            pprf_puncture,
        ),
        Invariant(
            "INV-REMOVED",
            "a removed emulator derives nothing after the removal procedure",
            (
                "The latter step is required to ensure that the removed emulator client loses "
                "its access to any active virtual client secrets."
            ),
            "§4.3",
            removed_learns_nothing,
        ),
        Invariant(
            "INV-ATTRIBUTION",
            "recipients attribute every message to its true sender",
            (
                "reuse_guard is computed in a way that it appears random to outside observers "
                "[...], but two emulator clients will never generate the same value."
            ),
            "§5.8",
            attribution,
        ),
        Invariant(
            "INV-ONE-LEAF",
            "higher-level members see one leaf per virtual client",
            (
                "Instead of one leaf for each emulator client, it only has a single leaf for "
                "the virtual client."
            ),
            "§3.1",
            one_leaf,
        ),
        Invariant(
            "INV-NO-EMULATOR-ID",
            "higher-level members see no emulator identity",
            (
                "recipients will see the virtual client as the sender and won't be able to "
                "discern which emulator client sent the message"
            ),
            "§3.2",
            no_emulator_identity,
        ),
        Invariant(
            "INV-DS-NO-FALSE-COLLISION",
            "the DS reports only true generation collisions",
            (
                "Attaching the generation ID to the PrivateMessage allows the DS to detect "
                "collisions between generations per epoch and per ratchet type."
            ),
            "§5.9; P11",
            ds_no_false_collision,
        ),
        Invariant(
            "INV-DELIVERED-DECRYPTABLE",
            "no two delivered messages use one ratchet generation",
            (
                "Other higher level group members (or indeed emulator clients) will delete the "
                "encryption key after using it to decrypt the first message they receive and "
                "will be unable to decrypt subsequent messages."
            ),
            "§5.9",
            delivered_decryptable,
        ),
        Invariant(
            "INV-DELETION",
            "secrets are deleted once unused",
            (
                "The emulator_epoch_secret is in turn used to derive four further secrets, "
                "after which it is deleted. [...] until no key material derived from it is "
                "actively used anymore."
            ),
            "§5.2",
            deletion,
        ),
    )
}


def violations(w: World, ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The invariants (all, or `ids`) that fail, with their counterexample."""
    out = []
    for i in (INVARIANTS[x] for x in ids) if ids is not None else INVARIANTS.values():
        detail = i.check(w)
        if detail is not None:
            out.append((i.id, detail))
    return out


def observations(w: World) -> dict[str, int]:
    """Counts reported beside the invariants (not asserted)."""
    leaves_by_epoch_id: dict[Tok, set[str]] = {}
    for where, o in w.public_leaves:
        leaves_by_epoch_id.setdefault(w.epochs[w.ops[o].epoch].epoch_id, set()).add(where)
    scopes: dict[Tok, set[tuple[str, int]]] = {}
    for m in w.messages:
        if m.generation_id is not None:
            scopes.setdefault(m.generation_id, set()).add((m.group, m.hl_epoch))
    return {
        "pprf_derivations": sum(w.derivations.values()),
        "pprf_resamples": sum(w.resamples.values()),
        "q7_collisions": len(w.collisions),
        "messages": len(w.messages),
        "ds_rejections": len(w.ds_reports),
        "epoch_ids_linking_places": sum(1 for s in leaves_by_epoch_id.values() if len(s) > 1),
        "generation_ids_linking_scopes": sum(1 for s in scopes.values() if len(s) > 1),
        "actions_in_clear": len(w.public_actions),
        "attributions": len(w.attributions),
        "removals_finished_in_groups": sum(
            1 for r in w.emulators.values() if w.vc_groups() and removal_finished(w, r)
        ),
    }
