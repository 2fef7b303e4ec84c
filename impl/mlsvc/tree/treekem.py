"""TreeKEM: creating, merging and decrypting UpdatePaths (RFC 9420 §7.4-§7.6,
§7.9), and the joiner's use of a Welcome path secret (§12.4.3.1).

Theory of operation
-------------------
A committer at leaf L with filtered direct path P_0..P_{k-1} (§4.1.2) picks
path_secret[0] and derives path_secret[j+1] = DeriveSecret(path_secret[j], "path");
node j gets the key pair DeriveKeyPair(DeriveSecret(path_secret[j], "node")) (§7.4),
and commit_secret = path_secret[k] (§12.4.2: "the value path_secret[n+1] derived from
the last path secret"; for an empty filtered direct path this is path_secret[0]).

Both sides then *merge* the path into the provisional tree (§7.5): blank L's direct
path, set each P_j to (node_pub[j], parent_hash, no unmerged leaves), where the
parent hashes are computed from the top of the path down (§7.9):
parent_hash(P_j) = Hash(ParentHashInput(node_pub[j], parent_hash(P_{j+1}) or "" for
the last node, tree_hash(S_j))) with S_j the copath child of P_j, and the leaf
carries parent_hash(P_0). The copath subtrees S_j are untouched by the merge, so
their cached tree hashes are the "original sibling tree hashes".

path_secret[j] is encrypted (EncryptWithLabel "UpdatePathNode", context = the
serialized provisional GroupContext whose tree_hash covers the merged tree, §12.4.2)
to every node of resolution(S_j), except the leaves added by the same commit
(§7.6). A receiver at leaf R decrypts at the P_j whose copath child holds R, with
the private key of the resolution node it holds (its leaf, or a parent of its direct
path), and derives the rest.

Check IDs (ValidationError):
  TREEKEM-PATH-LEN           §7.6 one UpdatePathNode per filtered-direct-path node
  TREEKEM-CIPHERTEXT-COUNT   §7.6 one ciphertext per resolution node (minus new leaves)
  TREEKEM-LEAF-SOURCE        §12.4.2 the UpdatePath leaf has leaf_node_source commit
  TREEKEM-LEAF-SIGNATURE     §7.3 the new leaf's signature verifies (with group_id)
  TREEKEM-PARENT-HASH        §7.9.2 the leaf's parent_hash matches the merged path
  TREEKEM-PATH-SECRET-LEN    §7.4 a decrypted path secret is KDF.Nh bytes
  TREEKEM-PUBKEY-MISMATCH    §7.5 step 6 derived public keys equal the UpdatePath's
  TREEKEM-KEY-REUSE          §12.4.2 no UpdatePath key already in the tree
  TREEKEM-WELCOME-PATH       §12.4.3.1 a Welcome path secret matches the tree's keys
  TREEKEM-PRIVATE-STATE      private keys correspond to the tree's public keys
Decryption failures raise CryptoError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from mlsvc.crypto.hpke import RandomSource
from mlsvc.crypto.labels import decrypt_with_label, derive_secret, encrypt_with_label
from mlsvc.crypto.suites import CipherSuite
from mlsvc.errors import ParameterError, StateError, ValidationError
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.commit import HPKECiphertext, UpdatePath, UpdatePathNode
from mlsvc.messages.leaf_node import LeafNode, ParentNode
from mlsvc.tree.hashes import compute_parent_hash
from mlsvc.tree.math import common_ancestor, is_in_subtree
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex, NodeIndex

UPDATE_PATH_NODE_LABEL = b"UpdatePathNode"  # RFC 9420 §7.6, §17.7 (EncryptWithLabel)

ContextFor = Callable[[bytes], bytes]
"""tree hash of the merged provisional tree -> serialized provisional GroupContext."""


# ---------------------------------------------------------------------- §7.4


def next_path_secret(cs: CipherSuite, path_secret: bytes) -> bytes:
    """path_secret[n] = DeriveSecret(path_secret[n-1], "path") (§7.4)."""
    return derive_secret(cs, path_secret, b"path")


def derive_node_key_pair(cs: CipherSuite, path_secret: bytes) -> tuple[bytes, bytes]:
    """node_secret = DeriveSecret(path_secret, "node");
    (node_priv, node_pub) = KEM.DeriveKeyPair(node_secret) (§7.4)."""
    return cs.kem.derive_key_pair(derive_secret(cs, path_secret, b"node"))


def path_secrets_along(cs: CipherSuite, first: bytes, count: int) -> tuple[list[bytes], bytes]:
    """(path_secret[0..count-1], path_secret[count]) starting from `first` (§7.4)."""
    secrets: list[bytes] = []
    s = first
    for _ in range(count):
        secrets.append(s)
        s = next_path_secret(cs, s)
    return secrets, s


# ---------------------------------------------------------------------- private state


@dataclass
class TreePrivateKeys:
    """What a member knows privately of the tree: its leaf and the private keys of
    parent nodes on its direct path (node index -> HPKE private key)."""

    leaf_index: LeafIndex
    leaf_private_key: bytes
    path_keys: dict[NodeIndex, bytes] = field(default_factory=dict)

    def copy(self) -> TreePrivateKeys:
        return TreePrivateKeys(self.leaf_index, self.leaf_private_key, dict(self.path_keys))

    def key_for(self, x: NodeIndex) -> bytes | None:
        """The private key this member holds for node x, if any."""
        if x == 2 * self.leaf_index:
            return self.leaf_private_key
        return self.path_keys.get(x)

    def pruned(self, tree: RatchetTree) -> TreePrivateKeys:
        """A copy without keys of nodes that are blank or off this member's direct
        path (stale after Update/Remove blanked them, §7.5 deletion)."""
        path = set(tree.direct_path(self.leaf_index))
        keep = {
            x: k for x, k in self.path_keys.items() if x in path and tree.node(x) is not None
        }
        return TreePrivateKeys(self.leaf_index, self.leaf_private_key, keep)

    def check_consistent(self, cs: CipherSuite, tree: RatchetTree) -> None:
        """Every key held is for a non-blank node of `tree` whose public key is the
        one of the private key (TREEKEM-PRIVATE-STATE otherwise)."""
        for x, priv in [(NodeIndex(2 * self.leaf_index), self.leaf_private_key),
                        *self.path_keys.items()]:
            if not 0 <= x < tree.node_width:
                raise ValidationError("TREEKEM-PRIVATE-STATE", f"key for node {x} outside tree")
            node = tree.node(x)
            if node is None:
                raise ValidationError("TREEKEM-PRIVATE-STATE", f"key for blank node {x}")
            if cs.kem.public_key(priv) != node.encryption_key:
                raise ValidationError(
                    "TREEKEM-PRIVATE-STATE", f"private key for node {x} does not match the tree"
                )


# ---------------------------------------------------------------------- merging (§7.5)


def _copath_children(tree: RatchetTree, sender: LeafIndex, fdp: list[NodeIndex]) -> list[NodeIndex]:
    return [tree.copath_child(p, sender) for p in fdp]


def _set_path_nodes(
    cs: CipherSuite,
    tree: RatchetTree,
    fdp: list[NodeIndex],
    copath: list[NodeIndex],
    public_keys: list[bytes],
) -> bytes:
    """Set P_j := ParentNode(public_keys[j], parent_hash, []) from the top down
    (§7.5, §7.9) and return the parent hash the sender's leaf must carry."""
    above = b""  # the last node of the filtered direct path has parent_hash "" (§7.9)
    for p, s, pub in zip(reversed(fdp), reversed(copath), reversed(public_keys), strict=True):
        tree.set_parent(p, ParentNode(pub, above, ()))
        above = compute_parent_hash(cs, pub, above, tree.node_tree_hash(s))
    return above


def merge_update_path(
    cs: CipherSuite, tree: RatchetTree, sender: LeafIndex, update_path: UpdatePath
) -> list[NodeIndex]:
    """Merge an UpdatePath into the provisional tree (§7.5): blank the sender's
    direct path, set its filtered direct path from the UpdatePath, verify the leaf's
    parent_hash (§7.9.2) and set the leaf. Returns the filtered direct path.
    On error `tree` may be partly changed: callers work on a copy."""
    fdp = tree.filtered_direct_path(sender)
    if len(update_path.nodes) != len(fdp):
        raise ValidationError(
            "TREEKEM-PATH-LEN",
            f"UpdatePath has {len(update_path.nodes)} nodes, filtered direct path {len(fdp)}",
        )
    leaf = update_path.leaf_node
    if leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise ValidationError("TREEKEM-LEAF-SOURCE", "UpdatePath leaf source is not commit")
    copath = _copath_children(tree, sender, fdp)
    tree.blank_direct_path(sender)
    expected = _set_path_nodes(
        cs, tree, fdp, copath, [n.encryption_key for n in update_path.nodes]
    )
    if leaf.parent_hash != expected:
        raise ValidationError(
            "TREEKEM-PARENT-HASH", "UpdatePath leaf parent_hash does not match its path"
        )
    tree.set_leaf(sender, leaf)
    return fdp


def check_path_keys_unused(tree: RatchetTree, update_path: UpdatePath) -> None:
    """§12.4.2: none of the public keys of the UpdatePath appears in any node of the
    new (provisional, before merging) ratchet tree. O(path length)."""
    keys = [update_path.leaf_node.encryption_key, *(n.encryption_key for n in update_path.nodes)]
    if len(set(keys)) != len(keys):
        raise ValidationError("TREEKEM-KEY-REUSE", "UpdatePath repeats a public key")
    for key in keys:
        if tree.nodes_with_encryption_key(key):
            raise ValidationError("TREEKEM-KEY-REUSE", "UpdatePath key already in the tree")


def _resolutions(
    tree: RatchetTree, copath: list[NodeIndex], excluded: Collection[LeafIndex]
) -> list[list[NodeIndex]]:
    """resolution(S_j) minus the leaves added by this commit (§7.6, §12.4.2)."""
    skip = {NodeIndex(2 * i) for i in excluded}
    return [[r for r in tree.resolution(s) if r not in skip] for s in copath]


# ---------------------------------------------------------------------- creating (§7.5)


@dataclass(frozen=True)
class UpdatePathResult:
    update_path: UpdatePath
    commit_secret: bytes
    private_keys: TreePrivateKeys
    """The committer's new private state (leaf key and keys of its filtered direct path)."""
    path_secrets: dict[NodeIndex, bytes]
    """path secret per filtered-direct-path node (for Welcome GroupSecrets.path_secret)."""

    def path_secret_for_joiner(self, joiner: LeafIndex) -> bytes:
        """The path secret of the lowest common ancestor of the committer and the
        joiner (§12.4.2, for GroupSecrets.path_secret)."""
        sender = self.private_keys.leaf_index
        lca = common_ancestor(NodeIndex(2 * sender), NodeIndex(2 * joiner))
        try:
            return self.path_secrets[lca]
        except KeyError:
            raise ParameterError(f"node {lca} is not on the committer's filtered path") from None


def create_update_path(
    cs: CipherSuite,
    tree: RatchetTree,
    sender: LeafIndex,
    new_leaf: LeafNode,
    leaf_private_key: bytes,
    signature_private_key: bytes,
    group_id: bytes,
    context_for: ContextFor,
    excluded: Collection[LeafIndex],
    path_secret: bytes,
    rng: RandomSource,
) -> UpdatePathResult:
    """Update the sender's direct path (§7.4, §7.5) in `tree` (mutated: the
    provisional tree after the commit's proposals) and encrypt the path secrets
    (§7.6). `new_leaf` (source commit, its encryption_key set, any parent_hash) gets
    the computed parent_hash and is signed with (group_id, sender) (§7.2)."""
    if new_leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise ParameterError("the committer's new leaf must have leaf_node_source commit")
    if len(path_secret) != cs.nh:
        raise ParameterError(f"path secret must be {cs.nh} bytes")
    if tree.leaf(sender) is None:
        raise ParameterError(f"sender leaf {sender} is blank")
    fdp = tree.filtered_direct_path(sender)
    copath = _copath_children(tree, sender, fdp)
    secrets, commit_secret = path_secrets_along(cs, path_secret, len(fdp))
    pairs = [derive_node_key_pair(cs, s) for s in secrets]

    tree.blank_direct_path(sender)
    leaf_parent_hash = _set_path_nodes(cs, tree, fdp, copath, [pub for _, pub in pairs])
    leaf = dataclasses.replace(new_leaf, parent_hash=leaf_parent_hash, signature=b"")
    leaf = leaf.signed(cs, signature_private_key, group_id, sender)
    tree.set_leaf(sender, leaf)

    context = context_for(tree.tree_hash())
    nodes: list[UpdatePathNode] = []
    for secret, (_, pub), res in zip(
        secrets, pairs, _resolutions(tree, copath, excluded), strict=True
    ):
        cts: list[HPKECiphertext] = []
        for r in res:
            target = tree.node(r)
            assert target is not None
            kem_output, ct = encrypt_with_label(
                cs, target.encryption_key, UPDATE_PATH_NODE_LABEL, context, secret, rng
            )
            cts.append(HPKECiphertext(kem_output, ct))
        nodes.append(UpdatePathNode(pub, tuple(cts)))

    keys = TreePrivateKeys(sender, leaf_private_key, {
        p: priv for p, (priv, _) in zip(fdp, pairs, strict=True)
    })
    return UpdatePathResult(
        UpdatePath(leaf, tuple(nodes)),
        commit_secret,
        keys,
        dict(zip(fdp, secrets, strict=True)),
    )


# ---------------------------------------------------------------------- processing (§7.5)


@dataclass(frozen=True)
class ProcessedUpdatePath:
    """The receiver's result: commit secret, new private state, and which path
    secret it decrypted at which node (what the treekem vectors check)."""

    commit_secret: bytes
    private_keys: TreePrivateKeys
    decrypted_node: NodeIndex
    path_secret: bytes


def process_update_path_detailed(
    cs: CipherSuite,
    tree: RatchetTree,
    sender: LeafIndex,
    update_path: UpdatePath,
    my_keys: TreePrivateKeys,
    context_for: ContextFor,
    excluded: Collection[LeafIndex],
    *,
    group_id: bytes | None = None,
) -> ProcessedUpdatePath:
    """`process_update_path` that also reports the decrypted path secret."""
    me = my_keys.leaf_index
    if me == sender:
        raise ParameterError("a committer does not process its own UpdatePath")
    if tree.leaf(me) is None:
        raise ParameterError(f"receiver leaf {me} is blank or outside the tree")
    if not 0 <= sender < tree.leaf_count:
        raise ParameterError(f"sender leaf {sender} is outside the tree")
    if me in excluded:
        raise ParameterError("a member added by this commit joins by Welcome instead")
    fdp = tree.filtered_direct_path(sender)
    if len(update_path.nodes) != len(fdp):
        raise ValidationError(
            "TREEKEM-PATH-LEN",
            f"UpdatePath has {len(update_path.nodes)} nodes, filtered direct path {len(fdp)}",
        )
    copath = _copath_children(tree, sender, fdp)
    resolutions = _resolutions(tree, copath, excluded)
    for k, (upn, res) in enumerate(zip(update_path.nodes, resolutions, strict=True)):
        if len(upn.encrypted_path_secret) != len(res):
            raise ValidationError(
                "TREEKEM-CIPHERTEXT-COUNT",
                f"UpdatePath node {k} has {len(upn.encrypted_path_secret)} ciphertexts, "
                f"resolution has {len(res)} nodes",
            )
    # §7.5 "Identify a node in the filtered direct path for which the recipient is in
    # the subtree of the non-updated child", then a resolution node we hold a key for.
    my_node = NodeIndex(2 * me)
    found = next((k for k, s in enumerate(copath) if is_in_subtree(s, my_node)), None)
    if found is None:
        raise StateError(f"leaf {me} is under no copath node of leaf {sender}")
    j = found
    choice = next(
        ((pos, key) for pos, r in enumerate(resolutions[j])
         if (key := my_keys.key_for(r)) is not None),
        None,
    )
    if choice is None:
        raise StateError(f"no private key for any node of resolution({copath[j]})")
    pos, private_key = choice

    leaf = update_path.leaf_node
    if leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise ValidationError("TREEKEM-LEAF-SOURCE", "UpdatePath leaf source is not commit")
    if group_id is not None and not leaf.verify(cs, group_id, sender):
        raise ValidationError("TREEKEM-LEAF-SIGNATURE", "UpdatePath leaf signature invalid")
    merge_update_path(cs, tree, sender, update_path)

    context = context_for(tree.tree_hash())
    ct = update_path.nodes[j].encrypted_path_secret[pos]
    secret = decrypt_with_label(
        cs, private_key, UPDATE_PATH_NODE_LABEL, context, ct.kem_output, ct.ciphertext
    )
    if len(secret) != cs.nh:
        raise ValidationError("TREEKEM-PATH-SECRET-LEN", "decrypted path secret is not Nh bytes")
    secrets, commit_secret = path_secrets_along(cs, secret, len(fdp) - j)
    new_keys = my_keys.copy()
    for p in tree.direct_path(sender):  # every sender-path key is replaced or stale
        new_keys.path_keys.pop(p, None)
    for k, s in enumerate(secrets, start=j):
        priv, pub = derive_node_key_pair(cs, s)
        if pub != update_path.nodes[k].encryption_key:
            raise ValidationError(
                "TREEKEM-PUBKEY-MISMATCH", f"derived public key differs at node {fdp[k]}"
            )
        new_keys.path_keys[fdp[k]] = priv
    return ProcessedUpdatePath(commit_secret, new_keys.pruned(tree), fdp[j], secret)


def process_update_path(
    cs: CipherSuite,
    tree: RatchetTree,
    sender: LeafIndex,
    update_path: UpdatePath,
    my_keys: TreePrivateKeys,
    context_for: ContextFor,
    excluded: Collection[LeafIndex],
    *,
    group_id: bytes | None = None,
) -> tuple[bytes, TreePrivateKeys]:
    """Validate an UpdatePath, merge it into `tree` (mutated: the provisional tree
    after the commit's proposals), decrypt and derive (§7.5). Returns
    (commit_secret, my new private keys); the keys are pruned to the non-blank nodes
    of my direct path (§7.5: outdated key pairs are deleted). With `group_id`, the
    leaf's signature is verified too (§7.3; otherwise that is left to leaf node
    validation). `my_keys.leaf_private_key` must already be the key of my current
    leaf (after my own Update proposal, if committed). For an external commit
    (§12.4.2), first `tree.add_leaf(update_path.leaf_node)` to place the joiner.
    Not checked here: the key freshness rules of §12.4.2 (`check_path_keys_unused`).
    On error `tree` may be partly changed: callers work on a copy."""
    out = process_update_path_detailed(
        cs, tree, sender, update_path, my_keys, context_for, excluded, group_id=group_id
    )
    return out.commit_secret, out.private_keys


# ---------------------------------------------------------------------- joining (§12.4.3.1)


def apply_path_secret(
    cs: CipherSuite,
    tree: RatchetTree,
    my_keys: TreePrivateKeys,
    node: NodeIndex,
    path_secret: bytes,
) -> TreePrivateKeys:
    """A joiner's GroupSecrets.path_secret (§12.4.3.1): set the key of `node` (the
    lowest common ancestor of the joiner and the committer) and of every non-blank
    node above it (the rest of the committer's filtered direct path: the nodes it
    skipped are blank), each derived from the one below by DeriveSecret(., "path").
    Every derived public key MUST match the tree (TREEKEM-WELCOME-PATH)."""
    me = NodeIndex(2 * my_keys.leaf_index)
    if not is_in_subtree(node, me) or node == me:
        raise ParameterError(f"node {node} is not on the direct path of the joiner")
    if tree.node(node) is None:
        raise ValidationError("TREEKEM-WELCOME-PATH", f"path secret for blank node {node}")
    new_keys = my_keys.copy()
    s = path_secret
    for x in [node, *tree.ancestors(node)]:
        target = tree.node(x)
        if target is None:
            continue
        priv, pub = derive_node_key_pair(cs, s)
        if pub != target.encryption_key:
            raise ValidationError(
                "TREEKEM-WELCOME-PATH", f"path secret does not give node {x}'s public key"
            )
        new_keys.path_keys[x] = priv
        s = next_path_secret(cs, s)
    return new_keys.pruned(tree)


def apply_own_update_path(
    cs: CipherSuite, tree: RatchetTree, sender: LeafIndex, update_path: UpdatePath,
    path_secret: bytes, leaf_private_key: bytes,
) -> tuple[bytes, TreePrivateKeys]:
    """Merge an UpdatePath for a leaf whose first path secret and leaf key we already
    hold (virtual clients: a sibling emulator committed from the shared leaf), without
    decrypting anything: every node key is re-derived from the path secret (§7.4) and
    checked against the UpdatePath. Returns (commit_secret, the leaf's private keys).
    `tree` is the provisional tree; on error it may be partly changed."""
    if cs.kem.public_key(leaf_private_key) != update_path.leaf_node.encryption_key:
        raise ValidationError("TREEKEM-PUBKEY-MISMATCH",
                              "leaf private key does not match the UpdatePath's leaf")
    fdp = merge_update_path(cs, tree, sender, update_path)
    secrets, commit_secret = path_secrets_along(cs, path_secret, len(fdp))
    path_keys: dict[NodeIndex, bytes] = {}
    for node, secret, upn in zip(fdp, secrets, update_path.nodes, strict=True):
        priv, pub = derive_node_key_pair(cs, secret)
        if pub != upn.encryption_key:
            raise ValidationError("TREEKEM-PUBKEY-MISMATCH",
                                  f"the path secret does not derive node {node}'s key")
        path_keys[node] = priv
    return commit_secret, TreePrivateKeys(sender, leaf_private_key, path_keys)
