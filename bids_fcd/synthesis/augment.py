"""Synthetic JS-DDPM lesion slices as extra training data for the guidance classifier.

The JS-DDPM works on the product grid downsampled ×f (``cpu`` preset: 96×96 at 2 mm → 48×48 at
4 mm in-plane, slices still every 2 mm). Real and synthetic slices are compared at that coarse
grid: the real subjects are downsampled here (:func:`downsample_subject`: FLAIR and T1w by block
mean, brain mask by block mean ≥ ½, lesion by block max, the JS-DDPM's rule) and their FLAIR is
clipped to ``[−1, flair_max]`` like the JS-DDPM's training data, so both arms of an experiment see
the same real pixels.

Synthetic slices come in as :class:`~bids_fcd.training.datasets.SubjectSlices` (one pseudo-subject
per lobe label) so that the product's own :class:`~bids_fcd.training.datasets.SliceDataset` gives
their soft lobe targets. A synthetic slice is drawn for a real lesion slice (:func:`matched_sources`)
at that slice's z-bin and inherits that slice's participant lobe (the JS-DDPM is conditioned on z
and pathology only, not on the lobe). Synthetic slices have no T1w: their T1w channel is −1
(background) and must not be used (the classifier reads the FLAIR only).

The classifier is the product's: :func:`bids_fcd.nets.networks.build_classifier` with the
``default`` preset's classifier sizes, trained by :func:`bids_fcd.training.loops.classifier_epoch`
on uniform draws with :meth:`SliceDataset.loss_weights` (as ``bids-fcd train`` does), only on the
coarse grid and for a fixed number of draws per epoch so that both arms take the same steps.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bids_fcd.config import GridConfig, NetConfig
from bids_fcd.evaluation.metrics import roc_auc
from bids_fcd.nets.networks import build_classifier, build_scheduler
from bids_fcd.synthesis.data import scale_flair, unscale_flair, z_bins
from bids_fcd.synthesis.metrics import binarise
from bids_fcd.training.datasets import SliceDataset, SubjectSlices
from bids_fcd.training.ddp import DistInfo
from bids_fcd.training.loops import ShardedWeightedSampler, classifier_epoch
from bids_fcd.training.presets import PRESETS

log = logging.getLogger(__name__)

#: Synthetic pseudo-subjects are named ``synthetic-<lobe>``.
SYNTHETIC_PREFIX = "synthetic-"


@dataclass(frozen=True)
class ClassifierRunConfig:
    """One classifier training run (defaults: the ``default`` preset's classifier settings).

    ``epochs`` × ``draws_per_epoch`` uniform draws (with replacement) in batches of
    ``batch_size``; ``draws_per_epoch`` is fixed by the caller (the real slice count) so that an
    augmented run takes exactly as many optimiser steps as the real-only one. t ~ U{0, max_t − 1}.
    """

    epochs: int = 12
    draws_per_epoch: int = 1024
    batch_size: int = 16
    lr: float = 5e-4
    max_t: int = 500
    seed: int = 0


def coarse_grid(grid: GridConfig, factor: int) -> GridConfig:
    """The grid with in-plane pixels ``factor`` times larger (same box, same slices)."""
    h, w = grid.shape
    if h % factor or w % factor:
        raise ValueError(f"grid {h}x{w} is not divisible by {factor}; choose a factor that divides both sides")
    return dataclasses.replace(grid, shape=(h // factor, w // factor), spacing_mm=grid.spacing_mm * factor)


def classifier_net(grid: GridConfig, preset: str = "default") -> NetConfig:
    """The ``preset``'s network sizes and schedule on ``grid`` (the classifier's ``input_shape``)."""
    return dataclasses.replace(PRESETS[preset].net, grid=grid)


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    *lead, h, w = a.shape
    return a.reshape(*lead, h // f, f, w // f, f)


def downsample_subject(sub: SubjectSlices, factor: int, flair_max: float) -> SubjectSlices:
    """A subject's slices on the ×``factor`` coarser grid.

    stack (S, C, H, W) → (S, C, H/f, W/f) by block mean, with the FLAIR (channel 0) first clipped to
    ``[−1, flair_max]``; brain mask (S, H, W) → block mean ≥ ½; lesion (S, H, W) → block max.
    """
    stack = np.asarray(sub.stack, np.float32).copy()
    stack[:, 0] = unscale_flair(scale_flair(stack[:, 0], flair_max), flair_max)
    if factor == 1:
        return dataclasses.replace(sub, stack=stack)
    if stack.shape[-2] % factor or stack.shape[-1] % factor:
        raise ValueError(f"slices {stack.shape[-2]}x{stack.shape[-1]} are not divisible by {factor}")
    st = _blocks(stack, factor).mean(axis=(-3, -1)).astype(np.float32)
    mask = _blocks(np.asarray(sub.mask, np.float32), factor).mean(axis=(-3, -1)) >= 0.5
    roi = None if sub.roi is None else _blocks(np.asarray(sub.roi) > 0.5, factor).max(axis=(-3, -1))
    return SubjectSlices(sub.subject, st, mask, roi, sub.lobe)


@dataclass(frozen=True)
class LesionSlice:
    """Where a real lesion slice is: subject index, slice index k, its z-bin and its lobe label."""

    subject: int
    slice_index: int
    z_bin: int
    lobe: str


def lesion_slices(subjects: Sequence[SubjectSlices], n_bins: int, min_brain_fraction: float = 0.05) -> list[LesionSlice]:
    """Every brain slice with a lesion voxel, in subject then slice order (the JS-DDPM's z-bins)."""
    out = []
    for i, sub in enumerate(subjects):
        if sub.roi is None:
            continue
        s = sub.stack.shape[0]
        brain = sub.mask.reshape(s, -1).mean(axis=1) >= min_brain_fraction
        les = np.asarray(sub.roi).reshape(s, -1).any(axis=1) & brain
        zb = z_bins(s, n_bins)
        out += [LesionSlice(i, int(k), int(zb[k]), sub.lobe) for k in np.flatnonzero(les)]
    return out


def matched_sources(n_real: int, per_real: float, rng: np.random.Generator) -> np.ndarray:
    """Indices into the ``n_real`` real lesion slices, one per synthetic slice: each real slice
    ⌊per_real⌋ times, plus a draw without replacement of the remaining fraction. Length
    round(n_real · per_real)."""
    if per_real < 0:
        raise ValueError("per_real must be >= 0")
    whole = int(np.floor(per_real))
    n_extra = int(round(n_real * per_real)) - whole * n_real
    extra = np.sort(rng.choice(n_real, size=n_extra, replace=False)) if n_extra > 0 else np.zeros(0, np.int64)
    return np.concatenate([np.repeat(np.arange(n_real), whole), extra]).astype(np.int64)


def synthetic_subjects(x: np.ndarray, lobes: Sequence[str], flair_max: float, mask_min_pixels: int = 1,
                       brain_threshold: float = -0.95) -> tuple[list[SubjectSlices], int]:
    """JS-DDPM samples x (N, 2, h, w) in [−1, 1] (FLAIR, mask) → pseudo-subjects, one per lobe label.

    FLAIR back to the grid normalisation; brain = FLAIR > ``brain_threshold``; lesion = the mask
    channel binarised (:func:`~bids_fcd.synthesis.metrics.binarise`). T1w channel = −1 (absent).
    Samples whose binarised mask is empty are dropped (they would be labelled healthy).
    Returns (subjects, number dropped).
    """
    if len(x) != len(lobes):
        raise ValueError("one lobe label per synthetic slice is needed")
    flair = unscale_flair(x[:, 0], flair_max)
    roi = binarise(x[:, 1], mask_min_pixels)
    keep = roi.reshape(len(x), -1).any(axis=1)
    out = []
    lobe_arr = np.asarray(lobes, dtype=object)
    for lobe in sorted(set(lobe_arr[keep].tolist())):
        sel = keep & (lobe_arr == lobe)
        stack = np.stack([flair[sel], np.full_like(flair[sel], -1.0)], axis=1).astype(np.float32)
        out.append(SubjectSlices(SYNTHETIC_PREFIX + lobe, stack, flair[sel] > brain_threshold, roi[sel], lobe))
    return out, int((~keep).sum())


@dataclass
class ClassifierResult:
    """A trained classifier, its per-epoch (loss, accuracy) log, the optimiser steps and the time."""

    classifier: torch.nn.Module
    log: list[dict]
    steps: int
    seconds: float


def train_classifier(net: NetConfig, cfg: ClassifierRunConfig, ds: SliceDataset,
                     on_step: Callable[[float], None] | None = None,
                     on_epoch: Callable[[int, torch.nn.Module], None] | None = None) -> ClassifierResult:
    """Train the product's lobe classifier on ``ds`` (items (x (C, H, W), target (6,), label)).

    Weights initialised, and the head's dropout masks drawn, from the global generator seeded
    ``torch.manual_seed(cfg.seed)`` inside a forked RNG (MONAI's layers use the global generator;
    the caller's state is left alone); draws from a
    :class:`ShardedWeightedSampler` seeded ``cfg.seed + 1`` and noise from a ``torch.Generator``
    seeded ``cfg.seed · 7919`` (the seeds ``bids-fcd train`` uses). ``on_epoch(epoch, classifier)``
    is called after every epoch with the classifier in eval mode (it must not draw from the global
    generator; the next epoch sets train mode again).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _train_classifier(build_classifier(net), net, cfg, ds, on_step, on_epoch)


def _train_classifier(clf: torch.nn.Module, net: NetConfig, cfg: ClassifierRunConfig, ds: SliceDataset,
                      on_step: Callable[[float], None] | None,
                      on_epoch: Callable[[int, torch.nn.Module], None] | None) -> ClassifierResult:
    opt = torch.optim.Adam(clf.parameters(), lr=cfg.lr)
    sampler = ShardedWeightedSampler(torch.ones(len(ds)), cfg.seed + 1, DistInfo())
    sampler.n = cfg.draws_per_epoch
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=False)
    acp = build_scheduler(net).alphas_cumprod
    gen = torch.Generator().manual_seed(cfg.seed * 7919)
    class_w = ds.loss_weights()
    entries, steps, t0 = [], 0, time.time()

    def step(loss: float) -> None:
        nonlocal steps
        steps += 1
        if on_step is not None:
            on_step(loss)

    for epoch in range(cfg.epochs):
        sampler.set_epoch(epoch)
        loss, acc = classifier_epoch(clf, opt, loader, acp, cfg.max_t, torch.device("cpu"), gen, step, class_w)
        entries.append({"epoch": epoch + 1, "loss": loss, "accuracy": acc, "seconds": round(time.time() - t0, 1)})
        log.info("classifier epoch %d/%d: CE %.4f, accuracy %.3f", epoch + 1, cfg.epochs, loss, acc)
        if on_epoch is not None:
            clf.eval()
            on_epoch(epoch + 1, clf)
    clf.eval()
    return ClassifierResult(clf, entries, steps, time.time() - t0)


@torch.no_grad()
def auc_per_t(clf: torch.nn.Module, net: NetConfig, x0: torch.Tensor, lesion: np.ndarray, timesteps: Sequence[int],
              seed: int, batch: int = 64) -> dict[str, float | None]:
    """Lesion-slice AUC of 1 − C(healthy | x_t, t) per t, on FLAIR slices x0 (N, 1, H, W).

    x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with ε from ``torch.Generator().manual_seed(seed)`` (one draw per
    t, in order; t = 0 is the clean slice); ``lesion`` (N,) bool. Keys ``"t=<t>"``.
    """
    acp = build_scheduler(net).alphas_cumprod
    gen = torch.Generator().manual_seed(seed)
    clf.eval()
    out: dict[str, float | None] = {}
    for t in timesteps:
        eps = torch.randn(x0.shape, generator=gen)
        a = acp[t]
        xt = x0 if t == 0 else a.sqrt() * x0 + (1 - a).sqrt() * eps
        tt = torch.full((len(x0),), int(t), dtype=torch.long)
        p = torch.cat([torch.softmax(clf(xt[i:i + batch], tt[i:i + batch]).float(), -1)
                       for i in range(0, len(x0), batch)])
        out[f"t={t}"] = roc_auc(1.0 - p[:, 0].numpy(), lesion)
    return out
