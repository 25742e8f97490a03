"""Slice datasets: (FLAIR, T1w) pairs in the model grid with soft lobe targets.

A slice's target is the participant's lobe (participants.tsv ``lobe``; ``TL,PL`` shared 0.5/0.5)
if the slice holds lesion voxels of the ``_roi`` mask, else healthy. Controls are healthy.
Splits are by subject; the dataset remembers which subject each slice came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from bids_fcd.bids.participants import lobe_target
from bids_fcd.config import LOBES


@dataclass
class SubjectSlices:
    """One subject's slices: stack (S, 2, H, W), brain mask (S, H, W), lesion (S, H, W) or None."""

    subject: str
    stack: np.ndarray
    mask: np.ndarray
    roi: np.ndarray | None
    lobe: str


def slice_targets(sub: SubjectSlices) -> np.ndarray:
    """(S, 6) soft targets over ``LOBES`` for every slice of a subject."""
    s = sub.stack.shape[0]
    out = np.zeros((s, len(LOBES)), np.float32)
    out[:, 0] = 1.0
    if sub.roi is not None:
        lesion = sub.roi.reshape(s, -1).any(axis=1)
        target = lobe_target(sub.lobe)
        if target[0] < 1.0:  # a lobe is known
            out[lesion] = target
    return out


class SliceDataset(Dataset):
    """All brain slices of a set of subjects.

    Items: (x (C, H, W) float32 in [-1, 1], target (6,) float32 soft label, class index int).
    ``channels`` 2 keeps FLAIR ‖ T1w, 1 keeps the FLAIR only (ablation).
    """

    def __init__(self, subjects: list[SubjectSlices], min_brain_fraction: float = 0.05, channels: int = 2) -> None:
        xs, ts, les, who = [], [], [], []
        for sub in subjects:
            keep = sub.mask.reshape(sub.mask.shape[0], -1).mean(axis=1) >= min_brain_fraction
            xs.append(sub.stack[keep][:, :channels])
            ts.append(slice_targets(sub)[keep])
            les.append(np.zeros(sub.mask[keep].shape, bool) if sub.roi is None else np.asarray(sub.roi[keep], bool))
            who += [sub.subject] * int(keep.sum())
        if not xs or sum(len(x) for x in xs) == 0:
            raise ValueError("no training slices: check that the participants have brain in the model grid")
        self.x = torch.from_numpy(np.concatenate(xs)).float()
        self.targets = torch.from_numpy(np.concatenate(ts)).float()
        self.labels = self.targets.argmax(dim=1)
        #: (N, 1, H, W) float lesion masks (0 for controls), for the healthy-only losses.
        self.lesion = torch.from_numpy(np.concatenate(les)[:, None].astype(np.float32))
        self.subjects = who

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x[i], self.targets[i], self.labels[i]

    def class_weights(self) -> torch.Tensor:
        """(6,) inverse-frequency weights of the soft targets (classes absent → 0), mean 1 over present."""
        freq = self.targets.sum(dim=0)
        w = torch.where(freq > 0, 1.0 / freq.clamp(min=1e-6), torch.zeros_like(freq))
        present = freq > 0
        return w / w[present].mean()

    def sample_weights(self) -> torch.Tensor:
        """(N,) per-slice weights that balance healthy and lesion slices for a weighted sampler."""
        return (self.targets * self.class_weights()).sum(dim=1)

    def loss_weights(self, power: float = 0.5) -> torch.Tensor:
        """(6,) class weights ∝ frequency^−power (classes absent → 0), mean 1 over present classes.

        Used with uniform sampling (the real slice distribution, about 9 healthy slices in 10):
        power 0.5 tempers the imbalance without the 1:5 over-draw of lesion slices that made the
        classifier call healthy slices lesional.
        """
        freq = self.targets.sum(dim=0)
        w = torch.where(freq > 0, freq.clamp(min=1e-6) ** -power, torch.zeros_like(freq))
        present = freq > 0
        return w / w[present].mean()


class LesionSlices(Dataset):
    """A :class:`SliceDataset` seen by the diffusion loops: items (x (C, H, W), lesion (1, H, W), class index)."""

    def __init__(self, base: SliceDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.base.x[i], self.base.lesion[i], self.base.labels[i]
