"""The engine's extension points (GroupConfig): rules for non-default proposal types,
message and proposal-list validators, additional epoch secrets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pytest

from mlsvc.codec import Reader, Writer
from mlsvc.crypto.random import SeededRandom
from mlsvc.errors import StateError, ValidationError
from mlsvc.group.config import GroupConfig, ProposalTypeRule
from mlsvc.group.events import CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.messages.commit import Commit
from mlsvc.messages.extensions import Extension, Extensions
from mlsvc.messages.group_info import GroupContext
from mlsvc.messages.proposals import Proposal, register_proposal_class
from tests.unit.test_group import agree, bundle, identity

NOTE_TYPE = 0xF0A0  # a private-use proposal type for this test
NOTE_EXT = 0xF0A1


@dataclass(frozen=True, slots=True)
class Note(Proposal):
    """struct { opaque text<V>; } Note; sets extension NOTE_EXT to the text."""

    text: bytes
    PROPOSAL_TYPE: ClassVar[int] = NOTE_TYPE

    def write(self, w: Writer) -> None:
        w.opaque(self.text)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


register_proposal_class(Note)


def apply_note(extensions: Extensions, proposals: Sequence[Proposal]) -> Extensions:
    """The last Note's text wins."""
    last = proposals[-1]
    assert isinstance(last, Note)
    kept = tuple(e for e in extensions if e.extension_type != NOTE_EXT)
    return (*kept, Extension(NOTE_EXT, last.text))


def cfg(name: str, **kw: Any) -> GroupConfig:
    base: dict[str, Any] = {
        "rng": SeededRandom(name.encode()),
        "supported_extensions": (NOTE_EXT,),
        "proposal_types": {NOTE_TYPE: ProposalTypeRule(path_required=False,
                                                        external_commit_allowed=True,
                                                        apply=apply_note)},
    }
    base.update(kw)
    return GroupConfig(**base)


def pair(**kw: Any) -> tuple[Group, Group]:
    a = Group.create(1, identity(1, "a"), cfg("a", **kw))
    b_kp = bundle(1, "b", cfg("b", **kw))
    a.propose_add(b_kp)
    out = a.commit()
    a.merge_pending_commit()
    assert out.welcome is not None
    return a, Group.join(out.welcome, b_kp, cfg("bj", **kw))


def test_custom_proposal_type_changes_the_context_without_a_path() -> None:
    a, b = pair()
    prop = a._propose(Note(b"hello"), b"")
    assert isinstance(b.process(prop), ProposalReceived)
    out = b.commit()
    b.merge_pending_commit()
    ev = a.process(out.commit)
    assert isinstance(ev, CommitApplied)
    agree(a, b)
    assert Extension(NOTE_EXT, b"hello") in a.context.extensions
    from mlsvc.messages.framing import PublicMessage
    from mlsvc.messages.mls_message import MLSMessage

    body = MLSMessage.decode(out.commit).body
    assert isinstance(body, PublicMessage)
    commit = body.content.content
    assert isinstance(commit, Commit) and commit.path is None


def test_unsupported_custom_type_requires_support_from_every_member() -> None:
    a = Group.create(1, identity(1, "a"), cfg("a"))
    plain = GroupConfig(rng=SeededRandom(b"p"))
    b_kp = bundle(1, "b", plain)  # b's capabilities list no NOTE_TYPE
    a.propose_add(b_kp)
    out = a.commit()
    a.merge_pending_commit()
    assert out.welcome is not None
    with pytest.raises(ValidationError) as err:
        a.commit([Note(b"x")])
    assert err.value.check_id == "PL-UNSUPPORTED-TYPE"


def test_message_validator_runs_before_unprotection() -> None:
    def only_empty(context: GroupContext, aad: bytes) -> None:
        if aad:
            raise ValidationError("MSG-GROUP", "test validator refuses non-empty aad")

    a, b = pair(message_validator=only_empty)
    before = b.epoch_authenticator
    with pytest.raises(ValidationError):
        b.process(a.encrypt(b"data", b"aad"))
    assert b.epoch_authenticator == before
    b.process(a.encrypt(b"data"))


def test_proposal_list_validator_runs_on_both_sides() -> None:
    calls: list[int] = []

    def no_notes(old: Extensions, new: Extensions, proposals: object, members: object) -> None:
        calls.append(1)
        if any(e.extension_type == NOTE_EXT for e in new):
            raise ValidationError("PL-UNSUPPORTED-TYPE", "application forbids notes")

    a, _ = pair(proposal_list_validator=no_notes)
    with pytest.raises(ValidationError):
        a.commit([Note(b"x")])
    assert not a.has_pending_commit
    assert calls


def test_take_epoch_secret_hands_it_over_once() -> None:
    a, b = pair(additional_epoch_secrets=(b"application_export",))
    secret = a.take_epoch_secret(b"application_export")
    assert secret == b.take_epoch_secret(b"application_export")
    with pytest.raises(StateError):
        a.take_epoch_secret(b"application_export")
