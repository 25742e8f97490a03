"""Calibration of the cluster-forming setting on controls (pure arrays).

Each control's z-map comes from a reference that does not contain it (leave-one-out), so the
false-positive rate it shows is the one a new control would show. For every (z threshold,
minimum size) pair the false-positive clusters per control are counted; the chosen pair has the
lowest threshold whose count stays within the budget (ties: the smaller minimum size), with the
minimum size never above ``max_min_size_mm3`` so that small lesions can still be flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

Z_GRID = tuple(float(z) for z in np.round(np.arange(2.0, 10.01, 0.25), 2))
SIZE_GRID = (50.0, 100.0, 150.0)


def cluster_sizes_mm3(z: np.ndarray, affine: np.ndarray, threshold: float) -> np.ndarray:
    """Sizes (mm³) of the connected components (26-neighbourhood) of ``z > threshold``.

    The same components :func:`bids_fcd.postprocessing.clusters.find_clusters` forms, counted
    with one labelling and a bincount (calibration visits many thresholds and many clusters).
    """
    lab, n = ndimage.label(z > threshold, structure=np.ones((3, 3, 3), bool))
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    return np.bincount(lab.ravel(), minlength=n + 1)[1:] * vox_mm3


def fp_table(z_maps: Sequence[np.ndarray], affine: np.ndarray, z_grid: Sequence[float] = Z_GRID,
             size_grid: Sequence[float] = SIZE_GRID) -> list[dict[str, Any]]:
    """Clusters per control for every (z, size) pair. ``z_maps``: (W, H, S) z-maps of controls."""
    table = []
    for z_thr in z_grid:
        sizes = [cluster_sizes_mm3(z, affine, z_thr) for z in z_maps]
        for size in size_grid:
            counts = [int((per >= size).sum()) for per in sizes]
            table.append({"z_threshold": float(z_thr), "min_cluster_mm3": float(size),
                          "fp_clusters_per_control": float(np.mean(counts)) if counts else 0.0})
    return table


def choose(table: list[dict[str, Any]], max_fp_per_control: float, max_min_size_mm3: float = 150.0) -> dict[str, Any]:
    """The lowest z threshold within the false-positive budget (ties: smaller size); the strictest
    pair when none is within it."""
    ok = [t for t in table if t["min_cluster_mm3"] <= max_min_size_mm3]
    if not ok:
        raise ValueError(f"no calibration row has a minimum cluster size <= {max_min_size_mm3:g} mm3; "
                         "include smaller sizes in the size grid")
    within = [t for t in ok if t["fp_clusters_per_control"] <= max_fp_per_control]
    if not within:
        return max(ok, key=lambda t: (t["z_threshold"], t["min_cluster_mm3"]))
    return min(within, key=lambda t: (t["z_threshold"], t["min_cluster_mm3"]))
