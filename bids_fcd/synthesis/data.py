"""Training pairs for JS-DDPM: (FLAIR, lesion mask) axial slices with their conditioning token.

A BIDS dataset with ``_roi`` lesion masks (the ds004199 layout) goes through the product's own
preprocessing (:func:`bids_fcd.preprocessing.pipeline.preprocess`, cached in the work directory,
so a ``bids-fcd train`` work dir is reused) onto the model grid; every brain slice becomes one pair.

Conventions (the paper's symbols):
    I  — FLAIR slice, the grid's normalisation (:func:`bids_fcd.preprocessing.grid.normalise`:
         brain percentiles 1 / 50 → −1 / 0.6, background −1) rescaled so that ``[−1, flair_max]``
         maps onto [−1, 1] (values above ``flair_max`` are clipped; the hyperintense tail keeps
         its contrast up to there).
    M  — lesion mask in {−1, +1} (+1 = lesion).
    z_bin — the slice's axial position: ``floor(k · n_bins / S)`` for slice k of S.
    pathology class — 1 if the slice holds a lesion voxel, else 0 (controls are all 0).
    token = z_bin + pathology · n_bins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_fcd.training.datasets import SubjectSlices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairSet:
    """Slices ready for the diffusion model.

    Attributes:
        x: (N, 2, H, W) float32 in [−1, 1]: channel 0 the FLAIR I, channel 1 the mask M ∈ {−1, +1}.
        z_bin: (N,) int64 in [0, n_bins).
        pathology: (N,) int64 in {0, 1}.
        subjects: (N,) subject label of every slice.
        slice_index: (N,) index k of the slice in its subject's stack.
    """

    x: np.ndarray
    z_bin: np.ndarray
    pathology: np.ndarray
    subjects: tuple[str, ...]
    slice_index: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, keep: np.ndarray) -> PairSet:
        """The slices where ``keep`` (N,) bool is true, in order."""
        idx = np.flatnonzero(keep)
        return PairSet(self.x[idx], self.z_bin[idx], self.pathology[idx], tuple(self.subjects[i] for i in idx),
                       self.slice_index[idx])


def make_token(z_bin: np.ndarray | int, pathology: np.ndarray | int, n_bins: int) -> np.ndarray:
    """token = z_bin + pathology · n_bins (the paper's encoding; 2 · n_bins distinct conditions)."""
    z = np.asarray(z_bin, np.int64)
    p = np.asarray(pathology, np.int64)
    if np.any(z < 0) or np.any(z >= n_bins):
        raise ValueError(f"z-bin out of range: every z-bin must lie in [0, {n_bins})")
    if np.any((p != 0) & (p != 1)):
        raise ValueError("pathology class must be 0 (control) or 1 (lesion)")
    return z + p * n_bins


def z_bins(n_slices: int, n_bins: int) -> np.ndarray:
    """(S,) z-bin of every slice of an S-slice stack: ``floor(k · n_bins / S)``."""
    return (np.arange(n_slices) * n_bins // n_slices).astype(np.int64)


def scale_flair(flair: np.ndarray, flair_max: float) -> np.ndarray:
    """Grid-normalised FLAIR (background −1) → [−1, 1]: ``[−1, flair_max]`` maps linearly, clipped."""
    return np.clip(2.0 * (flair + 1.0) / (flair_max + 1.0) - 1.0, -1.0, 1.0).astype(np.float32)


def unscale_flair(x: np.ndarray, flair_max: float) -> np.ndarray:
    """Inverse of :func:`scale_flair` (within the clip range)."""
    return ((np.asarray(x, np.float32) + 1.0) * (flair_max + 1.0) / 2.0 - 1.0).astype(np.float32)


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """(N, 2, H, W) pairs → (N, 2, H/f, W/f): the image by block mean, the mask by block max (a
    lesion pixel anywhere in a block keeps the block lesional, so small lesions are not lost)."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"grid {h}x{w} is not divisible by the downsampling factor {factor}; choose a factor "
                         "that divides both sides")
    blocks = x.reshape(n, c, h // factor, factor, w // factor, factor)
    img = blocks[:, 0].mean(axis=(2, 4))
    msk = blocks[:, 1].max(axis=(2, 4))
    return np.stack([img, msk], axis=1).astype(np.float32)


def pairs_from_subjects(subjects: list[SubjectSlices], n_bins: int, flair_max: float, factor: int = 1,
                        min_brain_fraction: float = 0.05) -> PairSet:
    """Every brain slice (brain fraction ≥ ``min_brain_fraction``) of the subjects as a :class:`PairSet`."""
    xs, zs, ps, who, ks = [], [], [], [], []
    for sub in subjects:
        s = sub.stack.shape[0]
        keep = sub.mask.reshape(s, -1).mean(axis=1) >= min_brain_fraction
        roi = np.zeros(sub.mask.shape, bool) if sub.roi is None else np.asarray(sub.roi, bool)
        img = scale_flair(sub.stack[:, 0], flair_max)
        msk = np.where(roi, 1.0, -1.0).astype(np.float32)
        pair = downsample(np.stack([img, msk], axis=1), factor)
        xs.append(pair[keep])
        zs.append(z_bins(s, n_bins)[keep])
        has_lesion = np.asarray(roi.reshape(s, -1).any(axis=1))
        ps.append(has_lesion[keep].astype(np.int64))
        ks.append(np.flatnonzero(keep))
        who += [sub.subject] * int(keep.sum())
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError("no brain slices: check that the participants have brain in the model grid")
    return PairSet(np.concatenate(xs), np.concatenate(zs), np.concatenate(ps), tuple(who), np.concatenate(ks))


def load_bids_subjects(bids_dir: Path, work: Path, grid, labels: list[str] | None = None,  # noqa: ANN001 - GridConfig
                       skip_validation: bool = True) -> list[SubjectSlices]:
    """Preprocess (cached in ``work``) and read the participants' slices on ``grid``.

    ``labels``: the participants to use; None = participants.tsv ``split == train`` if present,
    else all (the rule of ``bids-fcd train``). Participants that fail preprocessing are skipped
    with an error in the log.
    """
    from bids_fcd.bids.layout import InputError, find_inputs, open_layout
    from bids_fcd.bids.participants import read_participants, training_subjects
    from bids_fcd.config import PreprocConfig
    from bids_fcd.preprocessing.pipeline import PreprocessingError, preprocess

    layout = open_layout(Path(bids_dir), validate=not skip_validation)
    rows = read_participants(Path(bids_dir))
    chosen = labels if labels else training_subjects(Path(bids_dir), [], layout)
    out = []
    for s in chosen:
        try:
            inp = find_inputs(layout, s, None, {})
            pre = preprocess(inp.t1w, inp.flair, inp.roi, Path(work) / inp.prefix, grid, PreprocConfig())
        except (InputError, PreprocessingError) as exc:
            log.error("sub-%s skipped: %s", s, exc)
            continue
        stack, mask = pre.slices()
        out.append(SubjectSlices(s, stack, mask, pre.roi_slices(), rows.get(s, {}).get("lobe", "n/a")))
        log.info("sub-%s: %d slices%s", s, stack.shape[0], "" if inp.roi is None else " (with lesion mask)")
    return out
