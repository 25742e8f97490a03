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


def normalise(img: np.ndarray, mask: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Scale intensities inside ``mask`` to [-1, 1]; background is −1.

    The lower percentile maps to −1 and the upper one to 0.85, leaving head-room for
    hyperintense lesions above the upper percentile before the clip at 1.

    Args:
        img: (...) float image. mask: same shape, bool (brain).
    Returns:
        float32 array of the same shape.
    """
    vals = img[mask]
    if vals.size == 0:
        raise ValueError("the brain mask is empty, so intensities cannot be normalised")
    lo, hi = np.percentile(vals, percentiles)
    scale = max(float(hi - lo), 1e-6)
    out = -1.0 + 1.85 * (img - lo) / scale
    out = np.clip(out, -1.0, 1.0)
    out[~mask] = -1.0
    return out.astype(np.float32)


def to_slices(*volumes: np.ndarray) -> np.ndarray:
    """Stack (W, H, S) volumes as channels: returns (S, C, H, W) float32."""
    return np.stack([v.transpose(2, 1, 0) for v in volumes], axis=1).astype(np.float32)


def from_slices(stack: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_slices` for one channel: (S, H, W) → (W, H, S)."""
    return np.ascontiguousarray(np.asarray(stack).transpose(2, 1, 0))
