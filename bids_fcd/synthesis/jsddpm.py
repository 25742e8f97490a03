"""JS-DDPM: one 2-channel diffusion UNet for the joint p(I, M | c) of FLAIR slices I and lesion masks M.

Following the joint-synthesis paper (JS-DDPM): x_0 = [I, M] (B, 2, H, W) in [−1, 1], M ∈ {−1, +1};
condition c = (z-bin, pathology class), token = z_bin + pathology · n_bins; a MONAI
``DiffusionModelUNet`` whose class embedding is replaced by :class:`TokenEmbedding` (learned
pathology embedding ‖ learned + sinusoidal z encoding → MLP, added to the time embedding);
x̂_0 prediction by default (v and ε as options); self-conditioning (two extra input channels
with the previous, clamped x̂_0: zeros or the model's own no-grad estimate during training,
always the previous step's estimate while sampling); loss = Kendall-weighted lesion-weighted
Lp on both channels + focal frequency loss on the image (:mod:`bids_fcd.synthesis.losses`); EMA
weights; DDIM sampling with MONAI's ``DDIMScheduler``. Every random draw takes a
``torch.Generator``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.nets.diffusion_model_unet import get_timestep_embedding
from monai.networks.schedulers import DDIMScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bids_fcd.progress import progress_bar
from bids_fcd.synthesis.config import JSDDPMConfig, JSLossConfig, JSNetConfig, JSSampleConfig, JSTrainConfig
from bids_fcd.synthesis.losses import KendallWeights, focal_frequency_loss, lp_loss

log = logging.getLogger(__name__)


class TokenEmbedding(torch.nn.Module):
    """Conditioning token (B,) int64 → (B, out_dim) embedding added to the UNet's time embedding.

    token = z_bin + pathology · n_bins. e = MLP([E_path(pathology) ‖ E_z(z_bin) + sin(z_bin)]),
    with E_path, E_z learned tables (``embed_dim`` wide) and sin a fixed sinusoidal encoding of
    the bin centre (z_bin + ½)/n_bins, scaled onto [0, 1000) like a timestep, so that
    neighbouring bins start close.
    """

    def __init__(self, n_bins: int, n_pathology: int, embed_dim: int, out_dim: int) -> None:
        super().__init__()
        self.n_bins, self.n_pathology = n_bins, n_pathology
        self.pathology = torch.nn.Embedding(n_pathology, embed_dim)
        self.z_learned = torch.nn.Embedding(n_bins, embed_dim)
        centres = (torch.arange(n_bins, dtype=torch.float32) + 0.5) / n_bins * 1000.0
        self.register_buffer("z_sinusoidal", get_timestep_embedding(centres, embed_dim).float())
        self.combine = torch.nn.Sequential(torch.nn.Linear(2 * embed_dim, out_dim), torch.nn.SiLU(),
                                           torch.nn.Linear(out_dim, out_dim))

    def split(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B,) → (z_bin (B,), pathology (B,)); ValueError outside [0, n_bins · n_pathology)."""
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.n_bins * self.n_pathology):
            raise ValueError(f"conditioning tokens must lie in [0, {self.n_bins * self.n_pathology})")
        return tokens % self.n_bins, tokens // self.n_bins

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        z, p = self.split(tokens.long())
        sin: torch.Tensor = self.z_sinusoidal  # type: ignore[assignment]
        z_emb = self.z_learned(z) + sin[z]
        return self.combine(torch.cat([self.pathology(p), z_emb], dim=1))


class JSDDPM(torch.nn.Module):
    """f_θ([x_t ‖ x̂_0^prev], t, token): input x_t (B, 2, H, W), output (B, 2, H, W) in the units of
    ``net.prediction`` (x̂_0, v or ε) for both channels (FLAIR I, mask M)."""

    def __init__(self, net: JSNetConfig) -> None:
        super().__init__()
        self.net = net
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=4 if net.self_conditioning else 2,
            out_channels=2,
            channels=net.channels,
            attention_levels=net.attention,
            num_res_blocks=net.res_blocks,
            num_head_channels=net.head_channels,
            norm_num_groups=net.norm_groups,
            num_class_embeds=net.n_tokens,
        )
        # MONAI adds class_embedding(class_labels) to the time embedding: ours is the token embedding
        self.unet.class_embedding = TokenEmbedding(  # type: ignore[assignment]
            net.n_bins, net.n_pathology, net.embed_dim, 4 * net.channels[0])

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                x0_prev: torch.Tensor | None = None) -> torch.Tensor:
        if self.net.self_conditioning:
            prev = torch.zeros_like(x_t) if x0_prev is None else x0_prev
            x_t = torch.cat([x_t, prev], dim=1)
        elif x0_prev is not None:
            raise ValueError("this model was built without self-conditioning; do not pass x0_prev")
        return self.unet(x_t, timesteps=t, class_labels=tokens)


def build_scheduler(net: JSNetConfig) -> DDIMScheduler:
    """MONAI DDIM over T = ``num_train_timesteps``; x̂_0 clamped to [−1, 1]; ᾱ at t = −1 is 1, so the
    last step returns x̂_0 itself."""
    return DDIMScheduler(num_train_timesteps=net.num_train_timesteps, schedule=net.schedule,
                         beta_start=net.beta_start, beta_end=net.beta_end, clip_sample=True,
                         set_alpha_to_one=True, prediction_type=net.prediction)


def to_x0(out: torch.Tensor, x_t: torch.Tensor, acp_t: torch.Tensor, prediction: str) -> torch.Tensor:
    """x̂_0 from the model output; ``acp_t`` ᾱ_t broadcastable to x_t (B, 1, 1, 1)."""
    if prediction == "sample":
        return out
    if prediction == "epsilon":
        return (x_t - (1 - acp_t).sqrt() * out) / acp_t.sqrt()
    return acp_t.sqrt() * x_t - (1 - acp_t).sqrt() * out  # v


def target_for(x0: torch.Tensor, noise: torch.Tensor, acp_t: torch.Tensor, prediction: str) -> torch.Tensor:
    """The regression target of ``prediction``: x_0, ε or v = √ᾱ_t ε − √(1−ᾱ_t) x_0."""
    if prediction == "sample":
        return x0
    if prediction == "epsilon":
        return noise
    return acp_t.sqrt() * noise - (1 - acp_t).sqrt() * x0


@dataclass(frozen=True)
class StepLoss:
    """One training step: total (differentiable), and the terms [Lp image, Lp mask, FFL] (floats)."""

    total: torch.Tensor
    terms: tuple[float, float, float]
    self_conditioned: bool


def training_loss(model: torch.nn.Module, weighting: KendallWeights, x0: torch.Tensor, tokens: torch.Tensor,
                  acp: torch.Tensor, net: JSNetConfig, loss: JSLossConfig, self_cond_prob: float,
                  gen: torch.Generator) -> StepLoss:
    """The JS-DDPM loss on a batch x0 (B, 2, H, W) with tokens (B,).

    t ~ U{0..T−1}, ε ~ N(0, I), x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (draws from ``gen``). With
    probability ``self_cond_prob`` (one coin per step, from ``gen``) the model first predicts
    x̂_0 with zeros as self-condition (no gradient) and that clamped estimate is fed in.
    """
    b = x0.shape[0]
    dev = x0.device
    t = torch.randint(0, net.num_train_timesteps, (b,), generator=gen).to(dev)
    noise = torch.randn(x0.shape, generator=gen).to(dev)
    a = acp.to(dev)[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    prev = None
    coin = float(torch.rand((), generator=gen))
    use_sc = net.self_conditioning and coin < self_cond_prob
    if net.self_conditioning:
        prev = torch.zeros_like(x_t)
        if use_sc:
            with torch.no_grad():
                prev = to_x0(model(x_t, t, tokens, prev), x_t, a, net.prediction).clamp(-1, 1)
    out = model(x_t, t, tokens, prev)
    target = target_for(x0, noise, a, net.prediction)
    w = torch.where(x0[:, 1:2] > 0, loss.lesion_weight, 1.0)
    lp_img = lp_loss(out[:, :1], target[:, :1], w, loss.p)
    lp_mask = lp_loss(out[:, 1:], target[:, 1:], w, loss.p)
    x0_hat = to_x0(out, x_t, a, net.prediction)
    ffl = focal_frequency_loss(x0_hat[:, :1], x0[:, :1], loss.ffl_alpha, loss.ffl_patch_factor, loss.ffl_log_matrix)
    terms = torch.stack([lp_img, lp_mask, ffl])
    return StepLoss(weighting(terms), (float(lp_img.detach()), float(lp_mask.detach()), float(ffl.detach())), use_sc)


def batch_indices(pathology: torch.Tensor, n: int, lesion_fraction: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) slice indices drawn with replacement: each lesion slice with weight ``lesion_fraction``/N_les,
    each lesion-free slice (1 − ``lesion_fraction``)/N_ctl (a class that is absent gets nothing)."""
    les = pathology == 1
    n_les, n_ctl = int(les.sum()), int((~les).sum())
    w = torch.zeros(len(pathology), dtype=torch.float64)
    if n_les:
        w[les] = (lesion_fraction if n_ctl else 1.0) / n_les
    if n_ctl:
        w[~les] = ((1 - lesion_fraction) if n_les else 1.0) / n_ctl
    return torch.multinomial(w, n, replacement=True, generator=gen)


@dataclass
class TrainResult:
    """A trained model: the EMA copy (for sampling), the raw model, the Kendall weights, the log."""

    ema: torch.nn.Module
    model: JSDDPM
    weighting: KendallWeights
    log: list[dict]
    seconds: float


def train(cfg: JSDDPMConfig, x: torch.Tensor, tokens: torch.Tensor, device: torch.device | None = None,
          log_path: Path | None = None, on_log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train JS-DDPM on pairs x (N, 2, H, W) in [−1, 1] with tokens (N,).

    Deterministic in ``cfg.train.seed`` (weights initialised under ``torch.manual_seed``, which
    MONAI's layers use; every later draw from one ``torch.Generator``). Logs every
    ``log_every`` steps to ``log_path`` (JSON lines) and ``on_log``.
    """
    tc: JSTrainConfig = cfg.train
    dev = device or torch.device("cpu")
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"training pairs must be (N, 2, H, W); got {tuple(x.shape)}")
    if tuple(x.shape[2:]) != tuple(cfg.net.image_size):
        raise ValueError(f"training slices are {tuple(x.shape[2:])} but preset {cfg.preset!r} expects "
                         f"{tuple(cfg.net.image_size)}; change the data downsampling or the preset")
    torch.manual_seed(cfg.train.seed)
    model = JSDDPM(cfg.net).to(dev)
    weighting = KendallWeights(cfg.loss.groups, cfg.loss.initial_log_vars, cfg.loss.kendall).to(dev)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay))
    params = list(model.parameters()) + ([weighting.log_vars] if cfg.loss.kendall else [])
    opt = torch.optim.Adam(params, lr=tc.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, tc.steps))
    acp = build_scheduler(cfg.net).alphas_cumprod.float()
    gen = torch.Generator().manual_seed(tc.seed * 7919 + 19)
    pathology = tokens // cfg.net.n_bins
    entries: list[dict] = []
    acc = np.zeros(4)
    t0 = time.time()
    model.train()
    for step in progress_bar(range(1, tc.steps + 1), desc="training the lesion model", unit="step"):
        idx = batch_indices(pathology, tc.batch_size, tc.lesion_fraction, gen)
        xb, tb = x[idx].to(dev), tokens[idx].to(dev)
        if tc.flip_lr:
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1).to(dev), xb.flip(-1), xb)
        out = training_loss(model, weighting, xb, tb, acp, cfg.net, cfg.loss, tc.self_cond_prob, gen)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        sched.step()
        ema.update_parameters(model)
        acc += np.array([float(out.total.detach()), *out.terms])
        if step % tc.log_every == 0 or step == tc.steps:
            k = (step - 1) % tc.log_every + 1
            e = {"step": step, "loss": acc[0] / k, "lp_image": acc[1] / k, "lp_mask": acc[2] / k, "ffl": acc[3] / k,
                 "log_vars": [float(v) for v in weighting.log_vars.detach()], "lr": sched.get_last_lr()[0],
                 "seconds": round(time.time() - t0, 1)}
            acc[:] = 0
            entries.append(e)
            if log_path is not None:
                with open(log_path, "a") as fh:
                    fh.write(json.dumps(e) + "\n")
            if on_log is not None:
                on_log(e)
            if tc.max_minutes and time.time() - t0 > 60 * tc.max_minutes and step < tc.steps:
                log.warning("max_minutes %g reached after step %d of %d; stopping here", tc.max_minutes, step,
                            tc.steps)
                break
    ema.eval()
    model.eval()
    return TrainResult(ema.module, model, weighting, entries, time.time() - t0)


@torch.no_grad()
def sample(model: torch.nn.Module, net: JSNetConfig, tokens: torch.Tensor, sc: JSSampleConfig, seed: int,
           device: torch.device | None = None) -> torch.Tensor:
    """DDIM samples x̂_0 (N, 2, H, W) in [−1, 1] for tokens (N,).

    Micro-batch b (``sc.batch_size`` tokens, the last one padded and cut) draws x_T and η-noise
    from ``torch.Generator().manual_seed(seed · 100003 + b)``, so a sample depends on (seed, its
    index, batch size) only. The self-condition starts at zeros and is the previous step's
    clamped x̂_0 afterwards.
    """
    dev = device or torch.device("cpu")
    model.eval()
    h, w = net.image_size
    out = []
    for b, start in enumerate(range(0, len(tokens), sc.batch_size)):
        tok = tokens[start:start + sc.batch_size]
        n = len(tok)
        tok = torch.cat([tok, tok[-1:].repeat(sc.batch_size - n)]) if n < sc.batch_size else tok
        gen = torch.Generator().manual_seed(seed * 100003 + b)
        sched = build_scheduler(net)
        sched.set_timesteps(sc.steps)
        x = torch.randn((len(tok), 2, h, w), generator=gen).to(dev)
        prev = torch.zeros_like(x) if net.self_conditioning else None
        for t in sched.timesteps:
            tt = torch.full((len(tok),), int(t), dtype=torch.long, device=dev)
            pred = model(x, tt, tok.to(dev), prev)
            # the scheduler's η-noise is drawn on the CPU generator and moved to the device
            x, x0 = sched.step(pred.cpu(), int(t), x.cpu(), eta=sc.eta, generator=gen)
            x = x.to(dev)
            if prev is not None:
                prev = x0.clamp(-1, 1).to(dev)
        out.append(x.clamp(-1, 1).cpu()[:n])
    return torch.cat(out) if out else torch.zeros((0, 2, h, w))


def kendall_sigma2(weighting: KendallWeights) -> list[float]:
    """σ_g² = exp(s_g) per Kendall group."""
    return [math.exp(float(v)) for v in weighting.log_vars.detach()]
