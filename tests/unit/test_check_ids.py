"""Every check ID that impl/ raises is registered in mlsvc.checks.CHECKS (so
docs/VALIDATION.md, rendered from it, lists every check the library enforces)."""

from __future__ import annotations

import re

from mlsvc.checks import CHECKS
from tests.conftest import ROOT

ID = re.compile(r'"((?:LN|KP|PL|PR|EC|CM|WEL|GI|MSG|FRAME|TREE|TREEKEM|VC|EXT)-[A-Z0-9-]+)"')


def raised_ids() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in (ROOT / "impl" / "mlsvc").rglob("*.py"):
        if path.name == "checks.py":
            continue
        for match in ID.finditer(path.read_text()):
            found.setdefault(match.group(1), []).append(path.name)
    return found


def test_every_raised_id_is_registered() -> None:
    found = raised_ids()
    assert len(found) > 40
    missing = {cid: files for cid, files in found.items() if cid not in CHECKS}
    assert not missing, f"raised but not in mlsvc.checks.CHECKS: {missing}"


def test_registered_ids_are_well_formed() -> None:
    for cid, (section, rule) in CHECKS.items():
        assert ID.fullmatch(f'"{cid}"'), cid
        assert section and rule.endswith("."), cid
