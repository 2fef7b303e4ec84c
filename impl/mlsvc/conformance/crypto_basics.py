"""Runner for crypto-basics.json (RFC 9420 §5.1, §5.2, §8, §9)."""

from __future__ import annotations

import os

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto import labels
from mlsvc.crypto.suites import get_suite


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    v = case["ref_hash"]
    expect("ref_hash", labels.ref_hash(cs, v["label"].encode(), h(v["value"])), h(v["out"]))
    v = case["expand_with_label"]
    out = labels.expand_with_label(
        cs, h(v["secret"]), v["label"].encode(), h(v["context"]), v["length"]
    )
    expect("expand_with_label", out, h(v["out"]))
    v = case["derive_secret"]
    expect("derive_secret", labels.derive_secret(cs, h(v["secret"]), v["label"].encode()),
           h(v["out"]))
    v = case["derive_tree_secret"]
    out = labels.derive_tree_secret(
        cs, h(v["secret"]), v["label"].encode(), v["generation"], v["length"]
    )
    expect("derive_tree_secret", out, h(v["out"]))

    v = case["sign_with_label"]
    label, content = v["label"].encode(), h(v["content"])
    expect("signature public key", cs.signature.public_key(h(v["priv"])), h(v["pub"]))
    if not labels.verify_with_label(cs, h(v["pub"]), label, content, h(v["signature"])):
        raise Mismatch("VerifyWithLabel rejected the vector's signature")
    ours = labels.sign_with_label(cs, h(v["priv"]), label, content)
    if not labels.verify_with_label(cs, h(v["pub"]), label, content, ours):
        raise Mismatch("VerifyWithLabel rejected our own signature")
    if labels.verify_with_label(cs, h(v["pub"]), label + b"x", content, ours):
        raise Mismatch("VerifyWithLabel accepted a signature under another label")

    v = case["encrypt_with_label"]
    label, context, pt = v["label"].encode(), h(v["context"]), h(v["plaintext"])
    priv = h(v["priv"])
    expect("HPKE public key", cs.kem.public_key(priv), h(v["pub"]))
    got = labels.decrypt_with_label(cs, priv, label, context, h(v["kem_output"]),
                                    h(v["ciphertext"]))
    expect("DecryptWithLabel", got, pt)
    # The written-out OpenBase must agree with the native one (hpke.py's cross-check).
    info = labels.labeled_content(label, context)
    portable = cs.hpke.open_base_portable(h(v["kem_output"]), priv, info, b"", h(v["ciphertext"]))
    expect("portable OpenBase", portable, pt)
    kem_output, ct = labels.encrypt_with_label(cs, h(v["pub"]), label, context, pt, os.urandom)
    got = labels.decrypt_with_label(cs, priv, label, context, kem_output, ct)
    expect("DecryptWithLabel(EncryptWithLabel)", got, pt)


def run(cases: list[Case]) -> FileResult:
    return run_cases("crypto-basics", cases, _check)
