"""Tree math and crypto basics against the pinned official vectors."""

from __future__ import annotations

import json

from mlsvc.conformance.registry import default_dir
from tests.vectors.util import assert_vector_file_passes


def test_tree_math() -> None:
    assert assert_vector_file_passes("tree-math") == 10


def test_crypto_basics_all_seven_suites() -> None:
    assert assert_vector_file_passes("crypto-basics") == 7
    with (default_dir() / "crypto-basics.json").open() as f:
        suites = {c["cipher_suite"] for c in json.load(f)}
    assert suites == set(range(1, 8))


def test_pinned_copies_match_recorded_digests() -> None:
    """The pinned files are the ones SHA256SUMS recorded when they were copied."""
    import hashlib

    folder = default_dir()
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 16
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256((folder / name.split("/")[-1]).read_bytes()).hexdigest() == digest
