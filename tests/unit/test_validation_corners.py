"""Corners of group/validation.py that the named-check tests do not reach: the default
types in required_capabilities (§7.2, §11.1), the "Path Required" rule over a mixed
proposal list (§12.4, Table 7 and an application's ProposalTypeRule), and a
GroupContextExtensions list whose default types come first (§12.1.7)."""

from __future__ import annotations

import pytest

from mlsvc.errors import ValidationError
from mlsvc.group.config import GroupConfig, ProposalTypeRule
from mlsvc.group.validation import (
    missing_capabilities,
    path_required,
    validate_group_context_extensions,
)
from mlsvc.messages.codepoints import ProposalType
from mlsvc.messages.extensions import Extension, RequiredCapabilities
from mlsvc.messages.leaf_node import Capabilities
from tests.unit.validation_helpers import SUITE, make_group

CUSTOM = 0xF0A8


def caps(extensions: tuple[int, ...] = (), proposals: tuple[int, ...] = ()) -> Capabilities:
    return Capabilities((1,), (SUITE,), extensions, proposals, (1,))


def test_missing_capabilities_ignores_default_types_only() -> None:
    required = RequiredCapabilities((0x0003, 0xFF00), (0x0001, CUSTOM), (1, 2))
    assert missing_capabilities(required, caps()) == [0xFF00, CUSTOM, 2]
    assert missing_capabilities(required, caps((0xFF00,), (CUSTOM,))) == [2]


def test_path_required_over_mixed_lists() -> None:
    no_path = GroupConfig(proposal_types={CUSTOM: ProposalTypeRule(path_required=False)})
    with_path = GroupConfig(proposal_types={CUSTOM: ProposalTypeRule(path_required=True)})
    assert path_required([])
    assert not path_required([ProposalType.ADD, ProposalType.PSK])
    assert path_required([ProposalType.ADD, ProposalType.REMOVE])
    # a type after a no-path default type still counts
    assert path_required([ProposalType.ADD, CUSTOM], with_path)
    assert not path_required([ProposalType.ADD, CUSTOM], no_path)
    assert not path_required([CUSTOM], no_path)
    assert path_required([CUSTOM])  # no rule: required (§17.4 default)


def test_group_context_extensions_after_a_default_type_are_checked() -> None:
    a, _b, _c = make_group()
    tree = a.tree
    ok = (Extension(0x0001, b"app"),)
    validate_group_context_extensions(ok, tree, ())
    unsupported = (Extension(0x0001, b"app"), Extension(0xFF00, b""))
    with pytest.raises(ValidationError) as err:
        validate_group_context_extensions(unsupported, tree, (0xFF00,))
    assert err.value.check_id == "PR-GCE-SUPPORTED"
    with pytest.raises(ValidationError):
        validate_group_context_extensions(unsupported, tree, ())
