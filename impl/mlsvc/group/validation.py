"""The group engine's validation rules: RFC 9420 §7.3 leaf nodes, §10.1 KeyPackages,
§12.1.7 GroupContextExtensions, §12.4 path requirements.

Every check has an ID in the one table `mlsvc.checks.CHECKS` (re-exported here);
code raises `ValidationError(check_id, detail)` through `fail`; docs/VALIDATION.md is
generated from the table (`python -m mlsvc.group.validation`), and tests check that
every ID raised anywhere is in the table and is made to fire by some test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mlsvc.checks import CHECKS, fail
from mlsvc.crypto.suites import CipherSuite
from mlsvc.group.config import GroupConfig
from mlsvc.messages.codepoints import LeafNodeSource, ProposalType, ProtocolVersion
from mlsvc.messages.extensions import Extensions, RequiredCapabilities, duplicate_types
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import Capabilities, LeafNode
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex

DEFAULT_PROPOSAL_TYPES = frozenset(range(0x0001, 0x0008))
DEFAULT_EXTENSION_TYPES = frozenset(range(0x0001, 0x0006))


def missing_capabilities(required: RequiredCapabilities, caps: Capabilities) -> list[int]:
    """The required extension, proposal and credential types (§11.1) that `caps` does
    not list; default types need no listing (§7.2)."""
    return (
        [e for e in required.extension_types
         if e not in caps.extensions and e not in DEFAULT_EXTENSION_TYPES]
        + [p for p in required.proposal_types
           if p not in caps.proposals and p not in DEFAULT_PROPOSAL_TYPES]
        + [c for c in required.credential_types if c not in caps.credentials]
    )


@dataclass(frozen=True)
class LeafContext:
    """Where a LeafNode appears (§7.3 `leaf_node_source` rules)."""

    source: LeafNodeSource
    group_id: bytes | None = None  # for update / commit sources (LeafNodeTBS)
    leaf_index: LeafIndex | None = None
    replaced: LeafNode | None = None  # the leaf an Update replaces


def validate_leaf_node(
    cs: CipherSuite,
    leaf: LeafNode,
    where: LeafContext,
    group_extensions: Extensions,
    tree: None,
    config: GroupConfig,
    *,
    check_lifetime: bool = True,
) -> None:
    """§7.3 leaf node validation (and the §7.2 content rules) of the leaf on its own.

    The §7.3 rules that compare the leaf with the other members (LN-CRED-TYPE-SUPPORTED
    in both directions, LN-UNIQUE-SIGNATURE-KEY, LN-UNIQUE-ENCRYPTION-KEY) have one
    home, mlsvc.group.proposals (`MemberIndex.check` for the leaves of a proposal list,
    `check_leaf_against_members` for a single Update or path leaf). `tree` is always
    None; the positional slot stays until the callers stop passing it."""
    if leaf.leaf_node_source != where.source:
        fail("LN-SOURCE", f"leaf_node_source {leaf.leaf_node_source!r}, expected "
                          f"{where.source!r}")
    if not config.credential_validator(leaf.credential, leaf.signature_key):
        fail("LN-CREDENTIAL", "the application rejected the credential")
    if not leaf.verify(cs, where.group_id, where.leaf_index):
        fail("LN-SIGNATURE", "LeafNode signature does not verify")
    caps = leaf.capabilities
    if leaf.credential.credential_type not in caps.credentials:
        fail("LN-OWN-CRED-IN-CAPS", f"credential type {leaf.credential.credential_type} not in "
                                    "capabilities")
    if any(p in DEFAULT_PROPOSAL_TYPES for p in caps.proposals) or any(
        e in DEFAULT_EXTENSION_TYPES for e in caps.extensions
    ):
        fail("LN-DEFAULT-IN-CAPS", "a default proposal or extension type is listed")
    for ext in leaf.extensions:
        if ext.extension_type not in DEFAULT_EXTENSION_TYPES and (
            ext.extension_type not in caps.extensions
        ):
            fail("LN-EXTENSIONS-SUPPORTED",
                 f"extension 0x{ext.extension_type:04x} not in capabilities")
    if duplicate_types(leaf.extensions):
        fail("PR-EXTENSIONS-UNIQUE", "LeafNode extensions repeat a type")
    required = RequiredCapabilities.find_in(group_extensions)
    if required is not None:
        missing = missing_capabilities(required, caps)
        if missing:
            fail("LN-REQUIRED-CAPS", f"required capabilities not supported: {missing}")
    if leaf.lifetime is not None:
        lt = leaf.lifetime
        if config.max_leaf_lifetime is not None and lt.not_after - lt.not_before > (
            config.max_leaf_lifetime
        ):
            fail("LN-MAX-LIFETIME", "lifetime longer than the application allows")
        if check_lifetime:
            now = config.clock()
            if not lt.not_before <= now <= lt.not_after:
                fail("LN-LIFETIME", f"now={now} outside [{lt.not_before}, {lt.not_after}]")
    if where.source == LeafNodeSource.UPDATE and where.replaced is not None and (
        where.replaced.encryption_key == leaf.encryption_key
    ):
        fail("LN-UPDATE-NEW-KEY", "an Update must change the encryption key")


def validate_key_package(
    cs: CipherSuite,
    kp: KeyPackage,
    group_extensions: Extensions,
    tree: None,
    config: GroupConfig,
) -> None:
    """§10.1 KeyPackage validation (its leaf on its own: see `validate_leaf_node`)."""
    if kp.cipher_suite != cs.id or kp.version != ProtocolVersion.MLS10:
        fail("KP-SUITE-VERSION", f"KeyPackage for suite {kp.cipher_suite} version {kp.version}")
    if not kp.verify(cs):
        fail("KP-SIGNATURE", "KeyPackage signature does not verify")
    if kp.init_key == kp.leaf_node.encryption_key:
        fail("KP-INIT-KEY-DISTINCT", "init_key equals the leaf's encryption_key")
    if duplicate_types(kp.extensions):
        fail("PR-EXTENSIONS-UNIQUE", "KeyPackage extensions repeat a type")
    validate_leaf_node(cs, kp.leaf_node, LeafContext(LeafNodeSource.KEY_PACKAGE),
                       group_extensions, tree, config)


def validate_group_context_extensions(
    extensions: Extensions, tree: RatchetTree, supported: Iterable[int]
) -> None:
    """§12.1.7: every member supports the new extensions and meets any
    required_capabilities in them."""
    if duplicate_types(extensions):
        fail("PR-EXTENSIONS-UNIQUE", "GroupContext extensions repeat a type")
    own = set(supported)
    for ext in extensions:
        t = ext.extension_type
        if t in DEFAULT_EXTENSION_TYPES:
            continue
        if t not in own:
            fail("PR-GCE-SUPPORTED", f"extension 0x{t:04x} not supported by this client")
        for i, leaf in tree.leaves():
            if t not in leaf.capabilities.extensions:
                fail("PR-GCE-SUPPORTED", f"member {i} does not support extension 0x{t:04x}")
    required = RequiredCapabilities.find_in(extensions)
    if required is None:
        return
    for i, leaf in tree.leaves():
        missing = missing_capabilities(required, leaf.capabilities)
        if missing:
            fail("PR-GCE-SUPPORTED", f"member {i} lacks required capabilities {missing}")


def path_required(proposal_types: Iterable[int], config: GroupConfig | None = None) -> bool:
    """§12.4: the path is required for an empty list, or if any proposal is of a type
    whose "Path Required" column (RFC 9420 Table 7, or the application's
    ProposalTypeRule for a non-default type) says so."""
    types = list(proposal_types)
    if not types:
        return True
    no_path = {ProposalType.ADD, ProposalType.PSK, ProposalType.REINIT}
    rules = config.proposal_types if config is not None else {}
    for t in types:
        if t in no_path:
            continue
        rule = rules.get(t)
        if rule is None or rule.path_required:
            return True
    return False


def render_markdown() -> str:
    """docs/VALIDATION.md, from the table."""
    lines: list[str] = [
        "# Validation checks",
        "",
        "Every MUST of RFC 9420 (and of the drafts) that the library enforces, as a named",
        "check. Generated from `mlsvc.checks.CHECKS` by `python -m mlsvc.group.validation`;",
        "`tests/unit/test_validation_table.py` checks that this file is current and that",
        "every ID is made to fire by at least one test.",
        "",
        "| ID | section (RFC 9420 unless named) | rule |",
        "|---|---|---|",
    ]
    for cid, (section, rule) in CHECKS.items():
        lines.append(f"| `{cid}` | {section} | {rule} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")


__all__ = ["CHECKS", "DEFAULT_EXTENSION_TYPES", "DEFAULT_PROPOSAL_TYPES", "LeafContext", "fail",
           "path_required", "render_markdown", "validate_group_context_extensions",
           "validate_key_package", "validate_leaf_node"]
