"""What only ts-mls offers among the peers, each direction with our engine: external
commits (RFC 9420 §12.4.3.2, with and without a resync Remove), PSK proposals (§8.4,
§12.1.4) by value, by reference and in a Welcome (§12.4.3.1 GroupSecrets.psks), and a
resumption PSK (§8.6). PrivateMessage handshakes and all seven suites are in
test_pairs.py.
"""

from __future__ import annotations

import pytest

from mlsvc.errors import DecodeError, ValidationError
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.peers import Peer, PeerError, TsMlsPeer
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun

DIRECTIONS = [pytest.param("ours", "ts-mls", id="ours-creates"),
              pytest.param("ts-mls", "ours", id="ts-mls-creates")]
SUITED = [pytest.param(x, y, suite, id=f"{x}-creates-suite{suite}")
          for suite in range(1, 8) for x, y in (("ours", "ts-mls"), ("ts-mls", "ours"))]
PSK_ID, PSK = b"interop psk", b"a secret both engines were given out of band"


@pytest.mark.parametrize(("x", "y", "suite"), SUITED)
def test_external_join(make_peer: PeerFactory, x: str, y: str, suite: int) -> None:
    """A Y client joins an X group from X's GroupInfo (external_pub + ratchet_tree
    extensions); then an X client joins from the Y member's GroupInfo."""
    a, b, c = (make_peer(e, n, suite) for e, n in ((x, "alice"), (y, "bob"), (x, "carol")))
    run = GroupRun.create(a)
    run.external_join(b, source=a)      # Y's external commit, X processes
    run.messages()
    run.external_join(c, source=b)      # X's external commit from Y's GroupInfo
    run.messages()
    run.commit(b, remove=[a])
    run.commit(c)
    run.messages()


@pytest.mark.parametrize("creator", ["ours", "ts-mls"])
def test_external_join_resync(make_peer: PeerFactory, creator: str) -> None:
    """Our client re-joins by an external commit that removes its old leaf (§12.4.3.2:
    "a Remove proposal ... to remove the old leaf"); ts-mls members process it."""
    a, t, o = make_peer(creator, "alice"), make_peer("ts-mls", "tom"), make_peer("ours", "oz")
    run = GroupRun.create(a)
    run.commit(a, add=[t, o])
    again = make_peer("ours", "oz")
    run.external_join(again, source=t, resync=o)
    run.messages()


def _with_psk(*peers: Peer) -> None:
    for p in peers:
        p.add_external_psk(PSK_ID, PSK)


@pytest.mark.parametrize(("x", "y", "suite"), SUITED)
def test_external_psk(make_peer: PeerFactory, x: str, y: str, suite: int) -> None:
    a, b, c, d = (make_peer(e, n, suite) for e, n in ((x, "alice"), (y, "bob"),
                                                       (x, "carol"), (y, "dave")))
    _with_psk(a, b, c, d)
    run = GroupRun.create(a)
    run.commit(a, add=[b])
    run.commit(a, psks=[PSK_ID])                    # X commits a PSK by value
    run.commit(b, psks=[PSK_ID])                    # Y commits a PSK by value
    run.propose_and_commit(a, b, psks=[PSK_ID])     # X proposes, Y commits by reference
    run.propose_and_commit(b, a, psks=[PSK_ID])     # Y proposes, X commits by reference
    run.commit(b, add=[c], psks=[PSK_ID])           # a Welcome that needs the PSK (X joins)
    run.commit(c, add=[d], psks=[PSK_ID])           # ... and Y joins one
    run.messages()


@pytest.mark.parametrize(("x", "y"), DIRECTIONS)
def test_resumption_psk(make_peer: PeerFactory, x: str, y: str) -> None:
    """Resumption PSKs (§8.6, usage application) of the current and of an earlier epoch,
    committed by each engine and processed by the other."""
    a, b = make_peer(x, "alice"), make_peer(y, "bob")
    run = GroupRun.create(a)
    run.commit(a, add=[b])
    run.commit(b)
    run.commit(a, resumption=[run.epoch])        # X: this epoch's resumption_psk
    run.commit(b, resumption=[run.epoch])        # Y: likewise
    run.commit(a, resumption=[run.epoch - 2])    # X: an earlier epoch's
    run.commit(b, resumption=[run.epoch - 1, run.epoch])
    run.messages()


@pytest.mark.parametrize(("x", "y"), DIRECTIONS)
def test_external_psk_unknown_is_rejected(make_peer: PeerFactory, x: str, y: str) -> None:
    """§8.4: a PSK a member does not have makes the commit unprocessable; both engines
    refuse (neither silently substitutes a zero PSK)."""
    a, b = make_peer(x, "alice"), make_peer(y, "bob")
    a.add_external_psk(PSK_ID, PSK)
    run = GroupRun.create(a)
    run.commit(a, add=[b])
    out = a.commit(psks=[PSK_ID])
    with pytest.raises((ValidationError, PeerError)) as info:
        b.process(out.commit)
    assert "psk" in str(info.value).lower()


# --- the external_pub encoding (RFC 9420 §12.4.3.2, §5.1.1) --------------------------

EXTERNAL_PUB_TYPE = 0x0004  # RFC 9420 §17.3 ExtensionType external_pub
X25519_NPK = 32  # RFC 9180 §7.1: Npk of DHKEM(X25519, HKDF-SHA256), suite 1
TS_MLS_EXTERNAL_PUB = ("ts-mls 1.6.4 encodes the external_pub extension as the bare key; "
                       "RFC 9420 §12.4.3.2 defines ExternalPub as a struct holding "
                       "`opaque HPKEPublicKey<V>` (§5.1.1), i.e. with a varint length "
                       "prefix (fixed upstream after 1.6.4, LukaJCB/ts-mls PR #449)")


def _external_pub_data(group_info: bytes) -> bytes:
    body = MLSMessage.decode(group_info).body
    assert isinstance(body, GroupInfo)
    (data,) = [e.extension_data for e in body.extensions
               if e.extension_type == EXTERNAL_PUB_TYPE]
    return data


@pytest.mark.parametrize("engine", ["ours", "ts-mls"])
def test_external_pub_is_length_prefixed(make_peer: PeerFactory, engine: str) -> None:
    """The extension data is a one-byte varint 32 then the 32-byte X25519 key (§2.1.2
    variable-size vector encoding); the ts-mls row is checked on the bridge's RFC mode."""
    p = make_peer(engine, "alice")
    p.create(b"g")
    data = _external_pub_data(p.group_info() or b"")
    assert len(data) == 1 + X25519_NPK and data[0] == X25519_NPK


@pytest.mark.xfail(strict=True, raises=(DecodeError, AssertionError),
                   reason=TS_MLS_EXTERNAL_PUB)
def test_ts_mls_native_external_pub(make_peer: PeerFactory) -> None:
    t = make_peer("ts-mls", "tom")
    assert isinstance(t, TsMlsPeer)
    t.external_pub = "native"
    t.create(b"g")
    data = _external_pub_data(t.group_info() or b"")
    assert len(data) == 1 + X25519_NPK, f"external_pub data is {len(data)} bytes"


@pytest.mark.xfail(strict=True, raises=PeerError, reason=TS_MLS_EXTERNAL_PUB)
def test_ts_mls_native_external_join_from_our_group_info(make_peer: PeerFactory) -> None:
    """Without the bridge's translation ts-mls cannot read an RFC-encoded external_pub."""
    a, t = make_peer("ours", "alice"), make_peer("ts-mls", "tom")
    assert isinstance(t, TsMlsPeer)
    t.external_pub = "native"
    run = GroupRun.create(a)
    run.external_join(t, source=a)
