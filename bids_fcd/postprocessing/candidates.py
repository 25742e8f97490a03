"""Candidate regions for the sampler's second look (issue #17), pure numpy on (W, H, S) volumes.

A region is a candidate when, inside the brain, either of two maps stands out against the brain's
own robust spread (median and 1.4826·MAD, so a lesion does not set its own scale):

* the smoothed signed residual FLAIR − x̂_0 of the first pass (what the first pass did not redraw);
* the smoothed left-right asymmetry of the FLAIR itself, FLAIR − mirror(FLAIR) (the grid is centred
  on x = 0, so axis 0 reversed is the mirror): this one does not depend on the model, so a lesion
  that the first pass redrew in full (residual ≤ 0, measured on a real scan in issue #17) still
  becomes a candidate when it is one-sided.

No reference is needed, so controls and patients go through exactly the same two passes and the
normative reference absorbs what the second look does to healthy tissue.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_fcd.postprocessing.anomaly import anomaly_map

#: MAD → SD for a normal distribution.
MAD_TO_SD = 1.4826
#: At most this fraction of the brain becomes a candidate (the cut rises above ``z_cut`` when more
#: voxels pass it, e.g. on a scan with a strong residual bias), which bounds the second look's time.
MAX_FRACTION = 0.15
#: Candidate components smaller than this (voxels, before growing) are noise, not regions.
MIN_VOXELS = 3


def robust_z(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD) over ``mask`` (the SD where the MAD is 0); 0 outside. float32, same shape."""
    vals = x[mask]
    if vals.size < 2:
        return np.zeros_like(x, dtype=np.float32)
    med = float(np.median(vals))
    sd = MAD_TO_SD * float(np.median(np.abs(vals - med))) or float(vals.std()) or 1.0  # MAD 0: most voxels equal
    z = (x - med) / sd
    return np.where(mask, z, 0.0).astype(np.float32)


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
    res = robust_z(anomaly_map(flair, pseudo, mask, fwhm_mm, spacing_mm, "signed"), mask)
    asym = robust_z(anomaly_map(flair, flair[::-1], both, fwhm_mm, spacing_mm, "signed"), both)
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
