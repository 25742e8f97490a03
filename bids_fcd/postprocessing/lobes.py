"""Per-participant lobe probabilities from the classifier's per-slice probabilities."""

from __future__ import annotations

import numpy as np

from bids_fcd.config import HEALTHY, LOBES


def participant_lobe_probabilities(slice_probs: np.ndarray, brain_fraction: np.ndarray,
                                   min_fraction: float = 0.05) -> dict[str, float]:
    """Aggregate C(c | x_0, t=0) over slices into one distribution over ``LOBES``.

    Evidence for a lobe is its highest slice probability (a lesion need only show on a few
    slices); evidence for healthy is the lowest slice probability of healthy. The six numbers
    are normalised to sum to one. Slices with less than ``min_fraction`` brain are ignored.

    Args:
        slice_probs: (S, 6) softmax outputs. brain_fraction: (S,) fraction of brain pixels.
    Returns:
        {lobe: probability} in ``LOBES`` order.
    """
    keep = np.asarray(brain_fraction) >= min_fraction
    p = np.asarray(slice_probs, np.float64)[keep] if keep.any() else np.asarray(slice_probs, np.float64)
    score = p.max(axis=0)
    score[HEALTHY] = p[:, HEALTHY].min()
    score = score / score.sum()
    return {name: float(v) for name, v in zip(LOBES, score, strict=False)}
