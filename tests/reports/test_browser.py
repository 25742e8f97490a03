"""The pages in a real browser: headless Chromium opens each from disk (file://), every image must
load (naturalWidth > 0) and no console error may occur; a screenshot of each is saved.

Skips when Chromium is not installed (``.ci/run`` installs Debian's ``chromium``). Set
``BIDS_FCD_SCREENSHOTS=<dir>`` to keep the screenshots; ``BIDS_FCD_CHROMIUM`` picks the binary.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bids_fcd.reports.group import write_group_report

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars", "--window-size=1280,2000",
         "--virtual-time-budget=8000")
TIMEOUT_S = 30
#: Injected first in <head> of a copy of the page: records errors (console.error, uncaught errors,
#: failed resources) and, once everything has loaded, every image's natural width, into the DOM.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errors.push(e.message ? 'error: ' + e.message : 'failed to load: ' + (t.src || t.href || t.tagName));
}, true);
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); orig.apply(console, arguments);
}; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {src: i.getAttribute('src'), width: i.naturalWidth, complete: i.complete}; });
  var pre = document.createElement('pre'); pre.id = 'bids-fcd-check';
  pre.textContent = JSON.stringify({images: imgs, errors: window.__errors});
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    override = os.environ.get("BIDS_FCD_CHROMIUM")
    for name in ((override,) if override else CANDIDATES):
        found = shutil.which(name) if name else None
        if found:
            return found
    pytest.skip("Chromium not found (tried " + ", ".join((override,) if override else CANDIDATES) +
                "); install Debian's `chromium` (.ci/run does) to run the browser test")


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def check_page(page: Path, tmp: Path) -> dict[str, list]:
    """Open a copy of ``page`` with :data:`PROBE` (beside it, so relative links hold) and return the
    probe's {"images": [...], "errors": [...]}."""
    text = page.read_text(encoding="utf-8")
    assert "<head>" in text
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        res = _browser(["--dump-dom", probe.resolve().as_uri()], tmp / f"profile-check-{page.stem}")
    finally:
        probe.unlink()
    m = re.search(r"<pre id=\"bids-fcd-check\">(.*?)</pre>", res.stdout, re.S)
    assert m, f"the page never finished loading in Chromium (rc {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, tmp: Path, name: str) -> Path:
    """``<name>.png`` of the top 1280x2000 pixels of ``page``, in ``tmp`` and in $BIDS_FCD_SCREENSHOTS."""
    png = tmp / f"{name}.png"
    res = _browser([f"--screenshot={png}", page.resolve().as_uri()], tmp / f"profile-shot-{page.stem}")
    assert png.is_file() and png.stat().st_size > 10_000, res.stderr[-2000:]
    keep = os.environ.get("BIDS_FCD_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(keep) / png.name)
    return png


@pytest.fixture(scope="module")
def pages(report_root: Path) -> dict[str, Path]:
    """The patient page, the control page and a group page over both (with a failed participant)."""
    rows = [{"participant_id": "sub-01", "session": None, "group": "fcd", "true_lobe": "FL", "predicted_lobe": "FL",
             "n_clusters": 2, "top_cluster_lobe": "FL", "top_cluster_hemisphere": "L", "top_cluster_peak_z": 6.9,
             "detected": True, "fp_clusters": 1},
            {"participant_id": "sub-02", "session": None, "group": "hc", "true_lobe": "n/a", "predicted_lobe": "FL",
             "n_clusters": 0, "fp_clusters": 0}]
    summary = {"n_participants": 2, "n_scored": 1, "n_controls": 1, "binarisation": "clusters of z > 3",
               "subject_sensitivity": 1.0, "fp_clusters_per_control": 0.0}
    froc = {"threshold": [3.0, 4.0, 6.95], "sensitivity_top": [1.0, 1.0, 0.0], "sensitivity_any": [1.0, 1.0, 0.0],
            "fp_per_control": [0.0, 0.0, 0.0], "n_patients": 1, "n_controls": 1}
    crashes = [{"participant": "sub-03", "message": "no FLAIR image found", "path": str(report_root / "x.json")}]
    write_group_report(report_root, rows, ("participant_id", "group", "n_clusters", "detected"), crashes, summary,
                       froc, 3.0)
    return {"patient": report_root / "sub-01.html", "control": report_root / "sub-02.html",
            "group": report_root / "group.html"}


@pytest.mark.parametrize("kind,n_images", [("patient", 5), ("control", 5), ("group", 2)])
def test_page_in_chromium(pages: dict[str, Path], kind: str, n_images: int, tmp_path: Path) -> None:
    _chromium()
    got = check_page(pages[kind], tmp_path)
    assert got["errors"] == []
    assert len(got["images"]) == n_images
    broken = [i["src"] for i in got["images"] if not (i["complete"] and i["width"] > 0)]
    assert broken == [], f"images that did not load in {pages[kind].name}: {broken}"
    screenshot(pages[kind], tmp_path, f"{kind}-page")


def test_probe_sees_a_broken_image(tmp_path: Path) -> None:
    """The check can fail: a page with a missing figure and a console error is caught."""
    _chromium()
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body><img src='nope.png'>"
                    "<script>console.error('bad thing')</script></body></html>")
    got = check_page(page, tmp_path)
    assert got["images"][0]["width"] == 0
    assert any("bad thing" in e for e in got["errors"]) and any("nope.png" in e for e in got["errors"])
