"""API corners of the extensions layer (issue 16): `SafeExporters.forget` and the
sender-side refusal of a non-safe tail by `SafeAADGroup.frame` (the parser side is in
test_ext_safe_aad.py)."""

from __future__ import annotations

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ParameterError, StateError, ValidationError
from mlsvc.ext.pprf import MAX_DEPTH, PPRF, PPRFNode, input_from_bytes
from mlsvc.ext.safe_aad import SafeAADGroup, encode_items, parse
from mlsvc.ext.safe_export import SafeExporter, SafeExporters
from mlsvc.group.group import Group
from mlsvc.messages.proposals import Remove
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


# --- the PPRF (§4.4 via draft-00 §5.2) -----------------------------------------------


def test_pprf_copy_is_independent_and_equal() -> None:
    cs = get_suite(1)
    tree = PPRF(cs, bytes(cs.nh), 8)
    tree.puncture(5)
    other = tree.copy()
    assert other.cs is tree.cs and other.depth == tree.depth
    assert other.serialize() == tree.serialize()
    assert other.evaluate(200) == tree.evaluate(200)
    other.puncture(200)
    assert other.is_punctured(200) and not tree.is_punctured(200)
    assert tree.evaluate(200) == PPRF(cs, bytes(cs.nh), 8).evaluate(200)


@pytest.mark.parametrize("x", [0, 1, 6, 7, 254, 255])
def test_siblings_of_a_punctured_input_keep_their_values(x: int) -> None:
    """The copath nodes kept when x is punctured give every other input the value the
    unpunctured tree gives it (left and right children alike)."""
    cs = get_suite(1)
    fresh = PPRF(cs, bytes(range(cs.nh)), 8)
    tree = PPRF(cs, bytes(range(cs.nh)), 8)
    assert tree.evaluate_and_puncture(x) == fresh.evaluate(x)
    for y in {x ^ 1, x ^ 2, x ^ 4, x ^ 128, 255 - x}:
        assert tree.evaluate(y) == fresh.evaluate(y)


def test_pprf_depth_and_prefix_bounds() -> None:
    cs = get_suite(1)
    for depth in (0, MAX_DEPTH):
        tree = PPRF(cs, bytes(cs.nh), depth)
        assert PPRF.restore(cs, depth, tree.serialize()).serialize() == tree.serialize()
    for depth in (-1, MAX_DEPTH + 1):
        with pytest.raises(ParameterError):
            PPRF.restore(cs, depth, PPRF(cs, bytes(cs.nh), 1).serialize())
    assert PPRFNode(MAX_DEPTH, (1 << MAX_DEPTH) - 1, b"s").prefix_length == MAX_DEPTH
    with pytest.raises(ParameterError):
        PPRFNode(MAX_DEPTH + 1, 0, b"s")
    with pytest.raises(ParameterError):
        PPRFNode(3, 8, b"s")


@pytest.mark.parametrize(("data", "depth", "expected"), [
    (b"\xab", 8, 0xAB),            # depth a whole number of octets, data exactly that long
    (b"\x80", 1, 1),
    (b"\x7f", 1, 0),
    (b"\xab\xcd", 12, 0xABC),
    (b"\x12\x34\x56\x78\x9a", 32, 0x12345678),
])
def test_input_from_bytes(data: bytes, depth: int, expected: int) -> None:
    assert input_from_bytes(data, depth) == expected


def test_input_from_bytes_needs_enough_octets() -> None:
    with pytest.raises(ParameterError):
        input_from_bytes(b"\xab", 9)


# --- SafeAADGroup and the Safe Exporter, the remaining corners ----------------------


def test_safe_aad_group_passes_its_arguments_through() -> None:
    """commit and encrypt hand their keyword arguments and the tail to the group."""
    alice, bob = pair()
    a = SafeAADGroup(alice, known_components={ACTION})
    b = SafeAADGroup(bob, known_components={ACTION})
    with pytest.raises(ParameterError):
        a.commit(authenticated_data=b"")
    msg = a.encrypt(b"hello", {ACTION: b"m"}, tail=b"U", retain_key=True)
    got = b.process(msg)
    assert got.safe_aad is not None and got.safe_aad.tail == b"U"
    assert got.safe_aad.get(ACTION) == b"m"
    assert alice.release_sent_key(0)  # kept only because retain_key reached the group
    a.commit({ACTION: b"p"}, tail=b"T", proposals=[Remove(bob.own_leaf)])
    alice.merge_pending_commit()
    assert len(alice.members()) == 1


def test_safe_aad_group_check_honours_allow_tail() -> None:
    alice, bob = pair()
    msg = SafeAADGroup(alice, known_components={ACTION}).encrypt(
        b"x", {ACTION: b"m"}, tail=b"tail")
    strict = SafeAADGroup(bob, known_components={ACTION}, allow_tail=False)
    with pytest.raises(ValidationError) as err:
        strict.check(msg)
    assert err.value.check_id == "EXT-SAFE-AAD-TAIL"
    parsed = SafeAADGroup(bob, known_components={ACTION}).check(msg)
    assert parsed is not None and parsed.tail == b"tail"


def test_safe_exporters_carry_the_epoch() -> None:
    alice, _bob = pair()
    assert alice.epoch >= 1
    exporter = SafeExporter.from_group(alice)
    assert (exporter.group_id, exporter.epoch) == (alice.group_id, alice.epoch)
    cs = get_suite(1)
    other = SafeExporter.from_epoch_secret(cs, bytes(cs.nh), b"g", 5)
    assert (other.group_id, other.epoch) == (b"g", 5)
