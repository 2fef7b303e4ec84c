"""Unit tests of TreeKEM (RFC 9420 §7.4-§7.6, §7.9, §12.4.2, §12.4.3.1).

`SimGroup` drives a small group through commits (Add/Update/Remove proposals, then
an UpdatePath) the way the group engine would: the committer creates the path on
the provisional tree, every other member processes it on its own copy, joiners
use the Welcome path secret. The property tests reuse it. Known answers (who gets
which ciphertext) come from the RFC's §7.5 example; the rest are round trips and
tampered inputs that must be refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from mlsvc.crypto.labels import decrypt_with_label, encrypt_with_label
from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import CryptoError, ParameterError, ValidationError
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.commit import HPKECiphertext, UpdatePath, UpdatePathNode
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.leaf_node import Capabilities, LeafNode, Lifetime, ParentNode
from mlsvc.tree.math import common_ancestor
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.tree.treekem import (
    TreePrivateKeys,
    UpdatePathResult,
    apply_path_secret,
    check_path_keys_unused,
    create_update_path,
    derive_node_key_pair,
    next_path_secret,
    process_update_path,
    process_update_path_detailed,
)
from mlsvc.types import LeafIndex, NodeIndex

L = LeafIndex
N = NodeIndex
GROUP_ID = b"treekem-test-group"


class SimGroup:
    """A group's public tree plus every member's private tree keys."""

    def __init__(self, cs: CipherSuite, seed: bytes) -> None:
        self.cs = cs
        self.rng = SeededRandom(seed)
        self.epoch = 0
        self.sig_keys: dict[LeafIndex, bytes] = {}
        self.keys: dict[LeafIndex, TreePrivateKeys] = {}
        self.counter = 0
        leaf, enc, sig = self.key_package_leaf()
        self.tree = RatchetTree.single(cs, leaf)
        self.keys[L(0)] = TreePrivateKeys(L(0), enc, {})
        self.sig_keys[L(0)] = sig

    # -- leaves
    def _fresh(self) -> tuple[bytes, bytes, bytes, bytes]:
        enc_priv, enc_pub = self.cs.kem.derive_key_pair(self.rng(self.cs.kem.nsk))
        sig_priv, sig_pub = self.cs.signature.derive_key_pair(self.rng(32))
        return enc_priv, enc_pub, sig_priv, sig_pub

    def key_package_leaf(self) -> tuple[LeafNode, bytes, bytes]:
        enc_priv, enc_pub, sig_priv, sig_pub = self._fresh()
        self.counter += 1
        leaf = LeafNode(
            enc_pub, sig_pub, BasicCredential(b"member-%d" % self.counter),
            Capabilities((1,), (self.cs.id,), (), (), (1,)), LeafNodeSource.KEY_PACKAGE,
            Lifetime(0, 2**64 - 1), None, (),
        ).signed(self.cs, sig_priv)
        return leaf, enc_priv, sig_priv

    def reissued_leaf(self, i: LeafIndex, source: LeafNodeSource) -> tuple[LeafNode, bytes]:
        """Leaf i with a fresh encryption key and the given source (unsigned for a
        commit, signed for an update)."""
        old = self.tree.leaf(i)
        assert old is not None
        priv, pub = self.cs.kem.derive_key_pair(self.rng(self.cs.kem.nsk))
        leaf = dataclasses.replace(
            old, encryption_key=pub, leaf_node_source=source, lifetime=None,
            parent_hash=b"" if source == LeafNodeSource.COMMIT else None, signature=b"",
        )
        if source == LeafNodeSource.UPDATE:
            leaf = leaf.signed(self.cs, self.sig_keys[i], GROUP_ID, i)
        return leaf, priv

    def context_for(self, epoch: int) -> Callable[[bytes], bytes]:
        def ctx(tree_hash: bytes) -> bytes:
            return GroupContext(self.cs.id, GROUP_ID, epoch, tree_hash, b"cth", ()).encode()

        return ctx

    # -- a commit
    def propose(
        self, adds: int = 0, removes: tuple[int, ...] = (), updates: tuple[int, ...] = ()
    ) -> tuple[RatchetTree, list[LeafIndex]]:
        """Apply proposals (§12.3 order: updates, removes, adds) to a copy of the tree."""
        tree = self.tree.copy()
        for u in map(L, updates):
            leaf, priv = self.reissued_leaf(u, LeafNodeSource.UPDATE)
            tree.update_leaf(u, leaf)
            self.keys[u] = TreePrivateKeys(u, priv, dict(self.keys[u].path_keys))
        for r in map(L, removes):
            tree.remove_leaf(r)
            del self.keys[r]
            del self.sig_keys[r]
        joiners: list[LeafIndex] = []
        for _ in range(adds):
            leaf, enc, sig = self.key_package_leaf()
            i = tree.add_leaf(leaf)
            self.keys[i] = TreePrivateKeys(i, enc, {})
            self.sig_keys[i] = sig
            joiners.append(i)
        return tree, joiners

    def create(
        self, committer: LeafIndex, tree: RatchetTree, joiners: list[LeafIndex]
    ) -> UpdatePathResult:
        leaf, priv = self.reissued_leaf(committer, LeafNodeSource.COMMIT)
        return create_update_path(
            self.cs, tree, committer, leaf, priv, self.sig_keys[committer], GROUP_ID,
            self.context_for(self.epoch + 1), joiners, self.rng(self.cs.nh), self.rng,
        )

    def commit(
        self,
        committer: int,
        adds: int = 0,
        removes: tuple[int, ...] = (),
        updates: tuple[int, ...] = (),
    ) -> bytes:
        """A full commit with path; checks every member agrees. Returns commit_secret."""
        c = L(committer)
        provisional, joiners = self.propose(adds, removes, updates)
        new_tree = provisional.copy()
        result = self.create(c, new_tree, joiners)
        for m in list(self.keys):
            if m == c or m in joiners:
                continue
            mine = provisional.copy()
            secret, keys = process_update_path(
                self.cs, mine, c, result.update_path, self.keys[m],
                self.context_for(self.epoch + 1), joiners, group_id=GROUP_ID,
            )
            assert secret == result.commit_secret
            assert mine.tree_hash() == new_tree.tree_hash()
            self.keys[m] = keys
        for j in joiners:
            lca = common_ancestor(N(2 * c), N(2 * j))
            self.keys[j] = apply_path_secret(
                self.cs, new_tree, self.keys[j], lca, result.path_secret_for_joiner(j)
            )
        self.keys[c] = result.private_keys
        self.tree = new_tree
        self.epoch += 1
        self.check_invariants()
        return result.commit_secret

    def check_invariants(self) -> None:
        """Keys match the tree; the tree is valid (§12.4.3.1); and the tree invariant
        (§4.2): a member knows the key of each non-blank ancestor that does not list
        it as unmerged, and no other parent key."""
        self.tree.validate()
        assert self.tree.invalid_leaf_signatures(GROUP_ID) == []
        assert sorted(self.keys) == [i for i, _ in self.tree.leaves()]
        for i, keys in self.keys.items():
            keys.check_consistent(self.cs, self.tree)
            expected = set()
            for p in self.tree.direct_path(i):
                node = self.tree.parent_node(p)
                if node is not None and i not in node.unmerged_leaves:
                    expected.add(p)
            assert set(keys.path_keys) == expected, (i, keys.path_keys.keys(), expected)


CS = get_suite(1)


def _grown(n: int) -> SimGroup:
    """A group of n members built by the committer at leaf 0 adding one at a time."""
    g = SimGroup(CS, b"grown-%d" % n)
    for _ in range(n - 1):
        g.commit(0, adds=1)
    return g


# ---------------------------------------------------------------------- known answers


def test_path_secret_chain_and_node_keys_follow_section_7_4() -> None:
    # path_secret[1] = DeriveSecret(path_secret[0], "path") and the node key pair is
    # DeriveKeyPair(DeriveSecret(path_secret, "node")): checked against the HPKE
    # DeriveKeyPair of the same secret computed by hand through the label function.
    from mlsvc.crypto.labels import expand_with_label

    s0 = bytes(range(32))
    assert next_path_secret(CS, s0) == expand_with_label(CS, s0, b"path", b"", 32)
    node_secret = expand_with_label(CS, s0, b"node", b"", 32)
    assert derive_node_key_pair(CS, s0) == CS.kem.derive_key_pair(node_secret)


def test_ciphertexts_follow_the_example_of_section_7_5() -> None:
    # §7.5: four members A B C D, X over A B, Y the root, Z over C D with C unmerged.
    # B's UpdatePath: node_pub[1] (Y) with E(pk(Z), path_secret[1]), E(pk(C), ...);
    # node_pub[0] (X) with E(pk(A), path_secret[0]).
    g = SimGroup(CS, b"section-7.5")
    leaves = [g.key_package_leaf() for _ in range(4)]
    parents = [CS.kem.derive_key_pair(bytes([x]) * 32) for x in (1, 3, 5)]
    x_node, y_node, z_node = (
        ParentNode(pub, b"", unmerged)
        for (_, pub), unmerged in zip(parents, [(), (), (L(2),)], strict=True)
    )
    tree = RatchetTree.from_nodes(
        CS, [leaves[0][0], x_node, leaves[1][0], y_node, leaves[2][0], z_node, leaves[3][0]]
    )
    b = L(1)
    g.tree, g.sig_keys[b] = tree, leaves[1][2]
    new_leaf, priv = g.reissued_leaf(b, LeafNodeSource.COMMIT)
    context = g.context_for(1)
    result = create_update_path(
        CS, tree, b, new_leaf, priv, leaves[1][2], GROUP_ID, context, (), bytes(32), g.rng
    )
    x_path, y_path = result.update_path.nodes
    ctx = context(tree.tree_hash())

    def opened(private_key: bytes, ct: HPKECiphertext) -> bytes:
        return decrypt_with_label(
            CS, private_key, b"UpdatePathNode", ctx, ct.kem_output, ct.ciphertext
        )

    path_secret_0 = bytes(32)  # the first path secret passed in
    path_secret_1 = next_path_secret(CS, path_secret_0)
    assert len(x_path.encrypted_path_secret) == 1
    assert opened(leaves[0][1], x_path.encrypted_path_secret[0]) == path_secret_0  # A
    assert len(y_path.encrypted_path_secret) == 2
    assert opened(parents[2][0], y_path.encrypted_path_secret[0]) == path_secret_1  # Z
    assert opened(leaves[2][1], y_path.encrypted_path_secret[1]) == path_secret_1  # C
    assert result.commit_secret == next_path_secret(CS, path_secret_1)
    assert x_path.encryption_key == derive_node_key_pair(CS, path_secret_0)[1]
    assert y_path.encryption_key == derive_node_key_pair(CS, path_secret_1)[1]
    # Y' and X' now carry the new keys, no unmerged leaves; Z[C] is untouched.
    assert tree.node(N(3)) == ParentNode(y_path.encryption_key, b"", ())
    assert tree.node(N(5)) == z_node
    assert tree.verify_parent_hashes() is False  # Z[C]'s own hash was made up above


# ---------------------------------------------------------------------- round trips


def test_commits_in_a_growing_and_shrinking_group() -> None:
    g = _grown(5)
    secrets = {g.commit(2), g.commit(4, updates=(0, 1)), g.commit(1, removes=(3,), adds=2)}
    assert len(secrets) == 3
    g.commit(0, removes=(1, 2, 3, 4, 5))
    assert g.tree.leaf_count == 1


def test_single_member_commit_secret_is_the_first_path_secret() -> None:
    g = SimGroup(CS, b"alone")
    provisional, _ = g.propose()
    leaf, priv = g.reissued_leaf(L(0), LeafNodeSource.COMMIT)
    first = bytes(32)
    result = create_update_path(
        CS, provisional, L(0), leaf, priv, g.sig_keys[L(0)], GROUP_ID, g.context_for(1), (),
        first, g.rng,
    )
    assert result.update_path.nodes == () and result.commit_secret == first
    assert provisional.leaf(L(0)) == result.update_path.leaf_node


def test_new_members_are_not_encrypted_to() -> None:
    g = _grown(2)
    provisional, joiners = g.propose(adds=2)  # leaves 2 and 3
    result = g.create(L(0), provisional.copy(), joiners)
    # filtered path of leaf 0: node 1 (copath leaf 1), root 3 (copath node 5 holds
    # only new members): the root gets no ciphertext, but keeps its place.
    assert [len(n.encrypted_path_secret) for n in result.update_path.nodes] == [1, 0]
    assert result.path_secret_for_joiner(L(3)) == result.path_secrets[N(3)]


# ---------------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def committed() -> tuple[SimGroup, RatchetTree, UpdatePathResult]:
    """Leaf 3 of an 8-member group commits; the provisional tree before the path."""
    g = _grown(8)
    provisional, _ = g.propose()
    result = g.create(L(3), provisional.copy(), [])
    return g, provisional, result


def _process(
    fx: tuple[SimGroup, RatchetTree, UpdatePathResult], path: UpdatePath, member: int = 6
) -> bytes:
    g, provisional, _ = fx
    secret, _ = process_update_path(
        g.cs, provisional.copy(), L(3), path, g.keys[L(member)], g.context_for(g.epoch + 1), (),
        group_id=GROUP_ID,
    )
    return secret


def _resigned(g: SimGroup, leaf: LeafNode) -> LeafNode:
    return dataclasses.replace(leaf, signature=b"").signed(CS, g.sig_keys[L(3)], GROUP_ID, 3)


def _check_id(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.check_id


def test_untampered_path_is_accepted(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    assert _process(committed, committed[2].update_path) == committed[2].commit_secret


def test_missing_path_node_is_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    path = committed[2].update_path
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(path.leaf_node, path.nodes[:-1]))
    assert _check_id(err) == "TREEKEM-PATH-LEN"


def test_missing_ciphertext_is_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    path = committed[2].update_path
    top = path.nodes[-1]
    short = UpdatePathNode(top.encryption_key, top.encrypted_path_secret[:-1])
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(path.leaf_node, (*path.nodes[:-1], short)))
    assert _check_id(err) == "TREEKEM-CIPHERTEXT-COUNT"


def test_bad_leaf_signature_is_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    path = committed[2].update_path
    sig = bytearray(path.leaf_node.signature)
    sig[0] ^= 1
    leaf = dataclasses.replace(path.leaf_node, signature=bytes(sig))
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(leaf, path.nodes))
    assert _check_id(err) == "TREEKEM-LEAF-SIGNATURE"


def test_bad_parent_hash_is_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    g, _, result = committed
    path = result.update_path
    leaf = _resigned(g, dataclasses.replace(path.leaf_node, parent_hash=b"\x01" * 32))
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(leaf, path.nodes))
    assert _check_id(err) == "TREEKEM-PARENT-HASH"


def test_swapped_node_key_breaks_the_parent_hash(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    path = committed[2].update_path
    other = path.nodes[0].encryption_key
    top = dataclasses.replace(path.nodes[-1], encryption_key=other)
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(path.leaf_node, (*path.nodes[:-1], top)))
    assert _check_id(err) == "TREEKEM-PARENT-HASH"


def test_key_not_matching_the_path_secret_is_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    # A committer that signs a consistent parent-hash chain over a root key its path
    # secrets do not give, and encrypts correctly under the resulting context: the
    # receiver's derived root key differs (§7.5 step 6).
    from mlsvc.tree.treekem import _copath_children, _set_path_nodes

    g, provisional, result = committed
    path = result.update_path
    _, wrong_pub = derive_node_key_pair(CS, b"\x07" * 32)
    nodes = [*path.nodes[:-1], dataclasses.replace(path.nodes[-1], encryption_key=wrong_pub)]
    scratch = provisional.copy()
    fdp = scratch.filtered_direct_path(L(3))
    scratch.blank_direct_path(L(3))
    ph = _set_path_nodes(
        CS, scratch, fdp, _copath_children(scratch, L(3), fdp), [n.encryption_key for n in nodes]
    )
    leaf = _resigned(g, dataclasses.replace(path.leaf_node, parent_hash=ph))
    scratch.set_leaf(L(3), leaf)
    context = g.context_for(g.epoch + 1)(scratch.tree_hash())
    # re-encrypt node 5's path secret to leaf 2 (its copath resolution) in that context
    target = provisional.leaf(L(2))
    assert target is not None and fdp[0] == 5
    kem_output, ct = encrypt_with_label(
        CS, target.encryption_key, b"UpdatePathNode", context, result.path_secrets[N(5)], g.rng
    )
    nodes[0] = UpdatePathNode(nodes[0].encryption_key, (HPKECiphertext(kem_output, ct),))
    with pytest.raises(ValidationError) as err:
        _process(committed, UpdatePath(leaf, tuple(nodes)), member=2)
    assert _check_id(err) == "TREEKEM-PUBKEY-MISMATCH"


def test_corrupted_ciphertext_fails_decryption(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    path = committed[2].update_path
    top = path.nodes[-1]
    bad = [
        HPKECiphertext(c.kem_output, c.ciphertext[:-1] + bytes([c.ciphertext[-1] ^ 1]))
        for c in top.encrypted_path_secret
    ]
    nodes = (*path.nodes[:-1], UpdatePathNode(top.encryption_key, tuple(bad)))
    with pytest.raises(CryptoError):
        _process(committed, UpdatePath(path.leaf_node, nodes))


def test_other_group_context_fails_decryption(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    g, provisional, result = committed
    with pytest.raises(CryptoError):
        process_update_path(
            g.cs, provisional.copy(), L(3), result.update_path, g.keys[L(6)],
            g.context_for(g.epoch + 2), (),
        )


def test_decrypted_node_and_secret_are_reported(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    g, provisional, result = committed
    out = process_update_path_detailed(
        g.cs, provisional.copy(), L(3), result.update_path, g.keys[L(2)],
        g.context_for(g.epoch + 1), (),
    )
    # leaves 2 and 3 share node 5, the first node of 3's filtered path
    assert out.decrypted_node == 5
    assert out.path_secret == result.path_secrets[N(5)]


def test_committer_cannot_process_its_own_path(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    with pytest.raises(ParameterError):
        _process(committed, committed[2].update_path, member=3)


def test_wrong_welcome_path_secret_is_refused() -> None:
    g = _grown(2)
    provisional, joiners = g.propose(adds=1)
    new_tree = provisional.copy()
    result = g.create(L(0), new_tree, joiners)
    j = joiners[0]
    lca = common_ancestor(N(0), N(2 * j))
    good = apply_path_secret(CS, new_tree, g.keys[j], lca, result.path_secret_for_joiner(j))
    assert set(good.path_keys) == {lca}
    with pytest.raises(ValidationError) as err:
        apply_path_secret(CS, new_tree, g.keys[j], lca, bytes(32))
    assert _check_id(err) == "TREEKEM-WELCOME-PATH"


def test_path_keys_already_in_the_tree_are_refused(
    committed: tuple[SimGroup, RatchetTree, UpdatePathResult],
) -> None:
    _, provisional, result = committed
    check_path_keys_unused(provisional, result.update_path)
    used = provisional.leaf(L(5))
    assert used is not None
    reused = dataclasses.replace(result.update_path.leaf_node, encryption_key=used.encryption_key)
    with pytest.raises(ValidationError) as err:
        check_path_keys_unused(provisional, UpdatePath(reused, result.update_path.nodes))
    assert _check_id(err) == "TREEKEM-KEY-REUSE"


def test_external_commit_flow_via_add_leaf() -> None:
    # §12.4.2 external commit: the joiner takes the leftmost blank leaf (add_leaf on
    # both sides, which the path then overwrites) and commits with a path.
    g = _grown(3)
    joiner_leaf, _, sig = g.key_package_leaf()
    committer_view = g.tree.copy()
    j = committer_view.add_leaf(joiner_leaf)
    assert j == 3
    priv, pub = CS.kem.derive_key_pair(g.rng(32))
    new_leaf = dataclasses.replace(
        joiner_leaf, encryption_key=pub, leaf_node_source=LeafNodeSource.COMMIT,
        lifetime=None, parent_hash=b"", signature=b"",
    )
    result = create_update_path(
        CS, committer_view, j, new_leaf, priv, sig, GROUP_ID, g.context_for(g.epoch + 1), (),
        bytes(32), g.rng,
    )
    for m in (L(0), L(1), L(2)):
        view = g.tree.copy()
        assert view.add_leaf(result.update_path.leaf_node) == j
        secret, _ = process_update_path(
            CS, view, j, result.update_path, g.keys[m], g.context_for(g.epoch + 1), (),
            group_id=GROUP_ID,
        )
        assert secret == result.commit_secret
        assert view.tree_hash() == committer_view.tree_hash()
    committer_view.validate()
