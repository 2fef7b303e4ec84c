"""Several members driven through random adds, removes, updates, commits, external
joins, PSKs, messages and save/restore; after every step all members agree on epoch,
tree hash, epoch authenticator and exporter output, and every application message
decrypts for every member (issue 3)."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mlsvc.crypto.random import SeededRandom
from mlsvc.group.config import GroupConfig
from mlsvc.group.events import ApplicationMessage, CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.group.serialize import load, save
from mlsvc.messages.proposals import Remove
from tests.unit.test_group import bundle, identity

PSKS = {b"shared-psk": b"a value every member knows"}
MAX_MEMBERS = 7


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.members: list[Group] = []
        self.counter = 0
        self.suite = 1

    def _config(self, name: str, encrypt: bool) -> GroupConfig:
        return GroupConfig(rng=SeededRandom(name.encode()), external_psks=PSKS,
                           encrypt_handshake=encrypt)

    def _name(self) -> str:
        self.counter += 1
        return f"member-{self.counter}"

    @initialize(suite=st.sampled_from([1, 2, 3]), encrypt=st.booleans())
    def start(self, suite: int, encrypt: bool) -> None:
        self.suite, self.encrypt = suite, encrypt
        name = self._name()
        self.members = [Group.create(suite, identity(suite, name), self._config(name, encrypt))]

    def _deliver(self, sender: Group, message: bytes) -> None:
        for g in self.members:
            if g is not sender:
                ev = g.process(message)
                assert isinstance(ev, ProposalReceived | CommitApplied)

    def _commit(self, committer: Group, **kw: Any) -> None:
        out = committer.commit(**kw)
        committer.merge_pending_commit()
        survivors = []
        for g in self.members:
            if g is committer:
                survivors.append(g)
                continue
            ev = g.process(out.commit)
            assert isinstance(ev, CommitApplied)
            if not ev.removed_self:
                survivors.append(g)
            else:
                assert not g.active
        self.members = survivors
        self._pending_welcome = out.welcome

    @precondition(lambda self: len(self.members) < MAX_MEMBERS)
    @rule(data=st.data(), k=st.integers(min_value=1, max_value=2))
    def add(self, data: st.DataObject, k: int) -> None:
        committer = data.draw(st.sampled_from(self.members))
        bundles = []
        for _ in range(min(k, MAX_MEMBERS - len(self.members))):
            name = self._name()
            bundles.append((name, bundle(self.suite, name, self._config(name, self.encrypt))))
            self._deliver(committer, committer.propose_add(bundles[-1][1]))
        self._commit(committer)
        assert self._pending_welcome is not None
        for name, b in bundles:
            self.members.append(Group.join(self._pending_welcome, b,
                                           self._config(name + "-j", self.encrypt)))

    @precondition(lambda self: len(self.members) > 2)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        committer = data.draw(st.sampled_from(self.members))
        victim = data.draw(st.sampled_from([g for g in self.members if g is not committer]))
        self._commit(committer, proposals=[Remove(victim.own_leaf)])

    @precondition(lambda self: len(self.members) > 1)
    @rule(data=st.data())
    def update_then_commit(self, data: st.DataObject) -> None:
        proposer = data.draw(st.sampled_from(self.members))
        self._deliver(proposer, proposer.propose_update())
        committer = data.draw(st.sampled_from([g for g in self.members if g is not proposer]))
        self._commit(committer)

    @rule(data=st.data())
    def empty_commit(self, data: st.DataObject) -> None:
        self._commit(data.draw(st.sampled_from(self.members)))

    @precondition(lambda self: len(self.members) < MAX_MEMBERS)
    @rule(data=st.data())
    def external_join(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(self.members))
        name = self._name()
        joiner, commit = Group.external_join(source.group_info(),
                                             identity(self.suite, name),
                                             self._config(name, self.encrypt))
        for g in self.members:
            assert isinstance(g.process(commit), CommitApplied)
        self.members.append(joiner)

    @rule(data=st.data(), resumption=st.booleans())
    def psk(self, data: st.DataObject, resumption: bool) -> None:
        proposer = data.draw(st.sampled_from(self.members))
        if resumption and proposer.epoch > 0:
            # every current member must hold that epoch's resumption PSK
            oldest = max(g.epoch - len(g.state.resumption_psks) + 1 for g in self.members)
            epoch = max(oldest, proposer.epoch - 1)
            msg = proposer.propose_resumption_psk(epoch)
        else:
            msg = proposer.propose_external_psk(b"shared-psk")
        self._deliver(proposer, msg)
        self._commit(data.draw(st.sampled_from(self.members)))

    @rule(data=st.data(), payload=st.binary(max_size=64))
    def message(self, data: st.DataObject, payload: bytes) -> None:
        sender = data.draw(st.sampled_from(self.members))
        msg = sender.encrypt(payload)
        for g in self.members:
            if g is not sender:
                ev = g.process(msg)
                assert isinstance(ev, ApplicationMessage)
                assert ev.data == payload and ev.sender == sender.own_leaf

    @rule(data=st.data())
    def save_and_restore(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(min_value=0, max_value=len(self.members) - 1))
        g = self.members[i]
        self.members[i] = load(save(g), g.config)

    def teardown(self) -> None:
        if self.members:
            g = self.members[0]
            event(f"final epoch {min(g.epoch, 10)}{'+' if g.epoch >= 10 else ''}")
            event(f"final members {len(self.members)}")

    @invariant()
    def all_agree(self) -> None:
        if not self.members:
            return
        first = self.members[0]
        for g in self.members:
            assert g.active
            assert g.epoch == first.epoch
            assert g.tree.tree_hash() == first.tree.tree_hash()
            assert g.epoch_authenticator == first.epoch_authenticator
            assert g.export_secret(b"agree", b"", 16) == first.export_secret(b"agree", b"", 16)
        assert first.tree.member_count() == len(self.members)


profile = os.environ.get("HYPOTHESIS_PROFILE", "dev")
GroupMachine.TestCase.settings = settings(
    max_examples={"ci": 40, "long": 400}.get(profile, 15),
    stateful_step_count={"long": 40}.get(profile, 15),
    deadline=None,
)
TestGroupMachine = GroupMachine.TestCase
