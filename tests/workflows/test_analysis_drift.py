"""Drift removal must keep large lesions (issue #17): estimated from the pseudo-healthy FLAIR."""

import dataclasses

import numpy as np

from bids_fcd.config import GridConfig, PostConfig
from bids_fcd.workflows.analysis import normative_maps


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
