"""benchmarks/brains3d.py: the 3D DDPM comparison table on small arrays (the training run is a benchmark)."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "brains3d.py"


def _script():
    spec = importlib.util.spec_from_file_location("brains3d_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_separates_a_shifted_set_and_writes_the_table():
    b = _script()
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.1, (1, 1, 16, 16, 16)).astype(np.float32)
    train = np.clip(base + rng.normal(0, 0.05, (8, 1, 16, 16, 16)), -1, 1).astype(np.float32)
    held = np.clip(base + rng.normal(0, 0.05, (8, 1, 16, 16, 16)), -1, 1).astype(np.float32)
    shifted = np.clip(held + 0.5, -1, 1).astype(np.float32)
    res = b.compare(train, held, shifted, seed=0)
    mmd = res["mmd2"]
    assert mmd["synthetic_vs_held_out"]["value"] > mmd["real_train_vs_held_out"]["high"]
    for est in (mmd["synthetic_vs_held_out"], mmd["real_train_vs_held_out"]):
        assert est["low"] <= est["value"] <= est["high"]
    assert res["n"] == {"train": 8, "held_out": 8, "synthetic": 8}
    text = b.markdown(res)
    assert "| synthetic vs held-out real |" in text and "MS-SSIM" in text
