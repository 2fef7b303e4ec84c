"""MLS peers: this project's engine and two independent implementations behind one
`Peer` interface, for interop tests and `mlsvc vc simulate`.

    from mlsvc.peers import make_peer, available
    problem = available("ts-mls")          # None, or why it cannot run here
    alice = make_peer("mls-rs", b"alice", 1)
    bob = make_peer("mlsvc", b"bob", 1, seed=b"run 1")

Engines (`ENGINES`): "ours" (alias "mlsvc"; this project's mlsvc.group, in-process),
"mls-rs" (AWS mls-rs through the PyPI uniffi bindings, in-process, suite 1 only) and
"ts-mls" (ts-mls 1.6.4 through a Node bridge, interop/ts-mls/bridge.mjs). `FEATURES`
names the optional operations each adapter offers (see base.OPTIONAL_FEATURES),
`SUITES` the cipher suites.

mls-rs and ts-mls are optional dependencies installed by `make setup`; a missing one
gives `PeerUnavailable` with the install hint, never an import error.
"""

from __future__ import annotations

from typing import Any

from mlsvc.errors import ParameterError
from mlsvc.peers.base import (
    INSTALL_HINT,
    OPTIONAL_FEATURES,
    CommitResult,
    Member,
    Peer,
    PeerError,
    PeerUnavailable,
    Received,
    roster_of_nodes,
)
from mlsvc.peers.mls_rs import MlsRsPeer, mls_rs_problem
from mlsvc.peers.ours import OurPeer
from mlsvc.peers.ts_mls import (
    Bridge,
    TsMlsPeer,
    close_shared_bridge,
    shared_bridge,
    start_bridge,
    ts_mls_problem,
)

__all__ = [
    "ALIASES", "ALL_SUITES", "ENGINES", "FEATURES", "INSTALL_HINT", "OPTIONAL_FEATURES",
    "SUITES", "Bridge", "CommitResult", "Member", "MlsRsPeer", "OurPeer", "Peer", "PeerError",
    "PeerUnavailable", "Received", "TsMlsPeer", "available", "canonical", "close_shared_bridge",
    "make_peer", "roster_of_nodes", "shared_bridge", "start_bridge",
]

ENGINES = ("ours", "mls-rs", "ts-mls")
ALIASES = {"mlsvc": "ours"}
ALL_SUITES = (1, 2, 3, 4, 5, 6, 7)
FEATURES: dict[str, frozenset[str]] = {
    "ours": OurPeer.FEATURES, "mls-rs": MlsRsPeer.FEATURES, "ts-mls": TsMlsPeer.FEATURES,
}
SUITES: dict[str, tuple[int, ...]] = {
    "ours": ALL_SUITES, "mls-rs": MlsRsPeer.SUITES, "ts-mls": TsMlsPeer.SUITES,
}
# Options every engine takes (ignored where they mean nothing: the peers draw their own
# randomness, and mls-rs sends its handshakes as PublicMessage), then each engine's own.
_COMMON_OPTIONS = frozenset({"seed", "private_handshake"})
_OPTIONS: dict[str, frozenset[str]] = {
    "ours": frozenset({"seed", "private_handshake", "capabilities", "leaf_extensions"}),
    "mls-rs": frozenset(),
    "ts-mls": frozenset({"bridge", "private_handshake"}),
}


def canonical(engine: str) -> str:
    """The engine's name in ENGINES ("mlsvc" -> "ours"); ParameterError if unknown."""
    name = ALIASES.get(engine, engine)
    if name not in ENGINES:
        known = ", ".join((*ENGINES, *ALIASES))
        raise ParameterError(f"unknown MLS engine {engine!r} (known: {known})")
    return name


def available(engine: str) -> str | None:
    """None when `engine` can run here, else why not (with how to install it). A static
    check: the ts-mls bridge is not started."""
    try:
        name = canonical(engine)
    except ParameterError as e:
        return str(e)
    if name == "mls-rs":
        return mls_rs_problem()
    if name == "ts-mls":
        return ts_mls_problem()
    return None


def make_peer(engine: str, name: bytes, suite: int, **options: Any) -> Peer:
    """A new client `name` of `engine` for cipher suite `suite`.

    Options: `seed` and `private_handshake` for any engine (see each adapter),
    `capabilities` and `leaf_extensions` for "ours", `bridge` for "ts-mls" (default: one
    shared bridge process, started on first use). PeerUnavailable when the engine is
    not installed here, PeerError when it does not offer `suite`, ParameterError for an
    unknown engine or option."""
    eng = canonical(engine)
    unknown = set(options) - _OPTIONS[eng] - _COMMON_OPTIONS
    if unknown:
        raise ParameterError(f"{eng} peers take no option {', '.join(sorted(unknown))}")
    kept = {k: v for k, v in options.items() if k in _OPTIONS[eng]}
    if suite not in SUITES[eng]:
        raise PeerError(f"{eng} adapter does not offer suite {suite} "
                        f"(it offers {', '.join(map(str, SUITES[eng]))})")
    problem = None if "bridge" in kept else available(eng)
    if problem is not None:
        raise PeerUnavailable(f"{eng} is not available: {problem}")
    if eng == "ours":
        return OurPeer(name, suite, **kept)
    if eng == "mls-rs":
        return MlsRsPeer(name, suite)
    return TsMlsPeer(name, suite, **kept)
