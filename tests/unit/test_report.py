"""`mlsvc report`: the page, as files and as headless Chromium renders it.

The default run builds the quick report (no Z3, no model search, no official vectors:
a few seconds) and renders it in Chromium (Debian's `chromium`, which .ci/run installs):
every INV-, F- and VC- identifier is an element of the rendered DOM, every image loads
(a probe script, added to a copy of the page, writes each image's naturalWidth into the
DOM before it is dumped), and the browser logs no console message at all. A screenshot
is kept in test-artifacts/report.png. The full report (every verdict) goes through the
same checks in a slow test (make test-long), and its own screenshot is
test-artifacts/report-full.png.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlsvc import report
from mlsvc.checks import CHECKS
from mlsvc.cli import main
from mlsvc_model.config import FINDINGS
from mlsvc_model.invariants import INVARIANTS
from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROBE = """<script>
window.addEventListener("load", () => {
  const out = Array.from(document.images, (i) => ({
    src: i.getAttribute("src"), complete: i.complete, width: i.naturalWidth }));
  const pre = document.createElement("pre");
  pre.id = "image-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def identifiers() -> list[str]:
    """Every identifier the page must give an element id: INV-, F-, VC-."""
    vc = [c for c in CHECKS if c.startswith("VC-")]
    ids = [*INVARIANTS, *FINDINGS, *vc]
    assert len(INVARIANTS) >= 12 and len(FINDINGS) >= 12 and len(vc) >= 20
    return ids


class Elements(HTMLParser):
    """The id attributes and <img> sources of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []
        self.scripts = 0
        self.external: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.images.append(str(a.get("src")))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value.startswith(("http:", "https:", "//")) or (tag == "link" and value):
                self.external.append(value)


# --- Chromium ---------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed: apt-get install -y chromium (.ci/run does)")


@dataclass
class Rendered:
    dom: str
    stderr: str

    @property
    def console(self) -> list[str]:
        """Console messages (errors, uncaught exceptions, anything logged by a script)."""
        return [ln for ln in self.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]

    def probe(self) -> list[dict[str, object]]:
        start = self.dom.index('<pre id="image-probe">') + len('<pre id="image-probe">')
        images: list[dict[str, object]] = json.loads(self.dom[start:self.dom.index("</pre>",
                                                                                  start)])
        return images


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="mlsvc-chromium-") as profile:
        return subprocess.run(
            [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", *args],
            capture_output=True, text=True, timeout=180, check=False)


def render_dom(page: Path) -> Rendered:
    """The DOM Chromium builds from a copy of `page` with the image probe appended."""
    probe = page.with_name("probe-" + page.name)
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = run_chromium("--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return Rendered(done.stdout, done.stderr)


def screenshot(page: Path, keep_as: str) -> Path:
    shot = page.with_name(keep_as)
    done = run_chromium(f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri())
    assert done.returncode == 0 and shot.read_bytes().startswith(PNG_MAGIC), done.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / keep_as)
    return shot


def check_in_browser(page: Path) -> Rendered:
    rendered = render_dom(page)
    found = set(Elements(rendered.dom).ids)
    missing = [i for i in identifiers() if i not in found]
    assert not missing, f"identifiers missing from the rendered DOM: {missing}"
    images = rendered.probe()
    assert len(images) >= 8  # two diagrams and the cost plots
    broken = [i for i in images if not i["complete"] or not isinstance(i["width"], int)
              or i["width"] <= 0]
    assert not broken, f"images that did not load: {broken}"
    assert not rendered.console, f"console messages: {rendered.console}"
    return rendered


def check_files(out: Path) -> None:
    """Every <img> of the page is a file in DIR and a valid PNG or SVG; nothing external."""
    page = Elements((out / "index.html").read_text())
    assert page.scripts == 0 and page.external == []
    assert page.images
    for src in page.images:
        path = out / src
        assert path.is_file(), src
        data = path.read_bytes()
        if src.endswith(".png"):
            assert data.startswith(PNG_MAGIC), src
        else:
            root = ET.fromstring(data)
            assert root.tag == "{http://www.w3.org/2000/svg}svg", src
            assert int(root.attrib["width"]) > 0 and int(root.attrib["height"]) > 0


# --- the quick report (default run) --------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("report-quick")
    return out, main(["report", "--quick", "--out", str(out)])


@pytest.fixture(scope="module")
def collected() -> report.Report:
    """One quick collection, shared (tests change copies of it)."""
    return report.collect(quick=True)


@pytest.fixture(scope="module")
def quick(quick_run: tuple[Path, int]) -> Path:
    return quick_run[0]


def test_exit_status_is_what_the_page_shows(quick_run: tuple[Path, int],
                                            collected: report.Report) -> None:
    """Exit 1 exactly when the page shows a failed verdict (a red badge). Which way it
    goes depends on the working tree (the generated vectors are run in quick mode)."""
    out, rc = quick_run
    assert rc in (0, 1)
    assert (rc == 1) == ('class="badge bad"' in (out / "index.html").read_text())
    r = copy.deepcopy(collected)
    r.vectors = [report.VectorRow("generated", "x.json", 1, ["1"], ran=True, failed=1)]
    assert not r.ok and 'class="badge bad"' in report.render(r)


def test_quick_page_has_every_identifier_and_its_verdicts(quick: Path) -> None:
    text = (quick / "index.html").read_text()
    ids = Elements(text).ids
    assert len(ids) == len(set(ids)), "duplicate element ids"
    assert set(identifiers()) <= set(ids)
    assert set(CHECKS) <= set(ids)  # every named check, not only VC-
    assert "implementation: " in text and report.REFINEMENT in text
    assert text.count(report.QUICK) > len(INVARIANTS)
    for section in ("toc", "summary", "invariants", "proofs", "vectors", "checks",
                    "findings", "profile", "mutation", "diagrams", "costs"):
        assert section in ids
    for p in ("P1", "P23", "Q12"):
        assert p in ids


def test_quick_page_files(quick: Path) -> None:
    check_files(quick)
    copied = {p.name for p in (quick / "costs").glob("*.png")}
    assert copied == {p.name for p in (ROOT / "docs" / "costs").glob("*.png")}


def test_quick_page_in_chromium(quick: Path) -> None:
    check_in_browser(quick / "index.html")
    screenshot(quick / "index.html", "report.png")


def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    """The harness can say no: a missing image and a script error are both reported."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><p id="x">x</p><img src="missing.png">'
                    "<script>undefinedFunction();</script></body></html>")
    rendered = render_dom(page)
    assert [i["width"] for i in rendered.probe()] == [0]
    assert any("undefinedFunction" in line for line in rendered.console)


def test_quick_page_is_deterministic(collected: report.Report) -> None:
    a, b = copy.deepcopy(collected), report.collect(quick=True)
    a.seconds = b.seconds = 0.0
    assert report.render(a) == report.render(b)
    assert report.lifecycle_svg() == report.lifecycle_svg()


def test_a_finding_with_its_trace(collected: report.Report) -> None:
    row = report.task_finding("F1")
    assert row.reproduced and row.trace and row.violated == "INV-OP-KEYS-DISTINCT"
    r = copy.deepcopy(collected)
    r.findings = [row if f.id == "F1" else f for f in r.findings]
    text = report.render(r)
    block = text[text.index('id="F1"'):text.index('id="F2"')]
    assert '<ol class="trace">' in block and "reproduced" in block
    assert '<a href="#INV-OP-KEYS-DISTINCT">' in block


def test_documents_parsed(tmp_path: Path) -> None:
    ids = [p.id for p in report.profile_rows()]
    assert ids[0] == "P1" and "P23" in ids and "Q12" in ids
    doc = tmp_path / "MUTATION.md"
    doc.write_text("# Mutation testing\n\nFIGURES\n")
    assert report.mutation(doc).score is None
    doc.write_text("text\n\nmutation score: 96.4% (1000 of 1037 non-equivalent mutants)\n")
    assert report.mutation(doc).score == "96.4%"
    assert report.mutation(tmp_path / "absent.md").score is None


# --- the full report (make test-long) ---------------------------------------------------------


@pytest.mark.slow
def test_full_report_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--proof-timeout", "600"]) == 0
    text = (out / "index.html").read_text()
    assert report.QUICK not in text
    check_files(out)
    check_in_browser(out / "index.html")
    screenshot(out / "index.html", "report-full.png")


def test_refinement_verdicts_per_invariant() -> None:
    ok = "refines (profile ci: 10 runs, 150 steps in 3 s; ...)"
    bad = "fails (profile ci): implementation INV-ONE-LEAF: G1 has 2 leaves"
    assert report._refinement_verdict(ok, "INV-AGREE") == "holds"
    assert report._refinement_verdict(bad, "INV-ONE-LEAF") == "violated"
    assert report._refinement_verdict(bad, "INV-AGREE") == "not reached"
    assert report._refinement_verdict(report.REFINEMENT, "INV-AGREE") == "not run in quick mode"
    assert [report._refinement_kind(x) for x in (ok, bad, report.REFINEMENT)] == [
        "ok", "bad", "na"]
