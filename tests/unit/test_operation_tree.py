"""The later text's Virtual Client Operation Secret Tree (draft-ietf-mls-virtual-clients-
latest §5.2, §5.4, §5.5.1; mlsvc.vc.operation_tree). Expected values are recomputed here
from the text's formulas with the labeled-KDF primitives (mlsvc.crypto.labels) and
hand-encoded structs, never by calling the code under test."""

from __future__ import annotations

import pytest

from mlsvc.crypto.labels import derive_secret, expand_with_label
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.errors import ParameterError, StateError, ValidationError
from mlsvc.tree.secret_tree import GenerationTooFarError
from mlsvc.vc.codepoints import OperationType
from mlsvc.vc.operation_tree import (
    KeyPackageBatch,
    OperationSecretTree,
    encode_operation_context,
)

CS = get_suite(1)  # SHA-256, Kdf.Nh = 32
BASE = bytes(range(32))
EPOCH_ID = b"\xe0" * 32
GROUP = b"higher-level group"
KP, LN, APP = OperationType.KEY_PACKAGE, OperationType.LEAF_NODE, OperationType.APPLICATION


# --- independent recomputation of the text's formulas ----------------------------------


def varint(n: int) -> bytes:
    assert n < 64  # RFC 9420 §2.1.2: one byte below 64
    return bytes([n])


def op_context(epoch_id: bytes, leaf: int, generation: int, op_type: int,
               context: bytes) -> bytes:
    """struct { opaque epoch_id<V>; uint32 leaf_index; uint32 generation;
    VirtualClientOperationType operation_type; opaque operation_context<V>; }"""
    return (varint(len(epoch_id)) + epoch_id + leaf.to_bytes(4, "big")
            + generation.to_bytes(4, "big") + bytes([op_type]) + varint(len(context)) + context)


def child(cs: CipherSuite, secret: bytes, side: bytes) -> bytes:
    """RFC 9420 §9: ExpandWithLabel(parent, "tree", "left"/"right", KDF.Nh)."""
    return expand_with_label(cs, secret, b"tree", side, cs.nh)


def leaf_secret_of_4(cs: CipherSuite, base: bytes, leaf: int) -> bytes:
    """A 4-leaf tree rooted at `base`: leaf i is under the root's left (i < 2) or right
    child, then that child's left (even i) or right child."""
    half = child(cs, base, b"left" if leaf < 2 else b"right")
    return child(cs, half, b"left" if leaf % 2 == 0 else b"right")


def ratchet_at(cs: CipherSuite, leaf_secret: bytes, op_type: int, generation: int) -> bytes:
    """operation_ratchet_secret[type][0] = ExpandWithLabel(leaf_secret, "vc operation
    init", operation_type, Kdf.Nh); each step DeriveSecret(., "VC Operation Ratchet")."""
    r = expand_with_label(cs, leaf_secret, b"vc operation init", bytes([op_type]), cs.nh)
    for _ in range(generation):
        r = derive_secret(cs, r, b"VC Operation Ratchet")
    return r


def expected_operation_secret(cs: CipherSuite, base: bytes, leaf: int, op_type: int,
                              generation: int, context: bytes,
                              epoch_id: bytes = EPOCH_ID) -> bytes:
    r = ratchet_at(cs, leaf_secret_of_4(cs, base, leaf), op_type, generation)
    g = derive_secret(cs, r, b"VC Operation Secret")
    return expand_with_label(cs, g, b"vc operation",
                             op_context(epoch_id, leaf, generation, op_type, context), cs.nh)


def seed(cs: CipherSuite, operation_secret: bytes, index: int) -> bytes:
    """ExpandWithLabel(operation_secret, "key package seed", uint32 index, Kdf.Nh)."""
    return expand_with_label(cs, operation_secret, b"key package seed",
                             index.to_bytes(4, "big"), cs.nh)


def tree(leaves: int = 4, **kw: int) -> OperationSecretTree:
    return OperationSecretTree(CS, EPOCH_ID, BASE, leaves, **kw)


# --- structure and values ---------------------------------------------------------------


def test_operation_types_are_the_texts_code_points() -> None:
    # latest §6.1.2: enum { reserved(0), key_package(1), leaf_node(2), application(3) }
    assert [(t.name, int(t)) for t in OperationType] == [
        ("KEY_PACKAGE", 1), ("LEAF_NODE", 2), ("APPLICATION", 3)]


def test_operation_context_is_tls_encoded_byte_by_byte() -> None:
    assert encode_operation_context(b"\x01\x02", 5, 7, LN, b"g") == (
        b"\x02\x01\x02" + b"\x00\x00\x00\x05" + b"\x00\x00\x00\x07" + b"\x02" + b"\x01g")
    assert encode_operation_context(b"", 0xA1B2C3D4, 0, KP, b"") == (
        b"\x00" + b"\xa1\xb2\xc3\xd4" + b"\x00\x00\x00\x00" + b"\x01" + b"\x00")


@pytest.mark.parametrize("leaf", [0, 1, 2, 3])
@pytest.mark.parametrize("op_type, context", [(KP, b""), (LN, GROUP), (APP, b"app ctx")])
def test_first_operation_of_each_leaf_and_type_matches_the_formulas(
        leaf: int, op_type: int, context: bytes) -> None:
    op = tree().next_operation(leaf, op_type, context)
    assert (op.epoch_id, op.leaf_index, op.generation, op.operation_type,
            op.operation_context) == (EPOCH_ID, leaf, 0, op_type, context)
    assert op.operation_secret == expected_operation_secret(CS, BASE, leaf, op_type, 0,
                                                            context)


def test_generations_advance_along_the_ratchet() -> None:
    t = tree()
    for g in range(4):
        assert t.next_generation(1, LN) == g
        op = t.next_operation(1, LN, GROUP)
        assert op.generation == g
        assert op.operation_secret == expected_operation_secret(CS, BASE, 1, LN, g, GROUP)
    # the other ratchets of the leaf did not move
    assert t.next_generation(1, KP) == 0
    assert t.next_generation(1, APP) == 0


def test_leaves_and_types_have_distinct_ratchets() -> None:
    t = tree()
    secrets = {t.next_operation(leaf, op_type, b"").operation_secret
               for leaf in range(4) for op_type in (KP, LN, APP)}
    assert len(secrets) == 12


def test_leaf_secret_is_replaced_by_three_ratchets() -> None:
    t = tree()
    t.next_operation(2, LN, GROUP)
    # leaf 2 is node 4 of a 4-leaf tree; its secret is gone, its sibling (node 6) and the
    # root's other child (node 1) are the frontier
    assert set(t.state.nodes) == {1, 6}
    assert t.state.nodes[6] == leaf_secret_of_4(CS, BASE, 3)
    assert t.state.nodes[1] == child(CS, BASE, b"left")
    assert sorted(k for k in t.state.ratchets) == [(2, KP), (2, LN), (2, APP)]
    leaf2 = leaf_secret_of_4(CS, BASE, 2)
    assert t.state.ratchets[(2, KP)].secret == ratchet_at(CS, leaf2, KP, 0)
    assert t.state.ratchets[(2, LN)].secret == ratchet_at(CS, leaf2, LN, 1)


def test_operation_context_changes_the_secret() -> None:
    base_op = tree().next_operation(0, LN, GROUP).operation_secret
    assert tree().next_operation(0, LN, b"another group").operation_secret != base_op
    other_epoch = OperationSecretTree(CS, b"\xe1" * 32, BASE, 4).next_operation(0, LN, GROUP)
    assert other_epoch.operation_secret != base_op
    assert other_epoch.operation_secret == expected_operation_secret(
        CS, BASE, 0, LN, 0, GROUP, epoch_id=b"\xe1" * 32)
    assert tree().next_operation(0, APP, GROUP).operation_secret != base_op


def test_a_sibling_rederives_the_same_operation_and_the_generation_is_consumed() -> None:
    mine, sibling = tree(), tree()
    ops = [mine.next_operation(3, LN, GROUP) for _ in range(2)]
    for op in ops:
        again = sibling.operation_at(3, LN, op.generation, GROUP)
        assert again == op
    with pytest.raises(ValidationError) as err:
        sibling.operation_at(3, LN, 1, GROUP)
    assert err.value.check_id == "VC-OPERATION-GENERATION"
    assert sibling.next_generation(3, LN) == 2


def test_a_generation_is_never_handed_out_twice() -> None:
    t = tree()
    seen = [(op.generation, op.operation_secret)
            for op in (t.next_operation(0, APP, b"x") for _ in range(5))]
    assert [g for g, _ in seen] == [0, 1, 2, 3, 4]
    assert len({s for _, s in seen}) == 5
    # the deriver's own consumed generations cannot be re-derived either
    for g in range(5):
        with pytest.raises(ValidationError) as err:
            t.operation_at(0, APP, g, b"x")
        assert err.value.check_id == "VC-OPERATION-GENERATION"


def test_a_failed_operation_still_consumed_its_generation() -> None:
    t = tree()
    failed = t.next_operation(0, LN, GROUP)  # e.g. its Commit was rejected
    retry = t.next_operation(0, LN, GROUP)
    assert retry.generation == failed.generation + 1
    assert retry.operation_secret != failed.operation_secret


def test_skipped_generations_are_kept_within_the_tolerance() -> None:
    t = tree(out_of_order_tolerance=2)
    op4 = t.operation_at(1, LN, 4, GROUP)
    assert op4.operation_secret == expected_operation_secret(CS, BASE, 1, LN, 4, GROUP)
    assert sorted(t.state.ratchets[(1, LN)].retained) == [2, 3]
    # a retained generation gives the same secret as in order, then is consumed
    op2 = t.operation_at(1, LN, 2, b"late group")
    assert op2.operation_secret == expected_operation_secret(CS, BASE, 1, LN, 2,
                                                             b"late group")
    assert sorted(t.state.ratchets[(1, LN)].retained) == [3]
    for g in (0, 1, 2, 4):  # deleted out of the window, or consumed
        with pytest.raises(ValidationError) as err:
            t.operation_at(1, LN, g, GROUP)
        assert err.value.check_id == "VC-OPERATION-GENERATION"
    # release deletes a retained generation (a failed operation's material)
    assert t.release(1, LN, 3) is True
    assert t.release(1, LN, 3) is False
    with pytest.raises(ValidationError):
        t.operation_at(1, LN, 3, GROUP)


def test_generations_too_far_ahead_are_refused_without_moving() -> None:
    t = tree(max_forward_distance=3)
    with pytest.raises(GenerationTooFarError):
        t.operation_at(0, KP, 4)
    assert t.next_generation(0, KP) == 0
    assert t.operation_at(0, KP, 3).generation == 3


def test_state_copy_rolls_back_a_rederivation() -> None:
    t = tree()
    saved = t.state.copy()
    op = t.operation_at(2, LN, 1, GROUP)
    t.state = saved  # the message was rejected: undo
    assert t.operation_at(2, LN, 1, GROUP) == op


def test_sub_secrets_of_a_leaf_node_operation() -> None:
    op = tree().next_operation(0, LN, GROUP)
    subs = op.sub_secrets(CS)
    s = op.operation_secret
    assert subs.signature_key_secret == derive_secret(CS, s, b"Signature Key")
    assert subs.encryption_key_secret == derive_secret(CS, s, b"Encryption Key")
    assert subs.init_key_secret == derive_secret(CS, s, b"Init Key")
    assert subs.path_generation_secret == derive_secret(CS, s, b"Path Generation")


# --- KeyPackage batches and group creation (§5.2, §5.4, §5.5.1) -------------------------


def test_a_key_package_batch_is_one_generation_with_a_seed_per_index() -> None:
    mine, sibling = tree(), tree()
    batch = mine.next_key_package_batch(1, [0, 1, 2])
    assert (batch.epoch_id, batch.leaf_index, batch.generation) == (EPOCH_ID, 1, 0)
    assert mine.next_generation(1, KP) == 1  # one generation for the whole upload
    batch_secret = expected_operation_secret(CS, BASE, 1, KP, 0, b"")
    assert batch.seeds == {i: seed(CS, batch_secret, i) for i in range(3)}
    assert len(set(batch.seeds.values())) == 3
    # the batch keeps no operation_secret, only the seeds
    assert batch_secret not in vars(batch).values()
    subs = batch.sub_secrets(CS, 2)
    assert subs.signature_key_secret == derive_secret(CS, batch.seeds[2], b"Signature Key")
    assert subs.encryption_key_secret == derive_secret(CS, batch.seeds[2], b"Encryption Key")
    assert subs.init_key_secret == derive_secret(CS, batch.seeds[2], b"Init Key")
    # a sibling re-derives the announced batch (KeyPackageUpload: generation, indices)
    assert sibling.key_package_batch_at(1, 0, [2, 0, 1]) == batch
    # the next upload takes a fresh generation
    assert mine.next_key_package_batch(1, [0]).generation == 1


def test_a_key_package_operation_has_no_direct_sub_secrets() -> None:
    op = tree().next_operation(0, KP)
    with pytest.raises(StateError):
        op.sub_secrets(CS)
    with pytest.raises(ParameterError):
        KeyPackageBatch.from_operation(CS, tree().next_operation(0, LN, GROUP), [0])


@pytest.mark.parametrize("indices", [[], [0, 0], [1, 2, 1], [-1], [1 << 32]])
def test_bad_batches_are_refused_before_a_generation_is_consumed(
        indices: list[int]) -> None:
    t = tree()
    with pytest.raises(ParameterError):
        t.next_key_package_batch(0, indices)
    with pytest.raises(ParameterError):
        t.key_package_batch_at(0, 0, indices)
    assert t.next_generation(0, KP) == 0


def test_group_creation_seed_is_index_zero_and_gives_the_epoch_secret() -> None:
    t = tree()
    t.next_key_package_batch(0, [0, 1])  # an earlier upload
    creation = t.next_key_package_batch(0, [0])
    assert creation.generation == 1
    creation_seed = seed(CS, expected_operation_secret(CS, BASE, 0, KP, 1, b""), 0)
    for group_suite in (CS, get_suite(7)):  # the higher-level group's suite (SHA-384)
        epoch_secret = creation.group_creation_epoch_secret(group_suite)
        assert epoch_secret == derive_secret(group_suite, creation_seed, b"Group Creation")
        assert len(epoch_secret) == group_suite.nh
    with pytest.raises(ParameterError):
        t.next_key_package_batch(0, [0, 1]).group_creation_epoch_secret(CS)
    with pytest.raises(ParameterError):
        creation.sub_secrets(CS, 1)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op_type", [0, 4, 255])
def test_reserved_and_undefined_operation_types_are_refused(op_type: int) -> None:
    with pytest.raises(ParameterError):
        tree().next_operation(0, op_type)
    with pytest.raises(ParameterError):
        tree().operation_at(0, op_type, 0)


def test_a_key_package_operation_context_is_zero_length() -> None:
    t = tree()
    with pytest.raises(ParameterError):
        t.next_operation(0, KP, GROUP)
    with pytest.raises(ParameterError):
        t.operation_at(0, KP, 0, GROUP)
    assert t.next_generation(0, KP) == 0


def test_bad_trees_leaves_and_generations_are_refused() -> None:
    with pytest.raises(ParameterError):
        OperationSecretTree(CS, EPOCH_ID, BASE, 3)  # not a power of two
    with pytest.raises(ParameterError):
        OperationSecretTree(CS, EPOCH_ID, BASE[:16], 4)  # not Kdf.Nh bytes
    with pytest.raises(ParameterError):
        tree(max_forward_distance=-1)
    t = tree()
    for leaf in (-1, 4):
        with pytest.raises(ParameterError):
            t.next_operation(leaf, LN, GROUP)
    with pytest.raises(ParameterError):
        t.operation_at(0, LN, 1 << 32, GROUP)
    with pytest.raises(ParameterError):
        t.operation_at(0, LN, -1, GROUP)


def test_an_exhausted_ratchet_is_a_state_error() -> None:
    t = tree()
    t.next_operation(0, APP, b"")
    t.state.ratchets[(0, APP)].generation = 1 << 32  # as if every uint32 were used
    with pytest.raises(StateError):
        t.next_operation(0, APP, b"")


def test_a_single_leaf_tree_uses_the_base_secret_as_leaf_secret() -> None:
    t = OperationSecretTree(CS, EPOCH_ID, BASE, 1)
    op = t.next_operation(0, LN, GROUP)
    g = derive_secret(CS, ratchet_at(CS, BASE, LN, 0), b"VC Operation Secret")
    assert op.operation_secret == expand_with_label(
        CS, g, b"vc operation", op_context(EPOCH_ID, 0, 0, LN, GROUP), CS.nh)
    assert t.state.nodes == {}
