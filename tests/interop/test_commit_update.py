"""An Update proposal (RFC 9420 §12.1.2) from one member, committed by another (§12.4):
what a virtual client's emulator needs when it refreshes its leaf and another member
(possibly running another engine) commits. Only our engine's adapter can send an
Update (the mls-rs bindings and the ts-mls bridge have no Update proposal); every engine
must be able to commit one it received, and every member must then hold the updater's
new LeafNode (source `update`, new encryption key) and agree on the epoch."""

from __future__ import annotations

import pytest

from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.peers import ENGINES, FEATURES, Peer, PeerError
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun


def leaf(peer: Peer, index: int) -> LeafNode:
    node = peer.ratchet_tree()[2 * index]
    assert isinstance(node, LeafNode), f"leaf {index} is blank in {peer.engine}'s tree"
    return node


@pytest.mark.parametrize("committer", ENGINES)
def test_commit_received_update(make_peer: PeerFactory, committer: str) -> None:
    """The committer's engine creates the group and adds our updater and a member of
    every other engine; the updater proposes an Update, the committer commits it, all
    agree; then the same once more after messages in the new epoch."""
    assert "commit_update" in FEATURES[committer]
    creator = make_peer(committer, "committer")
    updater = make_peer("ours", "updater")
    others = [make_peer(e, f"other-{e}") for e in ENGINES if e != committer]
    run = GroupRun.create(creator)
    run.commit(creator, add=[updater, *others])
    where, _ = run.leaf_of(updater)
    for _ in range(2):
        before = leaf(creator, where)
        run.update_and_commit(updater, creator)
        new = {leaf(m, where) for m in run.members}
        assert len(new) == 1, "members hold different leaves for the updater"
        (node,) = new
        assert node.leaf_node_source == LeafNodeSource.UPDATE
        assert node.encryption_key != before.encryption_key
        run.messages()
    run.close()


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "ours"])
def test_peers_send_no_update(make_peer: PeerFactory, engine: str) -> None:
    """The mls-rs bindings and the ts-mls bridge cannot send an Update: their adapters
    say so (FEATURES) and refuse with PeerError."""
    assert "propose_update" not in FEATURES[engine]
    peer = make_peer(engine, "peer")
    peer.create(b"no update")
    with pytest.raises(PeerError, match="does not offer Update proposals"):
        peer.propose_update()
