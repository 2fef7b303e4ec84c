"""Secret tree (RFC 9420 §9): out-of-order window, replay, forward distance, deletion
schedule (§9.2) and lazy derivation. Known keys come from the official secret-tree
vector (generations 0 and 15 of every leaf)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.crypto import labels
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import ParameterError
from mlsvc.tree import secret_tree as st_mod
from mlsvc.tree.secret_tree import (
    GenerationTooFarError,
    GenerationUnavailableError,
    RatchetType,
    SecretTree,
)
from mlsvc.types import LeafIndex
from tests.conftest import VECTORS

APP = RatchetType.APPLICATION
HS = RatchetType.HANDSHAKE


def _vector(suite: int, n_leaves: int) -> dict[str, Any]:
    with (VECTORS / "rfc9420" / "secret-tree.json").open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return next(c for c in cases if c["cipher_suite"] == suite and len(c["leaves"]) == n_leaves)


CASE = _vector(1, 8)
CS = get_suite(1)
SECRET = bytes.fromhex(CASE["encryption_secret"])


def _want(leaf: int, generation: int, rtype: RatchetType) -> tuple[bytes, bytes]:
    entry = next(e for e in CASE["leaves"][leaf] if e["generation"] == generation)
    return (bytes.fromhex(entry[f"{rtype.value}_key"]),
            bytes.fromhex(entry[f"{rtype.value}_nonce"]))


def _tree(**kw: int) -> SecretTree:
    return SecretTree(CS, SECRET, len(CASE["leaves"]), **kw)


def _all_bytes(obj: object) -> list[bytes]:
    """Every bytes value reachable in a state object (dataclasses, dicts, tuples)."""
    if isinstance(obj, bytes):
        return [obj]
    if isinstance(obj, dict):
        return [b for k, v in obj.items() for b in _all_bytes(k) + _all_bytes(v)]
    if isinstance(obj, (list, tuple)):
        return [b for v in obj for b in _all_bytes(v)]
    if hasattr(obj, "__slots__"):
        return [b for name in obj.__slots__ for b in _all_bytes(getattr(obj, name))]
    return []


# -- out-of-order delivery, replay, forward distance ----------------------------------


def test_out_of_order_within_window() -> None:
    tree = _tree(out_of_order_tolerance=15)
    leaf = LeafIndex(3)
    assert tree.key_for(leaf, APP, 15) == _want(3, 15, APP)
    assert tree.key_for(leaf, APP, 0) == _want(3, 0, APP)  # late, still in the window
    # the handshake ratchet of the same leaf is independent
    assert tree.key_for(leaf, HS, 0) == _want(3, 0, HS)


def test_skipped_keys_match_the_sender_sequence() -> None:
    receiver = _tree(out_of_order_tolerance=10)
    sender = _tree()
    leaf = LeafIndex(5)
    sent = [sender.next_key(leaf, APP) for _ in range(16)]
    assert [g for g, _, _ in sent] == list(range(16))
    assert sent[0][1:] == _want(5, 0, APP) and sent[15][1:] == _want(5, 15, APP)
    for g in (12, 10, 15, 11, 6, 13, 14, 5, 7, 9, 8):
        assert receiver.key_for(leaf, APP, g) == sent[g][1:]


def test_outside_tolerance_is_gone() -> None:
    tree = _tree(out_of_order_tolerance=5)
    tree.key_for(LeafIndex(0), APP, 15)
    with pytest.raises(GenerationUnavailableError):
        tree.key_for(LeafIndex(0), APP, 0)
    assert sorted(tree.state.application[0].retained) == [10, 11, 12, 13, 14]


def test_zero_tolerance_keeps_no_skipped_key() -> None:
    tree = _tree(out_of_order_tolerance=0)
    assert tree.key_for(LeafIndex(1), APP, 15) == _want(1, 15, APP)
    assert tree.state.application[1].retained == {}
    with pytest.raises(GenerationUnavailableError):
        tree.key_for(LeafIndex(1), APP, 14)


def test_replay_of_a_used_generation_fails() -> None:
    tree = _tree()
    leaf = LeafIndex(2)
    assert tree.key_for(leaf, HS, 0) == _want(2, 0, HS)
    with pytest.raises(GenerationUnavailableError):
        tree.key_for(leaf, HS, 0)
    tree.key_for(leaf, HS, 4)
    tree.key_for(leaf, HS, 2)  # skipped key, used once
    with pytest.raises(GenerationUnavailableError):
        tree.key_for(leaf, HS, 2)
    with pytest.raises(GenerationUnavailableError):
        tree.key_for(leaf, HS, 4)


def test_beyond_max_forward_distance_fails() -> None:
    tree = _tree(max_forward_distance=10)
    leaf = LeafIndex(6)
    with pytest.raises(GenerationTooFarError):
        tree.key_for(leaf, APP, 11)
    assert tree.state.application[6].generation == 0  # nothing was derived
    tree.key_for(leaf, APP, 10)  # exactly at the distance
    with pytest.raises(GenerationTooFarError):
        tree.key_for(leaf, APP, 22)  # measured from the ratchet's position (11)
    tree.key_for(leaf, APP, 21)


def test_peek_then_consume() -> None:
    tree = _tree()
    leaf = LeafIndex(7)
    first = tree.peek_key(leaf, APP, 15)
    assert first == _want(7, 15, APP)
    assert tree.peek_key(leaf, APP, 15) == first  # a failed decryption does not burn it
    tree.consume_key(leaf, APP, 15)
    with pytest.raises(GenerationUnavailableError):
        tree.peek_key(leaf, APP, 15)
    with pytest.raises(GenerationUnavailableError):
        tree.consume_key(leaf, APP, 15)


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError):
        SecretTree(CS, SECRET, 6)
    with pytest.raises(ParameterError):
        SecretTree(CS, SECRET, 0)
    with pytest.raises(ParameterError):
        _tree().key_for(LeafIndex(8), APP, 0)
    with pytest.raises(ParameterError):
        _tree().key_for(LeafIndex(0), APP, 1 << 32)


# -- deletion schedule (§9.2) ---------------------------------------------------------


def test_consumed_secrets_are_gone_from_the_state() -> None:
    tree = _tree()
    assert tree.state.nodes == {7: SECRET}
    key, nonce = tree.key_for(LeafIndex(0), APP, 0)
    state = tree.state
    # path root 7 -> 3 -> 1 -> leaf 0 consumed; siblings 11, 5, 2 kept for later
    assert set(state.nodes) == {11, 5, 2}
    held = _all_bytes(state)
    assert SECRET not in held
    assert key not in held and nonce not in held
    ratchet = state.application[0]
    assert ratchet.generation == 1 and ratchet.retained == {}
    # the handshake ratchet was started from the same (now deleted) leaf secret
    assert state.handshake[0].generation == 0


def test_sender_keys_are_not_kept() -> None:
    tree = _tree()
    g, key, nonce = tree.next_key(LeafIndex(4), HS)
    assert (g, key, nonce) == (0, *_want(4, 0, HS))
    held = _all_bytes(tree.state)
    assert key not in held and nonce not in held
    assert tree.state.handshake[4].generation == 1


def test_skipped_key_deleted_after_use() -> None:
    tree = _tree()
    tree.key_for(LeafIndex(0), APP, 3)
    assert sorted(tree.state.application[0].retained) == [0, 1, 2]
    k1, _ = tree.key_for(LeafIndex(0), APP, 1)
    assert sorted(tree.state.application[0].retained) == [0, 2]
    assert k1 not in _all_bytes(tree.state)


def test_restore_from_state_continues() -> None:
    tree = _tree(out_of_order_tolerance=20)
    tree.key_for(LeafIndex(3), APP, 15)
    saved = tree.state.copy()
    again = SecretTree.from_state(CS, saved)
    assert again.key_for(LeafIndex(3), APP, 0) == _want(3, 0, APP)
    # the copy is independent: the original still holds generation 0
    assert tree.key_for(LeafIndex(3), APP, 0) == _want(3, 0, APP)


# -- lazy derivation ------------------------------------------------------------------


def _count_labels(monkeypatch: pytest.MonkeyPatch) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    real: Callable[[CipherSuite, bytes, bytes, bytes, int], bytes] = labels.expand_with_label

    def counting(cs: CipherSuite, secret: bytes, label: bytes, context: bytes, n: int) -> bytes:
        counts[label] = counts.get(label, 0) + 1
        return real(cs, secret, label, context, n)

    monkeypatch.setattr(st_mod, "expand_with_label", counting)
    return counts


def test_large_tree_derives_only_one_path(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _count_labels(monkeypatch)
    tree = SecretTree(CS, SECRET, 2048)
    assert counts == {}  # nothing derived at epoch start
    tree.next_key(LeafIndex(1234), APP)
    # 11 levels below the root, two children each; then the leaf's two ratchets
    assert counts == {b"tree": 22, b"handshake": 1, b"application": 1}
    assert len(tree.state.nodes) == 11
    counts.clear()
    tree.key_for(LeafIndex(1235), APP, 0)  # the sibling leaf is already derived
    assert counts == {b"handshake": 1, b"application": 1}
    counts.clear()
    tree.next_key(LeafIndex(0), HS)  # other half: the root's left child is stored
    assert counts == {b"tree": 20, b"handshake": 1, b"application": 1}


def test_large_tree_matches_vector_32_leaves() -> None:
    case = _vector(2, 32)
    tree = SecretTree(get_suite(2), bytes.fromhex(case["encryption_secret"]), 32)
    for leaf in (31, 0, 17):
        for entry in case["leaves"][leaf]:
            got = tree.key_for(LeafIndex(leaf), HS, entry["generation"])
            assert got == (bytes.fromhex(entry["handshake_key"]),
                           bytes.fromhex(entry["handshake_nonce"]))


# -- any delivery order within the window ---------------------------------------------


@given(st.permutations(list(range(16))))
def test_any_order_within_window_delivers_each_key_once(order: list[int]) -> None:
    receiver = _tree(out_of_order_tolerance=16)
    got = {g: receiver.key_for(LeafIndex(2), APP, g) for g in order}
    assert got[0] == _want(2, 0, APP) and got[15] == _want(2, 15, APP)
    assert len(set(got.values())) == 16
    assert receiver.state.application[2].retained == {}
    for g in order[:3]:
        with pytest.raises(GenerationUnavailableError):
            receiver.key_for(LeafIndex(2), APP, g)
