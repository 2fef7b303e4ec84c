"""What the application supplies to a group: its identity and keys, its policies
(credential validation, PSKs, clock, wire-format choices) and its randomness.

Sans-IO: no global clock or RNG is read here; `GroupConfig` carries them as callables
so tests and emulators are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.suites import system_random
from mlsvc.messages.codepoints import CredentialType, ProtocolVersion
from mlsvc.messages.credentials import BasicCredential, Credential
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.leaf_node import Capabilities, Lifetime


class CredentialValidator(Protocol):
    """RFC 9420 §5.3.1: the application's authentication service. Returns whether
    `credential` is acceptable for `signature_key`."""

    def __call__(self, credential: Credential, signature_key: bytes, /) -> bool: ...


def accept_basic_credentials(credential: Credential, signature_key: bytes) -> bool:
    """The default: basic credentials are accepted as presented (RFC 9420 §5.3: "the
    application ... MUST verify" the binding; with no authentication service this
    library can only accept basic ones). X.509 and unknown types are refused."""
    return isinstance(credential, BasicCredential)


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
    leaf_extensions: Extensions = ()
