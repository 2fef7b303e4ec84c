"""Which runner reads which official vector file, and running a folder of them."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from mlsvc.conformance.base import Case, FileResult

# file stem -> runner module (mlsvc.conformance.<module>.run)
RUNNERS: dict[str, str] = {
    "tree-math": "tree_math",
    "crypto-basics": "crypto_basics",
    "secret-tree": "secret_tree",
    "key-schedule": "key_schedule",
    "message-protection": "message_protection",
    "psk_secret": "psk_secret",
    "transcript-hashes": "transcript_hashes",
    "deserialization": "deserialization",
    "messages": "messages",
    "tree-validation": "tree_validation",
    "tree-operations": "tree_operations",
    "treekem": "treekem",
    "welcome": "welcome",
    "passive-client-welcome": "passive_client",
    "passive-client-handling-commit": "passive_client",
    "passive-client-random": "passive_client",
}


def default_dir() -> Path:
    """The project's pinned copies (vectors/rfc9420 at the repository root)."""
    return Path(__file__).resolve().parents[3] / "vectors" / "rfc9420"


def run_file(path: Path) -> FileResult:
    module = importlib.import_module(f"mlsvc.conformance.{RUNNERS[path.stem]}")
    with path.open() as f:
        cases: list[Case] = json.load(f)
    result: FileResult = module.run(cases)
    result.name = path.stem
    return result


@dataclass
class FolderReport:
    results: list[FileResult]
    unrecognised: list[str]

    @property
    def ok(self) -> bool:
        return all(r.failed == 0 and r.skipped == 0 and r.passed > 0 for r in self.results)


def run_folder(folder: Path) -> FolderReport:
    results: list[FileResult] = []
    unrecognised: list[str] = []
    for path in sorted(folder.glob("*.json")):
        if path.stem in RUNNERS:
            results.append(run_file(path))
        else:
            unrecognised.append(path.name)
    return FolderReport(results, unrecognised)
