"""One `Peer` interface over three independent MLS engines, so interop scenarios are
written once and run over every (creator, joiner) pair.

- `OurPeer`: this project's engine (mlsvc.group), in-process.
- `MlsRsPeer`: AWS mls-rs through its PyPI uniffi bindings (`mls_rs_uniffi`), in-process.
  Only suite 1; no PSKs, external commits, Update proposals or PrivateMessage handshakes
  of its own; it cannot report its epoch or epoch authenticator.
- `TsMlsPeer`: ts-mls 1.6.4 through the Node bridge (tests/interop/bridge.py).

Everything that crosses between engines is RFC 9420 MLSMessage bytes (§6): KeyPackages,
Welcomes, GroupInfos, PublicMessages and PrivateMessages. A committer moves to the new
epoch as soon as it commits (the tests' delivery service accepts every commit, §12.4.1);
the others move when they `process` it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.codepoints import ResumptionPSKUsage
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import LeafNode, Node, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, PreSharedKey, PreSharedKeyID, Proposal, Remove
from mlsvc.types import LeafIndex
from tests.interop.bridge import Bridge, PeerError

ENGINES = ("ours", "mls-rs", "ts-mls")
ALL_SUITES = (1, 2, 3, 4, 5, 6, 7)
# Features beyond the common core (KeyPackage, Add/Welcome, commits with path, removes,
# application messages, exporter): which engine's adapter offers them.
FEATURES: dict[str, frozenset[str]] = {
    "ours": frozenset({"external_join", "psk", "private_handshake", "propose", "epoch",
                       "group_info"}),
    "mls-rs": frozenset({"propose"}),
    "ts-mls": frozenset({"external_join", "psk", "private_handshake", "propose", "epoch",
                         "group_info"}),
}
SUITES: dict[str, tuple[int, ...]] = {"ours": ALL_SUITES, "mls-rs": (1,), "ts-mls": ALL_SUITES}




@dataclass(frozen=True)
class Member:
    """A member as another member names it: basic credential identity and signature key
    (RFC 9420 §5.3); mls-rs removes by this, the others by leaf index."""

    identity: bytes
    signature_key: bytes


@dataclass(frozen=True)
class CommitResult:
    commit: bytes
    welcome: bytes | None
    group_info: bytes | None


@dataclass(frozen=True)
class Received:
    """What processing a message did: "application" (with `data`), "proposal" or
    "commit"; `removed` when the commit removed the receiver itself."""

    kind: str
    data: bytes = b""
    removed: bool = False


class Peer(Protocol):
    engine: str
    name: bytes
    suite: int

    def key_package(self) -> bytes: ...
    def signature_key(self) -> bytes: ...
    def create(self, group_id: bytes) -> None: ...
    def join(self, welcome: bytes) -> None: ...
    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes: ...
    def propose_add(self, key_package: bytes) -> bytes: ...
    def propose_remove(self, leaf: int, member: Member) -> bytes: ...
    def propose_psk(self, psk_id: bytes) -> bytes: ...
    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult: ...
    def process(self, message: bytes) -> Received: ...
    def encrypt(self, data: bytes) -> bytes: ...
    def export(self, label: bytes, context: bytes, length: int) -> bytes: ...
    def epoch(self) -> int | None: ...
    def epoch_authenticator(self) -> bytes | None: ...
    def roster(self) -> dict[int, Member]: ...
    def ratchet_tree(self) -> tuple[Node | None, ...]: ...
    def group_info(self) -> bytes | None: ...
    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None: ...
    def close(self) -> None: ...


def _unsupported(engine: str, what: str) -> PeerError:
    return PeerError(f"{engine} adapter does not offer {what}")


def _key_package_of(message: bytes) -> KeyPackage:
    body = MLSMessage.decode(message).body
    if not isinstance(body, KeyPackage):
        raise PeerError("expected a KeyPackage MLSMessage")
    return body


def roster_of_nodes(nodes: Sequence[object]) -> dict[int, Member]:
    """Leaves of a ratchet tree in array form (RFC 9420 Appendix C): leaf i at node 2i."""
    out: dict[int, Member] = {}
    for i in range(0, len(nodes), 2):
        leaf = nodes[i]
        if not isinstance(leaf, LeafNode):
            continue
        cred = leaf.credential
        ident = cred.identity if isinstance(cred, BasicCredential) else b""
        out[i // 2] = Member(ident, leaf.signature_key)
    return out


# --- this project's engine -------------------------------------------------------------


class OurPeer:
    engine = "ours"

    def __init__(self, name: bytes, suite: int, *, private_handshake: bool = False,
                 seed: bytes = b"") -> None:
        self.name, self.suite = name, suite
        self.cs = get_suite(suite)
        self.psks: dict[bytes, bytes] = {}
        self.rng = SeededRandom(seed + b"/" + name)
        self.private_handshake = private_handshake
        self.identity = Identity.basic(name, self.cs.signature.generate_key_pair(self.rng))
        self.bundle: KeyPackageBundle | None = None
        self.group: Group | None = None

    def _config(self) -> GroupConfig:
        return GroupConfig(rng=self.rng, external_psks=self.psks,
                           encrypt_handshake=self.private_handshake)

    @property
    def g(self) -> Group:
        if self.group is None:
            raise PeerError("ours: not in a group")
        return self.group

    def key_package(self) -> bytes:
        self.bundle = create_key_package(self.cs, self.identity, self._config())
        return MLSMessage(self.bundle.key_package).encode()

    def signature_key(self) -> bytes:
        return self.identity.signature_public_key

    def create(self, group_id: bytes) -> None:
        self.group = Group.create(self.cs, self.identity, self._config(), group_id=group_id)

    def join(self, welcome: bytes) -> None:
        if self.bundle is None:
            raise PeerError("ours: join needs a KeyPackage first")
        self.group = Group.join(welcome, self.bundle, self._config())

    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes:
        prior = None if remove_prior is None else LeafIndex(remove_prior)
        self.group, commit = Group.external_join(group_info, self.identity, self._config(),
                                                 remove_prior=prior)
        return commit

    def propose_add(self, key_package: bytes) -> bytes:
        return self.g.propose_add(_key_package_of(key_package))

    def propose_remove(self, leaf: int, member: Member) -> bytes:
        return self.g.propose_remove(LeafIndex(leaf))

    def propose_psk(self, psk_id: bytes) -> bytes:
        return self.g.propose_external_psk(psk_id)

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        g = self.g
        props: list[Proposal] = [Add(_key_package_of(kp)) for kp in adds]
        props += [Remove(LeafIndex(leaf)) for leaf, _ in removes]
        props += [PreSharedKey(PreSharedKeyID.external(i, self.rng(self.cs.nh))) for i in psks]
        props += [PreSharedKey(PreSharedKeyID.resumption(
            ResumptionPSKUsage.APPLICATION, g.group_id, e, self.rng(self.cs.nh)))
            for e in resumption]
        # §12.4: a path is required for empty commits and removes; we always send one
        out = g.commit(props, force_path=True)
        g.merge_pending_commit()
        return CommitResult(out.commit, out.welcome, out.group_info)

    def process(self, message: bytes) -> Received:
        ev = self.g.process(message)
        if isinstance(ev, ApplicationMessage):
            return Received("application", ev.data)
        if isinstance(ev, ProposalReceived):
            return Received("proposal")
        assert isinstance(ev, CommitApplied)
        return Received("commit", removed=ev.removed_self)

    def encrypt(self, data: bytes) -> bytes:
        return self.g.encrypt(data)

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        return self.g.export_secret(label, context, length)

    def epoch(self) -> int | None:
        return self.g.epoch

    def epoch_authenticator(self) -> bytes | None:
        return self.g.epoch_authenticator

    def roster(self) -> dict[int, Member]:
        return roster_of_nodes(self.g.tree.to_nodes())

    def ratchet_tree(self) -> tuple[Node | None, ...]:
        return RatchetTreeExtension.from_nodes(self.g.tree.to_nodes()).nodes

    def group_info(self) -> bytes | None:
        return self.g.group_info()

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        self.psks[psk_id] = psk

    def close(self) -> None:
        self.group = None


# --- mls-rs (Rust) through uniffi ------------------------------------------------------


def load_mls_rs() -> Any:
    """The mls_rs_uniffi module (raises ImportError when it is not installed). Imported
    by name: the bindings ship no type information, so they are used as `Any`."""
    return importlib.import_module("mls_rs_uniffi")


class MlsRsPeer:
    """mls-rs applies a commit only when it processes it, its own included: after
    committing we feed the commit back (mls-rs's pending-commit model)."""

    engine = "mls-rs"

    def __init__(self, name: bytes, suite: int, **_: object) -> None:
        if suite != 1:
            raise _unsupported(self.engine, f"suite {suite}")
        self.m = load_mls_rs()
        self.name, self.suite = name, suite
        self.keys = self.m.generate_signature_keypair(self.m.CipherSuite.CURVE25519_AES128)
        self.client = self.m.Client(name, self.keys, self.m.client_config_default())
        self.group: Any = None

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.m.Error as e:
            raise PeerError(f"mls-rs {what}: {e}") from e

    @property
    def g(self) -> Any:
        if self.group is None:
            raise PeerError("mls-rs: not in a group")
        return self.group

    def _msg(self, data: bytes) -> Any:
        return self._call("decode", self.m.Message.from_bytes, data)

    def _identity(self, member: Member) -> Any:
        """mls-rs names members by SigningIdentity, which the bindings cannot build
        directly: a throw-away client with the member's credential and public key gives
        an equal one (its secret key is never used)."""
        pair = self.m.SignatureKeypair(
            cipher_suite=self.m.CipherSuite.CURVE25519_AES128,
            public_key=self.m.SignaturePublicKey(bytes=member.signature_key),
            secret_key=self.keys.secret_key)
        return self.m.Client(member.identity, pair, self.m.client_config_default()
                             ).signing_identity()

    def key_package(self) -> bytes:
        return bytes(self._call("key_package", self.client.generate_key_package_message)
                     .to_bytes())

    def signature_key(self) -> bytes:
        return bytes(self.keys.public_key.bytes)

    def create(self, group_id: bytes) -> None:
        self.group = self._call("create", self.client.create_group, group_id)

    def join(self, welcome: bytes) -> None:
        info = self._call("join", self.client.join_group, None, self._msg(welcome))
        self.group = info.group

    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes:
        raise _unsupported(self.engine, "external commits")

    def propose_add(self, key_package: bytes) -> bytes:
        (msg,) = self._call("propose_add", self.g.propose_add_members, [self._msg(key_package)])
        return bytes(msg.to_bytes())

    def propose_remove(self, leaf: int, member: Member) -> bytes:
        (msg,) = self._call("propose_remove", self.g.propose_remove_members,
                            [self._identity(member)])
        return bytes(msg.to_bytes())

    def propose_psk(self, psk_id: bytes) -> bytes:
        raise _unsupported(self.engine, "PSK proposals")

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        g = self.g
        if psks or resumption:
            raise _unsupported(self.engine, "PSK proposals")
        if adds and removes:
            raise _unsupported(self.engine, "adds and removes in one commit")
        if adds:
            out = self._call("add_members", g.add_members, [self._msg(kp) for kp in adds])
        elif removes:
            out = self._call("remove_members", g.remove_members,
                             [self._identity(m) for _, m in removes])
        else:
            out = self._call("commit", g.commit)
        self._call("apply own commit", g.process_incoming_message, out.commit_message)
        welcome = out.welcome_message
        info = out.group_info
        return CommitResult(bytes(out.commit_message.to_bytes()),
                            None if welcome is None else bytes(welcome.to_bytes()),
                            None if info is None else bytes(info.to_bytes()))

    def process(self, message: bytes) -> Received:
        r = self._call("process", self.g.process_incoming_message, self._msg(message))
        if r.is_application_message():
            return Received("application", bytes(r.data))
        if r.is_received_proposal():
            return Received("proposal")
        if r.is_commit():
            return Received("commit", removed=r.effect.is_removed())
        raise PeerError(f"mls-rs: unexpected result {r}")

    def encrypt(self, data: bytes) -> bytes:
        return bytes(self._call("encrypt", self.g.encrypt_application_message, data)
                     .to_bytes())

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        return bytes(self._call("export", self.g.export_secret, label, context, length))

    def epoch(self) -> int | None:
        return None  # not exposed by the bindings

    def epoch_authenticator(self) -> bytes | None:
        return None  # not exposed by the bindings

    def roster(self) -> dict[int, Member]:
        return roster_of_nodes(self.ratchet_tree())

    def ratchet_tree(self) -> tuple[Node | None, ...]:
        tree = self._call("export_tree", self.g.export_tree)
        return RatchetTreeExtension.decode(bytes(tree.bytes)).nodes

    def group_info(self) -> bytes | None:
        return None

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        raise _unsupported(self.engine, "external PSKs")

    def close(self) -> None:
        self.group = None


# --- ts-mls (TypeScript) through the Node bridge ---------------------------------------


class TsMlsPeer:
    engine = "ts-mls"
    _ids = 0

    def __init__(self, name: bytes, suite: int, *, bridge: Bridge,
                 private_handshake: bool = False, **_: object) -> None:
        TsMlsPeer._ids += 1
        self.id = f"{name.decode(errors='replace')}#{TsMlsPeer._ids}"
        self.name, self.suite, self.bridge = name, suite, bridge
        self.private_handshake = private_handshake
        # "rfc": the bridge translates external_pub to RFC 9420 §12.4.3.2 encoding;
        # "native": ts-mls 1.6.4's own bare-key encoding (see bridge.mjs, docs/INTEROP.md)
        self.external_pub = "rfc"
        self._sig_key: bytes | None = None

    def _call(self, verb: str, **args: Any) -> dict[str, Any]:
        return self.bridge.call(verb, client=self.id, **args)

    def _state(self) -> dict[str, Any]:
        return self._call("state")

    def _remember_key(self, kp_hex: str) -> None:
        self._sig_key = _key_package_of(bytes.fromhex(kp_hex)).leaf_node.signature_key

    def key_package(self) -> bytes:
        kp = self._call("key_package", suite=self.suite, identity=self.name.hex())["key_package"]
        self._remember_key(kp)
        return bytes.fromhex(kp)

    def signature_key(self) -> bytes:
        if self._sig_key is None:
            raise PeerError("ts-mls: no KeyPackage yet")
        return self._sig_key

    def _own_key_from_state(self) -> None:
        st = self._state()
        for leaf, _, key in st["members"]:
            if leaf == st["own_leaf"]:
                self._sig_key = bytes.fromhex(key)

    def create(self, group_id: bytes) -> None:
        self._call("create", suite=self.suite, identity=self.name.hex(), group_id=group_id.hex())
        self._own_key_from_state()

    def join(self, welcome: bytes) -> None:
        self._call("join", welcome=welcome.hex())

    def external_join(self, group_info: bytes, remove_prior: int | None = None) -> bytes:
        if remove_prior is not None:
            raise _unsupported(self.engine, "resync external joins")
        out = self._call("external_join", suite=self.suite, identity=self.name.hex(),
                         group_info=group_info.hex(), external_pub=self.external_pub)
        self._own_key_from_state()
        return bytes.fromhex(out["commit"])

    def _propose(self, proposal: dict[str, Any]) -> bytes:
        out = self._call("propose", proposal=proposal, public=not self.private_handshake)
        return bytes.fromhex(out["message"])

    def propose_add(self, key_package: bytes) -> bytes:
        return self._propose({"type": "add", "key_package": key_package.hex()})

    def propose_remove(self, leaf: int, member: Member) -> bytes:
        return self._propose({"type": "remove", "leaf": leaf})

    def propose_psk(self, psk_id: bytes) -> bytes:
        return self._propose({"type": "psk", "psk_id": psk_id.hex()})

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        proposals: list[dict[str, Any]] = [{"type": "add", "key_package": kp.hex()}
                                           for kp in adds]
        proposals += [{"type": "remove", "leaf": leaf} for leaf, _ in removes]
        proposals += [{"type": "psk", "psk_id": i.hex()} for i in psks]
        proposals += [{"type": "psk", "epoch": e} for e in resumption]
        out = self._call("commit", proposals=proposals, public=not self.private_handshake)
        return CommitResult(bytes.fromhex(out["commit"]),
                            None if out["welcome"] is None else bytes.fromhex(out["welcome"]),
                            None if out["group_info"] is None
                            else bytes.fromhex(out["group_info"]))

    def process(self, message: bytes) -> Received:
        out = self._call("process", message=message.hex())
        if out["kind"] == "application":
            return Received("application", bytes.fromhex(out["data"]))
        return Received(out["kind"], removed=not out["active"])

    def encrypt(self, data: bytes) -> bytes:
        return bytes.fromhex(self._call("encrypt", data=data.hex())["message"])

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        out = self._call("export", label=label.hex(), context=context.hex(), length=length)
        return bytes.fromhex(out["secret"])

    def epoch(self) -> int | None:
        return int(self._state()["epoch"])

    def epoch_authenticator(self) -> bytes | None:
        return bytes.fromhex(self._state()["epoch_authenticator"])

    def roster(self) -> dict[int, Member]:
        return {leaf: Member(bytes.fromhex(ident), bytes.fromhex(key))
                for leaf, ident, key in self._state()["members"]}

    def ratchet_tree(self) -> tuple[Node | None, ...]:
        return RatchetTreeExtension.decode(bytes.fromhex(self._call("ratchet_tree")["tree"])).nodes

    def group_info(self) -> bytes | None:
        return bytes.fromhex(self._call("group_info", external_pub=self.external_pub)
                             ["group_info"])

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        self._call("add_psk", psk_id=psk_id.hex(), psk=psk.hex())

    def close(self) -> None:
        self._call("drop")
