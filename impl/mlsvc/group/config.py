"""What the application supplies to a group: its identity and keys, its policies
(credential validation, PSKs, clock, wire-format choices) and its randomness.

Sans-IO: no global clock or RNG is read here; `GroupConfig` carries them as callables
so tests and emulators are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.random import system_random
from mlsvc.messages.codepoints import CredentialType, ProtocolVersion
from mlsvc.messages.credentials import BasicCredential, Credential
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime
from mlsvc.messages.proposals import Proposal
from mlsvc.types import LeafIndex


@dataclass(frozen=True)
class ProposalTypeRule:
    """How the engine treats a non-default proposal type (RFC 9420 §17.4: "a new
    proposal type ... MUST specify ... whether a path is required, and how it is
    applied"; the extensions draft defines such types, e.g. AppDataUpdate).

    `apply` maps the GroupContext extensions and the list's proposals of this type (in
    list order) to the new extensions, after any GroupContextExtensions proposal has
    been applied; None leaves them unchanged."""

    path_required: bool = True
    external_commit_allowed: bool = False
    apply: Callable[[Extensions, Sequence[Proposal]], Extensions] | None = None


class MessageValidator(Protocol):
    """Checks a handshake or application message's authenticated_data before the
    group unprotects it (e.g. SafeAAD of the extensions draft). Raise a RemoteError
    subclass to reject; the group state is unchanged."""

    def __call__(self, context: GroupContext, authenticated_data: bytes, /) -> None: ...


class ProposalListValidator(Protocol):
    """An application rule on a whole proposal list (§12.2: "An application may extend
    the above procedure by additional rules"), run on both the committer's and the
    receivers' side after the RFC's checks and before the new epoch is computed."""

    def __call__(self, old_extensions: Extensions, new_extensions: Extensions,
                 proposals: Sequence[Proposal],
                 members: Sequence[tuple[LeafIndex, LeafNode]], /) -> None: ...


class CredentialValidator(Protocol):
    """RFC 9420 §5.3.1: the application's authentication service. Returns whether
    `credential` is acceptable for `signature_key`."""

    def __call__(self, credential: Credential, signature_key: bytes, /) -> bool: ...


def accept_basic_credentials(credential: Credential, signature_key: bytes) -> bool:
    """The default: basic credentials are accepted as presented (RFC 9420 §5.3: "the
    application ... MUST verify" the binding; with no authentication service this
    library can only accept basic ones). X.509 and unknown types are refused."""
    return isinstance(credential, BasicCredential)


def same_basic_identity(old: Credential, new: Credential) -> bool:
    """The default `credential_successor`: a basic credential may replace one with the
    same identity (the application's rule for "the same client", §12.2 resync)."""
    return (isinstance(old, BasicCredential) and isinstance(new, BasicCredential)
            and old.identity == new.identity)


@dataclass(frozen=True)
class Identity:
    """A client's credential and signature key pair (RFC 9420 §5.3)."""

    credential: Credential
    signature_private_key: bytes
    signature_public_key: bytes

    @classmethod
    def basic(cls, name: bytes, signature_key_pair: tuple[bytes, bytes]) -> Identity:
        sk, pk = signature_key_pair
        return cls(BasicCredential(name), sk, pk)


def default_capabilities(
    cipher_suite: int,
    extensions: tuple[int, ...] = (),
    proposals: tuple[int, ...] = (),
) -> Capabilities:
    """Capabilities listing what this library supports (§7.2: non-default types only)."""
    return Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(cipher_suite,),
        extensions=extensions,
        proposals=proposals,
        credentials=(CredentialType.BASIC,),
    )


MAX_UINT64 = (1 << 64) - 1
DEFAULT_LIFETIME = Lifetime(0, MAX_UINT64)


@dataclass(frozen=True)
class GroupConfig:
    """Policies of one client (RFC 9420 leaves these to the application)."""

    rng: RandomSource = system_random
    clock: Callable[[], int] = field(default=lambda: int(time.time()))
    credential_validator: CredentialValidator = accept_basic_credentials
    # §12.2: whether `new` may replace `old` (an external resync commit's leaf)
    credential_successor: Callable[[Credential, Credential], bool] = same_basic_identity
    # §12.4.3.1: "Verify that the group_id is unique among the groups that the client
    # is currently participating in": the application answers whether it is in use
    group_id_in_use: Callable[[bytes], bool] = field(default=lambda group_id: False)
    # external PSKs known to this client: psk_id -> psk (§8.4)
    external_psks: Mapping[bytes, bytes] = field(default_factory=dict)
    # handshake messages (proposals, commits) as PrivateMessage instead of PublicMessage
    encrypt_handshake: bool = False
    padding: int = 0
    # secret tree (§9.2)
    max_forward_distance: int = 1000
    out_of_order_tolerance: int = 5
    # how many past epochs' resumption PSKs to keep (§8.6)
    resumption_psk_history: int = 8
    # "Applications MUST define a maximum total lifetime" (§7.2); None: no limit
    max_leaf_lifetime: int | None = None
    # RECOMMENDED lifetime check for received leaf nodes (§7.3)
    check_received_lifetimes: bool = True
    # extension types this client understands in GroupContext/leaves (non-default)
    supported_extensions: tuple[int, ...] = ()
    # extra DeriveSecret(epoch_secret, label) outputs to keep per epoch (extensions
    # that add epoch secrets, e.g. b"application_export"); EpochKeys.additional
    additional_epoch_secrets: tuple[bytes, ...] = ()
    # non-default proposal types this client supports, and how the engine handles them
    proposal_types: Mapping[int, ProposalTypeRule] = field(default_factory=dict)
    message_validator: MessageValidator | None = None
    proposal_list_validator: ProposalListValidator | None = None
    leaf_extensions: Extensions = ()
