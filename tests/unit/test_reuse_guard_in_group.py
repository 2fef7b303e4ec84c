"""The reuse guard of draft-00 §5.8 through the engine's reuse_guard parameter: the
message decrypts for every member, and an emulator holding leaf_node_secret recovers
the sending emulator's leaf index from the PrivateMessage on the wire."""

from __future__ import annotations

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.group.events import ApplicationMessage
from mlsvc.messages.framing import PrivateMessage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.protection import decrypt_sender_data
from mlsvc.tree.secret_tree import RatchetType, SecretTree
from mlsvc.types import LeafIndex
from mlsvc.vc.reuse_guard import make_reuse_guard, recover_leaf_index
from tests.unit.test_group import grow

EMULATION = get_suite(1)  # the emulation group's suite (Q3)
LEAF_NODE_SECRET = bytes(range(32))  # P8: known to every emulator of the virtual client


def test_reuse_guard_from_the_nonce_round_trips_through_a_group() -> None:
    a, b, c = grow(1, 3)
    seen: list[bytes] = []

    def guard(nonce: bytes, generation: int) -> bytes:
        seen.append(nonce)
        # emulator 5 of an emulation group of 8 leaves (P9)
        return make_reuse_guard(EMULATION, LEAF_NODE_SECRET, nonce, LeafIndex(5), 8,
                                SeededRandom(b"emulator 5"))

    wire = a.encrypt(b"from the virtual client", reuse_guard=guard)
    # b's view of the epoch's secret tree before it consumes the message's key
    before = SecretTree.from_state(b.state.cs, b.state.secret_tree.state.copy())
    for g in (b, c):
        event = g.process(wire)
        assert isinstance(event, ApplicationMessage) and event.data == b"from the virtual client"

    # an emulator recovers the sender from the wire: sender data gives the reuse guard,
    # its own secret tree the key_schedule_nonce of that (leaf, generation) (Q5)
    body = MLSMessage.decode(wire).body
    assert isinstance(body, PrivateMessage)
    s = b.state
    sender_data = decrypt_sender_data(s.cs, body, s.secrets.sender_data_secret)
    assert sender_data.leaf_index == a.own_leaf
    _, nonce = before.peek_key(LeafIndex(sender_data.leaf_index), RatchetType.APPLICATION,
                               sender_data.generation)
    assert nonce == seen[0]
    assert recover_leaf_index(EMULATION, LEAF_NODE_SECRET, nonce, sender_data.reuse_guard,
                              8) == 5
