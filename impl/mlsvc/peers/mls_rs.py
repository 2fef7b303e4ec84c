"""AWS mls-rs (Rust) as a `Peer`, in-process through its PyPI uniffi bindings
(`mls_rs_uniffi`, pip package agentvault-mls-rs-uniffi, the `interop` extra).

The bindings offer suite 1 only; no PSKs, external commits, Update proposals of its own
or PrivateMessage handshakes; they cannot report the epoch, the epoch authenticator or
a GroupInfo. mls-rs does commit Update proposals received from other members (tested in
tests/interop/test_commit_update.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from mlsvc.messages.leaf_node import Node, RatchetTreeExtension
from mlsvc.peers.base import (
    INSTALL_HINT,
    CommitResult,
    Member,
    PeerError,
    Received,
    roster_of_nodes,
    unsupported,
)


def load_mls_rs() -> Any:
    """The mls_rs_uniffi module (raises ImportError when it is not installed). Imported
    by name: the bindings ship no type information, so they are used as `Any`."""
    return importlib.import_module("mls_rs_uniffi")


def mls_rs_problem() -> str | None:
    """Why mls-rs cannot run here, or None when it can."""
    try:
        load_mls_rs()
    except ImportError as e:
        return f"cannot import mls_rs_uniffi ({e}); {INSTALL_HINT} (pip extra `interop`)"
    return None


class MlsRsPeer:
    """mls-rs applies a commit only when it processes it, its own included: after
    committing the adapter feeds the commit back (mls-rs's pending-commit model)."""

    engine = "mls-rs"
    FEATURES = frozenset({"propose", "commit_update"})
    SUITES = (1,)

    def __init__(self, name: bytes, suite: int) -> None:
        if suite not in self.SUITES:
            raise unsupported(self.engine, f"suite {suite}")
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
        raise unsupported(self.engine, "external commits")

    def propose_add(self, key_package: bytes) -> bytes:
        (msg,) = self._call("propose_add", self.g.propose_add_members, [self._msg(key_package)])
        return bytes(msg.to_bytes())

    def propose_remove(self, leaf: int, member: Member) -> bytes:
        (msg,) = self._call("propose_remove", self.g.propose_remove_members,
                            [self._identity(member)])
        return bytes(msg.to_bytes())

    def propose_update(self) -> bytes:
        raise unsupported(self.engine, "Update proposals (the bindings have no propose_update)")

    def propose_psk(self, psk_id: bytes) -> bytes:
        raise unsupported(self.engine, "PSK proposals")

    def commit(self, adds: Sequence[bytes] = (), removes: Sequence[tuple[int, Member]] = (),
               psks: Sequence[bytes] = (), resumption: Sequence[int] = ()) -> CommitResult:
        g = self.g
        if psks or resumption:
            raise unsupported(self.engine, "PSK proposals")
        if adds and removes:
            raise unsupported(self.engine, "adds and removes in one commit")
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

    def commit_pending(self) -> CommitResult:
        return self.commit()

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
        return None  # not exposed by the bindings

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        raise unsupported(self.engine, "external PSKs")

    def close(self) -> None:
        self.group = None
