"""RFC 9420 §10.1 KeyPackage validation (KP-*) and §13.4 unique extension types in a
KeyPackage, through Add proposals: the committer must refuse to commit the Add and
every receiver must refuse a (forged, correctly signed) commit carrying it. A few
checks run over all seven cipher suites."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlsvc.crypto.suites import SUITES
from mlsvc.group.config import default_capabilities
from mlsvc.messages.codepoints import ProtocolVersion
from mlsvc.messages.extensions import Extension
from mlsvc.messages.proposals import Add
from tests.unit.validation_helpers import (
    check_of,
    commit_check,
    flip,
    forge_proposal,
    hpke_pair,
    key_package,
    make_group,
    resign_key_package,
)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_signature_invalid_all_suites(suite: int) -> None:
    a, b, _ = make_group(suite=suite)
    kp = key_package("d", suite).key_package
    kp = replace(kp, signature=flip(kp.signature, 5))
    assert commit_check(a, b, [Add(kp)]) == "KP-SIGNATURE"


def test_unsigned() -> None:
    a, b, _ = make_group()
    kp = replace(key_package("d").key_package, signature=b"")
    assert commit_check(a, b, [Add(kp)]) == "KP-SIGNATURE"


def test_signed_by_another_key() -> None:
    a, b, _ = make_group()
    kp = key_package("d").key_package
    assert commit_check(a, b, [Add(resign_key_package(kp, "e"))]) == "KP-SIGNATURE"


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_cipher_suite_differs_from_the_group_all_suites(suite: int) -> None:
    a, b, _ = make_group(suite=suite)
    other = 1 if suite != 1 else 2
    kp = key_package("d", suite).key_package
    kp = resign_key_package(kp, "d", suite, cipher_suite=other)
    assert commit_check(a, b, [Add(kp)]) == "KP-SUITE-VERSION"


def test_protocol_version_differs_from_the_group() -> None:
    a, b, _ = make_group()
    kp = resign_key_package(key_package("d").key_package, "d",
                            version=ProtocolVersion.MLS10 + 1)
    assert commit_check(a, b, [Add(kp)]) == "KP-SUITE-VERSION"


def test_init_key_equals_the_leaf_encryption_key() -> None:
    a, b, _ = make_group()
    pair = hpke_pair("d shared")
    kp = key_package("d", init_key_pair=pair, encryption_key_pair=pair).key_package
    assert commit_check(a, b, [Add(kp)]) == "KP-INIT-KEY-DISTINCT"


def test_duplicate_extension_types_in_the_key_package() -> None:
    a, b, _ = make_group()
    dup = (Extension(0xFF02, b"one"), Extension(0xFF02, b"two"))
    kp = key_package("d", extensions=dup).key_package
    assert commit_check(a, b, [Add(kp)]) == "PR-EXTENSIONS-UNIQUE"


def test_duplicate_extension_types_in_the_leaf() -> None:
    a, b, _ = make_group()
    dup = (Extension(0xFF02, b"one"), Extension(0xFF02, b"two"))
    kp = key_package("d", leaf_extensions=dup,
                     capabilities=default_capabilities(1, (0xFF02,))).key_package
    assert commit_check(a, b, [Add(kp)]) == "PR-EXTENSIONS-UNIQUE"


def test_valid_key_package_is_accepted() -> None:
    # the positive case: the same construction without the fault is committed
    a, b, c = make_group()
    out = a.commit([Add(key_package("d").key_package)])
    a.merge_pending_commit()
    for g in (b, c):
        g.process(out.commit)
        assert g.epoch_authenticator == a.epoch_authenticator


def test_invalid_add_proposal_is_refused_on_receipt() -> None:
    _, b, c = make_group()
    kp = key_package("d").key_package
    msg, _ = forge_proposal(b, Add(replace(kp, signature=flip(kp.signature))))
    assert check_of(lambda: c.process(msg), c) == "KP-SIGNATURE"
