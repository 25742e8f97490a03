"""The method on one preprocessed participant, arrays in and arrays out (no files).

stack (S, 2, H, W) → encoding → guided DDIM → histogram matching → signed anomaly → z against
the normative reference (or within the brain) → clusters, plus the classifier's lobe
probabilities. Used by the participant level, the reference builder and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bids_fcd.config import GridConfig, PostConfig, SamplerConfig
from bids_fcd.nets.checkpoint import LoadedModel
from bids_fcd.nets.networks import build_scheduler
from bids_fcd.postprocessing.anomaly import anomaly_map, z_map
from bids_fcd.postprocessing.clusters import Cluster, find_clusters
from bids_fcd.postprocessing.histmatch import match_histogram
from bids_fcd.postprocessing.lobes import participant_lobe_probabilities
from bids_fcd.postprocessing.normative import NormativeReference, combined_z, remove_drift
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.sampling.ddim import class_probabilities, pseudo_healthy


@dataclass
class Analysis:
    """Volumes are (W, H, S) on the model grid."""

    pseudo_raw: np.ndarray
    pseudo: np.ndarray
    anomaly: np.ndarray
    z: np.ndarray
    labels: np.ndarray
    clusters: list[Cluster]
    lobe_probabilities: dict[str, float]
    slice_probabilities: np.ndarray


def synthesise(model: LoadedModel, stack: np.ndarray, mask: np.ndarray, sampler: SamplerConfig,
               device: torch.device) -> np.ndarray:
    """Pseudo-healthy FLAIR slices (S, H, W); slices without brain are copied unchanged.

    The stochastic encoding draws its noise from a ``torch.Generator`` seeded with
    ``sampler.seed``; the deterministic one draws nothing.
    """
    has_brain = mask.reshape(mask.shape[0], -1).any(axis=1)
    out = stack[:, 0].copy()
    if has_brain.any():
        x = torch.from_numpy(stack[has_brain][:, : model.net.in_channels]).to(device)
        gen = torch.Generator().manual_seed(sampler.seed)
        ph = pseudo_healthy(model.unet, model.classifier, build_scheduler(model.net).to(device), x,
                            sampler.noise_level, sampler.steps, sampler.guidance_scale, sampler.batch_size,
                            sampler.encoding, sampler.draws, gen)
        out[has_brain] = ph[:, 0].detach().cpu().numpy()
    return out


def residual(real: np.ndarray, pseudo_raw: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
             histogram_matching: bool) -> tuple[np.ndarray, np.ndarray]:
    """(matched pseudo-healthy, smoothed anomaly map) from (W, H, S) real and raw pseudo-healthy volumes."""
    pseudo = match_histogram(pseudo_raw, real, mask) if histogram_matching else pseudo_raw.astype(np.float32)
    pseudo = np.where(mask, pseudo, real)
    return pseudo, anomaly_map(real, pseudo, mask, post.smoothing_fwhm_mm, grid.spacing_mm, post.anomaly)


def postprocess(real: np.ndarray, pseudo_raw: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                histogram_matching: bool, reference: NormativeReference | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Cluster]]:
    """(pseudo, anomaly, z, labels, clusters) from (W, H, S) real and raw pseudo-healthy volumes."""
    pseudo, anom = residual(real, pseudo_raw, mask, grid, post, histogram_matching)
    z, labels, clusters = threshold_anomaly(anom, real, mask, grid, post, reference)
    return pseudo, anom, z, labels, clusters


def without_drift(x: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                  smooth: bool = False) -> np.ndarray:
    """``x`` (W, H, S), optionally smoothed as the anomaly is, minus its low-frequency drift (``post``)."""
    if smooth:
        x = anomaly_map(x, np.zeros_like(x), mask, post.smoothing_fwhm_mm, grid.spacing_mm, "signed")
    block = int(round(post.drift_block_mm / grid.spacing_mm)) if post.drift_block_mm > 0 else 0
    return remove_drift(x, mask, block)


def normative_maps(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig,
                   post: PostConfig) -> dict[str, np.ndarray]:
    """The maps a normative reference holds statistics of, (W, H, S) each: ``anomaly`` (the smoothed
    residual) and ``flair`` (the FLAIR smoothed the same way), both without their low-frequency drift."""
    return {"anomaly": without_drift(anom, mask, grid, post),
            "flair": without_drift(flair, mask, grid, post, smooth=True)}


def map_weights(post: PostConfig) -> dict[str, float]:
    """Weights of the normative z-maps: the residual 1 − w, the FLAIR w (``post.flair_weight``)."""
    return {"anomaly": 1.0 - post.flair_weight, "flair": post.flair_weight}


def score(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
          reference: NormativeReference | None) -> np.ndarray:
    """The z-map: normative (``post.zscore == "normative"``, see :class:`PostConfig`) or within the brain."""
    if post.zscore == "normative":
        if reference is None:
            raise ValueError("a normative z-map needs a reference: use a model that ships one, pass --reference, "
                             "or choose --zscore within")
        return combined_z(normative_maps(anom, flair, mask, grid, post), mask, reference, map_weights(post),
                          post.restandardise)
    return z_map(anom, mask)


def threshold_anomaly(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                      reference: NormativeReference | None = None) -> tuple[np.ndarray, np.ndarray, list[Cluster]]:
    """(z, labels, clusters) of a (W, H, S) anomaly map: z-score, threshold, clusters ranked by peak z."""
    z = score(anom, flair, mask, grid, post, reference)
    aff, _ = grid_affine(grid)
    labels, clusters = find_clusters(z, aff, post.z_threshold, post.min_cluster_mm3, post.max_clusters)
    return z, labels, clusters


def analyse(model: LoadedModel, stack: np.ndarray, mask: np.ndarray, sampler: SamplerConfig, post: PostConfig,
            device: torch.device, reference: NormativeReference | None = None) -> Analysis:
    """The whole method on one slice stack (S, 2, H, W) with brain mask (S, H, W)."""
    grid = model.net.grid
    ph = synthesise(model, stack, mask, sampler, device)
    real, mask_v = from_slices(stack[:, 0]), from_slices(mask)
    pseudo_raw = from_slices(ph)
    pseudo, anom, z, labels, clusters = postprocess(real, pseudo_raw, mask_v, grid, post, sampler.histogram_matching,
                                                    reference)
    probs = class_probabilities(model.classifier, torch.from_numpy(stack[:, :1]).to(device)).cpu().numpy()
    frac = mask.reshape(mask.shape[0], -1).mean(axis=1)
    return Analysis(pseudo_raw, pseudo, anom, z, labels, clusters, participant_lobe_probabilities(probs, frac), probs)
