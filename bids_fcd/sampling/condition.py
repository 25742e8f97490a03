"""The T1w condition the sampler is shown (the T1w condition carries the lesion; docs/method.md).

The network draws the FLAIR that healthy tissue with the given T1w would have, so a lesion's own T1w
signs (grey matter reaching into white matter, a blurred grey-white junction) are drawn back into its
pseudo-healthy FLAIR. The grid is centred on x = 0 (the template's midline), so reversing W mirrors
the hemispheres; a one-sided lesion's T1w signs can be weakened with the other hemisphere's T1w:

- ``native``: y unchanged (the paper's);
- ``symmetric``: y_sym = (y + y_mirror) / 2 where the voxel and its mirror are both brain, y elsewhere
  (halves the one-sided signs, keeps what both hemispheres share);
- ``mirror``: y_mirror where both are brain, y elsewhere (hides the one-sided signs completely, shows
  the network the other hemisphere's folding).

Applied to participants and reference controls alike, so the controls' noise floor sees the same change.
"""

from __future__ import annotations

import numpy as np

from bids_fcd.config import T1_CONDITIONS

#: Weight of the mirror T1w for each condition: y' = (1 − w)·y + w·y_mirror inside brain ∩ mirrored brain.
MIRROR_WEIGHT = {"native": 0.0, "symmetric": 0.5, "mirror": 1.0}


def conditioned_stack(stack: np.ndarray, mask: np.ndarray, condition: str) -> np.ndarray:
    """The stack with its T1w channel replaced for ``condition`` (:data:`~bids_fcd.config.T1_CONDITIONS`).

    Args:
        stack: (S, C, H, W) float32, channel 0 FLAIR, channel 1 T1w (C = 1: a FLAIR-only model; returned as is).
        mask: (S, H, W) bool brain mask on the same grid.
    Returns:
        (S, C, H, W), a new array unless ``condition`` is ``native`` or there is no T1w channel; the FLAIR
        channel and the T1w outside brain ∩ mirrored brain are unchanged.
    """
    if condition not in T1_CONDITIONS:
        raise ValueError(f"unknown T1w condition {condition!r}; choose one of {T1_CONDITIONS} (--t1-condition)")
    w = MIRROR_WEIGHT[condition]
    if w == 0.0 or stack.shape[1] < 2:
        return stack
    out = stack.copy()
    y = stack[:, 1]
    both = mask & mask[..., ::-1]
    out[:, 1] = np.where(both, (1.0 - w) * y + w * y[..., ::-1], y).astype(stack.dtype)
    return out
