"""Unit tests of the model's transitions: preconditions, the draft rules they encode,
and the removal procedure (draft-00 §4-§5, the profile's P- and Q- decisions)."""

from __future__ import annotations

import pytest

from mlsvc_model.config import Config
from mlsvc_model.emulation import next_tree
from mlsvc_model.errors import PreconditionError
from mlsvc_model.invariants import removal_finished, violations
from mlsvc_model.state import World
from mlsvc_model.tokens import derivable
from mlsvc_model.transitions import TRANSITIONS, apply, initial_world


def joined(config: Config | None = None) -> World:
    """E0 external-joins G1 for the virtual client; E1 catches up."""
    w = initial_world(config or Config())
    apply(w, "create_group")
    apply(w, "external_join", emulator="E0", group="G1", salt=0)
    apply(w, "catch_up", emulator="E1")
    return w


def test_next_tree_follows_rfc9420_add_and_truncate() -> None:
    # RFC 9420 §7.7: a full tree grows by doubling; the new leaf is the leftmost blank.
    assert next_tree({"A": 0, "B": 1}, 2, "C", None) == ({"A": 0, "B": 1, "C": 2}, 4)
    assert next_tree({"A": 0, "C": 2}, 4, "D", None) == ({"A": 0, "C": 2, "D": 1}, 4)
    # RFC 9420 §12.3: after a remove, truncate while the right subtree is blank.
    assert next_tree({"A": 0, "B": 1, "C": 2}, 4, None, "B") == ({"A": 0, "C": 2}, 4)
    assert next_tree({"A": 0, "C": 2}, 4, None, "C") == ({"A": 0}, 1)


def test_epoch_secrets_are_derived_and_the_export_deleted() -> None:
    """§5.2: four secrets from emulator_epoch_secret, 'after which it is deleted'."""
    w = initial_world(Config())
    ep = w.epochs[0]
    for em in w.emulators.values():
        assert ep.emulator_epoch_secret in em.deleted
        assert ep.emulator_epoch_secret not in em.held
        assert set(ep.four()) <= em.held
    assert violations(w) == []


def test_a_removed_emulator_cannot_act() -> None:
    w = joined()
    apply(w, "remove_emulator", emulator="E0", target="E1")
    calls: list[tuple[str, dict[str, object]]] = [
        ("emulation_commit", {}),
        ("create_key_packages", {"count": 1, "salt": 0}),
        ("vc_commit", {"group": "G1", "kind": "commit", "salt": 0}),
        ("external_join", {"group": "G1", "salt": 0}),
        ("send_private_message", {"group": "G1", "r": 0}),
        ("deliver", {"log": "emulation"}),
        ("add_emulator", {"variant": "state_transfer"}),
        ("remove_emulator", {"target": "E0"}),
    ]
    for name, args in calls:
        with pytest.raises(PreconditionError, match="removed"):
            apply(w, name, emulator="E1", **args)


def test_a_stale_emulation_commit_is_refused_until_processed() -> None:
    """§5.5: the DS orders the emulation group's Commits; one on a stale epoch fails."""
    w = initial_world(Config())
    apply(w, "emulation_commit", emulator="E0")
    with pytest.raises(PreconditionError, match="not processed"):
        apply(w, "emulation_commit", emulator="E1")
    apply(w, "deliver", emulator="E1", log="emulation")
    assert apply(w, "emulation_commit", emulator="E1") == 2


def test_a_refused_transition_changes_nothing() -> None:
    w = joined()
    before = (len(w.trace), w.counter, len(w.emu_log), len(w.groups["G1"].log))
    with pytest.raises(PreconditionError):
        apply(w, "welcome", group="G1", key_package="KP9")
    assert (len(w.trace), w.counter, len(w.emu_log), len(w.groups["G1"].log)) == before


def test_p9_a_new_emulator_sends_only_after_the_leaf_is_rotated() -> None:
    w = joined()
    apply(w, "add_emulator", emulator="E0", variant="state_transfer")  # E2: leaf 2 of 4
    with pytest.raises(PreconditionError, match="P9"):
        apply(w, "send_private_message", emulator="E2", group="G1", r=0)
    apply(w, "vc_commit", emulator="E0", group="G1", kind="commit", salt=1)
    apply(w, "catch_up", emulator="E2")
    apply(w, "send_private_message", emulator="E2", group="G1", r=0)
    apply(w, "catch_up", emulator="E0")
    # E0 recovers x mod N_e = 2, E2's leaf at the epoch of the new leaf (§5.8).
    assert [(a.receiver, a.leaf) for a in w.attributions] == [("E0", 2)]
    assert violations(w) == []


def test_concurrent_senders_get_distinct_nonces_and_the_ds_rejects_the_second() -> None:
    w = joined()
    apply(w, "send_private_message", emulator="E0", group="G1", r=1)
    result = apply(w, "send_private_message", emulator="E1", group="G1", r=0)
    first, second = w.messages
    assert (first.key, first.generation) == (second.key, second.generation)
    assert first.nonce != second.nonce  # x = 0 + 2r and x = 1 + 2r never meet
    assert "rejected" in str(result)  # a true generation collision (§5.9)
    assert violations(w) == []


def test_p11_generation_ids_repeat_across_groups_and_the_later_draft_separates_them() -> None:
    def two_groups(config: Config) -> World:
        w = initial_world(config)
        for _ in range(2):
            apply(w, "create_group")
        apply(w, "create_key_packages", emulator="E0", count=2, salt=0)
        apply(w, "welcome", group="G1", key_package="KP1")
        apply(w, "welcome", group="G2", key_package="KP2")
        apply(w, "catch_up", emulator="E0")
        apply(w, "send_private_message", emulator="E0", group="G1", r=0)
        apply(w, "send_private_message", emulator="E0", group="G2", r=0)
        return w

    draft00 = two_groups(Config())
    assert draft00.messages[0].generation_id == draft00.messages[1].generation_id
    assert all(m.delivered for m in draft00.messages)  # P11: the DS scopes by group
    later = two_groups(Config(latest_generation_id_context=True))
    assert later.messages[0].generation_id != later.messages[1].generation_id


def test_the_removal_procedure_cuts_the_removed_emulator_off() -> None:
    """§4.3: remove from the emulation group, then a Commit with path from the new
    epoch in every group; before that the removed emulator still reads the group."""
    w = joined()
    apply(w, "create_key_packages", emulator="E1", count=1, salt=0)
    apply(w, "catch_up", emulator="E0")
    apply(w, "remove_emulator", emulator="E0", target="E1")
    e1 = w.emulators["E1"]
    g = w.groups["G1"]
    assert not removal_finished(w, e1)
    assert derivable(g.epoch_secret, e1.ever, sealed=w.sealed_by_payload())
    assert w.key_packages == {}  # step 1 of the later draft: the DS deleted them
    apply(w, "vc_commit", emulator="E0", group="G1", kind="commit", salt=3)
    apply(w, "member_commit", group="G1")
    assert removal_finished(w, e1)
    assert not derivable(g.epoch_secret, e1.ever, sealed=w.sealed_by_payload())
    assert violations(w) == []


def test_receivers_puncture_and_reject_a_colliding_leaf() -> None:
    """Q7: a request for a punctured leaf with another (leaf_index, random) is rejected."""
    w = joined(Config(pprf_bits=2))
    apply(w, "vc_commit", emulator="E0", group="G1", kind="commit", salt=0)
    apply(w, "create_key_packages", emulator="E1", count=3, salt=0)
    apply(w, "catch_up", emulator="E1")
    assert w.collisions and w.collisions[0][0] == "E1"
    assert "INV-OP-KEYS-DISTINCT" in dict(violations(w))


def test_sequential_collisions_are_resampled_p3() -> None:
    w = initial_world(Config(pprf_bits=2), emulators=1)
    apply(w, "create_key_packages", emulator="E0", count=4, salt=0)
    assert w.derivations[0] == 4
    assert w.resamples.get(0, 0) > 0
    assert len({w.ops[o].slot for o in w.key_packages.values()}) == 4
    assert violations(w) == []
    small = initial_world(Config(pprf_bits=1), emulators=1)  # two leaves per epoch
    with pytest.raises(PreconditionError, match="punctured"):
        apply(small, "create_key_packages", emulator="E0", count=3, salt=0)


def test_state_transfer_lets_the_new_emulator_follow_everything() -> None:
    """P13: the new emulator gets referenced epochs, operations and group state."""
    w = joined()
    apply(w, "create_key_packages", emulator="E0", count=1, salt=0)
    apply(w, "add_emulator", emulator="E0", variant="state_transfer")
    e2 = w.emulators["E2"]
    assert e2.key_packages == {"KP1"}
    assert e2.groups["G1"].epoch == w.groups["G1"].epoch
    apply(w, "member_commit", group="G1")
    apply(w, "catch_up", emulator="E2")
    assert e2.groups["G1"].epoch_secret == w.groups["G1"].epoch_secret
    assert violations(w) == []


def test_every_transition_cites_a_section() -> None:
    for t in TRANSITIONS.values():
        assert t.section and t.summary
    assert not TRANSITIONS["derive_operation_secret"].step
    with pytest.raises(PreconditionError):
        apply(initial_world(Config()), "derive_operation_secret")
