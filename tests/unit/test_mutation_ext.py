"""Tests written to kill mutants of impl/mlsvc/ext that the other extension tests left
alive (docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import pytest

from mlsvc.errors import ParameterError
from mlsvc.ext.codepoints import check_component_id


def test_component_id_bounds() -> None:
    assert check_component_id(0) == 0
    assert check_component_id(0xFFFF) == 0xFFFF
    for bad in (-1, 0x10000):
        with pytest.raises(ParameterError):
            check_component_id(bad)
