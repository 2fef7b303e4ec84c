"""Creating KeyPackages (RFC 9420 §10) with every key injectable.

A virtual client (draft-ietf-mls-virtual-clients-00 §5.2) derives the KeyPackage's
init key, the leaf's encryption key and its signature key from the emulation group;
a normal client draws them at random. Both go through `create_key_package`: each
key pair is an optional argument, drawn from `config.rng` when absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsvc.crypto.suites import CipherSuite
from mlsvc.group.config import DEFAULT_LIFETIME, GroupConfig, Identity, default_capabilities
from mlsvc.messages.codepoints import LeafNodeSource, ProtocolVersion
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime


@dataclass(frozen=True)
class KeyPackageBundle:
    """A KeyPackage with the private keys its owner needs to join (§10):
    init_private_key (Welcome decryption), encryption_private_key (the leaf),
    and the identity whose signature key signed it."""

    key_package: KeyPackage
    init_private_key: bytes
    encryption_private_key: bytes
    identity: Identity

    def ref(self, cs: CipherSuite) -> bytes:
        return self.key_package.ref(cs)


def key_package_leaf(
    cs: CipherSuite,
    identity: Identity,
    config: GroupConfig,
    encryption_key: bytes,
    capabilities: Capabilities | None,
    lifetime: Lifetime,
    leaf_extensions: Extensions,
) -> LeafNode:
    """A signed LeafNode of source key_package (§7.2): a KeyPackage's leaf, and the
    creator's leaf of a new group (§11). Capabilities default to what this client
    supports (the suite, GroupConfig's extensions and proposal types)."""
    caps = capabilities or default_capabilities(cs.id, config.supported_extensions,
                                                tuple(config.proposal_types))
    return LeafNode(
        encryption_key, identity.signature_public_key, identity.credential, caps,
        LeafNodeSource.KEY_PACKAGE, lifetime, None, tuple(leaf_extensions),
    ).signed(cs, identity.signature_private_key)


def create_key_package(
    cs: CipherSuite,
    identity: Identity,
    config: GroupConfig | None = None,
    *,
    init_key_pair: tuple[bytes, bytes] | None = None,
    encryption_key_pair: tuple[bytes, bytes] | None = None,
    capabilities: Capabilities | None = None,
    lifetime: Lifetime = DEFAULT_LIFETIME,
    leaf_extensions: Extensions = (),
    extensions: Extensions = (),
) -> KeyPackageBundle:
    """A signed KeyPackage (§10) whose LeafNode has source key_package (§7.2).

    `init_key_pair` and `encryption_key_pair` are (private, public) HPKE key pairs;
    absent ones are DeriveKeyPair(rng(Nsk)) (RFC 9180 GenerateKeyPair)."""
    config = config or GroupConfig()
    if init_key_pair is None:
        init_key_pair = cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
    if encryption_key_pair is None:
        encryption_key_pair = cs.kem.derive_key_pair(config.rng(cs.kem.nsk))
    leaf = key_package_leaf(cs, identity, config, encryption_key_pair[1], capabilities,
                            lifetime, leaf_extensions)
    kp = KeyPackage(
        ProtocolVersion.MLS10, cs.id, init_key_pair[1], leaf, tuple(extensions)
    ).signed(cs, identity.signature_private_key)
    return KeyPackageBundle(kp, init_key_pair[0], encryption_key_pair[0], identity)
