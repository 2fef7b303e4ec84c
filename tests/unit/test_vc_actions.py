"""Virtual client actions (draft-00 §5.5; profile P12, P15): exact bytes and round trips."""

from __future__ import annotations

import pytest

from mlsvc.errors import DecodeError
from mlsvc.vc.actions import ExternalJoin, KeyPackageInfo, KeyPackageUpload, VirtualClientAction
from mlsvc.vc.codepoints import ActionType
from tests.unit.vc_helpers import opaque

REF1, REF2 = b"\x01" * 32, b"\x02" * 32
R1, R2 = b"\xaa" * 32, b"\xbb" * 32


def test_key_package_info_bytes() -> None:
    info = KeyPackageInfo(REF1, R1)  # P12: one ref
    assert info.encode() == b"\x20" + REF1 + b"\x20" + R1
    assert KeyPackageInfo.decode(info.encode()) == info


def test_key_package_upload_bytes() -> None:
    epoch_id = b"\xee" * 32
    kpu = KeyPackageUpload(epoch_id, (KeyPackageInfo(REF1, R1), KeyPackageInfo(REF2, R2)))
    infos = b"\x20" + REF1 + b"\x20" + R1 + b"\x20" + REF2 + b"\x20" + R2
    assert len(infos) == 132
    assert kpu.encode() == b"\x20" + epoch_id + b"\x40\x84" + infos
    assert KeyPackageUpload.decode(kpu.encode()) == kpu
    action = VirtualClientAction(kpu)
    assert action.action_type is ActionType.KEY_PACKAGE_UPLOAD
    assert int(action.action_type) == 1
    assert action.encode() == b"\x01" + kpu.encode()
    assert VirtualClientAction.decode(action.encode()) == action
    empty = KeyPackageUpload(epoch_id, ())
    assert empty.encode() == opaque(epoch_id) + b"\x00"


def test_external_join_bytes() -> None:
    action = VirtualClientAction(ExternalJoin(b"group-7"))
    assert action.action_type is ActionType.EXTERNAL_JOIN
    assert int(action.action_type) == 2
    assert action.encode() == b"\x02\x07group-7"
    assert VirtualClientAction.decode(action.encode()) == action


@pytest.mark.parametrize("action_type", [0, 3, 128, 255])
def test_unknown_action_type_is_a_decode_error(action_type: int) -> None:
    """P15: `255,` read as `(255)`: the enum ends at 255; 0 is reserved; nothing else is
    defined, so every other value is an unknown ActionType."""
    with pytest.raises(DecodeError):
        VirtualClientAction.decode(bytes([action_type]) + b"\x07group-7")


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x02\x07group-", b"\x02\x07group-7\x00",
                                  b"\x01\x20" + b"\xee" * 32 + b"\x05\x20"])
def test_truncated_or_trailing_bytes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        VirtualClientAction.decode(data)
