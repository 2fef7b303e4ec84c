"""Tree math identities (RFC 9420 Appendix C) beyond the vectors' small trees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.errors import ParameterError
from mlsvc.tree import math as tm
from mlsvc.types import LeafCount, LeafIndex, NodeIndex

leaf_counts = st.integers(min_value=0, max_value=20).map(lambda k: LeafCount(1 << k))


@given(leaf_counts, st.data())
def test_children_parent_and_paths(n: LeafCount, data: st.DataObject) -> None:
    x = NodeIndex(data.draw(st.integers(min_value=0, max_value=tm.node_width(n) - 1)))
    r = tm.root(n)
    if tm.level(x) > 0:
        assert tm.parent(tm.left(x), n) == x
        assert tm.parent(tm.right(x), n) == x
        assert tm.left(x) < x < tm.right(x)
    if x != r:
        assert tm.sibling(tm.sibling(x, n), n) == x
        path = tm.direct_path(x, n)
        assert path[-1] == r
        assert len(path) == len(tm.copath(x, n)) == tm.level(r) - tm.level(x)
        assert all(tm.is_in_subtree(p, x) for p in path)
        assert tm.common_ancestor(x, tm.sibling(x, n)) == path[0]
    else:
        assert tm.direct_path(x, n) == [] and tm.copath(x, n) == []


def test_leaf_node_conversion() -> None:
    assert tm.leaf_to_node(LeafIndex(5)) == 10
    assert tm.node_to_leaf(NodeIndex(10)) == 5
    with pytest.raises(ParameterError):
        tm.node_to_leaf(NodeIndex(3))


def test_misuse_raises_parameter_error() -> None:
    with pytest.raises(ParameterError):
        tm.left(NodeIndex(4))
    with pytest.raises(ParameterError):
        tm.parent(tm.root(LeafCount(8)), LeafCount(8))
    with pytest.raises(ParameterError):
        tm.parent(NodeIndex(100), LeafCount(8))
    with pytest.raises(ParameterError):
        tm.root(LeafCount(0))
