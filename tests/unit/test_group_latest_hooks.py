"""The engine hooks the later virtual-clients text needs (draft-ietf-mls-virtual-clients
latest §5.3-§5.5.2):

- an external joiner learns, before joining, the (kem_output, init_secret) its seed
  gives (`Group.external_init`), and a sibling follows the external commit from that
  init_secret (`Group.follow_external_join(..., init_secret=...)`), proven by the
  confirmation tag;
- a group created from a chosen epoch secret (`Group.create(..., epoch_secret=...)`),
  whose epoch 0 a sibling rebuilds from the GroupInfo (`Group.follow_creation`).
"""

from __future__ import annotations

import dataclasses

import pytest

from mlsvc.crypto.suites import SUITES, get_suite
from mlsvc.errors import CryptoError, ParameterError, ValidationError
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import ApplicationMessage, CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.join import external_init, follow_external_commit
from mlsvc.group.receive import SiblingCommitKeys
from mlsvc.group.serialize import save
from mlsvc.messages.codepoints import LeafNodeSource
from mlsvc.messages.commit import Commit
from mlsvc.messages.extensions import Extension
from mlsvc.messages.framing import AuthenticatedContent, FramedContentAuthData, PublicMessage
from mlsvc.messages.group_info import GroupContext, GroupInfo
from mlsvc.messages.leaf_node import LeafNode, RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.proposals import Add, ExternalInit
from mlsvc.messages.protection import protect_public
from mlsvc.schedule import key_schedule as ks
from mlsvc.tree.ratchet_tree import RatchetTree
from mlsvc.types import LeafIndex
from tests.unit.test_group import agree, bundle, config, grow, identity

ALL = sorted(SUITES)
INIT_EXT = 0xF0A1  # a private-use LeafNode extension carrying the init_secret here
SEED = b"external init seed".ljust(66, b"\x00")  # >= Nsk of every suite


def cfg(name: str) -> GroupConfig:
    return config(name, supported_extensions=(INIT_EXT,))


def check_of(err: pytest.ExceptionInfo[ValidationError]) -> str:
    return err.value.check_id


def commit_of(message: bytes) -> tuple[PublicMessage, Commit]:
    body = MLSMessage.decode(message).body
    assert isinstance(body, PublicMessage)
    commit = body.content.content
    assert isinstance(commit, Commit)
    return body, commit


# --- external commit with a carried init secret ------------------------------------------


@pytest.mark.parametrize("suite", ALL)
def test_external_init_is_what_external_join_then_uses(suite: int) -> None:
    cs = get_suite(suite)
    a, b = grow(suite, 2)
    gi = a.group_info()
    kem_output, init_secret = Group.external_init(gi, SEED)
    assert len(init_secret) == cs.nh
    # the same from the decoded GroupInfo and from the module function
    decoded = MLSMessage.decode(gi).body
    assert isinstance(decoded, GroupInfo)
    assert external_init(decoded, SEED) == (kem_output, init_secret)
    # deterministic in the seed, different for another seed
    assert Group.external_init(gi, SEED) == (kem_output, init_secret)
    other = Group.external_init(gi, b"another seed".ljust(66, b"\x00"))
    assert other[0] != kem_output and other[1] != init_secret

    joiner, commit = Group.external_join(gi, identity(suite, "vc"), cfg("vc"),
                                         external_init_seed=SEED)
    _, c = commit_of(commit)
    [ei] = [p for p in c.proposals if isinstance(p, ExternalInit)]
    assert ei.kem_output == kem_output
    # a member recovers the same init_secret from the kem_output (§8.3)
    external_priv, _ = ks.external_key_pair(cs, a.state.secrets.external_secret)
    assert ks.external_init_for_member(cs, external_priv, kem_output) == init_secret
    for g in (a, b):
        assert isinstance(g.process(commit), CommitApplied)
    agree(a, b, joiner)


def test_external_init_needs_external_pub() -> None:
    a, _ = grow(1, 2)
    with pytest.raises(ValidationError) as err:
        Group.external_init(a.group_info(external_pub=False), SEED)
    assert check_of(err) == "GI-EXTERNAL-PUB"


def _vc_join(suite: int, a: Group) -> tuple[bytes, bytes, Identity, SiblingCommitKeys, Group,
                                             bytes]:
    """An external join whose LeafNode carries the init_secret (as the later text's
    DerivationInfoTBE does): GroupInfo, commit, identity, sibling keys, joiner, and the
    init_secret as a sibling reads it from the commit's LeafNode."""
    cs = get_suite(suite)
    gi = a.group_info()
    ident = identity(suite, "vc")
    leaf_kp = cs.kem.derive_key_pair(b"vc leaf key".ljust(66, b"\x00"))
    path_secret = b"\x17" * cs.nh
    _, init_secret = Group.external_init(gi, SEED)
    joiner, commit = Group.external_join(
        gi, ident, cfg("vc"), external_init_seed=SEED, encryption_key_pair=leaf_kp,
        path_secret=path_secret, leaf_extensions=(Extension(INIT_EXT, init_secret),))
    _, c = commit_of(commit)
    assert c.path is not None
    [carried] = [e.extension_data for e in c.path.leaf_node.extensions
                 if e.extension_type == INIT_EXT]
    return gi, commit, ident, SiblingCommitKeys(path_secret, leaf_kp[0]), joiner, carried


@pytest.mark.parametrize("suite", ALL)
def test_follow_external_join_from_the_carried_init_secret(suite: int) -> None:
    a, b = grow(suite, 2, supported_extensions=(INIT_EXT,))
    gi, commit, ident, keys, joiner, carried = _vc_join(suite, a)
    follower = Group.follow_external_join(gi, commit, ident, keys, config=cfg("vc2"),
                                          init_secret=carried)
    for g in (a, b):
        assert isinstance(g.process(commit), CommitApplied)
    agree(a, b, joiner, follower)
    assert follower.own_leaf == joiner.own_leaf
    assert save(follower) == save(joiner)
    # the follower reads and writes in the new epoch
    ev = follower.process(a.encrypt(b"to the vc"))
    assert isinstance(ev, ApplicationMessage) and ev.data == b"to the vc"
    for g in (a, b):
        ev = g.process(follower.encrypt(b"from the vc"))
        assert isinstance(ev, ApplicationMessage) and ev.data == b"from the vc"


@pytest.mark.parametrize("suite", [1, 3])
def test_wrong_init_secret_fails_the_confirmation_tag(suite: int) -> None:
    cs = get_suite(suite)
    a, _ = grow(suite, 2, supported_extensions=(INIT_EXT,))
    gi, commit, ident, keys, _, carried = _vc_join(suite, a)
    flipped = bytes([carried[0] ^ 1]) + carried[1:]
    # carried + b"\0" would give the same HMAC key (zero padding): refused by length
    for wrong in (flipped, b"\x00" * cs.nh, carried[:-1], carried + b"\x00", b""):
        with pytest.raises(ValidationError) as err:
            Group.follow_external_join(gi, commit, ident, keys, config=cfg("vc2"),
                                       init_secret=wrong)
        assert check_of(err) == "CM-CONFIRMATION-TAG"


def test_exactly_one_of_seed_and_init_secret() -> None:
    a, _ = grow(1, 2, supported_extensions=(INIT_EXT,))
    gi, commit, ident, keys, _, carried = _vc_join(1, a)
    with pytest.raises(ParameterError):
        Group.follow_external_join(gi, commit, ident, keys, config=cfg("vc2"))
    with pytest.raises(ParameterError):
        Group.follow_external_join(gi, commit, ident, keys, SEED, cfg("vc2"),
                                   init_secret=carried)
    with pytest.raises(ParameterError):
        follow_external_commit(gi, commit, ident, keys.path_secret, keys.leaf_private_key,
                               None, cfg("vc2"))


def test_positional_seed_still_follows_as_in_draft_00() -> None:
    a, _ = grow(1, 2, supported_extensions=(INIT_EXT,))
    gi, commit, ident, keys, joiner, carried = _vc_join(1, a)
    by_seed = Group.follow_external_join(gi, commit, ident, keys, SEED, cfg("vc2"))
    by_secret = Group.follow_external_join(gi, commit, ident, keys, config=cfg("vc3"),
                                           init_secret=carried)
    agree(joiner, by_seed, by_secret)
    state = follow_external_commit(gi, commit, ident, keys.path_secret,
                                   keys.leaf_private_key, SEED, cfg("vc4"))
    assert state.secrets.epoch_authenticator == joiner.epoch_authenticator
    with pytest.raises(ValidationError) as err:
        Group.follow_external_join(gi, commit, ident, keys, b"not the seed", cfg("vc2"))
    assert check_of(err) == "CM-SIBLING-EXTERNAL-INIT"


def _resigned(message: bytes, ident: Identity, gi: bytes, commit: Commit) -> bytes:
    """The external commit `message` with `commit` in its place, signed again by the
    joiner (so that only the commit's content is wrong)."""
    body, _ = commit_of(message)
    info = MLSMessage.decode(gi).body
    assert isinstance(info, GroupInfo)
    cs = get_suite(info.group_context.cipher_suite)
    content = dataclasses.replace(body.content, content=commit)
    signature = content.sign(cs, ident.signature_private_key, 1, info.group_context)
    ac = AuthenticatedContent(1, content, FramedContentAuthData(
        signature, body.auth.confirmation_tag))
    return MLSMessage(protect_public(cs, ac, None, info.group_context)).encode()


def test_init_secret_keeps_the_other_checks() -> None:
    cs = get_suite(1)
    a, b = grow(1, 2, supported_extensions=(INIT_EXT,))
    gi, commit, ident, keys, _, carried = _vc_join(1, a)

    def follow(group_info: bytes = gi, message: bytes = commit, who: Identity = ident,
               k: SiblingCommitKeys = keys) -> Group:
        return Group.follow_external_join(group_info, message, who, k, config=cfg("vc2"),
                                          init_secret=carried)

    follow()  # the genuine material is accepted
    _, c = commit_of(commit)
    [ei] = [p for p in c.proposals if isinstance(p, ExternalInit)]
    # exactly one ExternalInit
    for proposals in ((), (ei, ei)):
        forged = _resigned(commit, ident, gi, dataclasses.replace(c, proposals=proposals))
        with pytest.raises(ValidationError) as err:
            follow(message=forged)
        assert check_of(err) == "EC-ONE-EXTERNAL-INIT"
    # the signature
    body, _ = commit_of(commit)
    bad_sig = bytes([body.auth.signature[0] ^ 1]) + body.auth.signature[1:]
    tampered = dataclasses.replace(body, auth=dataclasses.replace(body.auth,
                                                                  signature=bad_sig))
    with pytest.raises(CryptoError):
        follow(message=MLSMessage(tampered).encode())
    # the GroupInfo of another epoch
    out = b.commit()
    b.merge_pending_commit()
    a.process(out.commit)
    with pytest.raises(ValidationError) as err:
        follow(group_info=a.group_info())
    assert check_of(err) == "MSG-GROUP"
    # not an external commit
    with pytest.raises(ValidationError) as err:
        follow(message=out.commit)
    assert check_of(err) == "CM-NEW-MEMBER-COMMIT-PATH"
    # the identity and the path keys this emulator derived
    with pytest.raises(ValidationError) as err:
        follow(who=identity(1, "someone else"))
    assert check_of(err) == "TREEKEM-PUBKEY-MISMATCH"
    with pytest.raises(ValidationError) as err:
        follow(k=SiblingCommitKeys(b"\x18" * cs.nh, keys.leaf_private_key))
    assert check_of(err) == "TREEKEM-PUBKEY-MISMATCH"


# --- group creation from a given epoch secret ---------------------------------------------


def _create(suite: int, epoch_secret: bytes | None = None, name: str = "creator"
            ) -> tuple[Group, Identity, tuple[bytes, bytes]]:
    cs = get_suite(suite)
    ident = identity(suite, "vc")
    leaf_kp = cs.kem.derive_key_pair(b"creator leaf".ljust(66, b"\x00"))
    creator = Group.create(suite, ident, config(name), encryption_key_pair=leaf_kp,
                           epoch_secret=epoch_secret)
    return creator, ident, leaf_kp


def _epoch_secret(suite: int, tag: bytes = b"es") -> bytes:
    return tag.ljust(get_suite(suite).nh, b"\x01")


@pytest.mark.parametrize("suite", ALL)
def test_create_uses_the_given_epoch_secret(suite: int) -> None:
    cs = get_suite(suite)
    es = _epoch_secret(suite)
    creator, _, leaf_kp = _create(suite, es)
    expected = ks.from_epoch_secret(cs, es)
    assert creator.epoch_authenticator == expected.epoch_authenticator
    assert creator.state.secrets.exporter_secret == expected.exporter_secret
    assert creator.state.confirmation_tag == ks.confirmation_tag(
        cs, expected.confirmation_key, b"")
    [(_, leaf)] = creator.members()
    assert leaf.encryption_key == leaf_kp[1]
    assert leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE
    # without one, epoch 0 is random (differs per rng)
    assert _create(suite, None, "x")[0].epoch_authenticator != _create(
        suite, None, "y")[0].epoch_authenticator


@pytest.mark.parametrize("suite", [1, 3])
def test_create_rejects_an_epoch_secret_of_the_wrong_length(suite: int) -> None:
    nh = get_suite(suite).nh
    for bad in (b"", b"\x01" * (nh - 1), b"\x01" * (nh + 1)):
        with pytest.raises(ParameterError):
            _create(suite, bad)


@pytest.mark.parametrize("suite", ALL)
def test_follow_creation_is_the_creators_epoch_zero(suite: int) -> None:
    cs = get_suite(suite)
    es = _epoch_secret(suite)
    creator, ident, leaf_kp = _create(suite, es)
    follower = Group.follow_creation(creator.group_info(), ident, leaf_kp[0], es,
                                     config("follower"))
    agree(creator, follower)
    assert follower.own_leaf == creator.own_leaf == LeafIndex(0)
    assert save(follower) == save(creator)  # the whole state, byte for byte
    # the tree given out of band instead of in the GroupInfo
    bare = creator.group_info(ratchet_tree=False)
    agree(creator, Group.follow_creation(bare, ident, leaf_kp[0], es,
                                         ratchet_tree=creator.tree))
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(bare, ident, leaf_kp[0], es)
    assert check_of(err) == "WEL-TREE-MISSING"

    # the creator adds a third party; the follower processes that commit as a sibling
    path_secret = b"\x33" * cs.nh
    new_kp = cs.kem.derive_key_pair(b"creator leaf, epoch 1".ljust(66, b"\x00"))
    carol = bundle(suite, "carol")
    out = creator.commit([Add(carol.key_package)], force_path=True, path_secret=path_secret,
                         encryption_key_pair=new_kp)
    creator.merge_pending_commit()
    ev = follower.process(out.commit,
                          sibling=lambda leaf: SiblingCommitKeys(path_secret, new_kp[0]))
    assert isinstance(ev, CommitApplied) and ev.added == (LeafIndex(1),)
    assert out.welcome is not None
    c = Group.join(out.welcome, carol, config("carol-j"))
    agree(creator, follower, c)
    assert save(follower) == save(creator)
    # application messages between the three
    msg = c.encrypt(b"hi vc")
    for g in (creator, follower):
        ev = g.process(msg)
        assert isinstance(ev, ApplicationMessage) and ev.data == b"hi vc"
    msg = follower.encrypt(b"from the follower")
    for g in (c, creator):
        ev = g.process(msg)
        assert isinstance(ev, ApplicationMessage) and ev.data == b"from the follower"


@pytest.mark.parametrize("suite", [1, 3])
def test_follow_creation_rejects_a_group_info_of_another_epoch_secret(suite: int) -> None:
    es = _epoch_secret(suite)
    creator, ident, leaf_kp = _create(suite, es)
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(creator.group_info(), ident, leaf_kp[0],
                              _epoch_secret(suite, b"other"))
    assert check_of(err) == "CM-CONFIRMATION-TAG"
    random_creator, _, _ = _create(suite, None)  # same leaf, random epoch secret
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(random_creator.group_info(), ident, leaf_kp[0], es)
    assert check_of(err) == "CM-CONFIRMATION-TAG"
    with pytest.raises(ParameterError):
        Group.follow_creation(creator.group_info(), ident, leaf_kp[0], es[:-1])


def test_follow_creation_checks_the_leaf_and_the_epoch() -> None:
    cs = get_suite(1)
    es = _epoch_secret(1)
    creator, ident, leaf_kp = _create(1, es)
    gi = creator.group_info()
    other_kp = cs.kem.derive_key_pair(b"another leaf key".ljust(32, b"\x00"))
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(gi, ident, other_kp[0], es)
    assert check_of(err) == "TREEKEM-PUBKEY-MISMATCH"
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(gi, identity(1, "not the vc"), leaf_kp[0], es)
    assert check_of(err) == "TREEKEM-PUBKEY-MISMATCH"
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(gi, ident, leaf_kp[0], es,
                              GroupConfig(group_id_in_use=lambda gid: True))
    assert check_of(err) == "WEL-GROUP-ID"
    # the GroupInfo of a later epoch of the same group is not a creation
    out = creator.commit(force_path=True)
    creator.merge_pending_commit()
    assert out.commit
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(creator.group_info(), ident, leaf_kp[0], es)
    assert check_of(err) == "CM-EPOCH"


def _forged_creation(ident: Identity, leaves: list[LeafNode], es: bytes) -> bytes:
    """A GroupInfo for epoch 0 with the given tree, signed by leaf 0 with a tag that the
    epoch secret confirms: only the tree is wrong."""
    cs = get_suite(1)
    tree = RatchetTree.single(cs, leaves[0])
    for leaf in leaves[1:]:
        tree.add_leaf(leaf)
    context = GroupContext(cs.id, b"forged group", 0, tree.tree_hash(), b"", ())
    tag = ks.confirmation_tag(cs, ks.from_epoch_secret(cs, es).confirmation_key, b"")
    info = GroupInfo(context, (RatchetTreeExtension.from_nodes(tree.to_nodes())
                               .to_extension(),), tag, LeafIndex(0))
    return MLSMessage(info.signed(cs, ident.signature_private_key)).encode()


def test_follow_creation_needs_a_single_key_package_leaf() -> None:
    cs = get_suite(1)
    es = _epoch_secret(1)
    creator, ident, leaf_kp = _create(1, es)
    [(_, own)] = creator.members()
    # the forgery helper itself makes acceptable creations
    assert Group.follow_creation(_forged_creation(ident, [own], es), ident, leaf_kp[0],
                                 es).epoch == 0
    extra = bundle(1, "stowaway").key_package.leaf_node
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(_forged_creation(ident, [own, extra], es), ident,
                              leaf_kp[0], es)
    assert check_of(err) == "WEL-OWN-LEAF"
    update_leaf = dataclasses.replace(own, leaf_node_source=LeafNodeSource.UPDATE,
                                      lifetime=None).signed(
        cs, ident.signature_private_key, b"forged group", LeafIndex(0))
    with pytest.raises(ValidationError) as err:
        Group.follow_creation(_forged_creation(ident, [update_leaf], es), ident,
                              leaf_kp[0], es)
    assert check_of(err) == "LN-SOURCE"
