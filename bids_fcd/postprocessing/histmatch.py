"""Masked histogram matching (pure numpy)."""

from __future__ import annotations

import numpy as np


def match_histogram(source: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Map ``source`` intensities inside ``mask`` onto the CDF of ``reference`` inside ``mask``.

    Quantile mapping: the voxel of source rank r (of n) takes the reference's value at quantile
    r / (n − 1). Background (outside the mask) is left as in ``source``; it never enters either
    CDF (the paper's code matched uint8 images including background; we do not).

    Args:
        source: pseudo-healthy volume, any shape. reference: real FLAIR, same shape.
        mask: bool brain mask, same shape.
    Returns:
        float32 array, same shape as ``source``.
    """
    mask = np.asarray(mask, bool)
    out = np.asarray(source, np.float32).copy()
    src = out[mask]
    ref = np.sort(np.asarray(reference, np.float32)[mask])
    if src.size == 0:
        return out
    order = np.argsort(src, kind="stable")
    q_src = np.empty(src.size, np.float64)
    q_src[order] = np.linspace(0.0, 1.0, src.size)
    q_ref = np.linspace(0.0, 1.0, ref.size)
    out[mask] = np.interp(q_src, q_ref, ref).astype(np.float32)
    return out
