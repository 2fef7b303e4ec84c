"""Runner for treekem.json (RFC 9420 §7.4-§7.9, §12.4.2; upstream README "TreeKEM").

Per case: each `leaves_private` entry becomes a private state (leaf key, and the key
pair of each listed node derived from its path secret) that must match the tree's
public keys. The provisional GroupContext is (cipher_suite, group_id, epoch,
tree_hash of the tree after merging the path, confirmed_transcript_hash, no
extensions). For each `update_paths` entry from sender i, on fresh copies of the
tree: every other member j processes the path (which merges it, checking the leaf's
parent hash, §7.9.2), decrypts `path_secrets[j]` and gets `commit_secret`; the merged
tree hashes to `tree_hash_after`. Then i creates a new UpdatePath over the original
tree (new leaf key, same signature key) and every other member processes it to the
same commit secret. HPKE ephemerals come from a seeded deterministic source.
"""

from __future__ import annotations

import dataclasses

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.commit import UpdatePath
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.treekem import (
    ContextFor,
    TreePrivateKeys,
    create_update_path,
    derive_node_key_pair,
    process_update_path_detailed,
)
from mlsvc.types import LeafIndex, NodeIndex


def _private_states(
    cs: CipherSuite, tree: RatchetTree, case: Case
) -> dict[LeafIndex, TreePrivateKeys]:
    states: dict[LeafIndex, TreePrivateKeys] = {}
    for entry in case["leaves_private"]:
        keys = TreePrivateKeys(LeafIndex(entry["index"]), h(entry["encryption_priv"]), {})
        for ps in entry["path_secrets"]:
            keys.path_keys[NodeIndex(ps["node"])] = derive_node_key_pair(
                cs, h(ps["path_secret"])
            )[0]
        keys.check_consistent(cs, tree)
        states[keys.leaf_index] = keys
    return states


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    group_id = h(case["group_id"])
    tree = RatchetTree.from_nodes(cs, RatchetTreeExtension.decode(h(case["ratchet_tree"])).nodes)
    states = _private_states(cs, tree, case)
    members = [i for i, _ in tree.leaves()]
    expect("members with private state", sorted(states), members)

    def context_for(tree_hash: bytes) -> bytes:
        return GroupContext(
            cs.id, group_id, case["epoch"], tree_hash, h(case["confirmed_transcript_hash"]), ()
        ).encode()

    for n, entry in enumerate(case["update_paths"]):
        sender = LeafIndex(entry["sender"])
        path = UpdatePath.decode(h(entry["update_path"]))
        merged_hash: bytes | None = None
        for j in members:
            if j == sender:
                continue
            work = tree.copy()
            out = process_update_path_detailed(
                cs, work, sender, path, states[j], context_for, (), group_id=group_id
            )
            want = entry["path_secrets"][j]
            if want is None:
                raise Mismatch(f"path {n}: no path secret listed for member {j}")
            expect(f"path {n} leaf {j} path secret", out.path_secret, h(want))
            expect(f"path {n} leaf {j} commit secret", out.commit_secret, h(entry["commit_secret"]))
            out.private_keys.check_consistent(cs, work)
            merged_hash = work.tree_hash()
        if merged_hash is None:
            raise Mismatch(f"path {n}: no member processed it")
        expect(f"path {n} tree_hash_after", merged_hash, h(entry["tree_hash_after"]))
        _create_and_process(cs, tree, states, sender, group_id, context_for, case, n)


def _create_and_process(
    cs: CipherSuite,
    tree: RatchetTree,
    states: dict[LeafIndex, TreePrivateKeys],
    sender: LeafIndex,
    group_id: bytes,
    context_for: ContextFor,
    case: Case,
    n: int,
) -> None:
    rng = SeededRandom(group_id + sender.to_bytes(4, "big") + n.to_bytes(4, "big"))
    old = tree.leaf(sender)
    assert old is not None
    leaf_priv, leaf_pub = cs.kem.derive_key_pair(rng(cs.kem.nsk))
    new_leaf = dataclasses.replace(
        old, encryption_key=leaf_pub, leaf_node_source=LeafNodeSource.COMMIT, lifetime=None,
        parent_hash=b"", signature=b"",
    )
    sig_priv = next(
        h(e["signature_priv"]) for e in case["leaves_private"] if e["index"] == sender
    )
    work = tree.copy()
    result = create_update_path(
        cs, work, sender, new_leaf, leaf_priv, sig_priv, group_id, context_for, (),
        rng(cs.nh), rng,
    )
    result.private_keys.check_consistent(cs, work)
    if not work.verify_parent_hashes():
        raise Mismatch(f"new path {n}: merged tree is not parent-hash valid")
    for j, keys in states.items():
        if j == sender:
            continue
        other = tree.copy()
        out = process_update_path_detailed(
            cs, other, sender, result.update_path, keys, context_for, (), group_id=group_id
        )
        expect(f"new path {n} leaf {j} commit secret", out.commit_secret, result.commit_secret)
        expect(f"new path {n} leaf {j} tree hash", other.tree_hash(), work.tree_hash())


def run(cases: list[Case]) -> FileResult:
    return run_cases("treekem", cases, _check)
