"""Baselines that need no diffusion model (pure numpy, template-space (W, H, S) volumes)."""

from __future__ import annotations

import numpy as np


def control_zscore(flair: np.ndarray, controls: list[np.ndarray], control_masks: list[np.ndarray],
                   mask: np.ndarray, min_sd: float = 0.05) -> np.ndarray:
    """Voxelwise z of the FLAIR against the controls' FLAIRs (positive part: FCD is hyperintense).

    Args:
        flair: (W, H, S) normalised FLAIR of the participant. controls: the controls' FLAIRs on
        the same grid (leave the participant itself out). control_masks / mask: brain masks.
        min_sd: floor of the voxelwise standard deviation.
    Returns:
        (W, H, S) float32, zero outside ``mask``.
    """
    if not controls:
        raise ValueError("the control z-score baseline needs at least one control")
    stack = np.stack([np.where(m, c, np.nan) for c, m in zip(controls, control_masks, strict=True)])
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(stack, axis=0)
        sd = np.nanstd(stack, axis=0) if len(controls) > 1 else np.zeros_like(mu)
    mu = np.nan_to_num(mu, nan=-1.0)
    sd = np.maximum(np.nan_to_num(sd, nan=0.0), min_sd)
    z = (flair - mu) / sd
    return np.where(mask, np.clip(z, 0, None), 0.0).astype(np.float32)


def asymmetry(flair: np.ndarray, mask: np.ndarray, signed: bool = False) -> np.ndarray:
    """FLAIR minus its mirror across the mid-sagittal plane (positive part, or ``signed``) in the brain.

    The model grid is centred on x = 0, so axis 0 reversed is the mirror image. The signed map is
    what the benchmark z-scores against the reference controls' own asymmetry maps.
    """
    mirrored = flair[::-1]
    both = mask & mask[::-1]
    diff = flair - mirrored
    return np.where(both, diff if signed else np.clip(diff, 0, None), 0.0).astype(np.float32)
