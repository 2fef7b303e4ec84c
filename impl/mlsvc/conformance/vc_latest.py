"""Test vectors for the virtual clients of the authors' later text (profile "latest",
shared/spec/draft-ietf-mls-virtual-clients-latest.md; mlsvc.vc.profiles, docs/PROFILES.md):
`generate` writes them (`mlsvc vectors generate vc --profile latest --out FILE`), `run`
checks a file of them (`mlsvc vectors check vc FILE`, which reads each suite's recorded
`profile`; and `mlsvc vectors --dir vectors/generated`, file stem `vc-latest`).
docs/VC_VECTORS.md ("The latest profile") documents every field.

The same two halves as the draft-00 vectors (mlsvc.conformance.vc), sharing nothing but
the file format:

- The **generator** drives the library under the latest profile (`mlsvc.vc.*` with
  `Profile.LATEST`: `derive_epoch_secrets`, `OperationSecretTree`, `KeyPackageBatch`,
  `DerivationInfoTBE`, `LatestKeyPackageUpload`, the `Emulator` and `VirtualClient`)
  from a fixed seed (SHAKE-256 of `_SEED || suite || label`, `SeededRandom` for the
  scenario), so generating twice gives the same bytes. `generate(faults=...)` injects a
  named generator bug (`FAULTS`, tests only).
- The **checker** recomputes every output from its inputs with the later text's
  formulas restated here (labels, structs, the operation secret tree walked from
  epoch_base_secret over the RFC 9420 §9 tree shape, the operation ratchets, the
  KeyPackage seeds), the RFC 9420 labeled operations (`mlsvc.crypto.labels`), the
  suites' primitives, and the draft-00 checker's own TLS reader/writer and textbook FF1
  (mlsvc.conformance.vc, which imports nothing from `mlsvc.vc` or `mlsvc.ext`; neither
  does this half). The scenario's wire messages are parsed with `mlsvc.messages` and
  authenticated byte for byte.

What the later text changes, and so what these vectors carry instead of draft-00's
fields: five epoch secrets (`reuse_guard_secret`, latest §5.2); the Virtual Client
Operation Secret Tree in place of the PPRF (`operation_tree`: leaf_index,
operation_type, generation, operation_context; no `random`, no PPRF leaf or state); the
per-KeyPackage seeds of a key_package batch and the group-creation epoch secret
(`key_package_batch`, §5.2, §5.4, §5.5.1); no "External Init" sub-secret
(`operation_keys`); the DerivationInfoTBE selected by leaf_node_source with
generation, key_package_index and the optional external init secret
(`derivation_info`, §5.3); the reuse guard keyed by reuse_guard_secret of the epoch
(`reuse_guard`, §5.6.2); the generation ID's PrivateMessageContext with group_id and
epoch (`generation_id`, §5.6.3); the KeyPackageUpload with leaf_index, generation and
key_package_index and no ExternalJoin action (`encodings`, §5.5); and a scenario with
an external join that carries its init secret in the DerivationInfo (§5.3, §5.5.2).

Not in these vectors: the emulator lifecycle (NewEmulatorClientState, whose later-text
form with Variant A/B, latest §6.1.2, the library is still building, and the ResyncMessage,
which the later text replaces by application-provided credentials, §6.3), and group
creation by the virtual client beyond its epoch secret (§5.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from mlsvc.conformance import vc as d00
from mlsvc.conformance.base import Case, CaseResult, FileResult, Mismatch
from mlsvc.crypto.labels import derive_secret, expand_with_label, verify_with_label
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import MLSError
from mlsvc.messages.framing import PrivateMessage

PROFILE = "latest"
FILE_STEM = "vc-latest"
SUITES = d00.SUITES
_SEED = b"mlsvc virtual clients latest test vectors v1"

FAULTS: dict[str, str] = {
    "l-rg-leaf-node-secret": "the reuse guard's PRP key from the operation's "
                             "encryption_key_secret (draft-00 P8), not reuse_guard_secret",
    "l-gid-draft-00-context": "the generation ID over draft-00's 5-byte context (no "
                              "group_id, no epoch)",
    "l-kp-keys-from-batch": "a KeyPackage's sub-secrets from the batch operation_secret, "
                            "not its key_package_seed_secret",
    "l-context-without-epoch-id": "OperationContext without its epoch_id",
}
"""Generator bugs `generate(faults=...)` can inject (for the checker's own tests)."""

SECTIONS = ("epoch_secrets", "operation_tree", "key_package_batch", "operation_keys",
            "derivation_info", "reuse_guard", "generation_id", "encodings", "scenario")
"""Every suite's object: `cipher_suite`, `profile` ("latest") and these sections."""


# =========================================================================================
# The generator (drives the library under the latest profile)
# =========================================================================================


def _bytes(label: str, suite: int, n: int) -> bytes:
    """Deterministic generator input: SHAKE-256(seed || suite || label)."""
    return hashlib.shake_256(_SEED + bytes([suite]) + label.encode()).digest(n)


def _gen_epoch(cs: CipherSuite, epoch_secret: bytes) -> dict[str, Any]:
    from mlsvc.ext.safe_export import SafeExporter, application_export_secret
    from mlsvc.vc.codepoints import LATEST_VC_CODEPOINTS
    from mlsvc.vc.epoch import derive_epoch_secrets
    from mlsvc.vc.profiles import Profile

    root = application_export_secret(cs, epoch_secret)
    cid = LATEST_VC_CODEPOINTS.derivation_info
    ees = SafeExporter(cs, root).export(cid)
    s = derive_epoch_secrets(cs, ees, Profile.LATEST)
    assert s.reuse_guard_secret is not None
    return {
        "epoch_secret": epoch_secret.hex(),
        "application_export_secret": root.hex(),
        "component_id": cid,
        "emulator_epoch_secret": ees.hex(),
        "epoch_id": s.epoch_id.hex(),
        "epoch_base_secret": s.epoch_base_secret.hex(),
        "epoch_encryption_key": s.epoch_encryption_key.hex(),
        "generation_id_secret": s.generation_id_secret.hex(),
        "reuse_guard_secret": s.reuse_guard_secret.hex(),
    }


_TREE_LEAVES = 4
# (leaf_index, operation_type, generation or None for "the next one", operation_context
# label) in the order one emulator (leaf 0) derives them: its own leaf_node operations
# (next_operation), then siblings' operations as it re-derives them (operation_at):
# leaf 1's key_package batch, leaf 2's application generation 3 (skipping 0-2, retained,
# R1) and then its generation 1 out of order, and a leaf_node operation of leaf 3.
_OPERATIONS: tuple[tuple[int, int, int | None, str], ...] = (
    (0, 2, None, "group A"), (0, 2, None, "group B"), (1, 1, 0, ""),
    (2, 3, 3, "app context 3"), (2, 3, 1, "app context 1"), (3, 2, 0, "group C"),
)


def _context_bytes(label: str, suite: int) -> bytes:
    return b"" if not label else _bytes(f"operation context {label}", suite, 16)


def _gen_operation_tree(cs: CipherSuite, epoch: dict[str, Any], faults: frozenset[str]
                        ) -> dict[str, Any]:
    from mlsvc.tree.math import root
    from mlsvc.tree.secret_tree import pop_leaf_secret
    from mlsvc.types import LeafCount, LeafIndex
    from mlsvc.vc.codepoints import OperationType
    from mlsvc.vc.operation_tree import (
        OperationSecretTree,
        bind_operation_secret,
        encode_operation_context,
        initial_ratchet_secret,
        next_ratchet_secret,
        operation_generation_secret,
    )

    epoch_id = bytes.fromhex(epoch["epoch_id"])
    base = bytes.fromhex(epoch["epoch_base_secret"])
    tree = OperationSecretTree(cs, epoch_id, base, _TREE_LEAVES)
    out: list[dict[str, Any]] = []
    for leaf, op_type, generation, label in _OPERATIONS:
        op = OperationType(op_type)
        context = _context_bytes(label, cs.id)
        if generation is None:
            got = tree.next_operation(leaf, op, context)
        else:
            got = tree.operation_at(leaf, op, generation, context)
        # the intermediate values, from the library's formulas on a fresh walk
        nodes = {int(root(LeafCount(_TREE_LEAVES))): base}
        leaf_secret = pop_leaf_secret(cs, nodes, _TREE_LEAVES, LeafIndex(leaf))
        initial = initial_ratchet_secret(cs, leaf_secret, op)
        ratchet = initial
        for _ in range(got.generation):
            ratchet = next_ratchet_secret(cs, ratchet)
        gen_secret = operation_generation_secret(cs, ratchet)
        encoded = encode_operation_context(epoch_id, leaf, got.generation, op, context)
        if "l-context-without-epoch-id" in faults:
            encoded = encoded[len(epoch_id) + 1:]
        secret = bind_operation_secret(cs, gen_secret, encoded)
        if not faults:
            assert secret == got.operation_secret
        out.append({
            "leaf_index": leaf, "operation_type": op_type, "generation": got.generation,
            "operation_context": context.hex(), "leaf_secret": leaf_secret.hex(),
            "initial_ratchet_secret": initial.hex(),
            "operation_ratchet_secret": ratchet.hex(),
            "operation_generation_secret": gen_secret.hex(),
            "next_operation_ratchet_secret": next_ratchet_secret(cs, ratchet).hex(),
            "operation_context_struct": encoded.hex(), "operation_secret": secret.hex(),
        })
    return {"epoch_id": epoch_id.hex(), "epoch_base_secret": base.hex(),
            "n_leaves": _TREE_LEAVES, "operations": out}


def _key_pairs(cs: CipherSuite, sig: bytes, enc: bytes, init: bytes) -> dict[str, str]:
    s, e, i = (cs.signature.derive_key_pair(sig), cs.kem.derive_key_pair(enc),
               cs.kem.derive_key_pair(init))
    return {"signature_private_key": s[0].hex(), "signature_public_key": s[1].hex(),
            "encryption_private_key": e[0].hex(), "encryption_public_key": e[1].hex(),
            "init_private_key": i[0].hex(), "init_public_key": i[1].hex()}


_KEY_PACKAGE_INDICES = (0, 1, 2)


def _gen_key_package_batch(cs: CipherSuite, operation_secret: bytes,
                           faults: frozenset[str]) -> dict[str, Any]:
    from mlsvc.codec import Writer
    from mlsvc.vc.operation_tree import (
        KeyPackageSubSecrets,
        group_creation_epoch_secret,
        key_package_seed_secret,
    )

    kps: list[dict[str, Any]] = []
    for i in _KEY_PACKAGE_INDICES:
        seed = key_package_seed_secret(cs, operation_secret, i)
        w = Writer()
        w.u32(i)
        source = operation_secret if "l-kp-keys-from-batch" in faults else seed
        s = KeyPackageSubSecrets.of(cs, source)
        kps.append({"key_package_index": i, "key_package_seed_context": w.bytes().hex(),
                    "key_package_seed_secret": seed.hex(),
                    "signature_key_secret": s.signature_key_secret.hex(),
                    "encryption_key_secret": s.encryption_key_secret.hex(),
                    "init_key_secret": s.init_key_secret.hex(),
                    **_key_pairs(cs, s.signature_key_secret, s.encryption_key_secret,
                                 s.init_key_secret)})
    seed0 = key_package_seed_secret(cs, operation_secret, 0)
    return {"operation_secret": operation_secret.hex(), "key_packages": kps,
            "group_creation_epoch_secret": group_creation_epoch_secret(cs, seed0).hex()}


def _gen_operation_keys(cs: CipherSuite, operation_secret: bytes) -> dict[str, Any]:
    from mlsvc.vc.operation_tree import OperationSubSecrets

    s = OperationSubSecrets.of(cs, operation_secret)
    return {"operation_secret": operation_secret.hex(),
            "signature_key_secret": s.signature_key_secret.hex(),
            "encryption_key_secret": s.encryption_key_secret.hex(),
            "init_key_secret": s.init_key_secret.hex(),
            "path_generation_secret": s.path_generation_secret.hex(),
            **_key_pairs(cs, s.signature_key_secret, s.encryption_key_secret,
                         s.init_key_secret)}


def _gen_derivation_info(cs: CipherSuite, epoch: dict[str, Any], encryption_key: bytes,
                         source: int, leaf_index: int, generation: int,
                         key_package_index: int | None = None,
                         external_init_secret: bytes | None = None) -> dict[str, Any]:
    from mlsvc.codec import Writer
    from mlsvc.messages.codepoints import LeafNodeSource
    from mlsvc.vc import derivation as dinfo

    epoch_id = bytes.fromhex(epoch["epoch_id"])
    eek = bytes.fromhex(epoch["epoch_encryption_key"])
    tbe = dinfo.DerivationInfoTBE(leaf_index, generation, LeafNodeSource(source),
                                  key_package_index=key_package_index,
                                  external_init_secret=external_init_secret)
    w = Writer()
    w.opaque(encryption_key)
    context = w.bytes()
    comp = dinfo.seal_tbe(cs, epoch_id, eek, encryption_key, tbe)
    entry: dict[str, Any] = {
        "epoch_encryption_key": eek.hex(), "epoch_id": epoch_id.hex(),
        "encryption_key": encryption_key.hex(), "leaf_node_source": source,
        "leaf_index": leaf_index, "generation": generation}
    if source == LeafNodeSource.KEY_PACKAGE:
        entry["key_package_index"] = key_package_index
    if source == LeafNodeSource.COMMIT:
        entry["external_init_secret"] = (None if external_init_secret is None
                                         else external_init_secret.hex())
    entry.update({
        "key_context": context.hex(),
        "key": expand_with_label(cs, eek, b"key", context, cs.aead.nk).hex(),
        "nonce": expand_with_label(cs, eek, b"nonce", context, cs.aead.nn).hex(),
        "derivation_info_tbe": tbe.encode().hex(), "ciphertext": comp.ciphertext.hex(),
        "derivation_info": comp.encode().hex(),
        "leaf_extension": dinfo.leaf_extension(comp).encode().hex()})
    return entry


# (leaf_index, n_leaves) of the reuse-guard entries (the draft-00 vectors' too)
_REUSE_GUARDS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 4), (5, 8), (3, 4))


def _gen_reuse_guards(cs: CipherSuite, reuse_guard_secret: bytes, leaf_node_secret: bytes,
                      faults: frozenset[str]) -> list[dict[str, Any]]:
    from mlsvc.vc.ff1 import prp_decrypt, prp_encrypt
    from mlsvc.vc.profiles import Profile
    from mlsvc.vc.reuse_guard import (
        class_member,
        derive_prp_key,
        leaf_count_exponent,
        recover_leaf_index,
        reuse_guard_key_secret,
    )

    secret = reuse_guard_key_secret(Profile.LATEST, leaf_node_secret=leaf_node_secret,
                                    reuse_guard_secret=reuse_guard_secret)
    if "l-rg-leaf-node-secret" in faults:
        secret = leaf_node_secret
    out: list[dict[str, Any]] = []
    for i, (leaf_index, n_leaves) in enumerate(_REUSE_GUARDS):
        nonce = _bytes(f"key_schedule_nonce {i}", cs.id, cs.aead.nn)
        draw = int.from_bytes(_bytes(f"x draw {i}", cs.id, 4), "big")
        x = class_member(draw, leaf_index, leaf_count_exponent(n_leaves))
        prp_key = derive_prp_key(cs, secret, nonce, profile=Profile.LATEST)
        rg = prp_encrypt(prp_key, x).to_bytes(4, "big")
        out.append({
            "reuse_guard_secret": reuse_guard_secret.hex(), "key_schedule_nonce": nonce.hex(),
            "leaf_index": leaf_index, "n_leaves": n_leaves, "x": x,
            "prp_key": prp_key.hex(), "reuse_guard": rg.hex(),
            "recovered_x": prp_decrypt(prp_key, int.from_bytes(rg, "big")),
            "recovered_leaf_index": int(recover_leaf_index(cs, secret, nonce, rg, n_leaves,
                                                           profile=Profile.LATEST)),
        })
    return out


# (group label, epoch) x generations x ratchet types of the generation IDs
_GID_GROUPS: tuple[tuple[str, int], ...] = (("group A", 0), ("group A", 7),
                                            ("group B", 1 << 40))
_GENERATIONS: tuple[int, ...] = (0, 255, 0xFFFFFFFF)


def _gen_generation_ids(cs: CipherSuite, secret: bytes, faults: frozenset[str]
                        ) -> dict[str, Any]:
    from mlsvc.vc.codepoints import RatchetType
    from mlsvc.vc.generation_id import generation_id_for_context, private_message_context
    from mlsvc.vc.profiles import Profile

    ids: list[dict[str, Any]] = []
    for label, epoch in _GID_GROUPS:
        group_id = _bytes(f"generation id {label}", cs.id, 16)
        for rt in (RatchetType.APPLICATION, RatchetType.HANDSHAKE):
            for g in _GENERATIONS:
                if "l-gid-draft-00-context" in faults:
                    ctx = private_message_context(g, rt)
                else:
                    ctx = private_message_context(g, rt, profile=Profile.LATEST,
                                                  group_id=group_id, epoch=epoch)
                ids.append({"group_id": group_id.hex(), "epoch": epoch, "generation": g,
                            "ratchet_type": int(rt), "private_message_context": ctx.hex(),
                            "generation_id": generation_id_for_context(cs, secret,
                                                                       ctx).hex()})
    return {"generation_id_secret": secret.hex(), "ids": ids}


def _gen_encodings(cs: CipherSuite, epoch_id: bytes) -> dict[str, Any]:
    from mlsvc.ext.safe_aad import encode_items
    from mlsvc.vc.actions import LatestKeyPackageInfo, LatestKeyPackageUpload
    from mlsvc.vc.actions import VirtualClientAction as Action
    from mlsvc.vc.codepoints import LATEST_VC_CODEPOINTS

    cid = LATEST_VC_CODEPOINTS.virtual_client_action
    infos = tuple(LatestKeyPackageInfo(_bytes(f"kp ref {i}", cs.id, cs.nh), i)
                  for i in range(2))
    kpu = LatestKeyPackageUpload(epoch_id, 2, 5, infos)
    action = Action(kpu).encode()
    assert Action.decode_latest(action) == Action(kpu)
    return {
        "component_id": cid,
        "key_package_upload": {
            "epoch_id": epoch_id.hex(), "leaf_index": kpu.leaf_index,
            "generation": kpu.generation,
            "key_package_info": [{"key_package_ref": i.key_package_ref.hex(),
                                  "key_package_index": i.key_package_index} for i in infos],
            "encoded": kpu.encode().hex(), "action": action.hex(),
            "safe_aad": encode_items({cid: action}).hex(),
        },
    }


# --- the scenario ----------------------------------------------------------------------------

_EMULATORS = ("phone", "laptop", "tablet")
_VC_ID = "alice"
_MEMBER, _OTHER = "bob", "carol"
_APPLICATION_DATA = b"hello from the tablet"
_EXTERNAL_DATA = b"hello from the phone, joined externally"


def _published_epoch(em: Any, application_export: bytes) -> dict[str, Any]:
    """What the scenario publishes of an emulation epoch the emulator just opened (its
    operation secret tree not yet used, so the root is epoch_base_secret)."""
    from mlsvc.tree.math import root
    from mlsvc.types import LeafCount

    ep = em.epochs.latest
    st = ep.tree.state
    assert not st.ratchets and set(st.nodes) == {int(root(LeafCount(st.leaf_count)))}
    return {
        "epoch": ep.epoch, "application_export_secret": application_export.hex(),
        "epoch_id": ep.epoch_id.hex(),
        "epoch_base_secret": st.nodes[int(root(LeafCount(st.leaf_count)))].hex(),
        "epoch_encryption_key": ep.encryption_key.hex(),
        "generation_id_secret": ep.generation_id_secret.hex(),
        "reuse_guard_secret": ep.reuse_guard_secret.hex(),
        "n_leaves": ep.leaf_count,
        "roster": [{"leaf_index": i, "emulator": ep.roster[i].decode()}
                   for i in sorted(ep.roster)],
    }


def _application(bob: Any, cs: CipherSuite, ds: Any, member: str, vc: Any, sender: str,
                 gid: bytes, data: bytes) -> dict[str, Any]:
    """`sender` sends `data` in `gid`; the member reads it (its epoch values recorded)."""
    from mlsvc.group.events import ApplicationMessage
    from mlsvc.tree.secret_tree import RatchetType, SecretTree

    ems = vc.emulators
    sender_data_secret = bob.state.secrets.sender_data_secret
    out = ems[sender].send_private_message(gid, data)
    assert vc.submit(sender, out).accepted and out.generation_id is not None
    assert out.generation is not None
    vc_leaf = ems[sender].groups[gid].group.own_leaf
    content_key = SecretTree.from_state(cs, bob.state.secret_tree.state.copy()).peek_key(
        vc_leaf, RatchetType.APPLICATION, out.generation)[0]
    group_context = bob.context.encode()
    events = [bob.process(d.message) for d in ds.receive(member)]
    app = [e for e in events if isinstance(e, ApplicationMessage)]
    assert len(app) == 1 and app[0].data == data
    vc.sync()
    em = ems[sender]
    leaf = int(em.epochs.by_id(em.groups[gid].active.epoch_id).own_leaf)
    return {"kind": "application", "sender": sender, "group_id": gid.hex(),
            "message": out.message.hex(), "group_context": group_context.hex(),
            "sender_data_secret": sender_data_secret.hex(),
            "key_schedule_nonce": app[0].key_schedule_nonce.hex(),
            "content_key": content_key.hex(), "application_data": data.hex(),
            "generation": app[0].generation, "reuse_guard": app[0].reuse_guard.hex(),
            "emulator_leaf_index": leaf, "generation_id": out.generation_id.hex()}


def _gen_scenario(suite: int) -> dict[str, Any]:
    """A virtual client of three emulators (latest profile) joins bob's group by a
    KeyPackage, commits and sends; then joins carol's group by external commit (no
    ExternalJoin action: the init secret in the DerivationInfo) and sends there; every
    wire message through the DS, in order."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.ds import DeliveryKind, DeliveryService
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.group import Group
    from mlsvc.messages.key_package import KeyPackage
    from mlsvc.messages.mls_message import MLSMessage
    from mlsvc.messages.proposals import Add
    from mlsvc.vc.emulator import OutgoingKind, recorded_profile
    from mlsvc.vc.profiles import Profile
    from mlsvc.virtual_client import VirtualClient

    cs = get_suite(suite)
    seed = _SEED + b"/scenario/" + str(suite).encode()
    messages: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    ds = DeliveryService()
    vc = VirtualClient.create(ds, _VC_ID, list(_EMULATORS), suite=suite, seed=seed,
                              profile=Profile.LATEST)
    ems = vc.emulators
    egid = ems[_EMULATORS[0]].emu.group_id
    assert all(recorded_profile(em.emu.context.extensions) is Profile.LATEST
               for em in ems.values())

    def emulation(name: str, make: Callable[[Any], Any]) -> Any:
        vc.sync([name])
        em = ems[name]
        auth = d00._auth(em.emu)
        out = make(em)
        export = d00._pending_export(em)
        assert vc.submit(name, out).accepted
        epochs.append(_published_epoch(em, export))
        messages.append({"kind": "emulation_commit", "sender": name, "group_id": egid.hex(),
                         "message": out.message.hex(), **auth, "opens_epoch": em.emu.epoch,
                         "action": None if out.action is None else out.action.encode().hex()})
        return out

    def member(name: str, gid: bytes) -> Group:
        rng = SeededRandom(seed + b"/" + name.encode())
        g = Group.create(cs, Identity.basic(name.encode(), cs.signature.generate_key_pair(rng)),
                         GroupConfig(rng=rng, supported_extensions=(6,)), group_id=gid)
        ds.register_client(name)
        ds.create_group(gid, 0, [name])
        return g

    def pump(name: str, g: Group) -> None:
        for d in ds.receive(name):
            if d.kind is not DeliveryKind.WELCOME:
                g.process(d.message)

    # 1. laptop's own emulation Commit (a published epoch)
    emulation("laptop", lambda em: em.emulation_commit())
    # 2. phone announces a KeyPackage batch of one (KeyPackageUpload, latest §5.5.1)
    emulation("phone", lambda em: em.create_key_packages(1))
    kp_message = ds.fetch_key_package(_VC_ID)
    kp = MLSMessage.decode(kp_message).body
    assert isinstance(kp, KeyPackage)
    messages.append({"kind": "key_package", "sender": "phone", "message": kp_message.hex()})
    # 3. bob creates the group, adds the virtual client and welcomes it
    gid = _bytes("higher-level group id", suite, 16)
    bob = member(_MEMBER, gid)
    auth = d00._auth(bob)
    commit = bob.commit([Add(kp)])
    assert ds.submit(_MEMBER, commit.commit).accepted and commit.welcome is not None
    bob.merge_pending_commit()
    ds.send_welcome(_MEMBER, gid, commit.welcome)
    ds.publish_group_info(gid, bob.group_info())
    messages.append({"kind": "member_commit", "sender": _MEMBER, "group_id": gid.hex(),
                     "message": commit.commit.hex(), **auth})
    messages.append({"kind": "welcome", "sender": _MEMBER, "group_id": gid.hex(),
                     "message": commit.welcome.hex()})
    vc.sync()
    # 4. tablet commits with a path (a leaf_node operation, operation_context = gid)
    vc.sync(["tablet"])
    auth = d00._auth(ems["tablet"].groups[gid].group)
    out = ems["tablet"].vc_commit(gid)
    assert vc.submit("tablet", out).accepted
    messages.append({"kind": "vc_commit", "sender": "tablet", "group_id": gid.hex(),
                     "message": out.message.hex(), **auth})
    pump(_MEMBER, bob)
    vc.sync()
    # 5. tablet sends an application message; bob reads it
    messages.append(_application(bob, cs, ds, _MEMBER, vc, "tablet", gid, _APPLICATION_DATA))
    # 6. carol's group; phone joins it by external commit (latest §5.5.2)
    gid2 = _bytes("external group id", suite, 16)
    carol = member(_OTHER, gid2)
    group_info = carol.group_info()
    ds.publish_group_info(gid2, group_info)
    external_secret = carol.state.secrets.external_secret
    context = carol.context.encode()
    sent = len(vc.sent)
    assert vc.external_join("phone", gid2).accepted
    vc.sync()
    joins = [o for n, o, v in vc.sent[sent:] if o.kind is OutgoingKind.EXTERNAL_COMMIT
             and v.accepted]
    assert len(joins) == 1 and joins[0].group_info == group_info
    pump(_OTHER, carol)
    vc_leaf = d00._vc_leaf(carol, _VC_ID.encode())
    messages.append({"kind": "external_commit", "sender": "phone", "group_id": gid2.hex(),
                     "message": joins[0].message.hex(), "group_info": group_info.hex(),
                     "group_context": context.hex(),
                     "external_secret": external_secret.hex(), "vc_leaf_index": vc_leaf})
    # 7. phone sends in carol's group; carol reads it
    messages.append(_application(carol, cs, ds, _OTHER, vc, "phone", gid2, _EXTERNAL_DATA))
    return {"seed": seed.hex(), "emulators": list(_EMULATORS), "virtual_client": _VC_ID,
            "members": [_MEMBER, _OTHER], "emulation_group_id": egid.hex(),
            "group_ids": [gid.hex(), gid2.hex()], "emulation_epochs": epochs,
            "messages": messages}


def _case(suite: int, faults: frozenset[str]) -> Case:
    cs = get_suite(suite)
    epochs = [_gen_epoch(cs, _bytes(f"emulation epoch_secret {i}", suite, cs.nh))
              for i in range(2)]
    tree = _gen_operation_tree(cs, epochs[0], faults)
    ops = tree["operations"]
    kp_op = next(o for o in ops if o["operation_type"] == 1)
    leaf_ops = [o for o in ops if o["operation_type"] == 2][:2]
    batch = _gen_key_package_batch(cs, bytes.fromhex(kp_op["operation_secret"]), faults)
    keys = [_gen_operation_keys(cs, bytes.fromhex(o["operation_secret"])) for o in leaf_ops]
    kp0 = batch["key_packages"][1]
    e0 = epochs[0]
    infos = [
        _gen_derivation_info(cs, e0, bytes.fromhex(kp0["encryption_public_key"]), 1,
                             kp_op["leaf_index"], kp_op["generation"],
                             key_package_index=kp0["key_package_index"]),
        _gen_derivation_info(cs, e0, bytes.fromhex(keys[0]["encryption_public_key"]), 2,
                             leaf_ops[0]["leaf_index"], leaf_ops[0]["generation"]),
        _gen_derivation_info(cs, e0, bytes.fromhex(keys[1]["encryption_public_key"]), 3,
                             leaf_ops[1]["leaf_index"], leaf_ops[1]["generation"]),
        _gen_derivation_info(cs, e0, bytes.fromhex(keys[1]["encryption_public_key"]), 3,
                             leaf_ops[1]["leaf_index"], leaf_ops[1]["generation"],
                             external_init_secret=_bytes("external init secret", suite,
                                                         cs.nh)),
    ]
    return {
        "cipher_suite": suite,
        "profile": PROFILE,
        "epoch_secrets": epochs,
        "operation_tree": tree,
        "key_package_batch": batch,
        "operation_keys": keys,
        "derivation_info": infos,
        "reuse_guard": _gen_reuse_guards(cs, bytes.fromhex(e0["reuse_guard_secret"]),
                                         bytes.fromhex(keys[0]["encryption_key_secret"]),
                                         faults),
        "generation_id": _gen_generation_ids(cs, bytes.fromhex(e0["generation_id_secret"]),
                                             faults),
        "encodings": _gen_encodings(cs, bytes.fromhex(e0["epoch_id"])),
        "scenario": _gen_scenario(suite),
    }


def generate(suites: tuple[int, ...] = SUITES, faults: frozenset[str] = frozenset()
             ) -> list[Case]:
    """The latest vector file's content (every RFC 9420 suite by default). `faults` names
    generator bugs from FAULTS to inject (tests only)."""
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults: {sorted(unknown)}")
    return [_case(s, frozenset(faults)) for s in suites]


# =========================================================================================
# The checker (independent of the generator: see the module docstring)
# =========================================================================================

# latest §5.2, §5.3, §5.4, §5.5.1, §5.6.2, §5.6.3 restated (labels without "MLS 1.0 ")
_L_EPOCH = {"epoch_id": b"Epoch ID", "epoch_base_secret": b"Base Secret",
            "epoch_encryption_key": b"Encryption Key",
            "generation_id_secret": b"Generation ID Secret",
            "reuse_guard_secret": b"Reuse Guard"}
_L_SUB = {"signature_key_secret": b"Signature Key", "encryption_key_secret": b"Encryption Key",
          "init_key_secret": b"Init Key", "path_generation_secret": b"Path Generation"}
_L_OPERATION_INIT = b"vc operation init"
_L_OPERATION_SECRET = b"VC Operation Secret"
_L_OPERATION_RATCHET = b"VC Operation Ratchet"
_L_OPERATION = b"vc operation"
_L_KEY_PACKAGE_SEED = b"key package seed"
_L_GROUP_CREATION = b"Group Creation"
_KEY_PACKAGE, _LEAF_NODE, _APPLICATION = 1, 2, 3  # VirtualClientOperationType (§6.1.2)
_SOURCE_KEY_PACKAGE, _SOURCE_UPDATE, _SOURCE_COMMIT = 1, 2, 3  # RFC 9420 LeafNodeSource
# The later text registers one virtual_clients component for LN, AD, ES and GI (latest
# §9); the library's latest default is P7's private-use 0x8001 for it (its suggested
# 0x0006 is not assigned). The vectors record it (epoch_secrets[].component_id,
# encodings.component_id), and the checker requires the one ID in both places.
_DERIVATION_INFO_ID = 0x8001
_ACTION_ID = _DERIVATION_INFO_ID
_APP_DATA_DICTIONARY = 0x0006
_EXPORTER_DEPTH = 16

_o, _u, _Reader = d00._o, d00._u, d00._Reader
_fields, _hex, _int, _list, _same = d00._fields, d00._hex, d00._int, d00._list, d00._same


def _epoch_outputs(cs: CipherSuite, root: bytes) -> dict[str, bytes]:
    """latest §5.2: emulator_epoch_secret = SafeExportSecret(component id) (the depth-16
    Exporter Tree leaf, extensions-09 §4.4), then the five DeriveSecret outputs."""
    ees = d00._ref_node(cs, root, _EXPORTER_DEPTH, _DERIVATION_INFO_ID)
    out = {k: derive_secret(cs, ees, label) for k, label in _L_EPOCH.items()}
    out["emulator_epoch_secret"] = ees
    return out


def _check_epoch_secrets(cs: CipherSuite, value: Any) -> None:
    keys = {"epoch_secret", "application_export_secret", "component_id",
            "emulator_epoch_secret", *_L_EPOCH}
    for i, raw in enumerate(_list({"v": value}, "v", "epoch_secrets")):
        what = f"epoch_secrets[{i}]"
        e = _fields(raw, what, keys)
        _same(f"{what}.component_id", _int(e, "component_id", what), _DERIVATION_INFO_ID)
        root = derive_secret(cs, _hex(e, "epoch_secret", what, cs.nh), b"application_export")
        _same(f"{what}.application_export_secret", root,
              _hex(e, "application_export_secret", what))
        for k, got in _epoch_outputs(cs, root).items():
            _same(f"{what}.{k}", got, _hex(e, k, what))


# --- the Virtual Client Operation Secret Tree (latest §5.2), walked again -------------------


def _leaf_secret(cs: CipherSuite, base: bytes, n_leaves: int, leaf: int) -> bytes:
    """RFC 9420 §9's tree shape over `n_leaves` (a power of two), rooted at
    epoch_base_secret: left/right = ExpandWithLabel(parent, "tree", "left"/"right", Nh)
    from the root (node n_leaves - 1) down to the leaf's node 2 * leaf."""
    if n_leaves < 1 or n_leaves & (n_leaves - 1) or not 0 <= leaf < n_leaves:
        raise Mismatch(f"leaf {leaf} of a tree of {n_leaves} leaves (a power of two)")
    target, node, secret = 2 * leaf, n_leaves - 1, base
    while node != target:
        level = 0
        while (node >> level) & 1:
            level += 1
        left = target < node
        node = node - (1 << (level - 1)) if left else node + (1 << (level - 1))
        secret = expand_with_label(cs, secret, b"tree", b"left" if left else b"right", cs.nh)
    return secret


def _operation_context(epoch_id: bytes, leaf: int, generation: int, op_type: int,
                       context: bytes) -> bytes:
    """struct { opaque epoch_id<V>; uint32 leaf_index; uint32 generation;
    VirtualClientOperationType operation_type; opaque operation_context<V>; }"""
    return _o(epoch_id) + _u(leaf, 4) + _u(generation, 4) + _u(op_type, 1) + _o(context)


def _operation(cs: CipherSuite, base: bytes, n_leaves: int, epoch_id: bytes, leaf: int,
               op_type: int, generation: int, context: bytes) -> dict[str, bytes]:
    """Every value of one operation, from epoch_base_secret (latest §5.2)."""
    leaf_secret = _leaf_secret(cs, base, n_leaves, leaf)
    initial = expand_with_label(cs, leaf_secret, _L_OPERATION_INIT, _u(op_type, 1), cs.nh)
    ratchet = initial
    for _ in range(generation):
        ratchet = derive_secret(cs, ratchet, _L_OPERATION_RATCHET)
    gen_secret = derive_secret(cs, ratchet, _L_OPERATION_SECRET)
    encoded = _operation_context(epoch_id, leaf, generation, op_type, context)
    return {"leaf_secret": leaf_secret, "initial_ratchet_secret": initial,
            "operation_ratchet_secret": ratchet, "operation_generation_secret": gen_secret,
            "next_operation_ratchet_secret": derive_secret(cs, ratchet, _L_OPERATION_RATCHET),
            "operation_context_struct": encoded,
            "operation_secret": expand_with_label(cs, gen_secret, _L_OPERATION, encoded,
                                                  cs.nh)}


_MAX_GENERATION_WALK = 1 << 12  # the checker walks ratchets step by step


def _check_operation_tree(cs: CipherSuite, value: Any) -> None:
    top = "operation_tree"
    t = _fields(value, top, {"epoch_id", "epoch_base_secret", "n_leaves", "operations"})
    epoch_id = _hex(t, "epoch_id", top, cs.nh)
    base = _hex(t, "epoch_base_secret", top, cs.nh)
    n = _int(t, "n_leaves", top)
    consumed: set[tuple[int, int, int]] = set()
    keys = {"leaf_index", "operation_type", "generation", "operation_context", "leaf_secret",
            "initial_ratchet_secret", "operation_ratchet_secret",
            "operation_generation_secret", "next_operation_ratchet_secret",
            "operation_context_struct", "operation_secret"}
    for i, raw in enumerate(_list(t, "operations", top)):
        what = f"{top}.operations[{i}]"
        o = _fields(raw, what, keys)
        leaf, op_type = _int(o, "leaf_index", what), _int(o, "operation_type", what)
        generation = _int(o, "generation", what)
        context = _hex(o, "operation_context", what)
        if op_type not in (_KEY_PACKAGE, _LEAF_NODE, _APPLICATION):
            raise Mismatch(f"{what}.operation_type: {op_type} is not key_package(1), "
                           "leaf_node(2) or application(3)")
        if op_type == _KEY_PACKAGE and context:
            raise Mismatch(f"{what}.operation_context: a key_package operation's is "
                           "zero-length (latest §5.2)")
        if generation > _MAX_GENERATION_WALK:
            raise Mismatch(f"{what}.generation: beyond what the checker walks")
        if (leaf, op_type, generation) in consumed:
            raise Mismatch(f"{what}: generation {generation} of this ratchet is used twice "
                           "(latest §5.2: a consumed generation is never reused)")
        consumed.add((leaf, op_type, generation))
        for k, got in _operation(cs, base, n, epoch_id, leaf, op_type, generation,
                                 context).items():
            _same(f"{what}.{k}", got, _hex(o, k, what))


def _seed_keys(cs: CipherSuite, seed: bytes) -> dict[str, bytes]:
    """latest §5.2: a KeyPackage's three sub-secrets from key_package_seed_secret and
    their key pairs (the draft-00 profile's P5, Q12 derivations of a key pair)."""
    s = {k: derive_secret(cs, seed, _L_SUB[k]) for k in
         ("signature_key_secret", "encryption_key_secret", "init_key_secret")}
    return {**s, **_pairs(cs, s)}


def _op_keys(cs: CipherSuite, operation_secret: bytes) -> dict[str, bytes]:
    """latest §5.2: the four sub-secrets of an operation without a seed, key pairs."""
    s = {k: derive_secret(cs, operation_secret, label) for k, label in _L_SUB.items()}
    return {**s, **_pairs(cs, s)}


def _pairs(cs: CipherSuite, s: dict[str, bytes]) -> dict[str, bytes]:
    sig = cs.signature.derive_key_pair(s["signature_key_secret"])
    enc = cs.kem.derive_key_pair(s["encryption_key_secret"])
    init = cs.kem.derive_key_pair(s["init_key_secret"])
    return {"signature_private_key": sig[0], "signature_public_key": sig[1],
            "encryption_private_key": enc[0], "encryption_public_key": enc[1],
            "init_private_key": init[0], "init_public_key": init[1]}


def _seed(cs: CipherSuite, operation_secret: bytes, index: int) -> tuple[bytes, bytes]:
    """(KeyPackageSeedContext, key_package_seed_secret) of latest §5.2."""
    context = _u(index, 4)
    return context, expand_with_label(cs, operation_secret, _L_KEY_PACKAGE_SEED, context,
                                      cs.nh)


_PAIR_FIELDS = {"signature_private_key", "signature_public_key", "encryption_private_key",
                "encryption_public_key", "init_private_key", "init_public_key"}


def _check_key_package_batch(cs: CipherSuite, value: Any) -> None:
    top = "key_package_batch"
    b = _fields(value, top, {"operation_secret", "key_packages",
                             "group_creation_epoch_secret"})
    secret = _hex(b, "operation_secret", top, cs.nh)
    seen: set[int] = set()
    keys = {"key_package_index", "key_package_seed_context", "key_package_seed_secret",
            "signature_key_secret", "encryption_key_secret", "init_key_secret",
            *_PAIR_FIELDS}
    for i, raw in enumerate(_list(b, "key_packages", top)):
        what = f"{top}.key_packages[{i}]"
        k = _fields(raw, what, keys)
        index = _int(k, "key_package_index", what)
        if index in seen or index >= 1 << 32:
            raise Mismatch(f"{what}.key_package_index: not a uint32 unique in the batch "
                           "(latest §5.5.1)")
        seen.add(index)
        context, seed = _seed(cs, secret, index)
        _same(f"{what}.key_package_seed_context", context,
              _hex(k, "key_package_seed_context", what))
        _same(f"{what}.key_package_seed_secret", seed, _hex(k, "key_package_seed_secret", what))
        for name, got in _seed_keys(cs, seed).items():
            _same(f"{what}.{name}", got, _hex(k, name, what))
    _, seed0 = _seed(cs, secret, 0)  # latest §5.4: a dedicated batch's index 0
    _same(f"{top}.group_creation_epoch_secret",
          derive_secret(cs, seed0, _L_GROUP_CREATION),
          _hex(b, "group_creation_epoch_secret", top))


def _check_operation_keys(cs: CipherSuite, value: Any) -> None:
    for i, raw in enumerate(_list({"v": value}, "v", "operation_keys")):
        what = f"operation_keys[{i}]"
        k = _fields(raw, what, {"operation_secret", *_L_SUB, *_PAIR_FIELDS})
        for name, got in _op_keys(cs, _hex(k, "operation_secret", what, cs.nh)).items():
            _same(f"{what}.{name}", got, _hex(k, name, what))


def _tbe(leaf_index: int, generation: int, source: int, key_package_index: int | None,
         external_init_secret: bytes | None) -> bytes:
    """latest §5.3: DerivationInfoTBE, selected by leaf_node_source."""
    out = _u(leaf_index, 4) + _u(generation, 4)
    if source == _SOURCE_KEY_PACKAGE:
        assert key_package_index is not None
        return out + _u(key_package_index, 4)
    if source == _SOURCE_COMMIT:
        if external_init_secret is None:
            return out + _u(0, 1)
        return out + _u(1, 1) + _o(external_init_secret)  # optional<ExternalInitSecret>
    return out


def _read_tbe(data: bytes, source: int, what: str) -> tuple[int, int, int | None,
                                                             bytes | None]:
    r = _Reader(data, what)
    leaf_index, generation = r.uint(4), r.uint(4)
    kp_index, init = None, None
    if source == _SOURCE_KEY_PACKAGE:
        kp_index = r.uint(4)
    elif source == _SOURCE_COMMIT:
        present = r.uint(1)
        if present not in (0, 1):
            raise Mismatch(f"{what}: optional<ExternalInitSecret> presence byte {present}")
        if present:
            init = r.opaque()
    elif source != _SOURCE_UPDATE:
        raise Mismatch(f"{what}: leaf_node_source {source} carries no DerivationInfoTBE")
    r.end()
    return leaf_index, generation, kp_index, init


def _key_nonce(cs: CipherSuite, eek: bytes, encryption_key: bytes) -> tuple[bytes, bytes,
                                                                           bytes]:
    context = _o(encryption_key)  # the serialized encryption_key field (as P6/Q1)
    return (context, expand_with_label(cs, eek, b"key", context, cs.aead.nk),
            expand_with_label(cs, eek, b"nonce", context, cs.aead.nn))


def _check_derivation_info(cs: CipherSuite, value: Any) -> None:
    common = {"epoch_encryption_key", "epoch_id", "encryption_key", "leaf_node_source",
              "leaf_index", "generation", "key_context", "key", "nonce",
              "derivation_info_tbe", "ciphertext", "derivation_info", "leaf_extension"}
    extra = {_SOURCE_KEY_PACKAGE: {"key_package_index"}, _SOURCE_UPDATE: set(),
             _SOURCE_COMMIT: {"external_init_secret"}}
    sources = set()
    for i, raw in enumerate(_list({"v": value}, "v", "derivation_info")):
        what = f"derivation_info[{i}]"
        source = raw.get("leaf_node_source") if isinstance(raw, dict) else None
        if source not in extra:
            raise Mismatch(f"{what}.leaf_node_source: not key_package(1), update(2) or "
                           "commit(3)")
        e = _fields(raw, what, common | extra[source])
        sources.add(source)
        kp_index = _int(e, "key_package_index", what) if source == 1 else None
        init = None
        if source == _SOURCE_COMMIT and e["external_init_secret"] is not None:
            init = _hex(e, "external_init_secret", what)
        eek, epoch_id = _hex(e, "epoch_encryption_key", what, cs.nh), _hex(e, "epoch_id", what)
        context, key, nonce = _key_nonce(cs, eek, _hex(e, "encryption_key", what))
        tbe = _tbe(_int(e, "leaf_index", what), _int(e, "generation", what), source,
                   kp_index, init)
        ct = cs.aead.seal(key, nonce, epoch_id, tbe)
        info = _o(epoch_id) + _o(ct)
        out = {"key_context": context, "key": key, "nonce": nonce,
               "derivation_info_tbe": tbe, "ciphertext": ct, "derivation_info": info,
               "leaf_extension": _u(_APP_DATA_DICTIONARY, 2)
               + _o(_o(_u(_DERIVATION_INFO_ID, 2) + _o(info)))}
        for name, got in out.items():
            _same(f"{what}.{name}", got, _hex(e, name, what))
    if sources != set(extra):
        raise Mismatch("derivation_info: every leaf_node_source (key_package, update, "
                       "commit) needed")


def _check_reuse_guard(cs: CipherSuite, value: Any) -> None:
    keys = {"reuse_guard_secret", "key_schedule_nonce", "leaf_index", "n_leaves", "x",
            "prp_key", "reuse_guard", "recovered_x", "recovered_leaf_index"}
    for i, raw in enumerate(_list({"v": value}, "v", "reuse_guard")):
        what = f"reuse_guard[{i}]"
        e = _fields(raw, what, keys)
        n, li, x = _int(e, "n_leaves", what), _int(e, "leaf_index", what), _int(e, "x", what)
        if n & (n - 1) or n > 1 << 32 or li >= n or x >= 1 << 32 or x % n != li:
            raise Mismatch(f"{what}: inputs break latest §5.6.2 (N_e a power of two, x mod "
                           "N_e = leaf_index_e)")
        prp_key = expand_with_label(cs, _hex(e, "reuse_guard_secret", what, cs.nh),
                                    b"reuse guard",
                                    _hex(e, "key_schedule_nonce", what, cs.aead.nn), 16)
        _same(f"{what}.prp_key", prp_key, _hex(e, "prp_key", what))
        rg = d00._ff1(prp_key, x, decrypt=False).to_bytes(4, "big")
        _same(f"{what}.reuse_guard", rg, _hex(e, "reuse_guard", what))
        back = d00._ff1(prp_key, int.from_bytes(_hex(e, "reuse_guard", what, 4), "big"), True)
        _same(f"{what}.recovered_x", back, _int(e, "recovered_x", what))
        _same(f"{what}.recovered_leaf_index", back % n, _int(e, "recovered_leaf_index", what))


def _gid_context(group_id: bytes, epoch: int, generation: int, ratchet_type: int) -> bytes:
    """latest §5.6.3: PrivateMessageContext {group_id<V>, uint64 epoch, uint32
    generation, uint8 ratchet_type}."""
    return _o(group_id) + _u(epoch, 8) + _u(generation, 4) + _u(ratchet_type, 1)


def _check_generation_id(cs: CipherSuite, value: Any) -> None:
    g = _fields(value, "generation_id", {"generation_id_secret", "ids"})
    secret = _hex(g, "generation_id_secret", "generation_id", cs.nh)
    types, groups = set(), set()
    for i, raw in enumerate(_list(g, "ids", "generation_id")):
        what = f"generation_id.ids[{i}]"
        e = _fields(raw, what, {"group_id", "epoch", "generation", "ratchet_type",
                                "private_message_context", "generation_id"})
        gid, epoch = _hex(e, "group_id", what), _int(e, "epoch", what)
        gen, rt = _int(e, "generation", what), _int(e, "ratchet_type", what)
        if gen >= 1 << 32 or epoch >= 1 << 64 or rt not in (1, 2):
            raise Mismatch(f"{what}: generation not a uint32, epoch not a uint64 or "
                           "ratchet_type not 1 or 2")
        types.add(rt)
        groups.add((gid, epoch))
        context = _gid_context(gid, epoch, gen, rt)
        _same(f"{what}.private_message_context", context,
              _hex(e, "private_message_context", what))
        _same(f"{what}.generation_id",
              expand_with_label(cs, secret, b"generation id", context, cs.nh),
              _hex(e, "generation_id", what))
    if types != {1, 2} or len({gid for gid, _ in groups}) < 2 or len(groups) < 3:
        raise Mismatch("generation_id: both ratchet types, two groups and two epochs of "
                       "one group needed")


def _kpu(epoch_id: bytes, leaf_index: int, generation: int,
         infos: list[tuple[bytes, int]]) -> bytes:
    """latest §5.5.1: KeyPackageUpload {epoch_id<V>, uint32 leaf_index, uint32
    generation, KeyPackageInfo key_package_info<V>}, KeyPackageInfo {KeyPackageRef
    key_package_ref (opaque<V>), uint32 key_package_index}."""
    body = b"".join(_o(ref) + _u(index, 4) for ref, index in infos)
    return _o(epoch_id) + _u(leaf_index, 4) + _u(generation, 4) + _o(body)


def _check_encodings(cs: CipherSuite, value: Any) -> None:
    e = _fields(value, "encodings", {"component_id", "key_package_upload"})
    cid = _int(e, "component_id", "encodings")
    _same("encodings.component_id", cid, _ACTION_ID)
    what = "encodings.key_package_upload"
    k = _fields(e["key_package_upload"], what, {"epoch_id", "leaf_index", "generation",
                                                "key_package_info", "encoded", "action",
                                                "safe_aad"})
    infos = []
    for i, raw in enumerate(_list(k, "key_package_info", what)):
        iw = f"{what}.key_package_info[{i}]"
        info = _fields(raw, iw, {"key_package_ref", "key_package_index"})
        infos.append((_hex(info, "key_package_ref", iw), _int(info, "key_package_index", iw)))
    if len({index for _, index in infos}) != len(infos):
        raise Mismatch(f"{what}: duplicate key_package_index (latest §5.5.1)")
    kpu = _kpu(_hex(k, "epoch_id", what), _int(k, "leaf_index", what),
               _int(k, "generation", what), infos)
    _same(f"{what}.encoded", kpu, _hex(k, "encoded", what))
    action = _u(1, 1) + kpu  # ActionType key_package_upload(1), latest §5.5
    _same(f"{what}.action", action, _hex(k, "action", what))
    _same(f"{what}.safe_aad", d00._safe_aad(cid, action), _hex(k, "safe_aad", what))


# --- the scenario -----------------------------------------------------------------------------

_AUTH = {"group_context", "membership_key"}
_APPLICATION_FIELDS = {"group_id", "group_context", "sender_data_secret",
                       "key_schedule_nonce", "content_key", "application_data",
                       "generation", "reuse_guard", "emulator_leaf_index", "generation_id"}
_MESSAGE_FIELDS: dict[str, set[str]] = {
    "emulation_commit": {"group_id", "opens_epoch", "action", *_AUTH},
    "key_package": set(),
    "member_commit": {"group_id", *_AUTH},
    "welcome": {"group_id"},
    "vc_commit": {"group_id", *_AUTH},
    "application": _APPLICATION_FIELDS,
    "external_commit": {"group_id", "group_info", "group_context", "external_secret",
                        "vc_leaf_index"},
}
_EPOCH_FIELDS = {"epoch", "application_export_secret", "epoch_id", "epoch_base_secret",
                 "epoch_encryption_key", "generation_id_secret", "reuse_guard_secret",
                 "n_leaves", "roster"}
_EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"  # RFC 9420 §8.3


class _LatestScenarioCheck(d00._ScenarioCheck):
    """The draft-00 scenario check with the later text's derivations: the
    DerivationInfoTBE selected by leaf_node_source, operations from the operation secret
    tree, the KeyPackageUpload of latest §5.5.1, the reuse guard from reuse_guard_secret
    and the generation ID bound to group and epoch; and the external commit."""

    def __init__(self, cs: CipherSuite, s: dict[str, Any]) -> None:
        super().__init__(cs, s)
        # KeyPackageRef -> (epoch_id, leaf_index, generation, key_package_index)
        self.batch: dict[bytes, tuple[bytes, int, int, int]] = {}
        self.consumed: set[tuple[bytes, int, int, int]] = set()  # leaf_node generations

    def epochs_section(self) -> None:
        for i, raw in enumerate(_list(self.s, "emulation_epochs", "scenario")):
            what = f"scenario.emulation_epochs[{i}]"
            e = _fields(raw, what, _EPOCH_FIELDS)
            root = _hex(e, "application_export_secret", what, self.cs.nh)
            for k, got in _epoch_outputs(self.cs, root).items():
                if k != "emulator_epoch_secret":
                    _same(f"{what}.{k}", got, _hex(e, k, what))
            n = _int(e, "n_leaves", what)
            leaves = []
            for j, r in enumerate(_list(e, "roster", what)):
                rw = f"{what}.roster[{j}]"
                entry = _fields(r, rw, {"leaf_index", "emulator"})
                if entry["emulator"] not in self.s["emulators"]:
                    raise Mismatch(f"{rw}.emulator: not one of the scenario's emulators")
                leaves.append(_int(entry, "leaf_index", rw))
            if n & (n - 1) or any(li >= n for li in leaves):
                raise Mismatch(f"{what}: n_leaves not a power of two above every leaf")
            e = dict(e, _leaves=leaves, _root=root)
            self.epochs[bytes.fromhex(e["epoch_id"])] = e
            self.by_number[_int(e, "epoch", what)] = e

    def latest_op(self, what: str, leaf: Any, group_id: bytes
                  ) -> tuple[d00._Op, tuple[int, int, int | None, bytes | None]]:
        """latest §5.3: open a vc LeafNode's DerivationInfo with the published epoch, parse
        the DerivationInfoTBE by the LeafNode's leaf_node_source, re-derive the operation
        (key_package: the batch secret, then the seed of key_package_index; update,
        commit: a leaf_node operation with the group_id as operation_context) and check
        the LeafNode's keys are the re-derived ones."""
        cs = self.cs
        data = None
        for ext in leaf.extensions:
            if ext.extension_type == _APP_DATA_DICTIONARY:
                r = _Reader(ext.extension_data, f"{what} app_data_dictionary")
                body = _Reader(r.opaque(), f"{what} app_data_dictionary")
                r.end()
                while body.pos < len(body.data):
                    cid, comp = body.uint(2), body.opaque()
                    if cid == _DERIVATION_INFO_ID:
                        data = comp
        if data is None:
            raise Mismatch(f"{what}: LeafNode without a DerivationInfo")
        r = _Reader(data, f"{what} DerivationInfo")
        epoch_id, ct = r.opaque(), r.opaque()
        r.end()
        epoch = self.epochs.get(epoch_id)
        if epoch is None:
            raise Mismatch(f"{what}: DerivationInfo names no published emulation epoch")
        eek = bytes.fromhex(epoch["epoch_encryption_key"])
        _, key, nonce = _key_nonce(cs, eek, leaf.encryption_key)
        try:
            plain = cs.aead.open(key, nonce, epoch_id, ct)
        except MLSError:
            raise Mismatch(f"{what}: DerivationInfo does not decrypt under the published "
                           "epoch_encryption_key (latest §5.3)") from None
        source = int(leaf.leaf_node_source)
        tbe = _read_tbe(plain, source, f"{what} DerivationInfoTBE")
        leaf_index, generation, kp_index, _ = tbe
        if leaf_index not in epoch["_leaves"]:
            raise Mismatch(f"{what}: leaf_index {leaf_index} is no emulator of that epoch")
        base = bytes.fromhex(epoch["epoch_base_secret"])
        if source == _SOURCE_KEY_PACKAGE:
            assert kp_index is not None
            batch = _operation(cs, base, epoch["n_leaves"], epoch_id, leaf_index,
                               _KEY_PACKAGE, generation, b"")["operation_secret"]
            keys = _seed_keys(cs, _seed(cs, batch, kp_index)[1])
        else:
            mark = (epoch_id, leaf_index, _LEAF_NODE, generation)
            if mark in self.consumed:
                raise Mismatch(f"{what}: leaf_node generation {generation} of leaf "
                               f"{leaf_index} used twice (latest §5.2)")
            self.consumed.add(mark)
            keys = _op_keys(cs, _operation(cs, base, epoch["n_leaves"], epoch_id,
                                           leaf_index, _LEAF_NODE, generation,
                                           group_id)["operation_secret"])
        _same(f"{what}: LeafNode.encryption_key", keys["encryption_public_key"],
              leaf.encryption_key)
        _same(f"{what}: LeafNode.signature_key", keys["signature_public_key"],
              leaf.signature_key)
        return d00._Op(epoch, keys), tbe

    def message(self, i: int, raw: Any) -> None:
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind in ("emulation_commit", "member_commit", "welcome"):
            super().message(i, raw)  # the same checks; emulation_action is the latest one
            return
        from mlsvc.messages.commit import Commit
        from mlsvc.messages.framing import PublicMessage
        from mlsvc.messages.key_package import KeyPackage
        from mlsvc.messages.mls_message import MLSMessage

        what = f"scenario.messages[{i}]"
        if kind not in _MESSAGE_FIELDS:
            raise Mismatch(f"{what}: no known kind")
        m = _fields(raw, f"{what} ({kind})", {"kind", "sender", "message",
                                              *_MESSAGE_FIELDS[kind]})
        what = f"{what} ({kind})"
        wire = _hex(m, "message", what)
        try:
            msg = MLSMessage.decode(wire)
        except MLSError as exc:
            raise Mismatch(f"{what}: does not parse as an MLSMessage: {exc}") from None
        _same(f"{what}: re-encoding", msg.encode(), wire)
        body = msg.body
        cs = self.cs
        if kind == "key_package":
            if not isinstance(body, KeyPackage):
                raise Mismatch(f"{what}: not a KeyPackage")
            ref = cs.hash(_o(d00._KP_REF_LABEL) + _o(wire[4:]))  # RFC 9420 §5.2
            if ref not in self.batch:
                raise Mismatch(f"{what}: KeyPackageRef {ref.hex()[:16]} was not announced "
                               "by a KeyPackageUpload (latest §5.5.1)")
            epoch_id, leaf_index, generation, index = self.batch[ref]
            if int(body.leaf_node.leaf_node_source) != _SOURCE_KEY_PACKAGE:
                raise Mismatch(f"{what}: the LeafNode's source is not key_package")
            op, tbe = self.latest_op(what, body.leaf_node, b"")
            _same(f"{what}: DerivationInfo epoch_id (the upload's)",
                  bytes.fromhex(op.epoch["epoch_id"]), epoch_id)
            _same(f"{what}: DerivationInfoTBE (leaf_index, generation, key_package_index) "
                  "(the upload's, latest §5.5.1)", tbe[:3], (leaf_index, generation, index))
            _same(f"{what}: KeyPackage.init_key", op.keys["init_public_key"], body.init_key)
            signature = body.signature
            if not verify_with_label(cs, op.keys["signature_public_key"], b"KeyPackageTBS",
                                     wire[4:len(wire) - len(_o(signature))], signature):
                raise Mismatch(f"{what}: KeyPackage signature does not verify under the "
                               "re-derived signature key")
            self.leaf_signature(what, body.leaf_node, op, b"")
            self.key_packages[ref] = op
        elif kind == "vc_commit":
            if not isinstance(body, PublicMessage) or not isinstance(body.content.content,
                                                                     Commit):
                raise Mismatch(f"{what}: not a Commit in a PublicMessage")
            self.membership_tag(what, m, wire, body)
            commit = body.content.content
            gid = body.content.group_id
            _same(f"{what}.group_id", gid, _hex(m, "group_id", what))
            if gid not in self.active or commit.path is None:
                raise Mismatch(f"{what}: a vc commit needs a path in a group the virtual "
                               "client joined")
            op, tbe = self.latest_op(what, commit.path.leaf_node, gid)
            if tbe[3] is not None:
                raise Mismatch(f"{what}: external_init_secret in a Commit that is not an "
                               "external commit (latest §5.3: MUST be absent)")
            self.path(what, commit, op)
            vc_leaf = body.content.sender.index
            if vc_leaf is None:
                raise Mismatch(f"{what}: not sent by a member")
            self.leaf_signature(what, commit.path.leaf_node, op, _o(gid) + _u(vc_leaf, 4))
            self.active[gid] = (vc_leaf, op)
        elif kind == "external_commit":
            self.external_commit(what, m, wire, body)
        else:  # application
            if not isinstance(body, PrivateMessage):
                raise Mismatch(f"{what}: not a PrivateMessage")
            self.application(what, m, body)

    def path(self, what: str, commit: Any, op: d00._Op) -> None:
        """latest §5.3: path_generation_secret is the path_secret of the first parent
        node; its key pair is DeriveKeyPair(DeriveSecret(path_secret, "node"))."""
        if commit.path.nodes:
            node = derive_secret(self.cs, op.keys["path_generation_secret"], b"node")
            _same(f"{what}: UpdatePath.nodes[0].encryption_key",
                  self.cs.kem.derive_key_pair(node)[1], commit.path.nodes[0].encryption_key)

    def external_commit(self, what: str, m: dict[str, Any], wire: bytes, body: Any) -> None:
        """latest §5.3, §5.5.2: an external Commit of the virtual client (RFC 9420 §12.4.3.2)
        into the epoch of `group_info` (the external join material): its LeafNode's
        DerivationInfoTBE carries external_init_secret, which is the init_secret the
        ExternalInit's kem_output gives under the group's external key
        (DeriveKeyPair(external_secret), RFC 9420 §8.3, the member's published
        external_secret); the keys are a leaf_node operation's; the path and the
        signatures (FramedContentTBS with the GroupInfo's GroupContext) verify."""
        from mlsvc.messages.codepoints import SenderType
        from mlsvc.messages.commit import Commit
        from mlsvc.messages.extensions import ExternalPub
        from mlsvc.messages.framing import PublicMessage
        from mlsvc.messages.group_info import GroupInfo
        from mlsvc.messages.mls_message import MLSMessage
        from mlsvc.messages.proposals import ExternalInit

        cs = self.cs
        if not isinstance(body, PublicMessage) or not isinstance(body.content.content, Commit):
            raise Mismatch(f"{what}: not a Commit in a PublicMessage")
        if body.content.sender.sender_type != SenderType.NEW_MEMBER_COMMIT:
            raise Mismatch(f"{what}: not sent as new_member_commit")
        gid = _hex(m, "group_id", what)
        _same(f"{what}.group_id", body.content.group_id, gid)
        try:
            gi = MLSMessage.decode(_hex(m, "group_info", what)).body
        except MLSError as exc:
            raise Mismatch(f"{what}.group_info: does not parse: {exc}") from None
        if not isinstance(gi, GroupInfo):
            raise Mismatch(f"{what}.group_info: not a GroupInfo")
        context = _hex(m, "group_context", what)
        _same(f"{what}.group_context (the GroupInfo's)", gi.group_context.encode(), context)
        _same(f"{what}: epoch (the GroupInfo's)", body.content.epoch, gi.group_context.epoch)
        external = _hex(m, "external_secret", what, cs.nh)
        sk, pk = cs.kem.derive_key_pair(external)
        pubs = [ExternalPub.decode(e.extension_data) for e in gi.extensions
                if e.extension_type == ExternalPub.EXTENSION_TYPE]
        if len(pubs) != 1:
            raise Mismatch(f"{what}.group_info: no external_pub extension")
        _same(f"{what}: DeriveKeyPair(external_secret) is the GroupInfo's external_pub", pk,
              pubs[0].external_pub)
        commit = body.content.content
        inits = [p for p in commit.proposals if isinstance(p, ExternalInit)]
        if len(inits) != 1 or commit.path is None:
            raise Mismatch(f"{what}: an external commit has one ExternalInit and a path")
        init_secret = cs.hpke.export_receiver(inits[0].kem_output, sk, b"",
                                              _EXTERNAL_INIT_LABEL, cs.nh)
        leaf = commit.path.leaf_node
        if int(leaf.leaf_node_source) != _SOURCE_COMMIT:
            raise Mismatch(f"{what}: the LeafNode's source is not commit")
        op, tbe = self.latest_op(what, leaf, gid)
        if tbe[3] is None:
            raise Mismatch(f"{what}: external_init_secret absent (latest §5.3: the Commit "
                           "MUST be rejected)")
        _same(f"{what}: DerivationInfoTBE.external_init_secret (RFC 9420 §8.3 init_secret "
              "of the ExternalInit)", tbe[3], init_secret)
        self.path(what, commit, op)
        vc_leaf = _int(m, "vc_leaf_index", what)
        self.leaf_signature(what, leaf, op, _o(gid) + _u(vc_leaf, 4))
        content = body.content.encode()
        if wire[4:4 + len(content)] != content:
            raise Mismatch(f"{what}: FramedContent not where expected")
        if not verify_with_label(cs, op.keys["signature_public_key"], b"FramedContentTBS",
                                 wire[:4 + len(content)] + context, body.auth.signature):
            raise Mismatch(f"{what}: the Commit's signature does not verify under the "
                           "re-derived signature key")
        self.active[gid] = (vc_leaf, op)

    def emulation_action(self, what: str, m: dict[str, Any], aad: bytes, epoch: int,
                         sender: int | None) -> None:
        """latest §5.5, §5.5.1: the SafeAAD's VirtualClientAction is a KeyPackageUpload
        (the only action) naming the epoch the Commit is sent in, the sender's leaf, one
        key_package generation and unique key_package_index values."""
        want = m["action"]
        item = None
        if aad:
            r = _Reader(aad, f"{what} SafeAAD")
            items = _Reader(r.opaque(), f"{what} SafeAAD")
            while items.pos < len(items.data):
                cid, data = items.uint(2), items.opaque()
                if cid == _ACTION_ID:
                    item = data
        if want is None:
            if item is not None:
                raise Mismatch(f"{what}.action: the Commit carries an action, the file none")
            return
        _same(f"{what}.action", item, _hex(m, "action", what))
        assert item is not None and sender is not None
        r = _Reader(item, f"{what} VirtualClientAction")
        if r.uint(1) != 1:
            raise Mismatch(f"{what}: the action is not a key_package_upload (latest §5.5)")
        epoch_id, leaf_index, generation = r.opaque(), r.uint(4), r.uint(4)
        infos = _Reader(r.opaque(), f"{what} KeyPackageInfo")
        r.end()
        _same(f"{what}: KeyPackageUpload.epoch_id names the epoch the Commit is sent in",
              self.epochs.get(epoch_id), self.by_number.get(epoch))
        _same(f"{what}: KeyPackageUpload.leaf_index (the Commit's sender)", leaf_index, sender)
        indices = []
        while infos.pos < len(infos.data):
            ref, index = infos.opaque(), infos.uint(4)
            indices.append(index)
            self.batch[ref] = (epoch_id, leaf_index, generation, index)
        if len(set(indices)) != len(indices):
            raise Mismatch(f"{what}: duplicate key_package_index (latest §5.5.1)")

    def reuse_guard_prp_key(self, op: d00._Op, key_schedule_nonce: bytes) -> bytes:
        """latest §5.6.2: the PRP key from reuse_guard_secret of the epoch e the active
        LeafNode names."""
        return expand_with_label(self.cs, bytes.fromhex(op.epoch["reuse_guard_secret"]),
                                 b"reuse guard", key_schedule_nonce, 16)

    def expected_generation_id(self, op: d00._Op, body: PrivateMessage,
                               generation: int) -> bytes:
        """latest §5.6.3: over {group_id, epoch, generation, application}."""
        context = _gid_context(body.group_id, body.epoch, generation, 1)
        return expand_with_label(self.cs, bytes.fromhex(op.epoch["generation_id_secret"]),
                                 b"generation id", context, self.cs.nh)

def _check_scenario(cs: CipherSuite, value: Any) -> None:
    s = _fields(value, "scenario", {"seed", "emulators", "virtual_client", "members",
                                    "emulation_group_id", "group_ids", "emulation_epochs",
                                    "messages"})
    _hex(s, "seed", "scenario")
    _hex(s, "emulation_group_id", "scenario")
    for i in range(len(_list(s, "group_ids", "scenario"))):
        _hex({"v": s["group_ids"][i]}, "v", f"scenario.group_ids[{i}]")
    names = _list(s, "emulators", "scenario") + _list(s, "members", "scenario")
    if not all(isinstance(n, str) for n in names) or not isinstance(s["virtual_client"], str):
        raise Mismatch("scenario: emulators, members and virtual_client are names")
    d00._run_scenario(_LatestScenarioCheck(cs, s), s, _MESSAGE_FIELDS)


CHECKS: dict[str, Callable[[CipherSuite, Any], None]] = {
    "epoch_secrets": _check_epoch_secrets,
    "operation_tree": _check_operation_tree,
    "key_package_batch": _check_key_package_batch,
    "operation_keys": _check_operation_keys,
    "derivation_info": _check_derivation_info,
    "reuse_guard": _check_reuse_guard,
    "generation_id": _check_generation_id,
    "encodings": _check_encodings,
    "scenario": _check_scenario,
}
assert tuple(CHECKS) == SECTIONS


def check_case(i: int, case: Case, result: FileResult) -> None:
    """One suite's object of the latest profile: one result per section (or one failed
    result when its fields are wrong)."""
    suite = case.get("cipher_suite")
    try:
        _fields(case, f"case {i}", {"cipher_suite", "profile", *SECTIONS})
        _same(f"case {i}.profile", case["profile"], PROFILE)
        if suite not in SUITES:
            raise Mismatch(f"case {i}: cipher_suite {suite!r} is not an RFC 9420 suite")
    except Mismatch as exc:
        result.cases.append(CaseResult(i, suite if isinstance(suite, int) else None, False,
                                       detail=str(exc)))
        return
    cs = get_suite(suite)
    for name, check in CHECKS.items():
        try:
            check(cs, case[name])
        except (Mismatch, MLSError, ValueError, KeyError, TypeError, IndexError) as exc:
            detail = str(exc) if isinstance(exc, Mismatch) else \
                f"{name}: {type(exc).__name__}: {exc}"
            result.cases.append(CaseResult(i, suite, False, detail=detail))
        else:
            result.cases.append(CaseResult(i, suite, True, detail=name))


def count_entries(case: Case) -> dict[str, int]:
    """How many checked entries each section of one suite's object holds (for reports)."""
    s = case["scenario"]
    return {
        "epoch_secrets": len(case["epoch_secrets"]),
        "operation_tree": len(case["operation_tree"]["operations"]),
        "key_package_batch": len(case["key_package_batch"]["key_packages"]) + 1,
        "operation_keys": len(case["operation_keys"]),
        "derivation_info": len(case["derivation_info"]),
        "reuse_guard": len(case["reuse_guard"]),
        "generation_id": len(case["generation_id"]["ids"]),
        "encodings": 1,
        "scenario": len(s["emulation_epochs"]) + len(s["messages"]),
    }
