"""ts-mls 1.6.4 (TypeScript) as a `Peer`, through a long-lived Node process running
interop/ts-mls/bridge.mjs (installed with its pinned ts-mls by `make setup`: `npm ci`
in interop/ts-mls).

The script is found in the repository this package is installed (editable) from,
`<repo>/interop/ts-mls/bridge.mjs`, or at the path in $MLSVC_TS_MLS_BRIDGE.

The bridge protocol: JSON lines on stdin/stdout; a request {"seq", "verb", ...} gets
exactly one answer {"seq", "ok", ...}; bytes cross as hex. Reads are bounded: a reader
thread feeds a queue and every call waits at most `timeout` seconds, so a stuck or
crashed bridge gives an error with the bridge's stderr instead of hanging. A JS
exception comes back as {"ok": false, "error": "<message>"} and is raised here as
`PeerError` carrying that message. A bridge that cannot start or dies raises
`PeerUnavailable`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from mlsvc.messages.leaf_node import Node, RatchetTreeExtension
from mlsvc.peers.base import (
    INSTALL_HINT,
    CommitResult,
    Member,
    PeerError,
    PeerUnavailable,
    Received,
    key_package_of,
    unsupported,
)

BRIDGE_ENV = "MLSVC_TS_MLS_BRIDGE"
TIMEOUT_ENV = "MLSVC_INTEROP_TIMEOUT"
# impl/mlsvc/peers/ts_mls.py -> the repository root (the package is installed editable)
REPO_BRIDGE_SCRIPT = Path(__file__).resolve().parents[3] / "interop" / "ts-mls" / "bridge.mjs"
DEFAULT_TIMEOUT = float(os.environ.get(TIMEOUT_ENV, "60"))
TS_MLS_VERSION = "1.6.4"


def bridge_script() -> Path:
    """Where bridge.mjs is: $MLSVC_TS_MLS_BRIDGE, else the repository's."""
    override = os.environ.get(BRIDGE_ENV)
    return Path(override) if override else REPO_BRIDGE_SCRIPT


def ts_mls_problem(script: Path | None = None) -> str | None:
    """Why the ts-mls bridge cannot run here, or None when it can (not started: a
    static check of node, the script and its node_modules)."""
    script = bridge_script() if script is None else script
    if shutil.which("node") is None:
        return f"`node` (Node.js 20+) is not on PATH; install it, then {INSTALL_HINT}"
    if not script.is_file():
        return (f"no ts-mls bridge script at {script}; {INSTALL_HINT}, or set {BRIDGE_ENV} "
                f"to the path of interop/ts-mls/bridge.mjs")
    if not (script.parent / "node_modules" / "ts-mls" / "package.json").is_file():
        return (f"{script.parent / 'node_modules'} has no ts-mls (npm install was not run); "
                f"{INSTALL_HINT}")
    return None


class Bridge:
    """A running bridge process. Use `call(verb, **args)`; `close()` when done (or use
    it as a context manager)."""

    def __init__(self, script: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        script = bridge_script() if script is None else script
        node = shutil.which("node")
        if node is None:
            raise PeerUnavailable(f"node is not on PATH; install Node.js 20+, then "
                                  f"{INSTALL_HINT}")
        self.script = script
        self.timeout = timeout
        self._seq = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=50)
        try:
            self._proc = subprocess.Popen(
                [node, str(script)], cwd=script.parent, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
            )
        except OSError as e:
            raise PeerUnavailable(f"cannot start the ts-mls bridge {script} ({e}); "
                                  f"{INSTALL_HINT}") from e
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._pump(self._proc.stdout, self._lines.put)
        self._pump(self._proc.stderr, lambda line: self._stderr.append(line or ""))

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @staticmethod
    def _pump(stream: IO[str], sink: Any) -> None:
        def run() -> None:
            for line in stream:
                sink(line)
            sink(None)  # end of stream

        threading.Thread(target=run, daemon=True).start()

    def _diagnostics(self) -> str:
        code = self._proc.poll()
        tail = "".join(line for line in self._stderr if line).strip()
        state = "running" if code is None else f"exited with code {code}"
        return f"bridge {state}; stderr: {tail[-2000:] or '(empty)'}"

    def call(self, verb: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one request and wait (bounded) for its answer."""
        self._seq += 1
        seq = self._seq
        request = json.dumps({"seq": seq, "verb": verb, **args})
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(request + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:  # ValueError: closed by us
            raise PeerUnavailable(f"cannot write to the ts-mls bridge ({e}); "
                                  f"{self._diagnostics()}") from e
        limit = self.timeout if timeout is None else timeout
        while True:
            try:
                line = self._lines.get(timeout=limit)
            except queue.Empty:
                raise PeerError(f"ts-mls bridge gave no answer to {verb!r} within {limit} s; "
                                f"{self._diagnostics()}") from None
            if line is None:
                raise PeerUnavailable(f"the ts-mls bridge closed its output during {verb!r}; "
                                      f"{self._diagnostics()}")
            try:
                answer: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                raise PeerError(f"ts-mls bridge wrote a non-JSON line: {line[:200]!r}") from None
            if answer.get("seq") == seq:
                break
            # an answer to an earlier request that timed out: skip it
        if not answer.get("ok"):
            raise PeerError(f"ts-mls {verb}: {answer.get('error')}")
        return answer

    @property
    def running(self) -> bool:
        return self._proc.poll() is None and not (self._proc.stdin and self._proc.stdin.closed)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)


_shared: Bridge | None = None
_shared_lock = threading.Lock()


def start_bridge(script: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> Bridge:
    """A new bridge, checked to answer a ping; PeerUnavailable (with the install hint)
    when it cannot run or does not answer."""
    problem = ts_mls_problem(script)
    if problem is not None:
        raise PeerUnavailable(f"ts-mls: {problem}")
    bridge = Bridge(script, timeout)
    try:
        bridge.call("ping", timeout=min(timeout, 30))
    except PeerError as e:
        bridge.close()
        raise PeerUnavailable(f"ts-mls: the bridge does not start: {e}; {INSTALL_HINT}") from e
    except PeerUnavailable:
        bridge.close()
        raise
    return bridge


def shared_bridge() -> Bridge:
    """One bridge per process, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = start_bridge()
            atexit.register(_shared.close)
        return _shared


def close_shared_bridge() -> None:
    """Stop the shared bridge now (it is started again on next use)."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None


class TsMlsPeer:
    """Options: `bridge` (default: the process's shared bridge), `private_handshake`
    (proposals and commits as PrivateMessage). `key_package` makes a new ts-mls client
    under this peer's id: call it before joining, not while in a group."""

    engine = "ts-mls"
    FEATURES = frozenset({"propose", "commit_update", "external_join", "psk",
                          "private_handshake", "epoch", "group_info"})
    SUITES = (1, 2, 3, 4, 5, 6, 7)
    _ids = 0

    def __init__(self, name: bytes, suite: int, *, bridge: Bridge | None = None,
                 private_handshake: bool = False) -> None:
        if suite not in self.SUITES:
            raise unsupported(self.engine, f"suite {suite}")
        TsMlsPeer._ids += 1
        self.id = f"{name.decode(errors='replace')}#{TsMlsPeer._ids}"
        self.name, self.suite = name, suite
        self.bridge = shared_bridge() if bridge is None else bridge
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
        self._sig_key = key_package_of(bytes.fromhex(kp_hex)).leaf_node.signature_key

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
            raise unsupported(self.engine, "resync external joins")
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

    def propose_update(self) -> bytes:
        raise unsupported(self.engine, "Update proposals (bridge.mjs has no update proposal)")

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

    def commit_pending(self) -> CommitResult:
        return self.commit()

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
        """Free the client in the bridge (nothing to free when the bridge is gone)."""
        with contextlib.suppress(PeerUnavailable):
            self._call("drop")
