"""Tests written to kill mutants of impl/mlsvc/vc that the other vc tests left alive
(docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import pytest

from mlsvc.errors import DecodeError
from mlsvc.vc.actions import ExternalJoin, VirtualClientAction


@pytest.mark.parametrize("action_type", [0, 3, 255])
def test_an_unknown_action_type_is_refused(action_type: int) -> None:
    body = ExternalJoin(b"\x07\x08").encode()
    with pytest.raises(DecodeError):
        VirtualClientAction.decode(bytes([action_type]) + body)
    # the same body under type 2 (external_join) decodes
    assert VirtualClientAction.decode(b"\x02" + body) == VirtualClientAction(
        ExternalJoin(b"\x07\x08"))
