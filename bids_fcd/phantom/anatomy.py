"""Pure-array pieces of the phantom: head model, lesion model, deformation, scanner effects.

All functions take and return numpy arrays and a ``numpy.random.Generator``; nothing here
reads or writes files. Coordinates are MNI152NLin2009aSym millimetres (RAS) unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bids_fcd.atlas import lobe_of_mm

#: Mean tissue intensities (arbitrary units) of the two contrasts; jittered per subject.
T1_MEANS = {"wm": 1.00, "gm": 0.62, "csf": 0.18, "skull": 0.08, "scalp": 0.85}
FLAIR_MEANS = {"wm": 0.52, "gm": 0.74, "csf": 0.07, "skull": 0.05, "scalp": 0.55}
#: Soft tissue of a real head (muscle, glands; :mod:`bids_fcd.phantom.real_anatomy`), jittered after the others.
SOFT_MEANS = {"t1": 0.45, "flair": 0.38}


@dataclass(frozen=True)
class TissueMaps:
    """Fractions on a 1 mm template-space grid (X, Y, Z), each float32 in [0, 1]."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    skull: np.ndarray
    scalp: np.ndarray
    affine: np.ndarray  # (4, 4) voxel → template mm
    #: Real-anatomy heads only (:func:`bids_fcd.phantom.real_anatomy.anatomy_head`): other soft tissue, the
    #: cerebral cortex (where lesions go; else grey matter next to white matter) and the brain mask.
    soft: np.ndarray | None = None
    cortex: np.ndarray | None = None
    brain: np.ndarray | None = None


@dataclass(frozen=True)
class Lesion:
    """An FCD type II lesion: weights on the template grid and where it is."""

    weight: np.ndarray  # (X, Y, Z) float32 in [0, 1]: 1 at the core, tapering tail
    mask: np.ndarray  # (X, Y, Z) bool: the manual-label analogue (`_roi`)
    center_mm: tuple[float, float, float]
    lobe: str
    hemisphere: str
    flair_gain: float  # hyperintensity as a fraction of grey-matter FLAIR (0.1-0.3)


def head_model(gm: np.ndarray, wm: np.ndarray, brain: np.ndarray, affine: np.ndarray, pad: int) -> TissueMaps:
    """Add CSF, a skull and a scalp around the template brain.

    Args:
        gm, wm: (X, Y, Z) tissue probabilities from the template.
        brain: (X, Y, Z) bool brain mask.
        affine: (4, 4) voxel → mm of those arrays.
        pad: voxels of padding added on every side so the head fits.
    """
    gm, wm, brain = (np.pad(a, pad) for a in (gm, wm, brain.astype(bool)))
    aff = affine.copy()
    aff[:3, 3] -= aff[:3, :3] @ np.full(3, pad)
    vox = float(abs(aff[0, 0]))
    outside = ~ndimage.binary_fill_holes(brain)
    dist = ndimage.distance_transform_edt(outside, sampling=vox)
    csf = np.clip(brain.astype(np.float32) - gm - wm, 0, 1)
    csf = csf + ((dist > 0) & (dist <= 2.5)).astype(np.float32)
    skull = ((dist > 2.5) & (dist <= 8.0)).astype(np.float32)
    scalp = ((dist > 8.0) & (dist <= 14.0)).astype(np.float32)
    smooth = 0.6 / vox
    return TissueMaps(
        gm=gm.astype(np.float32),
        wm=wm.astype(np.float32),
        csf=ndimage.gaussian_filter(csf, smooth).astype(np.float32),
        skull=ndimage.gaussian_filter(skull, smooth).astype(np.float32),
        scalp=ndimage.gaussian_filter(scalp, smooth).astype(np.float32),
        affine=aff,
    )


def voxel_mm(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """(X, Y, Z, 3) template mm of every voxel centre."""
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape[:3]), indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


#: Lesion sites beyond "anywhere in the lobe" (template mm boxes on |x|, y, z), drawn by
#: :func:`draw_site`: the cingulate (medial frontal), the precuneus (medial parietal) and the
#: operculum (lateral, around the Sylvian fissure), which are hard places to see FCD.
SITES: dict[str, dict[str, tuple[float, float]]] = {
    "cingulate": {"ax": (3.0, 14.0), "y": (-40.0, 35.0), "z": (0.0, 45.0)},
    "precuneus": {"ax": (3.0, 14.0), "y": (-75.0, -40.0), "z": (10.0, 60.0)},
    "operculum": {"ax": (40.0, 62.0), "y": (-35.0, 25.0), "z": (0.0, 28.0)},
}
#: Lobes each site lies in (:func:`bids_fcd.atlas.lobe_of_mm`).
SITE_LOBES = {"cingulate": ("FL",), "precuneus": ("PL",), "operculum": ("FL", "PL")}


def draw_site(rng: np.random.Generator, lobe: str, p_site: float = 0.4) -> str:
    """A special site for a lesion in ``lobe`` with probability ``p_site`` (else "" = anywhere)."""
    sites = [k for k, lobes in SITE_LOBES.items() if lobe in lobes]
    if not sites or rng.random() >= p_site:
        return ""
    return str(sites[int(rng.integers(len(sites)))])


def make_lesion(tissue: TissueMaps, lobe: str, hemisphere: str, rng: np.random.Generator, size_mm: float,
                gain: float | None = None, site: str = "", profile_power: float = 2.0) -> Lesion:
    """Place an FCD type II lesion at the bottom of a sulcus in ``lobe`` and ``hemisphere``.

    The core is a blob of radius ``size_mm`` (noise-perturbed) centred on cortex next to white
    matter; the transmantle tail is a tube that tapers from the core toward the lateral
    ventricle (template point (±14, −10, 18) mm). ``gain`` is the FLAIR hyperintensity as a
    fraction of grey-matter FLAIR (None: drawn in 0.10-0.30); ``site`` one of :data:`SITES`
    restricts the centre to that box (falling back to the whole lobe if it has no cortex there).
    ``profile_power`` p shapes the core's weight 1 − (d/r)^p: 2 peaks at the centre, larger p gives a flat
    top (a uniform hyperintensity with a short rim, e.g. p = 8), whose inside a high-pass filter removes.
    """
    aff = tissue.affine
    vox = float(abs(aff[0, 0]))
    grey = tissue.gm if tissue.cortex is None else tissue.cortex
    cortex = (grey > 0.5) & (ndimage.gaussian_filter(tissue.wm, 1.5) > 0.25)
    sign = -1.0 if hemisphere == "L" else 1.0
    idx = np.argwhere(cortex)
    pts = idx @ aff[:3, :3].T + aff[:3, 3]
    keep = (np.sign(pts[:, 0]) == sign) & (np.abs(pts[:, 0]) > 3)
    keep &= lobe_of_mm(pts) == lobe
    if site:
        in_box = keep.copy()
        for key, coord in (("ax", np.abs(pts[:, 0])), ("y", pts[:, 1]), ("z", pts[:, 2])):
            in_box &= (coord >= SITES[site][key][0]) & (coord <= SITES[site][key][1])
        if in_box.any():
            keep = in_box
    else:
        keep &= np.abs(pts[:, 0]) > 6
    idx, pts = idx[keep], pts[keep]
    if len(idx) == 0:
        raise ValueError(f"no cortex voxel found for lobe {lobe} hemisphere {hemisphere}")
    pick = int(rng.integers(len(idx)))
    centre_vox, centre = idx[pick], pts[pick]
    # everything below happens in a box around the centre that holds the core and the tail
    half = int(np.ceil((1.4 * size_mm + 28.0) / vox))
    lo = np.maximum(centre_vox - half, 0)
    hi = np.minimum(centre_vox + half + 1, tissue.gm.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    sub_aff = aff.copy()
    sub_aff[:3, 3] = aff[:3, :3] @ lo + aff[:3, 3]
    mm = voxel_mm(tuple(int(b - a) for a, b in zip(lo, hi, strict=True)), sub_aff)
    dist = np.linalg.norm(mm - centre, axis=-1)
    wobble = ndimage.gaussian_filter(rng.standard_normal(dist.shape).astype(np.float32), 3.0 / vox)
    wobble = wobble / (np.abs(wobble).max() + 1e-8)
    radius = size_mm * (1.0 + 0.3 * wobble)
    core = np.clip(1.0 - (dist / radius) ** profile_power, 0, 1)
    # transmantle tail toward the ventricle, tapering in radius and strength
    target = np.array([14.0 * sign, -10.0, 18.0])
    axis = target - centre
    length = min(float(np.linalg.norm(axis)), rng.uniform(14.0, 24.0))
    axis = axis / (np.linalg.norm(axis) + 1e-8)
    rel = mm - centre
    along = rel @ axis
    perp = np.linalg.norm(rel - along[..., None] * axis, axis=-1)
    frac = np.clip(along / length, 0, 1)
    tail_r = 0.45 * size_mm * (1.0 - frac) + 0.5
    tail = np.where((along > 0) & (along < length), np.clip(1.0 - perp / tail_r, 0, 1) * (1.0 - 0.7 * frac), 0.0)
    brain = (tissue.gm[box] + tissue.wm[box]) > 0.3
    local = ndimage.gaussian_filter((np.maximum(core, 0.8 * tail) * brain).astype(np.float32), 0.7 / vox)
    weight = np.zeros(tissue.gm.shape, np.float32)
    weight[box] = local
    mask = weight > 0.3
    return Lesion(
        weight=weight.astype(np.float32),
        mask=mask,
        center_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        lobe=lobe,
        hemisphere=hemisphere,
        flair_gain=float(rng.uniform(0.10, 0.30)) if gain is None else float(gain),
    )


def vary_anatomy(tissue: TissueMaps, rng: np.random.Generator, thickness: float = 0.15,
                 sulcal: float = 0.25) -> TissueMaps:
    """Per-subject anatomy: cortical thickness and sulcal width changed by smooth random fields.

    A field k(x) in [−``thickness``, +``thickness``] moves that fraction of the white matter next to
    grey matter into grey matter (k > 0, thicker cortex) or back; a field in [0, ``sulcal``] turns
    grey matter next to CSF into CSF (wider sulci, as in older brains). Smooth over ~20 mm, so the
    changes look like anatomy, not lesions. Pure array; returns new maps on the same grid.
    """
    vox = float(abs(tissue.affine[0, 0]))
    shape = tissue.gm.shape

    def field(lo: float, hi: float) -> np.ndarray:
        # drawn on an 8× coarser grid and interpolated back: the same smooth field, 500× cheaper
        coarse = [max(n // 8, 2) for n in shape]
        f = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), 20.0 / (8 * vox))
        f = ndimage.zoom(f, [n / c for n, c in zip(shape, coarse, strict=True)], order=1)[: shape[0], : shape[1],
                                                                                        : shape[2]]
        f = (f - f.min()) / max(float(f.max() - f.min()), 1e-8)
        return (lo + (hi - lo) * f).astype(np.float32)

    gm, wm, csf = tissue.gm, tissue.wm, tissue.csf
    k = field(-thickness, thickness) * float(rng.uniform(0.3, 1.0))
    near_gm = ndimage.gaussian_filter(gm, 1.0 / vox)
    move = np.where(k > 0, k * near_gm * wm, k * near_gm * gm * (wm > 0.05))
    gm, wm = gm + move, wm - move
    near_csf = ndimage.gaussian_filter(csf, 1.0 / vox)
    widen = field(0.0, sulcal) * float(rng.uniform(0.0, 1.0)) * near_csf * gm
    gm, csf = gm - widen, csf + widen
    cortex = tissue.cortex
    if cortex is not None:  # the cortex loses what became CSF, gains nothing (deep nuclei are not cortex)
        cortex = np.clip(cortex - widen, 0, 1).astype(np.float32)
    return TissueMaps(np.clip(gm, 0, 1).astype(np.float32), np.clip(wm, 0, 1).astype(np.float32),
                      np.clip(csf, 0, 1).astype(np.float32), tissue.skull, tissue.scalp, tissue.affine,
                      tissue.soft, cortex, tissue.brain)


def contrasts(tissue: TissueMaps, lesion: Lesion | None, rng: np.random.Generator,
              jitter: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """T1w and FLAIR intensities on the template grid from tissue fractions.

    FCD type II on T1w: cortical thickening (grey matter grows into white matter) and
    grey/white blurring (the fractions are smoothed locally). On FLAIR: a hyperintensity of
    ``lesion.flair_gain`` × grey-matter FLAIR, strongest at the core, following the tail.
    ``jitter`` is the relative per-tissue contrast jitter of each subject (scanner differences).

    Returns:
        (t1, flair), each (X, Y, Z) float32.
    """
    gm, wm = tissue.gm.copy(), tissue.wm.copy()
    if lesion is not None:
        w = lesion.weight
        thick = 0.45 * w * wm
        gm, wm = gm + thick, wm - thick
        vox = float(abs(tissue.affine[0, 0]))
        gm_b, wm_b = ndimage.gaussian_filter(gm, 1.8 / vox), ndimage.gaussian_filter(wm, 1.8 / vox)
        gm, wm = (1 - w) * gm + w * gm_b, (1 - w) * wm + w * wm_b
    jit = {k: 1.0 + rng.uniform(-jitter, jitter) for k in T1_MEANS}
    maps = {"gm": gm, "wm": wm, "csf": tissue.csf, "skull": tissue.skull, "scalp": tissue.scalp}
    t1 = sum(T1_MEANS[k] * jit[k] * maps[k] for k in maps)
    jit = {k: 1.0 + rng.uniform(-jitter, jitter) for k in FLAIR_MEANS}
    flair = sum(FLAIR_MEANS[k] * jit[k] * maps[k] for k in maps)
    if tissue.soft is not None:  # drawn after the others: a template head's draws do not change
        j1, j2 = (1.0 + rng.uniform(-jitter, jitter) for _ in range(2))
        t1 = t1 + SOFT_MEANS["t1"] * j1 * tissue.soft
        flair = flair + SOFT_MEANS["flair"] * j2 * tissue.soft
    # fine texture so that images are not piecewise constant, plus a smooth tissue texture (~10 mm)
    # of a few per cent, which real FLAIR shows and which is not a lesion
    tex = ndimage.gaussian_filter(rng.standard_normal(gm.shape).astype(np.float32), 0.8)
    vox = float(abs(tissue.affine[0, 0]))
    low = ndimage.gaussian_filter(rng.standard_normal(gm.shape).astype(np.float32), 5.0 / vox)
    low = low / max(float(np.abs(low).max()), 1e-8)
    amp = float(rng.uniform(0.0, 0.05))
    t1 = t1 * (1 + 0.04 * tex)
    flair = flair * (1 + 0.04 * tex + amp * low)
    if lesion is not None:
        flair = flair + lesion.flair_gain * FLAIR_MEANS["gm"] * lesion.weight
    return np.asarray(t1, np.float32), np.asarray(flair, np.float32)


def random_warp(rng: np.random.Generator, max_rot_deg: float, max_shift_mm: float, scale_range: float) -> np.ndarray:
    """A random subject-to-template affine (4, 4): rotation, translation, isotropic-ish scale."""
    ang = np.deg2rad(rng.uniform(-max_rot_deg, max_rot_deg, 3))
    cx, cy, cz = np.cos(ang)
    sx, sy, sz = np.sin(ang)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    scale = np.diag(1.0 + rng.uniform(-scale_range, scale_range, 3))
    out = np.eye(4)
    out[:3, :3] = rx @ ry @ rz @ scale
    out[:3, 3] = rng.uniform(-max_shift_mm, max_shift_mm, 3)
    return out


def displacement_field(shape: tuple[int, int, int], rng: np.random.Generator, amp_vox: float, smooth_vox: float) -> np.ndarray:
    """A smooth random displacement field (3, X, Y, Z) in voxels of a coarse-or-fine grid."""
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), smooth_vox) for _ in range(3)])
    field = field / (np.abs(field).max() + 1e-8) * amp_vox
    return field.astype(np.float32)


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth multiplicative field exp(low-order polynomial), (X, Y, Z) float32, mean ≈ 1."""
    grids = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    coef = rng.uniform(-1, 1, 6)
    x, y, z = grids
    poly = coef[0] * x + coef[1] * y + coef[2] * z + coef[3] * x * y + coef[4] * y * z + coef[5] * x * x
    return np.exp(strength * poly / 2.0).astype(np.float32)


def ghost(img: np.ndarray, rng: np.random.Generator, axis: int, max_amp: float = 0.03) -> np.ndarray:
    """Motion/N/2 ghosting: a faint copy of the image shifted by half the field of view along the
    phase-encoding ``axis`` (amplitude uniform in [0, ``max_amp``]). Same shape, float32."""
    amp = float(rng.uniform(0.0, max_amp))
    return (img + amp * np.roll(img, img.shape[axis] // 2, axis=axis)).astype(np.float32)


def rician(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` (Rician)."""
    n1 = rng.standard_normal(img.shape).astype(np.float32) * sigma
    n2 = rng.standard_normal(img.shape).astype(np.float32) * sigma
    return np.sqrt((img + n1) ** 2 + n2**2).astype(np.float32)
