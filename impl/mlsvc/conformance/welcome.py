"""Runner for welcome.json (RFC 9420 §12.4.3.1)."""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, Mismatch, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.group.join import open_welcome
from mlsvc.messages.key_package import KeyPackage
from mlsvc.messages.mls_message import MLSMessage
from mlsvc.messages.welcome import Welcome
from mlsvc.schedule import key_schedule as ks


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    kp = MLSMessage.decode(h(case["key_package"])).body
    welcome = MLSMessage.decode(h(case["welcome"])).body
    if not isinstance(kp, KeyPackage) or not isinstance(welcome, Welcome):
        raise Mismatch("key_package / welcome are not of the expected wire format")
    opened = open_welcome(cs, welcome, kp, h(case["init_priv"]), {})
    gi = opened.group_info
    if not gi.verify(cs, h(case["signer_pub"])):
        raise Mismatch("GroupInfo signature does not verify with signer_pub")
    secrets = ks.epoch_from_joiner(cs, opened.group_secrets.joiner_secret, None,
                                   gi.group_context.encode())
    if not cs.verify_mac(secrets.confirmation_key, gi.group_context.confirmed_transcript_hash,
                         gi.confirmation_tag):
        raise Mismatch("confirmation_tag does not verify")


def run(cases: list[Case]) -> FileResult:
    return run_cases("welcome", cases, _check)
