"""Shared fixtures of the virtual-client tests (tests/unit/test_vc_*.py): a virtual
client of three emulators at a delivery service, plain members (`Group`) beside it,
before/after snapshots of an emulator's whole state, and the tools of a corrupt
sibling (forged LeafNodes, forged emulation Commits, scripted random draws).

Nothing here computes an expected value of the code under test: the snapshots are
serialized states compared for equality, the forgeries are built with the engine and
the draft's structs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.ds import Delivery, DeliveryKind, DeliveryService
from mlsvc.ext.safe_aad import encode_items
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import Event
from mlsvc.group.group import CommitOutput, Group
from mlsvc.group.serialize import load, save
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.vc import derivation as dinfo
from mlsvc.vc.actions import VirtualClientAction
from mlsvc.vc.emulator import Consistency, Emulator
from mlsvc.vc.profiles import Profile
from mlsvc.virtual_client import VirtualClient

CS = get_suite(1)
NAMES = ("phone", "laptop", "tablet")
VC = "alice"
G1 = b"g1"


# --- plain members -----------------------------------------------------------------------


def peer_group(ds: DeliveryService, name: str, group_id: bytes, *, suite: int = 1,
               seed: bytes | None = None) -> Group:
    """A plain member that creates `group_id` at the DS and publishes its GroupInfo."""
    cs = get_suite(suite)
    rng = SeededRandom(seed or name.encode())
    g = Group.create(cs, Identity.basic(name.encode(), cs.signature.generate_key_pair(rng)),
                     GroupConfig(rng=rng, supported_extensions=(6,)), group_id=group_id)
    ds.register_client(name)
    ds.create_group(group_id, 0, [name])
    ds.publish_group_info(group_id, g.group_info())
    return g


def peer_commit(ds: DeliveryService, name: str, g: Group, out: CommitOutput) -> None:
    """Submit a plain member's commit, merge it, route its Welcome, publish GroupInfo."""
    verdict = ds.submit(name, out.commit)
    assert verdict.accepted, verdict.reason
    g.merge_pending_commit()
    if out.welcome is not None:
        ds.send_welcome(name, g.group_id, out.welcome)
    ds.publish_group_info(g.group_id, g.group_info())


def pump(ds: DeliveryService, name: str, g: Group) -> list[Event]:
    """A plain member processes everything in its mailbox (Welcomes aside)."""
    return [g.process(d.message) for d in ds.receive(name) if d.kind is not DeliveryKind.WELCOME]


def add_vc(ds: DeliveryService, vc: VirtualClient, name: str, g: Group,
           uploader: str = "phone") -> None:
    """`uploader` announces and uploads one KeyPackage; the member fetches it, adds the
    virtual client and welcomes it; every emulator joins (vc.sync)."""
    vc.upload_key_packages(uploader, 1)
    kp = MLSMessage.decode(ds.fetch_key_package(vc.id)).body
    g.propose_add(kp)  # type: ignore[arg-type]
    peer_commit(ds, name, g, g.commit())
    vc.sync()


# --- a virtual client ----------------------------------------------------------------------


@dataclass
class World:
    ds: DeliveryService
    vc: VirtualClient
    bob: Group  # a plain member of G1, in which the virtual client is

    def em(self, name: str) -> Emulator:
        return self.vc.emulators[name]

    def agree(self, group_id: bytes = G1, peer: Group | None = None) -> bytes:
        """Every emulator in the group (and the peer) has one epoch authenticator."""
        peer = peer or self.bob
        auths = {em.groups[group_id].group.epoch_authenticator
                 for em in self.vc.emulators.values()}
        assert auths == {peer.epoch_authenticator}, "emulators and peer disagree"
        return peer.epoch_authenticator


def make_vc(seed: bytes = b"t", names: tuple[str, ...] = NAMES,
            consistency: Consistency = Consistency.STRONG,
            profile: Profile = Profile.DRAFT_00) -> tuple[DeliveryService, VirtualClient]:
    from mlsvc.ds import Consistency as DSConsistency

    ds = DeliveryService(DSConsistency(consistency.value))
    return ds, VirtualClient.create(ds, VC, list(names), seed=seed, consistency=consistency,
                                    profile=profile)


def world(seed: bytes = b"t", consistency: Consistency = Consistency.STRONG,
          profile: Profile = Profile.DRAFT_00, names: tuple[str, ...] = NAMES) -> World:
    """A virtual client (phone, laptop, tablet) in G1 with bob; all synced."""
    ds, vc = make_vc(seed, names, consistency=consistency, profile=profile)
    bob = peer_group(ds, "bob", G1, seed=b"bob/" + seed)
    add_vc(ds, vc, "bob", bob)
    w = World(ds, vc, bob)
    w.agree()
    return w


def handle(vc: VirtualClient, name: str, d: Delivery) -> Any:
    """What VirtualClient.sync does with one delivery (so a test can alter it first)."""
    return vc._once(name, vc.emulators[name], d)


# --- snapshots --------------------------------------------------------------------------------


def snapshot(em: Emulator) -> dict[str, Any]:
    """Everything an emulator holds, as comparable values: the emulation group and every
    higher-level group serialized whole, and the epoch store's secrets."""
    epochs = {
        n: (ep.epoch_id, ep.leaf_count, int(ep.own_leaf), dict(ep.roster),
            ep.generation_id_secret, None if ep.pprf is None else ep.pprf.serialize(),
            ep.encryption_key, dict(ep.retained),
            None if ep.tree is None else ep.tree.state.copy(), ep.reuse_guard_secret)
        for n, ep in em.epochs.epochs.items()
    }
    groups = {
        gid: (hg.group.epoch, hg.group.epoch_authenticator, save(hg.group), hg.active,
              dict(hg.proposed), list(hg.sent))
        for gid, hg in em.groups.items()
    }
    return {
        "emulation": (em.emu.epoch, em.emu.epoch_authenticator, save(em.emu)),
        "epochs": epochs,
        "groups": groups,
        "key_packages": sorted(em.key_packages),
        "expected_joins": set(em.expected_joins),
        "announced_joins": set(em.announced_joins),
        "pending": dict(em.pending),
    }


def copy_group(g: Group) -> Group:
    """An independent copy of a group state (a corrupt sibling's private copy)."""
    return load(save(g), g.config)


# --- a corrupt sibling's tools ----------------------------------------------------------------


def derivation_extension(em: Emulator, encryption_key: bytes, *, leaf_index: int,
                         random: bytes, epoch_id: bytes | None = None,
                         ciphertext: Callable[[bytes], bytes] | None = None) -> Any:
    """A LeafNode's app_data_dictionary carrying a DerivationInfo with the values chosen,
    sealed under the emulator's latest epoch_encryption_key (which every emulator
    knows); `epoch_id` overrides the component's epoch_id (and AAD), `ciphertext`
    rewrites the ciphertext."""
    ep = em.epochs.latest
    assert ep.encryption_key is not None
    eid = ep.epoch_id if epoch_id is None else epoch_id
    comp = dinfo.seal(em.ecs, eid, ep.encryption_key, encryption_key,
                      dinfo.EpochInfoTBE(leaf_index, random))
    if ciphertext is not None:
        comp = dinfo.DerivationInfoComponent(comp.epoch_id, ciphertext(comp.ciphertext))
    return dinfo.leaf_extension(comp, None, em.vc.ext_codepoints, em.vc.codepoints)


def vc_identity(em: Emulator, signature_key_pair: tuple[bytes, bytes]) -> Identity:
    return Identity(BasicCredential(em.vc.name), *signature_key_pair)


def forged_emulation_commit(em: Emulator, items: dict[int, bytes]) -> bytes:
    """An emulation-group Commit with these SafeAAD items, signed by `em`'s emulation
    leaf from a private copy of its emulation group (what a corrupt `em` could send
    instead of its genuine Commit of the same epoch)."""
    g = copy_group(em.emu)
    return g.commit(force_path=True, authenticated_data=encode_items(items)).commit


def action_items(em: Emulator, action: VirtualClientAction) -> dict[int, bytes]:
    return {em.vc.codepoints.virtual_client_action: action.encode()}


class ScriptedRandom:
    """A random source that answers from a script first, then from `fallback`."""

    def __init__(self, fallback: Callable[[int], bytes], script: list[bytes]) -> None:
        self.fallback = fallback
        self.script = list(script)

    def __call__(self, n: int, /) -> bytes:
        if self.script:
            out = self.script.pop(0)
            assert len(out) == n, f"scripted {len(out)} bytes, asked {n}"
            return out
        return self.fallback(n)


def independent_pprf_leaf(cs: CipherSuite, leaf_index: int, random: bytes) -> int:
    """P3 restated with hashlib: first 4 bytes of Hash(uint32 || varint len || random)."""
    assert cs.id == 1 and len(random) < 64
    data = leaf_index.to_bytes(4, "big") + bytes([len(random)]) + random
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


@cache
def colliding_randoms(index_a: int, index_b: int) -> tuple[bytes, bytes]:
    """Two 32-byte `random`s whose HashInputs (for leaf indices a and b) select the same
    PPRF leaf (a 32-bit birthday search with SHA-256, deterministic)."""
    seen_a: dict[int, bytes] = {}
    seen_b: dict[int, bytes] = {}
    for i in range(1 << 22):
        r = hashlib.sha256(b"collide" + i.to_bytes(8, "big")).digest()
        xa = independent_pprf_leaf(CS, index_a, r)
        xb = independent_pprf_leaf(CS, index_b, r)
        if xa in seen_b and seen_b[xa] != r:
            return r, seen_b[xa]
        if xb in seen_a and seen_a[xb] != r:
            return seen_a[xb], r
        seen_a[xa] = r
        seen_b[xb] = r
    raise AssertionError("no collision found")  # pragma: no cover


# --- independent restatements (hashlib / hmac / cryptography, no mlsvc crypto) ------------


def varint(n: int) -> bytes:
    """RFC 9420 §2.1.2 variable-length integer (1, 2 or 4 bytes)."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    return (n | 0x80000000).to_bytes(4, "big")


def opaque(data: bytes) -> bytes:
    return varint(len(data)) + data


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    import hmac

    out, block, i = b"", b"", 0
    while len(out) < length:
        i += 1
        block = hmac.new(prk, block + info + bytes([i]), hash_name).digest()
        out += block
    return out[:length]


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    import hmac

    return hmac.new(salt or b"\x00" * hashlib.new(hash_name).digest_size, ikm,
                    hash_name).digest()


def expand_with_label(hash_name: str, secret: bytes, label: bytes, context: bytes,
                      length: int) -> bytes:
    """RFC 9420 §8 ExpandWithLabel, restated."""
    info = length.to_bytes(2, "big") + opaque(b"MLS 1.0 " + label) + opaque(context)
    return hkdf_expand(hash_name, secret, info, length)


def derive_secret(hash_name: str, secret: bytes, label: bytes) -> bytes:
    return expand_with_label(hash_name, secret, label, b"",
                             hashlib.new(hash_name).digest_size)


def pprf_eval(hash_name: str, key: bytes, x: int, depth: int) -> bytes:
    """Profile P2: walk from the root, most-significant bit first, 0 = left."""
    node = key
    n = hashlib.new(hash_name).digest_size
    for bit in range(depth - 1, -1, -1):
        node = expand_with_label(hash_name, node, b"tree",
                                 b"right" if (x >> bit) & 1 else b"left", n)
    return node
