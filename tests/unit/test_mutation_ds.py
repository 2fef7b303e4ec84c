"""Tests written to kill mutants of impl/mlsvc/ds that the other DS tests left alive
(docs/MUTATION.md): each asserts a behaviour that no other test pinned down."""

from __future__ import annotations

import pytest

from mlsvc.ds.errors import DeliveryError, UnacceptableMessage
from mlsvc.ds.wire import RatchetType, ratchet_type_of
from mlsvc.errors import LocalError, RemoteError, StateError
from mlsvc.messages.codepoints import ContentType


@pytest.mark.parametrize("cls, base", [(DeliveryError, StateError),
                                       (UnacceptableMessage, RemoteError)])
def test_ds_errors_keep_code_and_detail(cls: type[Exception], base: type[Exception]) -> None:
    err = cls("some-code", "what went wrong")
    assert isinstance(err, base)
    assert err.code == "some-code"  # type: ignore[attr-defined]
    assert err.detail == "what went wrong"  # type: ignore[attr-defined]
    assert str(err) == "[some-code] what went wrong"
    assert isinstance(DeliveryError("c", "d"), LocalError)


def test_ratchet_type_follows_the_content_type() -> None:
    assert ratchet_type_of(ContentType.APPLICATION) is RatchetType.APPLICATION
    assert ratchet_type_of(ContentType.PROPOSAL) is RatchetType.HANDSHAKE
    assert ratchet_type_of(ContentType.COMMIT) is RatchetType.HANDSHAKE
    assert (int(RatchetType.APPLICATION), int(RatchetType.HANDSHAKE)) == (1, 2)
