"""Drift removal must keep large lesions (issue #17): estimated from the pseudo-healthy FLAIR, or robustly
from each map itself."""

import dataclasses

import numpy as np
import pytest

from bids_fcd.config import GridConfig, PostConfig
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.normative import build_reference, combined_z
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights, normative_maps


def _brain_with_lesion(radius_mm: float):
    grid = GridConfig(shape=(64, 64), spacing_mm=2.0, z_min_mm=0.0, z_max_mm=80.0)
    w, h, s = 64, 64, 41
    ii, jj, kk = np.meshgrid(np.arange(w), np.arange(h), np.arange(s), indexing="ij")
    mask = ((ii - 32) / 30.0) ** 2 + ((jj - 32) / 30.0) ** 2 + ((kk - 20) / 19.0) ** 2 < 1
    bias = 0.3 * (ii / w) + 0.2 * (kk / s)  # a smooth drift the scan carries (and so its pseudo-healthy image)
    rng = np.random.default_rng(0)
    pseudo = (bias + 0.02 * rng.standard_normal(mask.shape)).astype(np.float32)
    lesion = ((ii - 20) ** 2 + (jj - 30) ** 2 + (kk - 20) ** 2) * 4.0 <= radius_mm**2
    flair = pseudo + 0.5 * lesion
    anom = np.where(mask, flair - pseudo, 0).astype(np.float32)
    return grid, mask, lesion, flair.astype(np.float32), pseudo, anom


def _contrast(m: np.ndarray, lesion: np.ndarray, mask: np.ndarray) -> float:
    return float(m[lesion & mask].mean() - m[mask & ~lesion].mean())


def test_an_18_mm_lesion_keeps_its_flair_contrast_after_drift_removal():
    grid, mask, lesion, flair, pseudo, anom = _brain_with_lesion(18.0)
    post = dataclasses.replace(PostConfig(), drift_source="pseudo")
    before = normative_maps(anom, flair, mask, grid, dataclasses.replace(post, drift_block_mm=0.0, drift_source="self"))
    after = normative_maps(anom, flair, mask, grid, post, pseudo)
    old = normative_maps(anom, flair, mask, grid, dataclasses.replace(post, drift_source="self"), pseudo)
    ref = _contrast(before["flair"] - np.where(mask, pseudo, 0), lesion, mask)  # lesion contrast over the scan's own drift
    assert _contrast(after["flair"], lesion, mask) >= 0.8 * ref
    assert _contrast(after["anomaly"], lesion, mask) >= 0.8 * _contrast(before["anomaly"], lesion, mask)
    # drift estimated from the map itself (before #17) loses most of a lesion larger than its blocks
    assert _contrast(old["flair"], lesion, mask) < 0.6 * ref
    # and the scan's drift itself is gone from the FLAIR map
    healthy = mask & ~lesion
    assert np.corrcoef(after["flair"][healthy], pseudo[healthy])[0, 1] < 0.5


def _subject(rng: np.random.Generator, mask: np.ndarray, anatomy: np.ndarray, lesion_signal: np.ndarray):
    """(anomaly, FLAIR) maps of one brain: the shared anatomy, its own noise and smooth bias, plus a lesion
    (all of it in the FLAIR, half of it left in the residual: the pseudo-healthy image redraws the rest)."""
    from scipy import ndimage

    ii, _, kk = np.meshgrid(*(np.arange(n) for n in mask.shape), indexing="ij")
    bias = rng.uniform(-0.6, 0.6) * ii / mask.shape[0] + rng.uniform(-0.6, 0.6) * kk / mask.shape[2]
    noise = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 1.0) * 2.0
    flair = anatomy + noise + bias + lesion_signal
    anom = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 1.0) * 2.0 + 0.5 * lesion_signal
    return np.where(mask, anom, 0).astype(np.float32), np.where(mask, flair, 0).astype(np.float32)


@pytest.mark.parametrize("radius_mm", [16.0, 20.0])
def test_robust_drift_keeps_a_large_subtle_lesion_and_finds_it_as_the_top_cluster(radius_mm):
    """Issue #17: a 16-20 mm-radius lesion (1.5 noise SDs in the FLAIR) is the top cluster against a
    reference of controls, and its FLAIR contrast after drift removal is ≥ 80 % of the drift-free one."""
    from scipy import ndimage

    grid, mask, lesion, _, _, _ = _brain_with_lesion(radius_mm)
    signal = (ndimage.gaussian_filter(lesion.astype(np.float32), 1.0) * 1.5).astype(np.float32)
    rng = np.random.default_rng(7)
    anatomy = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 2.0) * 3.0
    post = dataclasses.replace(PostConfig(), drift_source="robust")
    controls = [_subject(rng, mask, anatomy, np.zeros_like(signal)) for _ in range(10)]
    per = [normative_maps(a, f, mask, grid, post) for a, f in controls]
    ref = build_reference({k: [p[k] for p in per] for k in per[0]}, [mask] * len(per))
    anom, flair = _subject(np.random.default_rng(99), mask, anatomy, signal)
    z = combined_z(normative_maps(anom, flair, mask, grid, post), mask, ref, map_weights(post))
    aff, _ = grid_affine(grid)
    labels, clusters = find_clusters(z, aff, 3.0, 150.0, 20)
    assert clusters and (labels == 1)[lesion].any()

    # the FLAIR map's lesion contrast: drift removed robustly vs by block medians vs not at all
    def contrast(p: PostConfig) -> float:
        return _contrast(normative_maps(anom, flair, mask, grid, p)["flair"], lesion, mask)

    none = contrast(dataclasses.replace(post, drift_block_mm=0.0))
    assert contrast(post) >= 0.8 * none
    assert contrast(dataclasses.replace(post, drift_source="self")) < 0.6 * none


def test_the_asymmetry_map_is_left_out_at_weight_0_and_finds_a_redrawn_one_sided_lesion():
    """Issue #17: a lesion the pseudo-healthy FLAIR redrew in full (no residual) and whose FLAIR contrast lies
    under the controls' spread is found once the FLAIR's left-right asymmetry is a third map."""
    from scipy import ndimage

    grid, mask, lesion, _, _, _ = _brain_with_lesion(10.0)
    mask = mask & mask[::-1]  # this brain is its own mirror image
    rng = np.random.default_rng(3)
    anatomy = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 2.0) * 3.0
    anatomy = 0.5 * (anatomy + anatomy[::-1])  # healthy anatomy is left-right symmetric

    def brain(seed: int, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng(seed)
        own = ndimage.gaussian_filter(r.standard_normal(mask.shape), 2.0) * 6.0  # each brain's own anatomy, wide
        own = 0.5 * (own + own[::-1])  # between subjects but left-right symmetric
        flair = anatomy + own + ndimage.gaussian_filter(r.standard_normal(mask.shape), 1.0) * 0.3 + signal
        anom = ndimage.gaussian_filter(r.standard_normal(mask.shape), 1.0) * 2.0  # the lesion was redrawn
        return np.where(mask, anom, 0).astype(np.float32), np.where(mask, flair, 0).astype(np.float32)

    post = dataclasses.replace(PostConfig(), drift_block_mm=0.0)
    with_asym = dataclasses.replace(post, asymmetry_weight=0.5)
    assert "asymmetry" not in normative_maps(*brain(0, 0 * anatomy), mask, grid, post)
    assert map_weights(post) == {"anomaly": 0.5, "flair": 0.5}
    assert map_weights(with_asym) == {"anomaly": 0.5, "flair": 0.5, "asymmetry": 0.5}
    with pytest.raises(ValueError, match="asymmetry_weight"):
        PostConfig(asymmetry_weight=float("nan"))
    per = [normative_maps(*brain(10 + i, np.zeros(mask.shape)), mask, grid, with_asym) for i in range(12)]
    ref = build_reference({k: [p[k] for p in per] for k in per[0]}, [mask] * len(per))
    maps = normative_maps(*brain(99, 1.2 * lesion.astype(np.float32)), mask, grid, with_asym)
    assert np.array_equal(maps["asymmetry"], np.where(mask, maps["flair"] - maps["flair"][::-1], 0))

    def lesion_minus_brain(z: np.ndarray) -> float:
        return float(z[lesion].mean() - np.percentile(z[mask & ~lesion], 99.9))

    without = combined_z(maps, mask, ref, map_weights(post))
    together = combined_z(maps, mask, ref, map_weights(with_asym))
    assert lesion_minus_brain(together) > 0 > lesion_minus_brain(without)
