"""The group engine end to end among our own clients (RFC 9420 §11-§13)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mlsvc.crypto.random import SeededRandom
from mlsvc.crypto.suites import SUITES, get_suite
from mlsvc.errors import StateError, ValidationError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle, create_key_package
from mlsvc.messages.extensions import ApplicationId
from mlsvc.messages.proposals import GroupContextExtensions, Remove
from mlsvc.types import LeafIndex


def config(name: str, **kw: Any) -> GroupConfig:
    return GroupConfig(rng=SeededRandom(name.encode()), **kw)


def identity(suite: int, name: str) -> Identity:
    cs = get_suite(suite)
    return Identity.basic(name.encode(), cs.signature.derive_key_pair(
        hashlib.sha512(name.encode()).digest()))


def bundle(suite: int, name: str, cfg: GroupConfig | None = None) -> KeyPackageBundle:
    return create_key_package(get_suite(suite), identity(suite, name), cfg or config(name))


def agree(*groups: Group) -> None:
    first = groups[0]
    for g in groups[1:]:
        assert g.epoch == first.epoch
        assert g.tree.tree_hash() == first.tree.tree_hash()
        assert g.epoch_authenticator == first.epoch_authenticator
        assert g.export_secret(b"test", b"ctx", 32) == first.export_secret(b"test", b"ctx", 32)


def grow(suite: int, n: int, **kw: Any) -> list[Group]:
    """A group of n members created by adding n-1 in one commit."""
    alice = Group.create(suite, identity(suite, "m0"), config("m0", **kw))
    bundles = [bundle(suite, f"m{i}", config(f"m{i}", **kw)) for i in range(1, n)]
    for b in bundles:
        alice.propose_add(b)
    out = alice.commit()
    alice.merge_pending_commit()
    assert out.welcome is not None
    others = [Group.join(out.welcome, b, config(f"m{i + 1}j", **kw))
              for i, b in enumerate(bundles)]
    members = [alice, *others]
    agree(*members)
    return members


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_create_add_message_commit_remove_all_suites(suite: int) -> None:
    a, b, c = grow(suite, 3)
    # application messages both ways
    msg = b.encrypt(b"hi from b", b"aad")
    for g in (a, c):
        ev = g.process(msg)
        assert isinstance(ev, ApplicationMessage)
        assert (ev.sender, ev.data, ev.authenticated_data) == (b.own_leaf, b"hi from b", b"aad")
    # an empty commit with path from c
    out = c.commit()
    c.merge_pending_commit()
    for g in (a, b):
        ev = g.process(out.commit)
        assert isinstance(ev, CommitApplied) and ev.epoch == 2
    agree(a, b, c)
    # a removes b
    out = a.commit([Remove(b.own_leaf)])
    a.merge_pending_commit()
    ev = c.process(out.commit)
    assert isinstance(ev, CommitApplied) and ev.removed == (LeafIndex(1),)
    ev_b = b.process(out.commit)
    assert isinstance(ev_b, CommitApplied) and ev_b.removed_self
    assert not b.active
    with pytest.raises(StateError):
        b.encrypt(b"gone")
    agree(a, c)
    assert len(a.members()) == 2


def test_proposals_by_reference_and_update() -> None:
    a, b, c = grow(1, 3)
    upd = b.propose_update()
    for g in (a, c):
        assert isinstance(g.process(upd), ProposalReceived)
    out = a.commit()
    a.merge_pending_commit()
    for g in (b, c):
        assert isinstance(g.process(out.commit), CommitApplied)
    agree(a, b, c)
    # b can still decrypt with its updated leaf key after c commits with path
    out = c.commit(force_path=True)
    c.merge_pending_commit()
    for g in (a, b):
        g.process(out.commit)
    agree(a, b, c)
    assert isinstance(a.process(b.encrypt(b"after update")), ApplicationMessage)


def test_encrypted_handshake_and_late_joiner() -> None:
    a, b = grow(1, 2, encrypt_handshake=True)
    d = bundle(1, "d", config("d", encrypt_handshake=True))
    prop = b.propose_add(d)
    assert isinstance(a.process(prop), ProposalReceived)
    out = a.commit()
    a.merge_pending_commit()
    b.process(out.commit)
    assert out.welcome is not None
    dg = Group.join(out.welcome, d, config("dj", encrypt_handshake=True))
    agree(a, b, dg)


def test_external_join_and_resync() -> None:
    a, b = grow(1, 2)
    e_ident = identity(1, "e")
    e, commit = Group.external_join(a.group_info(), e_ident, config("e"))
    for g in (a, b):
        ev = g.process(commit)
        assert isinstance(ev, CommitApplied)
    agree(a, b, e)
    # another client cannot take e's place (§12.2: the resync leaf must be acceptable
    # as an Update of the removed leaf: same identity by default)
    _, commit = Group.external_join(a.group_info(), identity(1, "mallory"), config("m"),
                                    remove_prior=e.own_leaf)
    with pytest.raises(ValidationError) as err:
        a.process(commit)
    assert err.value.check_id == "EC-RESYNC-CREDENTIAL"
    # e resyncs with new keys: external commit that removes its old leaf
    new_keys = get_suite(1).signature.derive_key_pair(b"e's new signature key" * 2)
    e2, commit = Group.external_join(a.group_info(), Identity.basic(b"e", new_keys),
                                     config("e2"), remove_prior=e.own_leaf)
    for g in (a, b):
        g.process(commit)
    agree(a, b, e2)
    assert len(a.members()) == 3


def test_external_psk_and_resumption_psk() -> None:
    psks = {b"psk-1": b"secret value"}
    a, b = grow(1, 2, external_psks=psks)
    prop = a.propose_external_psk(b"psk-1")
    b.process(prop)
    out = a.commit()
    a.merge_pending_commit()
    b.process(out.commit)
    agree(a, b)
    prop = b.propose_resumption_psk(a.epoch - 1)
    a.process(prop)
    out = b.commit()
    b.merge_pending_commit()
    a.process(out.commit)
    agree(a, b)


def test_unknown_psk_is_refused() -> None:
    a, b = grow(1, 2, external_psks={b"only-a": b"x"})
    b.config = config("b-no-psk")
    prop = a.propose_external_psk(b"only-a")
    b.process(prop)
    out = a.commit()
    with pytest.raises(ValidationError) as err:
        b.process(out.commit)
    assert err.value.check_id == "PR-PSK-UNKNOWN"


def test_tampered_commit_is_rejected_and_state_unchanged() -> None:
    a, b, _ = grow(1, 3)
    out = a.commit()
    data = bytearray(out.commit)
    data[-5] ^= 1  # inside the membership tag
    before = (b.epoch, b.epoch_authenticator)
    with pytest.raises(Exception) as err:
        b.process(bytes(data))
    assert type(err.value).__name__ in {"CryptoError", "ValidationError", "DecodeError"}
    assert (b.epoch, b.epoch_authenticator) == before
    assert isinstance(b.process(out.commit), CommitApplied)


def test_commit_with_injected_keys_is_deterministic() -> None:
    a1, b1 = grow(1, 2)
    a2, b2 = grow(1, 2)
    cs = get_suite(1)
    kp = cs.kem.derive_key_pair(b"leaf key")
    o1 = a1.commit(force_path=True, path_secret=b"\x07" * 32, encryption_key_pair=kp)
    o2 = a2.commit(force_path=True, path_secret=b"\x07" * 32, encryption_key_pair=kp)
    a1.merge_pending_commit()
    a2.merge_pending_commit()
    b1.process(o1.commit)
    b2.process(o2.commit)
    own = a1.tree.leaf(a1.own_leaf)
    assert own is not None and own.encryption_key == kp[1]
    # the same path secret gives the same tree (parent node keys) in both runs
    assert a1.tree.to_nodes()[1] == a2.tree.to_nodes()[1]
    agree(a1, b1)


def test_reinit_closes_the_group() -> None:
    a, b = grow(1, 2)
    prop = a.propose_reinit(b"new-group", 1)
    b.process(prop)
    out = b.commit()
    b.merge_pending_commit()
    ev = a.process(out.commit)
    assert isinstance(ev, CommitApplied) and ev.reinit is not None
    assert not a.active and not b.active


def test_group_context_extensions() -> None:
    a, b = grow(1, 2)
    out = a.commit([GroupContextExtensions((ApplicationId(b"app").to_extension(),))])
    a.merge_pending_commit()
    b.process(out.commit)
    agree(a, b)
    assert a.context.extensions == (ApplicationId(b"app").to_extension(),)


def test_committer_leaves_its_own_update_out_and_sends_a_path() -> None:
    """§12.2 forbids committing one's own Update; the committer's path supersedes it."""
    a, b = grow(1, 2)
    b.process(a.propose_update())
    out = a.commit()
    a.merge_pending_commit()
    ev = b.process(out.commit)
    assert isinstance(ev, CommitApplied) and ev.proposals == ()
    agree(a, b)
    assert isinstance(b.process(a.encrypt(b"after")), ApplicationMessage)
