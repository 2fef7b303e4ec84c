"""Official vectors: variable-length vector headers (RFC 9420 §2.1.2)."""

from __future__ import annotations

import json
from typing import Any

from mlsvc.conformance.deserialization import run
from tests.conftest import VECTORS
from tests.vectors.util import assert_vector_file_passes


def _cases() -> list[dict[str, Any]]:
    with (VECTORS / "rfc9420" / "deserialization.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def test_every_case_passes() -> None:
    assert assert_vector_file_passes("deserialization") == 14


def test_the_cases_cover_every_header_size() -> None:
    sizes = {len(c["vlbytes_header"]) // 2 for c in _cases()}
    assert sizes == {1, 2, 4}


def test_wrong_or_malformed_headers_are_reported() -> None:
    cases = [
        {"vlbytes_header": "3f", "length": 63},  # valid
        {"vlbytes_header": "3f", "length": 62},  # wrong expected length
        {"vlbytes_header": "4001", "length": 1},  # non-minimal (§2.1.2)
        {"vlbytes_header": "c0000001", "length": 1},  # 0b11 prefix is invalid
        {"vlbytes_header": "4040ff", "length": 64},  # not just a header
    ]
    result = run(cases)
    assert result.passed == 1 and result.failed == 4, result.failures()
    assert "length" in result.failures()[0].detail
    assert all("DecodeError" in c.detail for c in result.failures()[1:])
