"""A cohort on the model grid: preprocessing (cached), pseudo-healthy volumes and anomaly maps for
many participants at once (shared by the reference builder, calibration and the benchmark)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from bids_fcd.bids.layout import find_inputs, open_layout
from bids_fcd.bids.participants import is_control, read_participants
from bids_fcd.config import PostConfig, PreprocConfig, SamplerConfig, to_dict
from bids_fcd.io import write_npy
from bids_fcd.nets.checkpoint import LoadedModel, weight_sums
from bids_fcd.preprocessing.grid import from_slices
from bids_fcd.preprocessing.pipeline import preprocess
from bids_fcd.progress import progress_bar
from bids_fcd.workflows.analysis import residual, synthesise

log = logging.getLogger(__name__)


@dataclass
class Subject:
    """One participant on the model grid: volumes are (W, H, S)."""

    label: str
    group: str
    lobe: str
    stack: np.ndarray  # (S, 2, H, W)
    mask_s: np.ndarray  # (S, H, W)
    flair: np.ndarray
    mask: np.ndarray
    roi: np.ndarray | None
    age: str = "n/a"
    #: ``2D`` for a thick-slice FLAIR (largest voxel side ≥ 3 mm), else ``3D``.
    acquisition: str = "3D"


def load_cohort(bids: Path, work: Path, model: LoadedModel, labels: list[str] | None = None,
                preproc: PreprocConfig | None = None) -> list[Subject]:
    """Preprocess (cached) the participants (default: all) of a cohort onto the model's grid."""
    layout = open_layout(bids, validate=False)
    rows = read_participants(bids)
    out = []
    for label in progress_bar(labels or sorted(layout.get_subjects()), desc="preprocessing the cohort",
                              unit="participant"):
        inp = find_inputs(layout, label, None, {})
        pre = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, model.net.grid, preproc or PreprocConfig())
        stack, mask_s = pre.slices()
        roi = pre.roi_slices()
        row = rows.get(label, {})
        acq = "2D" if max(nib.load(inp.flair).header.get_zooms()[:3]) >= 3.0 else "3D"
        out.append(Subject(label, row.get("group", "n/a"), row.get("lobe", "n/a"), stack, mask_s,
                           from_slices(stack[:, 0]), from_slices(mask_s),
                           from_slices(roi) if roi is not None else None, row.get("age_scan", "n/a"), acq))
    return out


def controls_of(bids: Path) -> list[str]:
    """Labels of participants.tsv rows whose ``group`` is a control code (:data:`CONTROL_GROUPS`), sorted."""
    rows = read_participants(bids)
    return sorted(k for k, r in rows.items() if is_control(r.get("group")))


def volume_key(model: LoadedModel, sampler: SamplerConfig, sub: Subject) -> str:
    """Cache key of one pseudo-healthy volume: the networks (weights and their config, not the model's
    reference or calibrated cluster setting, which do not change the volume), every sampler setting,
    the input stack."""
    nets = [weight_sums(model.path), to_dict(model.net)]
    settings = to_dict(sampler)
    if sampler.second_look == "off":  # its settings change nothing then (and keys stay those of earlier caches)
        settings = {k: v for k, v in settings.items() if k != "second_look" and not k.startswith("look_")}
    if sampler.t1_condition == "native":  # likewise: keys stay those of caches made before the setting existed
        settings.pop("t1_condition")
    h = hashlib.sha256(json.dumps([nets, settings], sort_keys=True).encode())
    h.update(np.ascontiguousarray(sub.stack).tobytes())
    return h.hexdigest()[:24]


def pseudo_volumes(subjects: list[Subject], model: LoadedModel, sampler: SamplerConfig, device: torch.device,
                   cache: Path | None = None, compile_nets: bool = False) -> tuple[dict[str, np.ndarray], float]:
    """Raw pseudo-healthy FLAIR volumes (W, H, S) per participant, and the seconds taken to sample.

    With ``cache``, volumes are read from / written to ``cache/<key>.npy`` (:func:`volume_key`), so a
    benchmark re-run does not sample again; cached volumes count no time.
    """
    t0 = time.time()
    raw = {}
    for sub in progress_bar(subjects, desc="pseudo-healthy volumes", unit="participant"):
        path = cache / f"{volume_key(model, sampler, sub)}.npy" if cache is not None else None
        if path is not None and path.exists():
            raw[sub.label] = np.load(path)
            continue
        raw[sub.label] = from_slices(synthesise(model, sub.stack, sub.mask_s, sampler, device, compile_nets))
        if path is not None:
            write_npy(path, raw[sub.label])
        log.info("sub-%s: pseudo-healthy (%s, s=%g, L=%d, K=%s, D=%d) after %.0f s", sub.label, sampler.encoding,
                 sampler.guidance_scale, sampler.noise_level, sampler.steps, sampler.draws, time.time() - t0)
    return raw, time.time() - t0


def anomaly_maps(subjects: list[Subject], raw: dict[str, np.ndarray], model: LoadedModel, post: PostConfig,
                 histogram_matching: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(matched pseudo-healthy FLAIR, smoothed anomaly map), each (W, H, S), from raw pseudo-healthy volumes."""
    return {sub.label: residual(sub.flair, raw[sub.label], sub.mask, model.net.grid, post, histogram_matching)
            for sub in subjects}
