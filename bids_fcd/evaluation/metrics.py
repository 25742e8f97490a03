"""Detection metrics (docs/architecture.md §4), pure functions on arrays.

Slice metrics work on stacks (S, H, W) of axial slices in the model grid, distances in pixels.
Healthy slices (no lesion pixel) never count towards R@k or peak hit@k; they count towards the
false-positive figures. Dice is 1.0 when prediction and lesion are both empty, 0.0 when exactly
one is empty; it is never NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _distance_to_lesion_2d(lesion: np.ndarray) -> np.ndarray:
    """(S, H, W) in-plane Euclidean distance (px) of each pixel to the nearest lesion pixel of its slice.

    Slices without lesion get +inf.
    """
    out = np.full(lesion.shape, np.inf, dtype=np.float32)
    for k in range(lesion.shape[0]):
        if lesion[k].any():
            out[k] = ndimage.distance_transform_edt(~lesion[k])
    return out


def lesion_slices(lesion: np.ndarray) -> np.ndarray:
    """(S,) bool: slices holding at least one lesion pixel."""
    return np.asarray(np.asarray(lesion, bool).reshape(lesion.shape[0], -1).any(axis=1))


def recall_at_k(pred: np.ndarray, lesion: np.ndarray, k: float) -> tuple[int, int]:
    """R@k counts: (lesion slices with a predicted pixel within k px of the lesion, lesion slices)."""
    pred, lesion = np.asarray(pred, bool), np.asarray(lesion, bool)
    dist = _distance_to_lesion_2d(lesion)
    ls = lesion_slices(lesion)
    hit = ((dist <= k) & pred).reshape(pred.shape[0], -1).any(axis=1)
    return int((hit & ls).sum()), int(ls.sum())


def peak_hit_at_k(score: np.ndarray, lesion: np.ndarray, k: float) -> tuple[int, int]:
    """Peak hit@k counts: (lesion slices whose anomaly maximum lies within k px of the lesion, lesion slices)."""
    lesion = np.asarray(lesion, bool)
    dist = _distance_to_lesion_2d(lesion)
    hits, n = 0, 0
    for s in np.flatnonzero(lesion_slices(lesion)):
        n += 1
        peak = np.unravel_index(int(np.argmax(score[s])), score[s].shape)
        hits += int(dist[s][peak] <= k)
    return hits, n


def false_positive_pixels(pred: np.ndarray, lesion: np.ndarray, k: float) -> int:
    """Predicted pixels farther than k px (in-plane) from any lesion pixel, over all slices."""
    dist = _distance_to_lesion_2d(np.asarray(lesion, bool))
    return int((np.asarray(pred, bool) & (dist > k)).sum())


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """2|P ∩ T| / (|P| + |T|); 1.0 when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(target, bool)
    denom = int(p.sum()) + int(t.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int((p & t).sum()) / denom


def dice_curve(score: np.ndarray, target: np.ndarray, mask: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Dice of ``score > thr`` (inside ``mask``) against ``target`` for each threshold: (n_thr,)."""
    s = np.asarray(score)[np.asarray(mask, bool)]
    t = np.asarray(target, bool)[np.asarray(mask, bool)]
    return np.array([dice(s > thr, t) for thr in thresholds])


def best_threshold_dice(score: np.ndarray, target: np.ndarray, mask: np.ndarray, n: int = 50) -> tuple[float, float]:
    """Oracle Dice over ``n`` thresholds at quantiles of ``score`` in ``mask``: (best Dice, threshold)."""
    vals = np.asarray(score)[np.asarray(mask, bool)]
    if vals.size == 0:
        return 0.0, 0.0
    thr = np.unique(np.quantile(vals, np.linspace(0.80, 0.9995, n)))
    curve = dice_curve(score, target, mask, thr)
    i = int(np.argmax(curve))
    return float(curve[i]), float(thr[i])


def cluster_hits_lesion(cluster_mask: np.ndarray, centre_mm: np.ndarray, lesion: np.ndarray, affine: np.ndarray,
                        max_mm: float = 10.0) -> bool:
    """Subject-level detection: the cluster overlaps the lesion or its centre is ≤ ``max_mm`` from it.

    Args:
        cluster_mask, lesion: (W, H, S) bool volumes on the grid of ``affine`` (voxel → mm).
        centre_mm: (3,) cluster centre in mm.
    """
    lesion = np.asarray(lesion, bool)
    if not lesion.any():
        return False
    if (np.asarray(cluster_mask, bool) & lesion).any():
        return True
    pts = np.argwhere(lesion) @ affine[:3, :3].T + affine[:3, 3]
    return bool(np.min(np.linalg.norm(pts - np.asarray(centre_mm), axis=1)) <= max_mm)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U / (n+ n−), ties counted half); None without both classes."""
    s = np.asarray(scores, float).ravel()
    y = np.asarray(positive, bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
