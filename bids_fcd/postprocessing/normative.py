"""Normative reference (pure numpy): voxelwise mean and robust SD of a map over controls, and the
z-map of a participant against it, the way PET is read against a normal database.

A reference holds, on the model grid (W, H, S), a coverage mask (voxels where at least
``min_coverage`` of the controls have brain) and, per named map (``anomaly``: the residual
FLAIR − pseudo-healthy; ``flair``: the FLAIR itself, for the baseline), the voxelwise median μ
and a robust SD σ: 1.4826 × the median absolute deviation over the controls, smoothed within the
coverage mask and floored at ``sd_floor_fraction`` × its median over the coverage, so neither a
few agreeing controls nor the brain's edge can make σ collapse. z = (x − μ) / σ inside
mask ∩ coverage, 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: Robust-SD factor: MAD × 1.4826 estimates σ for normal data.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class ReferenceParams:
    """How a reference is built (recorded in ``reference.json``)."""

    min_coverage: float = 0.8
    sd_smoothing_vox: float = 1.0
    sd_floor_fraction: float = 0.5
    min_controls: int = 2


@dataclass
class NormativeReference:
    """Coverage (W, H, S) bool; ``stats[name] = (mean, sd)``, each (W, H, S) float32; ``n`` controls."""

    coverage: np.ndarray
    stats: dict[str, tuple[np.ndarray, np.ndarray]]
    n: int
    params: ReferenceParams = field(default_factory=ReferenceParams)


def _smooth_within(vol: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return vol
    num = ndimage.gaussian_filter(np.where(mask, vol, 0.0).astype(np.float32), sigma)
    den = ndimage.gaussian_filter(mask.astype(np.float32), sigma)
    return np.where(mask, num / np.maximum(den, 1e-6), vol).astype(np.float32)


def robust_stats(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], coverage: np.ndarray,
                 params: ReferenceParams) -> tuple[np.ndarray, np.ndarray]:
    """Voxelwise median and floored, smoothed MAD-SD of ``maps`` where each control has brain.

    Args:
        maps: N arrays (W, H, S). masks: N bool brain masks. coverage: (W, H, S) bool.
    Returns:
        (mean, sd) float32 (W, H, S); outside ``coverage`` mean 0 and sd 1.
    """
    stack = np.stack([np.where(m, x, np.nan) for x, m in zip(maps, masks, strict=True)]).astype(np.float32)
    cov = np.asarray(coverage, bool)
    mean = np.zeros(stack.shape[1:], np.float32)
    sd = np.ones(stack.shape[1:], np.float32)
    if not cov.any():
        return mean, sd
    vals = stack[:, cov]
    med = np.nanmedian(vals, axis=0)
    mad = np.nanmedian(np.abs(vals - med), axis=0) * MAD_TO_SD
    mean[cov] = med
    sd[cov] = mad
    sd = _smooth_within(sd, cov, params.sd_smoothing_vox)
    floor = max(float(np.median(sd[cov])) * params.sd_floor_fraction, 1e-6)
    sd = np.where(cov, np.maximum(sd, floor), 1.0).astype(np.float32)
    return mean, sd


def build_reference(maps: Mapping[str, Sequence[np.ndarray]], masks: Sequence[np.ndarray],
                    params: ReferenceParams | None = None) -> NormativeReference:
    """A reference from N controls: ``maps[name]`` is N (W, H, S) arrays, ``masks`` their brain masks."""
    params = params or ReferenceParams()
    n = len(masks)
    if n < params.min_controls:
        raise ValueError(f"a normative reference needs at least {params.min_controls} controls, got {n}")
    frac = np.mean(np.stack([np.asarray(m, bool) for m in masks]), axis=0)
    coverage = (frac >= params.min_coverage) & (frac > 0)
    stats = {name: robust_stats(vols, masks, coverage, params) for name, vols in maps.items()}
    return NormativeReference(coverage, stats, n, params)


def normative_z(x: np.ndarray, mask: np.ndarray, ref: NormativeReference, name: str = "anomaly") -> np.ndarray:
    """z = (x − μ) / σ inside ``mask`` ∩ coverage, 0 elsewhere. float32, (W, H, S)."""
    if name not in ref.stats:
        raise ValueError(f"the reference has no {name!r} statistics (it has {sorted(ref.stats)})")
    mean, sd = ref.stats[name]
    if mean.shape != np.shape(x):
        raise ValueError(f"the reference grid {mean.shape} does not match the map {np.shape(x)}; "
                         "build the reference with the same model")
    inside = np.asarray(mask, bool) & ref.coverage
    return np.where(inside, (x - mean) / sd, 0.0).astype(np.float32)


def leave_one_out_z(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                    params: ReferenceParams | None = None) -> list[np.ndarray]:
    """Each control's z-map of one map against a reference of the other N − 1 (no re-standardisation)."""
    return leave_one_out_combined({"anomaly": maps}, masks, {"anomaly": 1.0}, False, params)


def _block_field(x: np.ndarray, keep: np.ndarray, block_vox: int) -> np.ndarray:
    """The low-frequency field of ``x`` (W, H, S): the median of ``x`` over ``keep`` voxels in blocks of
    ``block_vox``³ voxels (blocks with < 30 % kept voxels are left out), smoothed across blocks by a
    normalised Gaussian (σ = one block), so left-out blocks are filled from their neighbours, and
    interpolated back to the grid (0 where no block is near). float32 (W, H, S)."""
    shape = x.shape
    pad = [(0, (-n) % block_vox) for n in shape]
    a = np.pad(np.where(keep, x, np.nan).astype(np.float32), pad, constant_values=np.nan)
    nb = [n // block_vox for n in a.shape]
    blocks = a.reshape(nb[0], block_vox, nb[1], block_vox, nb[2], block_vox).transpose(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(*nb, -1)
    frac = np.mean(~np.isnan(blocks), axis=-1)
    ok = frac >= 0.3
    med = np.zeros(nb, np.float32)
    if ok.any():
        med[ok] = np.nanmedian(blocks[ok], axis=-1)
    num = ndimage.gaussian_filter(med, 1.0)
    den = ndimage.gaussian_filter(ok.astype(np.float32), 1.0)
    low = np.where(den > 0.05, num / np.maximum(den, 1e-6), 0.0)
    return ndimage.zoom(low, block_vox, order=1)[: shape[0], : shape[1], : shape[2]].astype(np.float32)


def remove_drift(x: np.ndarray, mask: np.ndarray, block_vox: int) -> np.ndarray:
    """``x`` minus its low-frequency drift inside ``mask`` (0 = unchanged).

    The drift is the median of ``x`` over brain voxels in blocks of ``block_vox``³ voxels (blocks
    with < 30 % brain are left out), smoothed across blocks and interpolated back: a residual bias
    field or contrast difference spreads over many blocks, while a lesion, which fills less than
    half of a block, barely moves a median. A lesion larger than a block *is* the block's median
    and is subtracted with the drift: :func:`remove_drift_robust` keeps it.
    Pure array; (W, H, S) in, float32 (W, H, S) out.
    """
    if block_vox <= 1:
        return np.asarray(x, np.float32)
    mask = np.asarray(mask, bool)
    up = _block_field(np.asarray(x, np.float32), mask, block_vox)
    return np.where(mask, x - up, 0.0).astype(np.float32)


#: Coarse-to-fine levels of :func:`remove_drift_robust` (block sides 4, 2, 1 × the finest).
ROBUST_DRIFT_LEVELS = 3
#: Voxels more than this many robust SDs above the current drift estimate do not set the next level.
ROBUST_DRIFT_CUT = 0.5


def remove_drift_robust(x: np.ndarray, mask: np.ndarray, block_vox: int, levels: int = ROBUST_DRIFT_LEVELS,
                        cut: float = ROBUST_DRIFT_CUT) -> np.ndarray:
    """``x`` minus a low-frequency drift that a large hyperintense lesion barely sets.

    Coarse to fine: block sides ``block_vox`` × 2^(levels−1), …, × 2, × 1 (32, 16, 8 mm for the
    default 8 mm). Each level refines the drift d found so far with the block medians of x − d over the
    brain voxels that lie no more than ``cut`` robust SDs (1.4826 × MAD of x − d in the brain) above
    their median; blocks with < 30 % such voxels are filled from their neighbours, else keep the coarser
    drift. A hyperintense lesion stands above the coarser drift, so it is left out of the finer blocks it
    would otherwise fill (:func:`remove_drift` subtracts a lesion larger than a block), while a bias
    field, which every voxel shares, is followed down to ``block_vox`` as before. A small ``cut`` keeps
    subtle large lesions (contrast 1-2 SD) too, at the price of a drift set by the lower part of each
    block's values: an offset that grows with the local spread, and more of a strong field left behind;
    on the phantom cohorts this raised the controls' highest z more than the lesions' (BENCHMARKS.md), so
    it is not the default. Pure array; (W, H, S) in, float32 (W, H, S) out; ``block_vox`` ≤ 1 leaves
    ``x`` unchanged. ``cut``'s default is :class:`~bids_fcd.config.PostConfig`'s ``drift_cut_sd``.
    """
    x = np.asarray(x, np.float32)
    if block_vox <= 1:
        return x
    mask = np.asarray(mask, bool)
    if mask.sum() < 10:
        return remove_drift(x, mask, block_vox)
    drift = np.zeros(x.shape, np.float32)
    keep = mask
    for level in reversed(range(max(levels, 1))):
        r = x - drift
        drift = drift + _block_field(r, keep, block_vox * 2**level)
        r = (x - drift)[mask]
        med = float(np.median(r))
        sd = float(np.median(np.abs(r - med))) * MAD_TO_SD
        keep = mask & (x - drift - med <= cut * max(sd, 1e-6))
    return np.where(mask, x - drift, 0.0).astype(np.float32)


def drift_of(x: np.ndarray, mask: np.ndarray, block_vox: int) -> np.ndarray:
    """The low-frequency drift :func:`remove_drift` takes out of ``x`` (0 outside ``mask``; 0 if off)."""
    return np.where(mask, np.asarray(x, np.float32) - remove_drift(x, mask, block_vox), 0.0).astype(np.float32)


def restandardise(z: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Re-centre and re-scale a z-map by its own robust spread inside ``inside`` (median, 1.4826 × MAD).

    A scan noisier than the reference (a thick-slice 2D FLAIR, another scanner) then needs a
    larger deviation before it counts, and one quieter than the reference a smaller one; a lesion
    is too small to move the median or the MAD. 0 outside ``inside``.
    """
    inside = np.asarray(inside, bool)
    vals = z[inside]
    if vals.size < 10:
        return np.where(inside, z, 0.0).astype(np.float32)
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * MAD_TO_SD
    return np.where(inside, (z - med) / max(mad, 1e-6), 0.0).astype(np.float32)


def z_parts(maps: dict[str, np.ndarray], mask: np.ndarray, ref: NormativeReference, names: Sequence[str],
            restandardised: bool = True) -> dict[str, np.ndarray]:
    """{name: (W, H, S) normative z of ``maps[name]``}, each re-standardised over the brain voxels the
    reference covers (:func:`restandardise`) when ``restandardised``: the terms :func:`combined_z` sums."""
    inside = np.asarray(mask, bool) & ref.coverage
    out = {}
    for name in names:
        z = normative_z(maps[name], mask, ref, name)
        out[name] = restandardise(z, inside) if restandardised else z
    return out


def combined_z(maps: dict[str, np.ndarray], mask: np.ndarray, ref: NormativeReference, weights: dict[str, float],
               restandardised: bool = True) -> np.ndarray:
    """Σ_k w_k z_k / √(Σ_k w_k²) of the normative z-maps of several maps (a standardised sum).

    Args:
        maps: {name: (W, H, S)} maps, each with statistics in ``ref``. weights: {name: w ≥ 0};
            names with w = 0 are skipped. restandardised: apply :func:`restandardise` to each z.
    """
    used = {k: w for k, w in weights.items() if w > 0}
    if not used:
        raise ValueError("at least one map needs a positive weight")
    total = np.zeros(np.shape(mask), np.float32)
    for name, z in z_parts(maps, mask, ref, list(used), restandardised).items():
        total += used[name] * z
    return (total / np.sqrt(sum(w * w for w in used.values()))).astype(np.float32)


def leave_one_out_combined(maps: Mapping[str, Sequence[np.ndarray]], masks: Sequence[np.ndarray],
                           weights: dict[str, float], restandardised: bool = True,
                           params: ReferenceParams | None = None) -> list[np.ndarray]:
    """Each control's :func:`combined_z` against a reference of the other N − 1."""
    out = []
    for i in range(len(masks)):
        rest = [j for j in range(len(masks)) if j != i]
        ref = build_reference({k: [v[j] for j in rest] for k, v in maps.items()}, [masks[j] for j in rest], params)
        out.append(combined_z({k: v[i] for k, v in maps.items()}, masks[i], ref, weights, restandardised))
    return out
