"""A plain RFC 9420 group session on the in-process default (no network), run from a fixed
seed so it prints the same epoch authenticators every time. It was part 4 of `mlsvc demo`
before the virtual-client story (mlsvc.story) replaced it; kept as the shortest example of
the group engine's API (tests/unit/test_demo.py runs it)."""

from __future__ import annotations

import hashlib
import time

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import get_suite
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import create_key_package
from mlsvc.group.serialize import load, save
from mlsvc.messages.proposals import Remove


def _identity(suite: int, name: str) -> Identity:
    cs = get_suite(suite)
    return Identity.basic(name.encode(),
                          cs.signature.derive_key_pair(hashlib.sha512(name.encode()).digest()))


def _config(name: str) -> GroupConfig:
    return GroupConfig(rng=SeededRandom(b"mlsvc demo " + name.encode()))


def _agree(groups: list[Group]) -> bool:
    first = groups[0]
    return all(g.epoch == first.epoch and g.epoch_authenticator == first.epoch_authenticator
               and g.tree.tree_hash() == first.tree.tree_hash() for g in groups)


def run_session(suite: int = 1, size: int = 8) -> bool:
    """Create, add size-1 members by Welcome, message, commit, remove, external join,
    save and restore; print what happened; return whether everyone always agreed."""
    cs = get_suite(suite)
    t0 = time.perf_counter()
    alice = Group.create(cs, _identity(suite, "alice"), _config("alice"))
    names = [f"member-{i}" for i in range(1, size)]
    bundles = [create_key_package(cs, _identity(suite, n), _config(n + " kp")) for n in names]
    for b in bundles:
        alice.propose_add(b)
    out = alice.commit()
    alice.merge_pending_commit()
    assert out.welcome is not None
    members = [alice] + [Group.join(out.welcome, b, _config(n)) for n, b in zip(names, bundles,
                                                                              strict=True)]
    ok = _agree(members)
    print(f"  suite 0x{suite:04x}: alice created the group and added {size - 1} members "
          f"in one commit; epoch {alice.epoch}, all agree: {ok}")

    msg = members[3].encrypt(b"hello from member-3")
    got = [g.process(msg) for g in members if g is not members[3]]
    ok_msg = all(isinstance(e, ApplicationMessage) and e.data == b"hello from member-3"
                 for e in got)
    print(f"  member-3 sent an application message: {len(got)} members decrypted it: {ok_msg}")

    committer = members[-1]
    out = committer.commit(force_path=True)
    committer.merge_pending_commit()
    for g in members:
        if g is not committer:
            g.process(out.commit)
    ok_commit = _agree(members)
    print(f"  {names[-1]} committed a new path: epoch {committer.epoch}, all agree: {ok_commit}")

    victim = members[2]
    out = alice.commit([Remove(victim.own_leaf)])
    alice.merge_pending_commit()
    removed = [g.process(out.commit) for g in members if g is not alice]
    members = [g for g in members if g is not victim]
    ok_remove = _agree(members) and any(
        isinstance(e, CommitApplied) and e.removed_self for e in removed)
    print(f"  alice removed member-2 (it learned so and stopped): epoch {alice.epoch}, "
          f"{len(members)} members agree: {ok_remove}")

    joiner, commit = Group.external_join(members[1].group_info(),
                                         _identity(suite, "late-joiner"), _config("late"))
    for g in members:
        g.process(commit)
    members.append(joiner)
    ok_join = _agree(members)
    print(f"  late-joiner joined by external commit: epoch {joiner.epoch}, all agree: {ok_join}")

    restored = load(save(members[1]), members[1].config)
    members[1] = restored
    msg = restored.encrypt(b"after a restart")
    ok_restore = all(isinstance(g.process(msg), ApplicationMessage)
                     for g in members if g is not restored)
    print(f"  a member saved its state, restarted and sent again: delivered to all: "
          f"{ok_restore}")
    print(f"  epoch authenticator {alice.epoch_authenticator.hex()[:32]}... "
          f"({(time.perf_counter() - t0) * 1e3:.0f} ms)")
    return ok and ok_msg and ok_commit and ok_remove and ok_join and ok_restore
