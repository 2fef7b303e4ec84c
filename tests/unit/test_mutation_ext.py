"""Tests written to kill mutants of impl/mlsvc/ext that the other extension tests left
alive (docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import pytest

from mlsvc.errors import ParameterError
from mlsvc.ext.codepoints import CodePoints, check_component_id


def test_component_id_bounds() -> None:
    assert check_component_id(0) == 0
    assert check_component_id(0xFFFF) == 0xFFFF
    for bad in (-1, 0x10000):
        with pytest.raises(ParameterError):
            check_component_id(bad)


def test_code_points_are_uint16() -> None:
    """CodePoints takes every value in [0, 0xFFFF], 0 and 0xFFFF included, and refuses
    one past either end."""
    assert CodePoints(app_data_dictionary=0).app_data_dictionary == 0
    assert CodePoints(safe_aad=0xFFFF).safe_aad == 0xFFFF
    for bad in (-1, 0x10000):
        with pytest.raises(ParameterError):
            CodePoints(safe_aad=bad)
