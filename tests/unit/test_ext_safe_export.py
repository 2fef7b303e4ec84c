"""The Safe Exporter (extensions-09 §4.4): application_export_secret and
SafeExportSecret, against known answers from outside this code base (the digest's
value, the third-party webcrypto-mls vector) and the independent reference."""

from __future__ import annotations

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError, StateError
from mlsvc.ext.pprf import PuncturedInputError
from mlsvc.ext.safe_export import (
    ExportConsumedError,
    SafeExporter,
    application_export_secret,
)
from tests.unit import test_ext_reference as ref

CS1 = get_suite(1)


def test_application_export_secret_digest_known_answer() -> None:
    """extensions-digest §2: epoch_secret = 42..42 -> 567b02d6..."""
    assert application_export_secret(CS1, ref.DIGEST_EPOCH_SECRET) == (
        ref.DIGEST_APPLICATION_EXPORT_SECRET)


def test_third_party_vector() -> None:
    """vectors/third-party/webcrypto-mls/keys.json (HKDF-SHA256)."""
    v = ref.third_party()
    root = application_export_secret(CS1, bytes.fromhex(v["epoch_secret_hex"]))
    assert root.hex() == v["application_export_secret_hex"]
    exporter = SafeExporter.from_epoch_secret(CS1, bytes.fromhex(v["epoch_secret_hex"]))
    assert exporter.export(v["component_id"]).hex() == v["component_secret_hex"]


@pytest.mark.parametrize("suite", range(1, 8))
def test_every_suite_matches_the_reference(suite: int) -> None:
    cs = get_suite(suite)
    epoch_secret = bytes([0x42 + suite]) * cs.nh
    root = ref.derive_secret(suite, epoch_secret, b"application_export")
    assert application_export_secret(cs, epoch_secret) == root
    exporter = SafeExporter(cs, root)
    for cid in (0x0000, 0x0001, 0x8001, 0xF000, 0xF001, 0xFFFF):
        assert exporter.export(cid) == ref.leaf(suite, root, 16, cid)


def test_second_export_of_a_component_is_refused() -> None:
    exporter = SafeExporter.from_epoch_secret(CS1, ref.DIGEST_EPOCH_SECRET, b"g", 7)
    first = exporter.export(0x8001)
    assert exporter.is_consumed(0x8001) and not exporter.is_consumed(0x8000)
    with pytest.raises(ExportConsumedError) as info:
        exporter.export(0x8001)
    assert info.value.component_id == 0x8001
    assert isinstance(info.value, PuncturedInputError) and isinstance(info.value, StateError)
    assert "0x8001" in str(info.value)
    # the sibling is intact
    assert exporter.export(0x8000) == ref.leaf(
        1, ref.DIGEST_APPLICATION_EXPORT_SECRET, 16, 0x8000)
    assert first == ref.leaf(1, ref.DIGEST_APPLICATION_EXPORT_SECRET, 16, 0x8001)


def test_the_root_is_consumed_after_the_first_export() -> None:
    """§4.4 / RFC 9420 §9.2: after one export the tree holds only the 16 co-path
    siblings, not application_export_secret."""
    exporter = SafeExporter(CS1, ref.DIGEST_APPLICATION_EXPORT_SECRET)
    exporter.export(0x1234)
    nodes = exporter.tree.nodes()
    assert len(nodes) == 16
    assert all(n.prefix_length >= 1 for n in nodes)
    assert ref.DIGEST_APPLICATION_EXPORT_SECRET not in {n.node_secret for n in nodes}


@pytest.mark.parametrize("cid", [-1, 0x10000])
def test_component_id_must_be_a_uint16(cid: int) -> None:
    exporter = SafeExporter(CS1, ref.DIGEST_APPLICATION_EXPORT_SECRET)
    with pytest.raises(ParameterError):
        exporter.export(cid)
