"""Clusters of a thresholded z-map with hemisphere, lobe, size, peak and centre (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bids_fcd.atlas import hemisphere_of_mm, lobe_of_mm

TABLE_COLUMNS = ("index", "hemisphere", "lobe", "size_mm3", "peak_z", "peak_x", "peak_y", "peak_z_mm",
                 "center_x", "center_y", "center_z")


@dataclass(frozen=True)
class Cluster:
    """One cluster. Coordinates are template mm (RAS); ``peak_z`` is the z-statistic."""

    index: int
    hemisphere: str
    lobe: str
    size_mm3: float
    peak_z: float
    peak_mm: tuple[float, float, float]
    center_mm: tuple[float, float, float]

    def row(self) -> dict[str, object]:
        """One row of ``desc-clusters_table.tsv``."""
        return {
            "index": self.index, "hemisphere": self.hemisphere, "lobe": self.lobe,
            "size_mm3": round(self.size_mm3, 1), "peak_z": round(self.peak_z, 3),
            "peak_x": round(self.peak_mm[0], 1), "peak_y": round(self.peak_mm[1], 1),
            "peak_z_mm": round(self.peak_mm[2], 1), "center_x": round(self.center_mm[0], 1),
            "center_y": round(self.center_mm[1], 1), "center_z": round(self.center_mm[2], 1),
        }


def find_clusters(z: np.ndarray, affine: np.ndarray, threshold: float, min_size_mm3: float,
                  max_clusters: int) -> tuple[np.ndarray, list[Cluster]]:
    """Connected components (26-neighbourhood) of ``z > threshold``, ranked by peak z.

    Args:
        z: (W, H, S) z-map. affine: (4, 4) voxel → template mm.
        threshold: z threshold (1.65 = one-sided p 0.05). min_size_mm3: smaller clusters dropped.
        max_clusters: keep at most this many (the highest peaks).
    Returns:
        (labels, clusters): int16 (W, H, S) with cluster k (1-based rank) and the clusters in rank order.
    """
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    lab, n = ndimage.label(z > threshold, structure=np.ones((3, 3, 3), bool))
    out = np.zeros(z.shape, np.int16)
    clusters: list[Cluster] = []
    if n == 0:
        return out, clusters
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes[1:] * vox_mm3 >= min_size_mm3) + 1
    if keep.size == 0:
        return out, clusters
    peaks = np.asarray(ndimage.maximum(z, lab, keep), dtype=float)
    order = keep[np.argsort(-peaks, kind="stable")][:max_clusters]
    peak_pos = ndimage.maximum_position(z, lab, order)
    centres = ndimage.center_of_mass(np.ones(z.shape, np.float32), lab, order)
    for rank, (k, pv, cv) in enumerate(zip(order, peak_pos, centres, strict=True), start=1):
        out[lab == k] = rank
        peak_mm = affine[:3, :3] @ np.asarray(pv, float) + affine[:3, 3]
        centre = affine[:3, :3] @ np.asarray(cv, float) + affine[:3, 3]
        clusters.append(Cluster(
            index=rank,
            hemisphere=str(hemisphere_of_mm(peak_mm)[0]),
            lobe=str(lobe_of_mm(peak_mm)[0]),
            size_mm3=float(sizes[k]) * vox_mm3,
            peak_z=float(z[tuple(int(v) for v in pv)]),
            peak_mm=(float(peak_mm[0]), float(peak_mm[1]), float(peak_mm[2])),
            center_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        ))
    return out, clusters


#: Columns of the T1w-space cluster table (``clusters_in``).
NATIVE_COLUMNS = ("index", "size_mm3", "peak_z", "peak_x", "peak_y", "peak_z_mm", "center_x", "center_y", "center_z")


def clusters_in(labels: np.ndarray, z: np.ndarray, affine: np.ndarray) -> list[dict[str, object]]:
    """Rows (:data:`NATIVE_COLUMNS`) of clusters already labelled in another space (e.g. the T1w).

    Args:
        labels: (X, Y, Z) int labels by rank, resampled from the template-space clusters.
        z: (X, Y, Z) z-map on the same grid. affine: (4, 4) voxel → scanner mm.
    Returns:
        one row per label present, in label order; labels lost in resampling are absent.
    """
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    present = [int(k) for k in np.unique(labels) if k > 0]
    if not present:
        return []
    sizes = ndimage.sum_labels(np.ones(labels.shape, np.float32), labels, present)
    peaks = ndimage.maximum_position(z, labels, present)
    centres = ndimage.center_of_mass(np.ones(labels.shape, np.float32), labels, present)
    rows: list[dict[str, object]] = []
    for k, size, pv, cv in zip(present, sizes, peaks, centres, strict=True):
        p = affine[:3, :3] @ np.asarray(pv, float) + affine[:3, 3]
        c = affine[:3, :3] @ np.asarray(cv, float) + affine[:3, 3]
        rows.append({"index": k, "size_mm3": round(float(size) * vox_mm3, 1),
                     "peak_z": round(float(z[tuple(int(v) for v in pv)]), 3),
                     "peak_x": round(float(p[0]), 1), "peak_y": round(float(p[1]), 1), "peak_z_mm": round(float(p[2]), 1),
                     "center_x": round(float(c[0]), 1), "center_y": round(float(c[1]), 1),
                     "center_z": round(float(c[2]), 1)})
    return rows
