"""Components and the app_data_dictionary extension (extensions-09 §4.1, §4.6, §5, §7):
exact encodings, the code point table, bad input and the capability checks."""

from __future__ import annotations

import hashlib

import pytest

from mlsvc.checks import CHECKS
from mlsvc.crypto.suites import get_suite
from mlsvc.errors import DecodeError, ParameterError, ValidationError
from mlsvc.ext.codepoints import (
    DEFAULT_CODEPOINTS,
    GREASE_COMPONENTS,
    CodePoints,
    check_component_id,
    is_grease_component,
)
from mlsvc.ext.components import (
    AppDataDictionary,
    ComponentData,
    ComponentsList,
    Negotiated,
    capabilities_with_dictionary,
    check_leaf_supports,
    check_required_known,
    negotiation_dictionary,
    with_dictionary,
)
from mlsvc.group.config import GroupConfig, Identity, default_capabilities
from mlsvc.group.key_package import create_key_package
from mlsvc.messages.extensions import ApplicationId, Extension
from mlsvc.messages.leaf_node import LeafNode

# extensions-digest §4: {(1, 0x0002), (2, ""), (0x8001, 0xdeadbeef)}
DIGEST_EXAMPLE = bytes.fromhex("0f" "0001" "02" "0002" "0002" "00" "8001" "04" "deadbeef")


def test_code_points_are_the_drafts_suggested_values() -> None:
    """-09 §7.2, §7.3, §7.5."""
    cp = DEFAULT_CODEPOINTS
    assert (cp.app_data_dictionary, cp.supported_wire_formats, cp.required_wire_formats) == (
        0x0006, 0x0007, 0x0008)
    assert (cp.app_data_update, cp.app_ephemeral, cp.self_remove, cp.app_ack_proposal) == (
        0x0008, 0x0009, 0x000A, 0x000B)
    assert (cp.app_components, cp.safe_aad, cp.content_media_types,
            cp.last_resort_key_package, cp.app_ack_component) == (1, 2, 3, 4, 5)
    assert sorted(GREASE_COMPONENTS) == [0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A,
                                         0x6A6A, 0x7A7A]
    assert is_grease_component(0x3A3A) and not is_grease_component(0x8A8A)


def test_code_points_are_configurable() -> None:
    cp = CodePoints(app_data_dictionary=0xF006)
    d = AppDataDictionary.of({5: b"x"})
    assert d.to_extension(cp).extension_type == 0xF006
    assert AppDataDictionary.find_in([d.to_extension(cp)], cp) == d
    assert AppDataDictionary.find_in([d.to_extension(cp)]) is None
    with pytest.raises(ParameterError):
        CodePoints(safe_aad=0x10000)


def test_every_check_has_a_section_and_a_rule() -> None:
    assert all(section and rule for section, rule in CHECKS.values())


def test_dictionary_encoding_from_the_digest() -> None:
    d = AppDataDictionary.of({0x8001: bytes.fromhex("deadbeef"), 2: b"", 1: b"\x00\x02"})
    assert d.encode() == DIGEST_EXAMPLE
    assert AppDataDictionary.decode(DIGEST_EXAMPLE) == d
    assert d.component_ids() == (1, 2, 0x8001)
    ext = d.to_extension()
    assert ext.encode() == bytes.fromhex("0006") + b"\x10" + DIGEST_EXAMPLE


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("06" "0002" "00" "0001" "00"),  # unsorted
        bytes.fromhex("06" "0001" "00" "0001" "00"),  # duplicate
    ],
)
def test_unsorted_or_duplicate_dictionaries_are_rejected(data: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        AppDataDictionary.decode(data)
    assert info.value.check_id == "EXT-DICT-SORTED"
    with pytest.raises(ValidationError):
        AppDataDictionary.find_in([Extension(0x0006, data)])


@pytest.mark.parametrize("cut", range(1, len(DIGEST_EXAMPLE)))
def test_truncated_dictionaries_are_decode_errors(cut: int) -> None:
    with pytest.raises(DecodeError):
        AppDataDictionary.decode(DIGEST_EXAMPLE[:cut])


def test_unsorted_dictionary_cannot_be_built() -> None:
    with pytest.raises(ParameterError):
        AppDataDictionary((ComponentData(2, b""), ComponentData(1, b"")))
    with pytest.raises(ParameterError):
        ComponentData(0x10000, b"")
    with pytest.raises(ParameterError):
        check_component_id(-1)


def test_dictionary_edits_keep_the_order() -> None:
    d = AppDataDictionary.of({1: b"a", 9: b"b"})
    assert d.with_entry(5, b"c").component_ids() == (1, 5, 9)
    assert d.with_entry(9, b"z").get(9) == b"z"
    assert d.without(1).component_ids() == (9,)
    assert d.get(4) is None


def test_with_dictionary_replaces_in_place_or_appends() -> None:
    app_id = ApplicationId(b"app").to_extension()
    old = AppDataDictionary.of({1: b""}).to_extension()
    new = AppDataDictionary.of({2: b""})
    assert with_dictionary((old, app_id), new) == (new.to_extension(), app_id)
    assert with_dictionary((app_id,), new) == (app_id, new.to_extension())


def test_components_list_encoding() -> None:
    lst = ComponentsList.of([0x8002, 0x0A0A, 0x8002, 1])
    assert lst.encode() == bytes.fromhex("06" "0001" "0a0a" "8002")
    assert lst.meaningful() == {1, 0x8002}
    assert ComponentsList.decode(bytes.fromhex("04" "8002" "0001")).component_ids == (
        0x8002, 1)  # received lists are kept as sent
    with pytest.raises(DecodeError):
        ComponentsList.decode(bytes.fromhex("03" "8002" "00"))


def test_negotiation_lists_in_a_group_context() -> None:
    gc = (negotiation_dictionary([0x8002], []).to_extension(),)
    n = Negotiated.of_extensions(gc)
    assert n.app_components == ComponentsList((0x8002,))
    assert n.safe_aad == ComponentsList(())  # present, empty: SafeAAD is on (§5)
    assert Negotiated.of_extensions(()).safe_aad is None


def test_required_components_must_be_known() -> None:
    gc = (negotiation_dictionary([0x8002, 0x2A2A], [0x8003]).to_extension(),)
    check_required_known(gc, {0x8002, 0x8003})  # GREASE 0x2A2A ignored
    with pytest.raises(ValidationError) as info:
        check_required_known(gc, {0x8002})
    assert info.value.check_id == "EXT-COMPONENT-UNKNOWN"
    assert "0x8003" in info.value.reason


def _leaf(caps_ext: bool, app: list[int] | None, safe: list[int] | None) -> LeafNode:
    cs = get_suite(1)
    ident = Identity.basic(b"x", cs.signature.derive_key_pair(hashlib.sha512(b"x").digest()))
    caps = default_capabilities(1)
    if caps_ext:
        caps = capabilities_with_dictionary(caps)
    exts = (negotiation_dictionary(app, safe).to_extension(),) if (
        app is not None or safe is not None) else ()
    cfg = GroupConfig(rng=lambda n: hashlib.shake_256(b"leaf").digest(n))
    return create_key_package(cs, ident, cfg, capabilities=caps,
                              leaf_extensions=exts).key_package.leaf_node


def test_leaf_support_checks() -> None:
    gc = (negotiation_dictionary([0x8002], [0x8002]).to_extension(),)
    check_leaf_supports(_leaf(True, [0x8002, 0x8005], [0x8002]), gc)
    check_leaf_supports(_leaf(False, None, None), ())  # no dictionary anywhere: fine
    cases = [
        (_leaf(False, None, None), "EXT-COMPONENT-UNSUPPORTED"),  # no 0x0006 support
        (_leaf(True, None, None), "EXT-COMPONENT-UNSUPPORTED"),  # no lists
        (_leaf(True, [0x8002], []), "EXT-COMPONENT-UNSUPPORTED"),  # safe_aad missing
        (_leaf(True, [], [0x8002]), "EXT-COMPONENT-UNSUPPORTED"),  # app_components missing
        (_leaf(False, [0x8002], [0x8002]), "EXT-DICT-NOT-IN-CAPS"),  # RFC 9420 §7.2
    ]
    for leaf, check_id in cases:
        with pytest.raises(ValidationError) as info:
            check_leaf_supports(leaf, gc)
        assert info.value.check_id == check_id


def test_a_dictionary_not_listed_in_capabilities_is_refused() -> None:
    """RFC 9420 §7.2: a LeafNode's non-default extensions are listed in its
    capabilities; app_data_dictionary (0x0006) is one."""
    gc = (negotiation_dictionary([0x8002], [0x8002]).to_extension(),)
    with pytest.raises(ValidationError) as info:
        check_leaf_supports(_leaf(False, [0x8002], [0x8002]), gc)
    assert info.value.check_id == "EXT-DICT-NOT-IN-CAPS"


def test_capabilities_with_dictionary() -> None:
    caps = capabilities_with_dictionary(default_capabilities(1), proposals=(0x0008,))
    assert caps.extensions == (0x0006,) and caps.proposals == (0x0008,)
    assert capabilities_with_dictionary(caps, proposals=(0x0008,)) == caps
