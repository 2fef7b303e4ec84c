"""Runner for tree-operations.json (RFC 9420 §12.1.1-3, §7.7, §7.8; upstream README
"Tree Operations").

The tree hash of `tree_before`; then the Add, Update or Remove `proposal` from
`proposal_sender` is applied, and the serialized result and its tree hash are
compared with `tree_after` and `tree_hash_after`.
"""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.proposals import Add, Remove, Update, decode_proposal
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_nodes(
        cs, RatchetTreeExtension.decode(h(case["tree_before"])).nodes
    )
    expect("tree_hash_before", tree.tree_hash(), h(case["tree_hash_before"]))
    proposal = decode_proposal(h(case["proposal"]))
    sender = LeafIndex(case["proposal_sender"])
    if isinstance(proposal, Add):
        tree.add_leaf(proposal.key_package.leaf_node)
    elif isinstance(proposal, Update):
        tree.update_leaf(sender, proposal.leaf_node)
    elif isinstance(proposal, Remove):
        tree.remove_leaf(proposal.removed)
    else:
        raise Mismatch(f"unexpected proposal type {proposal.proposal_type}")
    expect("tree_after", RatchetTreeExtension(tree.to_nodes()).encode(), h(case["tree_after"]))
    expect("tree_hash_after", tree.tree_hash(), h(case["tree_hash_after"]))


def run(cases: list[Case]) -> FileResult:
    return run_cases("tree-operations", cases, _check)
