"""Candidate regions for the sampler's second look, pure numpy on (W, H, S) volumes.

A region is a candidate when, inside the brain, either of two maps stands out against the brain's
own robust spread (median and 1.4826·MAD, :func:`~bids_fcd.postprocessing.normative.restandardise`, so
a lesion does not set its own scale):

* the smoothed signed residual FLAIR − x̂_0 of the first pass (what the first pass did not redraw);
* the smoothed left-right asymmetry of the FLAIR itself, FLAIR − mirror(FLAIR) (the grid is centred
  on x = 0, so axis 0 reversed is the mirror): this one does not depend on the model, so a lesion
  that the first pass redrew in full (residual ≤ 0, measured on a real scan) still
  becomes a candidate when it is one-sided.

No reference is needed, so controls and patients go through exactly the same two passes and the
normative reference absorbs what the second look does to healthy tissue.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_fcd.postprocessing.anomaly import anomaly_map
from bids_fcd.postprocessing.normative import MAD_TO_SD, restandardise

#: At most this fraction of the brain seeds candidates, before they are grown (the cut rises above
#: ``z_cut`` when more voxels pass it, e.g. on a scan with a strong residual bias), which bounds the
#: second look's time.
MAX_FRACTION = 0.15
#: Candidate components smaller than this (voxels, before growing) are noise, not regions.
MIN_VOXELS = 3


def candidate_regions(flair: np.ndarray, pseudo: np.ndarray, mask: np.ndarray, spacing_mm: float,
                      fwhm_mm: float, z_cut: float, dilate_mm: float) -> np.ndarray:
    """Regions the second look regenerates again.

    Args:
        flair: real FLAIR (W, H, S). pseudo: the first pass's histogram-matched x̂_0, same shape.
        mask: brain mask (bool). spacing_mm: grid spacing. fwhm_mm: smoothing of both maps.
        z_cut: robust within-brain z a voxel of either map must exceed.
        dilate_mm: the candidates are grown by this much (a lesion's rim must be hidden too).
    Returns:
        bool (W, H, S), inside ``mask``.
    """
    mask = np.asarray(mask, bool)
    both = mask & mask[::-1]
    res = restandardise(anomaly_map(flair, pseudo, mask, fwhm_mm, spacing_mm, "signed"), mask)
    asym = restandardise(anomaly_map(flair, flair[::-1], both, fwhm_mm, spacing_mm, "signed"), both)
    score = np.maximum(res, asym)
    cut = max(z_cut, float(np.quantile(score[mask], 1.0 - MAX_FRACTION))) if mask.any() else z_cut
    seed = (score > cut) & mask
    labels, n = ndimage.label(seed)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        seed = (sizes >= MIN_VOXELS)[labels] & seed
    steps = int(round(dilate_mm / spacing_mm))
    if steps > 0 and seed.any():
        seed = ndimage.binary_dilation(seed, iterations=steps)
    return seed & mask


def shrink_to_first_pass(flair: np.ndarray, first: np.ndarray, second: np.ndarray, hole: np.ndarray,
                         mask: np.ndarray, spacing_mm: float, fwhm_mm: float) -> np.ndarray:
    """The second look's x̂_0 inside the holes, its residual brought to the first pass's noise level.

    Inpainting a whole region errs more on healthy tissue than the first pass does (measured on the
    phantom controls: the smoothed residual's SD about 0.12 in the holes against 0.06 elsewhere), and
    the holes are where the first pass's residual was already highest; scored as they are, every
    control's holes would become its hottest spots. The holes are mostly healthy in every scan, so the
    residual r₂ = FLAIR − x̂₀⁽²⁾ inside them is mapped affinely onto the first pass's residual r₁ outside
    them: k·r₂ − c with k = min(1, SD_robust(r₁ outside) / SD_robust(r₂ inside)) and c chosen so the
    smoothed medians agree. A lesion, a minority of the hole voxels, keeps its standing among them.
    The result is x̂₀ = FLAIR − (k·r₂ − c) in the holes, ``second`` elsewhere.

    Args:
        flair, first, second: (W, H, S) real FLAIR and the two passes' x̂_0 (same intensity scale).
        hole, mask: bool (W, H, S); the holes and the brain. spacing_mm, fwhm_mm: as for the residual.
    Returns:
        float32 (W, H, S).
    """
    mask = np.asarray(mask, bool)
    hole = np.asarray(hole, bool) & mask
    rest = mask & ~hole
    if hole.sum() < MIN_VOXELS or rest.sum() < MIN_VOXELS:
        return np.asarray(second, np.float32)
    r1 = anomaly_map(flair, first, mask, fwhm_mm, spacing_mm, "signed")
    r2 = anomaly_map(flair, second, mask, fwhm_mm, spacing_mm, "signed")

    def spread(v: np.ndarray) -> tuple[float, float]:
        med = float(np.median(v))
        return med, MAD_TO_SD * float(np.median(np.abs(v - med)))

    m1, s1 = spread(r1[rest])
    m2, s2 = spread(r2[hole])
    k = min(1.0, s1 / s2) if s2 > 0 else 1.0
    c = k * m2 - m1
    shrunk = flair - (k * (flair - second) - c)
    return np.where(hole, shrunk, second).astype(np.float32)
