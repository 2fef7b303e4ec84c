"""RFC 9420 wire structs as frozen, slotted dataclasses with explicit TLS codecs.

Modules (import direction inside the package, top to bottom):
  codepoints   enums and registries; which are closed (DecodeError) or open (int)
  credentials  Credential, BasicCredential, X509Credential, Certificate (§5.3)
  extensions   Extension, extension lists, ApplicationId, RequiredCapabilities,
               ExternalPub, ExternalSender(s) (§7.2, §11.1, §12.1.8.1, §12.4.3.2)
  leaf_node    Capabilities, Lifetime, LeafNode (+LeafNodeTBS), ParentNode, Node,
               RatchetTreeExtension (§7.1, §7.2, §12.4.3.3)
  key_package  KeyPackage (+KeyPackageTBS, KeyPackageRef) (§10)
  proposals    PreSharedKeyID, Proposal bodies, ProposalRef, ProposalOrRef (§8.4, §12.1)
  commit       HPKECiphertext, UpdatePathNode, UpdatePath, Commit (§7.6, §12.4)
  group_info   GroupContext, GroupInfo (+GroupInfoTBS) (§8.1, §12.4.3)
  welcome      PathSecret, GroupSecrets, EncryptedGroupSecrets, Welcome (§12.4.3.1)
  framing      Sender, FramedContent, FramedContentAuthData, AuthenticatedContent,
               FramedContentTBS, AuthenticatedContentTBM, transcript hash inputs,
               PublicMessage, PrivateMessage, SenderData, the AADs,
               PrivateMessageContent (§6, §8.2)
  mls_message  MLSMessage (§6)
Every decoder raises only `DecodeError` on malformed input.
"""

from mlsvc.messages.codepoints import (
    ContentType,
    CredentialType,
    ExtensionType,
    LeafNodeSource,
    NodeType,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    PSKType,
    ResumptionPSKUsage,
    SenderType,
    WireFormat,
)
from mlsvc.messages.commit import Commit, HPKECiphertext, UpdatePath, UpdatePathNode
from mlsvc.messages.credentials import (
    BasicCredential,
    Certificate,
    Credential,
    X509Credential,
)
from mlsvc.messages.extensions import (
    ApplicationId,
    Extension,
    ExtensionPayload,
    Extensions,
    ExternalPub,
    ExternalSender,
    ExternalSenders,
    RequiredCapabilities,
    find_extension,
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
)
from mlsvc.messages.mls_message import MLSMessage, MLSMessageBody
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
)
from mlsvc.messages.welcome import EncryptedGroupSecrets, GroupSecrets, PathSecret, Welcome

__all__ = [
    "Add",
    "ApplicationId",
    "AuthenticatedContent",
    "AuthenticatedContentTBM",
    "BasicCredential",
    "Capabilities",
    "Certificate",
    "Commit",
    "ConfirmedTranscriptHashInput",
    "Content",
    "ContentType",
    "Credential",
    "CredentialType",
    "EncryptedGroupSecrets",
    "Extension",
    "ExtensionPayload",
    "ExtensionType",
    "Extensions",
    "ExternalInit",
    "ExternalPub",
    "ExternalSender",
    "ExternalSenders",
    "FramedContent",
    "FramedContentAuthData",
    "FramedContentTBS",
    "GroupContext",
    "GroupContextExtensions",
    "GroupInfo",
    "GroupSecrets",
    "HPKECiphertext",
    "InterimTranscriptHashInput",
    "KeyPackage",
    "LeafNode",
    "LeafNodeSource",
    "Lifetime",
    "MLSMessage",
    "MLSMessageBody",
    "Node",
    "NodeType",
    "PSKType",
    "ParentNode",
    "PathSecret",
    "PreSharedKey",
    "PreSharedKeyID",
    "PrivateContentAAD",
    "PrivateMessage",
    "PrivateMessageContent",
    "Proposal",
    "ProposalOrRef",
    "ProposalOrRefType",
    "ProposalRef",
    "ProposalType",
    "ProtocolVersion",
    "PublicMessage",
    "RatchetTreeExtension",
    "ReInit",
    "Remove",
    "RequiredCapabilities",
    "ResumptionPSKUsage",
    "Sender",
    "SenderData",
    "SenderDataAAD",
    "SenderType",
    "Update",
    "UpdatePath",
    "UpdatePathNode",
    "Welcome",
    "WireFormat",
    "X509Credential",
    "find_extension",
]
