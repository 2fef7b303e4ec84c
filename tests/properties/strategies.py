"""Hypothesis strategies for every RFC 9420 wire struct of mlsvc.messages, and a table
of codecs (strategy, encoder, decoder) that the round-trip and fuzz suites share.

Sizes are kept small (short byte strings, lists of at most a few items) so that the
nested structs (an MLSMessage holding a Commit holding an Add holding a KeyPackage)
stay cheap to generate. Code points of open registries are drawn from the whole
uint16 range, so unknown and GREASE values are exercised; closed enums are drawn
from their members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import strategies as st

from mlsvc.codec import Reader, Writer, decode_exact
from mlsvc.messages.codepoints import (
    ContentType,
    LeafNodeSource,
    ResumptionPSKUsage,
    SenderType,
)
from mlsvc.messages.commit import Commit, HPKECiphertext, UpdatePath, UpdatePathNode
from mlsvc.messages.credentials import BasicCredential, Certificate, Credential, X509Credential
from mlsvc.messages.extensions import (
    ApplicationId,
    Extension,
    ExternalPub,
    ExternalSender,
    ExternalSenders,
    RequiredCapabilities,
)
from mlsvc.messages.framing import (
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ConfirmedTranscriptHashInput,
    Content,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    InterimTranscriptHashInput,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
)
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import (
    Capabilities,
    LeafNode,
    Lifetime,
    Node,
    ParentNode,
    RatchetTreeExtension,
    read_node,
    write_node,
)
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    ProposalRef,
    ReInit,
    Remove,
    Update,
    decode_proposal,
    encode_proposal,
    read_proposal_or_ref,
    write_proposal_or_ref,
)
from mlsvc.messages.welcome import EncryptedGroupSecrets, GroupSecrets, PathSecret, Welcome
from mlsvc.types import LeafIndex

T = TypeVar("T")

# -- primitives ---------------------------------------------------------------------

small_bytes = st.binary(max_size=8)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
leaf_indices = u32.map(LeafIndex)


def tuples(elements: st.SearchStrategy[T], max_size: int = 2) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, max_size=max_size).map(tuple)


# -- credentials, extensions --------------------------------------------------------

certificates = st.builds(Certificate, small_bytes)
credentials: st.SearchStrategy[Credential] = st.one_of(
    st.builds(BasicCredential, small_bytes),
    st.builds(X509Credential, tuples(certificates)),
)
extensions = st.builds(Extension, u16, small_bytes)
extension_lists = tuples(extensions)
application_ids = st.builds(ApplicationId, small_bytes)
required_capabilities = st.builds(
    RequiredCapabilities, tuples(u16, 3), tuples(u16, 3), tuples(u16, 3)
)
external_pubs = st.builds(ExternalPub, small_bytes)
external_sender_entries = st.builds(ExternalSender, small_bytes, credentials)
external_senders = st.builds(ExternalSenders, tuples(external_sender_entries))

# -- tree nodes, key packages -------------------------------------------------------

capabilities = st.builds(
    Capabilities, tuples(u16, 3), tuples(u16, 3), tuples(u16, 3), tuples(u16, 3),
    tuples(u16, 3),
)
lifetimes = st.builds(Lifetime, u64, u64)


@st.composite
def leaf_nodes(draw: st.DrawFn, source: LeafNodeSource | None = None) -> LeafNode:
    src = draw(st.sampled_from(LeafNodeSource)) if source is None else source
    return LeafNode(
        draw(small_bytes),
        draw(small_bytes),
        draw(credentials),
        draw(capabilities),
        src,
        draw(lifetimes) if src == LeafNodeSource.KEY_PACKAGE else None,
        draw(small_bytes) if src == LeafNodeSource.COMMIT else None,
        draw(extension_lists),
        draw(small_bytes),
    )


parent_nodes = st.builds(ParentNode, small_bytes, small_bytes, tuples(leaf_indices, 3))
nodes: st.SearchStrategy[Node] = st.one_of(leaf_nodes(), parent_nodes)


@st.composite
def ratchet_trees(draw: st.DrawFn) -> RatchetTreeExtension:
    """Leaves at even, parents at odd positions, the last node non-blank (§12.4.3.3)."""
    size = draw(st.integers(1, 5))
    out: list[Node | None] = []
    for i in range(size):
        node_strategy: st.SearchStrategy[Node] = leaf_nodes() if i % 2 == 0 else parent_nodes
        last = i == size - 1
        out.append(draw(node_strategy if last else st.none() | node_strategy))
    return RatchetTreeExtension(tuple(out))


key_packages = st.builds(
    KeyPackage, u16, u16, small_bytes, leaf_nodes(LeafNodeSource.KEY_PACKAGE),
    extension_lists, small_bytes,
)

# -- proposals, commits -------------------------------------------------------------

psk_ids: st.SearchStrategy[PreSharedKeyID] = st.one_of(
    st.builds(PreSharedKeyID.external, small_bytes, small_bytes),
    st.builds(
        PreSharedKeyID.resumption, st.sampled_from(ResumptionPSKUsage), small_bytes, u64,
        small_bytes,
    ),
)
adds = st.builds(Add, key_packages)
updates = st.builds(Update, leaf_nodes(LeafNodeSource.UPDATE))
removes = st.builds(Remove, leaf_indices)
pre_shared_keys = st.builds(PreSharedKey, psk_ids)
reinits = st.builds(ReInit, small_bytes, u16, u16, extension_lists)
external_inits = st.builds(ExternalInit, small_bytes)
group_context_extensions = st.builds(GroupContextExtensions, extension_lists)
proposals: st.SearchStrategy[Proposal] = st.one_of(
    adds, updates, removes, pre_shared_keys, reinits, external_inits, group_context_extensions
)
proposal_refs = st.builds(ProposalRef, small_bytes)
proposal_or_refs: st.SearchStrategy[ProposalOrRef] = st.one_of(proposals, proposal_refs)

hpke_ciphertexts = st.builds(HPKECiphertext, small_bytes, small_bytes)
update_path_nodes = st.builds(UpdatePathNode, small_bytes, tuples(hpke_ciphertexts))
update_paths = st.builds(
    UpdatePath, leaf_nodes(LeafNodeSource.COMMIT), tuples(update_path_nodes)
)
commits = st.builds(Commit, tuples(proposal_or_refs), st.none() | update_paths)

# -- group info, welcome ------------------------------------------------------------

group_contexts = st.builds(
    GroupContext, u16, small_bytes, u64, small_bytes, small_bytes, extension_lists
)
group_infos = st.builds(
    GroupInfo, group_contexts, extension_lists, small_bytes, leaf_indices, small_bytes
)
path_secrets = st.builds(PathSecret, small_bytes)
group_secrets = st.builds(GroupSecrets, small_bytes, st.none() | path_secrets, tuples(psk_ids))
encrypted_group_secrets = st.builds(EncryptedGroupSecrets, small_bytes, hpke_ciphertexts)
welcomes = st.builds(Welcome, u16, tuples(encrypted_group_secrets), small_bytes)

# -- framing ------------------------------------------------------------------------

senders: st.SearchStrategy[Sender] = st.one_of(
    st.builds(Sender.member, leaf_indices),
    st.builds(Sender.external, u32),
    st.just(Sender.new_member_proposal()),
    st.just(Sender.new_member_commit()),
)
contents: st.SearchStrategy[Content] = st.one_of(small_bytes, proposals, commits)
content_types = st.sampled_from(ContentType)
framed_contents = st.builds(FramedContent, small_bytes, u64, senders, small_bytes, contents)


def auth_data(content_type: ContentType) -> st.SearchStrategy[FramedContentAuthData]:
    """FramedContentAuthData with a confirmation_tag iff the content is a commit."""
    tags = small_bytes if content_type == ContentType.COMMIT else st.none()
    return st.builds(FramedContentAuthData, small_bytes, tags)


def content_of_type(content_type: ContentType) -> st.SearchStrategy[Content]:
    if content_type == ContentType.APPLICATION:
        return small_bytes
    if content_type == ContentType.PROPOSAL:
        return proposals
    return commits


@st.composite
def authenticated_contents(draw: st.DrawFn) -> AuthenticatedContent:
    content = draw(framed_contents)
    return AuthenticatedContent(draw(u16), content, draw(auth_data(content.content_type)))


@st.composite
def framed_content_tbss(draw: st.DrawFn) -> FramedContentTBS:
    content = draw(framed_contents)
    context = draw(group_contexts) if content.sender.signs_with_group_context else None
    return FramedContentTBS(draw(u16), content, context)


@st.composite
def authenticated_content_tbms(draw: st.DrawFn) -> AuthenticatedContentTBM:
    tbs = draw(framed_content_tbss())
    return AuthenticatedContentTBM(tbs, draw(auth_data(tbs.content.content_type)))


confirmed_transcript_hash_inputs = st.builds(
    ConfirmedTranscriptHashInput, u16, framed_contents, small_bytes
)
interim_transcript_hash_inputs = st.builds(InterimTranscriptHashInput, small_bytes)


@st.composite
def public_messages(draw: st.DrawFn) -> PublicMessage:
    content = draw(framed_contents)
    auth = draw(auth_data(content.content_type))
    tag = draw(small_bytes) if content.sender.sender_type == SenderType.MEMBER else None
    return PublicMessage(content, auth, tag)


private_messages = st.builds(
    PrivateMessage, small_bytes, u64, content_types, small_bytes, small_bytes, small_bytes
)
sender_datas = st.builds(SenderData, leaf_indices, u32, st.binary(min_size=4, max_size=4))
sender_data_aads = st.builds(SenderDataAAD, small_bytes, u64, content_types)
private_content_aads = st.builds(PrivateContentAAD, small_bytes, u64, content_types, small_bytes)


def private_message_contents(content_type: ContentType) -> st.SearchStrategy[PrivateMessageContent]:
    return st.builds(
        PrivateMessageContent,
        content_of_type(content_type),
        auth_data(content_type),
        st.integers(0, 8),
    )


mls_messages = st.builds(
    MLSMessage,
    st.one_of(public_messages(), private_messages, welcomes, group_infos, key_packages),
)

# -- the codec table ----------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A wire struct: values to draw, its encoder and its exact-consumption decoder."""

    name: str
    values: st.SearchStrategy[Any]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def _struct(name: str, cls: Any, values: st.SearchStrategy[Any]) -> Codec:
    return Codec(name, values, lambda v: bytes(v.encode()), cls.decode)


def _with(
    name: str,
    values: st.SearchStrategy[T],
    write: Callable[[Writer, T], None],
    read: Callable[[Reader], T],
) -> Codec:
    def encode(value: Any) -> bytes:
        w = Writer()
        write(w, value)
        return w.bytes()

    return Codec(name, values, encode, lambda data: decode_exact(data, read))


def _auth_codec(ct: ContentType) -> Codec:
    return Codec(
        f"FramedContentAuthData[{ct.name.lower()}]",
        auth_data(ct),
        lambda v: bytes(v.encode()),
        lambda data: FramedContentAuthData.decode_for(data, ct),
    )


def _pmc_codec(ct: ContentType) -> Codec:
    return Codec(
        f"PrivateMessageContent[{ct.name.lower()}]",
        private_message_contents(ct),
        lambda v: bytes(v.encode()),
        lambda data: PrivateMessageContent.decode_for(data, ct),
    )


CODECS: tuple[Codec, ...] = (
    _struct("BasicCredential", BasicCredential, st.builds(BasicCredential, small_bytes)),
    _struct("X509Credential", X509Credential, st.builds(X509Credential, tuples(certificates))),
    _struct("Credential", Credential, credentials),
    _struct("Certificate", Certificate, certificates),
    _struct("Extension", Extension, extensions),
    _struct("ApplicationId", ApplicationId, application_ids),
    _struct("RequiredCapabilities", RequiredCapabilities, required_capabilities),
    _struct("ExternalPub", ExternalPub, external_pubs),
    _struct("ExternalSender", ExternalSender, external_sender_entries),
    _struct("ExternalSenders", ExternalSenders, external_senders),
    _struct("Capabilities", Capabilities, capabilities),
    _struct("Lifetime", Lifetime, lifetimes),
    _struct("LeafNode", LeafNode, leaf_nodes()),
    _struct("ParentNode", ParentNode, parent_nodes),
    _with("Node", nodes, write_node, read_node),
    _struct("RatchetTreeExtension", RatchetTreeExtension, ratchet_trees()),
    _struct("KeyPackage", KeyPackage, key_packages),
    _struct("PreSharedKeyID", PreSharedKeyID, psk_ids),
    _struct("Add", Add, adds),
    _struct("Update", Update, updates),
    _struct("Remove", Remove, removes),
    _struct("PreSharedKey", PreSharedKey, pre_shared_keys),
    _struct("ReInit", ReInit, reinits),
    _struct("ExternalInit", ExternalInit, external_inits),
    _struct("GroupContextExtensions", GroupContextExtensions, group_context_extensions),
    Codec("Proposal", proposals, encode_proposal, decode_proposal),
    _struct("ProposalRef", ProposalRef, proposal_refs),
    _with("ProposalOrRef", proposal_or_refs, write_proposal_or_ref, read_proposal_or_ref),
    _struct("HPKECiphertext", HPKECiphertext, hpke_ciphertexts),
    _struct("UpdatePathNode", UpdatePathNode, update_path_nodes),
    _struct("UpdatePath", UpdatePath, update_paths),
    _struct("Commit", Commit, commits),
    _struct("GroupContext", GroupContext, group_contexts),
    _struct("GroupInfo", GroupInfo, group_infos),
    _struct("PathSecret", PathSecret, path_secrets),
    _struct("GroupSecrets", GroupSecrets, group_secrets),
    _struct("EncryptedGroupSecrets", EncryptedGroupSecrets, encrypted_group_secrets),
    _struct("Welcome", Welcome, welcomes),
    _struct("Sender", Sender, senders),
    _struct("FramedContent", FramedContent, framed_contents),
    *(_auth_codec(ct) for ct in ContentType),
    _struct("AuthenticatedContent", AuthenticatedContent, authenticated_contents()),
    _struct("FramedContentTBS", FramedContentTBS, framed_content_tbss()),
    _struct("AuthenticatedContentTBM", AuthenticatedContentTBM, authenticated_content_tbms()),
    _struct(
        "ConfirmedTranscriptHashInput", ConfirmedTranscriptHashInput,
        confirmed_transcript_hash_inputs,
    ),
    _struct("InterimTranscriptHashInput", InterimTranscriptHashInput,
            interim_transcript_hash_inputs),
    _struct("PublicMessage", PublicMessage, public_messages()),
    _struct("PrivateMessage", PrivateMessage, private_messages),
    _struct("SenderData", SenderData, sender_datas),
    _struct("SenderDataAAD", SenderDataAAD, sender_data_aads),
    _struct("PrivateContentAAD", PrivateContentAAD, private_content_aads),
    *(_pmc_codec(ct) for ct in ContentType),
    _struct("MLSMessage", MLSMessage, mls_messages),
)

CODEC_IDS = [c.name for c in CODECS]
