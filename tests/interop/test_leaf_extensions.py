"""Do mls-rs and ts-mls accept a member whose LeafNodes carry an extension unknown to
them? Our virtual clients put an `app_data_dictionary` extension (type 0x0006,
draft-ietf-mls-extensions §4.6, listed in the leaf's capabilities.extensions as RFC 9420
§7.2 requires) in every LeafNode they publish: the KeyPackage leaf, commit path leaves
and Updates.

Findings (ts-mls 1.6.4, mls-rs through agentvault-mls-rs-uniffi 0.1.1, suite 1):
- both accept such a KeyPackage (Add, Welcome), our commit whose path leaf carries it,
  our Update carrying it, and a Welcome whose ratchet tree holds it; they keep the leaf
  bit for bit, and application messages flow both ways;
- both reject the same leaf when its capabilities do not list 0x0006, as RFC 9420 §7.2
  requires ("capabilities must describe extensions used" from mls-rs, "ValidationError:
  LeafNode contains extension not listed in capabilities" from ts-mls; our engine:
  LN-EXTENSIONS-SUPPORTED).
"""

from __future__ import annotations

import pytest

from mlsvc.errors import MLSError
from mlsvc.ext.components import AppDataDictionary, capabilities_with_dictionary
from mlsvc.group.config import default_capabilities
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.extensions import Extension
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.peers import OurPeer, Peer
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun

APP_DATA_DICTIONARY = 0x0006
COMPONENT = 0x8001  # the virtual clients' DerivationInfo component (profile Q11)
CAPABILITIES = capabilities_with_dictionary(default_capabilities(1))


def dictionary(data: bytes) -> Extension:
    ext = AppDataDictionary.of({COMPONENT: data}).to_extension()
    assert ext.extension_type == APP_DATA_DICTIONARY
    return ext


def vc_client(make_peer: PeerFactory, name: str, data: bytes) -> OurPeer:
    peer = make_peer("ours", name, capabilities=CAPABILITIES,
                     leaf_extensions=(dictionary(data),))
    assert isinstance(peer, OurPeer)
    return peer


def leaf_in(peer: Peer, holder: OurPeer) -> LeafNode:
    """`holder`'s leaf as `peer` holds it."""
    index = holder.g.own_leaf
    node = peer.ratchet_tree()[2 * index]
    assert isinstance(node, LeafNode)
    return node


def assert_everyone_keeps(run: GroupRun, vc: OurPeer, data: bytes,
                          source: LeafNodeSource) -> None:
    """Every member holds vc's own leaf bit for bit, with the dictionary `data`."""
    own = leaf_in(vc, vc)
    assert own.leaf_node_source == source
    assert own.extensions == (dictionary(data),)
    assert APP_DATA_DICTIONARY in own.capabilities.extensions
    for m in run.members:
        assert leaf_in(m, vc).encode() == own.encode(), f"{run.who(m)} changed vc's leaf"


@pytest.mark.parametrize("engine", ["mls-rs", "ts-mls"])
def test_peer_accepts_leaf_with_app_data_dictionary(make_peer: PeerFactory,
                                                   engine: str) -> None:
    creator = make_peer(engine, "creator")
    vc = vc_client(make_peer, "vc", b"key package leaf")
    run = GroupRun.create(creator)

    # 1. the peer adds our KeyPackage (leaf extension + capabilities), we join
    run.commit(creator, add=[vc])
    assert_everyone_keeps(run, vc, b"key package leaf", LeafNodeSource.KEY_PACKAGE)
    run.messages()

    # 2. we commit with a path whose leaf carries a new dictionary; the peer processes it
    vc.leaf_extensions = (dictionary(b"commit path leaf"),)
    run.commit(vc)
    assert_everyone_keeps(run, vc, b"commit path leaf", LeafNodeSource.COMMIT)
    run.messages()

    # 3. the peer adds a second client of its engine: a Welcome whose tree holds our leaf
    second = make_peer(engine, "second")
    run.commit(creator, add=[second])
    assert_everyone_keeps(run, vc, b"commit path leaf", LeafNodeSource.COMMIT)
    run.messages()

    # 4. our Update carrying a dictionary, committed by the peer
    vc.leaf_extensions = (dictionary(b"update leaf"),)
    run.update_and_commit(vc, creator)
    assert_everyone_keeps(run, vc, b"update leaf", LeafNodeSource.UPDATE)
    run.messages()

    # 5. and the peer's own path commit, with our leaf still in the tree
    run.commit(second)
    run.messages()
    run.close()


UNLISTED_REJECTION = {
    "ours": "LN-EXTENSIONS-SUPPORTED",
    "mls-rs": "capabilities must describe extensions used",
    "ts-mls": "LeafNode contains extension not listed in capabilities",
}


@pytest.mark.parametrize("engine", sorted(UNLISTED_REJECTION))
def test_unlisted_leaf_extension_is_rejected(make_peer: PeerFactory, engine: str) -> None:
    """The control: the same KeyPackage leaf without 0x0006 in its capabilities breaks
    RFC 9420 §7.2, and every engine refuses to add it."""
    creator = make_peer(engine, "creator")
    creator.create(b"unlisted extension")
    vc = make_peer("ours", "vc", leaf_extensions=(dictionary(b"not listed"),))
    kp = vc.key_package()
    with pytest.raises(MLSError) as caught:  # PeerError from a peer, ValidationError ours
        creator.commit(adds=[kp])
    assert UNLISTED_REJECTION[engine] in str(caught.value)
