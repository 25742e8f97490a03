"""Encoding to noise level L, then classifier-guided DDIM (η = 0) back to t = 0.

Symbols (docs/architecture.md §3): x_0 the clean FLAIR slice, y the T1w slice (the condition), ᾱ_t the
cumulative product of α = 1 − β (``scheduler.alphas_cumprod``), L = ``noise_level``, K = ``steps``,
s = ``guidance_scale``, h = the healthy class (index 0), D = ``draws``.

Encodings: ``deterministic`` (the paper) is inverse DDIM with MONAI's ``reversed_step``; it encodes
the lesion into x_L and decoding brings it back. ``stochastic`` forward-noises
x_L = √ᾱ_L x_0 + √(1−ᾱ_L) ε with ε from a seeded ``torch.Generator``, D times, and averages the D
decoded x_0: the lesion's detail is drowned at x_L and the T1w-conditioned, healthy-guided decoder
fills in healthy tissue. Decoding uses MONAI's ``step`` with stride Δ = L / K over L, L−Δ, …, Δ and
ε̂' = ε̂(x_t, t, h) − s·√(1−ᾱ_t)·∇ₓ log C(h | x_t, t) (guidance in ε-form).

Speed: all slices of a participant, and all D draws, go through the networks as one
stream of items chunked to ``batch_size``; everything runs under ``torch.inference_mode()`` except
the guidance gradient (:func:`~bids_fcd.sampling.guidance.log_prob_grad`); on CUDA the networks
run under bf16 autocast (the DDIM update stays float32); nothing in the step loop synchronises
with the host (no ``.item()``, ``.cpu()`` or printing); ``compile_nets=True`` wraps the networks
in ``torch.compile``.

Bit-identical on CPU for any ``batch_size``: oneDNN picks its convolution (and GEMM) kernels by
the batch size, and the kernels round differently (measured here: the classifier's gradient
through its strided convolutions differs by ~1e-7 between batches of 5 and 20 items, and
``nn.Linear`` rows differ between 1-3 and ≥ 4 rows). So on CPU the chunks do not follow
``batch_size``: they are :data:`CPU_MICRO_BATCH` items, aligned to the item index, and an item's
arithmetic is the same whatever ``batch_size`` is, for a given seed and thread count. On CUDA the
chunk is ``batch_size`` items (bf16 there; no bit-identity promised).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from monai.networks.schedulers import DDIMScheduler

from bids_fcd.config import HEALTHY, stride_for
from bids_fcd.progress import progress_bar
from bids_fcd.sampling.guidance import autocast, log_prob_grad
from bids_fcd.sampling.patches import inpaint_items, item_plan
from bids_fcd.timing import stage

log = logging.getLogger(__name__)

ENCODINGS = ("patched", "stochastic", "deterministic")

#: Items per network call on CPU, whatever ``batch_size`` is (see the module docstring and
#: BENCHMARKS.md, Speed, for the measured effect of the chunk size on 2 cores).
CPU_MICRO_BATCH = 32


def _eps(unet: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None, t: int, label: int) -> torch.Tensor:
    """ε̂(x_t ‖ y, t, c) as float32 (B, 1, H, W); bf16 autocast on CUDA."""
    b = x.shape[0]
    inp = x if cond is None else torch.cat([x, cond], dim=1)
    tt = torch.full((b,), t, device=x.device, dtype=torch.long)
    cls = torch.full((b,), label, device=x.device, dtype=torch.long)
    with autocast(x.device):
        out = unet(inp, timesteps=tt, class_labels=cls)
    return out.float()


@torch.inference_mode()
def ddim_invert(unet: torch.nn.Module, scheduler: DDIMScheduler, x0: torch.Tensor, cond: torch.Tensor | None,
                noise_level: int, stride: int, label: int = HEALTHY) -> torch.Tensor:
    """Deterministic DDIM encoding x_0 → x_L (inverse DDIM, the paper's ``reversed_step``).

    Args:
        x0: clean FLAIR (B, 1, H, W) float32 in [-1, 1].
        cond: T1w (B, 1, H, W) or None for a FLAIR-only model.
    Returns:
        x_L (B, 1, H, W) float32 (an inference tensor).
    """
    scheduler.set_timesteps(scheduler.num_train_timesteps // stride)
    x = x0
    for t in range(0, noise_level, stride):
        x, _ = scheduler.reversed_step(_eps(unet, x, cond, t, label), t, x)
    return x


@torch.inference_mode()
def ddim_guided_decode(unet: torch.nn.Module, classifier: torch.nn.Module | None, scheduler: DDIMScheduler,
                       x_l: torch.Tensor, cond: torch.Tensor | None, noise_level: int, stride: int, scale: float,
                       label: int = HEALTHY, context: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                       ) -> torch.Tensor:
    """Classifier-guided DDIM (η = 0) x_L → x_0 towards class ``label`` (healthy by default).

    Runs under ``torch.inference_mode()``; only the guidance gradient leaves it. No host
    synchronisation inside the loop (t is a Python int, ᾱ_t stays on the device).

    Args:
        x_l: x_L (B, 1, H, W) from :func:`ddim_invert` or :func:`forward_noise`.
        scale: s; 0 (or ``classifier=None``) gives plain DDIM decoding.
        context: RePaint-style inpainting (Lugmayr et al. 2022), ``(x_0, hole, ε)`` with x_0 and hole
            (B, 1, H, W) and ε (B, K, H, W): after the k-th step (to t' = t − Δ) the state outside
            the hole is replaced by the real FLAIR forward-noised to t', √ᾱ_t' x_0 + √(1−ᾱ_t') ε_k
            (x_0 itself at t' = 0), so only the hole is generated, in the real context.
    Returns:
        the pseudo-healthy x_0 (B, 1, H, W) float32 (an inference tensor).
    """
    scheduler.set_timesteps(scheduler.num_train_timesteps // stride)
    acp = scheduler.alphas_cumprod.to(x_l.device)
    guided = bool(scale) and classifier is not None
    x = x_l
    for k, t in enumerate(range(noise_level, 0, -stride)):
        eps = _eps(unet, x, cond, t, label)
        if guided:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            grad = log_prob_grad(classifier, x, tt, label)  # type: ignore[arg-type]
            eps = eps - scale * torch.sqrt(1.0 - acp[t]) * grad
        x, _ = scheduler.step(eps, t, x)
        if context is not None:
            real, hole, noise = context
            t_prev = t - stride
            known = real if t_prev <= 0 else forward_noise(real, acp, t_prev, noise[:, k : k + 1])
            x = hole * x + (1.0 - hole) * known
    return x


def forward_noise(x0: torch.Tensor, alphas_cumprod: torch.Tensor, noise_level: int,
                  noise: torch.Tensor) -> torch.Tensor:
    """q(x_L | x_0): √ᾱ_L x_0 + √(1−ᾱ_L) ε for given ε (same shape as x0, (B, 1, H, W))."""
    a = alphas_cumprod[noise_level].to(x0.device, x0.dtype)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


def maybe_compile(module: torch.nn.Module | None, enabled: bool) -> torch.nn.Module | None:
    """``torch.compile(module)`` when ``enabled`` (and the module exists), else the module itself."""
    if not enabled or module is None:
        return module
    log.info("compiling %s with torch.compile (the first chunk pays the compile time)", type(module).__name__)
    return torch.compile(module)  # type: ignore[return-value]


def sync_device(device: torch.device) -> None:
    """Wait for queued GPU work so a stage's wall time is its own (once per stage, never per step)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _chunks(n: int, batch_size: int) -> list[slice]:
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def chunk_size(device: torch.device, batch_size: int) -> int:
    """Items per network call: ``batch_size`` on a GPU, :data:`CPU_MICRO_BATCH` on CPU."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return batch_size if device.type == "cuda" else CPU_MICRO_BATCH


def run_chunks(fn, n: int, size: int, *tensors: torch.Tensor | None, desc: str = "", unit: str = "slice") -> torch.Tensor:
    """``fn(*chunk_tensors)`` over index-aligned chunks of ``size`` items, concatenated (n items).

    ``desc``: the label of a progress bar over the n items (``unit`` each), drawn on a terminal only
    (:func:`~bids_fcd.progress.progress_bar`); the bar only counts, so the result is the same with or without it.
    """
    parts = []
    with progress_bar(total=n, desc=desc, unit=unit, enabled=bool(desc)) as bar:
        for p in _chunks(n, size):
            parts.append(fn(*[None if t is None else t[p] for t in tensors]))
            bar.update(p.stop - p.start)
    return torch.cat(parts)


def pseudo_healthy(unet: torch.nn.Module, classifier: torch.nn.Module | None, scheduler: DDIMScheduler,
                   stack: torch.Tensor, noise_level: int, steps: int | None, scale: float,
                   batch_size: int = 64, encoding: str = "deterministic", draws: int = 1,
                   generator: torch.Generator | None = None, compile_nets: bool = False,
                   mask: torch.Tensor | None = None, patch: tuple[int, int, str] = (16, 8, "blur")) -> torch.Tensor:
    """Pseudo-healthy FLAIR for a slice stack: encode every slice (stage ``encode``), then guided
    decoding (stage ``decode``), each over items in chunks of :func:`chunk_size` items.

    Items are the S slices (deterministic) or the D·S (draw, slice) pairs (stochastic, draw-major),
    so D draws of a small stack still fill a chunk. The D decoded x_0 of a slice are summed in draw
    order and divided by D.

    Args:
        stack: (S, C, H, W) float32, channel 0 FLAIR, channel 1 T1w (absent for FLAIR-only models),
            on the networks' device.
        encoding: ``deterministic`` (inverse DDIM, the paper), ``stochastic`` (forward noising) or
            ``patched`` (an inpainting model regenerates hidden holes; :mod:`bids_fcd.sampling.patches`,
            no guidance, ``steps`` DDIM steps from ``noise_level``).
        draws: D, stochastic encodings averaged (ignored for deterministic).
        generator: CPU ``torch.Generator`` for the stochastic ε (required for ``stochastic``); ε is
            drawn on the CPU for the whole stack, one draw after another, then moved to the device,
            so results depend neither on ``batch_size`` nor on the device's generator.
        compile_nets: wrap the UNet and the classifier in ``torch.compile`` (off by default; it
            pays off on a GPU over many steps, rarely on a CPU).
        mask: (S, H, W) bool brain mask (``patched``: passes without brain in their cores are skipped;
            None = everywhere).
        patch: (core px, margin px, T1w hiding) of the ``patched`` encoding.
    Returns:
        (S, 1, H, W) float32 pseudo-healthy FLAIR slices (before histogram matching), not
        requiring grad.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")
    if encoding == "patched":
        if generator is None:
            raise ValueError("the patched encoding needs a torch.Generator")
        return _patched(unet, scheduler, stack, noise_level, steps or 1, batch_size, max(draws, 1), generator,
                        compile_nets, mask, patch)
    stride = stride_for(noise_level, steps, scheduler.num_train_timesteps)
    if encoding == "stochastic":
        if generator is None:
            raise ValueError("stochastic encoding needs a torch.Generator")
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
    n_draws = draws if encoding == "stochastic" else 1
    device = stack.device
    unet_c, clf_c = maybe_compile(unet, compile_nets), maybe_compile(classifier, compile_nets)
    s = stack.shape[0]
    with torch.inference_mode():
        x0 = stack[:, :1].repeat(n_draws, 1, 1, 1) if n_draws > 1 else stack[:, :1]
        cond = None
        if stack.shape[1] > 1:
            cond = stack[:, 1:2].repeat(n_draws, 1, 1, 1) if n_draws > 1 else stack[:, 1:2]
        size = chunk_size(device, batch_size)
        n = x0.shape[0]
        with stage("encode"):
            if encoding == "deterministic":
                x_l = run_chunks(lambda a, c: ddim_invert(unet_c, scheduler, a, c, noise_level, stride),  # type: ignore[arg-type]
                                  n, size, x0, cond, desc="encoding slices")
            else:
                noise = torch.cat([torch.randn(tuple(stack[:, :1].shape), generator=generator, dtype=stack.dtype)
                                   for _ in range(n_draws)]).to(device)
                x_l = forward_noise(x0, scheduler.alphas_cumprod, noise_level, noise)
            sync_device(device)
        with stage("decode"):
            out = run_chunks(lambda a, c: ddim_guided_decode(unet_c, clf_c, scheduler, a, c, noise_level,  # type: ignore[arg-type]
                                                              stride, scale), n, size, x_l, cond,
                             desc="decoding slices" if n_draws == 1 else f"decoding slices ({n_draws} draws each)")
            if n_draws > 1:
                total = torch.zeros_like(stack[:, :1])
                for d in range(n_draws):
                    total += out[d * s : (d + 1) * s]
                out = total / n_draws
            sync_device(device)
    return out


def _patched(unet: torch.nn.Module, scheduler: DDIMScheduler, stack: torch.Tensor, noise_level: int, steps: int,
             batch_size: int, draws: int, generator: torch.Generator, compile_nets: bool,
             mask: torch.Tensor | None, patch: tuple[int, int, str]) -> torch.Tensor:
    """The ``patched`` encoding over a stack (S, C, H, W) → (S, 1, H, W); see :mod:`bids_fcd.sampling.patches`.

    Items are (draw, slice, pass) triples, draw-major; ε for the holes is drawn on the CPU from
    ``generator`` for all items of a draw at once, so results depend neither on ``batch_size`` nor on
    the device. The D draws' x̂_0 are summed in draw order and divided by D.
    """
    if noise_level >= scheduler.num_train_timesteps:
        raise ValueError(f"noise level L={noise_level} must be below T={scheduler.num_train_timesteps}")
    core, margin, hiding = patch
    device = stack.device
    s, _, h, w = stack.shape
    m = np.ones((s, h, w), bool) if mask is None else mask.cpu().numpy().astype(bool)
    cores, holes, plan = item_plan(m, core, margin)
    unet_c = maybe_compile(unet, compile_nets)
    size = chunk_size(device, batch_size)
    out = torch.zeros((s, 1, h, w), dtype=torch.float32, device=device)
    if not plan:
        return stack[:, :1].clone()
    sl = torch.tensor([i for i, _ in plan], dtype=torch.long, device=device)
    ps = [p for _, p in plan]
    hole = torch.from_numpy(holes[ps][:, None].astype(np.float32)).to(device)
    core_t = torch.from_numpy(cores[ps][:, None].astype(np.float32)).to(device)
    with torch.inference_mode():
        x0 = stack[sl, :1]
        t1 = stack[sl, 1:2] if stack.shape[1] > 1 else None
        with stage("encode"):
            noise = torch.cat([torch.randn(tuple(x0.shape), generator=generator, dtype=torch.float32)
                               for _ in range(draws)]).to(device)
        with stage("decode"):
            n = len(plan)
            acp = scheduler.alphas_cumprod
            for d in range(draws):
                pred = run_chunks(lambda a, c, hl, e: inpaint_items(unet_c, acp, a, c, hl, e,  # type: ignore[arg-type]
                                                                     noise_level, steps, hiding),
                                   n, size, x0, t1, hole, noise[d * n:(d + 1) * n],
                                   desc=f"inpainting patches, draw {d + 1}/{draws}", unit="patch")
                out.index_add_(0, sl, pred * core_t)
            out = out / draws
            sync_device(device)
    return out


@torch.inference_mode()
def class_probabilities(classifier: torch.nn.Module, flair: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """C(c | x_0, t = 0) for each slice: flair (S, 1, H, W) → (S, n_classes) float32 probabilities."""
    def probs(x: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        with autocast(x.device):
            logits = classifier(x, t)
        return torch.softmax(logits.float(), dim=-1)

    size = chunk_size(flair.device, batch_size)
    return run_chunks(probs, flair.shape[0], size, flair)
