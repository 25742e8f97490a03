"""The benchmark's comparison of synthetic and real pair sets."""

from __future__ import annotations

import numpy as np

from bids_fcd.synthesis import evaluate


def _set(n: int, rng: np.random.Generator, contrast: float) -> np.ndarray:
    x = np.full((n, 2, 24, 24), -1.0)
    x[:, 0, 4:20, 4:20] = rng.normal(0.0, 0.05, (n, 16, 16))
    for i in range(n):
        r, c = rng.integers(6, 14, 2)
        x[i, 0, r:r + 3, c:c + 3] = contrast
        x[i, 1, r:r + 3, c:c + 3] = 1.0
    return x


def test_compare_pairs_tells_a_matched_set_from_a_wrong_one() -> None:
    rng = np.random.default_rng(630)
    train, test = _set(20, rng, 0.5), _set(20, rng, 0.5)
    groups = np.repeat(np.arange(8), 5)
    good = evaluate.compare_pairs(train, test, _set(20, rng, 0.5), groups, rng, n_boot=100)
    bad = evaluate.compare_pairs(train, test, _set(20, rng, -0.5), groups, rng, n_boot=100)
    assert good["mmd_image"]["synthetic_vs_test"]["value"] < bad["mmd_image"]["synthetic_vs_test"]["value"]
    good["control"] = bad["control"] = {}
    vg, vb = evaluate.verdicts(good), evaluate.verdicts(bad)
    assert vg["flair_ratio_within_20pct"] and vg["contrast_within_20pct"]
    assert not vb["contrast_within_20pct"]
    assert vg["mmd_within_train_vs_test_ci"] and not vb["mmd_within_train_vs_test_ci"]
    assert good["mask_stats"]["synthetic"]["area_mean"] == 9.0
    assert good["near_binary_fraction"] == 1.0
