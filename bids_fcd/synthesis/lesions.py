"""``bids-fcd synthesize lesions train|sample``: BIDS dataset → JS-DDPM model directory → synthetic pairs.

Training reads the participants (default: participants.tsv ``split == train``, else all)
through the product's preprocessing (cached in the work dir, shared with ``bids-fcd train``), so
the slices are those the detection model sees, on the same template grid.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.config import GridConfig, from_dict, to_dict
from bids_fcd.synthesis import jsddpm, metrics, modeldir, outputs
from bids_fcd.synthesis.config import JSDDPM_PRESETS, JSDDPMConfig
from bids_fcd.synthesis.data import PairSet, load_bids_subjects, make_token, pairs_from_subjects, unscale_flair

log = logging.getLogger(__name__)
KIND = "jsddpm"


def z_bin_counts(pairs: PairSet, n_bins: int) -> dict[str, list[int]]:
    """Training slices per z-bin, per pathology class (the default z-bin draw when sampling)."""
    return {name: np.bincount(pairs.z_bin[pairs.pathology == p], minlength=n_bins).tolist()
            for p, name in ((0, "control"), (1, "lesion"))}


def real_summary(pairs: PairSet, cfg: JSDDPMConfig) -> dict[str, Any]:
    """FLAIR ratio and mask statistics of the real lesion slices (the card's reference values)."""
    les = pairs.pathology == 1
    if not les.any():
        return {}
    masks = pairs.x[les, 1] > 0
    return {"flair_ratio": metrics.flair_ratio(pairs.x[les, 0], masks),
            "mask_stats": dataclasses.asdict(metrics.mask_stats(masks))}


def model_card(cfg: JSDDPMConfig, meta: dict[str, Any]) -> str:
    """MODEL_CARD.md of a JS-DDPM model directory."""
    final = meta.get("final", {})
    return f"""# JS-DDPM lesion synthesis model ({cfg.preset} preset)

**Generates synthetic data.** Every image this model makes is synthetic; its sidecars say so.

- Method: joint-synthesis DDPM (one 2-channel MONAI DiffusionModelUNet for FLAIR + lesion mask),
  conditioned on z-bin ({cfg.net.n_bins} axial bins) × pathology (control / lesion), prediction
  `{cfg.net.prediction}`, self-conditioning {'on' if cfg.net.self_conditioning else 'off'}, Lp (p = {cfg.loss.p})
  + focal frequency loss with Kendall weighting, EMA {cfg.train.ema_decay}, DDIM {cfg.sample.steps} steps
  (η = {cfg.sample.eta}).
- Image: {cfg.net.image_size[0]}×{cfg.net.image_size[1]} axial slices of MNI152NLin2009aSym (the bids-fcd grid
  downsampled ×{cfg.data.downsample}), FLAIR in the product's normalisation.
- Training data: {meta.get('bids_dir')} — participants {', '.join(meta.get('participants', []))};
  {meta.get('slices')} slices, {meta.get('lesion_slices')} with lesion.
- Training: {final.get('step')} steps of {cfg.train.batch_size} slices in {meta.get('train_seconds', 0):.0f} s on
  {meta.get('device')} ({meta.get('threads')} threads), seed {cfg.train.seed}; final loss {final.get('loss')}.
- Real lesion slices: FLAIR inside/outside-mask ratio {meta.get('real', {}).get('flair_ratio')}.
- Intended use: data augmentation research. Not for clinical use. Masks are as good as the
  training masks; on a phantom cohort they are phantom lesions.
- Software: bids-fcd {meta.get('software_version')}.
"""


def resolve_config(preset: str, overrides: dict[str, Any]) -> JSDDPMConfig:
    """A preset with ``steps``, ``batch_size``, ``lr``, ``seed``, ``max_minutes`` (train),
    ``prediction``, ``self_conditioning`` (net) and ``kendall`` (loss) overrides; None values keep
    the preset's."""
    if preset not in JSDDPM_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(JSDDPM_PRESETS)}")
    cfg = JSDDPM_PRESETS[preset]
    tr = {k: overrides[k] for k in ("steps", "batch_size", "lr", "seed", "max_minutes") if overrides.get(k) is not None}
    nt = {k: overrides[k] for k in ("prediction", "self_conditioning") if overrides.get(k) is not None}
    ls = {k: overrides[k] for k in ("kendall",) if overrides.get(k) is not None}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **tr), net=dataclasses.replace(cfg.net, **nt),
                               loss=dataclasses.replace(cfg.loss, **ls))


def train_from_pairs(cfg: JSDDPMConfig, pairs: PairSet, model_dir: Path, device: torch.device,
                     meta: dict[str, Any]) -> str:
    """Train on ready pairs and write the model directory; returns the model id."""
    if not (pairs.pathology == 1).any():
        raise ValueError("no training slice holds a lesion: JS-DDPM needs participants with _roi lesion masks "
                         "(ds004199 layout: sub-X/anat/sub-X_..._FLAIR_roi.nii.gz)")
    model_dir.mkdir(parents=True, exist_ok=True)
    log_path = model_dir / "train_log.jsonl"
    log_path.unlink(missing_ok=True)
    x = torch.from_numpy(pairs.x)
    tokens = torch.from_numpy(make_token(pairs.z_bin, pairs.pathology, cfg.net.n_bins))
    log.info("JS-DDPM %s: %d slices (%d with lesion), %d steps of %d", cfg.preset, len(pairs),
             int(pairs.pathology.sum()), cfg.train.steps, cfg.train.batch_size)

    def report(e: dict) -> None:
        log.info("step %d: loss %.4f (Lp image %.4f, Lp mask %.4f, FFL %.5f), log σ² %s, %.0f s", e["step"], e["loss"],
                 e["lp_image"], e["lp_mask"], e["ffl"], [round(v, 3) for v in e["log_vars"]], e["seconds"])

    result = jsddpm.train(cfg, x, tokens, device, log_path, report)
    meta = {**meta, "slices": len(pairs), "lesion_slices": int(pairs.pathology.sum()),
            "z_bin_counts": z_bin_counts(pairs, cfg.net.n_bins), "real": real_summary(pairs, cfg),
            "final": result.log[-1] if result.log else {}, "train_seconds": round(result.seconds, 1),
            "kendall_sigma2": jsddpm.kendall_sigma2(result.weighting), "device": device.type,
            "threads": torch.get_num_threads()}
    from bids_fcd import __version__

    meta["software_version"] = __version__
    sha = modeldir.save(model_dir, KIND, cfg, result.ema, result.model, meta, model_card(cfg, meta))
    log.info("JS-DDPM model written to %s (id %s) after %.0f s", model_dir, sha[:12], result.seconds)
    return sha


def train_lesions(bids_dir: Path, model_dir: Path, cfg: JSDDPMConfig, work: Path, labels: list[str],
                  device: torch.device, skip_validation: bool = True, grid: GridConfig | None = None) -> str:
    """``synthesize lesions train``: preprocess (cached), build pairs, train, write; returns the model id."""
    grid = grid or GridConfig()
    subjects = load_bids_subjects(bids_dir, work, grid, labels or None, skip_validation)
    if not subjects:
        raise ValueError(f"no usable participant in {bids_dir}: see the errors above")
    pairs = pairs_from_subjects(subjects, cfg.net.n_bins, cfg.data.flair_max, cfg.data.downsample,
                                cfg.data.min_brain_fraction)
    if tuple(pairs.x.shape[2:]) != tuple(cfg.net.image_size):
        raise ValueError(f"the grid gives {tuple(pairs.x.shape[2:])} slices but preset {cfg.preset!r} expects "
                         f"{tuple(cfg.net.image_size)}; use the preset made for this grid")
    meta = {"bids_dir": str(bids_dir), "participants": [s.subject for s in subjects], "grid": to_dict(grid)}
    return train_from_pairs(cfg, pairs, model_dir, device, meta)


def load_lesion_model(model_dir: Path, device: torch.device) -> modeldir.LoadedSynthesisModel:
    """A verified JS-DDPM model directory (EMA weights)."""
    return modeldir.load(model_dir, KIND, JSDDPMConfig, lambda c: jsddpm.JSDDPM(c.net), device)


def choose_tokens(n: int, z_bin: int | None, pathology: str, counts: dict[str, list[int]], n_bins: int,
                  rng: np.random.Generator) -> np.ndarray:
    """(n,) tokens: the given z-bin, or z-bins drawn in proportion to the training slices of that pathology."""
    p = 1 if pathology == "lesion" else 0
    if z_bin is not None:
        if not 0 <= z_bin < n_bins:
            raise ValueError(f"--z-bin {z_bin} is outside [0, {n_bins})")
        zs = np.full(n, z_bin, np.int64)
    else:
        c = np.asarray(counts.get(pathology, [1] * n_bins), np.float64)
        c = c if c.sum() > 0 else np.ones(n_bins)
        zs = rng.choice(n_bins, size=n, p=c / c.sum()).astype(np.int64)
    return make_token(zs, np.full(n, p), n_bins)


def sample_lesions(model_dir: Path, out: Path, n: int, z_bin: int | None, pathology: str, seed: int,
                   device: torch.device, steps: int | None = None, eta: float | None = None) -> list[Path]:
    """``synthesize lesions sample``: n synthetic (FLAIR, mask) slices written to ``out``."""
    outputs.check_empty(out)
    loaded = load_lesion_model(model_dir, device)
    cfg: JSDDPMConfig = loaded.config
    sc = cfg.sample
    if steps is not None:
        sc = dataclasses.replace(sc, steps=steps)
    if eta is not None:
        sc = dataclasses.replace(sc, eta=eta)
    rng = np.random.default_rng([seed, 19])
    tokens = choose_tokens(n, z_bin, pathology, loaded.meta.get("z_bin_counts", {}), cfg.net.n_bins, rng)
    t0 = time.time()
    x = jsddpm.sample(loaded.model, cfg.net, torch.from_numpy(tokens), sc, seed, device).numpy()
    log.info("%d samples in %.1f s", n, time.time() - t0)
    roi = metrics.binarise(x[:, 1], sc.mask_min_pixels)
    flair = unscale_flair(x[:, 0], cfg.data.flair_max)
    grid = from_dict(GridConfig, loaded.meta["grid"]) if "grid" in loaded.meta else GridConfig()
    from bids_fcd.preprocessing.grid import grid_affine

    aff, (_, _, n_slices) = grid_affine(grid)
    rows = []
    for i, tok in enumerate(tokens):
        zb, pa = int(tok % cfg.net.n_bins), int(tok // cfg.net.n_bins)
        k0 = int(np.ceil(zb * n_slices / cfg.net.n_bins))
        k1 = int(np.ceil((zb + 1) * n_slices / cfg.net.n_bins)) - 1
        rows.append({"index": i, "token": int(tok), "z_bin": zb, "pathology": ("control", "lesion")[pa],
                     "z_mm_from": grid.z_min_mm + k0 * grid.spacing_mm, "z_mm_to": grid.z_min_mm + k1 * grid.spacing_mm,
                     "lesion_pixels": int(roi[i].sum()), "micro_batch": i // sc.batch_size})
    meta = outputs.sidecar(loaded.sha256, "JS-DDPM joint FLAIR + lesion mask", seed, to_dict(sc),
                           ModelPreset=cfg.preset, Pathology=pathology, ZBin=z_bin if z_bin is not None else "drawn",
                           Template="MNI152NLin2009aSym")
    return outputs.write_lesion_samples(out, flair, roi, rows, outputs.slice_affine(aff, cfg.data.downsample), meta)
