"""decode(encode(x)) == x for every RFC 9420 wire struct, plus hand-written encodings
taken from the TLS structs of the RFC (open registries round-trip, construction
invariants hold)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlsvc.messages as messages
from mlsvc.codec import encode_opaque
from mlsvc.errors import ParameterError
from mlsvc.messages import (
    Add,
    AuthenticatedContent,
    BasicCredential,
    Capabilities,
    Commit,
    ContentType,
    Extension,
    ExtensionType,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    ParentNode,
    PreSharedKeyID,
    PrivateMessageContent,
    ProposalRef,
    PSKType,
    PublicMessage,
    RatchetTreeExtension,
    Remove,
    RequiredCapabilities,
    Sender,
    SenderData,
    SenderType,
)
from mlsvc.messages.proposals import decode_proposal, encode_proposal
from mlsvc.types import LeafIndex
from tests.properties.strategies import CODEC_IDS, CODECS, Codec


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@given(data=st.data())
def test_decode_inverts_encode(codec: Codec, data: st.DataObject) -> None:
    value = data.draw(codec.values)
    encoded = codec.encode(value)
    decoded = codec.decode(encoded)
    assert decoded == value
    assert type(decoded) is type(value)
    assert codec.encode(decoded) == encoded


def _concrete_structs() -> set[str]:
    names: set[str] = set()
    for module_name in (
        "codepoints", "credentials", "extensions", "leaf_node", "key_package", "proposals",
        "commit", "group_info", "welcome", "framing", "mls_message",
    ):
        module = getattr(messages, module_name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and dataclasses.is_dataclass(obj)
            ):
                names.add(name)
    return names


def test_every_wire_dataclass_has_a_strategy() -> None:
    covered = {name.split("[")[0] for name in CODEC_IDS}
    missing = _concrete_structs() - covered
    assert not missing, f"no strategy/codec for {sorted(missing)}"


def test_wire_values_are_frozen_and_slotted() -> None:
    sender = Sender.member(LeafIndex(3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sender.__setattr__("index", 4)
    assert not hasattr(sender, "__dict__")


# -- hand-written encodings from the TLS structs ------------------------------------


def _kp_leaf(extensions: tuple[Extension, ...] = ()) -> LeafNode:
    return LeafNode(
        b"\xee", b"\x55", BasicCredential(b"id"), Capabilities((1,), (1,), (), (), (1,)),
        LeafNodeSource.KEY_PACKAGE, Lifetime(0, 2**64 - 1), None, extensions, b"\x51",
    )


def test_sender_encodings() -> None:
    # §6: uint8 sender_type, then uint32 leaf_index / sender_index or nothing
    assert Sender.member(LeafIndex(5)).encode() == bytes.fromhex("0100000005")
    assert Sender.external(2).encode() == bytes.fromhex("0200000002")
    assert Sender.new_member_proposal().encode() == b"\x03"
    assert Sender.new_member_commit().encode() == b"\x04"
    assert Sender.decode(bytes.fromhex("0100000005")) == Sender(SenderType.MEMBER, 5)


def test_unknown_and_grease_extensions_are_carried_opaquely() -> None:
    # §7.2/§13.4: unknown extensions MUST be ignored, so they parse as opaque data
    ext = Extension.decode(bytes.fromhex("0a0a03616263"))
    assert ext == Extension(0x0A0A, b"abc")
    assert Extension.decode(bytes.fromhex("f00100")) == Extension(0xF001, b"")
    leaf = _kp_leaf((ext, Extension(0x7777, b"")))
    assert LeafNode.decode(leaf.encode()) == leaf


def test_capabilities_carry_any_uint16() -> None:
    # §7.2: "unknown values in capabilities MUST be ignored" (GREASE, private use)
    raw = bytes.fromhex("04 0001 0a0a" "02 1a1a" "02 ffff" "02 f000" "02 eaea".replace(" ", ""))
    caps = Capabilities.decode(raw)
    assert caps == Capabilities((1, 0x0A0A), (0x1A1A,), (0xFFFF,), (0xF000,), (0xEAEA,))
    assert caps.encode() == raw
    req = RequiredCapabilities.decode(bytes.fromhex("0200050000"))
    assert req == RequiredCapabilities((5,), (), ())


def test_extension_payload_wrapping() -> None:
    req = RequiredCapabilities((0x0A0A,), (8,), (1,))
    ext = req.to_extension()
    assert ext.extension_type == 3  # §17.3 required_capabilities
    assert ext.extension_type == ExtensionType.REQUIRED_CAPABILITIES
    assert RequiredCapabilities.from_extension(ext) == req
    assert RequiredCapabilities.find_in((Extension(1, b"\x00"), ext)) == req
    with pytest.raises(ParameterError):
        RequiredCapabilities.from_extension(Extension(1, b"\x00"))


def test_proposal_union_and_bare_bodies() -> None:
    # §12.1: the Proposal union prefixes the body with a uint16 proposal_type
    assert Remove(LeafIndex(7)).encode() == bytes.fromhex("00000007")
    assert encode_proposal(Remove(LeafIndex(7))) == bytes.fromhex("000300000007")
    assert decode_proposal(bytes.fromhex("000300000007")) == Remove(LeafIndex(7))
    # §12.4: ProposalOrRef uint8 tag 1 = proposal, 2 = reference; optional<UpdatePath> 0
    commit = Commit((Remove(LeafIndex(1)), ProposalRef(b"\xab")), None)
    assert commit.encode() == bytes.fromhex("0a" "01" "0003" "00000001" "02" "01ab" "00")
    assert Commit.decode(commit.encode()) == commit


def test_psk_id_encodings() -> None:
    # §8.4: external = 01 psk_id<V> psk_nonce<V>; resumption = 02 usage group_id<V>
    # uint64 epoch psk_nonce<V>
    ext = PreSharedKeyID.external(b"\x01\x02", b"\x09")
    assert ext.encode() == bytes.fromhex("01" "020102" "0109")
    res = PreSharedKeyID.decode(bytes.fromhex("02" "03" "01aa" "0000000000000007" "00"))
    assert (res.psktype, res.usage, res.psk_group_id, res.psk_epoch) == (
        PSKType.RESUMPTION, 3, b"\xaa", 7,
    )


def test_private_message_content_padding() -> None:
    # §6.3.1: content, auth, then zero padding: application_data<V> signature<V> 00..
    pmc = PrivateMessageContent.decode_for(bytes.fromhex("0161" "0173" "000000"),
                                           ContentType.APPLICATION)
    assert pmc == PrivateMessageContent(b"a", FramedContentAuthData(b"s"), 3)
    assert pmc.encode() == bytes.fromhex("0161" "0173" "000000")


def test_version_is_fixed_to_mls10() -> None:
    gc = GroupContext(1, b"g", 0, b"", b"", ())
    assert gc.encode()[:2] == b"\x00\x01"
    kp = KeyPackage(1, 1, b"\x01", _kp_leaf(), ())
    assert MLSMessage(kp).encode()[:4] == bytes.fromhex("00010005")


# -- construction invariants (the select arms of the TLS structs) -------------------

def _bad_constructions() -> list[Any]:
    content = FramedContent(b"g", 0, Sender.member(LeafIndex(0)), b"", Commit((), None))
    app = FramedContent(b"g", 0, Sender.external(0), b"", b"data")
    return [
        lambda: LeafNode(
            b"", b"", BasicCredential(b""), Capabilities((), (), (), (), ()),
            LeafNodeSource.COMMIT, Lifetime(0, 1), None, (), b"",
        ),
        lambda: LeafNode(
            b"", b"", BasicCredential(b""), Capabilities((), (), (), (), ()),
            LeafNodeSource.UPDATE, None, b"", (), b"",
        ),
        lambda: Sender(SenderType.MEMBER),
        lambda: Sender(SenderType.NEW_MEMBER_COMMIT, 1),
        lambda: AuthenticatedContent(1, content, FramedContentAuthData(b"s")),
        lambda: AuthenticatedContent(1, app, FramedContentAuthData(b"s", b"t")),
        lambda: PublicMessage(content, FramedContentAuthData(b"s", b"t"), None),
        lambda: PublicMessage(app, FramedContentAuthData(b"s"), b"m"),
        lambda: RatchetTreeExtension(()),
        lambda: RatchetTreeExtension((_kp_leaf(), None)),
        lambda: RatchetTreeExtension((ParentNode(b"", b"", ()),)),
        lambda: SenderData(LeafIndex(0), 0, b"abc"),
        lambda: PreSharedKeyID(PSKType.EXTERNAL, b"", None),
        lambda: PrivateMessageContent(b"x", FramedContentAuthData(b""), -1),
    ]


@pytest.mark.parametrize("build", _bad_constructions())
def test_inconsistent_select_arms_are_refused(build: Any) -> None:
    with pytest.raises(ParameterError):
        build()


def test_ratchet_tree_from_nodes_strips_trailing_blanks() -> None:
    leaf = _kp_leaf()
    tree = RatchetTreeExtension.from_nodes((leaf, None, None))
    assert tree.nodes == (leaf,)
    # optional<Node> ratchet_tree<V>: present (01), node_type leaf (01), LeafNode
    assert tree.encode() == encode_opaque(b"\x01\x01" + leaf.encode())


def test_add_wraps_a_key_package() -> None:
    kp = KeyPackage(1, 1, b"\x01", _kp_leaf(), ())
    assert Add(kp).encode() == kp.encode()
