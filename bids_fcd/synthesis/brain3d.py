"""A 3D DDPM of healthy, brain-masked, template-space T1w volumes (the seed paper's medical-3D-DDPM).

MONAI ``DiffusionModelUNet(spatial_dims=3)`` ε_θ(x_t, t), trained with MSE on ε (the paper's
objective) under a scaled-linear β schedule; EMA weights; DDIM sampling (η = 1 by default, close to
the paper's ancestral DDPM sampling). Volumes come from the product's preprocessing (the model grid
in MNI152NLin2009aSym), block-mean downsampled (4 mm for the ``cpu`` preset). Every random draw
takes a ``torch.Generator``. ``bids-fcd synthesize brains train|sample`` is the command.

Arrays: a volume is (C, X, Y, Z) with X, Y, Z the template axes (RAS voxel order, as nibabel
stores the grid); a batch (B, C, X, Y, Z).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bids_fcd.config import GridConfig, from_dict, to_dict
from bids_fcd.progress import progress_bar
from bids_fcd.synthesis import modeldir, outputs
from bids_fcd.synthesis.config import BRAIN_PRESETS, BrainDDPMConfig, BrainNetConfig, BrainSampleConfig
from bids_fcd.training.datasets import SubjectSlices

log = logging.getLogger(__name__)
KIND = "brain3d"


def build_unet(net: BrainNetConfig) -> DiffusionModelUNet:
    """ε_θ: (B, C, X, Y, Z), t (B,) → (B, C, X, Y, Z)."""
    return DiffusionModelUNet(spatial_dims=3, in_channels=net.in_channels, out_channels=net.in_channels,
                              channels=net.channels, attention_levels=net.attention, num_res_blocks=net.res_blocks,
                              num_head_channels=net.head_channels, norm_num_groups=net.norm_groups)


def build_scheduler(net: BrainNetConfig) -> DDIMScheduler:
    """MONAI DDIM over T with the configured β schedule; x̂_0 clamped to [−1, 1]."""
    return DDIMScheduler(num_train_timesteps=net.num_train_timesteps, schedule=net.schedule,
                         beta_start=net.beta_start, beta_end=net.beta_end, clip_sample=True, set_alpha_to_one=True,
                         prediction_type=net.prediction)


def volume_from_subject(sub: SubjectSlices, cfg: BrainDDPMConfig) -> np.ndarray:
    """(C, X, Y, Z) float32 in [−1, 1]: the T1w (+ FLAIR if ``in_channels`` = 2) inside the brain mask,
    block-mean downsampled by ``data.downsample``, padded with −1 to ``net.image_size``."""
    f = cfg.data.downsample
    chans = [1, 0][: cfg.net.in_channels]  # stack channel 1 is the T1w, 0 the FLAIR
    vols = []
    for c in chans:
        v = np.where(sub.mask, sub.stack[:, c], -1.0).transpose(2, 1, 0)  # (S, H, W) → (X, Y, Z)
        pad = [(0, (-n) % f) for n in v.shape]
        v = np.pad(v, pad, constant_values=-1.0)
        x, y, z = (n // f for n in v.shape)
        v = v.reshape(x, f, y, f, z, f).mean(axis=(1, 3, 5))
        v = np.clip(2.0 * (v + 1.0) / (cfg.data.value_max + 1.0) - 1.0, -1.0, 1.0)
        if any(a > b for a, b in zip(v.shape, cfg.net.image_size, strict=True)):
            raise ValueError(f"volumes are {v.shape} after downsampling but preset {cfg.preset!r} holds "
                             f"{cfg.net.image_size}; use the preset made for this grid")
        v = np.pad(v, [(0, b - a) for a, b in zip(v.shape, cfg.net.image_size, strict=True)], constant_values=-1.0)
        vols.append(v)
    return np.stack(vols).astype(np.float32)


@dataclasses.dataclass
class BrainTrainResult:
    """The EMA network (for sampling), the raw network, the log and the seconds taken."""

    ema: torch.nn.Module
    model: torch.nn.Module
    log: list[dict]
    seconds: float


def train(cfg: BrainDDPMConfig, x: torch.Tensor, device: torch.device | None = None, log_path: Path | None = None,
          on_log: Callable[[dict], None] | None = None) -> BrainTrainResult:
    """Train on volumes x (N, C, X, Y, Z) in [−1, 1]: t ~ U{0..T−1}, ε ~ N(0, I), MSE(ε_θ(x_t, t), target).

    Deterministic in ``train.seed`` (init under ``torch.manual_seed``, draws from one Generator).
    """
    tc = cfg.train
    dev = device or torch.device("cpu")
    if tuple(x.shape[1:]) != (cfg.net.in_channels, *cfg.net.image_size):
        raise ValueError(f"training volumes are {tuple(x.shape[1:])}, preset {cfg.preset!r} expects "
                         f"{(cfg.net.in_channels, *cfg.net.image_size)}")
    torch.manual_seed(tc.seed)
    model = build_unet(cfg.net).to(dev)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay))
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    acp = build_scheduler(cfg.net).alphas_cumprod.float()
    gen = torch.Generator().manual_seed(tc.seed * 7919 + 23)
    entries: list[dict] = []
    acc, t0 = 0.0, time.time()
    model.train()
    for step in progress_bar(range(1, tc.steps + 1), desc="training the brain model", unit="step"):
        idx = torch.randint(0, len(x), (tc.batch_size,), generator=gen)
        x0 = x[idx].to(dev)
        t = torch.randint(0, cfg.net.num_train_timesteps, (len(idx),), generator=gen)
        noise = torch.randn(x0.shape, generator=gen).to(dev)
        a = acp[t].view(-1, 1, 1, 1, 1).to(dev)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = {"epsilon": noise, "sample": x0, "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * x0}[
            cfg.net.prediction]
        loss = torch.nn.functional.mse_loss(model(x_t, t.to(dev)), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update_parameters(model)
        acc += float(loss.detach())
        if step % tc.log_every == 0 or step == tc.steps:
            k = (step - 1) % tc.log_every + 1
            e = {"step": step, "mse": acc / k, "seconds": round(time.time() - t0, 1)}
            acc = 0.0
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
    return BrainTrainResult(ema.module, model, entries, time.time() - t0)


@torch.no_grad()
def sample(model: torch.nn.Module, net: BrainNetConfig, n: int, sc: BrainSampleConfig, seed: int,
           device: torch.device | None = None) -> torch.Tensor:
    """n DDIM samples (n, C, X, Y, Z) in [−1, 1]; micro-batch b draws from Generator(seed · 100003 + b)."""
    dev = device or torch.device("cpu")
    model.eval()
    out = []
    for b, start in enumerate(range(0, n, sc.batch_size)):
        m = min(sc.batch_size, n - start)
        gen = torch.Generator().manual_seed(seed * 100003 + b)
        sched = build_scheduler(net)
        sched.set_timesteps(sc.steps)
        x = torch.randn((sc.batch_size, net.in_channels, *net.image_size), generator=gen)
        for t in sched.timesteps:
            tt = torch.full((sc.batch_size,), int(t), dtype=torch.long, device=dev)
            pred = model(x.to(dev), tt).cpu()
            x, _ = sched.step(pred, int(t), x, eta=sc.eta, generator=gen)
        out.append(x.clamp(-1, 1)[:m])
    return torch.cat(out) if out else torch.zeros((0, net.in_channels, *net.image_size))


def resolve_config(preset: str, overrides: dict[str, Any]) -> BrainDDPMConfig:
    """A preset with ``steps``, ``batch_size``, ``lr``, ``seed``, ``max_minutes`` overrides (None keeps)."""
    if preset not in BRAIN_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(BRAIN_PRESETS)}")
    cfg = BRAIN_PRESETS[preset]
    tr = {k: overrides[k] for k in ("steps", "batch_size", "lr", "seed", "max_minutes") if overrides.get(k) is not None}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **tr))


def model_card(cfg: BrainDDPMConfig, meta: dict[str, Any]) -> str:
    """MODEL_CARD.md of a 3D brain model directory."""
    final = meta.get("final", {})
    return f"""# 3D healthy-brain DDPM ({cfg.preset} preset)

**Generates synthetic data.** Every volume this model makes is synthetic; its sidecars say so.

- Method: 3D DDPM (MONAI DiffusionModelUNet, channels {list(cfg.net.channels)}, {cfg.net.res_blocks} residual
  block(s) per level, attention {list(cfg.net.attention)}), {cfg.net.schedule} β {cfg.net.beta_start}-{cfg.net.beta_end}
  over T = {cfg.net.num_train_timesteps}, {cfg.net.prediction} prediction with MSE; DDIM {cfg.sample.steps} steps,
  η = {cfg.sample.eta}.
- Volumes: {cfg.net.image_size} voxels of MNI152NLin2009aSym (the bids-fcd grid ×{cfg.data.downsample}),
  brain-masked {'T1w' if cfg.net.in_channels == 1 else 'T1w + FLAIR'}.
- Training data: {meta.get('bids_dir')} — {len(meta.get('participants', []))} participants
  ({', '.join(meta.get('participants', []))}).
- Training: {final.get('step')} steps of {cfg.train.batch_size} in {meta.get('train_seconds', 0):.0f} s on
  {meta.get('device')} ({meta.get('threads')} threads), seed {cfg.train.seed}; final MSE {final.get('mse')}.
- Intended use: data augmentation research. Not for clinical use.
"""


def train_brains(bids_dir: Path, model_dir: Path, cfg: BrainDDPMConfig, work: Path, labels: list[str],
                 device: torch.device, skip_validation: bool = True, grid: GridConfig | None = None) -> str:
    """``synthesize brains train``: preprocess (cached), volumes, train, write; returns the model id."""
    from bids_fcd.bids.participants import is_control, read_participants
    from bids_fcd.synthesis.data import load_bids_subjects

    grid = grid or GridConfig()
    if not labels and cfg.data.controls_only:
        labels = sorted(k for k, r in read_participants(bids_dir).items() if is_control(r.get("group")))
        if not labels:
            raise ValueError(f"{bids_dir}/participants.tsv lists no control (group hc/control/healthy); name the "
                             "training participants with --participant-label")
    subjects = load_bids_subjects(bids_dir, work, grid, labels or None, skip_validation)
    if not subjects:
        raise ValueError(f"no usable participant in {bids_dir}: see the errors above")
    x = torch.from_numpy(np.stack([volume_from_subject(s, cfg) for s in subjects]))
    meta = {"bids_dir": str(bids_dir), "participants": [s.subject for s in subjects], "grid": to_dict(grid)}
    return train_from_volumes(cfg, x, model_dir, device, meta)


def train_from_volumes(cfg: BrainDDPMConfig, x: torch.Tensor, model_dir: Path, device: torch.device,
                       meta: dict[str, Any]) -> str:
    """Train on ready volumes (N, C, X, Y, Z) and write the model directory; returns the model id."""
    model_dir.mkdir(parents=True, exist_ok=True)
    log_path = model_dir / "train_log.jsonl"
    log_path.unlink(missing_ok=True)
    log.info("3D DDPM %s: %d volumes %s, %d steps of %d", cfg.preset, len(x), tuple(x.shape[1:]), cfg.train.steps,
             cfg.train.batch_size)
    result = train(cfg, x, device, log_path, lambda e: log.info("step %d: MSE %.4f, %.0f s", e["step"], e["mse"],
                                                                e["seconds"]))
    from bids_fcd import __version__

    meta = {**meta, "volumes": len(x), "final": result.log[-1] if result.log else {},
            "train_seconds": round(result.seconds, 1), "device": device.type, "threads": torch.get_num_threads(),
            "software_version": __version__}
    sha = modeldir.save(model_dir, KIND, cfg, result.ema, result.model, meta, model_card(cfg, meta))
    log.info("3D DDPM model written to %s (id %s)", model_dir, sha[:12])
    return sha


def load_brain_model(model_dir: Path, device: torch.device) -> modeldir.LoadedSynthesisModel:
    """A verified 3D brain model directory (EMA weights)."""
    return modeldir.load(model_dir, KIND, BrainDDPMConfig, lambda c: build_unet(c.net), device)


def sample_brains(model_dir: Path, out: Path, n: int, seed: int, device: torch.device, steps: int | None = None,
                  eta: float | None = None) -> list[Path]:
    """``synthesize brains sample``: n synthetic volumes (one NIfTI + sidecar each) in ``out``."""
    outputs.check_empty(out)
    loaded = load_brain_model(model_dir, device)
    cfg: BrainDDPMConfig = loaded.config
    sc = cfg.sample
    if steps is not None:
        sc = dataclasses.replace(sc, steps=steps)
    if eta is not None:
        sc = dataclasses.replace(sc, eta=eta)
    x = sample(loaded.model, cfg.net, n, sc, seed, device).numpy()
    vols = (x + 1.0) * (cfg.data.value_max + 1.0) / 2.0 - 1.0  # back to the grid normalisation
    grid = from_dict(GridConfig, loaded.meta["grid"]) if "grid" in loaded.meta else GridConfig()
    from bids_fcd.preprocessing.grid import grid_affine

    aff, _ = grid_affine(grid)
    f = cfg.data.downsample
    aff[:3, :3] *= f
    aff[:3, 3] += (f - 1) / 2.0 * grid.spacing_mm
    meta = outputs.sidecar(loaded.sha256, "3D DDPM healthy brain", seed, to_dict(sc), ModelPreset=cfg.preset,
                           Template="MNI152NLin2009aSym", Contrast=["T1w", "FLAIR"][: cfg.net.in_channels],
                           Units="grid-normalised intensities (brain p1 → -1, p50 → 0.6), brain-masked")
    return outputs.write_volumes(out, np.moveaxis(vols, 1, -1) if cfg.net.in_channels > 1 else vols[:, 0], aff, meta,
                                 "synthetic_T1w" if cfg.net.in_channels == 1 else "synthetic_T1w-FLAIR")
