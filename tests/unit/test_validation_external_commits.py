"""RFC 9420 §12.2 proposal lists of external commits (EC-*) and §12.4.3.2 external
commit rules: our engine builds a real external commit, the test changes its
proposals or path and re-signs it with the joiner's key (the signature of an
external commit is verified with the key of the path's LeafNode, §12.4.3.2), so the
list or path rule is what rejects it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mlsvc.errors import CryptoError
from mlsvc.group.group import Group
from mlsvc.messages.codepoints import ProtocolVersion
from mlsvc.messages.commit import Commit
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    ProposalRef,
    ReInit,
    Remove,
)
from mlsvc.types import LeafIndex
from tests.unit.validation_helpers import (
    CS,
    check_of,
    config,
    forge_external,
    identity,
    key_package,
    make_group,
    real_external_commit,
    snapshot,
)

PSKS = {b"psk-1": b"an external psk value"}


def external_check(group_kw: dict[str, Any], change: list[ProposalOrRef] | None,
                   *, drop_path: bool = False) -> str:
    """m1 processes m0's group's external commit from joiner x, with its proposal
    list replaced by `change` (ExternalInit taken from the real commit where named)."""
    a, b, _ = make_group(**group_kw)
    commit, joiner = real_external_commit(a, "x")
    items = commit.proposals if change is None else tuple(change)
    bad = Commit(items, None if drop_path else commit.path)
    msg = forge_external(b, bad, joiner)
    return check_of(lambda: b.process(msg), b)


INIT = ExternalInit(bytes(32))  # list validation runs before the KEM output is used
PSK = PreSharedKey(PreSharedKeyID.external(b"psk-1", bytes(CS.nh)))


@pytest.mark.parametrize("proposals", [
    [], [Remove(LeafIndex(2))], [INIT, INIT],
], ids=["none", "remove-only", "two"])
def test_not_exactly_one_external_init(proposals: list[Proposal]) -> None:
    assert external_check({}, list(proposals)) == "EC-ONE-EXTERNAL-INIT"


def test_two_removes() -> None:
    assert external_check({}, [INIT, Remove(LeafIndex(1)), Remove(LeafIndex(2))]) == (
        "EC-AT-MOST-ONE-REMOVE")


@pytest.mark.parametrize("other", ["add", "gce", "reinit"])
def test_proposal_type_not_allowed(other: str) -> None:
    extra: Proposal = (Add(key_package("d").key_package) if other == "add"
                       else GroupContextExtensions(()) if other == "gce"
                       else ReInit(b"new", ProtocolVersion.MLS10, 1, ()))
    assert external_check({}, [INIT, extra]) == "EC-ONLY-ALLOWED"


def test_proposal_by_reference() -> None:
    assert external_check({}, [INIT, ProposalRef(bytes(CS.nh))]) == "EC-NO-REFERENCES"


def test_two_psk_proposals_with_the_same_id() -> None:
    assert external_check({"external_psks": PSKS}, [INIT, PSK, PSK]) == "PL-DUP-PSK"


def test_unknown_psk() -> None:
    assert external_check({}, [INIT, PSK]) == "PR-PSK-UNKNOWN"


def test_without_path() -> None:
    assert external_check({}, None, drop_path=True) == "CM-NEW-MEMBER-COMMIT-PATH"


def test_real_external_commit_is_accepted() -> None:
    # the positive case of the helper: re-signing the unchanged commit keeps it valid
    a, b, _ = make_group()
    ident = identity("x")
    joiner, data = Group.external_join(a.group_info(), ident, config("x"))
    b.process(data)
    assert b.epoch_authenticator == joiner.epoch_authenticator


def test_signed_by_a_key_other_than_the_path_leafs() -> None:
    a, b, _ = make_group()
    commit, _ = real_external_commit(a, "x")
    msg = forge_external(b, commit, identity("not x"))
    before = snapshot(b)
    with pytest.raises(CryptoError):
        b.process(msg)
    assert snapshot(b) == before


def test_external_init_kem_output_of_another_joiner() -> None:
    # x's path with y's ExternalInit: the members derive y's init_secret, the
    # confirmation tag (computed by x) does not verify
    a, b, _ = make_group()
    commit, joiner = real_external_commit(a, "x")
    other, _ = real_external_commit(a, "y")
    items = tuple(p for p in other.proposals if isinstance(p, ExternalInit))
    msg = forge_external(b, replace(commit, proposals=items), joiner)
    assert check_of(lambda: b.process(msg), b) == "CM-CONFIRMATION-TAG"


@pytest.mark.parametrize("kem_output", [bytes(32), b"\x01", b""], ids=["zero", "short", "empty"])
def test_external_init_kem_output_not_a_public_key(kem_output: bytes) -> None:
    a, b, _ = make_group()
    commit, joiner = real_external_commit(a, "x")
    items = tuple(ExternalInit(kem_output) if isinstance(p, ExternalInit) else p
                  for p in commit.proposals)
    msg = forge_external(b, replace(commit, proposals=items), joiner)
    before = snapshot(b)
    with pytest.raises(CryptoError):
        b.process(msg)
    assert snapshot(b) == before


def test_resync_by_another_client() -> None:
    a, b, c = make_group()
    # mallory (a valid basic credential) removes m2 in a "resync" external commit
    _, data = Group.external_join(a.group_info(), identity("mallory"), config("mallory"),
                                  remove_prior=c.own_leaf)
    assert check_of(lambda: b.process(data), b) == "EC-RESYNC-CREDENTIAL"


def test_resync_by_the_same_client_is_accepted() -> None:
    a, b, c = make_group()
    joiner, data = Group.external_join(a.group_info(), identity("m2"), config("m2 again"),
                                       remove_prior=c.own_leaf)
    b.process(data)
    assert b.epoch_authenticator == joiner.epoch_authenticator
