"""The ``patched`` encoding: masked (inpainting) diffusion that never shows the network the region
it regenerates.

Why (BENCHMARKS.md): whole-slice forward noising to t = 300 keeps √ᾱ_300 ≈ 58 % of the
signal, so a large or bright lesion survives the noise as a low-frequency blob and is decoded back,
and the clean T1w carries FCD's grey-white blurring back in. Here every voxel is regenerated from
a state in which its own neighbourhood (a *hole*) is pure noise while the FLAIR around the hole is
clean, and the T1w inside the hole is hidden (blurred or removed, :data:`~bids_fcd.config.T1_HIDING`).

Tiling. The slice plane is cut into square *cores* of ``core`` pixels on a lattice of period
P = 3·core; pass (a, b), a, b ∈ {0, 1, 2}, regenerates the cores whose lattice cell is (a, b) mod 3.
Each core's *hole* is the core grown by ``margin`` pixels on every side, so a voxel is always
regenerated with at least ``margin`` pixels of hidden neighbourhood, and the holes of one pass are
2·(core − margin) pixels apart (clean context between them). The 9 passes' cores tile the plane
exactly once, so the pseudo-healthy slice is Σ_p core_p · x̂_0^(p). Passes whose cores hold no
brain are skipped. All (slice, pass, draw) items run as one stream in fixed chunks, as the other
encodings do.

Sampling an item (DDIM, η = 0, with the inpainting network ``ε_θ`` predicting x̂_0, MONAI
``prediction_type="sample"``): x_{t_0} = ε inside the hole (t_0 = L, nothing of the real FLAIR is
left there); at each t_k the network sees [hole·x_{t_k} + (1 − hole)·x_0, T1w hidden in the hole,
hole]; x_{t_{k+1}} = √ᾱ_{t_{k+1}} x̂_0 + √(1 − ᾱ_{t_{k+1}}) ε̂ with ε̂ = (x_{t_k} − √ᾱ_{t_k} x̂_0) /
√(1 − ᾱ_{t_k}); the last x̂_0 is the result. K = 1 gives the network's single-step estimate of the
hole given its context, E[x_0 | context, T1w]. The steps t_k = round(L·(K − k)/K) need no
divisibility of T (L ≤ T − 1).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.networks.layers import GaussianFilter

from bids_fcd.config import HEALTHY, T1_HIDING
from bids_fcd.sampling.guidance import autocast

#: Passes per lattice axis (period = this × core); 3 leaves clean context between holes.
PASSES_PER_AXIS = 3
#: Gaussian σ (pixels) of the ``blur`` T1w hiding (at the 2 mm grid: 5 mm, enough to blur
#: FCD's grey-white junction while keeping where cortex and ventricles are).
T1_BLUR_SIGMA_PX = 2.5


def tile_masks(height: int, width: int, core: int, margin: int,
               offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Cores and holes of the 9 passes on an (H, W) plane.

    Args:
        core: core side (pixels). margin: hidden margin around a core (pixels), < ``core``.
        offset: (dy, dx) shift of the lattice (pixels).
    Returns:
        (cores, holes), each (9, H, W) bool; the cores partition the plane.
    """
    if core < 1 or margin < 0 or margin >= core:
        raise ValueError(f"patch core {core} and margin {margin}: need core ≥ 1 and 0 ≤ margin < core "
                         "(holes of one pass must leave clean context between them)")
    period = PASSES_PER_AXIS * core
    yy = (np.arange(height) + offset[0]) % period
    xx = (np.arange(width) + offset[1]) % period
    cores, holes = [], []
    for a in range(PASSES_PER_AXIS):
        for b in range(PASSES_PER_AXIS):
            cy = (yy >= a * core) & (yy < (a + 1) * core)
            cx = (xx >= b * core) & (xx < (b + 1) * core)
            # grown by the margin, with wrap-around on the lattice
            hy = ((yy - a * core + margin) % period) < core + 2 * margin
            hx = ((xx - b * core + margin) % period) < core + 2 * margin
            cores.append(cy[:, None] & cx[None, :])
            holes.append(hy[:, None] & hx[None, :])
    return np.stack(cores), np.stack(holes)


def hide_t1(t1: torch.Tensor, hole: torch.Tensor, mode: str, sigma_px: float = T1_BLUR_SIGMA_PX) -> torch.Tensor:
    """The T1w with the holes hidden: ``clean`` (unchanged), ``blur`` (Gaussian σ inside), ``zero``.

    Args:
        t1: (B, 1, H, W) float. hole: (B, 1, H, W) float in {0, 1}.
    """
    if mode not in T1_HIDING:
        raise ValueError(f"unknown T1w hiding {mode!r}; choose one of {T1_HIDING}")
    if mode == "clean":
        return t1
    if mode == "zero":
        return t1 * (1.0 - hole)
    blurred = GaussianFilter(spatial_dims=2, sigma=sigma_px)(t1)
    return hole * blurred + (1.0 - hole) * t1


def inpaint_input(x_t: torch.Tensor, x0: torch.Tensor, t1: torch.Tensor | None, hole: torch.Tensor,
                  mode: str) -> torch.Tensor:
    """The inpainting network's input (B, C + 1, H, W): [hole·x_t + (1 − hole)·x_0, hidden T1w, hole]."""
    parts = [hole * x_t + (1.0 - hole) * x0]
    if t1 is not None:
        parts.append(hide_t1(t1, hole, mode))
    parts.append(hole)
    return torch.cat(parts, dim=1)


def patched_timesteps(noise_level: int, steps: int) -> list[int]:
    """t_0 = L > t_1 > … > t_{K−1} > 0: round(L·(K − k)/K), k = 0 … K − 1."""
    if steps < 1 or noise_level < steps:
        raise ValueError(f"--steps {steps} must be between 1 and --noise-level {noise_level}")
    return [int(round(noise_level * (steps - k) / steps)) for k in range(steps)]


def _x0(unet: torch.nn.Module, inp: torch.Tensor, t: int) -> torch.Tensor:
    b = inp.shape[0]
    tt = torch.full((b,), t, device=inp.device, dtype=torch.long)
    cls = torch.full((b,), HEALTHY, device=inp.device, dtype=torch.long)
    with autocast(inp.device):
        return unet(inp, timesteps=tt, class_labels=cls).float()


@torch.inference_mode()
def inpaint_items(unet: torch.nn.Module, alphas_cumprod: torch.Tensor, x0: torch.Tensor, t1: torch.Tensor | None,
                  hole: torch.Tensor, noise: torch.Tensor, noise_level: int, steps: int, t1_hiding: str) -> torch.Tensor:
    """DDIM (η = 0) inside the holes of B items; returns x̂_0 (B, 1, H, W) float32 (module docstring).

    Args:
        x0: real FLAIR (B, 1, H, W); only its context (outside ``hole``) reaches the network.
        t1: T1w (B, 1, H, W) or None. hole: (B, 1, H, W) float {0, 1}. noise: ε (B, 1, H, W).
    """
    acp = alphas_cumprod.to(x0.device, torch.float32)
    ts = patched_timesteps(noise_level, steps)
    x = noise
    pred = x0
    for k, t in enumerate(ts):
        pred = _x0(unet, inpaint_input(x, x0, t1, hole, t1_hiding), t)
        if k + 1 < len(ts):
            a_t, a_n = acp[t], acp[ts[k + 1]]
            eps = (x - a_t.sqrt() * pred) / (1.0 - a_t).sqrt()
            x = a_n.sqrt() * pred + (1.0 - a_n).sqrt() * eps
    return pred


def item_plan(mask: np.ndarray, core: int, margin: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Which (slice, pass) items to run: those whose cores hold brain.

    Args:
        mask: (S, H, W) bool brain mask.
    Returns:
        (cores (9, H, W) bool, holes (9, H, W) bool, [(slice, pass), …] in slice-major order).
    """
    s, h, w = mask.shape
    cores, holes = tile_masks(h, w, core, margin)
    hits = np.einsum("shw,phw->sp", mask.astype(np.float32), cores.astype(np.float32)) > 0
    return cores, holes, [(int(i), int(p)) for i, p in zip(*np.nonzero(hits), strict=True)]
