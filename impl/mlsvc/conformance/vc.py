"""Test vectors for the virtual clients of draft-ietf-mls-virtual-clients-00 (§5) as
shared/spec/DRAFT-00-PROFILE.md reads it: `generate` writes them (`mlsvc vectors
generate vc --out FILE`), `run` checks a file of them (`mlsvc vectors check vc FILE`,
and `mlsvc vectors --dir vectors/generated`, file stem `vc-draft-00`).

Two halves that share nothing but the file format:

- The **generator** (`generate`, `dump`, `write`) drives the library itself
  (`mlsvc.vc.*`, `Emulator`, `VirtualClient`, `Group`, the delivery service) from a
  fixed seed, so generating twice gives the same bytes. `generate(faults=...)` injects
  a named generator bug (`FAULTS`); the tests use it to show the checker catches a
  wrong generator, not only a damaged file.
- The **checker** (`run`, everything under "the checker" below) recomputes every output
  of the file from its inputs with code written for it: the RFC 9420 labeled operations
  (`mlsvc.crypto.labels`), the suites' hash, MAC, AEAD, HPKE, KEM and signature key
  derivation, the AES block function (`mlsvc.crypto.block`) under a textbook FF1 (NIST
  SP 800-38G Algorithms 6-8, numeral by numeral), its own TLS writer and reader, its
  own PPRF walk, and its own description of the retained PPRF state (the maximal
  unpunctured subtrees, not the library's step-by-step puncturing). It imports nothing
  from `mlsvc.vc` or `mlsvc.ext`. The scenario's wire messages are parsed with
  `mlsvc.messages` (parsing is part of what is checked) and authenticated byte for byte:
  membership tags under the published membership keys, KeyPackage and LeafNode
  signatures under the re-derived keys, the Welcome opened with the re-derived init
  key, the application message's sender data and content opened and its signature
  verified. An unknown or missing field is an error.

The file: a JSON array, one object per cipher suite 1..7, byte strings as lowercase
hex, integers as JSON numbers. docs/VC_VECTORS.md documents every field.

Both profiles (mlsvc.vc.profiles): `generate(profile="latest")` and
`write(path, profile="latest")` hand over to `mlsvc.conformance.vc_latest`, whose file
(vectors/generated/vc-latest.json) records `"profile": "latest"` in every suite's object;
`run` checks each object by the profile it records (none: draft-00, whose format has no
such field and whose output is unchanged) and, given `profile=`, requires that one.

The emulator lifecycle (NewEmulatorClientState, P13; ResyncMessage, P14) is registered
in `LIFECYCLE_SECTIONS` (a `Section`: generator and checker; `generate` adds each
registered section to every suite's object and `run` requires and checks it): the
generator runs one seeded scenario through mlsvc.vc.lifecycle (`_lifecycle`), the
checker reads the structs of impl/mlsvc/vc/state.py's docstring with its own TLS reader
and writer (at the end of this module).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mlsvc.conformance.base import Case, CaseResult, FileResult, Mismatch
from mlsvc.crypto.block import aes_block_encryptor
from mlsvc.crypto.labels import (
    decrypt_with_label,
    derive_secret,
    expand_with_label,
    verify_with_label,
)
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import MLSError
from mlsvc.messages.framing import PrivateMessage

SUITES = tuple(range(1, 8))
FILE_STEM = "vc-draft-00"
_SEED = b"mlsvc virtual clients draft-00 test vectors v1"

FAULTS: dict[str, str] = {
    "p3-last-bytes": "the PPRF leaf from the last 4 bytes of pprf_input (P3 says the first)",
    "p4-literal": "the sub-secrets from epoch_base_secret, draft-00's literal text (P4, F1)",
    "q1-raw-key": "DerivationInfo key/nonce context without the length prefix (Q1)",
    "p10-bit-reversed": "FF1 numerals with the bits of each byte reversed (P10)",
    "q4-wide-context": "PrivateMessageContext with a uint16 ratchet_type (Q4: uint8)",
}
"""Generator bugs `generate(faults=...)` can inject (for the checker's own tests)."""


@dataclass(frozen=True)
class Section:
    """A per-suite section of the file added by a later module: `generate(suite)` gives
    its JSON value, `check(cs, value)` raises Mismatch when a value is wrong."""

    generate: Callable[[int], Any]
    check: Callable[[CipherSuite, Any], None]


LIFECYCLE_SECTIONS: dict[str, Section] = {}
"""Sections of the emulator lifecycle: "new_emulator_client_state" (P13) and
"resync_message" (P14), registered at the end of this module."""


# =========================================================================================
# The generator (drives the library)
# =========================================================================================


def _bytes(label: str, suite: int, n: int) -> bytes:
    """Deterministic generator input: SHAKE-256(seed || suite || label)."""
    return hashlib.shake_256(_SEED + bytes([suite]) + label.encode()).digest(n)


class _Scripted:
    """A RandomSource returning given byte strings in order (the P3 resampling case)."""

    def __init__(self, draws: list[bytes]) -> None:
        self.draws = list(draws)

    def __call__(self, n: int, /) -> bytes:
        value = self.draws.pop(0)
        assert len(value) == n
        return value


def _gen_epoch(cs: CipherSuite, epoch_secret: bytes) -> dict[str, Any]:
    from mlsvc.ext.safe_export import SafeExporter, application_export_secret
    from mlsvc.types import LeafIndex
    from mlsvc.vc.codepoints import DEFAULT_VC_CODEPOINTS
    from mlsvc.vc.epoch import open_epoch

    root = application_export_secret(cs, epoch_secret)
    cid = DEFAULT_VC_CODEPOINTS.derivation_info
    ees = SafeExporter(cs, root).export(cid)
    ep = open_epoch(cs, ees, 1, 4, LeafIndex(0), {})
    assert ep.pprf is not None and ep.encryption_key is not None
    return {
        "epoch_secret": epoch_secret.hex(),
        "application_export_secret": root.hex(),
        "component_id": cid,
        "emulator_epoch_secret": ees.hex(),
        "epoch_id": ep.epoch_id.hex(),
        "epoch_base_secret": ep.pprf.nodes()[0].node_secret.hex(),
        "epoch_encryption_key": ep.encryption_key.hex(),
        "generation_id_secret": ep.generation_id_secret.hex(),
    }


def _leaf_of(cs: CipherSuite, leaf_index: int, random: bytes, faults: frozenset[str]) -> int:
    from mlsvc.vc.operation import hash_input, pprf_leaf

    if "p3-last-bytes" in faults:
        return int.from_bytes(cs.hash(hash_input(leaf_index, random))[-4:], "big")
    return pprf_leaf(cs, leaf_index, random)


# (deriving leaf index, label of its random) in the order of the puncture sequence
_DERIVATIONS: tuple[tuple[int, str], ...] = ((0, "a"), (1, "b"), (2, "c"))


def _gen_operations(cs: CipherSuite, base: bytes, faults: frozenset[str]) -> dict[str, Any]:
    from mlsvc.ext.pprf import PPRF
    from mlsvc.types import LeafIndex
    from mlsvc.vc.codepoints import PPRF_DEPTH
    from mlsvc.vc.epoch import EmulationEpoch
    from mlsvc.vc.operation import derive_and_commit, hash_input

    pprf = PPRF(cs, base, PPRF_DEPTH)
    ep = EmulationEpoch(1, b"", 4, LeafIndex(0), {0: b"", 1: b"", 2: b""}, b"", pprf, b"")
    derivations: list[dict[str, Any]] = []
    for leaf_index, label in _DERIVATIONS:
        random = _bytes(f"operation random {label}", cs.id, cs.nh)
        ep.own_leaf = LeafIndex(leaf_index)
        d = derive_and_commit(cs, ep, _Scripted([random]))
        derivations.append({
            "leaf_index": leaf_index, "random": random.hex(),
            "hash_input": hash_input(leaf_index, random).hex(),
            "pprf_input": cs.hash(hash_input(leaf_index, random)).hex(),
            "pprf_leaf": _leaf_of(cs, leaf_index, random, faults),
            "operation_secret": d.operation_secret.hex(),
            "state": pprf.serialize().hex(), "state_nodes": len(pprf),
        })
    # P3: the deriver (leaf 1) draws the random of derivation 1 again, whose leaf is
    # punctured, and resamples.
    again = bytes.fromhex(derivations[1]["random"])
    fresh = _bytes("operation random resampled", cs.id, cs.nh)
    ep.own_leaf = LeafIndex(1)
    d = derive_and_commit(cs, ep, _Scripted([again, fresh]))
    assert d.resamples == 1 and d.random == fresh
    resample = {
        "leaf_index": 1,
        "draws": [{"random": r.hex(), "pprf_leaf": _leaf_of(cs, 1, r, faults),
                   "punctured": p} for r, p in ((again, True), (fresh, False))],
        "operation_secret": d.operation_secret.hex(),
        "state": pprf.serialize().hex(), "state_nodes": len(pprf),
    }
    return {"epoch_base_secret": base.hex(), "derivations": derivations, "resample": resample}


def _gen_keys(cs: CipherSuite, operation_secret: bytes, base: bytes,
              faults: frozenset[str]) -> dict[str, Any]:
    from mlsvc.vc.operation import OperationKeys, OperationSecrets

    source = base if "p4-literal" in faults else operation_secret
    s = OperationSecrets.of(cs, source)
    k = OperationKeys.of(cs, s)
    ephemeral = cs.kem.derive_key_pair(k.external_init_seed)
    return {
        "operation_secret": operation_secret.hex(),
        "signature_key_secret": s.signature_key_secret.hex(),
        "encryption_key_secret": s.encryption_key_secret.hex(),
        "init_key_secret": s.init_key_secret.hex(),
        "path_generation_secret": s.path_generation_secret.hex(),
        "external_init_secret": s.external_init_secret.hex(),
        "signature_private_key": k.signature[0].hex(),
        "signature_public_key": k.signature[1].hex(),
        "encryption_private_key": k.encryption[0].hex(),
        "encryption_public_key": k.encryption[1].hex(),
        "init_private_key": k.init[0].hex(),
        "init_public_key": k.init[1].hex(),
        "external_init_kem_output": ephemeral[1].hex(),
    }


def _gen_derivation_info(cs: CipherSuite, epoch: dict[str, Any], encryption_key: bytes,
                         leaf_index: int, random: bytes,
                         faults: frozenset[str]) -> dict[str, Any]:
    from mlsvc.codec import Writer
    from mlsvc.vc import derivation as dinfo

    epoch_id = bytes.fromhex(epoch["epoch_id"])
    eek = bytes.fromhex(epoch["epoch_encryption_key"])
    tbe = dinfo.EpochInfoTBE(leaf_index, random)
    w = Writer()
    w.opaque(encryption_key)
    context = w.bytes()
    if "q1-raw-key" in faults:
        context = encryption_key
    key = expand_with_label(cs, eek, b"key", context, cs.aead.nk)
    nonce = expand_with_label(cs, eek, b"nonce", context, cs.aead.nn)
    if "q1-raw-key" in faults:
        comp = dinfo.DerivationInfoComponent(epoch_id, cs.aead.seal(key, nonce, epoch_id,
                                                                    tbe.encode()))
    else:
        comp = dinfo.seal(cs, epoch_id, eek, encryption_key, tbe)
    return {
        "epoch_encryption_key": eek.hex(), "epoch_id": epoch_id.hex(),
        "encryption_key": encryption_key.hex(), "leaf_index": leaf_index,
        "random": random.hex(),
        "key_context": context.hex(), "key": key.hex(), "nonce": nonce.hex(),
        "epoch_info_tbe": tbe.encode().hex(), "ciphertext": comp.ciphertext.hex(),
        "component": comp.encode().hex(),
        "leaf_extension": dinfo.leaf_extension(comp).encode().hex(),
    }


# (leaf_index, n_leaves) of the reuse-guard entries
_REUSE_GUARDS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 4), (5, 8), (3, 4))


def _bitrev_bytes(x: int) -> int:
    return int.from_bytes(bytes(int(f"{b:08b}"[::-1], 2) for b in x.to_bytes(4, "big")),
                          "big")


def _gen_reuse_guards(cs: CipherSuite, secret: bytes, faults: frozenset[str]
                      ) -> list[dict[str, Any]]:
    from mlsvc.vc.ff1 import prp_encrypt
    from mlsvc.vc.reuse_guard import (
        class_member,
        derive_prp_key,
        leaf_count_exponent,
        recover_leaf_index,
        recover_x,
    )

    out: list[dict[str, Any]] = []
    for i, (leaf_index, n_leaves) in enumerate(_REUSE_GUARDS):
        nonce = _bytes(f"key_schedule_nonce {i}", cs.id, cs.aead.nn)
        draw = int.from_bytes(_bytes(f"x draw {i}", cs.id, 4), "big")
        x = class_member(draw, leaf_index, leaf_count_exponent(n_leaves))
        prp_key = derive_prp_key(cs, secret, nonce)
        if "p10-bit-reversed" in faults:
            y = _bitrev_bytes(prp_encrypt(prp_key, _bitrev_bytes(x)))
        else:
            y = prp_encrypt(prp_key, x)
        rg = y.to_bytes(4, "big")
        out.append({
            "leaf_node_secret": secret.hex(), "key_schedule_nonce": nonce.hex(),
            "leaf_index": leaf_index, "n_leaves": n_leaves, "x": x,
            "prp_key": prp_key.hex(), "reuse_guard": rg.hex(),
            "recovered_x": recover_x(cs, secret, nonce, rg),
            "recovered_leaf_index": int(recover_leaf_index(cs, secret, nonce, rg, n_leaves)),
        })
    return out


_GENERATIONS: tuple[int, ...] = (0, 1, 255, 65536, 0xFFFFFFFF)


def _gen_generation_ids(cs: CipherSuite, secret: bytes, faults: frozenset[str]
                        ) -> dict[str, Any]:
    from mlsvc.vc.codepoints import RatchetType
    from mlsvc.vc.generation_id import generation_id_for_context, private_message_context

    ids: list[dict[str, Any]] = []
    for rt in (RatchetType.APPLICATION, RatchetType.HANDSHAKE):
        for g in _GENERATIONS:
            ctx = private_message_context(g, rt)
            if "q4-wide-context" in faults:
                ctx = g.to_bytes(4, "big") + int(rt).to_bytes(2, "big")
            ids.append({"generation": g, "ratchet_type": int(rt),
                        "private_message_context": ctx.hex(),
                        "generation_id": generation_id_for_context(cs, secret, ctx).hex()})
    return {"generation_id_secret": secret.hex(), "ids": ids}


def _gen_encodings(cs: CipherSuite, epoch_id: bytes) -> dict[str, Any]:
    from mlsvc.ext.safe_aad import encode_items
    from mlsvc.vc.actions import ExternalJoin, KeyPackageInfo, KeyPackageUpload
    from mlsvc.vc.actions import VirtualClientAction as Action
    from mlsvc.vc.codepoints import DEFAULT_VC_CODEPOINTS

    cid = DEFAULT_VC_CODEPOINTS.virtual_client_action
    infos = tuple(KeyPackageInfo(_bytes(f"kp ref {i}", cs.id, cs.nh),
                                 _bytes(f"kp random {i}", cs.id, cs.nh)) for i in range(2))
    kpu = KeyPackageUpload(epoch_id, infos)
    ej = ExternalJoin(_bytes("external join group id", cs.id, 16))
    return {
        "component_id": cid,
        "key_package_upload": {
            "epoch_id": epoch_id.hex(),
            "key_package_info": [{"key_package_ref": i.key_package_ref.hex(),
                                  "random": i.random.hex()} for i in infos],
            "encoded": kpu.encode().hex(), "action": Action(kpu).encode().hex(),
            "safe_aad": encode_items({cid: Action(kpu).encode()}).hex(),
        },
        "external_join": {
            "group_id": ej.group_id.hex(), "encoded": ej.encode().hex(),
            "action": Action(ej).encode().hex(),
            "safe_aad": encode_items({cid: Action(ej).encode()}).hex(),
        },
    }


# --- the scenario ----------------------------------------------------------------------------

_EMULATORS = ("phone", "laptop", "tablet")
_VC_ID = "alice"
_MEMBER = "bob"
_APPLICATION_DATA = b"hello from the tablet"


def _published_epoch(em: Any, application_export: bytes) -> dict[str, Any]:
    """What the scenario publishes of an emulation epoch the emulator just opened (its
    PPRF not yet punctured, so the root is epoch_base_secret)."""
    ep = em.epochs.latest
    nodes = ep.pprf.nodes()
    assert len(nodes) == 1 and nodes[0].prefix_length == 0
    return {
        "epoch": ep.epoch, "application_export_secret": application_export.hex(),
        "epoch_id": ep.epoch_id.hex(), "epoch_base_secret": nodes[0].node_secret.hex(),
        "epoch_encryption_key": ep.encryption_key.hex(),
        "generation_id_secret": ep.generation_id_secret.hex(),
        "n_leaves": ep.leaf_count,
        "roster": [{"leaf_index": i, "emulator": ep.roster[i].decode()}
                   for i in sorted(ep.roster)],
    }


def _auth(group: Any) -> dict[str, str]:
    """What a reader needs to check a PublicMessage's membership tag (RFC 9420 §6.2):
    the sender's GroupContext and membership_key of the epoch it is sent in."""
    return {"group_context": group.context.encode().hex(),
            "membership_key": group.state.secrets.membership_key.hex()}


def _pending_export(em: Any) -> bytes:
    """The application_export_secret of the epoch an emulator's pending emulation Commit
    opens (the generator reads it before the emulator takes it, ext §4.4)."""
    from mlsvc.ext.codepoints import APPLICATION_EXPORT_LABEL

    pending = em.emu.pending_commit
    assert pending is not None
    secret: bytes = pending[1].secrets.additional[APPLICATION_EXPORT_LABEL]
    return secret


def _gen_scenario(suite: int) -> dict[str, Any]:
    """A virtual client of three emulators joins a group of one ordinary member by a
    KeyPackage, commits, and sends; every wire message through the DS, in order."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.ds import DeliveryKind, DeliveryService
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.events import ApplicationMessage
    from mlsvc.group.group import Group
    from mlsvc.messages.key_package import KeyPackage
    from mlsvc.messages.mls_message import MLSMessage
    from mlsvc.messages.proposals import Add
    from mlsvc.tree.secret_tree import RatchetType, SecretTree
    from mlsvc.virtual_client import VirtualClient

    cs = get_suite(suite)
    seed = _SEED + b"/scenario/" + str(suite).encode()
    messages: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    ds = DeliveryService()
    vc = VirtualClient.create(ds, _VC_ID, list(_EMULATORS), suite=suite, seed=seed)
    ems = vc.emulators
    egid = ems[_EMULATORS[0]].emu.group_id
    def emulation(name: str, make: Callable[[Any], Any]) -> Any:
        """One emulation Commit: its new epoch is published (read before the emulator
        takes the exporter root, ext §4.4) and its message recorded."""
        vc.sync([name])
        em = ems[name]
        auth = _auth(em.emu)
        out = make(em)
        export = _pending_export(em)
        assert vc.submit(name, out).accepted
        epochs.append(_published_epoch(em, export))
        messages.append({"kind": "emulation_commit", "sender": name, "group_id": egid.hex(),
                         "message": out.message.hex(), **auth, "opens_epoch": em.emu.epoch,
                         "action": None if out.action is None else out.action.encode().hex()})
        return out

    # 1. laptop's own emulation Commit (emulation epoch 2, published)
    emulation("laptop", lambda em: em.emulation_commit())
    # 2. phone announces a KeyPackage from epoch 2 (KeyPackageUpload; P16), then uploads it
    emulation("phone", lambda em: em.create_key_packages(1))
    kp_message = ds.fetch_key_package(_VC_ID)
    kp = MLSMessage.decode(kp_message).body
    assert isinstance(kp, KeyPackage)
    messages.append({"kind": "key_package", "sender": "phone", "message": kp_message.hex()})
    # 3. bob creates the group, adds the virtual client and welcomes it
    gid = _bytes("higher-level group id", suite, 16)
    brng = SeededRandom(seed + b"/" + _MEMBER.encode())
    bob = Group.create(cs, Identity.basic(_MEMBER.encode(), cs.signature.generate_key_pair(brng)),
                       GroupConfig(rng=brng, supported_extensions=(6,)), group_id=gid)
    ds.register_client(_MEMBER)
    ds.create_group(gid, 0, [_MEMBER])
    auth = _auth(bob)
    commit = bob.commit([Add(kp)])  # the Add by value, so the wire shows the KeyPackage
    assert ds.submit(_MEMBER, commit.commit).accepted and commit.welcome is not None
    bob.merge_pending_commit()
    ds.send_welcome(_MEMBER, gid, commit.welcome)
    ds.publish_group_info(gid, bob.group_info())
    messages.append({"kind": "member_commit", "sender": _MEMBER, "group_id": gid.hex(),
                     "message": commit.commit.hex(), **auth})
    messages.append({"kind": "welcome", "sender": _MEMBER, "group_id": gid.hex(),
                     "message": commit.welcome.hex()})
    vc.sync()
    # 4. tablet commits with a path from the virtual client's leaf (from emulation epoch 3)
    vc.sync(["tablet"])
    auth = _auth(ems["tablet"].groups[gid].group)
    out = ems["tablet"].vc_commit(gid)
    assert vc.submit("tablet", out).accepted
    messages.append({"kind": "vc_commit", "sender": "tablet", "group_id": gid.hex(),
                     "message": out.message.hex(), **auth})
    for d in ds.receive(_MEMBER):
        if d.kind is not DeliveryKind.WELCOME:
            bob.process(d.message)
    vc.sync()
    # 5. laptop sends an application message; bob reads it
    sender_data_secret = bob.state.secrets.sender_data_secret
    out = ems["laptop"].send_private_message(gid, _APPLICATION_DATA)
    assert vc.submit("laptop", out).accepted and out.generation_id is not None
    assert out.generation is not None
    vc_leaf = ems["laptop"].groups[gid].group.own_leaf
    content_key = SecretTree.from_state(cs, bob.state.secret_tree.state.copy()).peek_key(
        vc_leaf, RatchetType.APPLICATION, out.generation)[0]
    group_context = bob.context.encode()
    events = [bob.process(d.message) for d in ds.receive(_MEMBER)]
    app = [e for e in events if isinstance(e, ApplicationMessage)]
    assert len(app) == 1 and app[0].data == _APPLICATION_DATA
    vc.sync()
    laptop = ems["laptop"]
    laptop_leaf = int(laptop.epochs.by_id(laptop.groups[gid].active.epoch_id).own_leaf)
    messages.append({"kind": "application", "sender": "laptop", "group_id": gid.hex(),
                     "message": out.message.hex(),
                     "group_context": group_context.hex(),
                     "sender_data_secret": sender_data_secret.hex(),
                     "key_schedule_nonce": app[0].key_schedule_nonce.hex(),
                     "content_key": content_key.hex(),
                     "application_data": _APPLICATION_DATA.hex(),
                     "generation": app[0].generation, "reuse_guard": app[0].reuse_guard.hex(),
                     "emulator_leaf_index": laptop_leaf,
                     "generation_id": out.generation_id.hex()})
    return {"seed": seed.hex(), "emulators": list(_EMULATORS), "virtual_client": _VC_ID,
            "member": _MEMBER, "emulation_group_id": egid.hex(), "group_id": gid.hex(),
            "emulation_epochs": epochs, "messages": messages}


# --- the lifecycle sections: NewEmulatorClientState (P13) and ResyncMessage (P14) ------------

_LIFECYCLE_EMULATORS = ("phone", "laptop", "tablet")


class _ExportRecorder:
    """Records every application_export_secret the emulators take to open an emulation
    epoch, by epoch number, through the emulators' `export_observer` (the generator
    publishes the roots of the epochs a NewEmulatorClientState references; the emulators
    delete theirs)."""

    def __init__(self) -> None:
        self.roots: dict[int, bytes] = {}

    def __call__(self, epoch: int, root: bytes) -> None:
        self.roots.setdefault(epoch, root)


def _published_root(cs: CipherSuite, epoch: int, root: bytes) -> dict[str, Any]:
    """An emulation epoch's exporter root and the epoch values from it (library code)."""
    from mlsvc.ext.safe_export import SafeExporter
    from mlsvc.types import LeafIndex
    from mlsvc.vc.codepoints import DEFAULT_VC_CODEPOINTS
    from mlsvc.vc.epoch import open_epoch

    ees = SafeExporter(cs, root).export(DEFAULT_VC_CODEPOINTS.derivation_info)
    ep = open_epoch(cs, ees, epoch, 1, LeafIndex(0), {})
    assert ep.pprf is not None and ep.encryption_key is not None
    return {"epoch": epoch, "application_export_secret": root.hex(),
            "epoch_id": ep.epoch_id.hex(), "epoch_base_secret": ep.pprf.nodes()[0]
            .node_secret.hex(), "epoch_encryption_key": ep.encryption_key.hex(),
            "generation_id_secret": ep.generation_id_secret.hex()}


def _identity(leaf: Any) -> str:
    identity: bytes = leaf.credential.identity
    return identity.decode()


def _vc_leaf(group: Any, name: bytes) -> int:
    for i, leaf in group.members():
        if getattr(leaf.credential, "identity", None) == name:
            return int(i)
    raise AssertionError("the virtual client is not in the group")


_MEMBER_SECRETS = ("sender_data_secret", "exporter_secret", "external_secret",
                   "confirmation_key", "membership_key", "resumption_psk", "init_secret")


def _member_view(group_id: bytes, mode: str, g: Any) -> dict[str, Any]:
    """What the group's other member publishes of its epoch (its own state, RFC 9420)."""
    st = g.state
    return {"group_id": group_id.hex(), "mode": mode, "epoch": g.epoch,
            "epoch_authenticator": g.epoch_authenticator.hex(),
            "vc_leaf_index": _vc_leaf(g, _VC_ID.encode()),
            "group_context": g.context.encode().hex(),
            "interim_transcript_hash": st.interim_transcript_hash.hex(),
            "confirmation_tag": st.confirmation_tag.hex(),
            "epoch_secrets": {k: getattr(st.secrets, k).hex() for k in _MEMBER_SECRETS},
            "proposals": [_proposal_view(ref, rp) for ref, rp in sorted(st.proposals.items())],
            "encryption_secret": _untouched_root(st.secret_tree.state).hex(),
            "secret_tree_limits": [st.secret_tree.state.max_forward_distance,
                                   st.secret_tree.state.out_of_order_tolerance],
            "resumption_psks": [{"group_id": gid.hex(), "epoch": e, "psk": psk.hex()}
                                for (gid, e), psk in sorted(st.resumption_psks.items())]}


def _untouched_root(tree: Any) -> bytes:
    """The member's encryption_secret (RFC 9420 §8): its secret tree's root, which it
    still holds because nothing was encrypted in this epoch yet."""
    root = tree.leaf_count - 1
    assert set(tree.nodes) == {root} and not tree.handshake and not tree.application
    secret: bytes = tree.nodes[root]
    return secret


def _proposal_view(ref: bytes, rp: Any) -> dict[str, Any]:
    return {"ref": ref.hex(), "proposal": _proposal_bytes(rp.proposal).hex(),
            "sender": _sender_bytes(rp.sender).hex()}


@cache
def _lifecycle(suite: int) -> dict[str, Any]:
    """One seeded scenario for both lifecycle sections: a virtual client of three
    emulators in g1 (joined by Welcome from bob) and g2 (joined by external commit, carol
    the other member), aged emulation epochs, a sent Update, one KeyPackage still
    announced; the phone's NewEmulatorClientState (g2 marked for an external join);
    then the phone removes the tablet and sends the ResyncMessage."""
    from mlsvc.crypto.random import SeededRandom
    from mlsvc.ds import DeliveryKind, DeliveryService
    from mlsvc.group.config import GroupConfig, Identity
    from mlsvc.group.events import ApplicationMessage, CommitApplied
    from mlsvc.group.group import Group
    from mlsvc.messages.key_package import KeyPackage
    from mlsvc.messages.mls_message import MLSMessage
    from mlsvc.messages.proposals import Add
    from mlsvc.tree.secret_tree import RatchetType, SecretTree
    from mlsvc.vc import lifecycle
    from mlsvc.vc.emulator import OutgoingKind
    from mlsvc.virtual_client import Event, VirtualClient

    cs = get_suite(suite)
    seed = _SEED + b"/lifecycle/" + str(suite).encode()
    g1, g2 = _bytes("lifecycle group 1", suite, 16), _bytes("lifecycle group 2", suite, 16)

    def member(name: str, gid: bytes) -> Group:
        rng = SeededRandom(seed + b"/" + name.encode())
        g = Group.create(cs, Identity.basic(name.encode(), cs.signature.generate_key_pair(rng)),
                         GroupConfig(rng=rng, supported_extensions=(6,)), group_id=gid)
        ds.register_client(name)
        ds.create_group(gid, 0, [name])
        ds.publish_group_info(gid, g.group_info())
        return g

    def pump(name: str, g: Group) -> None:
        for d in ds.receive(name):
            if d.kind is not DeliveryKind.WELCOME:
                g.process(d.message)

    rosters: dict[int, list[dict[str, Any]]] = {}  # the emulation group's, by epoch

    def roster(event: Event) -> None:
        em = vc.emulators[event.emulator].emu
        rosters.setdefault(em.epoch, [{"leaf_index": int(i), "emulator": _identity(leaf)}
                                      for i, leaf in em.members()])

    exports = _ExportRecorder()
    ds = DeliveryService()
    vc = VirtualClient.create(ds, _VC_ID, list(_LIFECYCLE_EMULATORS), suite=suite,
                              seed=seed, export_observer=exports)
    egid = vc.emulation_group_id
    first = vc.emulators["phone"].emu
    rosters[first.epoch] = [{"leaf_index": int(i), "emulator": _identity(leaf)}
                            for i, leaf in first.members()]
    vc.listeners.append(roster)
    vc.upload_key_packages("phone", 2)  # one for bob, one stays announced
    bob = member("bob", g1)
    kp = MLSMessage.decode(ds.fetch_key_package(_VC_ID)).body
    assert isinstance(kp, KeyPackage)
    out = bob.commit([Add(kp)])
    assert ds.submit("bob", out.commit).accepted and out.welcome is not None
    bob.merge_pending_commit()
    ds.send_welcome("bob", g1, out.welcome)
    vc.sync()
    carol = member("carol", g2)
    vc.external_join("laptop", g2)
    vc.sync()
    pump("carol", carol)
    vc.emulation_commit("tablet")  # the older epochs leave the P19 window
    vc.emulation_commit("laptop")
    vc.update("laptop", g1)  # a sent Update, not committed yet (ProposedLeaf)
    vc.sync()
    pump("bob", bob)
    phone = vc.emulators["phone"]
    state = lifecycle.state_for_new_emulator(phone, external=[g2])
    referenced = sorted(e.epoch for e in state.epochs)
    necs = {
        "seed": seed.hex(), "virtual_client": _VC_ID, "provider": "phone",
        "emulation_group_id": egid.hex(),
        "emulation_epochs": [dict(_published_root(cs, n, exports.roots[n]),
                                  roster=rosters[n]) for n in referenced],
        "groups": [_member_view(gid, mode, g)
                   for gid, mode, g in ((g1, "state_transfer", bob),
                                        (g2, "external_join", carol))],
        "key_package_refs": [r.hex() for r in ds.outstanding_key_packages(_VC_ID)],
        "encoded": state.encode().hex(),
        "signature_private_key": state.signature_private_key.hex(),
        "epochs": [{"epoch": e.epoch, "own_leaf": int(e.own_leaf),
                    "pprf_nodes": None if e.pprf is None else len(e.pprf.nodes()),
                    "epoch_encryption_key": e.encryption_key is not None,
                    "retained": len(e.retained)} for e in state.epochs],
        "proposed": sum(len(g.proposed) for g in state.groups),
    }
    # the removal (P21): the laptop reads the ResyncMessage the phone sends
    seen: dict[str, Any] = {}

    def listen(event: Event) -> None:
        if event.emulator != "laptop" or event.delivery.group_id != egid:
            return
        em = vc.emulators["laptop"].emu
        if isinstance(event.received.event, CommitApplied):
            seen["before"] = (em.state.secrets.sender_data_secret,
                              em.state.secret_tree.state.copy(), em.context.encode(),
                              em.epoch)
        elif isinstance(event.received.event, ApplicationMessage):
            seen["app"] = (event.delivery, event.received.event)

    vc.listeners.append(listen)
    vc.remove_emulator("phone", "tablet")
    vc.sync(["laptop"])
    resync = [o for n, o, v in vc.sent if o.kind is OutgoingKind.EMULATION_APPLICATION
              and v.accepted]
    assert len(resync) == 1 and "app" in seen
    sds, tree, context, epoch = seen["before"]
    delivery, ev = seen["app"]
    assert delivery.message == resync[0].message
    key, _ = SecretTree.from_state(cs, tree).peek_key(ev.sender, RatchetType.APPLICATION,
                                                      ev.generation)
    laptop = vc.emulators["laptop"]
    sender_leaf = laptop.emu.tree.leaf(ev.sender)
    assert sender_leaf is not None
    rm = {
        "group_id": egid.hex(), "sender": "phone", "removed": "tablet", "epoch": epoch,
        "message": resync[0].message.hex(), "group_context": context.hex(),
        "sender_data_secret": sds.hex(), "key_schedule_nonce": ev.key_schedule_nonce.hex(),
        "content_key": key.hex(), "sender_signature_key": sender_leaf.signature_key.hex(),
        "signature_private_key": laptop.vc_signing_key.hex(),
        "encoded": ev.data.hex(),
    }
    return {"new_emulator_client_state": necs, "resync_message": rm}


def _gen_necs(suite: int) -> dict[str, Any]:
    value: dict[str, Any] = _lifecycle(suite)["new_emulator_client_state"]
    return value


def _gen_resync(suite: int) -> dict[str, Any]:
    value: dict[str, Any] = _lifecycle(suite)["resync_message"]
    return value


def _case(suite: int, faults: frozenset[str]) -> Case:
    cs = get_suite(suite)
    epochs = [_gen_epoch(cs, _bytes(f"emulation epoch_secret {i}", suite, cs.nh))
              for i in range(2)]
    base = bytes.fromhex(epochs[0]["epoch_base_secret"])
    ops = _gen_operations(cs, base, faults)
    keys = [_gen_keys(cs, bytes.fromhex(d["operation_secret"]), base, faults)
            for d in ops["derivations"][:2]]
    infos = [_gen_derivation_info(cs, epochs[0], bytes.fromhex(k["encryption_public_key"]),
                                  d["leaf_index"], bytes.fromhex(d["random"]), faults)
             for k, d in zip(keys, ops["derivations"], strict=False)]
    case: Case = {
        "cipher_suite": suite,
        "epoch_secrets": epochs,
        "operations": ops,
        "operation_keys": keys,
        "derivation_info": infos,
        "reuse_guard": _gen_reuse_guards(cs, bytes.fromhex(keys[0]["encryption_key_secret"]),
                                         faults),
        "generation_id": _gen_generation_ids(cs, bytes.fromhex(
            epochs[0]["generation_id_secret"]), faults),
        "encodings": _gen_encodings(cs, bytes.fromhex(epochs[0]["epoch_id"])),
        "scenario": _gen_scenario(suite),
    }
    for name, section in LIFECYCLE_SECTIONS.items():
        case[name] = section.generate(suite)
    return case


DRAFT_00, LATEST = "draft-00", "latest"
PROFILES = (DRAFT_00, LATEST)
"""The profiles' names (`mlsvc.vc.profiles.Profile` values; plain strings here so that
the checker half imports nothing from mlsvc.vc)."""


def _profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
    return str(profile)


def generate(suites: tuple[int, ...] = SUITES, faults: frozenset[str] = frozenset(),
             profile: str = DRAFT_00) -> list[Case]:
    """The vector file's content (every RFC 9420 suite by default). `faults` names
    generator bugs from FAULTS to inject (tests only; for the latest profile
    `vc_latest.FAULTS`). `profile`: "draft-00" (this module) or "latest"
    (`mlsvc.conformance.vc_latest`)."""
    if _profile(profile) == LATEST:
        from mlsvc.conformance import vc_latest

        return vc_latest.generate(suites, faults)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults: {sorted(unknown)}")
    _lifecycle.cache_clear()  # one lifecycle scenario per suite and generation
    return [_case(s, frozenset(faults)) for s in suites]


def dump(cases: list[Case]) -> str:
    """The canonical text of a vector file (what is committed in vectors/generated)."""
    return json.dumps(cases, indent=2) + "\n"


def write(path: Path, profile: str = DRAFT_00) -> int:
    """Generate and write the file of `profile`; returns the number of cases (one per
    suite)."""
    cases = generate(profile=profile)
    path.write_text(dump(cases))
    return len(cases)


# =========================================================================================
# The checker (independent of the generator: see the module docstring)
# =========================================================================================

# draft-00 §5.2, §5.3, §5.8, §5.9 and the profile, restated (labels without "MLS 1.0 ")
_L_APPLICATION_EXPORT = b"application_export"
_L_EPOCH = {"epoch_id": b"Epoch ID", "epoch_base_secret": b"Base Secret",
            "epoch_encryption_key": b"Encryption Key",
            "generation_id_secret": b"Generation ID Secret"}
_L_SUB = {"signature_key_secret": b"Signature Key", "encryption_key_secret": b"Encryption Key",
          "init_key_secret": b"Init Key", "path_generation_secret": b"Path Generation",
          "external_init_secret": b"External Init"}
_DERIVATION_INFO_ID = 0x8001  # P7
_ACTION_ID = 0x8002  # P7
_APP_DATA_DICTIONARY = 0x0006  # extensions-09 §7.2
_EXPORTER_DEPTH = 16
_VC_DEPTH = 32
_KP_REF_LABEL = b"MLS 1.0 KeyPackage Reference"


# --- TLS presentation language, written again -------------------------------------------------


def _v(n: int) -> bytes:
    """RFC 9420 §2.1.2 variable-length integer."""
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x80000000).to_bytes(4, "big")
    raise Mismatch(f"length {n} too large for a varint")


def _o(data: bytes) -> bytes:
    return _v(len(data)) + data


def _u(n: int, width: int) -> bytes:
    return n.to_bytes(width, "big")


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise Mismatch(f"{self.what}: truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def varint(self) -> int:
        first = self.uint(1)
        prefix = first >> 6
        if prefix == 3:
            raise Mismatch(f"{self.what}: invalid varint prefix")
        n = first & 0x3F
        for _ in range((1 << prefix) - 1):
            n = (n << 8) | self.uint(1)
        return n

    def opaque(self) -> bytes:
        return self.take(self.varint())

    def end(self) -> None:
        if self.pos != len(self.data):
            raise Mismatch(f"{self.what}: {len(self.data) - self.pos} trailing bytes")


# --- field access: exact key sets, typed values ------------------------------------------------


def _fields(obj: Any, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Mismatch(f"{what}: not an object")
    missing, unknown = keys - set(obj), set(obj) - keys
    if missing or unknown:
        raise Mismatch(f"{what}: missing fields {sorted(missing)}, unknown fields "
                       f"{sorted(unknown)}")
    return obj


def _hex(obj: dict[str, Any], key: str, what: str, length: int | None = None) -> bytes:
    value = obj[key]
    if not isinstance(value, str) or value != value.lower():
        raise Mismatch(f"{what}.{key}: not a lowercase hex string")
    try:
        out = bytes.fromhex(value)
    except ValueError:
        raise Mismatch(f"{what}.{key}: not hex") from None
    if length is not None and len(out) != length:
        raise Mismatch(f"{what}.{key}: {len(out)} bytes, want {length}")
    return out


def _int(obj: dict[str, Any], key: str, what: str) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Mismatch(f"{what}.{key}: not a non-negative integer")
    return value


def _list(obj: dict[str, Any], key: str, what: str) -> list[Any]:
    value = obj[key]
    if not isinstance(value, list) or not value:
        raise Mismatch(f"{what}.{key}: not a non-empty list")
    return value


def _same(what: str, got: object, want: object) -> None:
    if got != want:
        g = got.hex() if isinstance(got, bytes) else repr(got)
        w = want.hex() if isinstance(want, bytes) else repr(want)
        raise Mismatch(f"{what}: recomputed {g[:72]}, file has {w[:72]}")


# --- the PPRF (P2), walked and described again --------------------------------------------------


def _child(cs: CipherSuite, secret: bytes, bit: int) -> bytes:
    return expand_with_label(cs, secret, b"tree", b"right" if bit else b"left", cs.nh)


def _ref_node(cs: CipherSuite, key: bytes, length: int, prefix: int) -> bytes:
    """The secret of the node at `prefix` (its first `length` path bits, MSB first)."""
    node = key
    for i in range(length):
        node = _child(cs, node, (prefix >> (length - 1 - i)) & 1)
    return node


def _ref_state(cs: CipherSuite, key: bytes, depth: int, punctured: list[int]) -> tuple[bytes, int]:
    """PPRFState after puncturing `punctured`: the maximal subtrees holding no punctured
    leaf (each the sibling of a punctured path whose subtree is clean), sorted by
    prefix. Returns (encoding, node count)."""
    if not punctured:
        kept = {(0, 0)}
    else:
        kept = set()
        for x in punctured:
            for length in range(1, depth + 1):
                sibling = (x >> (depth - length)) ^ 1
                if all(p >> (depth - length) != sibling for p in punctured):
                    kept.add((length, sibling))
    cache: dict[tuple[int, int], bytes] = {(0, 0): key}

    def secret(length: int, prefix: int) -> bytes:
        got = cache.get((length, prefix))
        if got is None:
            got = _child(cs, secret(length - 1, prefix >> 1), prefix & 1)
            cache[(length, prefix)] = got
        return got

    body = b""
    for length, prefix in sorted(kept, key=lambda n: n[1] << (depth - n[0])):
        nbytes = (length + 7) // 8
        packed = (prefix << (8 * nbytes - length)).to_bytes(nbytes, "big") if nbytes else b""
        body += _u(length, 1) + _o(packed) + _o(secret(length, prefix))
    return _o(body), len(kept)


# --- FF1 (NIST SP 800-38G Rev. 1, Algorithms 6-8), radix 2, n = 32, empty tweak -------------


def _ff1(key: bytes, x: int, decrypt: bool) -> int:
    radix, n, t = 2, 32, 0
    u, v = n // 2, n - n // 2
    b, d = 2, 8  # ceil(ceil(v log2 radix) / 8); 4 ceil(b / 4) + 4
    aes = aes_block_encryptor(key)  # the AES-128 block function (Q5), one block at a time

    def prf(data: bytes) -> bytes:  # CBC-MAC, zero IV
        y = bytes(16)
        for i in range(0, len(data), 16):
            y = aes.update(bytes(p ^ q for p, q in zip(y, data[i:i + 16], strict=True)))
        return y

    def num(numerals: list[int]) -> int:
        value = 0
        for digit in numerals:
            value = value * radix + digit
        return value

    def numerals_of(value: int, m: int) -> list[int]:
        return [(value // radix ** (m - 1 - j)) % radix for j in range(m)]

    p = bytes([1, 2, 1]) + _u(radix, 3) + bytes([10, u % 256]) + _u(n, 4) + _u(t, 4)
    xs = numerals_of(x, n)  # P10: most significant bit first
    a, bb = xs[:u], xs[u:]
    rounds = range(9, -1, -1) if decrypt else range(10)
    for i in rounds:
        hashed = a if decrypt else bb
        q = bytes((-t - b - 1) % 16) + bytes([i]) + _u(num(hashed), b)
        r = prf(p + q)
        y = int.from_bytes(r[:d], "big")
        m = u if i % 2 == 0 else v
        if decrypt:
            c = (num(bb) - y) % radix**m
            a, bb = numerals_of(c, m), a
        else:
            c = (num(a) + y) % radix**m
            a, bb = bb, numerals_of(c, m)
    return num(a + bb)


# --- sections -------------------------------------------------------------------------------


def _epoch_outputs(cs: CipherSuite, root: bytes) -> dict[str, bytes]:
    ees = _ref_node(cs, root, _EXPORTER_DEPTH, _DERIVATION_INFO_ID)
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
        root = derive_secret(cs, _hex(e, "epoch_secret", what, cs.nh), _L_APPLICATION_EXPORT)
        _same(f"{what}.application_export_secret", root,
              _hex(e, "application_export_secret", what))
        for k, got in _epoch_outputs(cs, root).items():
            _same(f"{what}.{k}", got, _hex(e, k, what))


def _hash_input(leaf_index: int, random: bytes) -> bytes:
    return _u(leaf_index, 4) + _o(random)


def _leaf(cs: CipherSuite, leaf_index: int, random: bytes) -> int:
    return int.from_bytes(cs.hash(_hash_input(leaf_index, random))[:4], "big")  # P3


def _check_operations(cs: CipherSuite, value: Any) -> None:
    o = _fields(value, "operations", {"epoch_base_secret", "derivations", "resample"})
    base = _hex(o, "epoch_base_secret", "operations", cs.nh)
    punctured: list[int] = []
    dkeys = {"leaf_index", "random", "hash_input", "pprf_input", "pprf_leaf",
             "operation_secret", "state", "state_nodes"}
    for i, raw in enumerate(_list(o, "derivations", "operations")):
        what = f"operations.derivations[{i}]"
        d = _fields(raw, what, dkeys)
        li, random = _int(d, "leaf_index", what), _hex(d, "random", what, cs.nh)  # Q6
        _same(f"{what}.hash_input", _hash_input(li, random), _hex(d, "hash_input", what))
        _same(f"{what}.pprf_input", cs.hash(_hash_input(li, random)),
              _hex(d, "pprf_input", what))
        x = _leaf(cs, li, random)
        _same(f"{what}.pprf_leaf", x, _int(d, "pprf_leaf", what))
        if x in punctured:
            raise Mismatch(f"{what}: leaf {x} already punctured, the deriver must resample")
        punctured.append(x)
        _check_puncture(cs, base, punctured, x, d, what)
    what = "operations.resample"
    r = _fields(o["resample"], what, {"leaf_index", "draws", "operation_secret", "state",
                                      "state_nodes"})
    li = _int(r, "leaf_index", what)
    draws = _list(r, "draws", what)
    for j, raw in enumerate(draws):
        dw = f"{what}.draws[{j}]"
        d = _fields(raw, dw, {"random", "pprf_leaf", "punctured"})
        x = _leaf(cs, li, _hex(d, "random", dw, cs.nh))
        _same(f"{dw}.pprf_leaf", x, _int(d, "pprf_leaf", dw))
        _same(f"{dw}.punctured", x in punctured, d["punctured"])
        if (j < len(draws) - 1) != (x in punctured):
            raise Mismatch(f"{dw}: every draw but the last must hit a punctured leaf (P3)")
    punctured.append(x)
    _check_puncture(cs, base, punctured, x, r, what)


def _check_puncture(cs: CipherSuite, base: bytes, punctured: list[int], x: int,
                    d: dict[str, Any], what: str) -> None:
    """One derivation: its operation secret, and the PPRF state after puncturing it."""
    _same(f"{what}.operation_secret", _ref_node(cs, base, _VC_DEPTH, x),
          _hex(d, "operation_secret", what))
    state, count = _ref_state(cs, base, _VC_DEPTH, punctured)
    _same(f"{what}.state", state, _hex(d, "state", what))
    _same(f"{what}.state_nodes", count, _int(d, "state_nodes", what))


def _keys_of(cs: CipherSuite, operation_secret: bytes) -> dict[str, bytes]:
    """P4, P17 sub-secrets; P5, Q12 key pairs (emulation and group suite the same, Q3)."""
    s = {k: derive_secret(cs, operation_secret, label) for k, label in _L_SUB.items()}
    sig = cs.signature.derive_key_pair(s["signature_key_secret"])
    enc = cs.kem.derive_key_pair(s["encryption_key_secret"])
    init = cs.kem.derive_key_pair(s["init_key_secret"])
    return {**s, "signature_private_key": sig[0], "signature_public_key": sig[1],
            "encryption_private_key": enc[0], "encryption_public_key": enc[1],
            "init_private_key": init[0], "init_public_key": init[1],
            "external_init_kem_output": cs.kem.derive_key_pair(s["external_init_secret"])[1]}


_KEY_FIELDS = {"operation_secret", *_L_SUB, "signature_private_key", "signature_public_key",
               "encryption_private_key", "encryption_public_key", "init_private_key",
               "init_public_key", "external_init_kem_output"}


def _check_operation_keys(cs: CipherSuite, value: Any) -> None:
    for i, raw in enumerate(_list({"v": value}, "v", "operation_keys")):
        what = f"operation_keys[{i}]"
        k = _fields(raw, what, _KEY_FIELDS)
        for name, got in _keys_of(cs, _hex(k, "operation_secret", what, cs.nh)).items():
            _same(f"{what}.{name}", got, _hex(k, name, what))


def _derivation_info(cs: CipherSuite, eek: bytes, epoch_id: bytes, encryption_key: bytes,
                     leaf_index: int, random: bytes) -> dict[str, bytes]:
    context = _o(encryption_key)  # Q1
    key = expand_with_label(cs, eek, b"key", context, cs.aead.nk)  # P6
    nonce = expand_with_label(cs, eek, b"nonce", context, cs.aead.nn)
    tbe = _u(leaf_index, 4) + _o(random)
    ct = cs.aead.seal(key, nonce, epoch_id, tbe)  # Q2: AAD = raw epoch_id
    component = _o(epoch_id) + _o(ct)
    dictionary = _o(_u(_DERIVATION_INFO_ID, 2) + _o(component))  # Q11
    return {"key_context": context, "key": key, "nonce": nonce, "epoch_info_tbe": tbe,
            "ciphertext": ct, "component": component,
            "leaf_extension": _u(_APP_DATA_DICTIONARY, 2) + _o(dictionary)}


def _check_derivation_info(cs: CipherSuite, value: Any) -> None:
    keys = {"epoch_encryption_key", "epoch_id", "encryption_key", "leaf_index", "random",
            "key_context", "key", "nonce", "epoch_info_tbe", "ciphertext", "component",
            "leaf_extension"}
    for i, raw in enumerate(_list({"v": value}, "v", "derivation_info")):
        what = f"derivation_info[{i}]"
        e = _fields(raw, what, keys)
        out = _derivation_info(cs, _hex(e, "epoch_encryption_key", what, cs.nh),
                               _hex(e, "epoch_id", what, cs.nh),
                               _hex(e, "encryption_key", what), _int(e, "leaf_index", what),
                               _hex(e, "random", what, cs.nh))
        for name, got in out.items():
            _same(f"{what}.{name}", got, _hex(e, name, what))


def _check_reuse_guard(cs: CipherSuite, value: Any) -> None:
    keys = {"leaf_node_secret", "key_schedule_nonce", "leaf_index", "n_leaves", "x",
            "prp_key", "reuse_guard", "recovered_x", "recovered_leaf_index"}
    for i, raw in enumerate(_list({"v": value}, "v", "reuse_guard")):
        what = f"reuse_guard[{i}]"
        e = _fields(raw, what, keys)
        n, li, x = _int(e, "n_leaves", what), _int(e, "leaf_index", what), _int(e, "x", what)
        if n & (n - 1) or n > 1 << 32 or li >= n or x >= 1 << 32 or x % n != li:
            raise Mismatch(f"{what}: inputs break P9 (N a power of two, x mod N = "
                           "leaf_index)")
        prp_key = expand_with_label(cs, _hex(e, "leaf_node_secret", what, cs.nh),
                                    b"reuse guard",
                                    _hex(e, "key_schedule_nonce", what, cs.aead.nn), 16)
        _same(f"{what}.prp_key", prp_key, _hex(e, "prp_key", what))
        rg = _ff1(prp_key, x, decrypt=False).to_bytes(4, "big")
        _same(f"{what}.reuse_guard", rg, _hex(e, "reuse_guard", what))
        back = _ff1(prp_key, int.from_bytes(_hex(e, "reuse_guard", what, 4), "big"), True)
        _same(f"{what}.recovered_x", back, _int(e, "recovered_x", what))
        _same(f"{what}.recovered_leaf_index", back % n, _int(e, "recovered_leaf_index", what))


def _generation_id(cs: CipherSuite, secret: bytes, generation: int, ratchet_type: int
                   ) -> tuple[bytes, bytes]:
    context = _u(generation, 4) + _u(ratchet_type, 1)  # Q4: 5 bytes
    return context, expand_with_label(cs, secret, b"generation id", context, cs.nh)


def _check_generation_id(cs: CipherSuite, value: Any) -> None:
    g = _fields(value, "generation_id", {"generation_id_secret", "ids"})
    secret = _hex(g, "generation_id_secret", "generation_id", cs.nh)
    seen = set()
    for i, raw in enumerate(_list(g, "ids", "generation_id")):
        what = f"generation_id.ids[{i}]"
        e = _fields(raw, what, {"generation", "ratchet_type", "private_message_context",
                                "generation_id"})
        gen, rt = _int(e, "generation", what), _int(e, "ratchet_type", what)
        if gen >= 1 << 32 or rt not in (1, 2):
            raise Mismatch(f"{what}: generation not a uint32 or ratchet_type not 1 or 2")
        seen.add(rt)
        context, gid = _generation_id(cs, secret, gen, rt)
        _same(f"{what}.private_message_context", context,
              _hex(e, "private_message_context", what))
        _same(f"{what}.generation_id", gid, _hex(e, "generation_id", what))
    if seen != {1, 2}:
        raise Mismatch("generation_id: both ratchet types (application 1, handshake 2) needed")


def _safe_aad(component_id: int, data: bytes) -> bytes:
    return _o(_u(component_id, 2) + _o(data))


def _check_encodings(cs: CipherSuite, value: Any) -> None:
    e = _fields(value, "encodings", {"component_id", "key_package_upload", "external_join"})
    cid = _int(e, "component_id", "encodings")
    _same("encodings.component_id", cid, _ACTION_ID)
    what = "encodings.key_package_upload"
    k = _fields(e["key_package_upload"], what, {"epoch_id", "key_package_info", "encoded",
                                                "action", "safe_aad"})
    infos = b""
    for i, raw in enumerate(_list(k, "key_package_info", what)):
        iw = f"{what}.key_package_info[{i}]"
        info = _fields(raw, iw, {"key_package_ref", "random"})
        infos += _o(_hex(info, "key_package_ref", iw)) + _o(_hex(info, "random", iw))
    kpu = _o(_hex(k, "epoch_id", what)) + _o(infos)
    _same(f"{what}.encoded", kpu, _hex(k, "encoded", what))
    _same(f"{what}.action", _u(1, 1) + kpu, _hex(k, "action", what))
    _same(f"{what}.safe_aad", _safe_aad(cid, _u(1, 1) + kpu), _hex(k, "safe_aad", what))
    what = "encodings.external_join"
    j = _fields(e["external_join"], what, {"group_id", "encoded", "action", "safe_aad"})
    ej = _o(_hex(j, "group_id", what))
    _same(f"{what}.encoded", ej, _hex(j, "encoded", what))
    _same(f"{what}.action", _u(2, 1) + ej, _hex(j, "action", what))
    _same(f"{what}.safe_aad", _safe_aad(cid, _u(2, 1) + ej), _hex(j, "safe_aad", what))


# --- the scenario -----------------------------------------------------------------------------

_AUTH = {"group_context", "membership_key"}
_MESSAGE_FIELDS: dict[str, set[str]] = {
    "emulation_commit": {"group_id", "opens_epoch", "action", *_AUTH},
    "key_package": set(),
    "member_commit": {"group_id", *_AUTH},
    "welcome": {"group_id"},
    "vc_commit": {"group_id", *_AUTH},
    "application": {"group_id", "group_context", "sender_data_secret", "key_schedule_nonce",
                    "content_key", "application_data", "generation", "reuse_guard",
                    "emulator_leaf_index", "generation_id"},
}
_EPOCH_FIELDS = {"epoch", "application_export_secret", "epoch_id", "epoch_base_secret",
                 "epoch_encryption_key", "generation_id_secret", "n_leaves", "roster"}


@dataclass
class _Op:
    """A virtual-client operation the checker re-derived from a LeafNode."""

    epoch: dict[str, Any]
    keys: dict[str, bytes]


class _ScenarioCheck:
    def __init__(self, cs: CipherSuite, s: dict[str, Any]) -> None:
        self.cs = cs
        self.epochs: dict[bytes, dict[str, Any]] = {}  # epoch_id -> published epoch
        self.by_number: dict[int, dict[str, Any]] = {}
        # KeyPackageRef -> (epoch_id, random, deriver's leaf) from a KeyPackageUpload
        self.announced: dict[bytes, tuple[bytes, bytes, int]] = {}
        self.key_packages: dict[bytes, _Op] = {}  # ref -> op
        self.active: dict[bytes, tuple[int, _Op]] = {}  # group_id -> (vc leaf, op)
        self.welcomed: set[bytes] = set()
        self.member_added: set[bytes] = set()
        self.opened: set[int] = set()  # emulation epochs a recorded Commit opens
        self.s = s

    def epochs_section(self) -> None:
        for i, raw in enumerate(_list(self.s, "emulation_epochs", "scenario")):
            what = f"scenario.emulation_epochs[{i}]"
            e = _fields(raw, what, _EPOCH_FIELDS)
            root = _hex(e, "application_export_secret", what, self.cs.nh)
            for k, got in _epoch_outputs(self.cs, root).items():
                if k != "emulator_epoch_secret":
                    _same(f"{what}.{k}", got, _hex(e, k, what))
            n = _int(e, "n_leaves", what)
            roster = _list(e, "roster", what)
            leaves = []
            for j, r in enumerate(roster):
                rw = f"{what}.roster[{j}]"
                entry = _fields(r, rw, {"leaf_index", "emulator"})
                if entry["emulator"] not in self.s["emulators"]:
                    raise Mismatch(f"{rw}.emulator: not one of the scenario's emulators")
                leaves.append(_int(entry, "leaf_index", rw))
            if n & (n - 1) or any(li >= n for li in leaves):
                raise Mismatch(f"{what}: n_leaves not a power of two above every leaf (P9)")
            e = dict(e, _leaves=leaves, _root=root)
            self.epochs[bytes.fromhex(e["epoch_id"])] = e
            self.by_number[_int(e, "epoch", what)] = e

    def leaf_op(self, what: str, leaf: Any, expect_leaf: int | None = None,
                expect_random: bytes | None = None) -> _Op:
        """Open a vc LeafNode's DerivationInfo with the published epoch and re-derive
        the operation's keys; the LeafNode's keys must be the re-derived ones (§5.3)."""
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
            raise Mismatch(f"{what}: LeafNode without DerivationInfoComponent (Q11)")
        r = _Reader(data, f"{what} DerivationInfoComponent")
        epoch_id, ct = r.opaque(), r.opaque()
        r.end()
        epoch = self.epochs.get(epoch_id)
        if epoch is None:
            raise Mismatch(f"{what}: DerivationInfo names no published emulation epoch")
        eek = bytes.fromhex(epoch["epoch_encryption_key"])
        context = _o(leaf.encryption_key)
        key = expand_with_label(cs, eek, b"key", context, cs.aead.nk)
        nonce = expand_with_label(cs, eek, b"nonce", context, cs.aead.nn)
        try:
            tbe = cs.aead.open(key, nonce, epoch_id, ct)
        except MLSError:
            raise Mismatch(f"{what}: DerivationInfo does not decrypt under the published "
                           "epoch_encryption_key (P6, Q1, Q2)") from None
        t = _Reader(tbe, f"{what} EpochInfoTBE")
        leaf_index, random = t.uint(4), t.opaque()
        t.end()
        if len(random) != cs.nh:
            raise Mismatch(f"{what}: random of {len(random)} bytes (Q6)")
        if leaf_index not in epoch["_leaves"]:
            raise Mismatch(f"{what}: leaf_index {leaf_index} is no emulator of that epoch")
        if expect_leaf is not None:
            _same(f"{what}: EpochInfoTBE.leaf_index", leaf_index, expect_leaf)
        if expect_random is not None:
            _same(f"{what}: EpochInfoTBE.random", random, expect_random)
        x = _leaf(cs, leaf_index, random)
        base = bytes.fromhex(epoch["epoch_base_secret"])
        keys = _keys_of(cs, _ref_node(cs, base, _VC_DEPTH, x))
        _same(f"{what}: LeafNode.encryption_key", keys["encryption_public_key"],
              leaf.encryption_key)
        _same(f"{what}: LeafNode.signature_key", keys["signature_public_key"],
              leaf.signature_key)
        return _Op(epoch, keys)

    def message(self, i: int, raw: Any) -> None:
        from mlsvc.messages.commit import Commit
        from mlsvc.messages.framing import PublicMessage
        from mlsvc.messages.key_package import KeyPackage
        from mlsvc.messages.mls_message import MLSMessage
        from mlsvc.messages.proposals import Add
        from mlsvc.messages.welcome import Welcome

        what = f"scenario.messages[{i}]"
        if not isinstance(raw, dict) or raw.get("kind") not in _MESSAGE_FIELDS:
            raise Mismatch(f"{what}: no known kind")
        kind = raw["kind"]
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
        if kind in ("emulation_commit", "member_commit", "vc_commit"):
            if not isinstance(body, PublicMessage) or not isinstance(body.content.content,
                                                                     Commit):
                raise Mismatch(f"{what}: not a Commit in a PublicMessage")
            self.membership_tag(what, m, wire, body)
        if kind == "emulation_commit":
            assert isinstance(body, PublicMessage)
            _same(f"{what}.group_id", body.content.group_id,
                  bytes.fromhex(self.s["emulation_group_id"]))
            _same(f"{what}.opens_epoch", body.content.epoch + 1, _int(m, "opens_epoch", what))
            self.opened.add(body.content.epoch + 1)
            self.emulation_action(what, m, body.content.authenticated_data,
                                  body.content.epoch, body.content.sender.index)
        elif kind == "welcome":
            if not isinstance(body, Welcome):
                raise Mismatch(f"{what}: not a Welcome")
            _same(f"{what}.cipher_suite", body.cipher_suite, cs.id)
            for s in body.secrets:
                op = self.key_packages.get(s.new_member)
                if op is None or s.new_member not in self.member_added:
                    raise Mismatch(f"{what}: new_member names no KeyPackage of the "
                                   "virtual client added by the member")
                self.open_welcome(what, op, s.encrypted_group_secrets.kem_output,
                                  s.encrypted_group_secrets.ciphertext,
                                  body.encrypted_group_info)
                self.welcomed.add(s.new_member)
                self.active[_hex(m, "group_id", what)] = (-1, op)
        elif kind == "key_package":
            if not isinstance(body, KeyPackage):
                raise Mismatch(f"{what}: not a KeyPackage")
            ref = cs.hash(_o(_KP_REF_LABEL) + _o(wire[4:]))  # RFC 9420 §5.2
            if ref not in self.announced:
                raise Mismatch(f"{what}: KeyPackageRef {ref.hex()[:16]} was not announced "
                               "by a KeyPackageUpload (§5.5.1)")
            epoch_id, random, sender = self.announced[ref]
            op = self.leaf_op(what, body.leaf_node, sender, random)
            _same(f"{what}: epoch_id (P16)", bytes.fromhex(op.epoch["epoch_id"]), epoch_id)
            _same(f"{what}: KeyPackage.init_key", op.keys["init_public_key"], body.init_key)
            signature = body.signature
            if not verify_with_label(cs, op.keys["signature_public_key"], b"KeyPackageTBS",
                                     wire[4:len(wire) - len(_o(signature))], signature):
                raise Mismatch(f"{what}: KeyPackage signature does not verify under the "
                               "re-derived signature key")
            self.leaf_signature(what, body.leaf_node, op, b"")
            self.key_packages[ref] = op
        elif kind == "member_commit":
            assert isinstance(body, PublicMessage) and isinstance(body.content.content, Commit)
            for p in body.content.content.proposals:
                if isinstance(p, Add):
                    ref = cs.hash(_o(_KP_REF_LABEL) + _o(p.key_package.encode()))
                    self.member_added.add(ref)
        elif kind == "vc_commit":
            assert isinstance(body, PublicMessage) and isinstance(body.content.content, Commit)
            commit = body.content.content
            gid = body.content.group_id
            _same(f"{what}.group_id", gid, _hex(m, "group_id", what))
            if gid not in self.active or commit.path is None:
                raise Mismatch(f"{what}: a vc commit needs a path in a group the virtual "
                               "client joined")
            op = self.leaf_op(what, commit.path.leaf_node)
            if commit.path.nodes:  # Q9: path_generation_secret is path_secret[0]
                node = derive_secret(cs, op.keys["path_generation_secret"], b"node")
                _same(f"{what}: UpdatePath.nodes[0].encryption_key",
                      cs.kem.derive_key_pair(node)[1], commit.path.nodes[0].encryption_key)
            vc_leaf = body.content.sender.index
            if vc_leaf is None:
                raise Mismatch(f"{what}: not sent by a member")
            self.leaf_signature(what, commit.path.leaf_node, op, _o(gid) + _u(vc_leaf, 4))
            self.active[gid] = (vc_leaf, op)
        else:  # application
            if not isinstance(body, PrivateMessage):
                raise Mismatch(f"{what}: not a PrivateMessage")
            self.application(what, m, body)

    def membership_tag(self, what: str, m: dict[str, Any], wire: bytes, body: Any) -> None:
        """RFC 9420 §6.2: membership_tag = MAC(membership_key, AuthenticatedContentTBM),
        TBM = version || wire_format || FramedContent || GroupContext || auth data; every
        byte of the message but the tag is under the MAC, and the tag is compared."""
        cs = self.cs
        context = _hex(m, "group_context", what)
        r = _Reader(context, f"{what}.group_context")
        r.uint(2)
        _same(f"{what}.group_context cipher_suite", r.uint(2), cs.id)
        _same(f"{what}.group_context group_id", r.opaque(), body.content.group_id)
        _same(f"{what}.group_context epoch", r.uint(8), body.content.epoch)
        content = body.content.encode()
        tag = body.membership_tag
        if tag is None or wire[4:4 + len(content)] != content:
            raise Mismatch(f"{what}: no membership tag, or FramedContent not where expected")
        tbm = wire[:4 + len(content)] + context + wire[4 + len(content):len(wire) - len(_o(tag))]
        _same(f"{what}: membership_tag under the published membership_key",
              cs.mac(_hex(m, "membership_key", what, cs.nh), tbm), tag)

    def leaf_signature(self, what: str, leaf: Any, op: _Op, tail: bytes) -> None:
        """RFC 9420 §7.2: the LeafNode signs LeafNodeTBS (its content, then group_id and
        leaf_index for a commit or update source) with the re-derived signature key."""
        content = leaf.encode()
        content = content[:len(content) - len(_o(leaf.signature))]
        if not verify_with_label(self.cs, op.keys["signature_public_key"], b"LeafNodeTBS",
                                 content + tail, leaf.signature):
            raise Mismatch(f"{what}: LeafNode signature does not verify under the re-derived "
                           "signature key")

    def open_welcome(self, what: str, op: _Op, kem_output: bytes, ciphertext: bytes,
                     encrypted_group_info: bytes) -> None:
        """RFC 9420 §12.4.3.1 with the re-derived init key: GroupSecrets decrypt, and the
        GroupInfo decrypts under the welcome_secret they give."""
        cs = self.cs
        try:
            plain = decrypt_with_label(cs, op.keys["init_private_key"], b"Welcome",
                                       encrypted_group_info, kem_output, ciphertext)
        except MLSError:
            raise Mismatch(f"{what}: GroupSecrets do not decrypt with the re-derived "
                           "init key") from None
        joiner = _Reader(plain, f"{what} GroupSecrets").opaque()
        welcome = derive_secret(cs, cs.extract(joiner, bytes(cs.nh)), b"welcome")
        key = expand_with_label(cs, welcome, b"key", b"", cs.aead.nk)
        nonce = expand_with_label(cs, welcome, b"nonce", b"", cs.aead.nn)
        try:
            cs.aead.open(key, nonce, b"", encrypted_group_info)
        except MLSError:
            raise Mismatch(f"{what}: GroupInfo does not decrypt under the welcome_secret")\
                from None

    def emulation_action(self, what: str, m: dict[str, Any], aad: bytes, epoch: int,
                         sender: int | None) -> None:
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
            raise Mismatch(f"{what}: the action is not a KeyPackageUpload")
        epoch_id = r.opaque()
        _same(f"{what}: KeyPackageUpload.epoch_id names the epoch the Commit is sent in "
              "(P16)", self.epochs.get(epoch_id), self.by_number.get(epoch))
        infos = _Reader(r.opaque(), f"{what} KeyPackageInfo")
        r.end()
        while infos.pos < len(infos.data):
            ref, random = infos.opaque(), infos.opaque()
            self.announced[ref] = (epoch_id, random, sender)

    def reuse_guard_prp_key(self, op: _Op, key_schedule_nonce: bytes) -> bytes:
        """draft-00 §5.8 with P8: the PRP key from the active leaf's re-derived
        leaf_node_secret (its encryption_key_secret)."""
        return expand_with_label(self.cs, op.keys["encryption_key_secret"], b"reuse guard",
                                 key_schedule_nonce, 16)

    def expected_generation_id(self, op: _Op, body: PrivateMessage, generation: int) -> bytes:
        """draft-00 §5.9 (Q4): over {generation, application} with the epoch's
        generation_id_secret."""
        return _generation_id(self.cs, bytes.fromhex(op.epoch["generation_id_secret"]),
                              generation, 1)[1]

    def application(self, what: str, m: dict[str, Any], body: PrivateMessage) -> None:
        """Sender data opened with the published sender_data_secret; the reuse guard
        decrypted under `reuse_guard_prp_key` names the sending emulator (P9, Q5); the
        generation ID is `expected_generation_id`; the content and its signature."""
        cs = self.cs
        gid = _hex(m, "group_id", what)
        _same(f"{what}.group_id", body.group_id, gid)
        if gid not in self.active:
            raise Mismatch(f"{what}: the virtual client is in no such group")
        vc_leaf, op = self.active[gid]
        sds = _hex(m, "sender_data_secret", what, cs.nh)
        sample = body.ciphertext[:cs.nh]
        key = expand_with_label(cs, sds, b"key", sample, cs.aead.nk)
        nonce = expand_with_label(cs, sds, b"nonce", sample, cs.aead.nn)
        aad = _o(body.group_id) + _u(body.epoch, 8) + _u(int(body.content_type), 1)
        try:
            plain = cs.aead.open(key, nonce, aad, body.encrypted_sender_data)
        except MLSError:
            raise Mismatch(f"{what}: sender data does not decrypt under sender_data_secret")\
                from None
        r = _Reader(plain, f"{what} SenderData")
        leaf, generation, guard = r.uint(4), r.uint(4), r.take(4)
        r.end()
        if vc_leaf >= 0:
            _same(f"{what}: SenderData.leaf_index is the virtual client's", leaf, vc_leaf)
        _same(f"{what}.generation", generation, _int(m, "generation", what))
        _same(f"{what}.reuse_guard", guard, _hex(m, "reuse_guard", what))
        ksn = _hex(m, "key_schedule_nonce", what, cs.aead.nn)
        x = _ff1(self.reuse_guard_prp_key(op, ksn), int.from_bytes(guard, "big"),
                 decrypt=True)
        emulator_leaf = x % op.epoch["n_leaves"]  # P9
        if emulator_leaf not in op.epoch["_leaves"]:
            raise Mismatch(f"{what}: the reuse guard names no emulator (VC-RG-1)")
        _same(f"{what}.emulator_leaf_index", emulator_leaf,
              _int(m, "emulator_leaf_index", what))
        roster = {r["leaf_index"]: r["emulator"] for r in op.epoch["roster"]}
        _same(f"{what}.sender", roster[emulator_leaf], m["sender"])
        _same(f"{what}.generation_id", self.expected_generation_id(op, body, generation),
              _hex(m, "generation_id", what))
        # RFC 9420 §6.3.1: the content under the published key and the nonce actually used
        used = bytes(a ^ b for a, b in zip(ksn[:4], guard, strict=True)) + ksn[4:]
        aad = _o(body.group_id) + _u(body.epoch, 8) + _u(int(body.content_type), 1) + \
            _o(body.authenticated_data)
        try:
            content = cs.aead.open(_hex(m, "content_key", what, cs.aead.nk), used, aad,
                                   body.ciphertext)
        except MLSError:
            raise Mismatch(f"{what}: content does not decrypt under content_key") from None
        c = _Reader(content, f"{what} PrivateMessageContent")
        data, signature = c.opaque(), c.opaque()
        if any(c.take(len(content) - c.pos)):
            raise Mismatch(f"{what}: non-zero padding")
        _same(f"{what}.application_data", data, _hex(m, "application_data", what))
        framed = (_o(body.group_id) + _u(body.epoch, 8) + _u(1, 1) + _u(leaf, 4)
                  + _o(body.authenticated_data) + _u(1, 1) + _o(data))
        tbs = _u(1, 2) + _u(2, 2) + framed + _hex(m, "group_context", what)
        if not verify_with_label(cs, op.keys["signature_public_key"], b"FramedContentTBS",
                                 tbs, signature):
            raise Mismatch(f"{what}: the content's signature does not verify under the "
                           "virtual client's re-derived signature key")


def _check_scenario(cs: CipherSuite, value: Any) -> None:
    s = _fields(value, "scenario", {"seed", "emulators", "virtual_client", "member",
                                    "emulation_group_id", "group_id", "emulation_epochs",
                                    "messages"})
    _hex(s, "seed", "scenario")
    _hex(s, "emulation_group_id", "scenario")
    _hex(s, "group_id", "scenario")
    names = _list(s, "emulators", "scenario")
    if not all(isinstance(n, str) for n in names) or not isinstance(s["member"], str) \
            or not isinstance(s["virtual_client"], str):
        raise Mismatch("scenario: emulators, member and virtual_client are names")
    _run_scenario(_ScenarioCheck(cs, s), s, _MESSAGE_FIELDS)


def _run_scenario(check: _ScenarioCheck, s: dict[str, Any],
                  message_fields: dict[str, set[str]]) -> None:
    """Check the scenario's epochs and every message in order, then that the file
    covers every message kind, a Welcome of an announced KeyPackage and an opening
    Commit for every published epoch (shared with the latest profile's checker)."""
    check.epochs_section()
    kinds = []
    for i, raw in enumerate(_list(s, "messages", "scenario")):
        check.message(i, raw)
        kinds.append(raw["kind"])
    if set(kinds) != set(message_fields):
        raise Mismatch(f"scenario: message kinds {sorted(set(message_fields) - set(kinds))} "
                       "missing")
    if not check.welcomed:
        raise Mismatch("scenario: no Welcome used an announced KeyPackage")
    if not set(check.by_number) <= check.opened:
        raise Mismatch("scenario: a published emulation epoch is opened by no recorded "
                       "emulation Commit")


_SECTIONS: dict[str, Callable[[CipherSuite, Any], None]] = {
    "epoch_secrets": _check_epoch_secrets,
    "operations": _check_operations,
    "operation_keys": _check_operation_keys,
    "derivation_info": _check_derivation_info,
    "reuse_guard": _check_reuse_guard,
    "generation_id": _check_generation_id,
    "encodings": _check_encodings,
    "scenario": _check_scenario,
}


def _sections() -> dict[str, Callable[[CipherSuite, Any], None]]:
    return {**_SECTIONS, **{k: s.check for k, s in LIFECYCLE_SECTIONS.items()}}


def recorded_profile(case: Any) -> str | None:
    """The profile a suite's object records: "latest" for `"profile": "latest"`,
    "draft-00" when it has no `profile` field (the draft-00 format has none), None for
    anything else."""
    if not isinstance(case, dict) or "profile" not in case:
        return DRAFT_00
    return LATEST if case["profile"] == LATEST else None


def run(cases: list[Case], profile: str | None = None) -> FileResult:
    """Check a vc vector file: one result per (suite, section), plus one failed result
    for a suite object whose fields are wrong. Every failure names the field. Each
    object is checked by the profile it records (`recorded_profile`: the latest ones by
    `vc_latest.check_case`); `profile` ("draft-00" or "latest") requires that one."""
    from mlsvc.conformance import vc_latest

    expected = None if profile is None else _profile(profile)
    result = FileResult(FILE_STEM)
    sections = _sections()
    if not isinstance(cases, list) or not cases:
        result.cases.append(CaseResult(0, None, False, detail="not a non-empty JSON array"))
        return result
    if all(recorded_profile(c) == LATEST for c in cases):
        result.name = vc_latest.FILE_STEM
    for i, case in enumerate(cases):
        suite = case.get("cipher_suite") if isinstance(case, dict) else None
        recorded = recorded_profile(case)
        if recorded is None or (expected is not None and recorded != expected):
            got = case["profile"] if recorded is None else recorded
            result.cases.append(CaseResult(
                i, suite if isinstance(suite, int) else None, False,
                detail=f"case {i}: records profile {got!r}, "
                       + ("not a known one (draft-00 records none, latest 'latest')"
                          if recorded is None else f"checked as {expected}")))
            continue
        if recorded == LATEST:
            vc_latest.check_case(i, case, result)
            continue
        try:
            _fields(case, f"case {i}", {"cipher_suite", *sections})
            if suite not in SUITES:
                raise Mismatch(f"case {i}: cipher_suite {suite!r} is not an RFC 9420 suite")
        except Mismatch as exc:
            result.cases.append(CaseResult(i, suite if isinstance(suite, int) else None,
                                           False, detail=str(exc)))
            continue
        cs = get_suite(suite)
        for name, check in sections.items():
            try:
                check(cs, case[name])
            except (Mismatch, MLSError, ValueError, KeyError, TypeError, IndexError) as exc:
                detail = str(exc) if isinstance(exc, Mismatch) else \
                    f"{name}: {type(exc).__name__}: {exc}"
                result.cases.append(CaseResult(i, suite, False, detail=detail))
            else:
                result.cases.append(CaseResult(i, suite, True, detail=name))
    # one object per suite and profile
    suites = [(c.get("cipher_suite"), recorded_profile(c)) for c in cases
              if isinstance(c, dict)]
    if len(set(suites)) != len(suites):
        result.cases.append(CaseResult(len(cases), None, False,
                                       detail="a cipher suite appears twice"))
    return result


def count_entries(case: Case) -> dict[str, int]:
    """How many checked entries each section of one suite's object holds (for reports)."""
    if recorded_profile(case) == LATEST:
        from mlsvc.conformance import vc_latest

        return vc_latest.count_entries(case)
    s = case["scenario"]
    return {
        "epoch_secrets": len(case["epoch_secrets"]),
        "operations": len(case["operations"]["derivations"]) + 1,
        "operation_keys": len(case["operation_keys"]),
        "derivation_info": len(case["derivation_info"]),
        "reuse_guard": len(case["reuse_guard"]),
        "generation_id": len(case["generation_id"]["ids"]),
        "encodings": 2,
        "scenario": len(s["emulation_epochs"]) + len(s["messages"]),
        **({"new_emulator_client_state": 1 + len(
            case["new_emulator_client_state"]["emulation_epochs"])}
           if "new_emulator_client_state" in case else {}),
        **({"resync_message": 1} if "resync_message" in case else {}),
    }


# --- the lifecycle sections (P13, P14): an independent TLS reading of the structs ------------
#
# NewEmulatorClientState as impl/mlsvc/vc/state.py's docstring defines it, read with the
# checker's own reader and written again with its own writer (the bytes must be exactly
# the file's); KeyPackages, Credentials and LeafNodes are read field by field (RFC 9420
# §5.3, §7.2, §10). Only the saved group state (mlsvc.group.serialize, this project's
# format) is parsed with the engine's loader, and its epoch authenticator is compared
# with the one the group's other member published.

_STATE_TRANSFER, _EXTERNAL_JOIN = 1, 2
_MODES = {_STATE_TRANSFER: "state_transfer", _EXTERNAL_JOIN: "external_join"}


class _Writer:
    def __init__(self) -> None:
        self.out = b""

    def u(self, n: int, width: int) -> _Writer:
        self.out += _u(n, width)
        return self

    def o(self, data: bytes) -> _Writer:
        self.out += _o(data)
        return self


def _vector(r: _Reader, item: Callable[[_Reader], Any]) -> list[Any]:
    inner = _Reader(r.opaque(), r.what)
    out = []
    while inner.pos < len(inner.data):
        out.append(item(inner))
    return out


def _read_credential(r: _Reader) -> tuple[int, bytes]:
    """(credential_type, identity or the certificate chain's bytes)."""
    kind = r.uint(2)
    return kind, r.opaque()  # basic: identity<V>; x509: certificates<V>, one vector


def _read_leaf_node(r: _Reader) -> dict[str, Any]:
    start = r.pos
    leaf: dict[str, Any] = {"encryption_key": r.opaque(), "signature_key": r.opaque()}
    leaf["credential"] = _read_credential(r)
    for _ in range(5):  # Capabilities: versions, cipher_suites, extensions, proposals,
        r.opaque()      # credentials
    source = r.uint(1)
    if source == 1:
        r.take(16)  # Lifetime
    elif source == 3:
        r.opaque()  # parent_hash
    elif source != 2:
        raise Mismatch(f"{r.what}: leaf_node_source {source}")
    r.opaque()  # extensions
    leaf["signature"] = r.opaque()
    leaf["source"] = source
    leaf["bytes"] = r.data[start:r.pos]
    return leaf


def _read_key_package(r: _Reader) -> dict[str, Any]:
    start = r.pos
    version, suite = r.uint(2), r.uint(2)
    init_key = r.opaque()
    leaf = _read_leaf_node(r)
    r.opaque()  # extensions
    signature = r.opaque()
    return {"version": version, "cipher_suite": suite, "init_key": init_key, "leaf": leaf,
            "signature": signature, "bytes": r.data[start:r.pos]}


def _read_leaf_op(r: _Reader) -> tuple[bytes, bytes]:
    return r.opaque(), r.opaque()  # epoch_id, leaf_node_secret


def _read_pprf_node(r: _Reader) -> tuple[int, bytes, bytes]:
    return r.uint(1), r.opaque(), r.opaque()


def _read_epoch_state(r: _Reader) -> dict[str, Any]:
    e: dict[str, Any] = {"epoch": r.uint(8), "epoch_id": r.opaque(), "leaf_count": r.uint(4),
                         "own_leaf": r.uint(4)}
    e["roster"] = _vector(r, lambda x: (x.uint(4), x.opaque()))
    e["generation_id_secret"] = r.opaque()
    present = r.uint(1)
    if present not in (0, 1):
        raise Mismatch(f"{r.what}: optional<PPRFState> presence byte {present}")
    e["pprf"] = _vector(_Reader(r.opaque(), r.what), _read_pprf_node) if present else None
    present = r.uint(1)
    if present not in (0, 1):
        raise Mismatch(f"{r.what}: optional<opaque> presence byte {present}")
    e["encryption_key"] = r.opaque() if present else None
    e["retained"] = _vector(r, lambda x: (x.uint(4), x.uint(4), x.opaque(), x.opaque()))
    return e


def _read_group_state(r: _Reader) -> dict[str, Any]:
    g: dict[str, Any] = {"group_id": r.opaque(), "mode": r.uint(1)}
    if g["mode"] == _STATE_TRANSFER:
        g["saved_group"] = r.opaque()
        g["active"] = _read_leaf_op(r)
        g["proposed"] = _vector(r, lambda x: (x.opaque(), _read_leaf_op(x)))
    elif g["mode"] != _EXTERNAL_JOIN:
        raise Mismatch(f"{r.what}: TransferMode {g['mode']}")
    return g


def _read_held_key_package(r: _Reader) -> dict[str, Any]:
    k: dict[str, Any] = {"key_package": _read_key_package(r), "init_private_key": r.opaque(),
                         "encryption_private_key": r.opaque()}
    k["credential"] = _read_credential(r)
    k["signature_private_key"], k["signature_public_key"] = r.opaque(), r.opaque()
    k["op"] = _read_leaf_op(r)
    k["group_suite"] = r.uint(2)
    return k


def _read_necs(data: bytes) -> dict[str, Any]:
    r = _Reader(data, "new_emulator_client_state.encoded")
    s = {"signature_private_key": r.opaque(), "epochs": _vector(r, _read_epoch_state),
         "groups": _vector(r, _read_group_state),
         "key_packages": _vector(r, _read_held_key_package)}
    r.end()
    return s


def _write_necs(s: dict[str, Any]) -> bytes:
    """The checker's own encoding of what it read (a round trip must give the bytes)."""
    def vec(items: list[Any], write: Callable[[_Writer, Any], object]) -> bytes:
        inner = _Writer()
        for item in items:
            write(inner, item)
        return _o(inner.out)

    def epoch(w: _Writer, e: dict[str, Any]) -> None:
        w.u(e["epoch"], 8)
        w.o(e["epoch_id"])
        w.u(e["leaf_count"], 4)
        w.u(e["own_leaf"], 4)
        w.out += vec(e["roster"], lambda w2, x: (w2.u(x[0], 4), w2.o(x[1])))
        w.o(e["generation_id_secret"])
        if e["pprf"] is None:
            w.u(0, 1)
        else:
            w.u(1, 1)
            w.o(vec(e["pprf"], lambda w2, n: (w2.u(n[0], 1), w2.o(n[1]), w2.o(n[2]))))
        if e["encryption_key"] is None:
            w.u(0, 1)
        else:
            w.u(1, 1)
            w.o(e["encryption_key"])
        w.out += vec(e["retained"], lambda w2, x: (w2.u(x[0], 4), w2.u(x[1], 4), w2.o(x[2]),
                                                   w2.o(x[3])))

    def leaf_op(w: _Writer, op: tuple[bytes, bytes]) -> _Writer:
        return w.o(op[0]).o(op[1])

    def group(w: _Writer, g: dict[str, Any]) -> None:
        w.o(g["group_id"])
        w.u(g["mode"], 1)
        if g["mode"] == _STATE_TRANSFER:
            w.o(g["saved_group"])
            leaf_op(w, g["active"])
            w.out += vec(g["proposed"], lambda w2, p: (w2.o(p[0]), leaf_op(w2, p[1])))

    def held(w: _Writer, k: dict[str, Any]) -> None:
        w.out += k["key_package"]["bytes"]
        w.o(k["init_private_key"])
        w.o(k["encryption_private_key"])
        w.u(k["credential"][0], 2)
        w.o(k["credential"][1])
        w.o(k["signature_private_key"])
        w.o(k["signature_public_key"])
        leaf_op(w, k["op"])
        w.u(k["group_suite"], 2)

    return (_o(s["signature_private_key"]) + vec(s["epochs"], epoch)
            + vec(s["groups"], group) + vec(s["key_packages"], held))


def _check_pprf_state(cs: CipherSuite, what: str, nodes: list[tuple[int, bytes, bytes]],
                      base: bytes) -> None:
    """P2 PPRFState: prefixes of at most 32 bits, packed MSB-first with zero padding,
    sorted and prefix-free; every node secret is the walk from epoch_base_secret."""
    end = 0  # the first leaf not covered by the nodes so far
    for j, (length, packed, secret) in enumerate(nodes):
        nw = f"{what}.pprf[{j}]"
        if length > _VC_DEPTH or len(packed) != (length + 7) // 8:
            raise Mismatch(f"{nw}: prefix of {length} bits in {len(packed)} bytes")
        value = int.from_bytes(packed, "big")
        pad = 8 * len(packed) - length
        if value & ((1 << pad) - 1):
            raise Mismatch(f"{nw}: non-zero padding bits")
        prefix = value >> pad
        first = prefix << (_VC_DEPTH - length)
        if first < end:
            raise Mismatch(f"{nw}: nodes not sorted or not prefix-free")
        end = first + (1 << (_VC_DEPTH - length))
        if len(secret) != cs.nh:
            raise Mismatch(f"{nw}: node secret of {len(secret)} bytes")
        _same(f"{nw}.node_secret (the walk from epoch_base_secret)", secret,
              _ref_node(cs, base, length, prefix))


def _check_necs(cs: CipherSuite, value: Any) -> None:
    from mlsvc.group.config import GroupConfig
    from mlsvc.group.serialize import load
    from mlsvc.types import LeafIndex

    top = "new_emulator_client_state"
    v = _fields(value, top, {"seed", "virtual_client", "provider", "emulation_group_id",
                             "emulation_epochs", "groups", "key_package_refs", "encoded",
                             "signature_private_key", "epochs", "proposed"})
    _hex(v, "seed", top)
    _hex(v, "emulation_group_id", top)
    vc_name = v["virtual_client"]
    if not isinstance(vc_name, str) or not isinstance(v["provider"], str):
        raise Mismatch(f"{top}: virtual_client and provider are names")
    # the published epochs, recomputed from their exporter roots
    published: dict[int, dict[str, bytes]] = {}
    for i, raw in enumerate(_list(v, "emulation_epochs", top)):
        what = f"{top}.emulation_epochs[{i}]"
        e = _fields(raw, what, {"epoch", "application_export_secret", "epoch_id",
                                "epoch_base_secret", "epoch_encryption_key",
                                "generation_id_secret", "roster"})
        out = _epoch_outputs(cs, _hex(e, "application_export_secret", what, cs.nh))
        for k in _L_EPOCH:
            _same(f"{what}.{k}", out[k], _hex(e, k, what))
        members = []
        for j, r in enumerate(_list(e, "roster", what)):
            entry = _fields(r, f"{what}.roster[{j}]", {"leaf_index", "emulator"})
            if not isinstance(entry["emulator"], str):
                raise Mismatch(f"{what}.roster[{j}].emulator: not a name")
            members.append((_int(entry, "leaf_index", what), entry["emulator"].encode()))
        published[_int(e, "epoch", what)] = dict(out, roster=members)  # type: ignore[arg-type]
    groups_pub: dict[bytes, dict[str, Any]] = {}
    for i, raw in enumerate(_list(v, "groups", top)):
        what = f"{top}.groups[{i}]"
        g = _fields(raw, what, {"group_id", "mode", "epoch", "epoch_authenticator",
                                "vc_leaf_index", "group_context", "interim_transcript_hash",
                                "confirmation_tag", "epoch_secrets", "proposals",
                                "encryption_secret", "secret_tree_limits",
                                "resumption_psks"})
        if g["mode"] not in _MODES.values():
            raise Mismatch(f"{what}.mode: not state_transfer or external_join")
        secrets = _fields(g["epoch_secrets"], f"{what}.epoch_secrets", set(_MEMBER_SECRETS))
        if not isinstance(g["proposals"], list):
            raise Mismatch(f"{what}.proposals: not a list")
        cached = []
        for j, raw_p in enumerate(g["proposals"]):
            pw = f"{what}.proposals[{j}]"
            pr = _fields(raw_p, pw, {"ref", "proposal", "sender"})
            cached.append((_hex(pr, "ref", pw), _hex(pr, "proposal", pw),
                           _hex(pr, "sender", pw)))
        groups_pub[_hex(g, "group_id", what)] = {
            "mode": g["mode"], "epoch": _int(g, "epoch", what),
            "auth": _hex(g, "epoch_authenticator", what, cs.nh),
            "leaf": _int(g, "vc_leaf_index", what), "what": what,
            "context": _hex(g, "group_context", what),
            "interim": _hex(g, "interim_transcript_hash", what),
            "tag": _hex(g, "confirmation_tag", what),
            "secrets": {k: _hex(secrets, k, f"{what}.epoch_secrets") for k in _MEMBER_SECRETS},
            "proposals": cached,
            "encryption_secret": _hex(g, "encryption_secret", what, cs.nh),
            "limits": g["secret_tree_limits"],
            "psks": {(_hex(x, "group_id", what), _int(x, "epoch", what)): _hex(x, "psk", what)
                     for x in g["resumption_psks"]}}
    refs = [bytes.fromhex(x) if isinstance(x, str) and x == x.lower() else b""
            for x in _list(v, "key_package_refs", top)]
    for i, ref in enumerate(refs):
        if len(ref) != cs.nh:
            raise Mismatch(f"{top}.key_package_refs[{i}]: not a KeyPackageRef of Nh bytes")
    # the encoding: parsed, written again, and every field judged
    wire = _hex(v, "encoded", top)
    what = f"{top}.encoded"
    s = _read_necs(wire)
    _same(f"{what}: re-encoding", _write_necs(s), wire)
    _same(f"{top}.signature_private_key", s["signature_private_key"],
          _hex(v, "signature_private_key", top))
    if len(s["signature_private_key"]) != cs.nh:
        raise Mismatch(f"{what}: signature_private_key of {len(s['signature_private_key'])} "
                       "bytes, want Nh")
    epochs = s["epochs"]
    numbers = [e["epoch"] for e in epochs]
    if numbers != sorted(set(numbers)) or not numbers:
        raise Mismatch(f"{what}: epochs not sorted by epoch number without repeats")
    by_id: dict[bytes, dict[str, Any]] = {}
    summary = []
    for j, e in enumerate(epochs):
        ew = f"{what}.epochs[{j}] (epoch {e['epoch']})"
        pub = published.get(e["epoch"])
        if pub is None:
            raise Mismatch(f"{ew}: no published emulation epoch of that number")
        _same(f"{ew}.epoch_id", e["epoch_id"], pub["epoch_id"])
        _same(f"{ew}.generation_id_secret", e["generation_id_secret"],
              pub["generation_id_secret"])
        n = e["leaf_count"]
        if n < 1 or n & (n - 1):
            raise Mismatch(f"{ew}: leaf_count {n} is not a power of two (P9)")
        _same(f"{ew}.roster (the published emulation group's)", e["roster"], pub["roster"])
        leaves = [leaf for leaf, _ in e["roster"]]
        if leaves != sorted(set(leaves)) or any(leaf >= n for leaf in leaves) or \
                e["own_leaf"] >= n or any(not ident for _, ident in e["roster"]):
            raise Mismatch(f"{ew}: roster not sorted, unique, below leaf_count, named")
        if (e["pprf"] is None) != (e["encryption_key"] is None):
            raise Mismatch(f"{ew}: PPRF and epoch_encryption_key go together (P19)")
        if e["pprf"] is not None:
            _check_pprf_state(cs, ew, e["pprf"], pub["epoch_base_secret"])
            _same(f"{ew}.epoch_encryption_key", e["encryption_key"],
                  pub["epoch_encryption_key"])
        elif e["retained"]:
            raise Mismatch(f"{ew}: retained operations without the epoch's PPRF")
        for idx, (pleaf, leaf_index, random, secret) in enumerate(e["retained"]):
            rw = f"{ew}.retained[{idx}]"
            _same(f"{rw}.pprf_leaf", pleaf, _leaf(cs, leaf_index, random))
            _same(f"{rw}.operation_secret", secret,
                  _ref_node(cs, pub["epoch_base_secret"], _VC_DEPTH, pleaf))
        by_id[e["epoch_id"]] = e
        summary.append({"epoch": e["epoch"], "own_leaf": e["own_leaf"],
                        "pprf_nodes": None if e["pprf"] is None else len(e["pprf"]),
                        "epoch_encryption_key": e["encryption_key"] is not None,
                        "retained": len(e["retained"])})
    _same(f"{top}.epochs", summary, v["epochs"])

    def op_of(ow: str, op: tuple[bytes, bytes], public_key: bytes) -> None:
        """A LeafOp names a held epoch and its leaf_node_secret (the operation's
        encryption_key_secret, P8) gives the LeafNode's encryption key."""
        if op[0] not in by_id:
            raise Mismatch(f"{ow}.epoch_id: names no emulation epoch of the state")
        _same(f"{ow}: DeriveKeyPair(leaf_node_secret) public key",
              cs.kem.derive_key_pair(op[1])[1], public_key)

    seen_groups = []
    proposed = 0
    for j, g in enumerate(s["groups"]):
        gw = f"{what}.groups[{j}]"
        gpub = groups_pub.get(g["group_id"])
        if gpub is None:
            raise Mismatch(f"{gw}: a group no member published")
        _same(f"{gw}.mode", _MODES[g["mode"]], gpub["mode"])
        seen_groups.append(g["group_id"])
        if g["mode"] != _STATE_TRANSFER:
            continue
        try:
            group = load(g["saved_group"], GroupConfig())
        except MLSError as exc:
            raise Mismatch(f"{gw}.saved_group: does not parse: {exc}") from None
        _check_saved_group(cs, f"{gw}.saved_group", g["saved_group"], group, gpub)
        _same(f"{gw}.saved_group group_id", group.group_id, g["group_id"])
        _same(f"{gw}.saved_group epoch", group.epoch, gpub["epoch"])
        _same(f"{gw}.saved_group epoch_authenticator (the member's published one)",
              group.epoch_authenticator, gpub["auth"])
        _same(f"{gw}.saved_group own leaf", int(group.own_leaf), gpub["leaf"])
        leaf = group.tree.leaf(LeafIndex(gpub["leaf"]))
        if leaf is None:
            raise Mismatch(f"{gw}: the virtual client's leaf is blank")
        op_of(f"{gw}.active", g["active"], leaf.encryption_key)
        for idx, (key, op) in enumerate(g["proposed"]):
            op_of(f"{gw}.proposed[{idx}]", op, key)
            proposed += 1
    if sorted(seen_groups) != sorted(groups_pub):
        raise Mismatch(f"{what}: the groups differ from the published ones")
    _same(f"{top}.proposed", proposed, _int(v, "proposed", top))
    got_refs = []
    for j, k in enumerate(s["key_packages"]):
        kw = f"{what}.key_packages[{j}]"
        kp = k["key_package"]
        ref = cs.hash(_o(_KP_REF_LABEL) + _o(kp["bytes"]))  # RFC 9420 §5.2
        got_refs.append(ref)
        _same(f"{kw}: KeyPackage cipher_suite", kp["cipher_suite"], cs.id)
        _same(f"{kw}.group_suite", k["group_suite"], cs.id)  # Q3 in these vectors
        _same(f"{kw}: init_private_key's public key", cs.kem.public_key(k["init_private_key"]),
              kp["init_key"])
        _same(f"{kw}: encryption_private_key's public key",
              cs.kem.public_key(k["encryption_private_key"]), kp["leaf"]["encryption_key"])
        _same(f"{kw}.signature_public_key", k["signature_public_key"],
              kp["leaf"]["signature_key"])
        _same(f"{kw}: signature_private_key's public key",
              cs.signature.public_key(k["signature_private_key"]), k["signature_public_key"])
        _same(f"{kw}.credential", k["credential"], kp["leaf"]["credential"])
        _same(f"{kw}: credential (basic, the virtual client's name)", k["credential"],
              (1, vc_name.encode()))
        op_of(f"{kw}.op", k["op"], kp["leaf"]["encryption_key"])
        sig_len = len(_o(kp["signature"]))
        if not verify_with_label(cs, k["signature_public_key"], b"KeyPackageTBS",
                                 kp["bytes"][:-sig_len], kp["signature"]):
            raise Mismatch(f"{kw}: KeyPackage signature does not verify")
        leaf_bytes, leaf_sig = kp["leaf"]["bytes"], kp["leaf"]["signature"]
        if not verify_with_label(cs, k["signature_public_key"], b"LeafNodeTBS",
                                 leaf_bytes[:-len(_o(leaf_sig))], leaf_sig):
            raise Mismatch(f"{kw}: LeafNode signature does not verify")
    _same(f"{what}: KeyPackageRefs (the DS's outstanding ones)", sorted(got_refs),
          sorted(refs))


def _check_saved_group(cs: CipherSuite, what: str, saved: bytes, group: Any,
                       member: dict[str, Any]) -> None:
    """The saved state of a higher-level group against what its other member published:
    a canonical encoding; the same GroupContext (so the same tree hash, epoch and
    transcript), interim transcript hash, confirmation tag, epoch secrets and cached
    proposals; a public tree whose hash is the context's; private keys (leaf, direct
    path, signature) that belong to the tree's public keys. The secret tree's ratchets
    are not compared (a member's differ by what it consumed)."""
    from mlsvc.group.serialize import save

    st = group.state
    _same(f"{what}: re-encoding (save after load)", save(group), saved)
    _same(f"{what}: GroupContext (the member's)", st.context.encode(), member["context"])
    _same(f"{what}: tree hash", st.tree.tree_hash(), st.context.tree_hash)
    _same(f"{what}: interim_transcript_hash", st.interim_transcript_hash, member["interim"])
    _same(f"{what}: confirmation_tag", st.confirmation_tag, member["tag"])
    for k in _MEMBER_SECRETS:
        _same(f"{what}: {k} (the member's)", getattr(st.secrets, k), member["secrets"][k])
    _same(f"{what}: cached proposals (ref, Proposal, Sender: the member's)",
          [(ref, _proposal_bytes(rp.proposal), _sender_bytes(rp.sender))
           for ref, rp in sorted(st.proposals.items())], member["proposals"])
    leaf = st.tree.leaf(st.keys.leaf_index)
    if leaf is None:
        raise Mismatch(f"{what}: own leaf is blank")
    _same(f"{what}: leaf private key's public key", cs.kem.public_key(st.keys.leaf_private_key),
          leaf.encryption_key)
    for node, key in sorted(st.keys.path_keys.items()):
        parent = st.tree.node(node)
        if parent is None:
            raise Mismatch(f"{what}: a private key for blank node {node}")
        _same(f"{what}: node {node} private key's public key", cs.kem.public_key(key),
              parent.encryption_key)
    _same(f"{what}: signature private key's public key",
          cs.signature.public_key(st.identity.signature_private_key), leaf.signature_key)
    _same(f"{what}: signature key", st.identity.signature_public_key, leaf.signature_key)
    _same(f"{what}: credential", st.identity.credential.encode(), leaf.credential.encode())
    # Updates of siblings received this epoch (§12.1.2): their key pairs and identities
    updates = {}
    for _, rp in st.proposals.items():
        node = getattr(rp.proposal, "leaf_node", None)
        if node is not None:
            updates[node.encryption_key] = node
    for public, private in sorted(st.pending_update_keys.items()):
        if public not in updates:
            raise Mismatch(f"{what}: a pending Update key of no cached Update")
        _same(f"{what}: pending Update private key's public key", cs.kem.public_key(private),
              public)
    for public, ident in sorted(st.pending_update_identities.items()):
        node = updates.get(public)
        if node is None:
            raise Mismatch(f"{what}: a pending Update identity of no cached Update")
        _same(f"{what}: pending Update signature key", ident.signature_public_key,
              node.signature_key)
        _same(f"{what}: pending Update signature private key's public key",
              cs.signature.public_key(ident.signature_private_key), node.signature_key)
        _same(f"{what}: pending Update credential", ident.credential.encode(),
              node.credential.encode())
    _check_secret_tree(cs, what, st.secret_tree.state, member["encryption_secret"])
    tree = st.secret_tree.state
    _same(f"{what}: secret tree limits (the member's)",
          [tree.max_forward_distance, tree.out_of_order_tolerance], member["limits"])
    for key, psk in sorted(st.resumption_psks.items()):
        _same(f"{what}: resumption_psk of epoch {key[1]} (the member's)", psk,
              member["psks"].get(key))
    if not group.active or group.pending_commit is not None:
        raise Mismatch(f"{what}: not an active group without a pending commit")


def _check_secret_tree(cs: CipherSuite, what: str, tree: Any, encryption_secret: bytes
                       ) -> None:
    """RFC 9420 §9: every secret the saved tree holds, derived again from the epoch's
    encryption_secret (the member's): frontier node secrets by the tree's left/right
    expansion, each sender ratchet's next secret and retained (key, nonce) by the
    generation chain."""
    n = tree.leaf_count
    if n < 1 or n & (n - 1):
        raise Mismatch(f"{what}: secret tree of {n} leaves")
    root = n - 1

    def node_secret(x: int) -> bytes:
        secret, cur = encryption_secret, root
        while cur != x:
            k = 0
            while (cur >> k) & 1:
                k += 1
            if k == 0:
                raise Mismatch(f"{what}: secret tree node {x} is not below the root")
            left = x < cur
            cur = cur ^ ((1 if left else 3) << (k - 1))
            secret = expand_with_label(cs, secret, b"tree", b"left" if left else b"right",
                                       cs.nh)
        return secret

    for x, secret in sorted(tree.nodes.items()):
        if not 0 <= x < 2 * n - 1:
            raise Mismatch(f"{what}: secret tree node {x} outside the tree")
        _same(f"{what}: secret tree node {x}", secret, node_secret(x))
    for label, ratchets in ((b"handshake", tree.handshake), (b"application", tree.application)):
        for leaf, ratchet in sorted(ratchets.items()):
            rw = f"{what}: {label.decode()} ratchet of leaf {leaf}"
            secret = expand_with_label(cs, node_secret(2 * leaf), label, b"", cs.nh)
            for j in range(ratchet.generation):
                if j in ratchet.retained:
                    key = expand_with_label(cs, secret, b"key", _u(j, 4), cs.aead.nk)
                    nonce = expand_with_label(cs, secret, b"nonce", _u(j, 4), cs.aead.nn)
                    _same(f"{rw}, generation {j}", ratchet.retained[j], (key, nonce))
                secret = expand_with_label(cs, secret, b"secret", _u(j, 4), cs.nh)
            _same(f"{rw}, generation {ratchet.generation}", ratchet.secret, secret)
            if any(j >= ratchet.generation for j in ratchet.retained):
                raise Mismatch(f"{rw}: a retained generation not behind the ratchet")


def _proposal_bytes(proposal: Any) -> bytes:
    """Proposal (RFC 9420 §12.1), written with the message codecs."""
    from mlsvc.codec import Writer
    from mlsvc.messages.proposals import write_proposal

    w = Writer()
    write_proposal(w, proposal)
    return w.bytes()


def _sender_bytes(sender: Any) -> bytes:
    from mlsvc.codec import Writer

    w = Writer()
    sender.write(w)
    return w.bytes()


_RESYNC_FIELDS = {"group_id", "sender", "removed", "epoch", "message", "group_context",
                  "sender_data_secret", "key_schedule_nonce", "content_key",
                  "sender_signature_key", "signature_private_key", "encoded"}


def _check_resync(cs: CipherSuite, value: Any) -> None:
    """A ResyncMessage {opaque signature_private_key<V>;} (§4.2): its exact bytes, and the
    emulation-group PrivateMessage carrying it opened and authenticated with the
    reader's published epoch values (RFC 9420 §6.3)."""
    from mlsvc.messages.mls_message import MLSMessage

    top = "resync_message"
    m = _fields(value, top, _RESYNC_FIELDS)
    key = _hex(m, "signature_private_key", top, cs.nh)
    encoded = _hex(m, "encoded", top)
    _same(f"{top}.encoded", encoded, _o(key))
    wire = _hex(m, "message", top)
    try:
        msg = MLSMessage.decode(wire)
    except MLSError as exc:
        raise Mismatch(f"{top}.message: does not parse as an MLSMessage: {exc}") from None
    _same(f"{top}.message: re-encoding", msg.encode(), wire)
    body = msg.body
    if not isinstance(body, PrivateMessage):
        raise Mismatch(f"{top}.message: not a PrivateMessage")
    _same(f"{top}.group_id", body.group_id, _hex(m, "group_id", top))
    _same(f"{top}.epoch", body.epoch, _int(m, "epoch", top))
    if int(body.content_type) != 1:
        raise Mismatch(f"{top}.message: not application content (P14)")
    sds = _hex(m, "sender_data_secret", top, cs.nh)
    sample = body.ciphertext[:cs.nh]
    skey = expand_with_label(cs, sds, b"key", sample, cs.aead.nk)
    snonce = expand_with_label(cs, sds, b"nonce", sample, cs.aead.nn)
    aad = _o(body.group_id) + _u(body.epoch, 8) + _u(1, 1)
    try:
        plain = cs.aead.open(skey, snonce, aad, body.encrypted_sender_data)
    except MLSError:
        raise Mismatch(f"{top}.message: sender data does not decrypt under "
                       "sender_data_secret") from None
    r = _Reader(plain, f"{top} SenderData")
    leaf, _generation, guard = r.uint(4), r.uint(4), r.take(4)
    r.end()
    ksn = _hex(m, "key_schedule_nonce", top, cs.aead.nn)
    used = bytes(a ^ b for a, b in zip(ksn[:4], guard, strict=True)) + ksn[4:]
    aad = aad + _o(body.authenticated_data)
    try:
        content = cs.aead.open(_hex(m, "content_key", top, cs.aead.nk), used, aad,
                               body.ciphertext)
    except MLSError:
        raise Mismatch(f"{top}.message: content does not decrypt under content_key") \
            from None
    c = _Reader(content, f"{top} PrivateMessageContent")
    data, signature = c.opaque(), c.opaque()
    if any(c.take(len(content) - c.pos)):
        raise Mismatch(f"{top}.message: non-zero padding")
    _same(f"{top}.encoded (the application data)", data, encoded)
    framed = (_o(body.group_id) + _u(body.epoch, 8) + _u(1, 1) + _u(leaf, 4)
              + _o(body.authenticated_data) + _u(1, 1) + _o(data))
    tbs = _u(1, 2) + _u(2, 2) + framed + _hex(m, "group_context", top)
    if not verify_with_label(cs, _hex(m, "sender_signature_key", top), b"FramedContentTBS",
                             tbs, signature):
        raise Mismatch(f"{top}.message: the signature does not verify under "
                       "sender_signature_key")
    r = _Reader(_hex(m, "group_context", top), f"{top}.group_context")
    r.uint(2)
    _same(f"{top}.group_context cipher_suite", r.uint(2), cs.id)
    _same(f"{top}.group_context group_id", r.opaque(), body.group_id)
    _same(f"{top}.group_context epoch", r.uint(8), body.epoch)
    for name in ("sender", "removed"):
        if not isinstance(m[name], str):
            raise Mismatch(f"{top}.{name}: not a name")


LIFECYCLE_SECTIONS.update({
    "new_emulator_client_state": Section(_gen_necs, _check_necs),
    "resync_message": Section(_gen_resync, _check_resync),
})
