"""A supervised 2D lesion segmenter (MONAI ``UNet``): the baseline of the augmentation benchmark.

Slices in, lesion probability out: x (N, C, H, W) float32 (FLAIR first; C = 1 when synthetic
slices are mixed in, because JS-DDPM makes FLAIR + mask only), y (N, 1, H, W) float {0, 1}.
Training draws batches with :func:`bids_fcd.synthesis.jsddpm.batch_indices` (a fixed fraction of
lesion slices per batch), mirrors left-right with probability ½, and minimises MONAI's
``DiceCELoss`` (sigmoid, Dice over the whole batch). Subjects are scored on their 3D stack of
slice predictions (:func:`score_subject`): Dice and HD95 (MONAI metrics), connected components
(26-connected) as clusters, detection = the largest cluster touches the lesion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric, compute_hausdorff_distance
from monai.networks.nets import UNet
from scipy import ndimage

from bids_fcd.progress import progress_bar
from bids_fcd.synthesis.jsddpm import batch_indices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmenterConfig:
    """Network (MONAI ``UNet``: ``channels``, ``strides``, ``num_res_units``), optimisation
    (``steps`` Adam steps of ``batch_size`` slices at ``lr``, ``lesion_fraction`` of each batch from
    lesion slices, ``flip_lr``, a random in-plane translation of up to ``max_shift`` pixels per slice
    and axis, wrapping round, the same for image and mask) and scoring (probability ``threshold``, clusters smaller than
    ``min_cluster_voxels`` dropped)."""

    in_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = 1
    steps: int = 1500
    batch_size: int = 16
    lr: float = 1e-3
    lesion_fraction: float = 0.5
    flip_lr: bool = True
    max_shift: int = 0
    seed: int = 0
    threshold: float = 0.5
    min_cluster_voxels: int = 2

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides needs one entry fewer than channels")
        if not 0.0 <= self.lesion_fraction <= 1.0:
            raise ValueError("lesion_fraction must lie in [0, 1]")


def build_segmenter(cfg: SegmenterConfig) -> UNet:
    """MONAI 2D ``UNet``: (B, in_channels, H, W) → logits (B, 1, H, W); H, W divisible by Π strides."""
    return UNet(spatial_dims=2, in_channels=cfg.in_channels, out_channels=1, channels=cfg.channels,
                strides=cfg.strides, num_res_units=cfg.num_res_units)


@dataclass
class SegmenterResult:
    """The trained network, the loss of every step and the time."""

    model: UNet
    losses: list[float]
    seconds: float


def train_segmenter(cfg: SegmenterConfig, x: torch.Tensor, y: torch.Tensor) -> SegmenterResult:
    """Train on x (N, in_channels, H, W), y (N, 1, H, W) {0, 1}.

    Deterministic in ``cfg.seed`` on CPU: weights initialised (and any dropout drawn) under
    ``torch.manual_seed`` in a forked RNG, batches and flips from one ``torch.Generator``.
    """
    if x.shape[1] != cfg.in_channels:
        raise ValueError(f"x has {x.shape[1]} channels, the segmenter {cfg.in_channels}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError("x and y need the same, non-zero number of slices")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _train(cfg, build_segmenter(cfg), x, y)


def shift(x: torch.Tensor, y: torch.Tensor, max_shift: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll each slice of x (B, C, H, W) and y (B, 1, H, W) by the same random (dy, dx) in
    [−max_shift, max_shift]² (drawn from ``gen``), wrapping round."""
    d = torch.randint(-max_shift, max_shift + 1, (len(x), 2), generator=gen).tolist()
    xs = torch.stack([torch.roll(x[i], (a, b), dims=(-2, -1)) for i, (a, b) in enumerate(d)])
    ys = torch.stack([torch.roll(y[i], (a, b), dims=(-2, -1)) for i, (a, b) in enumerate(d)])
    return xs, ys


def _train(cfg: SegmenterConfig, model: UNet, x: torch.Tensor, y: torch.Tensor) -> SegmenterResult:
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + 1)
    pathology = (y.flatten(1) > 0).any(dim=1).long()
    losses, t0 = [], time.time()
    model.train()
    for step in progress_bar(range(cfg.steps), desc="training the segmenter", unit="step"):
        idx = batch_indices(pathology, cfg.batch_size, cfg.lesion_fraction, gen)
        xb, yb = x[idx], y[idx]
        if cfg.flip_lr:
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            yb = torch.where(flip.view(-1, 1, 1, 1), yb.flip(-1), yb)
        if cfg.max_shift:
            xb, yb = shift(xb, yb, cfg.max_shift, gen)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 250 == 0:
            log.info("segmenter step %d/%d: Dice-CE %.4f (mean of the last 250)", step + 1, cfg.steps,
                     float(np.mean(losses[-250:])))
    model.eval()
    return SegmenterResult(model, losses, time.time() - t0)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Lesion probabilities (N, H, W) float32 for slices x (N, C, H, W)."""
    model.eval()
    out = [torch.sigmoid(model(x[i:i + batch]))[:, 0] for i in range(0, len(x), batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, *x.shape[-2:]), np.float32)


def clusters(binary: np.ndarray, min_voxels: int = 1) -> list[np.ndarray]:
    """26-connected components of a 3D bool volume with ≥ ``min_voxels`` voxels, largest first
    (ties in label order); each as a bool volume of the input's shape."""
    lab, n = ndimage.label(np.asarray(binary, bool), structure=np.ones((3, 3, 3)))
    if not n:
        return []
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    order = sorted((k for k in range(n) if sizes[k] >= min_voxels), key=lambda k: (-sizes[k], k))
    return [lab == k + 1 for k in order]


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two bool volumes (MONAI ``DiceMetric``); 1.0 when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() and not t.any():
        return 1.0
    m = DiceMetric(include_background=True, reduction="mean", ignore_empty=False)
    m(torch.from_numpy(p[None, None].astype(np.float32)), torch.from_numpy(t[None, None].astype(np.float32)))
    agg = m.aggregate()
    return float(agg[0] if isinstance(agg, tuple) else agg)


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance (mm, MONAI) between two bool volumes with voxel
    ``spacing``; NaN when either is empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() or not t.any():
        return float("nan")
    d = compute_hausdorff_distance(torch.from_numpy(p[None, None]), torch.from_numpy(t[None, None]),
                                   include_background=True, percentile=95, spacing=list(spacing))
    return float(d.reshape(-1)[0])


@dataclass(frozen=True)
class SubjectScore:
    """One subject: Dice / HD95 (mm) of the thresholded prediction (lesion subjects; NaN for
    controls), ``detected`` (the largest cluster overlaps the lesion; None for controls), the
    number of clusters, and the number of clusters that miss the lesion (false positives)."""

    dice: float
    hd95_mm: float
    detected: bool | None
    clusters: int
    false_positive_clusters: int


def score_subject(prob: np.ndarray, lesion: np.ndarray | None, threshold: float, min_cluster_voxels: int,
                  spacing: Sequence[float]) -> SubjectScore:
    """Score a subject's prediction prob (S, H, W) in [0, 1] against ``lesion`` (S, H, W) bool or
    None (a control). Clusters below ``min_cluster_voxels`` are removed before every score."""
    comps = clusters(prob >= threshold, min_cluster_voxels)
    pred = np.zeros(prob.shape, bool)
    for c in comps:
        pred |= c
    if lesion is None or not np.asarray(lesion).any():
        return SubjectScore(float("nan"), float("nan"), None, len(comps), len(comps))
    les = np.asarray(lesion, bool)
    hits = [bool((c & les).any()) for c in comps]
    return SubjectScore(dice(pred, les), hd95(pred, les, spacing), bool(hits[0]) if hits else False, len(comps),
                        int(sum(not h for h in hits)))
