"""The Python end of the ts-mls bridge (interop/ts-mls/bridge.mjs).

One long-lived `node` process per test session speaks JSON lines on stdin/stdout:
a request {"seq", "verb", ...} gets exactly one answer {"seq", "ok", ...}; bytes cross
as hex. Reads are bounded: a reader thread feeds a queue and every call waits at most
`timeout` seconds, so a stuck or crashed bridge fails the test with the bridge's stderr
instead of hanging it. A JS exception comes back as {"ok": false, "error": "<message>"}
and is raised here as `PeerError` carrying that message.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

from mlsvc.errors import MLSError
from tests.conftest import ROOT

BRIDGE_DIR = ROOT / "interop" / "ts-mls"
BRIDGE_SCRIPT = BRIDGE_DIR / "bridge.mjs"
DEFAULT_TIMEOUT = float(os.environ.get("MLSVC_INTEROP_TIMEOUT", "60"))


class PeerError(MLSError):
    """A peer engine refused an operation (its own error message is kept)."""


class PeerUnavailable(MLSError):
    """A peer engine is not installed or does not start."""


def ts_mls_problem() -> str | None:
    """Why the ts-mls bridge cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "`node` (Node.js 20+) is not on PATH"
    if not (BRIDGE_DIR / "node_modules" / "ts-mls" / "package.json").is_file():
        return f"{BRIDGE_DIR / 'node_modules'} has no ts-mls (npm install was not run)"
    return None


class Bridge:
    """A running bridge process. Use `call(verb, **args)`; `close()` when done."""

    def __init__(self, script: Path = BRIDGE_SCRIPT, timeout: float = DEFAULT_TIMEOUT) -> None:
        node = shutil.which("node")
        if node is None:
            raise PeerUnavailable("node is not on PATH")
        self.timeout = timeout
        self._seq = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=50)
        self._proc = subprocess.Popen(
            [node, str(script)], cwd=script.parent, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._pump(self._proc.stdout, self._lines.put)
        self._pump(self._proc.stderr, lambda line: self._stderr.append(line or ""))

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
        except (BrokenPipeError, OSError) as e:
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

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
