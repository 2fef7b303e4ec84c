"""Runner for psk_secret.json (RFC 9420 §8.4): external PreSharedKeyIDs (the struct of
mlsvc.messages.proposals) built from `psk_id` and `psk_nonce`, chained into
psk_secret in the order listed."""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.messages.proposals import PreSharedKeyID
from mlsvc.schedule.psk import psk_secret


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    psks = [
        (PreSharedKeyID.external(h(p["psk_id"]), h(p["psk_nonce"])), h(p["psk"]))
        for p in case["psks"]
    ]
    expect("psk_secret", psk_secret(cs, psks), h(case["psk_secret"]))


def run(cases: list[Case]) -> FileResult:
    return run_cases("psk_secret", cases, _check)
