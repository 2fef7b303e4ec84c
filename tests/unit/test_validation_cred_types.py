"""RFC 9420 §7.3 LN-CRED-TYPE-SUPPORTED, both halves, for Add and for Update:

  (a) "Verify that the credential type is supported by all members of the group, as
      specified by the capabilities field of each member's LeafNode";
  (b) "Verify that the capabilities field of this LeafNode indicates support for all the
      credential types currently in use by other members."

Each half fires for an Add (committer and receiver agree, `commit_check`) and for an
Update (on receipt by every member, and at commit time if it reached the cache:
`update_check`), and each failing case has a passing twin that differs only in the
capability or credential at stake, so the check is seen to decide, not to refuse
everything. The Update path has a shortcut (mlsvc.group.proposals
.check_leaf_against_members): when the new leaf keeps the credential type of the leaf it
replaces and lists every credential type that leaf listed, nothing either half depends
on changed; tests below show the shortcut taken and not taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import pytest

from mlsvc.group.config import Identity
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.proposals import ResolvedProposal, check_leaf_against_members
from mlsvc.messages.codepoints import CredentialType, LeafNodeSource
from mlsvc.messages.credentials import Certificate, X509Credential
from mlsvc.messages.framing import Sender
from mlsvc.messages.leaf_node import Capabilities, LeafNode
from mlsvc.messages.proposals import Add, Update
from mlsvc.types import LeafIndex
from tests.unit.validation_helpers import (
    CS,
    SUITE,
    check_of,
    commit_check,
    config,
    forge_proposal,
    identity,
    leaf_for,
    member_leaf,
)

BASIC, X509 = CredentialType.BASIC, CredentialType.X509
BOTH = (BASIC, X509)


def caps(*credentials: int) -> Capabilities:
    return Capabilities((1,), (SUITE,), (), (), tuple(credentials))


def ident(name: str, cred: int) -> Identity:
    """Client `name` with a basic or an (unparsed) X.509 credential, same signature key."""
    base = identity(name)
    if cred == BASIC:
        return base
    return replace(base, credential=X509Credential((Certificate(name.encode()),)))


def accept_all(credential: object, signature_key: bytes) -> bool:
    return True


def group_of(members: Sequence[tuple[int, tuple[int, ...]]]) -> list[Group]:
    """Members m0..m{n-1} with (credential type, credential capabilities) each: m0
    creates the group and adds the others in one commit; every AS accepts X.509."""
    cfgs = [config(f"m{i}", credential_validator=accept_all) for i in range(len(members))]
    (c0, k0), *rest = members
    alice = Group.create(CS, ident("m0", c0), cfgs[0], group_id=b"cred types",
                         capabilities=caps(*k0))
    bundles = [create_key_package(CS, ident(f"m{i}", c), cfgs[i], capabilities=caps(*k))
               for i, (c, k) in enumerate(rest, 1)]
    for b in bundles:
        alice.propose_add(b)
    out = alice.commit(force_path=True)
    alice.merge_pending_commit()
    assert out.welcome is not None
    return [alice, *(Group.join(out.welcome, b, cfgs[i]) for i, b in enumerate(bundles, 1))]


def add_of(cred: int, credentials: tuple[int, ...]) -> Add:
    return Add(create_key_package(CS, ident("d", cred), config("d"),
                                  capabilities=caps(*credentials)).key_package)


def commit_and_process(a: Group, others: Sequence[Group], proposals: Sequence[Add]) -> None:
    out = a.commit(list(proposals))
    a.merge_pending_commit()
    for g in others:
        g.process(out.commit)
        assert g.epoch_authenticator == a.epoch_authenticator


# --- Add ---------------------------------------------------------------------------------


def test_add_whose_credential_type_a_member_does_not_support() -> None:
    """(a) for an Add: d uses X.509; m2 lists only basic."""
    a, b, _ = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, (BASIC,))])
    assert commit_check(a, b, [add_of(X509, BOTH)]) == "LN-CRED-TYPE-SUPPORTED"


def test_add_of_a_type_every_member_supports_is_accepted() -> None:
    """(a)'s twin: the same X.509 KeyPackage once m2 lists X.509 too."""
    a, b, c = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, BOTH)])
    commit_and_process(a, [b, c], [add_of(X509, BOTH)])
    assert X509 in {leaf.credential.credential_type for _, leaf in a.tree.leaves()}


def test_add_that_does_not_support_a_type_in_use() -> None:
    """(b) for an Add: m1 uses X.509; d lists only basic."""
    a, b, _ = group_of([(BASIC, BOTH), (X509, BOTH), (BASIC, BOTH)])
    assert commit_check(a, b, [add_of(BASIC, (BASIC,))]) == "LN-CRED-TYPE-SUPPORTED"


def test_add_that_supports_every_type_in_use_is_accepted() -> None:
    """(b)'s twin: the same basic KeyPackage listing X.509 as well."""
    a, b, c = group_of([(BASIC, BOTH), (X509, BOTH), (BASIC, BOTH)])
    commit_and_process(a, [b, c], [add_of(BASIC, BOTH)])
    assert len(list(a.tree.leaves())) == 4


def test_second_add_checked_against_the_first() -> None:
    """(b) between two Adds of one commit: the first brings X.509 into use, the second
    lists only basic (the member index grows as Adds are applied)."""
    a, b = group_of([(BASIC, BOTH), (BASIC, BOTH)])
    first = add_of(X509, BOTH)
    second = Add(create_key_package(CS, ident("e", BASIC), config("e"),
                                    capabilities=caps(BASIC)).key_package)
    assert commit_check(a, b, [first, second]) == "LN-CRED-TYPE-SUPPORTED"


# --- Update ------------------------------------------------------------------------------


def update_check(group: list[Group], leaf: LeafNode) -> str:
    """m1 proposes Update(leaf): every other member refuses it on receipt, and m0
    refuses to commit it if it reached its proposal cache anyway, with one check ID."""
    a, b, *rest = group
    update = Update(leaf)
    msg, ref = forge_proposal(b, update)
    on_receipt = check_of(lambda: a.process(msg), a)
    for g in rest:
        assert check_of(partial(g.process, msg), g) == on_receipt
    a.state.proposals[ref] = ResolvedProposal(update, Sender.member(b.own_leaf), ref)
    assert check_of(lambda: a.commit(), a) == on_receipt
    return on_receipt


def update_accepted(group: list[Group], leaf: LeafNode) -> None:
    """m1's Update(leaf) is accepted on receipt, committed by m0 and processed by all."""
    a, b, *rest = group
    msg, _ = forge_proposal(b, Update(leaf))
    for g in (a, *rest):
        g.process(msg)
    out = a.commit()
    a.merge_pending_commit()
    for g in rest:
        g.process(out.commit)
        assert g.epoch_authenticator == a.epoch_authenticator
    assert a.tree.leaf(b.own_leaf) == leaf


def new_leaf(g: Group, cred: int, credentials: tuple[int, ...]) -> LeafNode:
    return leaf_for(g, LeafNodeSource.UPDATE, signer=ident(f"m{g.own_leaf}", cred),
                    capabilities=caps(*credentials))


def test_update_to_a_credential_type_a_member_does_not_support() -> None:
    """(a) for an Update: m1 moves from basic to X.509; m2 lists only basic. The
    credential type changes, so the shortcut is not taken."""
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, (BASIC,))])
    assert update_check(group, new_leaf(group[1], X509, BOTH)) == "LN-CRED-TYPE-SUPPORTED"


def test_update_to_a_type_every_member_supports_is_accepted() -> None:
    """(a)'s twin: the same move once m2 lists X.509."""
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, BOTH)])
    update_accepted(group, new_leaf(group[1], X509, BOTH))


def test_update_that_drops_a_type_in_use() -> None:
    """(b) for an Update: m2 uses X.509; m1's new leaf keeps basic but lists only basic.
    It lists less than the leaf it replaces, so the shortcut is not taken."""
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (X509, BOTH)])
    assert update_check(group, new_leaf(group[1], BASIC, (BASIC,))) == "LN-CRED-TYPE-SUPPORTED"


def test_update_that_drops_a_type_nobody_uses_is_accepted() -> None:
    """(b)'s twin: the same narrower leaf when no member uses X.509 (the shortcut is not
    taken, and the scan finds nothing)."""
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, BOTH)])
    update_accepted(group, new_leaf(group[1], BASIC, (BASIC,)))


def test_update_keeping_type_and_capabilities_is_accepted() -> None:
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (X509, BOTH)])
    update_accepted(group, new_leaf(group[1], BASIC, BOTH))


# --- the Update shortcut itself (check_leaf_against_members) -----------------------------


def _tree_with_unsupported_member(
    m2_credentials: tuple[int, ...],
) -> tuple[Group, LeafIndex, LeafNode]:
    """m1's basic leaf in a tree where m2 (a basic member) lists only `m2_credentials`:
    a state that §7.3 never lets arise, built by editing the tree, so that the member
    scan, when it runs, is certain to fire for the leaf the test checks."""
    group = group_of([(BASIC, BOTH), (BASIC, BOTH), (BASIC, BOTH)])
    a = group[0]
    m2 = member_leaf(a, group[2].own_leaf)
    a.tree.update_leaf(group[2].own_leaf, replace(m2, capabilities=caps(*m2_credentials)))
    return a, group[1].own_leaf, member_leaf(a, group[1].own_leaf)


@pytest.mark.parametrize("credentials", [BOTH, (BASIC, X509, 0xF000)],
                         ids=["same-capabilities", "more-capabilities"])
def test_shortcut_taken_when_type_kept_and_capabilities_not_narrowed(
    credentials: tuple[int, ...],
) -> None:
    """Same credential type, credential capabilities a superset of the previous leaf's:
    the member scan is skipped (it would fire in this edited tree: m2 does not list
    basic)."""
    a, skip, previous = _tree_with_unsupported_member((X509,))
    leaf = replace(previous, encryption_key=b"k" * 32, capabilities=caps(*credentials))
    check_leaf_against_members(a.tree, leaf, skip, previous)
    # the scan it skipped would have fired: with no previous leaf it runs
    assert check_of(partial(check_leaf_against_members, a.tree, leaf, skip, None)
                    ) == "LN-CRED-TYPE-SUPPORTED"


@pytest.mark.parametrize(("cred", "credentials", "m2_credentials"),
                         [(BASIC, (BASIC,), (X509,)), (X509, BOTH, (BASIC,))],
                         ids=["narrower-capabilities", "other-credential-type"])
def test_shortcut_not_taken_otherwise(
    cred: int, credentials: tuple[int, ...], m2_credentials: tuple[int, ...],
) -> None:
    """Fewer credential capabilities than the previous leaf, or another credential
    type: the scan runs (and fires: m2 does not list the new leaf's type)."""
    a, skip, previous = _tree_with_unsupported_member(m2_credentials)
    leaf = replace(previous, encryption_key=b"k" * 32, capabilities=caps(*credentials),
                   credential=ident("m1", cred).credential)
    assert check_of(partial(check_leaf_against_members, a.tree, leaf, skip, previous)
                    ) == "LN-CRED-TYPE-SUPPORTED"
    # without a previous leaf (a new path leaf of an external commit) the scan runs too
    assert check_of(partial(check_leaf_against_members, a.tree, leaf, skip, None)
                    ) == "LN-CRED-TYPE-SUPPORTED"


def test_update_is_judged_without_the_leaf_it_replaces() -> None:
    """§7.3 compares the new leaf with the *other* members: m1's old leaf lists only
    basic, its new X.509 leaf lists both, everyone else lists both. The old leaf is
    being replaced, so it neither has to support X.509 nor keeps basic "in use"; the
    Update is valid on receipt and at commit time alike."""
    group = group_of([(BASIC, BOTH), (BASIC, (BASIC,)), (BASIC, BOTH)])
    update_accepted(group, new_leaf(group[1], X509, BOTH))
