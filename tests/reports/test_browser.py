"""The pages in a real browser: headless Chromium opens each from disk (file://), every image must
load (naturalWidth > 0) and no console error may occur; a screenshot of each is saved. The viewer:
with the network disabled it loads its volumes, follows the cluster table's links to each peak and
draws a non-blank picture; without WebGL2 or without its scripts the page says why.

Skips when Chromium is not installed (``.ci/run`` installs Debian's ``chromium``). Set
``BIDS_FCD_SCREENSHOTS=<dir>`` to keep the screenshots; ``BIDS_FCD_CHROMIUM`` picks the binary.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bids_fcd.reports.group import write_group_report
from tests.reports.conftest import NATIVE_SHIFT_MM

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars", "--window-size=1280,2000",
         "--virtual-time-budget=8000")
TIMEOUT_S = 90
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


def _browser(args: list[str], profile: Path, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    base = [f for f in FLAGS if not any(f.split("=")[0] == g.split("=")[0] for g in flags)]
    cmd = [_chromium(), *base, *flags, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def check_page(page: Path, tmp: Path, probe_js: str = PROBE, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Open a copy of ``page`` with ``probe_js`` (beside it, so relative links hold) and return what
    the probe wrote into ``<pre id="bids-fcd-check">`` (:data:`PROBE`: {"images", "errors"})."""
    text = page.read_text(encoding="utf-8")
    assert "<head>" in text
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(text.replace("<head>", "<head>" + probe_js, 1), encoding="utf-8")
    try:
        res = _browser(["--dump-dom", probe.resolve().as_uri()], tmp / f"profile-check-{page.stem}", flags)
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


# ------------------------------------------------------------------------------------------ viewer

#: No network: every host name fails to resolve and every request would go to a closed proxy.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=30000")
#: Without WebGL (hence without WebGL2).
NO_WEBGL = ("--disable-3d-apis",)
#: :data:`PROBE`'s error capture, plus console.log lines; once the viewer has settled it clicks the
#: cluster rows (last first, so each click moves the crosshair) and records where the crosshair went.
VIEWER_PROBE = PROBE.replace("window.addEventListener('load'", "window.__unused = ('load'").replace(
    "</script>", r"""
window.__logs = [];
(function () { var orig = console.log; console.log = function () {
  window.__logs.push(Array.prototype.join.call(arguments, ' ')); orig.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var t0 = Date.now(), v = document.getElementById('viewer'), out = {jumps: []};
  function finish() {
    out.state = v.getAttribute('data-viewer-state');
    out.volumes = Number(v.getAttribute('data-volumes-loaded'));
    out.load_ms = Number(v.getAttribute('data-load-ms'));
    out.status = document.getElementById('viewer-status').textContent;
    out.images = Array.prototype.map.call(document.images, function (i) {
      return {src: i.getAttribute('src'), width: i.naturalWidth, complete: i.complete}; });
    out.resources = performance.getEntriesByType('resource').map(function (e) { return e.name; });
    out.scripts = Array.prototype.map.call(document.scripts, function (e) { return e.src; }).filter(Boolean);
    out.logs = window.__logs; out.errors = window.__errors;
    var pre = document.createElement('pre'); pre.id = 'bids-fcd-check';
    pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
  }
  function controls() {  // every control once, then the read-out names the chosen image
    var bg = document.getElementById('viewer-background'); bg.value = 'pseudo';
    bg.dispatchEvent(new Event('change'));
    var thr = document.getElementById('viewer-threshold'); thr.value = thr.max; out.threshold_max = thr.max;
    thr.dispatchEvent(new Event('input'));
    ['viewer-opacity', 'viewer-z', 'viewer-clusters', 'viewer-lesion'].forEach(function (id) {
      var el = document.getElementById(id); if (el) { el.dispatchEvent(new Event(el.type === 'range' ? 'input' : 'change')); } });
    setTimeout(function () {
      out.readout = document.getElementById('viewer-readout').textContent;
      out.threshold = document.getElementById('viewer-threshold-value').textContent; finish(); }, 100);
  }
  function jump(rows, i) {
    if (i < 0) { controls(); return; }
    rows[i].click();
    setTimeout(function () {
      out.jumps.push({target: rows[i].getAttribute('data-peak-mm'), crosshair: v.getAttribute('data-crosshair-mm'),
                      scanner: v.getAttribute('data-scanner-mm')});
      jump(rows, i - 1); }, 100);
  }
  (function poll() {
    var s = v.getAttribute('data-viewer-state');
    if (s === 'loaded') {
      out.start = v.getAttribute('data-crosshair-mm');
      var rows = document.querySelectorAll('#cluster-table tr[data-peak-mm]');
      jump(rows, rows.length - 1);
    } else if ((s === 'pending' || s === 'loading') && Date.now() - t0 < 25000) { setTimeout(poll, 50); }
    else { finish(); }
  })();
});
</script>""")
#: Injected into the screenshot's copy: only the viewer's section is shown (headless Chromium's
#: --screenshot paints nothing when the page is scrolled by a script).
VIEWER_ONLY = ("<style>nav,main>*:not(#viewer-section):not(#viewer){display:none!important}</style>")


def _mm(text: str | None) -> np.ndarray:
    assert text, "the viewer set no data-crosshair-mm"
    return np.array([float(v) for v in text.split()])


@pytest.mark.parametrize("kind,n_volumes", [("patient", 9), ("control", 8)])
def test_viewer_loads_offline_and_follows_the_cluster_links(pages: dict[str, Path], kind: str, n_volumes: int,
                                                            tmp_path: Path) -> None:
    _chromium()
    got = check_page(pages[kind], tmp_path, VIEWER_PROBE, OFFLINE)
    assert got["state"] == "loaded", f"viewer state {got['state']}: {got['status']} {got['errors']}"
    assert got["errors"] == []
    assert got["volumes"] == n_volumes
    assert any(line.startswith(f"bids-fcd viewer: {n_volumes} volumes loaded in ") for line in got["logs"])
    offsite = [r for r in got["resources"] + got["scripts"] if not r.startswith(("file:", "data:", "blob:"))]
    assert offsite == [], f"the page fetched from the network: {offsite}"
    assert [s.rsplit("/", 2)[-2:] for s in got["scripts"]] == [["assets", "niivue.umd.js"],
                                                              ["assets", "bids-fcd-viewer.js"]]
    if kind == "patient":
        assert len(got["jumps"]) == 2
        np.testing.assert_allclose(_mm(got["start"]), _mm(got["jumps"][-1]["target"]), atol=0.051)
        for j in got["jumps"]:
            np.testing.assert_allclose(_mm(j["crosshair"]), _mm(j["target"]), atol=0.051)
            np.testing.assert_allclose(_mm(j["scanner"]), _mm(j["target"]) + NATIVE_SHIFT_MM, atol=0.06)
        assert not np.allclose(_mm(got["jumps"][0]["crosshair"]), _mm(got["jumps"][1]["crosshair"]))
    else:
        assert got["jumps"] == [] and got["start"]  # no cluster: starts at the highest z
    assert "pseudo-healthy FLAIR" in got["readout"] and "template mm" in got["readout"]
    assert "T1w scanner mm" in got["readout"]
    assert got["threshold"] == f"{float(got['threshold_max']):.1f}" != "3.0"


def test_viewer_screenshot_is_not_blank(anatomical_page: Path, tmp_path: Path) -> None:
    """The viewer on the 2 mm page with anatomy (the docs' screenshot)."""
    from PIL import Image

    _chromium()
    page = anatomical_page
    shot = page.with_name(".shot-viewer.html")
    shot.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + VIEWER_ONLY, 1),
                    encoding="utf-8")
    try:
        png = tmp_path / "viewer.png"
        res = _browser([f"--screenshot={png}", shot.resolve().as_uri()], tmp_path / "profile-shot-viewer",
                       ("--window-size=1280,800", *OFFLINE))
    finally:
        shot.unlink()
    assert png.is_file(), res.stderr[-2000:]
    rgb = np.asarray(Image.open(png).convert("RGB"), np.int32)
    canvas = rgb[185:730, 70:1210]  # the canvas (560 px tall) below the heading, status line and controls
    grey = canvas.mean(axis=2)
    assert (grey > 60).mean() > 0.15, "the viewer drew no image"
    assert grey.std() > 20
    warm = (canvas[..., 0] > 150) & (canvas[..., 2] < 110) & (canvas[..., 0] - canvas[..., 2] > 100)
    assert warm.sum() > 30, "neither the z overlay nor the cluster outlines are visible"
    keep = os.environ.get("BIDS_FCD_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(keep) / "viewer.png")


def test_without_webgl2_the_page_says_why(pages: dict[str, Path], tmp_path: Path) -> None:
    _chromium()
    got = check_page(pages["patient"], tmp_path, VIEWER_PROBE, NO_WEBGL)
    assert got["state"] == "no-webgl2"
    assert "WebGL2" in got["status"] and "static figures" in got["status"]
    assert got["errors"] == []
    assert len(got["images"]) == 5 and all(i["complete"] and i["width"] > 0 for i in got["images"])


def test_without_its_scripts_the_page_says_why(pages: dict[str, Path], tmp_path: Path) -> None:
    """A page copied without the NiiVue bundle of OUTPUT_DIR/assets/ explains what to copy (without any
    script at all, the status line's default text says the same)."""
    _chromium()
    lone = tmp_path / "lone"
    (lone / "assets").mkdir(parents=True)
    page = lone / pages["patient"].name
    shutil.copyfile(pages["patient"], page)
    shutil.copyfile(pages["patient"].parent / "assets" / "bids-fcd-viewer.js", lone / "assets" / "bids-fcd-viewer.js")
    got = check_page(page, tmp_path, VIEWER_PROBE)
    assert got["state"] == "no-script"
    assert "assets/" in got["status"] and "static figures" in got["status"]
    assert any("niivue.umd.js" in e for e in got["errors"])  # the missing file itself is an error
    assert "assets/" in pages["patient"].read_text().split("id='viewer-status'")[1].split("</p>")[0]


#: Generous bound on the viewer's load on the real clock (software WebGL on 2 shared cores took ~2.5 s).
LOAD_BOUND_MS = 30_000


def test_viewer_load_time_at_the_2mm_grid(anatomical_page: Path) -> None:
    """The page at the default grid, on the real clock (not the virtual time of the other tests)."""
    from tests.reports.cdp import time_viewer

    got = time_viewer(anatomical_page, _chromium())
    logging.getLogger(__name__).info("viewer at the 2 mm grid (%d bytes): %s", anatomical_page.stat().st_size, got)
    assert got["state"] == "loaded", got
    assert 0 < got["viewer_ms"] <= got["page_ms"] < LOAD_BOUND_MS
