"""Two emulators sharing one leaf (draft-ietf-mls-virtual-clients-00 §5.3-5.4): one
commits or updates, the other follows with the keys it derived, not by decryption."""

from __future__ import annotations

import pytest

from mlsvc.crypto.suites import get_suite
from mlsvc.errors import ValidationError
from mlsvc.group.events import CommitApplied, ProposalReceived
from mlsvc.group.group import Group
from mlsvc.group.receive import SiblingCommitKeys
from mlsvc.group.serialize import load, save
from mlsvc.messages.leaf_node import LeafNode
from tests.unit.test_group import agree, config, grow

CS = get_suite(1)


def twins() -> tuple[Group, Group, Group, Group]:
    a, b, c = grow(1, 3)
    a2 = load(save(a), config("a-twin"))  # a second emulator holding a's leaf
    return a, a2, b, c


def test_sibling_commit_is_followed_from_the_shared_secrets() -> None:
    a, a2, b, c = twins()
    leaf_kp = CS.kem.derive_key_pair(b"derived leaf key")
    path_secret = b"\x42" * CS.nh
    out = a.commit(force_path=True, path_secret=path_secret, encryption_key_pair=leaf_kp)
    a.merge_pending_commit()
    for g in (b, c):
        assert isinstance(g.process(out.commit), CommitApplied)
    with pytest.raises(ValidationError) as err:
        a2.process(out.commit)
    assert err.value.check_id == "CM-OWN-COMMIT"

    seen: list[LeafNode] = []

    def keys(leaf: LeafNode) -> SiblingCommitKeys:
        seen.append(leaf)
        return SiblingCommitKeys(path_secret, leaf_kp[0])

    assert isinstance(a2.process(out.commit, sibling=keys), CommitApplied)
    assert seen and seen[0].encryption_key == leaf_kp[1]
    agree(a, a2, b, c)
    # a2 holds the new path keys: it follows a commit from b that encrypts to them
    out = b.commit(force_path=True)
    b.merge_pending_commit()
    for g in (a, a2, c):
        g.process(out.commit)
    agree(a, a2, b, c)


def test_wrong_sibling_secret_is_rejected() -> None:
    a, a2, _, _ = twins()
    leaf_kp = CS.kem.derive_key_pair(b"derived leaf key")
    out = a.commit(force_path=True, path_secret=b"\x01" * CS.nh, encryption_key_pair=leaf_kp)
    with pytest.raises(ValidationError) as err:
        a2.process(out.commit, sibling=lambda leaf: SiblingCommitKeys(b"\x02" * CS.nh,
                                                                       leaf_kp[0]))
    assert err.value.check_id == "TREEKEM-PUBKEY-MISMATCH"
    other = CS.kem.derive_key_pair(b"other")
    with pytest.raises(ValidationError) as err:
        a2.process(out.commit, sibling=lambda leaf: SiblingCommitKeys(b"\x01" * CS.nh,
                                                                       other[0]))
    assert err.value.check_id == "TREEKEM-PUBKEY-MISMATCH"


def test_sibling_update_is_adopted_with_the_remembered_key() -> None:
    a, a2, b, c = twins()
    kp = CS.kem.derive_key_pair(b"update key")
    prop = a.propose_update(encryption_key_pair=kp)
    a2.remember_leaf_key(kp[0])
    for g in (a2, b, c):
        assert isinstance(g.process(prop), ProposalReceived)
    out = b.commit()
    b.merge_pending_commit()
    for g in (a, a2, c):
        g.process(out.commit)
    agree(a, a2, b, c)
    out = c.commit(force_path=True)  # encrypts to a's new leaf key
    c.merge_pending_commit()
    for g in (a, a2, b):
        g.process(out.commit)
    agree(a, a2, b, c)
