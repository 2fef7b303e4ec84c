"""Reinitialization (RFC 9420 §11.2) and subgroup branching (§11.3): the new group's
first commit carries the reinit/branch resumption PSK, and joiners run the §12.4.3.1
checks against the old group."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import StateError, ValidationError
from mlsvc.group.group import Group
from mlsvc.group.join import join_from_welcome, open_welcome
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.messages.codepoints import ResumptionPSKUsage
from mlsvc.messages.group_info import GroupInfo
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import PreSharedKey, PreSharedKeyID, ReInit
from mlsvc.messages.welcome import GroupSecrets, Welcome
from tests.unit.test_group import agree, bundle, config, grow, identity
from tests.unit.validation_helpers import resign_group_info, rewrap_welcome

CS = get_suite(1)


def reinitialized() -> tuple[list[Group], ReInit]:
    """a, b, c in a group whose last commit carried a ReInit."""
    a, b, c = grow(1, 3)
    prop = a.propose_reinit(b"the new group", 1)
    for g in (b, c):
        g.process(prop)
    out = b.commit()
    b.merge_pending_commit()
    for g in (a, c):
        g.process(out.commit)
    assert all(not g.active and g.reinit is not None for g in (a, b, c))
    assert b.reinit is not None
    return [a, b, c], b.reinit


def test_reinit_creates_the_linked_group_and_members_join() -> None:
    (a, b, c), _ = reinitialized()
    kp_a, kp_b = bundle(1, "m0", config("m0 new")), bundle(1, "m1", config("m1 new"))
    new, out = Group.reinit_group(c, [kp_a, kp_b], identity(1, "m2"), config("c-new"))
    new.merge_pending_commit()
    assert out.welcome is not None and new.epoch == 1
    assert new.group_id == b"the new group"
    # the new members match the old ones by identity: the default credential_successor
    a2 = Group.join(out.welcome, kp_a, config("a2"), resumption_from=a)
    b2 = Group.join(out.welcome, kp_b, config("b2"), resumption_from=b)
    agree(new, a2, b2)


def test_a_reinit_welcome_needs_the_old_group() -> None:
    (_, _, c), _ = reinitialized()
    kp_a = bundle(1, "m0", config("m0 new"))
    _, out = Group.reinit_group(c, [kp_a, bundle(1, "m1", config("m1 new"))], identity(1, "m2"),
                                config("c-new"))
    assert out.welcome is not None
    with pytest.raises(ValidationError) as err:
        Group.join(out.welcome, kp_a, config("a2"))
    assert err.value.check_id == "WEL-PSK"


def test_reinit_leaving_out_an_old_member_is_refused() -> None:
    (a, _, c), _ = reinitialized()
    kp_a = bundle(1, "m0", config("m0 new"))
    _, out = Group.reinit_group(c, [kp_a], identity(1, "m2"), config("c-new"))  # no b
    assert out.welcome is not None
    with pytest.raises(ValidationError) as err:
        Group.join(out.welcome, kp_a, config("a2"), resumption_from=a)
    assert err.value.check_id == "WEL-REINIT-MEMBERS"


@pytest.mark.parametrize("change", ["no-reinit", "other-suite"])
def test_reinit_welcome_must_match_the_reinit_proposal(change: str) -> None:
    (a, _, c), reinit = reinitialized()
    kp_a = bundle(1, "m0", config("m0 new"))
    _, out = Group.reinit_group(c, [kp_a, bundle(1, "m1", config("m1 new"))], identity(1, "m2"),
                                config("c-new"))
    assert out.welcome is not None
    prior = a._prior()
    prior = (replace(prior, reinit=None) if change == "no-reinit"
             else replace(prior, reinit=replace(reinit, cipher_suite=3)))
    with pytest.raises(ValidationError) as err:
        join_from_welcome(out.welcome, kp_a, config("a2"), None, prior)
    assert err.value.check_id == "WEL-REINIT-MISMATCH"


def test_reinit_only_after_a_committed_reinit() -> None:
    a, _ = grow(1, 2)
    with pytest.raises(StateError):
        Group.reinit_group(a, [bundle(1, "x")])


def test_branch_into_a_subgroup() -> None:
    a, b, c = grow(1, 3)
    stranger = bundle(1, "not a member")
    sub, out = Group.branch(a, [stranger], group_id=b"subgroup")
    sub.merge_pending_commit()
    assert out.welcome is not None and sub.epoch == 1
    with pytest.raises(ValidationError) as err:  # the branch names a non-member
        Group.join(out.welcome, stranger, config("s"), resumption_from=b)
    assert err.value.check_id == "WEL-BRANCH-MEMBERS"
    same = bundle(1, "m1", config("m1 again"))  # b's identity, a new KeyPackage
    sub, out = Group.branch(a, [same], group_id=b"subgroup 2")
    sub.merge_pending_commit()
    assert out.welcome is not None
    b_sub = Group.join(out.welcome, same, config("b-sub"), resumption_from=b)
    agree(sub, b_sub)
    assert c.active  # the old group goes on


def test_branch_must_keep_the_cipher_suite() -> None:
    a, b, _ = grow(1, 3)
    same = bundle(1, "m1", config("m1 again"))
    _, out = Group.branch(a, [same], group_id=b"subgroup")
    assert out.welcome is not None
    prior = replace(b._prior(), cipher_suite=3)
    with pytest.raises(ValidationError) as err:
        join_from_welcome(out.welcome, same, config("b-sub"), None, prior)
    assert err.value.check_id == "WEL-BRANCH-MISMATCH"


def linked_welcome() -> tuple[Group, Group, bytes, KeyPackageBundle, bytes]:
    """A branch Welcome of a's group for b (as the KeyPackage `same`), and the PSK
    secret its welcome key depends on."""
    a, b, _ = grow(1, 3)
    same = bundle(1, "m1", config("m1 again"))
    _, out = Group.branch(a, [same], group_id=b"subgroup")
    assert out.welcome is not None
    w = MLSMessage.decode(out.welcome).body
    assert isinstance(w, Welcome)
    opened = open_welcome(CS, w, same.key_package, same.init_private_key, {},
                          b.state.resumption_psks)
    assert opened.psk_secret is not None and opened.linking_psk is not None
    return a, b, out.welcome, same, opened.psk_secret


def test_a_linked_welcome_at_another_epoch_is_refused() -> None:
    a, b, welcome, same, secret = linked_welcome()
    creator = a.state.identity

    def epoch_2(gi: GroupInfo) -> GroupInfo:
        return resign_group_info(gi, creator, group_context=replace(gi.group_context, epoch=2))

    bad = rewrap_welcome(welcome, same, group_info=epoch_2, psk_secret=secret)
    with pytest.raises(ValidationError) as err:
        Group.join(bad, same, config("b-sub"), resumption_from=b)
    assert err.value.check_id == "WEL-LINK-EPOCH"


def test_two_linking_psks_are_refused() -> None:
    a, b, welcome, same, secret = linked_welcome()
    extra = PreSharedKeyID.resumption(ResumptionPSKUsage.REINIT, a.group_id, a.epoch,
                                      bytes(CS.nh))

    def two(gs: GroupSecrets) -> GroupSecrets:
        return replace(gs, psks=(*gs.psks, extra))

    bad = rewrap_welcome(welcome, same, secrets=two, psk_secret=secret)
    with pytest.raises(ValidationError) as err:
        Group.join(bad, same, config("b-sub"), resumption_from=b)
    assert err.value.check_id == "WEL-LINK-PSK-UNIQUE"


def test_a_reinit_psk_proposal_in_an_existing_group_is_invalid() -> None:
    """§11.2: "A PreSharedKey proposal with type resumption and usage reinit MUST be
    considered invalid" (the linking PSK exists only in a new group's first commit)."""
    a, _ = grow(1, 2)
    psk = PreSharedKeyID.resumption(ResumptionPSKUsage.REINIT, a.group_id, a.epoch,
                                    bytes(CS.nh))
    with pytest.raises(ValidationError) as err:
        a.commit([PreSharedKey(psk)])
    assert err.value.check_id == "PR-PSK-USAGE"
