"""Test vectors for the draft-ietf-mls-extensions-09 mechanisms virtual clients use:
the puncturable PRF (profile P2), application_export_secret and SafeExportSecret (§4.4).

No mlswg repository ships vectors for these (digest §7), so this module both generates
them (`generate`, wired to `mlsvc vectors generate extensions --out FILE`) and checks a
file of them (`run`). The format follows the mlswg test-vectors style: one JSON object
per cipher suite, byte strings as lowercase hex, integers as JSON numbers, inputs
beside outputs; docs/EXTENSIONS.md documents every field. Inputs are derived from a
fixed seed, so generating twice gives the same file.

Per case (cipher suite 1..7):
- `pprf`: a list; each entry has `depth`, `key`, then `punctures` (in order, each an
  `input` and the `output` returned while puncturing it), then `evaluations` after all
  punctures (`output` null means the input is punctured and evaluation must fail), and
  `state` (the TLS-encoded PPRFState) with `state_nodes` (its node count).
- `application_export`: `epoch_secret` -> `application_export_secret`.
- `safe_export`: `exports` done in order on that epoch's Exporter Tree (each
  `component_id` and its `secret`; a second export of each must fail) and the `state`
  after them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlsvc.conformance.base import Case, FileResult, Mismatch, expect, h, run_cases
from mlsvc.crypto.suites import CipherSuite, get_suite
from mlsvc.ext.codepoints import EXPORTER_TREE_DEPTH
from mlsvc.ext.pprf import PPRF, PuncturedInputError
from mlsvc.ext.safe_export import ExportConsumedError, SafeExporter, application_export_secret

SUITES = tuple(range(1, 8))
_SEED = b"mlsvc extensions test vectors v1"

# (depth, punctured inputs in order, extra inputs to evaluate afterwards)
_PPRF_PLAN: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...] = (
    (1, (1,), (0, 1)),
    (4, (5, 6, 15), tuple(range(16))),
    (16, (0xF001, 0x0000, 0xF000), (0x0001, 0x7FFF, 0x8000, 0xF002, 0xFFFF, 0xF001, 0x0000)),
    (32, (0xDEADBEEF, 0xDEADBEEE, 0x00000001),
     (0x00000000, 0xDEADBEEC, 0xDEADBEEF, 0x80000000, 0xFFFFFFFF, 0x12345678)),
)

# SafeExportSecret component IDs, exported in this order: a private-use one (P7's
# 0x8001), the third-party vector's 0xF001, its sibling, both ends, a registered one.
_SAFE_EXPORTS: tuple[int, ...] = (0x8001, 0xF001, 0xF000, 0x0000, 0xFFFF, 0x0002, 0x8002)


def _bytes(label: str, suite: int, n: int) -> bytes:
    """Deterministic generator input: SHAKE-256(seed || suite || label)."""
    return hashlib.shake_256(_SEED + bytes([suite]) + label.encode()).digest(n)


def _pprf_case(cs: CipherSuite, depth: int, punctures: tuple[int, ...],
               extra: tuple[int, ...]) -> dict[str, Any]:
    key = _bytes(f"pprf key depth {depth}", cs.id, cs.nh)
    pprf = PPRF(cs, key, depth)
    done = [{"input": x, "output": pprf.evaluate_and_puncture(x).hex()} for x in punctures]
    evaluations: list[dict[str, Any]] = []
    for x in dict.fromkeys(extra + punctures):
        out = None if pprf.is_punctured(x) else pprf.evaluate(x).hex()
        evaluations.append({"input": x, "output": out})
    return {
        "depth": depth, "key": key.hex(), "punctures": done, "evaluations": evaluations,
        "state": pprf.serialize().hex(), "state_nodes": len(pprf),
    }


def _case(suite: int) -> Case:
    cs = get_suite(suite)
    epoch_secret = _bytes("epoch_secret", suite, cs.nh)
    root = application_export_secret(cs, epoch_secret)
    exporter = SafeExporter(cs, root)
    exports = [{"component_id": c, "secret": exporter.export(c).hex()} for c in _SAFE_EXPORTS]
    return {
        "cipher_suite": suite,
        "pprf": [_pprf_case(cs, d, p, e) for d, p, e in _PPRF_PLAN],
        "application_export": {
            "epoch_secret": epoch_secret.hex(), "application_export_secret": root.hex(),
        },
        "safe_export": {"exports": exports, "state": exporter.tree.serialize().hex()},
    }


def generate() -> list[Case]:
    """The vector file's content, for all seven RFC 9420 cipher suites."""
    return [_case(s) for s in SUITES]


def dump(cases: list[Case]) -> str:
    """The canonical text of a vector file (what is committed in vectors/generated)."""
    return json.dumps(cases, indent=2) + "\n"


def write(path: Path) -> int:
    """Generate and write the file; returns the number of cases."""
    cases = generate()
    path.write_text(dump(cases))
    return len(cases)


# --- the runner -------------------------------------------------------------------------------


def _check_evaluations(what: str, pprf: PPRF, evaluations: list[dict[str, Any]]) -> None:
    for ev in evaluations:
        x, want = ev["input"], ev["output"]
        if want is None:
            try:
                pprf.evaluate(x)
            except PuncturedInputError:
                continue
            raise Mismatch(f"{what}: input {x} evaluated but is punctured in the vector")
        expect(f"{what}: evaluate({x})", pprf.evaluate(x), h(want))


def _check_pprf(cs: CipherSuite, i: int, v: dict[str, Any]) -> None:
    what = f"pprf[{i}] depth {v['depth']}"
    pprf = PPRF(cs, h(v["key"]), v["depth"])
    for p in v["punctures"]:
        expect(f"{what}: puncture({p['input']})", pprf.evaluate_and_puncture(p["input"]),
               h(p["output"]))
    _check_evaluations(what, pprf, v["evaluations"])
    expect(f"{what}: state", pprf.serialize(), h(v["state"]))
    expect(f"{what}: state_nodes", len(pprf), v["state_nodes"])
    restored = PPRF.restore(cs, v["depth"], h(v["state"]))
    _check_evaluations(f"{what} (restored)", restored, v["evaluations"])
    expect(f"{what}: restored state", restored.serialize(), h(v["state"]))


def _check(case: Case) -> None:
    cs = get_suite(case["cipher_suite"])
    for i, v in enumerate(case["pprf"]):
        _check_pprf(cs, i, v)
    ae = case["application_export"]
    root = application_export_secret(cs, h(ae["epoch_secret"]))
    expect("application_export_secret", root, h(ae["application_export_secret"]))
    se = case["safe_export"]
    exporter = SafeExporter(cs, root)
    for e in se["exports"]:
        cid = e["component_id"]
        expect(f"SafeExportSecret(0x{cid:04x})", exporter.export(cid), h(e["secret"]))
        try:
            exporter.export(cid)
        except ExportConsumedError:
            pass
        else:
            raise Mismatch(f"SafeExportSecret(0x{cid:04x}) exported twice in one epoch")
    expect("safe_export state", exporter.tree.serialize(), h(se["state"]))
    restored = PPRF.restore(cs, EXPORTER_TREE_DEPTH, h(se["state"]))
    for e in se["exports"]:
        if not restored.is_punctured(e["component_id"]):
            raise Mismatch(f"restored exporter state still holds 0x{e['component_id']:04x}")


def run(cases: list[Case]) -> FileResult:
    return run_cases("extensions", cases, _check)
