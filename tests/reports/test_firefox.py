"""The viewer in Firefox: the patient page opened from disk with the network pointed at a closed
proxy, on a virtual X display (Firefox gives WebGL only with a display, and blocks software GL
unless ``webgl.force-enabled``), driven over WebDriver BiDi by ``firefox_bidi.mjs`` under node.

Skips unless Firefox (``firefox-esr`` or ``firefox``), ``Xvfb`` and node >= 20 (with
``--experimental-websocket``) are installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

DRIVER = Path(__file__).with_name("firefox_bidi.mjs")
#: Prefs of the throw-away profile: WebGL on software GL, every connection to a closed proxy, and
#: no first-run chatter.
PREFS = {"webgl.force-enabled": True, "network.proxy.type": 1, "network.proxy.http": "127.0.0.1",
         "network.proxy.http_port": 9, "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9,
         "network.proxy.allow_hijacking_localhost": False, "browser.shell.checkDefaultBrowser": False,
         "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
         "app.update.enabled": False, "browser.startup.homepage_override.mstone": "ignore"}


def _tools() -> tuple[str, str, str]:
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    xvfb, node = shutil.which("Xvfb"), shutil.which("node")
    if not (firefox and xvfb and node):
        pytest.skip("Firefox, Xvfb or node not found: `apt-get install firefox-esr xvfb` (node >= 20) to run the "
                    "viewer in Firefox")
    ok = subprocess.run([node, "--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                        capture_output=True, check=False)
    if ok.returncode != 0:
        pytest.skip("node has no WebSocket client (needs node >= 20 with --experimental-websocket)")
    return firefox, xvfb, node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def firefox(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Firefox on its own X display with WebDriver BiDi on a free port; yields (node, port)."""
    ff, xvfb, node = _tools()
    x = subprocess.Popen([xvfb, "-displayfd", "1", "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert x.stdout is not None
    display = x.stdout.readline().strip()
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()))
    port = _free_port()
    proc = subprocess.Popen([ff, "--no-remote", "--profile", str(profile), "--remote-debugging-port", str(port),
                             "--window-size", "1280,900"], env={"DISPLAY": f":{display}", "HOME": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:  # until BiDi listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("Firefox did not open its WebDriver BiDi port within 60 s")
        yield node, port
    finally:
        proc.kill()
        proc.wait()
        x.kill()
        x.wait()


def test_viewer_in_firefox(report_root: Path, firefox: tuple[str, int], tmp_path: Path) -> None:
    from PIL import Image

    node, port = firefox
    png = tmp_path / "firefox.png"
    res = subprocess.run([node, "--experimental-websocket", str(DRIVER), str(port),
                          (report_root / "sub-01.html").resolve().as_uri(), str(png)],
                         capture_output=True, text=True, timeout=120, check=False)
    got = json.loads(res.stdout.strip().splitlines()[-1]) if res.stdout.strip() else {"failed": res.stderr}
    assert "failed" not in got, got
    assert got["state"] == "loaded", got
    assert got["volumes"] == 9
    errors = [e for e in got["logs"] if e["level"] == "error"]
    assert errors == []
    assert any(e["text"].startswith("bids-fcd viewer: 9 volumes loaded in ") for e in got["logs"])
    assert len(got["jumps"]) == 2
    for j in got["jumps"]:
        np.testing.assert_allclose([float(v) for v in j["crosshair"].split()], [float(v) for v in j["target"].split()],
                                   atol=0.051)
    rgb = np.asarray(Image.open(png).convert("RGB"), np.int32)
    assert rgb.mean(axis=2).std() > 20
