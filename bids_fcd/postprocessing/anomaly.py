"""Anomaly map and within-brain z-map (pure numpy): real − pseudo-healthy inside the brain.

The normative z-map (against controls) is in :mod:`bids_fcd.postprocessing.normative`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fwhm_to_sigma(fwhm_mm: float, voxel_mm: float) -> float:
    """Gaussian σ in voxels for a FWHM in mm."""
    return fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / voxel_mm


ANOMALY_KINDS = ("signed", "absolute")


def anomaly_map(real: np.ndarray, pseudo: np.ndarray, mask: np.ndarray, fwhm_mm: float, voxel_mm: float,
                kind: str = "absolute") -> np.ndarray:
    """real − pseudo (``signed``) or |real − pseudo| (``absolute``) inside ``mask``, smoothed
    within the mask (normalised convolution).

    Args:
        real, pseudo: (W, H, S) FLAIR volumes on the same scale. mask: bool, same shape.
        fwhm_mm: smoothing FWHM in mm (0 = none). voxel_mm: grid spacing.
        kind: ``signed`` (hyperintense residuals positive) or ``absolute``.
    Returns:
        float32 (W, H, S), zero outside the mask.
    """
    if kind not in ANOMALY_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose one of {ANOMALY_KINDS}")
    mask = np.asarray(mask, bool)
    diff = (np.asarray(real, np.float32) - np.asarray(pseudo, np.float32)) * mask
    if kind == "absolute":
        diff = np.abs(diff)
    if fwhm_mm > 0:
        sigma = fwhm_to_sigma(fwhm_mm, voxel_mm)
        num = ndimage.gaussian_filter(diff, sigma)
        den = ndimage.gaussian_filter(mask.astype(np.float32), sigma)
        diff = np.where(mask, num / np.maximum(den, 1e-6), 0.0)
    return diff.astype(np.float32)


def z_map(anomaly: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(a − mean_brain) / std_brain inside ``mask``; 0 outside. float32, same shape."""
    mask = np.asarray(mask, bool)
    vals = anomaly[mask]
    if vals.size < 2:
        return np.zeros_like(anomaly, dtype=np.float32)
    sd = float(vals.std())
    z = (anomaly - float(vals.mean())) / (sd if sd > 0 else 1.0)
    return np.where(mask, z, 0.0).astype(np.float32)


def asymmetry(x: np.ndarray, mask: np.ndarray, signed: bool = False) -> np.ndarray:
    """x minus its mirror across the mid-sagittal plane (positive part, or ``signed``), where the voxel and its
    mirror are both in ``mask``, 0 elsewhere; (W, H, S) in, (W, H, S) float32 out.

    The model grid is centred on x = 0, so axis 0 reversed is the mirror image. The signed FLAIR map is the
    benchmark's asymmetry baseline and, with ``PostConfig.asymmetry_weight > 0``, a third normative map.
    """
    mirrored = x[::-1]
    both = mask & mask[::-1]
    diff = x - mirrored
    return np.where(both, diff if signed else np.clip(diff, 0, None), 0.0).astype(np.float32)


def flair_from_t1w(flair: np.ndarray, t1w: np.ndarray, mask: np.ndarray, bins: int = 64) -> np.ndarray:
    """The FLAIR each voxel's T1w predicts in this participant: the median FLAIR of the brain voxels whose T1w
    falls in the same T1w quantile bin (``bins`` bins over the brain); 0 outside ``mask``. (W, H, S) float32.

    A pseudo-healthy FLAIR without a network: it follows the participant's own folding, as the diffusion
    model's does, because grey matter, white matter and CSF are told apart by the T1w. ``flair`` minus it is
    the benchmark's "FLAIR from the T1w" baseline: a lesion brighter in FLAIR than its T1w tissue class
    stands out, a sulcus that lies elsewhere than in the controls does not.
    """
    mask = np.asarray(mask, bool)
    t = np.asarray(t1w, np.float32)
    f = np.asarray(flair, np.float32)
    if mask.sum() < bins:
        return np.zeros_like(f)
    edges = np.quantile(t[mask], np.linspace(0.0, 1.0, bins + 1)[1:-1])
    which = np.searchsorted(edges, t, side="right")  # 0..bins-1
    medians = np.asarray(ndimage.median(f[mask], labels=which[mask], index=np.arange(bins)), np.float32)
    medians[np.bincount(which[mask], minlength=bins) == 0] = np.nan  # tied T1w values can leave a bin empty
    filled = np.flatnonzero(~np.isnan(medians))
    medians = np.interp(np.arange(bins), filled, medians[filled]).astype(np.float32)
    return np.where(mask, medians[which], 0.0).astype(np.float32)
