from __future__ import annotations

from tests.vectors.util import assert_vector_file_passes


def test_message_protection_all_suites() -> None:
    assert assert_vector_file_passes("message-protection") == 7
