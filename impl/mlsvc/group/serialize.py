"""Saving and restoring a member's group state exactly (issue: "a member saved and
loaded in the middle of a session continues with nothing lost").

The format is this library's own, written in the TLS presentation language of
RFC 9420 §2.1 so it reuses the wire codecs and is exactly consumed on load:

    struct {
        GroupContext context;
        optional<Node> ratchet_tree<V>;            // RFC 9420 §12.4.3.3 encoding
        uint32 own_leaf;  opaque leaf_private_key<V>;
        NodeKey path_keys<V>;                      // { uint32 node; opaque key<V>; }
        Credential credential;  opaque signature_private_key<V>;  opaque signature_key<V>;
        opaque interim_transcript_hash<V>;  opaque confirmation_tag<V>;
        opaque epoch_keys[8]<V>;                   // the EpochKeys fields, in order
        LabeledSecret additional<V>;               // { opaque label<V>; opaque secret<V>; }
        SecretTreeState secret_tree;
        CachedProposal proposals<V>;               // { opaque ref<V>; Proposal; Sender; }
        ResumptionPSK resumption_psks<V>;
                              // { opaque group_id<V>; uint64 epoch; opaque psk<V>; }
        KeyPair pending_update_keys<V>;            // { opaque public<V>; opaque private<V>; }
        PendingIdentity pending_update_identities<V>;
                  // { opaque public<V>; Credential; opaque private<V>; opaque public<V>; }
    } SavedState;

    struct {
        uint16 format = 2;
        SavedState state;
        uint8 active;  optional<ReInit> reinit;
        optional<PendingCommit> pending;   // { opaque commit<V>; SavedState next; }
    } SavedGroup;

A group with a pending commit refuses to be saved (StateError) rather than losing it,
unless `save(group, with_pending=True)`: then the commit and its next epoch are saved.
The saved bytes hold private keys: store them as such.
"""

from __future__ import annotations

from mlsvc.codec import Reader, Writer
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, StateError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.group import Group
from mlsvc.group.proposals import ResolvedProposal
from mlsvc.group.state import EpochKeys, EpochState
from mlsvc.messages.credentials import Credential
from mlsvc.messages.framing import Sender
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.proposals import ReInit, read_proposal, write_proposal
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.secret_tree import HashRatchet, SecretTree, SecretTreeState
from mlsvc.tree.treekem import TreePrivateKeys
from mlsvc.types import LeafIndex, NodeIndex

FORMAT = 2


def _write_u32_opaque(w: Writer, item: tuple[int, bytes]) -> None:
    w.u32(item[0])
    w.opaque(item[1])


def _write_opaque_pair(w: Writer, item: tuple[bytes, bytes]) -> None:
    w.opaque(item[0])
    w.opaque(item[1])


def _write_resumption_psk(w: Writer, item: tuple[tuple[bytes, int], bytes]) -> None:
    (group_id, epoch), psk = item
    w.opaque(group_id)
    w.u64(epoch)
    w.opaque(psk)


def _read_u32_opaque(r: Reader) -> tuple[int, bytes]:
    return r.u32(), r.opaque()


def _read_opaque_pair(r: Reader) -> tuple[bytes, bytes]:
    return r.opaque(), r.opaque()


def _read_resumption_psk(r: Reader) -> tuple[tuple[bytes, int], bytes]:
    group_id = r.opaque()
    epoch = r.u64()
    return (group_id, epoch), r.opaque()


def _write_ratchets(w: Writer, table: dict[int, HashRatchet]) -> None:
    def one(w: Writer, item: tuple[int, HashRatchet]) -> None:
        leaf, r = item
        w.u32(leaf)
        w.u32(r.generation)
        w.opaque(r.secret)
        w.vector(sorted(r.retained.items()), _write_retained)

    w.vector(sorted(table.items()), one)


def _write_retained(w: Writer, item: tuple[int, tuple[bytes, bytes]]) -> None:
    generation, (key, nonce) = item
    w.u32(generation)
    w.opaque(key)
    w.opaque(nonce)


def _read_retained(r: Reader) -> tuple[int, tuple[bytes, bytes]]:
    generation = r.u32()
    return generation, (r.opaque(), r.opaque())


def _read_ratchets(r: Reader) -> dict[int, HashRatchet]:
    def one(r: Reader) -> tuple[int, HashRatchet]:
        leaf, generation, secret = r.u32(), r.u32(), r.opaque()
        retained = {g: kn for g, kn in r.vector(_read_retained)}
        return leaf, HashRatchet(generation, secret, retained)

    return dict(r.vector(one))


def save(group: Group, *, with_pending: bool = False) -> bytes:
    """The group's whole state as bytes (see the module docstring). A pending commit is
    refused (StateError) unless `with_pending`: then the commit and the epoch it leads to
    are saved too, so a client that crashed while the DS judged it can still merge it."""
    pending = group.pending_commit
    if pending is not None and not with_pending:
        raise StateError("merge or clear the pending commit before saving")
    w = Writer()
    w.u16(FORMAT)
    _write_state(w, group.state)
    w.u8(1 if group.active else 0)
    w.optional(group.reinit)
    w.u8(0 if pending is None else 1)
    if pending is not None:
        message, state = pending
        w.opaque(message)
        _write_state(w, state)
    return w.bytes()


def _write_state(w: Writer, s: EpochState) -> None:
    s.context.write(w)
    RatchetTreeExtension.from_nodes(s.tree.to_nodes()).write(w)
    w.u32(s.keys.leaf_index)
    w.opaque(s.keys.leaf_private_key)
    w.vector([(int(x), k) for x, k in sorted(s.keys.path_keys.items())], _write_u32_opaque)
    s.identity.credential.write(w)
    w.opaque(s.identity.signature_private_key)
    w.opaque(s.identity.signature_public_key)
    w.opaque(s.interim_transcript_hash)
    w.opaque(s.confirmation_tag)
    k = s.secrets
    for value in (k.sender_data_secret, k.exporter_secret, k.external_secret,
                  k.confirmation_key, k.membership_key, k.resumption_psk,
                  k.epoch_authenticator, k.init_secret):
        w.opaque(value)
    w.vector(sorted(k.additional.items()), _write_opaque_pair)
    st = s.secret_tree.state
    w.u32(st.leaf_count)
    w.u32(st.max_forward_distance)
    w.u32(st.out_of_order_tolerance)
    w.vector(sorted(st.nodes.items()), _write_u32_opaque)
    _write_ratchets(w, st.handshake)
    _write_ratchets(w, st.application)

    def proposal(w: Writer, item: tuple[bytes, ResolvedProposal]) -> None:
        ref, rp = item
        w.opaque(ref)
        write_proposal(w, rp.proposal)
        rp.sender.write(w)

    w.vector(list(s.proposals.items()), proposal)
    w.vector(list(s.resumption_psks.items()), _write_resumption_psk)
    w.vector(sorted(s.pending_update_keys.items()), _write_opaque_pair)

    def pending_identity(w: Writer, item: tuple[bytes, Identity]) -> None:
        key, ident = item
        w.opaque(key)
        ident.credential.write(w)
        w.opaque(ident.signature_private_key)
        w.opaque(ident.signature_public_key)

    w.vector(sorted(s.pending_update_identities.items(), key=lambda kv: kv[0]),
             pending_identity)


def load(data: bytes, config: GroupConfig | None = None) -> Group:
    """A Group from `save` output; DecodeError on any malformation. A saved pending
    commit is pending again (its event carries the epoch only)."""
    config = config or GroupConfig()
    r = Reader(bytes(data))
    if r.u16() != FORMAT:
        raise DecodeError("unknown saved-group format")
    state = _read_state(r)
    active = r.bool()
    reinit = r.optional(ReInit.read)
    pending: tuple[bytes, EpochState] | None = None
    if r.bool():
        message = r.opaque()
        pending = (message, _read_state(r))
    r.finish()
    group = Group(state, config)
    group.active = active
    group.reinit = reinit
    if pending is not None:
        group.restore_pending_commit(*pending)
    return group


def _read_state(r: Reader) -> EpochState:
    context = GroupContext.read(r)
    cs = get_suite(context.cipher_suite)
    tree = RatchetTree.from_nodes(cs, RatchetTreeExtension.read(r).nodes)
    own = LeafIndex(r.u32())
    leaf_priv = r.opaque()
    path_keys = {NodeIndex(x): k for x, k in r.vector(_read_u32_opaque)}
    identity = Identity(Credential.read(r), r.opaque(), r.opaque())
    interim, tag = r.opaque(), r.opaque()
    v = [r.opaque() for _ in range(8)]
    additional = dict(r.vector(_read_opaque_pair))
    secrets = EpochKeys(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], additional)
    leaf_count, max_forward, tolerance = r.u32(), r.u32(), r.u32()
    st = SecretTreeState(leaf_count, max_forward, tolerance, dict(r.vector(_read_u32_opaque)))
    st.handshake = _read_ratchets(r)
    st.application = _read_ratchets(r)

    def proposal(r: Reader) -> tuple[bytes, ResolvedProposal]:
        ref = r.opaque()
        p = read_proposal(r)
        return ref, ResolvedProposal(p, Sender.read(r), ref)

    proposals = dict(r.vector(proposal))
    psks = dict(r.vector(_read_resumption_psk))
    pending = dict(r.vector(_read_opaque_pair))

    def pending_identity(r: Reader) -> tuple[bytes, Identity]:
        return r.opaque(), Identity(Credential.read(r), r.opaque(), r.opaque())

    pending_identities = dict(r.vector(pending_identity))
    if own >= tree.leaf_count or tree.leaf(own) is None:
        raise DecodeError("saved own leaf is not in the saved tree")
    return EpochState(cs, context, tree, TreePrivateKeys(own, leaf_priv, path_keys), identity,
                      interim, tag, secrets, SecretTree.from_state(cs, st), proposals, psks,
                      pending, pending_identities)
