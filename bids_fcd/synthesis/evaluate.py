"""Compare synthetic (FLAIR, mask) pairs with real ones, as the synthesis benchmark reports them (pure arrays).

The synthetic set stands in for the real *training* slices (it is sampled with their tokens), so
both are compared with the same held-out real set: MMD²(real train, real test) is the
real-vs-real reference and MMD²(synthetic, real test) should fall inside its bootstrap CI. A
subject-disjoint split-half of all real slices gives a second reference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bids_fcd.synthesis import metrics as M


def _est(e: M.Estimate) -> dict[str, float]:
    return {"value": e.value, "low": e.low, "high": e.high}


def compare_pairs(real_train: np.ndarray, real_test: np.ndarray, synthetic: np.ndarray, groups: np.ndarray,
                  rng: np.random.Generator, n_boot: int = 1000, mask_min_pixels: int = 1,
                  feature_seed: int = 0) -> dict[str, Any]:
    """Metrics of three sets of pairs (N, 2, H, W) in [−1, 1] (channel 1 = mask, binarised at 0).

    ``groups`` (N_train + N_test,) subject labels of the real slices (for the split-half).
    Returns a JSON-ready dict: MMD² on pixels (image channel and both channels; Gaussian kernel,
    one median-heuristic σ per comparison family, from the real slices only), KID and
    Fréchet distance on :class:`~bids_fcd.synthesis.metrics.RandomFeatures` of the image channel,
    MS-SSIM diversity, FLAIR ratio inside/outside the masks, mask statistics.
    """
    sets = {"real_train": real_train, "real_test": real_test, "synthetic": synthetic}
    real_all = np.concatenate([real_train, real_test])
    out: dict[str, Any] = {"n": {k: int(len(v)) for k, v in sets.items()}}
    for name, sl in (("mmd_image", slice(0, 1)), ("mmd_pair", slice(0, 2))):
        # σ from the real slices only, so the real-vs-real rows do not change with the model compared
        sigma = M.median_bandwidth(real_train[:, sl], real_test[:, sl])
        out[name] = {
            "sigma": sigma,
            "real_train_vs_test": _est(M.mmd_bootstrap(real_train[:, sl], real_test[:, sl], rng, n_boot, sigma)),
            "synthetic_vs_test": _est(M.mmd_bootstrap(synthetic[:, sl], real_test[:, sl], rng, n_boot, sigma)),
            "real_split_half": _est(M.split_half_mmd(real_all[:, sl], rng, n_boot, sigma, groups)),
        }
    net = M.RandomFeatures(in_channels=1, spatial_dims=2, seed=feature_seed)
    feats = {k: M.features(v[:, :1], net) for k, v in sets.items()}
    out["kid_random_features"] = {
        "real_train_vs_test": _est(M.kid(feats["real_train"], feats["real_test"], rng, n_boot)),
        "synthetic_vs_test": _est(M.kid(feats["synthetic"], feats["real_test"], rng, n_boot)),
    }
    out["frechet_random_features"] = {
        "real_train_vs_test": M.frechet(feats["real_train"], feats["real_test"]),
        "synthetic_vs_test": M.frechet(feats["synthetic"], feats["real_test"]),
    }
    out["ms_ssim_diversity"] = {k: _est(M.ms_ssim_diversity(v[:, :1], rng, n_boot=n_boot)) for k, v in sets.items()}
    masks = {k: M.binarise(v[:, 1], mask_min_pixels if k == "synthetic" else 1) for k, v in sets.items()}
    out["flair_ratio"] = {k: M.flair_ratio(v[:, 0], masks[k]) for k, v in sets.items()}
    out["gradient_energy"] = {k: M.gradient_energy(v[:, 0]) for k, v in sets.items()}
    out["mask_stats"] = {k: dataclasses.asdict(M.mask_stats(m)) for k, m in masks.items()}
    out["near_binary_fraction"] = M.near_binary_fraction(synthetic[:, 1], tol=0.2)
    return out


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """The synthesis targets: synthetic MMD² inside the real-vs-real CI (both references, image
    channel), FLAIR ratio within 20 % of the real training slices' ratio, and (stricter) the
    lesion contrast (ratio − 1) within 20 % of the real contrast."""
    mi = res["mmd_image"]
    s = mi["synthetic_vs_test"]["value"]
    r = res["flair_ratio"]
    return {
        "mmd_within_train_vs_test_ci": s <= mi["real_train_vs_test"]["high"],
        "mmd_within_split_half_ci": s <= mi["real_split_half"]["high"],
        "flair_ratio_within_20pct": bool(np.isfinite(r["synthetic"])
                                         and abs(r["synthetic"] - r["real_train"]) <= 0.2 * r["real_train"]),
        "contrast_within_20pct": bool(np.isfinite(r["synthetic"])
                                      and abs(r["synthetic"] - r["real_train"]) <= 0.2 * abs(r["real_train"] - 1.0)),
    }
