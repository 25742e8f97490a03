"""Training loops: the diffusion model (MSE on ε) and the noisy-image classifier (soft CE).

Both run one epoch at a time so that the workflow can checkpoint between epochs. Symbols:
x_0 clean FLAIR, y T1w, t ~ U{0, T−1}, ε ~ N(0, I), x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (``add_noise``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler

from bids_fcd.config import HEALTHY, T1_HIDING
from bids_fcd.sampling.patches import inpaint_input, tile_masks
from bids_fcd.training.ddp import DistInfo


class ShardedWeightedSampler(Sampler[int]):
    """Draws ⌈N / world⌉ indices per rank per epoch, with replacement, proportional to ``weights``.

    Seeded by (seed, epoch, rank) with a ``torch.Generator``: reproducible, and ranks see
    different slices. Uniform weights give plain random sampling.
    """

    def __init__(self, weights: torch.Tensor, seed: int, info: DistInfo) -> None:
        self.weights = weights.double()
        self.seed, self.info, self.epoch = seed, info, 0
        self.n = math.ceil(len(weights) / info.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 101 + self.info.rank)
        return iter(torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist())


def _autocast(device: torch.device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def healthy_weight(lesion: torch.Tensor, grow_px: int = 2) -> torch.Tensor:
    """(B, 1, H, W) 1 − ℓ⁺: 0 on the lesion ``lesion`` (B, 1, H, W) grown by ``grow_px`` pixels, 1 elsewhere."""
    return 1.0 - F.max_pool2d(lesion, 2 * grow_px + 1, stride=1, padding=grow_px)


def diffusion_epoch(unet: torch.nn.Module, ema: torch.optim.swa_utils.AveragedModel | None,
                    opt: torch.optim.Optimizer, loader: torch.utils.data.DataLoader, alphas_cumprod: torch.Tensor,
                    device: torch.device, gen: torch.Generator, on_step: Callable[[float], None],
                    healthy_only: bool = False) -> float:
    """One epoch of ε-prediction: ‖ε − ε_θ(x_t ‖ y, t, c)‖². Returns the mean loss.

    Loader items: (x (B, 2, H, W), lesion ℓ (B, 1, H, W), class c (B,)). ``healthy_only``: the loss is
    ‖(1 − ℓ⁺)·(ε − ε_θ)‖² / Σ(1 − ℓ⁺), ℓ⁺ the lesion grown by 2 pixels (:func:`healthy_weight`), so
    the network is never taught to draw a lesion from its T1w (patients' healthy tissue still counts).
    """
    unet.train()
    acp = alphas_cumprod.to(device)
    total, count = 0.0, 0
    for x, lesion, label in loader:
        x, label = x.to(device), label.to(device)
        x0, cond = x[:, :1], x[:, 1:]
        t = torch.randint(0, acp.numel(), (x.shape[0],), generator=gen).to(device)
        eps = torch.randn(x0.shape, generator=gen).to(device)
        a = acp[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with _autocast(device):
            pred = unet(torch.cat([x_t, cond], dim=1), timesteps=t, class_labels=label)
        if healthy_only:
            keep = healthy_weight(lesion.to(device))
            loss = ((pred.float() - eps) ** 2 * keep).sum() / keep.sum().clamp(min=1.0)
        else:
            loss = F.mse_loss(pred.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(unet)
        total += loss.item() * x.shape[0]
        count += x.shape[0]
        on_step(loss.item())
    return total / max(count, 1)


def classifier_epoch(clf: torch.nn.Module, opt: torch.optim.Optimizer, loader: torch.utils.data.DataLoader,
                     alphas_cumprod: torch.Tensor, max_t: int, device: torch.device, gen: torch.Generator,
                     on_step: Callable[[float], None], class_weights: torch.Tensor | None = None) -> tuple[float, float]:
    """One epoch of soft-label cross-entropy on x_t (t ~ U{0, max_t−1}). Returns (loss, accuracy).

    ``class_weights`` (6,) weight each class's term of the soft cross-entropy (None = 1).
    """
    clf.train()
    acp = alphas_cumprod.to(device)
    total, correct, count = 0.0, 0, 0
    for x, target, label in loader:
        x0, target, label = x[:, :1].to(device), target.to(device), label.to(device)
        t = torch.randint(0, max_t, (x0.shape[0],), generator=gen).to(device)
        eps = torch.randn(x0.shape, generator=gen).to(device)
        a = acp[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with _autocast(device):
            logits = clf(x_t, t)
        w = target if class_weights is None else target * class_weights.to(device)
        loss = -(w * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * x0.shape[0]
        correct += int((logits.argmax(dim=-1) == label).sum())
        count += x0.shape[0]
        on_step(loss.item())
    return total / max(count, 1), correct / max(count, 1)


#: Training holes: probability of a whole-slice hole (the whole-slice encodings on an inpainting
#: model), and the ranges of core and margin (pixels) of the lattice holes the sampler uses.
P_WHOLE_SLICE = 0.15
CORE_RANGE, MARGIN_RANGE = (10, 22), (3, 10)


def training_holes(b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) float {0, 1} holes: one random pass of a random lattice (core, margin, offset) per
    item, as :func:`bids_fcd.sampling.patches.tile_masks` tiles them, or (P_WHOLE_SLICE) the whole slice."""
    out = torch.ones((b, 1, h, w))
    for i in range(b):
        if float(torch.rand((), generator=gen)) < P_WHOLE_SLICE:
            continue
        core = int(torch.randint(CORE_RANGE[0], CORE_RANGE[1] + 1, (), generator=gen))
        margin = int(torch.randint(MARGIN_RANGE[0], min(MARGIN_RANGE[1], core - 1) + 1, (), generator=gen))
        off = (int(torch.randint(0, 3 * core, (), generator=gen)), int(torch.randint(0, 3 * core, (), generator=gen)))
        _, holes = tile_masks(h, w, core, margin, off)
        out[i, 0] = torch.from_numpy(holes[int(torch.randint(0, len(holes), (), generator=gen))].astype("float32"))
    return out


def inpaint_epoch(unet: torch.nn.Module, ema: torch.optim.swa_utils.AveragedModel | None,
                  opt: torch.optim.Optimizer, loader: torch.utils.data.DataLoader, alphas_cumprod: torch.Tensor,
                  device: torch.device, gen: torch.Generator, on_step: Callable[[float], None]) -> float:
    """One epoch of the inpainting model: x̂_0-prediction inside holes, healthy tissue only.

    For a slice x_0 (FLAIR), T1w y, lesion mask ℓ and a hole mask m (:func:`training_holes`),
    t ~ U{0, T−1}, ε ~ N(0, I): x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε inside m, the clean x_0 outside; the T1w
    inside m is hidden by a mode drawn per item from :data:`~bids_fcd.config.T1_HIDING`. Loss =
    ‖m·(1 − ℓ⁺)·(x̂_0 − x_0)‖² / Σ m·(1 − ℓ⁺), with ℓ⁺ the lesion grown by 2 pixels: the network
    is never taught to paint a lesion (healthy-only loss; patients' healthy tissue counts).
    Loader items: (x (B, 2, H, W), lesion (B, 1, H, W), class). Returns the mean loss.
    """
    unet.train()
    acp = alphas_cumprod.to(device)
    total, count = 0.0, 0
    for x, lesion, _ in loader:
        x, lesion = x.to(device), lesion.to(device)
        b, _, h, w = x.shape
        x0, t1 = x[:, :1], (x[:, 1:2] if x.shape[1] > 1 else None)
        hole = training_holes(b, h, w, gen).to(device)
        t = torch.randint(0, acp.numel(), (b,), generator=gen).to(device)
        eps = torch.randn(x0.shape, generator=gen).to(device)
        a = acp[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        modes = torch.randint(0, len(T1_HIDING), (b,), generator=gen).tolist()
        inp = torch.cat([inpaint_input(x_t[i:i + 1], x0[i:i + 1], None if t1 is None else t1[i:i + 1],
                                       hole[i:i + 1], T1_HIDING[m]) for i, m in enumerate(modes)])
        keep = hole * healthy_weight(lesion)
        cls = torch.full((b,), HEALTHY, dtype=torch.long, device=device)
        with _autocast(device):
            pred = unet(inp, timesteps=t, class_labels=cls)
        loss = ((pred.float() - x0) ** 2 * keep).sum() / keep.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(unet)
        total += loss.item() * b
        count += b
        on_step(loss.item())
    return total / max(count, 1)


def make_loader(ds: torch.utils.data.Dataset, weights: torch.Tensor, batch_size: int, seed: int,
                info: DistInfo) -> tuple[torch.utils.data.DataLoader, ShardedWeightedSampler]:
    """A DataLoader over ``ds`` with a :class:`ShardedWeightedSampler`."""
    sampler = ShardedWeightedSampler(weights, seed, info)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=False), sampler
