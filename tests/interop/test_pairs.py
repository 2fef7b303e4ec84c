"""Two engines in one group, each direction: the creator's engine X and the joiner's
engine Y take turns at every role (RFC 9420 §10 KeyPackage, §12.4.3.1 Welcome join,
§12.4 commits with an UpdatePath, §12.1.3 Remove, §6.3 application messages, §8.5
exporter), with the harness's agreement check after every epoch.

Pairs: every ordered pair of distinct engines among ours, mls-rs and ts-mls (suite 1);
ours <-> ts-mls also in all seven RFC 9420 suites (§17.1).
"""

from __future__ import annotations

import itertools

import pytest

from mlsvc.peers import ENGINES
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun

PAIRS = [pytest.param(x, y, id=f"{x}-creates-{y}-joins")
         for x, y in itertools.permutations(ENGINES, 2)]


def ours_ts_suites(suites: range) -> list[object]:
    return [pytest.param(x, y, s, id=f"{x}-creates-{y}-joins-suite{s}")
            for s in suites for x, y in (("ours", "ts-mls"), ("ts-mls", "ours"))]


def lifecycle(make: PeerFactory, x: str, y: str, suite: int = 1,
              private_handshake: bool = False) -> GroupRun:
    """The core scenario; returns the final run (two members left, C of X and D of Y)."""
    a, b, c, d = (make(e, n, suite, private_handshake=private_handshake)
                  for e, n in ((x, "alice"), (y, "bob"), (x, "carol"), (y, "dave")))
    run = GroupRun.create(a, group_id=f"{x}+{y}/{suite}".encode())
    run.commit(a, add=[b])        # X's Welcome, Y joins
    run.messages()                # both ways
    run.commit(b)                 # Y's UpdatePath, X processes
    run.commit(a)                 # X's UpdatePath, Y processes
    run.commit(b, add=[c])        # Y's Welcome, X joins into a 3-member tree
    run.messages()
    run.commit(b, remove=[a])     # Y removes X; the removed X sees it
    run.commit(c, add=[d])        # X adds Y again (a blank leaf is reused, §12.1.1)
    run.messages()
    run.commit(c, remove=[b])     # X removes Y
    run.commit(d)                 # Y's path in the truncated tree
    run.messages()
    assert [m.name for m in run.members] == [b"carol", b"dave"]
    return run


@pytest.mark.parametrize(("x", "y"), PAIRS)
def test_lifecycle(make_peer: PeerFactory, x: str, y: str) -> None:
    lifecycle(make_peer, x, y)


@pytest.mark.parametrize(("x", "y", "suite"), ours_ts_suites(range(2, 8)))
def test_lifecycle_other_suites(make_peer: PeerFactory, x: str, y: str, suite: int) -> None:
    """Suites 2-7 (suite 1 is in test_lifecycle)."""
    lifecycle(make_peer, x, y, suite)


@pytest.mark.parametrize(("x", "y"), PAIRS)
def test_proposals_by_reference(make_peer: PeerFactory, x: str, y: str) -> None:
    """Proposals from one engine committed by reference by the other (§12.1, §12.4)."""
    a, b, c = make_peer(x, "alice"), make_peer(y, "bob"), make_peer(x, "carol")
    run = GroupRun.create(a)
    run.commit(a, add=[b])
    run.propose_and_commit(b, a, add=[c])      # Y proposes Add, X commits
    run.propose_and_commit(a, b, remove=[c])   # X proposes Remove, Y commits
    run.messages()


@pytest.mark.parametrize(("x", "y", "suite"), ours_ts_suites(range(1, 8)))
def test_private_message_handshakes(make_peer: PeerFactory, x: str, y: str,
                                    suite: int) -> None:
    """Proposals and commits as PrivateMessage (§6.3, handshake content) both ways."""
    run = lifecycle(make_peer, x, y, suite, private_handshake=True)
    e = make_peer(x, "erin", suite, private_handshake=True)
    run.propose_and_commit(run.members[1], run.members[0], add=[e])
    run.messages()
