"""The model grid (pure arrays): its affine, intensity normalisation, volume ↔ slice stack.

A grid volume is (W, H, S) in RAS voxel order (x, y, z), as nibabel stores it. The slice stack
the networks see is (S, C, H, W): ``stack[k, c, j, i] = volume_c[i, j, k]``.
"""

from __future__ import annotations

import numpy as np

from bids_fcd.config import GridConfig


def grid_affine(grid: GridConfig) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Voxel → template-mm affine (4, 4) and the volume shape (W, H, S) of the model grid."""
    h, w = grid.shape
    sp = grid.spacing_mm
    n_slices = int(np.floor((grid.z_max_mm - grid.z_min_mm) / sp)) + 1
    aff = np.diag([sp, sp, sp, 1.0])
    aff[0, 3] = grid.center_mm[0] - (w - 1) / 2.0 * sp
    aff[1, 3] = grid.center_mm[1] - (h - 1) / 2.0 * sp
    aff[2, 3] = grid.z_min_mm
    return aff, (w, h, n_slices)


#: Where the upper of the two normalisation percentiles lands (the lower one lands on −1).
NORMALISED_MID = 0.6


def normalise(img: np.ndarray, mask: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Scale intensities inside ``mask`` so that the two brain percentiles map to −1 and 0.6.

    With the default (1, 50) the scale comes from the lower half of the brain's histogram, which a
    hyperintense lesion cannot move; values below −1 are clipped (CSF, background) but nothing is
    clipped above, so the hyperintense tail keeps its contrast (a FLAIR lesion stays brighter
    than the cortex around it). Background is −1.

    Args:
        img: (...) float image. mask: same shape, bool (brain).
        percentiles: (low, mid) percentiles of the brain's intensities.
    Returns:
        float32 array of the same shape, ≥ −1.
    """
    vals = img[mask]
    if vals.size == 0:
        raise ValueError("the brain mask is empty, so intensities cannot be normalised")
    lo, mid = np.percentile(vals, percentiles)
    scale = max(float(mid - lo), 1e-6)
    out = np.maximum(-1.0 + (NORMALISED_MID + 1.0) * (img - lo) / scale, -1.0)
    out[~mask] = -1.0
    return out.astype(np.float32)


def to_slices(*volumes: np.ndarray) -> np.ndarray:
    """Stack (W, H, S) volumes as channels: returns (S, C, H, W) float32."""
    return np.stack([v.transpose(2, 1, 0) for v in volumes], axis=1).astype(np.float32)


def from_slices(stack: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_slices` for one channel: (S, H, W) → (W, H, S)."""
    return np.ascontiguousarray(np.asarray(stack).transpose(2, 1, 0))
