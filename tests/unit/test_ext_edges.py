"""API corners of the extensions layer (issue 16): `SafeExporters.forget` and the
sender-side refusal of a non-safe tail by `SafeAADGroup.frame` (the parser side is in
test_ext_safe_aad.py)."""

from __future__ import annotations

import pytest

from mlsvc.errors import StateError
from mlsvc.ext.safe_aad import SafeAADGroup, encode_items, parse
from mlsvc.ext.safe_export import SafeExporters
from mlsvc.group.group import Group
from tests.unit.test_ext_groups import ACTION, DERIVATION, _config, _identity, pair


def _solo(name: str) -> Group:
    return Group.create(1, _identity(1, name), _config(name), group_id=name.encode())


def test_forget_drops_every_tree_of_that_group_only() -> None:
    alice, _bob = pair()
    carol = _solo("carol")
    exporters = SafeExporters()
    exporters.export(alice, DERIVATION)
    carol_secret = exporters.export(carol, 0xF001)
    assert (alice.group_id, alice.epoch) in exporters
    assert (carol.group_id, carol.epoch) in exporters
    exporters.forget(alice.group_id)
    assert (alice.group_id, alice.epoch) not in exporters
    assert (carol.group_id, carol.epoch) in exporters
    # the forgotten tree is gone with its secrets: the group's root was taken when the
    # tree was opened, so this epoch cannot be exported from again
    with pytest.raises(StateError):
        exporters.export(alice, 0xF002)
    # carol's tree is the same open tree: its consumed component stays consumed and
    # others still export
    assert exporters.for_group(carol).is_consumed(0xF001)
    assert exporters.export(carol, 0xF002) != carol_secret


def test_forget_of_an_unknown_group_changes_nothing() -> None:
    carol = _solo("carol")
    exporters = SafeExporters()
    exporters.export(carol, 0xF001)
    exporters.forget(b"another group")
    assert (carol.group_id, carol.epoch) in exporters


def test_frame_refuses_a_tail_when_tails_are_not_allowed() -> None:
    alice, _bob = pair()
    strict = SafeAADGroup(alice, known_components={ACTION}, allow_tail=False)
    assert strict.required
    with pytest.raises(StateError):
        strict.frame({ACTION: b"x"}, tail=b"trailing")
    with pytest.raises(StateError):
        strict.frame((), tail=b"trailing")
    # without a tail the same layer frames; with tails allowed the tail is appended
    assert strict.frame({ACTION: b"x"}) == encode_items({ACTION: b"x"})
    lenient = SafeAADGroup(alice, known_components={ACTION})
    framed = lenient.frame({ACTION: b"x"}, tail=b"trailing")
    assert framed == encode_items({ACTION: b"x"}, b"trailing")
    assert parse(framed).tail == b"trailing"


def test_frame_without_safe_aad_passes_the_tail_and_refuses_items() -> None:
    alice, _bob = pair(safe_aad=False)
    layer = SafeAADGroup(alice, known_components={ACTION}, allow_tail=False)
    assert not layer.required
    assert layer.frame((), tail=b"opaque") == b"opaque"
    with pytest.raises(StateError):
        layer.frame({ACTION: b"x"})
