"""The ts-mls bridge itself: JS failures come back as errors carrying the JS message,
a slow answer times out instead of hanging (and later calls still pair up with their
own answers), a bridge that dies is reported with its stderr, and a missing peer fails
with the install hint unless MLSVC_INTEROP_SKIP=1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlsvc.peers import Bridge, PeerError, PeerUnavailable
from mlsvc.peers.ts_mls import ts_mls_problem
from tests.interop import conftest as interop


def test_unknown_verb_is_an_error(ts_bridge: Bridge) -> None:
    with pytest.raises(PeerError, match="unknown verb frobnicate"):
        ts_bridge.call("frobnicate")


def test_js_exception_message_comes_back(ts_bridge: Bridge) -> None:
    with pytest.raises(PeerError, match="no client nobody"):
        ts_bridge.call("state", client="nobody")
    ts_bridge.call("key_package", client="kp-only", suite=1, identity="00")
    with pytest.raises(PeerError, match="not in a group"):
        ts_bridge.call("process", client="kp-only", message="0001")


def test_undecodable_message(ts_bridge: Bridge) -> None:
    ts_bridge.call("create", client="bridge-test", suite=1, identity="01", group_id="02")
    with pytest.raises(PeerError, match="ts-mls process"):
        ts_bridge.call("process", client="bridge-test", message="ffff")
    ts_bridge.call("drop", client="bridge-test")


def test_slow_answer_times_out_and_the_next_call_still_pairs(ts_bridge: Bridge) -> None:
    with pytest.raises(PeerError, match="no answer to 'sleep' within"):
        ts_bridge.call("sleep", ms=1500, timeout=0.2)
    assert ts_bridge.call("ping")["ts_mls"] == "1.6.4"  # the late answer is skipped


def test_dead_bridge_reports_its_stderr(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("no node here (covered by the missing-peer tests)")
    script = tmp_path / "dies.mjs"
    script.write_text('console.error("boom from the bridge"); process.exit(3);\n')
    bridge = Bridge(script, timeout=10)
    with pytest.raises(PeerUnavailable, match="boom from the bridge"):
        bridge.call("ping")
    bridge.close()


def test_missing_node_is_diagnosed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    problem = ts_mls_problem()
    assert problem is not None and "node" in problem


def test_missing_peer_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(interop.SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="make setup"):
        interop.missing_peer("ts-mls", "no node")


def test_missing_peer_skips_loudly_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(interop.SKIP_ENV, "1")
    before = set(interop._skipped)
    with pytest.raises(pytest.skip.Exception, match="INTEROP PEER ts-mls MISSING"):
        interop.missing_peer("ts-mls", "no node")
    interop._skipped.intersection_update(before)  # this test's skip is not a real one
