"""Runner for secret-tree.json (RFC 9420 §6.3.2 sender data, §9 secret tree).

The sender-data key and nonce come from `sender_data_secret` and the ciphertext
sample; then a secret tree over len(leaves) leaves is asked, leaf by leaf and in
increasing generation, for the handshake and application key/nonce of each listed
generation (skipped generations are ratcheted over, as a receiver would).
"""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.schedule.key_schedule import sender_data_key_nonce
from mlsvc.tree.secret_tree import RatchetType, SecretTree
from mlsvc.types import LeafIndex


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    sd = case["sender_data"]
    key, nonce = sender_data_key_nonce(cs, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    expect("sender_data key", key, h(sd["key"]))
    expect("sender_data nonce", nonce, h(sd["nonce"]))

    leaves = case["leaves"]
    tree = SecretTree(cs, h(case["encryption_secret"]), len(leaves))
    for i, entries in enumerate(leaves):
        leaf = LeafIndex(i)
        for entry in sorted(entries, key=lambda e: int(e["generation"])):
            g = int(entry["generation"])
            for rtype in RatchetType:
                k, n = tree.key_for(leaf, rtype, g)
                expect(f"leaf {i} gen {g} {rtype.value}_key", k, h(entry[f"{rtype.value}_key"]))
                expect(
                    f"leaf {i} gen {g} {rtype.value}_nonce", n, h(entry[f"{rtype.value}_nonce"])
                )


def run(cases: list[Case]) -> FileResult:
    return run_cases("secret-tree", cases, _check)
