"""Reproductions of where a peer departs from RFC 9420 (docs/INTEROP.md D2, D3; D1, the
external_pub encoding, is in test_ts_mls_features.py). Each is an xfail naming the RFC
section, run with the harness guard off so the real failure shows; each comes with a
control run where mls-rs, an independent third engine, agrees with our engine in the
same situation.
"""

from __future__ import annotations

import pytest

from mlsvc.errors import ValidationError
from mlsvc.peers import PeerError
from tests.interop.conftest import PeerFactory
from tests.interop.harness import GroupRun
from tests.interop.tree_rules import rfc_unmerged_problems, ts_mls_rejects_unmerged

D2 = ("ts-mls 1.6.4 derives the commit secret from the root even when the root is "
      "not on the committer's filtered direct path; RFC 9420 §12.4.1/§12.4.2 define "
      "commit_secret as path_secret[n+1] derived from the last path secret of the "
      "UpdatePath (§7.4 path secrets run over the filtered direct path; mls-protocol "
      "PR #707)")
D3 = ("ts-mls 1.6.4 requires every non-blank node on an unmerged leaf's whole direct path "
      "to carry the same unmerged_leaves list; RFC 9420 §12.4.3.1 only requires the "
      "intermediate nodes between the leaf and the parent listing it to list that leaf")


def root_filtered_run(make: PeerFactory, engines: str) -> None:
    """Leaves 0..3 = engines[0..3]; leaf 1 then leaf 0 are removed, so leaf 3's commit
    has the filtered direct path [node 5]: the root (node 3) is filtered out (§4.1.2,
    the copath node 1 has an empty resolution)."""
    kinds = {"o": "ours", "r": "mls-rs", "t": "ts-mls"}
    a, x1, x2, x3 = (make(kinds[k], n) for k, n in zip(engines, ("a", "x1", "x2", "x3"),
                                                         strict=True))
    run = GroupRun.create(a)
    run.guard = False
    run.commit(a, add=[x1, x2, x3])
    run.propose_and_commit(x3, x2, remove=[x1])
    assert run.root_filtered(run.leaves_after([a])[0], 3)
    run.propose_and_commit(x2, x3, remove=[a])   # x3 (leaf 3) commits with that path


@pytest.mark.parametrize("engines", ["orro", "rrro", "oorr", "rroo"])
def test_root_filtered_commit_secret_control(make_peer: PeerFactory, engines: str) -> None:
    """Ours and mls-rs agree on the commit secret when the root is filtered out."""
    root_filtered_run(make_peer, engines)


@pytest.mark.xfail(strict=True, raises=PeerError, reason=D2)
def test_ts_mls_processes_root_filtered_commit(make_peer: PeerFactory) -> None:
    root_filtered_run(make_peer, "otto")  # ours commits, ts-mls x2 processes


@pytest.mark.xfail(strict=True, raises=ValidationError, reason=D2)
def test_ours_processes_ts_mls_root_filtered_commit(make_peer: PeerFactory) -> None:
    root_filtered_run(make_peer, "toot")  # ts-mls commits, our x2 processes


def unmerged_run(make: PeerFactory, joiner: str) -> GroupRun:
    """Eight-leaf tree: A at 0 commits the removal of leaf 1 (its path sets nodes 3 and
    7, node 1 is filtered out); E at leaf 4 then adds a joiner, who takes leaf 1, with
    a path that resets node 7 but not node 3. Node 3 lists leaf 1 as unmerged, node 7
    does not: valid under §12.4.3.1 (no intermediate node between leaf 1 and node 3)."""
    a, b, c, d, e = (make("ours", n) for n in ("a", "b", "c", "d", "e"))
    run = GroupRun.create(a)
    run.guard = False
    run.commit(a, add=[b, c, d, e])
    run.commit(a, remove=[b])
    run.commit(e, add=[make(joiner, "f")])
    return run


def test_unmerged_leaves_tree_is_rfc_valid(make_peer: PeerFactory) -> None:
    """The harness's own reading of the tree: §12.4.3.1 accepts it, ts-mls's rule does
    not; and mls-rs joins it (control)."""
    run = unmerged_run(make_peer, "mls-rs")
    tree = run.members[0].ratchet_tree()
    assert rfc_unmerged_problems(tree) == []
    assert ts_mls_rejects_unmerged(tree)
    run.messages()


@pytest.mark.xfail(strict=True, raises=PeerError, reason=D3)
def test_ts_mls_joins_tree_with_partial_unmerged_leaves(make_peer: PeerFactory) -> None:
    unmerged_run(make_peer, "ts-mls")
