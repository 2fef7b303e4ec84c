"""An independent reference for the Exporter Tree / PPRF (extensions-09 §4.4, profile P2),
written from the spec text with hashlib/hmac only, and checked here against the
third-party known answers. Other ext tests import it as their oracle, so expected
values never come from the code under test.

Reference pieces: HKDF-Expand (RFC 5869 §2.3), ExpandWithLabel (RFC 9420 §8, varint
vectors §2.1.2), the naive root-to-leaf walk (MSB-first, 0 = left), the set of
retained nodes after a puncture set (the co-path siblings whose subtree holds no
punctured leaf) and the PPRFState encoding (digest §3).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from typing import Any

from tests.conftest import VECTORS

# RFC 9420 §17.1: the KDF hash of each cipher suite
KDF_HASH: dict[int, Callable[[], Any]] = {
    1: hashlib.sha256, 2: hashlib.sha256, 3: hashlib.sha256,
    4: hashlib.sha512, 5: hashlib.sha512, 6: hashlib.sha512, 7: hashlib.sha384,
}


def nh(suite: int) -> int:
    return int(KDF_HASH[suite]().digest_size)


def varint(n: int) -> bytes:
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return (n | 0x4000).to_bytes(2, "big")
    return (n | 0x80000000).to_bytes(4, "big")


def hkdf_expand(suite: int, prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), KDF_HASH[suite]).digest()
        out += block
        counter += 1
    return out[:length]


def expand_with_label(suite: int, secret: bytes, label: bytes, context: bytes,
                      length: int) -> bytes:
    full = b"MLS 1.0 " + label
    info = length.to_bytes(2, "big") + varint(len(full)) + full + varint(len(context)) + context
    return hkdf_expand(suite, secret, info, length)


def derive_secret(suite: int, secret: bytes, label: bytes) -> bytes:
    return expand_with_label(suite, secret, label, b"", nh(suite))


def node_secret(suite: int, key: bytes, depth: int, length: int, prefix: int) -> bytes:
    """The secret of the node at `prefix` (its first `length` path bits)."""
    s = key
    for i in range(length):
        bit = (prefix >> (length - 1 - i)) & 1
        s = expand_with_label(suite, s, b"tree", b"right" if bit else b"left", nh(suite))
    return s


def leaf(suite: int, key: bytes, depth: int, x: int) -> bytes:
    return node_secret(suite, key, depth, depth, x)


def retained(depth: int, punctured: Iterable[int]) -> list[tuple[int, int]]:
    """(length, prefix) of the nodes a punctured tree keeps, sorted lexicographically."""
    ps = set(punctured)
    if not ps:
        return [(0, 0)]
    nodes: set[tuple[int, int]] = set()
    for x in ps:
        for length in range(1, depth + 1):
            sib = (x >> (depth - length)) ^ 1
            lo = sib << (depth - length)
            hi = (sib + 1) << (depth - length)
            if not any(lo <= y < hi for y in ps):
                nodes.add((length, sib))
    return sorted(nodes, key=lambda n: n[1] << (depth - n[0]))


def state_bytes(suite: int, key: bytes, depth: int, punctured: Iterable[int]) -> bytes:
    """PPRFState { PPRFNode nodes<V>; } with PPRFNode { uint8 prefix_length;
    opaque prefix<V>; opaque node_secret<V>; }, prefix packed MSB-first."""
    body = b""
    for length, prefix in retained(depth, punctured):
        n = (length + 7) // 8
        packed = (prefix << (8 * n - length)).to_bytes(n, "big") if n else b""
        secret = node_secret(suite, key, depth, length, prefix)
        body += bytes([length]) + varint(len(packed)) + packed + varint(len(secret)) + secret
    return varint(len(body)) + body


def third_party() -> dict[str, Any]:
    with (VECTORS / "third-party" / "webcrypto-mls" / "keys.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


DIGEST_EPOCH_SECRET = bytes([0x42]) * 32
DIGEST_APPLICATION_EXPORT_SECRET = bytes.fromhex(
    "567b02d6c2eb1e53e002d2fc588bce567496f9c3f7b88d860d6c1a7f0d84f80e")


def test_reference_reproduces_the_third_party_vector() -> None:
    v = third_party()
    root = derive_secret(1, bytes.fromhex(v["epoch_secret_hex"]), b"application_export")
    assert root.hex() == v["application_export_secret_hex"]
    assert leaf(1, root, 16, v["component_id"]).hex() == v["component_secret_hex"]


def test_reference_reproduces_the_digest_value() -> None:
    assert derive_secret(1, DIGEST_EPOCH_SECRET, b"application_export") == (
        DIGEST_APPLICATION_EXPORT_SECRET)


def test_reference_hkdf_matches_rfc5869_case_1() -> None:
    """RFC 5869 Appendix A.1 (the reference's own footing)."""
    prk = bytes.fromhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
    okm = hkdf_expand(1, prk, bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_retained_nodes_of_one_puncture_are_the_copath() -> None:
    assert retained(3, [0b101]) == [(1, 0), (3, 0b100), (2, 0b11)]
