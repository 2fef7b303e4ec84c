"""Plugging the extensions into the group engine through its hooks (GroupConfig), so
RFC 9420 code stays unaware of them:

- SafeAAD (§4.9): a `message_validator` that, when the GroupContext switches SafeAAD
  on, rejects a message whose authenticated_data is not a valid SafeAAD before the
  group unprotects it (state unchanged);
- AppDataUpdate (§4.7): a `ProposalTypeRule` (no path required, allowed in external
  commits) that applies the updates to the app_data_dictionary with the application's
  per-component handlers;
- the checks on proposals that change the GroupContext: a `proposal_list_validator`;
- the Safe Exporter's root (§4.4): `additional_epoch_secrets=("application_export",)`,
  taken per epoch with `SafeExporter.from_group`.

`extension_config(...)` returns the GroupConfig keyword arguments; merge them into the
application's own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from mlsvc.ext.app_data_update import (
    UpdateHandler,
    apply_app_data_updates,
    register_app_data_update,
)
from mlsvc.ext.codepoints import APPLICATION_EXPORT_LABEL, DEFAULT_CODEPOINTS, CodePoints
from mlsvc.ext.safe_aad import check_authenticated_data, check_proposed_extensions
from mlsvc.group.config import ProposalTypeRule
from mlsvc.messages.extensions import Extensions
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.leaf_node import LeafNode
from mlsvc.messages.proposals import Proposal
from mlsvc.types import LeafIndex


def extension_config(
    handlers: Mapping[int, UpdateHandler] | None = None,
    known_components: Collection[int] = (),
    cp: CodePoints = DEFAULT_CODEPOINTS,
    *,
    allow_tail: bool = True,
) -> dict[str, Any]:
    """GroupConfig keyword arguments enabling the extensions. `handlers` gives the
    update logic of each component AppDataUpdate may change; `known_components` the
    components the application understands (handlers' components included)."""
    register_app_data_update(cp)
    handlers = dict(handlers or {})
    known = set(known_components) | set(handlers)

    def message_validator(context: GroupContext, authenticated_data: bytes) -> None:
        check_authenticated_data(context.extensions, authenticated_data, cp,
                                 allow_tail=allow_tail)

    def apply(extensions: Extensions, proposals: Sequence[Proposal]) -> Extensions:
        return apply_app_data_updates(extensions, proposals, handlers, known, cp)

    def proposal_list_validator(old: Extensions, new: Extensions,
                                proposals: Sequence[Proposal],
                                members: Sequence[tuple[LeafIndex, LeafNode]]) -> None:
        check_proposed_extensions(old, members, proposals, known, cp)

    return {
        "message_validator": message_validator,
        "proposal_list_validator": proposal_list_validator,
        "proposal_types": {cp.app_data_update: ProposalTypeRule(
            path_required=False, external_commit_allowed=True, apply=apply)},
        "supported_extensions": (cp.app_data_dictionary,),
        "additional_epoch_secrets": (APPLICATION_EXPORT_LABEL,),
    }
