"""Free-response (FROC-style) curve: subject sensitivity against false-positive clusters per control.

Marks are the clusters of each participant's z-map (formed as the participant level forms them),
each scored by its peak z. Raising a cut-off t on the peak z keeps fewer marks, so both axes fall
monotonically with t: sensitivity counts patients whose *top* mark (or *any* mark) with peak ≥ t
hits the lesion; false positives are the marks with peak ≥ t in controls. At t = the forming
threshold the point is the participant level's own operating point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bids_fcd.evaluation.metrics import cluster_hits_lesion
from bids_fcd.postprocessing.clusters import find_clusters


@dataclass(frozen=True)
class Marks:
    """One participant's clusters: peak z per cluster (rank order) and, with a lesion, which hit it.

    ``hits`` is None for a participant without a lesion mask; ``control`` marks a healthy control
    (its clusters are the false positives on the curve's x axis).
    """

    scores: tuple[float, ...]
    hits: tuple[bool, ...] | None
    control: bool


def marks_from_map(z: np.ndarray, roi: np.ndarray | None, affine: np.ndarray, threshold: float,
                   min_cluster_mm3: float, max_clusters: int, control: bool, hit_mm: float = 10.0) -> Marks:
    """The marks of one z-map: clusters of ``z > threshold`` (≥ ``min_cluster_mm3``, at most
    ``max_clusters``, as :func:`find_clusters` forms them), scored by peak z.

    Args:
        z: (W, H, S) float z-map on the grid of ``affine`` (voxel → mm).
        roi: (W, H, S) bool lesion mask or None; a cluster hits when it overlaps the lesion or its
            centre is within ``hit_mm`` of it (:func:`cluster_hits_lesion`).
    """
    labels, clusters = find_clusters(np.asarray(z, np.float32), affine, threshold, min_cluster_mm3, max_clusters)
    scores = tuple(c.peak_z for c in clusters)
    if roi is None or not np.asarray(roi).any():
        return Marks(scores, None, control)
    hits = tuple(cluster_hits_lesion(labels == c.index, np.asarray(c.center_mm), roi, affine, hit_mm)
                 for c in clusters)
    return Marks(scores, hits, control)


def froc_curve(marks: list[Marks], cutoffs: np.ndarray | list[float] | None = None) -> dict[str, Any]:
    """Sensitivity and false positives per control as the peak-z cut-off rises.

    Args:
        marks: per participant. Patients are those with ``hits`` (a lesion mask); controls those
            with ``control`` set.
        cutoffs: cut-offs on the peak z (sorted here); default every distinct mark score. Pass the
            cluster-forming threshold first to get the operating point, where every mark counts.
    Returns:
        dict of lists ``threshold``, ``sensitivity_top``, ``sensitivity_any``, ``fp_per_control``
        (None entries when there are no patients or no controls) and ``n_patients``, ``n_controls``.
        Both sensitivities and ``fp_per_control`` are non-increasing along ``threshold``.
    """
    patients = [m for m in marks if m.hits is not None]
    controls = [m for m in marks if m.control]
    if cutoffs is None:
        scores = sorted({s for m in marks for s in m.scores})
        cutoffs = scores if scores else [0.0]
    cut = np.sort(np.asarray(cutoffs, float))
    top: list[float | None] = []
    any_: list[float | None] = []
    fp: list[float | None] = []
    for t in cut:
        if patients:
            top.append(sum(bool(m.scores) and m.scores[int(np.argmax(m.scores))] >= t and
                           bool(m.hits[int(np.argmax(m.scores))]) for m in patients  # type: ignore[index]
                           ) / len(patients))
            any_.append(sum(any(s >= t and h for s, h in zip(m.scores, m.hits or (), strict=True))
                            for m in patients) / len(patients))
        else:
            top.append(None)
            any_.append(None)
        fp.append(sum(sum(s >= t for s in m.scores) for m in controls) / len(controls) if controls else None)
    return {"threshold": [float(t) for t in cut], "sensitivity_top": top, "sensitivity_any": any_,
            "fp_per_control": fp, "n_patients": len(patients), "n_controls": len(controls)}
