"""Runner for key-schedule.json (RFC 9420 §8, §8.1, §8.5).

Every epoch of a case: the GroupContext encoding, every secret of the key schedule
chained from `initial_init_secret`, external_pub = DeriveKeyPair(external_secret)
(§8) and one MLS-Exporter output (§8.5).
"""

from __future__ import annotations

from mlsvc.conformance.base import Case, FileResult, expect, h, run_cases
from mlsvc.crypto.suites import get_suite
from mlsvc.messages.group_info import GroupContext
from mlsvc.schedule.key_schedule import derive_epoch, external_key_pair, mls_exporter

_SECRETS = (
    "joiner_secret",
    "welcome_secret",
    "init_secret",
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "epoch_authenticator",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
)


def _check(case: Case) -> None:
    suite = case["cipher_suite"]
    cs = get_suite(suite)
    group_id = h(case["group_id"])
    init_secret = h(case["initial_init_secret"])
    for epoch, e in enumerate(case["epochs"]):
        gc = GroupContext(suite, group_id, epoch, h(e["tree_hash"]),
                          h(e["confirmed_transcript_hash"]), ()).encode()
        expect(f"epoch {epoch} group_context", gc, h(e["group_context"]))
        secrets = derive_epoch(cs, init_secret, h(e["commit_secret"]), h(e["psk_secret"]), gc)
        for name in _SECRETS:
            expect(f"epoch {epoch} {name}", getattr(secrets, name), h(e[name]))
        _, external_pub = external_key_pair(cs, secrets.external_secret)
        expect(f"epoch {epoch} external_pub", external_pub, h(e["external_pub"]))
        ex = e["exporter"]
        exported = mls_exporter(
            cs, secrets.exporter_secret, ex["label"].encode(), h(ex["context"]), ex["length"]
        )
        expect(f"epoch {epoch} exporter.secret", exported, h(ex["secret"]))
        init_secret = secrets.init_secret


def run(cases: list[Case]) -> FileResult:
    return run_cases("key-schedule", cases, _check)
