"""The group engine against the official Welcome and passive-client vectors."""

from __future__ import annotations

import pytest

from tests.vectors.util import assert_vector_file_passes


@pytest.mark.parametrize(
    ("stem", "cases"),
    [
        ("welcome", 7),
        ("passive-client-welcome", 56),
        ("passive-client-handling-commit", 91),
        ("passive-client-random", 1),
    ],
)
def test_group_vectors(stem: str, cases: int) -> None:
    assert assert_vector_file_passes(stem) == cases
