"""The phantom datasets pass the official BIDS validator (npm ``bids-validator``, run with node)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "bids-validator"


def _validator() -> str:
    found = shutil.which("bids-validator") or (str(LOCAL) if LOCAL.exists() else None)
    if found is None:
        pytest.skip("bids-validator not found: `bash scripts/install-test-tools.sh` installs it (needs node and npm)")
    return found


def _errors(dataset: Path) -> list[str]:
    res = subprocess.run([_validator(), str(dataset), "--json"], capture_output=True,
                         text=True, timeout=300)
    report = json.loads(res.stdout)
    return [f"{i['key']}: {i.get('reason', '')}" for i in report["issues"]["errors"]]


def test_tiny_phantom_is_valid_bids(phantom):
    assert _errors(phantom) == []
