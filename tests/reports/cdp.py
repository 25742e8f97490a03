"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no websocket library):
enough to open a page in headless Chromium and time the viewer on the real clock.

``--virtual-time-budget`` (what the other browser tests use) makes the page's clocks virtual, so the
viewer's own ``data-load-ms`` says little there; here nothing is virtual. Run by hand as
``python -m tests.reports.cdp OUTPUT_DIR/sub-<label>.html [runs]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Evaluated in the page: the viewer's state, its own load time and the time since navigation.
STATE_JS = ("(function(){var v=document.getElementById('viewer');return v?[v.getAttribute('data-viewer-state'),"
            "Number(v.getAttribute('data-load-ms')),performance.now()]:null})()")


class Chromium:
    """Headless Chromium driven through fds 3 (commands in) and 4 (replies out), JSON + NUL framed."""

    def __init__(self, binary: str, flags: tuple[str, ...] = ()) -> None:
        # Chromium's helper processes can still write into the profile while it is removed
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        r_in, self._w = os.pipe()
        self._r, w_out = os.pipe()

        def child() -> None:  # the child's fd 3 reads our commands, its fd 4 carries the replies
            os.dup2(r_in, 3)
            os.dup2(w_out, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self._proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                                       f"--user-data-dir={self._profile.name}", *flags, "about:blank"],
                                      preexec_fn=child, close_fds=False, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(r_in)
        os.close(w_out)
        self._buf = b""
        self._id = 0
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]

    def send(self, method: str, params: dict[str, Any] | None = None, page: bool = False,
             timeout_s: float = 60.0) -> dict[str, Any]:
        """Send one command (to the page's session when ``page``) and return its result."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self._session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            while b"\0" not in self._buf:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe during {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(f"no reply to {method} within {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        return res.get("result", {}).get("value")

    def close(self) -> None:
        """Kill the browser with its helper processes (its own session) and remove its profile."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._profile.cleanup()


def time_viewer(page: Path, binary: str = "chromium", timeout_s: float = 60.0) -> dict[str, Any]:
    """Open ``page`` in a fresh browser and wait for the viewer to settle.

    Returns:
        {"state", "viewer_ms" (the glue's own load time), "page_ms" (navigation start to loaded, as
        the page's clock saw it), "wall_ms" (from the navigate command, on this side)}.
    """
    browser = Chromium(binary)
    try:
        t0 = time.monotonic()
        browser.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, page=True)
        state = None
        while time.monotonic() - t0 < timeout_s:
            state = browser.evaluate(STATE_JS)
            if state and state[0] not in ("pending", "loading"):
                break
            time.sleep(0.02)
        wall = (time.monotonic() - t0) * 1000
    finally:
        browser.close()
    if not state:
        return {"state": None, "viewer_ms": None, "page_ms": None, "wall_ms": round(wall)}
    return {"state": state[0], "viewer_ms": state[1], "page_ms": round(state[2]), "wall_ms": round(wall)}


if __name__ == "__main__":
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for _ in range(runs):
        print(json.dumps(time_viewer(Path(sys.argv[1]))))  # noqa: T201 - a command-line tool
