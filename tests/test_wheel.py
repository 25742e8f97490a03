"""An installed wheel finds its model (issue #18): the quick part of scripts/wheel-smoke.sh.

Builds the bids-fcd wheel, installs it (and nothing else of the checkout) into a fresh virtual
environment whose dependencies come from this one through a .pth file, and from a folder outside the
checkout runs ``bids-fcd --version`` and loads the shipped default model. ``bash scripts/wheel-smoke.sh``
also runs the participant level on a phantom with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import bids_fcd

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_the_installed_wheel_finds_the_shipped_model(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIDS_FCD_", "PYTHON"))}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
          str(ROOT)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("bids_fcd-*.whl")
    venv = tmp_path / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip())
    (site / "zz-bids-fcd-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
         tmp_path, env)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    version = _run([str(venv / "bin" / "bids-fcd"), "--version"], outside, env)
    assert version.strip() == f"bids-fcd {bids_fcd.__version__}"
    out = _run([str(py), "-c", "import bids_fcd, torch\nfrom bids_fcd.nets.checkpoint import load_model\n"
                "m = load_model(None, torch.device('cpu'))\nprint(bids_fcd.__file__)\nprint(m.path)\nprint(m.name)"],
               outside, env).split()
    assert out[0].startswith(str(venv)), f"bids_fcd was imported from {out[0]}, not from the wheel"
    assert out[1].startswith(str(venv)) and out[2] == "phantom-default", out
