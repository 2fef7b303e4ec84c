"""Runner for deserialization.json (RFC 9420 §2.1.2; upstream README "Vector
Deserialization"): each `vlbytes_header` decodes, as a whole, to `length`."""

from __future__ import annotations

from mlsvc.codec import Reader, Writer
from mlsvc.conformance.base import Case, FileResult, expect, h, run_cases


def _check(case: Case) -> None:
    header = h(case["vlbytes_header"])
    r = Reader(header)
    length = r.varint()
    r.finish()  # the header is exactly one variable-size length
    expect("length", length, case["length"])
    w = Writer()
    w.varint(length)
    expect("re-encoded header", w.bytes(), header)


def run(cases: list[Case]) -> FileResult:
    return run_cases("deserialization", cases, _check, suite_key=None)
