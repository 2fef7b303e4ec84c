"""Saving and restoring a member mid-session loses nothing (issue 3)."""

from __future__ import annotations

import pytest

from mlsvc.errors import DecodeError, StateError
from mlsvc.group.events import ApplicationMessage, CommitApplied, ProposalReceived
from mlsvc.group.serialize import FORMAT, load, save
from tests.unit.test_group import agree, config, grow


def test_save_load_mid_session_continues() -> None:
    a, b, c = grow(1, 3, external_psks={b"p": b"v"})
    # state worth keeping: skipped generations, a cached proposal, a resumption PSK history
    m1, m2 = a.encrypt(b"one"), a.encrypt(b"two")
    assert isinstance(b.process(m2), ApplicationMessage)  # m1 is skipped, kept for later
    prop = c.propose_update()
    assert isinstance(b.process(prop), ProposalReceived)
    a.process(prop)

    restored = load(save(b), config("m1j", external_psks={b"p": b"v"}))
    assert save(restored) == save(b)
    ev = restored.process(m1)
    assert isinstance(ev, ApplicationMessage) and ev.data == b"one"
    out = a.commit()
    a.merge_pending_commit()
    for g in (restored, c):
        assert isinstance(g.process(out.commit), CommitApplied)
    agree(a, restored, c)
    assert isinstance(c.process(restored.encrypt(b"after restore")), ApplicationMessage)
    prop = restored.propose_resumption_psk(restored.epoch - 1)
    a.process(prop)
    c.process(prop)
    out = restored.commit()
    restored.merge_pending_commit()
    a.process(out.commit)
    c.process(out.commit)
    agree(a, restored, c)


def test_pending_commit_refuses_to_be_saved() -> None:
    a, _ = grow(1, 2)
    a.commit()
    with pytest.raises(StateError):
        save(a)
    a.clear_pending_commit()
    assert load(save(a)).epoch == a.epoch


def test_truncated_or_extended_state_is_a_decode_error() -> None:
    a, _ = grow(1, 2)
    data = save(a)
    with pytest.raises(DecodeError):
        load(data[:-1])
    with pytest.raises(DecodeError):
        load(data + b"\x00")
    with pytest.raises(DecodeError):
        load((FORMAT + 1).to_bytes(2, "big") + data[2:])


def test_a_saved_pending_commit_merges_after_load() -> None:
    """A member that saved while its commit awaited the DS merges it after a restart
    and reaches the epoch the others process (nothing lost across a crash, P23)."""
    a, b = grow(1, 2)
    out = a.commit(force_path=True)
    restored = load(save(a, with_pending=True))
    assert restored.has_pending_commit and restored.epoch == a.epoch
    restored.merge_pending_commit()
    b.process(out.commit)
    assert restored.epoch_authenticator == b.epoch_authenticator
    # the DS refused it instead: clearing leaves the old epoch, as before the save
    again = load(save(a, with_pending=True))
    again.clear_pending_commit()
    assert again.epoch == b.epoch - 1 and not again.has_pending_commit
