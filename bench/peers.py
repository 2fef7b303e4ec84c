"""The measured subjects of `bench.group`: the interface, and the two peer adapters.

A `Subject` performs the operations of project issue 3 on one implementation, for one
group size n, each call timing exactly the region it names and returning seconds. The
harness (`bench.group`) calls, per n: `create_add` k times, `setup_pair` once,
`encrypt_decrypt`, then alternately `commit` / `process` (sparse tree), `populate`,
`commit` / `process` again (full copath), then `setup_add_pair` and `process_add`, and
`memory` last. Everything that is not timed (KeyPackages, clients, signature keys,
joins) is prepared outside the timed regions.

Peers (suite 0x0001, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, RFC 9420 §17.1):
- mls-rs through its Python bindings (PyPI agentvault-mls-rs-uniffi, `mls_rs_uniffi`):
  a compiled Rust implementation; `add_members` / `commit` leave a pending commit that
  the committer applies by processing its own commit message (RFC 9420 §12.4.1 "MUST
  NOT apply ... until" the DS confirms), which is timed with the operation.
- rfc9420 (PyPI, pure Python): proposals are by reference only (§12.1: the proposer
  also caches its own proposal through `process_proposal`); its commits are applied at
  once. Its commits with an UpdatePath are rejected by every receiver (itself included),
  so its "process" of a path commit is reported as unsupported with the reason; the
  `process_add` row (a path-less Add commit, §12.4 Table 7) is the operation it can
  process. It is a speed baseline only (see /work/shared/notes/peers.md).

Peers are imported with importlib, so a missing package only removes its column.
"""

from __future__ import annotations

import gc
import importlib
import os
import time
import tracemalloc
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import MLSError, ParameterError
from mlsvc.group.config import default_capabilities

PAYLOAD = bytes(100)  # the application message of the issue: 100 bytes
T = TypeVar("T")


class PeerUnsupported(MLSError):
    """The implementation cannot perform this operation; the message says why."""


def timed(fn: Callable[[], object]) -> float:
    """Seconds spent in fn(), with the cyclic GC paused (as `timeit` does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def traced_bytes(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated (tracemalloc) after build() returns, while its result
    is alive (the Python memory retained by what build() made), and the result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def keep_first_last(items: list[T], item: T) -> None:
    """Append `item`, keeping only the first and the newest: the groups of earlier
    create + add repetitions are not used again (the first one receives the Add
    commits, the newest the path commits)."""
    if len(items) < 2:
        items.append(item)
    else:
        items[-1] = item


def copath_helpers(n: int) -> list[int]:
    """For n a power of two: a leaf under each copath node of leaf n-1 but the left
    half (the leftmost leaf of each copath subtree: n-2, n-4, ..., n/2; the creator,
    leaf 0, covers the left half; RFC 9420 Appendix C tree math)."""
    if n < 4 or n & (n - 1):
        raise ParameterError("copath_helpers needs a power of two >= 4")
    out, k = [], 1
    while 2 * k < n:
        out.append(n - 2 * k)
        k *= 2
    return out


class Subject(ABC):
    """One implementation at one group size n (see the module docstring)."""

    name: str = "?"

    def __init__(self, n: int, extra: int) -> None:
        """Prepare n-1 KeyPackages for the adds and `extra` more for `process_add`."""
        self.n = n
        self.extra = extra

    @abstractmethod
    def create_add(self) -> float:
        """Timed: create a group and add the n-1 members in one commit (applied)."""

    @abstractmethod
    def setup_pair(self) -> float:
        """Untimed for the table: the last member joins the newest group (Welcome),
        then the `copath_helpers` do. Returns the last member's join duration (one
        sample, shown as an extra row)."""

    @abstractmethod
    def encrypt_decrypt(self) -> float:
        """Timed: the last member encrypts PAYLOAD, the creator decrypts it."""

    @abstractmethod
    def commit(self) -> float:
        """Timed: the last member commits an empty commit (UpdatePath) and applies it."""

    @abstractmethod
    def process(self) -> float:
        """Timed: the creator processes the last `commit` (PeerUnsupported if it can't);
        then, untimed, the helpers process it too."""

    @abstractmethod
    def populate(self) -> None:
        """Untimed: fill the last member's copath (§7.4, §7.5) so that each copath
        node's resolution is that node alone. One member under each copath node
        commits with a path (the helpers of `copath_helpers`, joined in `setup_pair`
        and kept current by `process`, then the creator) and every member processes
        it. Afterwards the last member's commit is encrypted to log2(n) nodes, as in a
        group whose members have all committed once. PeerUnsupported if the
        implementation cannot process path commits."""

    @abstractmethod
    def setup_add_pair(self) -> None:
        """Untimed: member 1 joins the first group, to receive `process_add` commits."""

    @abstractmethod
    def process_add(self) -> float:
        """The first group's creator commits one Add (untimed); member 1 processes the
        commit (timed): a commit without a path, one new leaf."""

    @abstractmethod
    def memory(self) -> tuple[int | None, int | None]:
        """One member's state in the n-member group, in bytes: (Python objects kept,
        by `traced_bytes` of a join; serialized state, if the implementation can
        export it). None where not measurable."""


# --- mls-rs -------------------------------------------------------------------------------


class _StateCapture:
    """A GroupStateStorage that keeps what mls-rs writes: the serialized group state
    and its epoch records (the bytes mls-rs itself persists for a member)."""

    def __init__(self) -> None:
        self.states: dict[bytes, bytes] = {}
        self.epochs: dict[tuple[bytes, int], bytes] = {}

    def state(self, group_id: bytes) -> bytes | None:
        return self.states.get(group_id)

    def epoch(self, group_id: bytes, epoch_id: int) -> bytes | None:
        return self.epochs.get((group_id, epoch_id))

    def write(self, group_id: bytes, group_state: bytes, epoch_inserts: list[Any],
              epoch_updates: list[Any]) -> None:
        self.states[group_id] = group_state
        for record in [*epoch_inserts, *epoch_updates]:
            self.epochs[(group_id, int(record.id))] = bytes(record.data)

    def max_epoch_id(self, group_id: bytes) -> int | None:
        ids = [e for (g, e) in self.epochs if g == group_id]
        return max(ids) if ids else None


class MlsRs(Subject):
    name = "mls-rs"

    def __init__(self, n: int, extra: int) -> None:
        super().__init__(n, extra)
        m: Any = importlib.import_module("mls_rs_uniffi")
        self.m = m
        self.suite = m.CipherSuite.CURVE25519_AES128
        # the member whose state is measured persists into a capture (uniffi callback
        # interfaces must subclass the generated base class)
        self.capture = type("StateCapture", (_StateCapture, m.GroupStateStorage), {})()
        self.clients = [self._client(b"m%d" % i) for i in range(1, n)]
        self.clients[1] = self._client(b"m2", self.capture)
        self.kps = [c.generate_key_package_message() for c in self.clients]
        self.extra_kps = [self._client(b"x%d" % i).generate_key_package_message()
                          for i in range(extra)]
        self.groups: list[Any] = []
        self.last: Any = None
        self.member1: Any = None
        self.pending: bytes = b""

    def _client(self, name: bytes, storage: Any = None) -> Any:
        m = self.m
        config = (m.client_config_default() if storage is None else
                  m.ClientConfig(group_state_storage=storage, use_ratchet_tree_extension=True))
        return m.Client(name, m.generate_signature_keypair(self.suite), config)

    def create_add(self) -> float:
        creator = self._client(b"m0")
        out: list[Any] = []

        def run() -> None:
            g = creator.create_group(None)
            o = g.add_members(self.kps)
            g.process_incoming_message(o.commit_message)  # apply our pending commit
            out.extend([g, o.welcome_message])

        seconds = timed(run)
        keep_first_last(self.groups, out)
        return seconds

    def setup_pair(self) -> float:
        creator, welcome = self.groups[-1]
        self.creator = creator
        start = time.perf_counter()
        self.last = self.clients[-1].join_group(None, welcome).group
        seconds = time.perf_counter() - start
        self.helpers = [self.clients[leaf - 1].join_group(None, welcome).group
                        for leaf in copath_helpers(self.n)]
        return seconds

    def encrypt_decrypt(self) -> float:
        m = self.m

        def run() -> None:
            data = self.last.encrypt_application_message(PAYLOAD).to_bytes()
            self.creator.process_incoming_message(m.Message.from_bytes(data))

        return timed(run)

    def commit(self) -> float:
        out: list[bytes] = []

        def run() -> None:
            o = self.last.commit()
            self.last.process_incoming_message(o.commit_message)  # apply own commit
            out.append(o.commit_message.to_bytes())

        seconds = timed(run)
        self.pending = out[0]
        return seconds

    def process(self) -> float:
        decode = self.m.Message.from_bytes
        seconds = timed(lambda: self.creator.process_incoming_message(decode(self.pending)))
        for h in self.helpers:
            h.process_incoming_message(decode(self.pending))
        return seconds

    def populate(self) -> None:
        decode = self.m.Message.from_bytes
        members = [self.creator, self.last, *self.helpers]
        for c in [*self.helpers, self.creator]:
            o = c.commit()
            c.process_incoming_message(o.commit_message)
            data = o.commit_message.to_bytes()
            for g in members:
                if g is not c:
                    g.process_incoming_message(decode(data))

    def setup_add_pair(self) -> None:
        if len(self.groups) < 2:  # only one create + add ran: make another (untimed)
            self.create_add()
        self.first_creator, welcome = self.groups[0]
        self.member1 = self.clients[0].join_group(None, welcome).group

    def process_add(self) -> float:
        decode = self.m.Message.from_bytes
        kp = self.extra_kps.pop()
        o = self.first_creator.add_members([kp])
        self.first_creator.process_incoming_message(o.commit_message)
        data = o.commit_message.to_bytes()
        return timed(lambda: self.member1.process_incoming_message(decode(data)))

    def memory(self) -> tuple[int | None, int | None]:
        """Its state lives on the Rust heap (invisible to tracemalloc): only the bytes
        `write_to_storage` persists (group state + epoch records) are measured."""
        _, welcome = self.groups[0]
        group = self.clients[1].join_group(None, welcome).group
        group.write_to_storage()
        size = sum(len(v) for v in self.capture.states.values())
        size += sum(len(v) for v in self.capture.epochs.values())
        return None, size


# --- rfc9420 ------------------------------------------------------------------------------


class Rfc9420(Subject):
    name = "rfc9420"

    def __init__(self, n: int, extra: int) -> None:
        super().__init__(n, extra)
        self.pkg: Any = importlib.import_module("rfc9420")
        self.session_cls: Any = importlib.import_module("rfc9420.api.session").MLSGroupSession
        kp_mod: Any = importlib.import_module("rfc9420.messages.key_packages")
        ds_mod: Any = importlib.import_module("rfc9420.messages.data_structures")
        self.kp_mod, self.ds_mod = kp_mod, ds_mod
        self.crypto = self.pkg.DefaultCryptoProvider(suite_id=0x0001)
        # Capabilities (§7.2) as the TLS structure: rfc9420 takes it as opaque bytes
        self.caps = default_capabilities(1).encode()
        # (KeyPackage, init private key, signature private key), member i at leaf i
        self.members = [self._member(b"m%d" % i) for i in range(n)]
        self.extras = [self._member(b"x%d" % i) for i in range(extra)]
        self.groups: list[tuple[Any, Any]] = []
        self.pending: bytes = b""
        self.last_leaf = n - 1

    def _config(self) -> Any:
        return self.pkg.GroupConfig(crypto_provider=self.crypto,
                                    storage_provider=self.pkg.MemoryStorageProvider())

    def _member(self, name: bytes) -> tuple[Any, bytes, bytes]:
        """A signed KeyPackage (§10) with signed LeafNode (§7.2), built field by field
        (rfc9420 has no KeyPackage builder)."""
        c, kp_mod, ds = self.crypto, self.kp_mod, self.ds_mod
        _, enc_pk = c.generate_key_pair()
        init_sk, init_pk = c.generate_key_pair()
        sig_sk, sig_pk = get_suite(1).signature.generate_key_pair(os.urandom)
        leaf = kp_mod.LeafNode(
            encryption_key=enc_pk, signature_key=sig_pk,
            credential=ds.Credential(identity=name, public_key=sig_pk),
            capabilities=self.caps, lifetime_not_after=(1 << 64) - 1,
        )
        leaf_sig = c.sign_with_label(sig_sk, b"LeafNodeTBS", leaf.tbs_serialize())
        leaf = kp_mod.LeafNode(**{**leaf.__dict__, "signature": ds.Signature(leaf_sig)})
        unsigned = kp_mod.KeyPackage(init_key=init_pk, leaf_node=leaf)
        kp_sig = c.sign_with_label(sig_sk, b"KeyPackageTBS", unsigned.tbs_serialize())
        kp = kp_mod.KeyPackage(init_key=init_pk, leaf_node=leaf,
                               signature=ds.Signature(kp_sig))
        return kp, init_sk, sig_sk

    def _join(self, welcome: Any, index: int) -> Any:
        kp, init_sk, _ = self.members[index]
        return self.session_cls.join_from_welcome_with_config(self._config(), welcome,
                                                              init_sk, key_package=kp)

    def create_add(self) -> float:
        creator_kp, _, creator_sk = self.members[0]
        out: list[Any] = []

        def run() -> None:
            s = self.session_cls.create_with_config(self._config(), b"bench", creator_kp)
            for kp, _, _ in self.members[1:]:
                s.process_proposal(s.add_member(kp, creator_sk), 0)
            _, welcomes = s.commit(creator_sk)
            out.extend([s, welcomes[0]])

        seconds = timed(run)
        keep_first_last(self.groups, (out[0], out[1]))
        return seconds

    def setup_pair(self) -> float:
        self.creator, welcome = self.groups[-1]
        start = time.perf_counter()
        self.last = self._join(welcome, self.last_leaf)
        return time.perf_counter() - start

    def encrypt_decrypt(self) -> float:
        sk = self.members[self.last_leaf][2]
        return timed(lambda: self.creator.unprotect_application(
            self.last.protect_application(PAYLOAD, sk)))

    def commit(self) -> float:
        sk = self.members[self.last_leaf][2]
        out: list[bytes] = []
        seconds = timed(lambda: out.append(self.last.commit(sk)[0]))
        self.pending = out[0]
        return seconds

    def process(self) -> float:
        try:
            return timed(lambda: self.creator.apply_commit(self.pending, self.last_leaf))
        except self.pkg.RFC9420Error as exc:  # 1.3.0 rejects its own path commits
            raise PeerUnsupported(f"{type(exc).__name__}: {exc}") from exc

    def populate(self) -> None:
        raise PeerUnsupported("needs path commits processed (see 'process, sparse tree')")

    def setup_add_pair(self) -> None:
        if len(self.groups) < 2:  # only one create + add ran: make another (untimed)
            self.create_add()
        self.first_creator, welcome = self.groups[0]
        self.member1 = self._join(welcome, 1)

    def process_add(self) -> float:
        kp = self.extras.pop()[0]
        creator_sk = self.members[0][2]
        proposal = self.first_creator.add_member(kp, creator_sk)
        self.first_creator.process_proposal(proposal, 0)
        commit, _ = self.first_creator.commit(creator_sk)
        # by reference (§12.1): the receiver's share is the proposal and the commit
        seconds = timed(lambda: self.member1.process_proposal(proposal, 0))
        return seconds + timed(lambda: self.member1.apply_commit(commit, 0))

    def memory(self) -> tuple[int | None, int | None]:
        _, welcome = self.groups[0]
        size, member = traced_bytes(lambda: self._join(welcome, 2))
        return size, len(member.serialize())


PEERS: tuple[type[Subject], ...] = (MlsRs, Rfc9420)


def load(cls: type[Subject], n: int, extra: int) -> Subject | str:
    """The subject, or why it is not available (package not installed)."""
    try:
        return cls(n, extra)
    except ImportError as exc:
        return f"not installed ({exc.name})"
