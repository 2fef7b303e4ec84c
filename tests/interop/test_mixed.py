"""Groups of all three engines at once (suite 1): one Welcome for joiners of two other
engines (RFC 9420 §12.4.3.1), UpdatePaths whose HPKE ciphertexts go to members of two
other engines (§7.6, §12.4.2), proposals by reference across engines (§12.1), removes
(§12.1.3), application messages (§6.3), with the agreement check at every epoch.
Handshakes as PublicMessage and, from ours and ts-mls, as PrivateMessage (mls-rs always
sends PublicMessage but must read both).
"""

from __future__ import annotations

import itertools

import pytest

from mlsvc.peers import ENGINES
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun

CASES = [pytest.param(creator, private,
                      id=f"{creator}-creates-{'private' if private else 'public'}")
         for creator, private in itertools.product(ENGINES, (False, True))]


@pytest.mark.parametrize(("creator", "private"), CASES)
def test_three_engines(make_peer: PeerFactory, creator: str, private: bool) -> None:
    others = [e for e in ENGINES if e != creator]
    a = make_peer(creator, "alice", private_handshake=private)
    b = make_peer(others[0], "bob", private_handshake=private)
    c = make_peer(others[1], "carol", private_handshake=private)
    run = GroupRun.create(a, group_id=f"mixed/{creator}".encode())
    run.commit(a, add=[b, c])            # one Welcome, two engines join
    run.messages()
    for m in (a, b, c):                  # each engine's UpdatePath, the two others decrypt
        run.commit(m)
    run.messages()
    d = make_peer(creator, "dave", private_handshake=private)
    run.propose_and_commit(b, c, add=[d])      # proposed by one engine, committed by another
    run.propose_and_commit(c, d, remove=[b])
    run.commit(a, remove=[c])
    run.commit(d)
    run.messages()


def test_five_members_two_each(make_peer: PeerFactory) -> None:
    """A five-member tree with blank nodes and unmerged leaves: ts-mls creates, ours adds
    three in one commit, mls-rs removes in the middle, a new ts-mls member fills the
    blank leaf, everyone commits once."""
    t1, o1, r1, o2, t2 = (make_peer(e, n) for e, n in (
        ("ts-mls", "t1"), ("ours", "o1"), ("mls-rs", "r1"), ("ours", "o2"), ("ts-mls", "t2")))
    run = GroupRun.create(t1)
    run.commit(t1, add=[o1])
    run.commit(o1, add=[r1, o2, t2])
    run.messages()
    run.commit(r1, remove=[o1])
    t3 = make_peer("ts-mls", "t3")
    run.commit(o2, add=[t3])
    for m in list(run.members):
        run.commit(m)
    run.messages()
    assert len(run.members) == 5
