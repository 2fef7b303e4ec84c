"""Generated extensions vectors (vectors/generated/extensions.json): the runner passes
on the committed file for all seven suites, the file is what `generate()` produces,
every value in it agrees with the independent reference of test_ext_reference (so the
file does not merely echo the code that wrote it), and a corrupted value is caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from mlsvc.conformance.extensions import dump, generate, run
from tests.conftest import VECTORS
from tests.unit import test_ext_reference as ref

PATH = VECTORS / "generated" / "extensions.json"


def _cases() -> list[dict[str, Any]]:
    with PATH.open() as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def test_the_committed_file_passes_for_all_seven_suites() -> None:
    result = run(_cases())
    assert result.failed == 0, result.failures()
    assert result.passed == len(result.cases) == 7
    assert set(result.by_suite()) == {str(s) for s in range(1, 8)}


def test_the_committed_file_is_reproducible() -> None:
    assert PATH.read_text() == dump(generate())


@pytest.mark.parametrize("index", range(7))
def test_every_value_agrees_with_the_reference(index: int) -> None:
    case = _cases()[index]
    suite = case["cipher_suite"]
    for v in case["pprf"]:
        key, depth = bytes.fromhex(v["key"]), v["depth"]
        punctured = [p["input"] for p in v["punctures"]]
        for p in v["punctures"]:
            assert p["output"] == ref.leaf(suite, key, depth, p["input"]).hex()
        for e in v["evaluations"]:
            if e["input"] in punctured:
                assert e["output"] is None
            else:
                assert e["output"] == ref.leaf(suite, key, depth, e["input"]).hex()
        assert v["state"] == ref.state_bytes(suite, key, depth, punctured).hex()
        assert v["state_nodes"] == len(ref.retained(depth, punctured))
    ae = case["application_export"]
    root = ref.derive_secret(suite, bytes.fromhex(ae["epoch_secret"]), b"application_export")
    assert ae["application_export_secret"] == root.hex()
    exports = case["safe_export"]["exports"]
    for e in exports:
        assert e["secret"] == ref.leaf(suite, root, 16, e["component_id"]).hex()
    ids = [e["component_id"] for e in exports]
    assert case["safe_export"]["state"] == ref.state_bytes(suite, root, 16, ids).hex()


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


CORRUPTIONS: dict[str, tuple[tuple[str | int, ...], Callable[[Any], Any]]] = {
    "puncture-output": (("pprf", 1, "punctures", 0, "output"), _flip),
    "pprf-state": (("pprf", 2, "state"), _flip),
    "punctured-evaluates": (("pprf", 1, "evaluations", 5, "output"), lambda _: "00" * 32),
    "unpunctured-fails": (("pprf", 3, "evaluations", 0, "output"), lambda _: None),
    "app-export": (("application_export", "application_export_secret"), _flip),
    "safe-export": (("safe_export", "exports", 1, "secret"), _flip),
    "exporter-state": (("safe_export", "state"), _flip),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupted_value_is_reported(name: str) -> None:
    cases = copy.deepcopy(_cases()[:2])
    path, change = CORRUPTIONS[name]
    obj: Any = cases[1]
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = change(obj[path[-1]])
    result = run(cases)
    assert result.passed == 1 and result.failed == 1, result.failures()
