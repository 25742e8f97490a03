"""Score one participant from arrays (shared by the group level and the benchmark)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bids_fcd.bids.participants import is_control
from bids_fcd.evaluation.metrics import (
    best_threshold_dice,
    cluster_hits_lesion,
    dice,
    false_positive_pixels,
    lesion_slices,
    peak_hit_at_k,
    recall_at_k,
)
from bids_fcd.preprocessing.grid import to_slices


def score_subject(anomaly: np.ndarray, labels: np.ndarray, centres_mm: list[np.ndarray], mask: np.ndarray,
                  roi: np.ndarray | None, affine: np.ndarray) -> dict[str, Any]:
    """Metrics of one participant on the model grid.

    Args:
        anomaly: (W, H, S) anomaly map (for peak hit and best-threshold Dice).
        labels: (W, H, S) int cluster labels, 1 = top-ranked cluster.
        centres_mm: cluster centres in rank order. mask: (W, H, S) bool brain.
        roi: (W, H, S) bool lesion mask, or None for a participant without one.
        affine: (4, 4) voxel → mm of the grid.
    Returns:
        dict with ``n_clusters`` and, with a lesion: counts (``lesion_slices``, ``r5_hits``, ``r10_hits``,
        ``peak_hits``, ``fp_pixels``, ``n_slices``) and the per-subject figures (``r_at_5`` …, ``detected``).
    """
    out: dict[str, Any] = {"n_clusters": len(centres_mm)}
    if roi is None or not np.asarray(roi).any():
        out["fp_clusters"] = len(centres_mm)
        return out
    roi = np.asarray(roi, bool)
    pred_s, les_s, an_s = to_slices(labels > 0)[:, 0] > 0.5, to_slices(roi)[:, 0] > 0.5, to_slices(anomaly)[:, 0]
    r5, n = recall_at_k(pred_s, les_s, 5)
    r10, _ = recall_at_k(pred_s, les_s, 10)
    ph, _ = peak_hit_at_k(an_s, les_s, 10)
    hits = [cluster_hits_lesion(labels == i + 1, c, roi, affine) for i, c in enumerate(centres_mm)]
    best, _ = best_threshold_dice(anomaly, roi, mask)
    n_slices = int(lesion_slices(to_slices(mask)[:, 0] > 0.5).sum())
    fp = false_positive_pixels(pred_s, les_s, 10)
    out.update(
        lesion_slices=n, r5_hits=r5, r10_hits=r10, peak_hits=ph, fp_pixels=fp, n_slices=n_slices,
        r_at_5=r5 / n if n else None, r_at_10=r10 / n if n else None, peak_hit_at_10=ph / n if n else None,
        fp_pixels_per_slice=fp / max(n_slices, 1), dice_z=dice(labels > 0, roi), dice_best=best,
        detected=bool(hits and hits[0]), fp_clusters=int(sum(not h for h in hits)),
    )
    return out


def cohort_summary(rows: list[dict[str, Any]], z_threshold: float) -> dict[str, Any]:
    """Cohort figures: R@k pooled over lesion slices, with FP figures beside them (docs/architecture.md §4)."""
    scored = [r for r in rows if r.get("lesion_slices")]
    controls = [r for r in rows if is_control(r.get("group"))]
    n_slices = sum(r["lesion_slices"] for r in scored)

    def mean(key: str, rs: list[dict[str, Any]]) -> float | None:
        vals = [float(r[key]) for r in rs if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    def pooled(key: str) -> float | None:
        return sum(r[key] for r in scored) / n_slices if n_slices else None

    with_lobe = [r for r in rows if r.get("true_lobe") not in (None, "", "n/a") and r.get("predicted_lobe")]
    return {
        "n_participants": len(rows),
        "n_scored": len(scored),
        "n_controls": len(controls),
        "binarisation": f"clusters of z > {z_threshold:g}",
        "R@5": pooled("r5_hits"),
        "R@10": pooled("r10_hits"),
        "peak_hit@10": pooled("peak_hits"),
        "fp_pixels_per_slice": mean("fp_pixels_per_slice", scored),
        "fp_clusters_per_control": mean("n_clusters", controls),
        "fp_clusters_per_patient": mean("fp_clusters", scored),
        "dice_z": mean("dice_z", scored),
        "dice_best_per_subject": mean("dice_best", scored),
        "subject_sensitivity": (sum(bool(r["detected"]) for r in scored) / len(scored)) if scored else None,
        "lobe_accuracy": (sum(r["predicted_lobe"] in r["true_lobe"].split(",") for r in with_lobe) / len(with_lobe))
        if with_lobe else None,
    }
