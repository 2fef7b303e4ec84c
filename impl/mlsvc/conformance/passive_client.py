"""Runner for the passive-client-*.json files (RFC 9420 §12.4.2, §12.4.3.1): join by
Welcome, follow every commit, compare epoch authenticators."""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.group.config import GroupConfig, Identity
from mlsvc.group.events import CommitApplied
from mlsvc.group.group import Group
from mlsvc.group.key_package import KeyPackageBundle
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.leaf_node import RatchetTreeExtension
from mlsvc.messages.mls_message import MLSMessage


def _no_random(n: int) -> bytes:
    raise Mismatch("a passive client must not need randomness")


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    kp = MLSMessage.decode(h(case["key_package"])).body
    if not isinstance(kp, KeyPackage):
        raise Mismatch("key_package is not a KeyPackage")
    leaf = kp.leaf_node
    expect("signature key", cs.signature.public_key(h(case["signature_priv"])), leaf.signature_key)
    expect("encryption key", cs.kem.public_key(h(case["encryption_priv"])), leaf.encryption_key)
    expect("init key", cs.kem.public_key(h(case["init_priv"])), kp.init_key)
    identity = Identity(leaf.credential, h(case["signature_priv"]), leaf.signature_key)
    bundle = KeyPackageBundle(kp, h(case["init_priv"]), h(case["encryption_priv"]), identity)
    psks = {h(p["psk_id"]): h(p["psk"]) for p in case["external_psks"]}
    config = GroupConfig(rng=_no_random, external_psks=psks, check_received_lifetimes=False)
    tree = None
    if case.get("ratchet_tree"):
        tree = RatchetTreeExtension.decode(h(case["ratchet_tree"])).nodes
    group = Group.join(h(case["welcome"]), bundle, config, ratchet_tree=tree)
    expect("initial epoch authenticator", group.epoch_authenticator,
           h(case["initial_epoch_authenticator"]))
    for n, epoch in enumerate(case["epochs"]):
        for proposal in epoch["proposals"]:
            group.process(h(proposal))
        event = group.process(h(epoch["commit"]))
        if not isinstance(event, CommitApplied):
            raise Mismatch(f"epoch {n}: the commit did not apply")
        expect(f"epoch {n} authenticator", group.epoch_authenticator,
               h(epoch["epoch_authenticator"]))


def run(cases: list[Case]) -> FileResult:
    return run_cases("passive-client", cases, _check)
