"""Encoding to noise level L, then classifier-guided DDIM (η = 0) back to t = 0.

Symbols (design.md §3): x_0 the clean FLAIR slice, y the T1w slice (the condition), ᾱ_t the
cumulative product of α = 1 − β (``scheduler.alphas_cumprod``), L = ``noise_level``, K = ``steps``,
s = ``guidance_scale``, h = the healthy class (index 0), D = ``draws``.

Encodings: ``deterministic`` (the paper) is inverse DDIM with MONAI's ``reversed_step``; it encodes
the lesion into x_L and decoding brings it back. ``stochastic`` forward-noises
x_L = √ᾱ_L x_0 + √(1−ᾱ_L) ε with ε from a seeded ``torch.Generator``, D times, and averages the D
decoded x_0: the lesion's detail is drowned at x_L and the T1w-conditioned, healthy-guided decoder
fills in healthy tissue. Decoding uses MONAI's ``step`` with stride Δ = L / K over L, L−Δ, …, Δ and
ε̂' = ε̂(x_t, t, h) − s·√(1−ᾱ_t)·∇ₓ log C(h | x_t, t) (guidance in ε-form).
"""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDIMScheduler

from bids_fcd.config import HEALTHY
from bids_fcd.sampling.guidance import log_prob_grad


def stride_for(noise_level: int, steps: int | None, num_train_timesteps: int) -> int:
    """Δ = L / K, checked so that MONAI's scheduler visits exactly 0, Δ, …, L.

    Raises ``ValueError`` with the fix when K does not divide L or Δ does not divide T.
    """
    if not 1 <= noise_level < num_train_timesteps:
        raise ValueError(f"noise level L={noise_level} must be in [1, {num_train_timesteps - 1}]")
    k = noise_level if steps is None else steps
    if k < 1 or noise_level % k:
        raise ValueError(f"--steps {k} must divide --noise-level {noise_level} (e.g. steps {noise_level // 5})")
    stride = noise_level // k
    if num_train_timesteps % stride:
        raise ValueError(f"the step size L/K = {stride} must divide T = {num_train_timesteps}; choose other --steps")
    return stride


def _eps(unet: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None, t: int, label: int) -> torch.Tensor:
    b = x.shape[0]
    inp = x if cond is None else torch.cat([x, cond], dim=1)
    tt = torch.full((b,), t, device=x.device, dtype=torch.long)
    cls = torch.full((b,), label, device=x.device, dtype=torch.long)
    return unet(inp, timesteps=tt, class_labels=cls)


@torch.no_grad()
def ddim_invert(unet: torch.nn.Module, scheduler: DDIMScheduler, x0: torch.Tensor, cond: torch.Tensor | None,
                noise_level: int, stride: int, label: int = HEALTHY) -> torch.Tensor:
    """Deterministic DDIM encoding x_0 → x_L.

    Args:
        x0: clean FLAIR (B, 1, H, W) in [-1, 1].
        cond: T1w (B, 1, H, W) or None for a FLAIR-only model.
    Returns:
        x_L (B, 1, H, W).
    """
    scheduler.set_timesteps(scheduler.num_train_timesteps // stride)
    x = x0
    for t in range(0, noise_level, stride):
        x, _ = scheduler.reversed_step(_eps(unet, x, cond, t, label), t, x)
    return x


def ddim_guided_decode(unet: torch.nn.Module, classifier: torch.nn.Module | None, scheduler: DDIMScheduler,
                       x_l: torch.Tensor, cond: torch.Tensor | None, noise_level: int, stride: int, scale: float,
                       label: int = HEALTHY) -> torch.Tensor:
    """Classifier-guided DDIM (η = 0) x_L → x_0 towards class ``label`` (healthy by default).

    Args:
        x_l: x_L (B, 1, H, W) from :func:`ddim_invert`.
        scale: s; 0 (or ``classifier=None``) gives plain DDIM decoding.
    Returns:
        the pseudo-healthy x_0 (B, 1, H, W).
    """
    scheduler.set_timesteps(scheduler.num_train_timesteps // stride)
    acp = scheduler.alphas_cumprod.to(x_l.device)
    x = x_l
    for t in range(noise_level, 0, -stride):
        with torch.no_grad():
            eps = _eps(unet, x, cond, t, label)
        if scale and classifier is not None:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            grad = log_prob_grad(classifier, x, tt, label)
            eps = eps - scale * torch.sqrt(1.0 - acp[t]) * grad
        with torch.no_grad():
            x, _ = scheduler.step(eps, t, x)
    return x


def forward_noise(x0: torch.Tensor, alphas_cumprod: torch.Tensor, noise_level: int,
                  noise: torch.Tensor) -> torch.Tensor:
    """q(x_L | x_0): √ᾱ_L x_0 + √(1−ᾱ_L) ε for given ε (same shape as x0, (B, 1, H, W))."""
    a = alphas_cumprod[noise_level].to(x0.device, x0.dtype)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


ENCODINGS = ("stochastic", "deterministic")


def pseudo_healthy(unet: torch.nn.Module, classifier: torch.nn.Module | None, scheduler: DDIMScheduler,
                   stack: torch.Tensor, noise_level: int, steps: int | None, scale: float,
                   batch_size: int = 32, encoding: str = "deterministic", draws: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Pseudo-healthy FLAIR for a slice stack.

    Args:
        stack: (S, C, H, W), channel 0 FLAIR, channel 1 T1w (absent for FLAIR-only models).
        encoding: ``deterministic`` (inverse DDIM, the paper) or ``stochastic`` (forward noising).
        draws: D, stochastic encodings averaged (ignored for deterministic).
        generator: CPU ``torch.Generator`` for the stochastic ε (required for ``stochastic``); the
            noise is drawn for the whole stack per draw, so results do not depend on ``batch_size``.
    Returns:
        (S, 1, H, W) pseudo-healthy FLAIR slices (before histogram matching).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")
    stride = stride_for(noise_level, steps, scheduler.num_train_timesteps)
    if encoding == "deterministic":
        outs = []
        for i in range(0, stack.shape[0], batch_size):
            chunk = stack[i : i + batch_size]
            x0, cond = chunk[:, :1], (chunk[:, 1:2] if chunk.shape[1] > 1 else None)
            x_l = ddim_invert(unet, scheduler, x0, cond, noise_level, stride)
            outs.append(ddim_guided_decode(unet, classifier, scheduler, x_l, cond, noise_level, stride, scale))
        return torch.cat(outs, dim=0)
    if generator is None:
        raise ValueError("stochastic encoding needs a torch.Generator")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    total = torch.zeros_like(stack[:, :1])
    for _ in range(draws):
        noise = torch.randn(tuple(stack[:, :1].shape), generator=generator, dtype=stack.dtype).to(stack.device)
        for i in range(0, stack.shape[0], batch_size):
            chunk = stack[i : i + batch_size]
            x0, cond = chunk[:, :1], (chunk[:, 1:2] if chunk.shape[1] > 1 else None)
            x_l = forward_noise(x0, scheduler.alphas_cumprod, noise_level, noise[i : i + batch_size])
            total[i : i + batch_size] += ddim_guided_decode(unet, classifier, scheduler, x_l, cond, noise_level,
                                                            stride, scale)
    return total / draws


@torch.no_grad()
def class_probabilities(classifier: torch.nn.Module, flair: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """C(c | x_0, t = 0) for each slice: flair (S, 1, H, W) → (S, n_classes) probabilities."""
    outs = []
    for i in range(0, flair.shape[0], batch_size):
        x = flair[i : i + batch_size]
        t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        outs.append(torch.softmax(classifier(x, t), dim=-1))
    return torch.cat(outs, dim=0)
