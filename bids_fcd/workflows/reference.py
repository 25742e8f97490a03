"""``bids-fcd reference``: build a normative reference on the model grid from a dataset's controls.

The reference's file format (load, save, file names, its place inside a model and the model's
checksums of it) is :mod:`bids_fcd.nets.reference`; this module builds one (sampling, the
controls' maps, the leave-one-out calibration) and stores it beside or inside a model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.commands import ReferenceConfig, config_file
from bids_fcd.config import PostConfig, SamplerConfig, to_dict
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.interrupts import deferred
from bids_fcd.io import write_json
from bids_fcd.nets.checkpoint import LoadedModel, load_model, weight_sums, write_sums
from bids_fcd.nets.reference import model_holding, save_reference
from bids_fcd.postprocessing.normative import (
    NormativeReference,
    ReferenceParams,
    build_reference,
    leave_one_out_combined,
)
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.resources import resolve_device
from bids_fcd.workflows.analysis import map_weights, normative_maps, resolve_sampler
from bids_fcd.workflows.cohort import Subject, anomaly_maps, controls_of, load_cohort, pseudo_volumes
from bids_fcd.workflows.paths import work_dir_for

log = logging.getLogger(__name__)

def calibrate_reference(maps: dict[str, list[np.ndarray]], masks: list[np.ndarray], base: PostConfig,
                        affine: np.ndarray, params: ReferenceParams,
                        max_fp_per_control: float) -> tuple[PostConfig, dict[str, Any]]:
    """Leave-one-out calibration of (z threshold, minimum size) on the reference's own controls.

    ``maps`` are the controls' :func:`normative_maps`; each control is scored as a participant would
    be (``base``'s weights and re-standardisation) against a reference of the others.
    """
    z_maps = leave_one_out_combined(maps, masks, map_weights(base), base.restandardise, params)
    table = fp_table(z_maps, affine)
    chosen = choose(table, max_fp_per_control)
    post = dataclasses.replace(base, z_threshold=chosen["z_threshold"], min_cluster_mm3=chosen["min_cluster_mm3"])
    return post, {"method": "leave-one-out over the reference controls", "max_fp_per_control": max_fp_per_control,
                  "chosen": chosen, "table": table}


def control_maps(subjects: list[Subject], anoms: dict[str, tuple[np.ndarray, np.ndarray]], grid: Any,
                 post: PostConfig) -> dict[str, list[np.ndarray]]:
    """{map name: one (W, H, S) map per control} of :func:`normative_maps`; ``anoms[label]`` is
    (matched pseudo-healthy, anomaly) from :func:`~bids_fcd.workflows.cohort.anomaly_maps`."""
    per = [normative_maps(anoms[s.label][1], s.flair, s.mask, grid, post, anoms[s.label][0]) for s in subjects]
    return {k: [p[k] for p in per] for k in per[0]}


def reference_from_cohort(subjects: list[Subject], raw: dict[str, np.ndarray], model: LoadedModel,
                          sampler: SamplerConfig, post: PostConfig, max_fp_per_control: float,
                          params: ReferenceParams | None = None) -> tuple[NormativeReference, PostConfig, dict[str, Any]]:
    """Reference (anomaly and FLAIR statistics) + LOO-calibrated cluster setting + its record."""
    params = params or ReferenceParams()
    anoms = anomaly_maps(subjects, raw, model, post, sampler.histogram_matching)
    masks = [s.mask for s in subjects]
    maps = control_maps(subjects, anoms, model.net.grid, post)
    ref = build_reference(maps, masks, params)
    aff, _ = grid_affine(model.net.grid)
    cal_post, calib = calibrate_reference(maps, masks, post, aff, params, max_fp_per_control)
    ages = [float(s.age) for s in subjects if _is_number(s.age)]
    meta = {"participants": [s.label for s in subjects], "age_range": [min(ages), max(ages)] if ages else None,
            "sampler": to_dict(sampler), "post": to_dict(cal_post), "calibration": calib,
            "network_sha256": weight_sums(model.path), "model": model.name,
            "acquisitions": acquisition_counts(subjects)}
    return ref, cal_post, meta


def acquisition_counts(subjects: list[Subject]) -> dict[str, int]:
    """How many controls of each FLAIR acquisition (``3D``, ``2D`` thick-slice) the reference holds."""
    return dict(sorted(Counter(s.acquisition for s in subjects).items(), reverse=True))


def _is_number(x: object) -> bool:
    try:
        float(str(x))
    except ValueError:
        return False
    return True


def run_reference(cfg: ReferenceConfig) -> int:
    """``bids-fcd reference BIDS_DIR OUT_DIR``: a normative reference from a dataset's controls; ``cfg``
    is written to ``OUT_DIR/reference_config.json`` beside it."""
    bids, out = Path(cfg.bids_dir), Path(cfg.out_dir)
    device = resolve_device(cfg.device)  # --device cuda without a GPU fails here, as at the participant level
    labels = list(cfg.participant_label) or controls_of(bids)
    need = ReferenceParams().min_controls + 1  # leave-one-out calibration builds references of N − 1
    if len(labels) < need:
        log.error("%s: found %d controls (participants.tsv group = hc, or --participant-label); a reference "
                  "needs at least %d (20 or more recommended)", bids, len(labels), need)
        return 1
    if len(labels) < 20:
        log.warning("building a reference from %d controls; 20 or more are recommended", len(labels))
    model = load_model(cfg.model, device, cfg.env.models_dir)
    sampler = resolve_sampler(cfg.sampler, model)
    post = dataclasses.replace(model.post, zscore="normative", asymmetry_weight=cfg.asymmetry_weight)
    work = work_dir_for(str(out), cfg.work_dir, cfg.env.work_dir)
    subjects = load_cohort(bids, work, model, labels)
    raw, secs = pseudo_volumes(subjects, model, sampler, device, compile_nets=cfg.env.compile_nets)
    ref, cal_post, meta = reference_from_cohort(subjects, raw, model, sampler, post, cfg.max_fp_per_control)
    aff, _ = grid_affine(model.net.grid)
    with deferred():  # a stop signal waits until the reference, its record and the model's sums are written
        save_reference(out, ref, aff, {**meta, "dataset": bids.name, "seconds_sampling": round(secs, 1)})
        write_json(out / config_file("reference"), {"run": to_dict(dataclasses.replace(cfg, sampler=sampler)),
                                                    "model": {"name": model.name, "sha256": model.sha256}})
        host = model_holding(out)
        if host is not None:
            write_sums(host)
            log.info("reference stored inside the model %s; its SHA256SUMS renewed", host)
    log.info("reference: %d controls written to %s; calibrated clusters z > %g, >= %g mm3 (%.2f FP per control, "
             "leave-one-out)", ref.n, out, cal_post.z_threshold, cal_post.min_cluster_mm3,
             meta["calibration"]["chosen"]["fp_clusters_per_control"])
    return 0
