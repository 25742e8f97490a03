"""Baselines that need no diffusion model (pure numpy, template-space (W, H, S) volumes).

The FLAIR z-score baseline is the FLAIR scored by the normative machinery itself
(:mod:`bids_fcd.postprocessing.normative`), so it gets exactly the method's repairs.
"""

from __future__ import annotations

import numpy as np


def asymmetry(flair: np.ndarray, mask: np.ndarray, signed: bool = False) -> np.ndarray:
    """FLAIR minus its mirror across the mid-sagittal plane (positive part, or ``signed``) in the brain.

    The model grid is centred on x = 0, so axis 0 reversed is the mirror image. The signed map is
    what the benchmark z-scores against the reference controls' own asymmetry maps.
    """
    mirrored = flair[::-1]
    both = mask & mask[::-1]
    diff = flair - mirrored
    return np.where(both, diff if signed else np.clip(diff, 0, None), 0.0).astype(np.float32)
