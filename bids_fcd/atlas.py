"""Template anatomy: the MNI152NLin2009aSym images that nilearn ships, and a coarse lobe map.

Lobe labels come from :func:`lobe_of_mm`, a deliberately simple coordinate rule set written for
this project (no third-party atlas, so no licence or download issue). It follows the usual
landmarks of MNI space: the central sulcus near y ≈ −20 mm, the parieto-occipital boundary near
y ≈ −72 mm, the temporal lobe below z ≈ 4 mm lateral to |x| ≈ 24 mm, and the insula as a box
deep to the lateral sulcus. It is accurate to about a gyrus, which is the precision that lobe
labels in participants.tsv carry. The README says so.
"""

from __future__ import annotations

import functools

import numpy as np


def lobe_of_mm(xyz: np.ndarray) -> np.ndarray:
    """Lobe label for each template-space point.

    Args:
        xyz: (N, 3) float array of MNI152NLin2009aSym coordinates in mm (RAS).

    Returns:
        (N,) array of str, each a lobe code of :data:`bids_fcd.config.LOBES` (not ``healthy``).
    """
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    x, y, z = np.abs(xyz[:, 0]), xyz[:, 1], xyz[:, 2]
    out = np.full(len(xyz), "PL", dtype="<U2")
    out[y > -20.0 - 0.15 * np.clip(z, 0, None)] = "FL"
    temporal = (y <= 12.0) & (y > -72.0) & (z < 4.0) & (x >= 24.0)
    out[temporal] = "TL"
    out[y <= -72.0] = "OL"
    insula = (x >= 26.0) & (x <= 42.0) & (y >= -30.0) & (y <= 28.0) & (z >= -12.0) & (z <= 22.0)
    out[insula] = "IL"
    return out


def hemisphere_of_mm(xyz: np.ndarray) -> np.ndarray:
    """'L' where template x < 0 (RAS), else 'R'. Shape (N,) of str."""
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    return np.where(xyz[:, 0] < 0, "L", "R")


@functools.lru_cache(maxsize=4)
def load_template(resolution: int = 1) -> dict[str, object]:
    """The nilearn MNI152NLin2009aSym T1 (skull-stripped), GM, WM and brain-mask images.

    Returns a dict of nibabel images with keys ``t1, gm, wm, mask`` on the same grid.
    Cached: each resolution is read once per process.
    """
    from nilearn import datasets

    return {
        "t1": datasets.load_mni152_template(resolution=resolution),
        "gm": datasets.load_mni152_gm_template(resolution=resolution),
        "wm": datasets.load_mni152_wm_template(resolution=resolution),
        "mask": datasets.load_mni152_brain_mask(resolution=resolution),
    }
