"""Fixtures for the interop tests: the ts-mls bridge (one Node process per session)
and a `make_peer` factory over the three engines (the adapters live in mlsvc.peers).

A missing peer (mls_rs_uniffi not importable, no `node`, no interop/ts-mls/node_modules)
FAILS the tests that need it, with how to install it (`make setup`). A developer without
them may set MLSVC_INTEROP_SKIP=1 to skip those tests instead; the skip is reported in
the skip reasons and again in a banner at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlsvc import peers
from mlsvc.peers import Bridge, Peer, PeerError, PeerUnavailable

SKIP_ENV = "MLSVC_INTEROP_SKIP"
INSTALL_HINT = ("install the interop peers with `make setup` (pip extra `interop`: "
                "agentvault-mls-rs-uniffi; `npm ci` in interop/ts-mls), or set "
                f"{SKIP_ENV}=1 to skip the interop tests locally")
_skipped: set[str] = set()

PeerFactory = Callable[..., Peer]


def missing_peer(engine: str, problem: str) -> None:
    """Fail (default) or, with MLSVC_INTEROP_SKIP=1, skip loudly."""
    if os.environ.get(SKIP_ENV) == "1":
        reason = f"INTEROP PEER {engine} MISSING ({problem}); skipped because {SKIP_ENV}=1"
        _skipped.add(reason)
        pytest.skip(reason)
    pytest.fail(f"interop peer {engine} is missing: {problem}; {INSTALL_HINT}", pytrace=False)


def require(engine: str) -> None:
    """The missing-peer policy for `engine` when mlsvc.peers says it cannot run here."""
    problem = peers.available(engine)
    if problem is not None:
        missing_peer(engine, problem)


@pytest.fixture(scope="session")
def ts_bridge() -> Iterator[Bridge]:
    require("ts-mls")
    try:
        bridge = Bridge()
        bridge.call("ping", timeout=30)
    except (PeerUnavailable, PeerError) as e:
        missing_peer("ts-mls", f"the bridge does not start: {e}")
        raise  # not reached
    yield bridge
    bridge.close()


@pytest.fixture
def make_peer(request: pytest.FixtureRequest) -> Iterator[PeerFactory]:
    """make_peer(engine, name, suite=1, private_handshake=False, **options) -> Peer
    (mlsvc.peers.make_peer, with the session bridge and a per-test seed); every peer
    made is closed at the end of the test."""
    made: list[Peer] = []
    seed = request.node.nodeid.encode()

    def make(engine: str, name: str, suite: int = 1, private_handshake: bool = False,
             **options: Any) -> Peer:
        engine = peers.canonical(engine)
        require(engine)
        if engine == "ts-mls":
            options["bridge"] = request.getfixturevalue("ts_bridge")
        # one random stream per client made (two clients may share a name)
        options["seed"] = seed + b"#" + str(len(made)).encode()
        peer = peers.make_peer(engine, name.encode(), suite,
                               private_handshake=private_handshake, **options)
        made.append(peer)
        return peer

    yield make
    for p in made:
        # if the bridge failed, the test has already failed; nothing left to free
        with contextlib.suppress(PeerError, PeerUnavailable):
            p.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        tr = terminalreporter
        tr.section("INTEROP TESTS SKIPPED", sep="!", red=True, bold=True)
        for reason in sorted(_skipped):
            tr.write_line(reason, red=True, bold=True)
        tr.write_line(f"Unset {SKIP_ENV} and run `make setup` to run them.", red=True)
