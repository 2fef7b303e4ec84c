"""Every INV-* of the model, checked on the implementation's state and bytes.

Theory of operation. Each check reads what a real system holds: the DS's logs and
directory (every byte an outsider sees), the members' ratchet trees, the emulators'
epoch stores, groups, KeyPackages and keys, and what the bridge recorded as it went
(each PrivateMessage's key id and actual nonce, each sibling attribution and the
roster it was read against). None asks the model. `IMPL_INVARIANTS` has one check per
id of mlsvc_model.invariants.INVARIANTS (a test keeps the two lists equal), each
returning None or the first counterexample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError
from mlsvc.messages.commit import Commit
from mlsvc.messages.framing import PublicMessage
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Update
from mlsvc.vc import derivation as dinfo
from mlsvc.vc.emulator import Emulator
from mlsvc.vc.epoch import EmulationEpoch
from mlsvc.vc.operation import OperationSecrets, literal_subsecrets, pprf_leaf

from .bridge import SUITE, VC, Bridge, GroupSide, vc_leaves


def _public_leaves(b: Bridge) -> Iterator[tuple[str, LeafNode, bytes | None]]:
    """Every LeafNode of the virtual client an outsider saw: in uploaded KeyPackages
    (with their init key), Update proposals and Commit paths of every group's log."""
    seen: set[bytes] = set()
    for n, raw in enumerate(b.public):
        try:  # GroupInfos, Welcomes, KeyPackages; other bytes hold no LeafNode to check
            body = MLSMessage.decode(raw).body
        except DecodeError:
            continue
        if isinstance(body, KeyPackage):
            enc = body.leaf_node.encode()
            if enc not in seen and _is_vc(body.leaf_node):
                seen.add(enc)
                yield f"KeyPackage #{n}", body.leaf_node, body.init_key
    for side in b.groups.values():
        for d in b.ds.log(side.group_id):
            body = MLSMessage.decode(d.message).body
            if not isinstance(body, PublicMessage):
                continue
            c = body.content.content
            leaf: LeafNode | None = None
            if isinstance(c, Update):
                leaf = c.leaf_node
            elif isinstance(c, Commit) and c.path is not None:
                leaf = c.path.leaf_node
            if leaf is not None and _is_vc(leaf) and leaf.encode() not in seen:
                seen.add(leaf.encode())
                yield f"{side.name} (group position {d.group_seq})", leaf, None


def _is_vc(leaf: LeafNode) -> bool:
    return bool(vc_leaves([(0, leaf)]))


def agree(b: Bridge) -> str | None:
    outstanding = set(b.ds.outstanding_key_packages(VC))
    for name, em in sorted(b.vc.emulators.items()):
        for g, side in sorted(b.groups.items()):
            hg = em.groups.get(side.group_id)
            if hg is None or (name, g) in b.broken or side.group_id in em.join_externally:
                continue
            if b.ds.refetch(name, side.group_id, em.cursors.get(side.group_id, -1)):
                continue
            if hg.group.epoch != side.peer.epoch() or (
                    hg.group.epoch_authenticator != side.peer.epoch_authenticator()):
                return (f"{name} is at epoch {hg.group.epoch} of {g}, the members at "
                        f"{side.peer.epoch()} (or their epoch authenticators differ)")
        caught = not b.ds.refetch(name, b.emulation_group_id,
                                  em.cursors.get(b.emulation_group_id, -1))
        if caught and not outstanding <= set(em.key_packages):
            return f"{name} does not know {len(outstanding - set(em.key_packages))} " \
                   "outstanding KeyPackage(s) of the DS"
    return None


def rederive(b: Bridge) -> str | None:
    cs = get_suite(SUITE)
    for (name, g), why in sorted(b.broken.items()):
        if name in b.vc.emulators:
            return f"{name} cannot follow {g}: {why}"
    for name, em in sorted(b.vc.emulators.items()):
        for g, side in sorted(b.groups.items()):
            hg = em.groups.get(side.group_id)
            if hg is None or side.group_id in em.join_externally:
                continue
            own = hg.group.tree.leaf(hg.group.own_leaf)
            assert own is not None
            pub = cs.kem.derive_key_pair(hg.active.leaf_node_secret)[1]
            if pub != own.encryption_key:
                return (f"{name} cannot re-derive the virtual client's leaf key in {g} from "
                        "the operation it holds")
        for ref, held in em.key_packages.items():
            kp = held.bundle.key_package
            pub = cs.kem.derive_key_pair(held.op.leaf_node_secret)[1]
            if pub != kp.leaf_node.encryption_key:
                return f"{name} cannot re-derive the leaf key of KeyPackage {ref.hex()[:8]}"
    keys = {em.vc_signing_key for n, em in b.vc.emulators.items() if b.caught_up(n)}
    if len(keys) > 1:
        return "the caught-up emulators hold different long-term signing keys"
    return None


def op_keys_distinct(b: Bridge) -> str | None:
    owner: dict[tuple[str, bytes], str] = {}
    for where, leaf, init in _public_leaves(b):
        for what, key in (("encryption", leaf.encryption_key),
                          ("signature", leaf.signature_key), ("init", init)):
            if key is None:
                continue
            first = owner.setdefault((what, key), where)
            if first != where:
                return f"the virtual client's LeafNodes in {first} and {where} share their " \
                       f"{what} key"
    return None


def aead_unique(b: Bridge) -> str | None:
    seen: dict[tuple[object, bytes], bytes] = {}
    for _group, out, _ in [*b.messages, *b.attempts]:
        assert out.key_id is not None and out.nonce is not None
        first = seen.setdefault((out.key_id, out.nonce), out.message)
        if first != out.message:
            _g, epoch, _leaf, gen = out.key_id
            return (f"two PrivateMessages in epoch {epoch} generation {gen} use one key "
                    f"and the nonce {out.nonce.hex()}")
    infos: dict[tuple[bytes, bytes], bytes] = {}
    for where, node, _ in _public_leaves(b):
        comp = dinfo.find_in_leaf(node)
        if comp is None:
            continue
        first_ct = infos.setdefault((comp.epoch_id, node.encryption_key), comp.ciphertext)
        if first_ct != comp.ciphertext:
            return (f"two DerivationInfos (one in {where}) are sealed under the same key and "
                    "nonce (P6: both derive from the LeafNode's encryption key)")
    return None


def pprf_puncture(b: Bridge) -> str | None:
    for name, em in sorted(b.vc.emulators.items()):
        for n, ep in em.epochs.epochs.items():
            if ep.pprf is None:
                continue
            for leaf, op in ep.retained.items():
                if not ep.pprf.is_punctured(leaf):
                    return f"{name} retains an operation at PPRF leaf {leaf} of epoch {n} " \
                           "without having punctured it"
                if pprf_leaf(get_suite(SUITE), op.leaf_index, op.random) != leaf:
                    return f"{name} keeps an operation at the wrong PPRF leaf in epoch {n}"
    return None


def _removal_epoch(b: Bridge, name: str) -> int | None:
    for em in b.vc.emulators.values():
        if name.encode() in em.removals:
            return em.removals[name.encode()]
    return None


def removed_learns_nothing(b: Bridge) -> str | None:
    cs = get_suite(SUITE)
    # the virtual client's current long-term key: what the emulators that have processed
    # the whole emulation group hold (the others may still hold the one it replaced)
    active_keys = {em.vc_signing_key for n, em in b.vc.emulators.items()
                   if not b.ds.refetch(n, b.emulation_group_id,
                                       em.cursors.get(b.emulation_group_id, -1))}
    for name, r in sorted(b.vc.removed.items()):
        at = _removal_epoch(b, name)
        if at is None:
            continue
        leaves = [b.ops.get(b.ops_of_enc(leaf.encryption_key) or -1)
                  for side in b.groups.values() for _, leaf in vc_leaves(_tree(side))]
        if any(op is None or op.epoch < at for op in leaves):
            continue  # the procedure is not finished: some group still has an old leaf
        if r.vc_signing_key in active_keys:
            return f"{name}, removed at emulation epoch {at - b.offset}, holds the " \
                   "virtual client's long-term signing key"
        for ref in b.ds.outstanding_key_packages(VC):
            kp = next(e for e in b.ds.state.directory[VC] if e.ref == ref)
            body = MLSMessage.decode(kp.key_package).body
            assert isinstance(body, KeyPackage)
            if _can_open(r, body.leaf_node, cs):
                return (f"{name}, removed at emulation epoch {at - b.offset}, can derive "
                        "the keys of an outstanding KeyPackage")
        for side in b.groups.values():
            for _, leaf in vc_leaves(_tree(side)):
                if _can_open(r, leaf, cs):
                    return (f"{name}, removed at emulation epoch {at - b.offset}, can "
                            f"derive the virtual client's leaf in {side.name}")
    return None


def _can_open(r: Emulator, leaf: LeafNode, cs: object) -> bool:
    """Whether emulator `r`'s stored state re-derives this leaf: it holds the epoch its
    DerivationInfo names, with a PPRF that can still evaluate the leaf's input."""
    comp = dinfo.find_in_leaf(leaf)
    if comp is None:
        return False
    ep = next((e for e in r.epochs.epochs.values() if e.epoch_id == comp.epoch_id), None)
    if ep is None or ep.pprf is None or ep.encryption_key is None:
        return False
    info = dinfo.open_info(get_suite(SUITE), comp, ep.encryption_key, leaf.encryption_key)
    x = pprf_leaf(get_suite(SUITE), info.leaf_index, info.random)
    return not ep.pprf.is_punctured(x) or x in ep.retained


def _tree(side: GroupSide) -> list[tuple[int, LeafNode]]:
    tree = side.peer.ratchet_tree()
    return [(i // 2, n) for i, n in enumerate(tree) if i % 2 == 0 and isinstance(n, LeafNode)]


def attribution(b: Bridge) -> str | None:
    for a in b.attributions:
        if a.named != a.sender:
            return (f"{a.receiver} attributes a message of {a.sender} to leaf {a.leaf} of "
                    f"emulation epoch {a.epoch} ({a.named or 'a blank leaf'})")
    return None


def one_leaf(b: Bridge) -> str | None:
    for g, side in sorted(b.groups.items()):
        n = len(vc_leaves(_tree(side)))
        if n > 1:
            return f"{g} has {n} leaves of the virtual client"
    return None


def no_emulator_identity(b: Bridge) -> str | None:
    secrets: list[tuple[str, bytes]] = []
    for name, em in sorted({**b.vc.emulators, **b.vc.removed}.items()):
        secrets.append((f"{name}'s emulation-group signature key",
                        em.identity.signature_public_key))
    for o, op in sorted(b.ops.items()):
        secrets.append((f"the `random` of operation {o} (EpochInfoTBE)", op.random))
    blobs = list(b.public)
    for side in b.groups.values():
        blobs += [d.message for d in b.ds.log(side.group_id)]
    blobs += [d.message for d in b.ds.welcomes()]
    blobs += [out.message for _, out, _ in [*b.messages, *b.attempts]]  # refused ones too
    for what, s in secrets:
        if any(s in blob for blob in blobs):
            return f"{what} appears in bytes an outsider sees"
    return None


def ds_no_false_collision(b: Bridge) -> str | None:
    accepted = {out.key_id for _, out, ok in b.messages if ok}
    for group, out, ok in b.messages:
        if ok:
            continue
        verdict = next((v for _, o, v in b.vc.sent if o is out), None)
        if verdict is None or verdict.reason != "generation-id-collision":
            continue
        if out.key_id not in accepted:
            assert out.key_id is not None
            return (f"the DS refused a message of {group} epoch {out.key_id[1]} generation "
                    f"{out.key_id[3]} as a generation-ID collision; no message was "
                    "delivered there")
    return None


def delivered_decryptable(b: Bridge) -> str | None:
    seen: set[object] = set()
    for group, out, ok in b.messages:
        if not ok:
            continue
        if out.key_id in seen:
            assert out.key_id is not None
            return (f"two messages were delivered in {group} epoch {out.key_id[1]} "
                    f"generation {out.key_id[3]}: the second cannot be decrypted")
        seen.add(out.key_id)
    return None


def deletion(b: Bridge) -> str | None:
    for name, em in sorted(b.vc.emulators.items()):
        if not b.caught_up(name):
            continue
        refs = {hg.active.epoch_id for hg in em.groups.values()}
        refs |= {op.epoch_id for hg in em.groups.values() for op in hg.proposed.values()}
        refs |= {kp.op.epoch_id for kp in em.key_packages.values()}
        latest = max(em.epochs.epochs)
        kept = [n - b.offset for n, ep in em.epochs.epochs.items()
                if n != latest and ep.epoch_id not in refs]
        if kept:
            return f"{name} keeps the secrets of unreferenced emulation epochs {sorted(kept)}"
        live = {hg.active.leaf_node_secret for hg in em.groups.values()}
        live |= {op.leaf_node_secret for hg in em.groups.values()
                 for op in hg.proposed.values()}
        live |= {kp.op.leaf_node_secret for kp in em.key_packages.values()}
        for n, ep in em.epochs.epochs.items():
            for leaf, op in ep.retained.items():
                if _leaf_node_secret(em, ep, op.operation_secret) not in live:
                    return f"{name} keeps an operation secret (epoch {n - b.offset}, " \
                           f"PPRF leaf {leaf}) no longer in use"
    return None


def _leaf_node_secret(em: Emulator, ep: EmulationEpoch, operation_secret: bytes) -> bytes:
    """The leaf_node_secret (P8) an operation gives, as this emulator derives it (under
    the literal reading F1 every operation of the epoch gives the epoch's)."""
    cs = get_suite(SUITE)
    if em.vc.readings.literal_p4_subsecrets and ep.base_secret is not None:
        return literal_subsecrets(cs, ep).encryption_key_secret
    return OperationSecrets.of(cs, operation_secret).encryption_key_secret


IMPL_INVARIANTS: dict[str, Callable[[Bridge], str | None]] = {
    "INV-AGREE": agree,
    "INV-REDERIVE": rederive,
    "INV-OP-KEYS-DISTINCT": op_keys_distinct,
    "INV-AEAD-UNIQUE": aead_unique,
    "INV-PPRF-PUNCTURE": pprf_puncture,
    "INV-REMOVED": removed_learns_nothing,
    "INV-ATTRIBUTION": attribution,
    "INV-ONE-LEAF": one_leaf,
    "INV-NO-EMULATOR-ID": no_emulator_identity,
    "INV-DS-NO-FALSE-COLLISION": ds_no_false_collision,
    "INV-DELIVERED-DECRYPTABLE": delivered_decryptable,
    "INV-DELETION": deletion,
}


def impl_violations(b: Bridge, ids: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    out = []
    for inv in ids if ids is not None else tuple(IMPL_INVARIANTS):
        detail = IMPL_INVARIANTS[inv](b)
        if detail is not None:
            out.append((inv, detail))
    return out
