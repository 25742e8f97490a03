"""Domain-randomised phantom brains made directly on the model grid, for training.

A BIDS phantom costs ~15 s to write and ~45 s to preprocess on 2 cores; a training set of hundreds
of brains would cost hours. These brains skip the scanner round trip: the template anatomy (with
per-brain cortical thickness, sulcal width and texture, :func:`~bids_fcd.phantom.anatomy.vary_anatomy`)
and an optional FCD lesion are warped by a smooth random deformation straight onto the model grid,
with what preprocessing leaves of an acquisition randomised widely, in the spirit of SynthSeg
(Billot et al.): per-tissue contrasts (± 15 %), through-plane slice thickness 1-6 mm with a
Gaussian slice profile (2D FLAIR), in-plane blur, a residual bias field (what N4 leaves), Rician
noise, ghosting, and a brain mask eroded or dilated by up to one voxel (skull-stripping error).
Intensities are normalised exactly as :func:`bids_fcd.preprocessing.grid.normalise` does for real
scans. Pure arrays and a seed; nothing is written.

Used by ``bids-fcd train --phantom-brains N`` beside (or instead of) BIDS participants. Training,
reference and benchmark phantoms use disjoint seeds (the model card lists them).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_fcd.atlas import load_template
from bids_fcd.config import GridConfig, PreprocConfig
from bids_fcd.phantom import anatomy
from bids_fcd.phantom.generator import LOBE_WEIGHTS, lesion_gain, template_head
from bids_fcd.phantom.real_anatomy import anatomy_head
from bids_fcd.preprocessing.grid import grid_affine, normalise, to_slices
from bids_fcd.training.datasets import SubjectSlices

#: Template resolution (mm) the brains are built at (the model grid is no finer than 2 mm).
TEMPLATE_RES = 2
#: Lesion radius ranges (mm) and their odds: small, medium, large.
RADII = (((2.5, 4.0), 0.3), ((5.0, 9.0), 0.4), ((10.0, 20.0), 0.3))


def _sample_to_grid(vol: np.ndarray, vol_affine: np.ndarray, grid: GridConfig, disp: np.ndarray,
                    order: int) -> np.ndarray:
    aff, shape = grid_affine(grid)
    ijk = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij"), 0)
    m = np.linalg.inv(vol_affine) @ aff
    coords = np.tensordot(m[:3, :3], ijk, axes=1) + m[:3, 3][:, None, None, None]
    d = np.stack([ndimage.map_coordinates(disp[k], coords, order=1, mode="nearest") for k in range(3)])
    return ndimage.map_coordinates(vol, coords + d, order=order, mode="constant", cval=0.0).astype(np.float32)


def grid_brain(seed: int, index: int, grid: GridConfig, p_fcd: float = 0.5,
               preproc: PreprocConfig | None = None, anatomies: tuple[str, ...] = ()) -> SubjectSlices:
    """One randomised brain on ``grid``: stack (S, 2, H, W) normalised, mask (S, H, W), lesion or None.

    Deterministic in (seed, index). ``p_fcd`` is the probability of a lesion (its lobe drawn with
    :data:`~bids_fcd.phantom.generator.LOBE_WEIGHTS`, its size from :data:`RADII`). ``anatomies``: label maps
    of real brains (:mod:`~bids_fcd.phantom.real_anatomy`); brain ``index`` is built from the
    (index mod n)-th instead of the template, with that brain's own mask.
    """
    rng = np.random.default_rng([seed, 7331, index])
    preproc = preproc or PreprocConfig()
    head = anatomy_head(anatomies[index % len(anatomies)], TEMPLATE_RES) if anatomies else template_head(TEMPLATE_RES)
    tissue = anatomy.vary_anatomy(head, rng)
    lesion, lobe = None, "n/a"
    if rng.random() < p_fcd:
        lobes, probs = list(LOBE_WEIGHTS), np.array(list(LOBE_WEIGHTS.values()))
        lobe = str(rng.choice(lobes, p=probs / probs.sum()))
        k = int(rng.choice(len(RADII), p=[p for _, p in RADII]))
        radius = float(rng.uniform(*RADII[k][0]))
        lesion = anatomy.make_lesion(tissue, lobe, str(rng.choice(["L", "R"])), rng, radius, gain=lesion_gain(rng),
                                     site=anatomy.draw_site(rng, lobe))
    t1, flair = anatomy.contrasts(tissue, lesion, rng, jitter=float(rng.uniform(0.03, 0.15)))
    vox = float(abs(tissue.affine[2, 2]))
    if rng.random() < 0.5:  # a 2D FLAIR: thick axial slices with a Gaussian slice profile
        thick = float(rng.uniform(1.0, 6.0))
        flair = ndimage.gaussian_filter1d(flair, thick / 2.3548 / vox, axis=2)
    inplane = float(rng.uniform(0.0, 0.6))
    if inplane > 0:
        flair = ndimage.gaussian_filter(flair, (inplane, inplane, 0.0))
    disp = anatomy.displacement_field(t1.shape, rng, amp_vox=float(rng.uniform(0.5, 2.5)), smooth_vox=7.0)
    if head.brain is not None:
        brain_tpl = head.brain
    else:
        brain_tpl = np.asarray(load_template(TEMPLATE_RES)["mask"].get_fdata(), np.float32)
        brain_tpl = np.pad(brain_tpl, (t1.shape[0] - brain_tpl.shape[0]) // 2)
    vols = [_sample_to_grid(v, tissue.affine, grid, disp, 1) for v in (flair, t1, brain_tpl)]
    # deepbet's masks hold a rim of CSF around the template's brain mask: grow it by 0-2 voxels
    # (shrink it by one in 1 brain of 10)
    grow = int(rng.choice([-1, 0, 1, 2], p=[0.1, 0.25, 0.5, 0.15]))
    mask = vols[2] > 0.5
    if grow:
        mask = (ndimage.binary_dilation if grow > 0 else ndimage.binary_erosion)(mask, iterations=abs(grow))
    out = []
    for v, strength in zip(vols[:2], (rng.uniform(0.0, 0.25), rng.uniform(0.0, 0.15)), strict=True):
        v = v * anatomy.bias_field(v.shape, rng, strength=float(strength))
        v = anatomy.ghost(v, rng, axis=1, max_amp=0.02)
        v = anatomy.rician(v, float(rng.uniform(0.01, 0.06)) * float(np.percentile(v[mask], 90)), rng)
        # preprocessing resamples 1 mm scans to 2 mm through a smoothing working grid
        v = ndimage.gaussian_filter(v, float(rng.uniform(0.5, 1.0)))
        out.append(normalise(v, mask, preproc.normalise_percentiles))
    roi = None
    if lesion is not None:
        roi_g = _sample_to_grid(lesion.mask.astype(np.float32), tissue.affine, grid, disp, 1) > 0.5
        roi = to_slices(roi_g.astype(np.float32))[:, 0] > 0.5
    return SubjectSlices(f"grid{seed}x{index:04d}", to_slices(*out), to_slices(mask.astype(np.float32))[:, 0] > 0.5,
                         roi, lobe)


def grid_brains(n: int, seed: int, grid: GridConfig, p_fcd: float = 0.5,
                anatomies: tuple[str, ...] = ()) -> list[SubjectSlices]:
    """``n`` brains of :func:`grid_brain` (indices 0 … n − 1), from ``anatomies`` in turn if given."""
    return [grid_brain(seed, i, grid, p_fcd, anatomies=anatomies) for i in range(n)]
