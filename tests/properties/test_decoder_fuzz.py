"""Every decoder of mlsvc.messages, fed random bytes and mutated valid encodings
(bit flips, truncation, insertion, deletion, overwrite), raises only DecodeError; and
whatever it does accept re-encodes to exactly the input (the codec is canonical:
minimal varints, strict flags and enums, exact consumption).

Then hand-made malformed inputs, one per rule of RFC 9420 that makes bytes malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsvc.codec import decode_exact
from mlsvc.errors import DecodeError
from mlsvc.messages import (
    BasicCredential,
    Capabilities,
    Commit,
    ContentType,
    Credential,
    FramedContentAuthData,
    GroupContext,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    PreSharedKeyID,
    PrivateMessage,
    PrivateMessageContent,
    ProposalRef,
    RatchetTreeExtension,
    RequiredCapabilities,
    Sender,
)
from mlsvc.messages.leaf_node import read_node
from mlsvc.messages.proposals import decode_proposal, read_proposal_or_ref
from tests.properties.strategies import CODEC_IDS, CODECS, Codec


def _decode_only_decode_error(codec: Codec, data: bytes) -> None:
    try:
        value = codec.decode(data)
    except DecodeError:
        return
    assert codec.encode(value) == data, "accepted bytes must re-encode identically"


@st.composite
def _mutations(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if op == "truncate" and buf:
            del buf[draw(st.integers(0, len(buf) - 1)) :]
        elif op == "insert":
            at = draw(st.integers(0, len(buf)))
            buf[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and buf:
            at = draw(st.integers(0, len(buf) - 1))
            del buf[at : at + draw(st.integers(1, 4))]
        elif op == "overwrite" and buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        elif buf:  # flip one bit
            at = draw(st.integers(0, len(buf) - 1))
            buf[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(buf)


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@given(data=st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(codec: Codec, data: bytes) -> None:
    _decode_only_decode_error(codec, data)


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@given(data=st.data())
def test_mutated_encodings_raise_only_decode_error(codec: Codec, data: st.DataObject) -> None:
    encoded = codec.encode(data.draw(codec.values))
    _decode_only_decode_error(codec, data.draw(_mutations(encoded)))


# -- one malformed input per rule ----------------------------------------------------

_EPOCH0 = "0000000000000000"


def _leaf(source_byte: str) -> str:
    """A LeafNode encoding up to (and including) leaf_node_source (§7.2)."""
    return "00" "00" "0001" "00" "00" "00" "00" "00" "00" + source_byte


def _valid_leaf() -> bytes:
    return LeafNode(
        b"", b"", BasicCredential(b""), Capabilities((), (), (), (), ()),
        LeafNodeSource.KEY_PACKAGE, Lifetime(0, 0), None, (), b"",
    ).encode()


_MALFORMED: list[tuple[str, Callable[[bytes], Any], str]] = [
    # closed enums (§6, §7.2, §7.8, §8.4, §12.4): reserved 0 and unknown values
    ("sender type reserved", Sender.decode, "00"),
    ("sender type unknown", Sender.decode, "0500000001"),
    ("content type reserved", PrivateMessage.decode, "00" + _EPOCH0 + "00" + "000000"),
    ("content type unknown", PrivateMessage.decode, "00" + _EPOCH0 + "04" + "000000"),
    ("leaf node source reserved", LeafNode.decode, _leaf("00") + "0000"),
    ("leaf node source unknown", LeafNode.decode, _leaf("04") + "0000"),
    ("node type reserved", lambda b: decode_exact(b, read_node), "00"),
    ("node type unknown", lambda b: decode_exact(b, read_node), "03"),
    ("psk type unknown", PreSharedKeyID.decode, "030000"),
    ("resumption usage reserved", PreSharedKeyID.decode, "0200" "00" + _EPOCH0 + "00"),
    ("proposal-or-ref type", lambda b: decode_exact(b, read_proposal_or_ref), "0301ab"),
    # registries whose body cannot be skipped (§12.1, §5.3, §13.5; §6)
    ("GREASE proposal type", decode_proposal, "0a0a00"),
    ("unknown proposal type", decode_proposal, "000800"),
    ("GREASE credential type", Credential.decode, "0a0a00"),
    ("unknown wire format", MLSMessage.decode, "0001" "0006"),
    ("reserved wire format", MLSMessage.decode, "0001" "0000"),
    # version = mls10 (§6, §8.1)
    ("MLSMessage version 2", MLSMessage.decode, "0002" "0005"),
    ("GroupContext version 0", GroupContext.decode, "0000" "0001" "00" + _EPOCH0 + "000000"),
    # presentation language (§2.1.2, §2.1.3)
    ("optional flag 2", Commit.decode, "00" "02"),
    ("non-minimal varint", ProposalRef.decode, "4001ab"),
    ("varint prefix 0b11", ProposalRef.decode, "c0000001ab"),
    ("odd uint16 list", RequiredCapabilities.decode, "03000100" "00" "00"),
    ("vector overruns", ProposalRef.decode, "05abab"),
    ("trailing bytes", ProposalRef.decode, "01abff"),
    # §6.3.1: non-zero padding makes the PrivateMessage malformed
    (
        "non-zero padding",
        lambda b: PrivateMessageContent.decode_for(b, ContentType.APPLICATION),
        "0161" "0173" "000100",
    ),
    # §6.1: a commit's auth carries a confirmation tag
    (
        "commit auth without tag",
        lambda b: FramedContentAuthData.decode_for(b, ContentType.COMMIT),
        "0173",
    ),
    # §12.4.3.3: ratchet_tree<1..>, last node non-blank, leaves at even positions
    ("empty ratchet tree", RatchetTreeExtension.decode, "00"),
    ("trailing blank node", RatchetTreeExtension.decode, "00"),  # replaced below
    ("parent at a leaf position", RatchetTreeExtension.decode, "0501" "02" "000000"),
]


def _trailing_blank_tree() -> str:
    body = b"\x01\x01" + _valid_leaf() + b"\x00"
    return (bytes([len(body)]) + body).hex()


_MALFORMED[-2] = ("trailing blank node", RatchetTreeExtension.decode, _trailing_blank_tree())


@pytest.mark.parametrize(
    ("decode", "hexdata"), [(d, x) for _, d, x in _MALFORMED], ids=[n for n, _, _ in _MALFORMED]
)
def test_malformed_input_is_a_decode_error(decode: Callable[[bytes], Any], hexdata: str) -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hexdata))


def test_the_valid_neighbours_decode() -> None:
    """The malformed inputs above differ from valid ones only in the rule they break."""
    assert Sender.decode(bytes.fromhex("0200000001")) == Sender.external(1)
    assert PrivateMessage.decode(bytes.fromhex("00" + _EPOCH0 + "03" + "000000")).content_type \
        == ContentType.COMMIT
    assert PrivateMessageContent.decode_for(
        bytes.fromhex("0161" "0173" "000000"), ContentType.APPLICATION
    ).padding == 3
    assert ProposalRef.decode(bytes.fromhex("01ab")) == ProposalRef(b"\xab")
    tree_hex = _trailing_blank_tree()
    ok = bytes([int(tree_hex[:2], 16) - 1]) + bytes.fromhex(tree_hex[2:-2])
    assert len(RatchetTreeExtension.decode(ok).nodes) == 1
    psk = PreSharedKeyID.decode(bytes.fromhex("0201" "00" + _EPOCH0 + "00"))
    assert psk.usage == 1 and psk.psk_epoch == 0
    assert decode_proposal(bytes.fromhex("000700")) is not None  # GroupContextExtensions
