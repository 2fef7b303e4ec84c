"""mlsvc.peers as the library's command line uses it: engine names and aliases, options,
the problem report, the shared ts-mls bridge, and a missing peer reported as
PeerUnavailable with the install hint (never an ImportError or a crash)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlsvc import peers
from mlsvc.errors import MLSError, ParameterError
from mlsvc.peers import ts_mls
from tests.interop.conftest import missing_peer, require


def test_engine_names() -> None:
    assert peers.ENGINES == ("ours", "mls-rs", "ts-mls")
    assert peers.canonical("mlsvc") == "ours"
    assert set(peers.FEATURES) == set(peers.SUITES) == set(peers.ENGINES)
    for features in peers.FEATURES.values():
        assert features <= peers.OPTIONAL_FEATURES
    with pytest.raises(ParameterError, match="unknown MLS engine 'openmls'"):
        peers.make_peer("openmls", b"x", 1)
    assert "unknown MLS engine" in (peers.available("openmls") or "")
    assert peers.available("mlsvc") is None
    assert issubclass(peers.PeerError, MLSError) and issubclass(peers.PeerUnavailable, MLSError)


def test_mlsvc_alias_makes_our_peer() -> None:
    a = peers.make_peer("mlsvc", b"a", 3, seed=b"alias")
    b = peers.make_peer("ours", b"b", 3, seed=b"alias", private_handshake=True)
    assert isinstance(a, peers.OurPeer) and a.engine == "ours" and a.suite == 3
    a.create(b"alias group")
    out = a.commit(adds=[b.key_package()])
    assert out.welcome is not None and out.group_info is not None
    b.join(out.welcome)
    assert b.process(a.encrypt(b"hi")) == peers.Received("application", b"hi")
    assert a.export(b"l", b"c", 16) == b.export(b"l", b"c", 16)


def test_options_and_suites_are_checked() -> None:
    with pytest.raises(ParameterError, match="no option bridge"):
        peers.make_peer("ours", b"x", 1, bridge=None)
    with pytest.raises(ParameterError, match="no option leaf_extensions"):
        peers.make_peer("mls-rs", b"x", 1, leaf_extensions=())
    with pytest.raises(peers.PeerError, match="does not offer suite 2"):
        peers.make_peer("mls-rs", b"x", 2)


def test_bridge_script_is_found_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ts_mls.BRIDGE_ENV, raising=False)
    assert ts_mls.bridge_script() == Path(__file__).resolve().parents[2] / "interop" / \
        "ts-mls" / "bridge.mjs"
    assert ts_mls.bridge_script().is_file()


def test_bridge_script_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if shutil.which("node") is None:  # the project's missing-peer policy: fail, or skip loudly
        missing_peer("ts-mls", "node is not on PATH")
    missing = tmp_path / "nowhere" / "bridge.mjs"
    monkeypatch.setenv(ts_mls.BRIDGE_ENV, str(missing))
    assert ts_mls.bridge_script() == missing
    problem = peers.available("ts-mls")
    assert problem is not None and str(missing) in problem and "make setup" in problem
    with pytest.raises(peers.PeerUnavailable, match="make setup"):
        peers.make_peer("ts-mls", b"x", 1)
    script = tmp_path / "bridge.mjs"  # a script without its node_modules
    script.write_text("")
    monkeypatch.setenv(ts_mls.BRIDGE_ENV, str(script))
    problem = peers.available("ts-mls")
    assert problem is not None and "npm install was not run" in problem
    assert "make setup" in problem


def test_missing_node_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "node" in (peers.available("ts-mls") or "")
    with pytest.raises(peers.PeerUnavailable, match="make setup"):
        peers.make_peer("ts-mls", b"x", 1)
    with pytest.raises(peers.PeerUnavailable, match="make setup"):
        peers.Bridge()
    with pytest.raises(peers.PeerUnavailable, match="make setup"):
        ts_mls.start_bridge()


def test_missing_mls_rs_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module() -> object:
        raise ImportError("No module named 'mls_rs_uniffi'")

    monkeypatch.setattr(peers.mls_rs, "load_mls_rs", no_module)
    assert "mls_rs_uniffi" in (peers.available("mls-rs") or "")
    with pytest.raises(peers.PeerUnavailable, match="make setup"):
        peers.make_peer("mls-rs", b"x", 1)


def test_shared_bridge_three_engines() -> None:
    """Without a `bridge` option, ts-mls peers share one bridge started on first use."""
    require("ts-mls")
    require("mls-rs")
    try:
        t = peers.make_peer("ts-mls", b"t", 1)
        u = peers.make_peer("ts-mls", b"u", 1)
        assert isinstance(t, peers.TsMlsPeer) and isinstance(u, peers.TsMlsPeer)
        assert t.bridge is u.bridge is peers.shared_bridge()
        r = peers.make_peer("mls-rs", b"r", 1)
        o = peers.make_peer("mlsvc", b"o", 1, seed=b"shared")
        t.create(b"shared bridge")
        out = t.commit(adds=[r.key_package(), o.key_package()])
        assert out.welcome is not None
        r.join(out.welcome)
        o.join(out.welcome)
        for sender in (t, r, o):
            for receiver in {t, r, o} - {sender}:
                got = receiver.process(sender.encrypt(b"from " + sender.name))
                assert got == peers.Received("application", b"from " + sender.name)
        values = {p.export(b"shared", b"", 32) for p in (t, r, o)}
        assert len(values) == 1
        assert r.epoch_authenticator() is None and r.group_info() is None
        assert t.epoch_authenticator() == o.epoch_authenticator()
        t.close()
    finally:
        peers.close_shared_bridge()
