"""The exploration of the model holds every invariant with every switch off (bounded).

The Hypothesis profile selects the budget: "ci" (the default suite) runs the model's
"ci" exploration, HYPOTHESIS_PROFILE=long (make test-long) runs its "long" one.
"""

from __future__ import annotations

import os

import pytest

from mlsvc_model.config import Config
from mlsvc_model.explore import explore
from mlsvc_model.invariants import INVARIANTS

PROFILE = "long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "ci"


def test_every_invariant_holds_in_the_baseline() -> None:
    res = explore(Config(), PROFILE)
    assert res.violation is None, (res.violation.invariant, res.violation.detail)
    assert res.checked == tuple(INVARIANTS)
    # The exploration reaches the interesting parts of the state space.
    assert res.steps > 500
    assert res.observed["messages"] > 20
    assert res.observed["pprf_derivations"] > 50
    assert res.observed["attributions"] > 5
    assert res.observed["removals_finished_in_groups"] > 0
    assert res.observed["ds_rejections"] > 0  # concurrent senders of one generation
    # A privacy finding (an observation, not an invariant): an epoch_id links the
    # LeafNodes of several groups. (The generation-ID linkage of P11 is shown
    # deterministically in test_transitions.py.)
    assert res.observed["epoch_ids_linking_places"] > 0


def test_the_later_drafts_rules_hold_and_unlink_generation_ids() -> None:
    res = explore(
        Config(latest_generation_id_context=True, latest_operation_ratchets=True), PROFILE
    )
    assert res.violation is None, (res.violation.invariant, res.violation.detail)
    assert res.observed["messages"] > 20
    # With group_id and epoch in PrivateMessageContext no generation ID repeats.
    assert res.observed["generation_ids_linking_scopes"] == 0


@pytest.mark.parametrize("bits", [2])
def test_operation_ratchets_remove_the_pprf_findings(bits: int) -> None:
    """F4/F5's small leaf space is harmless once operation ratchets replace the PPRF."""
    res = explore(Config(latest_operation_ratchets=True, pprf_bits=bits), "ci")
    assert res.violation is None, (res.violation.invariant, res.violation.detail)
