"""RFC 9420 §12.2 proposal list validation (PL-*) and the rules on individual
proposals of §12.1 / §8.4 / §8.6 (PR-*), on both sides of a commit: `Group.commit`
must refuse the list, and a receiver must refuse a correctly signed and MACed commit
carrying it. Proposals sent on their own are checked when received where the engine
does so (PSK IDs, sender types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import pytest

from mlsvc.codec import Reader, Writer
from mlsvc.group.group import Group
from mlsvc.group.proposals import ResolvedProposal
from mlsvc.messages import proposals as proposals_module
from mlsvc.messages.codepoints import LeafNodeSource, ProtocolVersion, ResumptionPSKUsage
from mlsvc.messages.commit import Commit, UpdatePath
from mlsvc.messages.credentials import BasicCredential
from mlsvc.messages.extensions import (
    Extension,
    ExternalSender,
    ExternalSenders,
    RequiredCapabilities,
)
from mlsvc.messages.framing import PublicMessage, Sender
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalRef,
    ReInit,
    Remove,
    Update,
)
from mlsvc.types import LeafIndex
from tests.unit.validation_helpers import (
    CS,
    SUITE,
    check_of,
    commit_check,
    config,
    forge,
    forge_proposal,
    identity,
    key_package,
    leaf_for,
    make_group,
    received_check,
)

PSKS = {b"psk-1": b"an external psk value"}
NONCE = bytes(range(CS.nh))


def external_psk(psk_id: bytes = b"psk-1", nonce: bytes = NONCE) -> PreSharedKey:
    return PreSharedKey(PreSharedKeyID.external(psk_id, nonce))


# --- §12.2 regular commits --------------------------------------------------------------


def test_update_by_the_committer() -> None:
    a, b, _ = make_group()
    own_update = Update(leaf_for(a, LeafNodeSource.UPDATE))
    assert commit_check(a, b, [own_update]) == "PL-UPDATE-BY-COMMITTER"


def test_update_proposed_then_committed_by_the_same_member() -> None:
    """The committer leaves its own cached Update out (its path supersedes it, §12.2);
    a commit that references it anyway is refused by the receivers."""
    a, b, _ = make_group()
    b.process(a.propose_update())
    (ref,) = a.state.proposals
    out = a.commit()
    body = MLSMessage.decode(out.commit).body
    assert isinstance(body, PublicMessage)
    built = body.content.content
    assert isinstance(built, Commit) and built.proposals == () and built.path is not None
    a.clear_pending_commit()
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT), ())
    assert received_check(a, b, [ProposalRef(ref)], path) == "PL-UPDATE-BY-COMMITTER"


def test_remove_of_the_committer() -> None:
    a, b, _ = make_group()
    assert commit_check(a, b, [Remove(a.own_leaf)]) == "PL-REMOVE-COMMITTER"


def test_two_removes_of_the_same_leaf() -> None:
    a, b, _ = make_group()
    assert commit_check(a, b, [Remove(LeafIndex(2)), Remove(LeafIndex(2))]) == "PL-SAME-LEAF"


def test_update_and_remove_of_the_same_leaf() -> None:
    a, b, c = make_group()
    msg, ref = forge_proposal(b, Update(leaf_for(b, LeafNodeSource.UPDATE)))
    a.process(msg)
    c.process(msg)
    assert check_of(lambda: a.commit([Remove(b.own_leaf)]), a) == "PL-SAME-LEAF"
    path = UpdatePath(leaf_for(a, LeafNodeSource.COMMIT), ())
    assert received_check(a, c, [ProposalRef(ref), Remove(b.own_leaf)], path) == "PL-SAME-LEAF"


def test_two_adds_of_the_same_client() -> None:
    a, b, _ = make_group()
    kp = key_package("d").key_package
    assert commit_check(a, b, [Add(kp), Add(kp)]) == "PL-DUP-ADD"


def test_two_adds_with_the_same_signature_key() -> None:
    a, b, _ = make_group()
    one = key_package("d").key_package
    two = key_package("d", init_key_pair=CS.kem.derive_key_pair(b"other init")).key_package
    assert one != two
    assert commit_check(a, b, [Add(one), Add(two)]) == "PL-DUP-ADD"


def test_add_of_a_current_member() -> None:
    a, b, _ = make_group()
    again = key_package("m2", init_key_pair=CS.kem.derive_key_pair(b"fresh init")).key_package
    assert commit_check(a, b, [Add(again)]) == "PL-ADD-EXISTING"


def test_add_of_a_member_removed_in_the_same_commit_is_accepted() -> None:
    # §12.2: "... unless there is a Remove proposal in the list removing the matching
    # client from the group"
    a, b, c = make_group()
    again = key_package("m2", init_key_pair=CS.kem.derive_key_pair(b"fresh init"),
                        encryption_key_pair=CS.kem.derive_key_pair(b"fresh leaf"))
    out = a.commit([Remove(c.own_leaf), Add(again.key_package)])
    a.merge_pending_commit()
    b.process(out.commit)
    assert b.epoch_authenticator == a.epoch_authenticator


def test_two_psk_proposals_with_the_same_id() -> None:
    a, b, _ = make_group(external_psks=PSKS)
    assert commit_check(a, b, [external_psk(), external_psk()]) == "PL-DUP-PSK"


def test_two_group_context_extensions() -> None:
    a, b, _ = make_group()
    gce = GroupContextExtensions(())
    assert commit_check(a, b, [gce, gce]) == "PL-DUP-GCE"


@pytest.mark.parametrize("other_first", [False, True])
def test_reinit_with_another_proposal(other_first: bool) -> None:
    a, b, _ = make_group()
    reinit = ReInit(b"new group", ProtocolVersion.MLS10, SUITE, ())
    items: list[Proposal] = [reinit, Remove(LeafIndex(2))]
    if other_first:
        items.reverse()
    assert commit_check(a, b, items) == "PL-REINIT-ALONE"


def test_external_init_in_a_regular_commit_is_refused() -> None:
    # On the wire the sender-type rule (§12.1.8, Table 7) refuses a member's
    # ExternalInit before list validation, so PL-EXTERNAL-INIT itself is only
    # reachable through the proposal cache (next test); either ID is a refusal.
    a, b, _ = make_group()
    init = ExternalInit(b"kem output")
    assert commit_check(a, b, [init]) in {"PR-SENDER-TYPE", "PL-EXTERNAL-INIT"}


def test_external_init_in_the_proposal_cache() -> None:
    # white box: an ExternalInit that reached the cache is refused by list validation
    a, b, _ = make_group()
    init = ExternalInit(b"kem output")
    a.state.proposals[b"\x01" * CS.nh] = ResolvedProposal(init, Sender.member(b.own_leaf),
                                                          b"\x01" * CS.nh)
    assert check_of(lambda: a.commit(), a) == "PL-EXTERNAL-INIT"


@dataclass(frozen=True, slots=True)
class NonDefaultProposal(Proposal):
    """A proposal type outside RFC 9420's (0xf0f0: private use range, §17.4)."""

    data: bytes
    PROPOSAL_TYPE: ClassVar[int] = 0xF0F0

    def write(self, w: Writer) -> None:
        w.opaque(self.data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


def test_non_default_proposal_type_unsupported_by_a_member(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # registered for this test only, so that the receiver can decode it
    monkeypatch.setitem(proposals_module._PROPOSAL_CLASSES, NonDefaultProposal.PROPOSAL_TYPE,
                        NonDefaultProposal)
    a, b, _ = make_group()
    assert commit_check(a, b, [NonDefaultProposal(b"x")]) == "PL-UNSUPPORTED-TYPE"


# --- §12.1 individual proposals ----------------------------------------------------------


@pytest.mark.parametrize("leaf", [LeafIndex(3), LeafIndex(1000)], ids=["past-end", "far"])
def test_remove_of_a_leaf_outside_the_tree(leaf: LeafIndex) -> None:
    a, b, _ = make_group()
    assert commit_check(a, b, [Remove(leaf)]) == "PR-REMOVE-BLANK"


def test_remove_of_a_blank_leaf() -> None:
    a, b, c = make_group()
    out = a.commit([Remove(b.own_leaf)])
    a.merge_pending_commit()
    c.process(out.commit)
    assert a.tree.leaf(LeafIndex(1)) is None
    assert commit_check(a, c, [Remove(LeafIndex(1))]) == "PR-REMOVE-BLANK"


def test_update_from_a_non_member_in_the_proposal_cache() -> None:
    # white box: external senders cannot send Update (PR-SENDER-TYPE on receipt), so an
    # Update with a non-member sender only reaches list validation through the cache
    a, b, _ = make_group()
    upd = Update(leaf_for(b, LeafNodeSource.UPDATE))
    a.state.proposals[b"\x02" * CS.nh] = ResolvedProposal(upd, Sender.external(0),
                                                          b"\x02" * CS.nh)
    assert check_of(lambda: a.commit(), a) == "PR-UPDATE-SENDER"


@pytest.mark.parametrize("length", [0, CS.nh - 1, CS.nh + 1])
def test_psk_nonce_of_the_wrong_length(length: int) -> None:
    a, b, _ = make_group(external_psks=PSKS)
    bad = external_psk(nonce=bytes(length))
    # received as a proposal, committed by value, received in a commit
    msg, _ = forge_proposal(b, bad)
    assert check_of(lambda: a.process(msg), a) == "PR-PSK-NONCE"
    assert commit_check(a, b, [bad]) == "PR-PSK-NONCE"


@pytest.mark.parametrize("usage", [ResumptionPSKUsage.REINIT, ResumptionPSKUsage.BRANCH])
def test_resumption_psk_for_reinit_or_branch_in_a_commit(usage: ResumptionPSKUsage) -> None:
    a, b, _ = make_group()
    psk = PreSharedKey(PreSharedKeyID.resumption(usage, a.group_id, a.epoch, NONCE))
    msg, _ = forge_proposal(b, psk)
    assert check_of(lambda: a.process(msg), a) == "PR-PSK-USAGE"
    assert commit_check(a, b, [psk]) == "PR-PSK-USAGE"


def test_gce_with_an_extension_this_client_does_not_support() -> None:
    a, b, _ = make_group()
    gce = GroupContextExtensions((Extension(0xFF03, b""),))
    assert commit_check(a, b, [gce]) == "PR-GCE-SUPPORTED"


def test_gce_with_an_extension_a_member_does_not_support() -> None:
    # m0 and m1 understand 0xff03, m2's leaf does not list it
    cfgs = {2: config("m2")}
    a, b, _ = make_group(configs=cfgs, supported_extensions=(0xFF03,))
    gce = GroupContextExtensions((Extension(0xFF03, b""),))
    assert commit_check(a, b, [gce]) == "PR-GCE-SUPPORTED"


def test_gce_requiring_a_capability_no_member_has() -> None:
    a, b, _ = make_group()
    required = RequiredCapabilities((), (), (0x0002,)).to_extension()  # x509 credentials
    assert commit_check(a, b, [GroupContextExtensions((required,))]) == "PR-GCE-SUPPORTED"


def test_gce_requirement_unmet_only_by_a_member_removed_in_the_same_commit() -> None:
    a, b, c = make_group(configs={2: config("m2")}, supported_extensions=(0xFF03,))
    required = RequiredCapabilities((0xFF03,), (), ()).to_extension()
    out = a.commit([GroupContextExtensions((required,)), Remove(c.own_leaf)])
    a.merge_pending_commit()
    b.process(out.commit)
    assert b.epoch_authenticator == a.epoch_authenticator


def test_duplicate_extension_types_in_a_gce() -> None:
    a, b, _ = make_group()
    gce = GroupContextExtensions((Extension(0x0001, b"\x00"), Extension(0x0001, b"\x00")))
    assert commit_check(a, b, [gce]) == "PR-EXTENSIONS-UNIQUE"


def test_reinit_to_an_older_version() -> None:
    a, b, _ = make_group()
    reinit = ReInit(b"new group", 0, SUITE, ())  # version 0 ("reserved") < mls10
    assert commit_check(a, b, [reinit]) == "PR-REINIT-VERSION"


# --- §12.1.8 / Table 7: who may send what ---------------------------------------------------

DS = identity("delivery service")


def with_external_sender() -> list[Group]:
    ext = ExternalSenders((ExternalSender(DS.signature_public_key, BasicCredential(b"ds")),))
    return make_group(extensions=(ext.to_extension(),))


def test_new_member_proposal_other_than_add() -> None:
    a, _, _ = make_group()
    msg, _ = forge(a, Remove(LeafIndex(2)), sender=Sender.new_member_proposal(),
                   signer=identity("d").signature_private_key)
    assert check_of(lambda: a.process(msg), a) == "PR-SENDER-TYPE"


@pytest.mark.parametrize("kind", ["update", "external-init"])
def test_external_sender_proposal_of_a_forbidden_type(kind: str) -> None:
    a, b, _ = with_external_sender()
    prop: Proposal = (Update(leaf_for(b, LeafNodeSource.UPDATE)) if kind == "update"
                      else ExternalInit(b"kem output"))
    msg, _ = forge(a, prop, sender=Sender.external(0), signer=DS.signature_private_key)
    assert check_of(lambda: a.process(msg), a) == "PR-SENDER-TYPE"


def test_external_sender_remove_is_accepted() -> None:
    # the positive case of the helper: an allowed external proposal is cached
    a, _, _ = with_external_sender()
    msg, _ = forge(a, Remove(LeafIndex(2)), sender=Sender.external(0),
                   signer=DS.signature_private_key)
    a.process(msg)
    assert len(a.state.proposals) == 1


def test_new_member_proposal_add_is_accepted() -> None:
    # §12.1.8: a new_member_proposal Add, signed with the KeyPackage's key
    a, _, _ = make_group()
    d = key_package("d")
    msg, _ = forge(a, Add(d.key_package), sender=Sender.new_member_proposal(),
                   signer=d.identity.signature_private_key)
    a.process(msg)
    assert len(a.state.proposals) == 1


def test_member_proposes_external_init() -> None:
    a, b, _ = make_group()
    msg, _ = forge_proposal(b, ExternalInit(b"kem output"))
    assert check_of(lambda: a.process(msg), a) == "PR-SENDER-TYPE"
