"""The method on one preprocessed participant, arrays in and arrays out (no files).

stack (S, 2, H, W) → encoding → guided DDIM → histogram matching → signed anomaly → z against
the normative reference (or within the brain) → clusters, plus the classifier's lobe
probabilities. Used by the participant level, the reference builder and the benchmark.

Each step is a :func:`bids_fcd.timing.stage` (``encode``, ``decode`` from the sampler, then
``histmatch``, ``anomaly``, ``score``, ``clusters``, ``classifier``), which
``benchmarks/speed.py`` collects.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch

from bids_fcd.config import SAMPLER_PRESETS, SLICES, GridConfig, PostConfig, SamplerConfig
from bids_fcd.nets.checkpoint import LoadedModel
from bids_fcd.nets.networks import build_scheduler, epsilon_unet
from bids_fcd.postprocessing.anomaly import anomaly_map, asymmetry, z_map
from bids_fcd.postprocessing.candidates import candidate_regions, shrink_to_first_pass
from bids_fcd.postprocessing.clusters import Cluster, find_clusters
from bids_fcd.postprocessing.histmatch import match_histogram
from bids_fcd.postprocessing.lobes import participant_lobe_probabilities
from bids_fcd.postprocessing.normative import (
    NormativeReference,
    combined_z,
    drift_of,
    remove_drift,
    remove_drift_robust,
)
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.sampling.condition import conditioned_stack
from bids_fcd.sampling.ddim import class_probabilities, pseudo_healthy
from bids_fcd.sampling.second_look import inpaint_holes
from bids_fcd.timing import stage

log = logging.getLogger(__name__)

#: ``--slices paper``: the paper's central band of axial slices, in template (MNI) z millimetres,
#: inclusive. The paper sampled 51 axial slices of 1 mm through the centre of the cerebrum; we
#: take z = 0 … +50 mm (basal ganglia and lateral ventricles up to the centrum semiovale), which is
#: 26 slices on the default 2 mm grid (z −50 … +80 mm, 66 slices). The temporal poles, the
#: inferior temporal and orbitofrontal cortex (z < 0) and the vertex (z > 50) are left out.
PAPER_BAND_MM = (0.0, 50.0)
SLICE_CHOICES = SLICES


def slice_band(grid: GridConfig, n_slices: int, slices: str) -> np.ndarray:
    """(S,) bool: the axial slices ``--slices`` asks for (``all``: every slice; ``paper``: z in
    :data:`PAPER_BAND_MM`), slice k lying at z = ``grid.z_min_mm`` + k · ``grid.spacing_mm``."""
    if slices not in SLICE_CHOICES:
        raise ValueError(f"unknown --slices {slices!r}; choose one of {SLICE_CHOICES}")
    if slices == "all":
        return np.ones(n_slices, bool)
    z = grid.z_min_mm + np.arange(n_slices) * grid.spacing_mm
    return (z >= PAPER_BAND_MM[0] - 1e-6) & (z <= PAPER_BAND_MM[1] + 1e-6)


def sampled_slices(grid: GridConfig, mask: np.ndarray, slices: str) -> np.ndarray:
    """(S,) bool: slices that are sampled, those with brain in ``mask`` (S, H, W) inside the band."""
    has_brain = mask.reshape(mask.shape[0], -1).any(axis=1)
    return has_brain & slice_band(grid, mask.shape[0], slices)


@dataclass
class Analysis:
    """Volumes are (W, H, S) on the model grid: the matched pseudo-healthy FLAIR, the anomaly map, its
    z-map and the ranked cluster labels; the participant's lobe probabilities over ``LOBES``."""

    pseudo: np.ndarray
    anomaly: np.ndarray
    z: np.ndarray
    labels: np.ndarray
    clusters: list[Cluster]
    lobe_probabilities: dict[str, float]


def resolve_sampler(sampler: SamplerConfig, model: LoadedModel) -> SamplerConfig:
    """The sampler a model can run: the ``patched`` encoding (the default) needs an inpainting model;
    for a ``ddpm`` model (the paper's kind) it becomes the ``fast`` preset, with a warning."""
    if sampler.encoding != "patched" or model.net.kind == "inpaint":
        return sampler
    log.warning("model %s is a whole-slice ('%s') model and cannot run the patched encoding; using the fast preset "
                "(stochastic encoding) instead (train a model with --preset inpaint for the patched encoding)",
                model.name, model.net.kind)
    default = SamplerConfig()
    # settings left at the patched defaults take the fast preset's value; settings the user gave stay
    fast = {k: v for k, v in SAMPLER_PRESETS["fast"].items() if k == "encoding" or getattr(sampler, k) == getattr(default, k)}
    return dataclasses.replace(sampler, **fast)  # type: ignore[arg-type]


def synthesise(model: LoadedModel, stack: np.ndarray, mask: np.ndarray, sampler: SamplerConfig,
               device: torch.device, compile_nets: bool = False) -> np.ndarray:
    """Pseudo-healthy FLAIR slices (S, H, W) float32 from a stack (S, 2, H, W) and mask (S, H, W).

    Only the slices of :func:`sampled_slices` go through the sampler, all in one batched call
    (chunks of ``sampler.batch_size`` on a GPU, fixed micro-batches on CPU); the others (no brain, or outside the paper's
    band with ``sampler.slices == "paper"``) are copied unchanged, so pseudo = real there. The
    stochastic encoding draws its noise from a CPU ``torch.Generator`` seeded with
    ``sampler.seed``; the deterministic one draws nothing. The T1w channel is first replaced for
    ``sampler.t1_condition`` (:func:`~bids_fcd.sampling.condition.conditioned_stack`; ``native`` keeps it), for
    the first pass and the second look alike. ``compile_nets`` (``BIDS_FCD_COMPILE=1``,
    :class:`~bids_fcd.config.Environment`) compiles the networks (``torch.compile``; off by default).
    """
    sampler = resolve_sampler(sampler, model)
    todo = sampled_slices(model.net.grid, mask, sampler.slices)
    stack = conditioned_stack(stack, mask, sampler.t1_condition)
    out = stack[:, 0].copy()
    log.info("sampling %d of %d slices (--slices %s) on %s", int(todo.sum()), len(todo), sampler.slices, device)
    if todo.any():
        x = torch.from_numpy(np.ascontiguousarray(stack[todo][:, : model.net.in_channels])).to(device)
        gen = torch.Generator().manual_seed(sampler.seed)
        unet = model.unet if sampler.encoding == "patched" else epsilon_unet(model.unet, model.net)
        ph = pseudo_healthy(unet, model.classifier, build_scheduler(model.net).to(device), x,
                            sampler.noise_level, sampler.steps, sampler.guidance_scale, sampler.batch_size,
                            sampler.encoding, sampler.draws, gen,
                            compile_nets=compile_nets,
                            mask=torch.from_numpy(mask[todo]),
                            patch=(sampler.patch_core_px, sampler.patch_margin_px, sampler.t1_hiding))
        out[todo] = ph[:, 0].cpu().numpy()
        if sampler.second_look != "off" and model.net.kind == "inpaint":
            log.warning("--second-look needs a whole-slice ('ddpm') model; model %s is an inpainting model, whose "
                        "patched encoding already hides every region: skipping the second look", model.name)
        elif sampler.second_look != "off":
            out = second_look(model, stack, mask, todo, out, sampler, device)
    return out


#: Smoothing of the second look's candidate maps (the anomaly map's default FWHM).
LOOK_FWHM_MM = 4.0


def second_look(model: LoadedModel, stack: np.ndarray, mask: np.ndarray, todo: np.ndarray, first: np.ndarray,
                sampler: SamplerConfig, device: torch.device) -> np.ndarray:
    """The first pass's x̂_0 slices (S, H, W) with its candidate regions inpainted again, their T1w hidden
    (:mod:`bids_fcd.sampling.second_look`); with ``sampler.look_shrink`` the inpainted regions' residual is
    brought to the first pass's noise level (:func:`~bids_fcd.postprocessing.candidates.shrink_to_first_pass`).
    Candidates come from the first pass and the FLAIR alone
    (:func:`~bids_fcd.postprocessing.candidates.candidate_regions`), so controls get the same treatment.

    Args:
        stack: (S, C, H, W) input stack. mask: (S, H, W) brain. todo: (S,) bool, the slices the first pass
            sampled. first: (S, H, W) the first pass's x̂_0.
    """
    grid = model.net.grid
    brain = mask & todo[:, None, None]
    flair_v, brain_v = from_slices(stack[:, 0]), from_slices(brain)
    with stage("candidates"):
        matched = np.where(brain_v, match_histogram(from_slices(first), flair_v, brain_v), flair_v)
        cand = from_slices(candidate_regions(flair_v, matched, brain_v, grid.spacing_mm, LOOK_FWHM_MM,
                                             sampler.look_z, sampler.look_dilate_mm))  # (S, H, W) again
    rows = np.flatnonzero(cand.reshape(cand.shape[0], -1).any(axis=1))
    log.info("second look: %d candidate voxels (%.1f %% of the brain) on %d slices", int(cand.sum()),
             100.0 * cand.sum() / max(int(brain.sum()), 1), len(rows))
    if not len(rows):
        return first
    x = torch.from_numpy(np.ascontiguousarray(stack[rows][:, : model.net.in_channels])).to(device)
    gen = torch.Generator().manual_seed(sampler.seed + 1)
    ph = inpaint_holes(epsilon_unet(model.unet, model.net), model.classifier, build_scheduler(model.net).to(device),
                       x, torch.from_numpy(cand[rows]), torch.from_numpy(mask[rows]), sampler.look_noise_level,
                       sampler.look_steps, sampler.guidance_scale, sampler.look_draws, gen, sampler.look_t1,
                       sampler.batch_size)[:, 0].cpu().numpy()
    out = first.copy()
    out[rows] = np.where(cand[rows], ph, first[rows])
    if sampler.look_shrink:
        out = from_slices(shrink_to_first_pass(flair_v, from_slices(first), from_slices(out), from_slices(cand),
                                               brain_v, grid.spacing_mm, LOOK_FWHM_MM))
    return out


def residual(real: np.ndarray, pseudo_raw: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
             histogram_matching: bool) -> tuple[np.ndarray, np.ndarray]:
    """(matched pseudo-healthy, smoothed anomaly map) from (W, H, S) real and raw pseudo-healthy volumes."""
    with stage("histmatch"):
        pseudo = match_histogram(pseudo_raw, real, mask) if histogram_matching else pseudo_raw.astype(np.float32)
        pseudo = np.where(mask, pseudo, real)
    with stage("anomaly"):
        anom = anomaly_map(real, pseudo, mask, post.smoothing_fwhm_mm, grid.spacing_mm, post.anomaly)
    return pseudo, anom


def postprocess(real: np.ndarray, pseudo_raw: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                histogram_matching: bool, reference: NormativeReference | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Cluster]]:
    """(pseudo, anomaly, z, labels, clusters) from (W, H, S) real and raw pseudo-healthy volumes."""
    pseudo, anom = residual(real, pseudo_raw, mask, grid, post, histogram_matching)
    z, labels, clusters = threshold_anomaly(anom, real, mask, grid, post, reference, pseudo)
    return pseudo, anom, z, labels, clusters


def drift_block(grid: GridConfig, post: PostConfig) -> int:
    """Drift-removal block side in grid voxels (0 = off)."""
    return int(round(post.drift_block_mm / grid.spacing_mm)) if post.drift_block_mm > 0 else 0


def smoothed(x: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig) -> np.ndarray:
    """``x`` (W, H, S) smoothed inside ``mask`` as the anomaly map is."""
    return anomaly_map(x, np.zeros_like(x), mask, post.smoothing_fwhm_mm, grid.spacing_mm, "signed")


def without_drift(x: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                  smooth: bool = False) -> np.ndarray:
    """``x`` (W, H, S), optionally smoothed as the anomaly is, minus its own low-frequency drift (``post``;
    ``drift_source == "robust"``: the coarse-to-fine estimate that a lesion cannot set)."""
    if smooth:
        x = smoothed(x, mask, grid, post)
    if post.drift_source == "robust":
        return remove_drift_robust(x, mask, drift_block(grid, post), cut=post.drift_cut_sd)
    return remove_drift(x, mask, drift_block(grid, post))


def normative_maps(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig,
                   post: PostConfig, pseudo: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The maps a normative reference holds statistics of, (W, H, S) each: ``anomaly`` (the smoothed
    residual) and ``flair`` (the FLAIR smoothed the same way), without low-frequency drift.

    ``post.drift_source == "pseudo"`` (and a matched pseudo-healthy FLAIR given): the FLAIR loses
    the drift of the pseudo-healthy FLAIR (:func:`~bids_fcd.postprocessing.normative.drift_of`), which
    holds the scan's bias and contrast but not the lesion, and the residual keeps its low
    frequencies (a large lesion *is* low-frequency). ``robust``: each map loses its own drift,
    estimated coarse to fine without the voxels that stand out above it
    (:func:`~bids_fcd.postprocessing.normative.remove_drift_robust`). ``self``: each map loses the
    block-median drift of its own voxels, which subtracts lesions larger than a block.
    With ``post.asymmetry_weight > 0`` a third map, ``asymmetry``: the ``flair`` map minus its mirror image
    (:func:`~bids_fcd.postprocessing.anomaly.asymmetry`), which a one-sided lesion raises whether or not the
    pseudo-healthy FLAIR redrew it.
    """
    if post.drift_source == "pseudo" and pseudo is not None:
        block = drift_block(grid, post)
        fl = smoothed(flair, mask, grid, post)
        maps = {"anomaly": np.where(mask, anom, 0.0).astype(np.float32),
                "flair": np.where(mask, fl - drift_of(smoothed(pseudo, mask, grid, post), mask, block),
                                  0.0).astype(np.float32)}
    else:
        maps = {"anomaly": without_drift(anom, mask, grid, post),
                "flair": without_drift(flair, mask, grid, post, smooth=True)}
    if post.asymmetry_weight > 0:
        maps["asymmetry"] = asymmetry(maps["flair"], np.asarray(mask, bool), signed=True)
    return maps


def map_weights(post: PostConfig) -> dict[str, float]:
    """Weights of the normative z-maps: the residual 1 − w, the FLAIR w (``post.flair_weight``), the FLAIR's
    asymmetry a (``post.asymmetry_weight``; absent when 0)."""
    weights = {"anomaly": 1.0 - post.flair_weight, "flair": post.flair_weight}
    if post.asymmetry_weight > 0:
        weights["asymmetry"] = post.asymmetry_weight
    return weights


def score(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
          reference: NormativeReference | None, pseudo: np.ndarray | None = None) -> np.ndarray:
    """The z-map: normative (``post.zscore == "normative"``, see :class:`PostConfig`) or within the brain."""
    if post.zscore == "normative":
        if reference is None:
            raise ValueError("a normative z-map needs a reference: use a model that ships one, pass --reference, "
                             "or choose --zscore within")
        return combined_z(normative_maps(anom, flair, mask, grid, post, pseudo), mask, reference, map_weights(post),
                          post.restandardise)
    return z_map(anom, mask)


def threshold_anomaly(anom: np.ndarray, flair: np.ndarray, mask: np.ndarray, grid: GridConfig, post: PostConfig,
                      reference: NormativeReference | None = None, pseudo: np.ndarray | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, list[Cluster]]:
    """(z, labels, clusters) of a (W, H, S) anomaly map: z-score, threshold, clusters ranked by peak z.

    ``pseudo`` is the matched pseudo-healthy FLAIR (for ``post.drift_source == "pseudo"``)."""
    with stage("score"):
        z = score(anom, flair, mask, grid, post, reference, pseudo)
    with stage("clusters"):
        aff, _ = grid_affine(grid)
        labels, clusters = find_clusters(z, aff, post.z_threshold, post.min_cluster_mm3, post.max_clusters)
    return z, labels, clusters


def analyse(model: LoadedModel, stack: np.ndarray, mask: np.ndarray, sampler: SamplerConfig, post: PostConfig,
            device: torch.device, reference: NormativeReference | None = None, compile_nets: bool = False) -> Analysis:
    """The whole method on one slice stack (S, 2, H, W) with brain mask (S, H, W).

    With ``sampler.slices == "paper"`` everything after sampling (histogram matching, anomaly,
    z, clusters, lobe probabilities) is restricted to the band: outside it the pseudo-healthy FLAIR
    is the real one and the anomaly and z are exactly 0.
    """
    grid = model.net.grid
    ph = synthesise(model, stack, mask, sampler, device, compile_nets)
    band = slice_band(grid, stack.shape[0], sampler.slices)
    real, mask_v = from_slices(stack[:, 0]), from_slices(mask)
    mask_v = mask_v & band[None, None, :]
    pseudo_raw = from_slices(ph)
    pseudo, anom, z, labels, clusters = postprocess(real, pseudo_raw, mask_v, grid, post, sampler.histogram_matching,
                                                    reference)
    if not band.all():
        z = np.where(mask_v, z, 0.0).astype(np.float32)
    with stage("classifier"):
        probs = class_probabilities(model.classifier, torch.from_numpy(stack[:, :1]).to(device),
                                    sampler.batch_size).cpu().numpy()
    frac = mask.reshape(mask.shape[0], -1).mean(axis=1) * band
    return Analysis(pseudo, anom, z, labels, clusters, participant_lobe_probabilities(probs, frac))
