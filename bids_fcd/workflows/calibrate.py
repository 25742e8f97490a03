"""Calibrate a model's cluster-forming settings on validation participants.

For each candidate (z threshold, minimum cluster size), clusters are formed on the validation
anomaly maps; the chosen setting maximises subject-level sensitivity subject to at most
``max_fp_per_control`` clusters per control (ties: fewer false positives, then the lower
threshold). The choice is written into the model's config.json (``post``) and SHA256SUMS is
renewed, so the participant level uses it by default. Validation participants must not overlap
the training or test participants.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.config import PostConfig, SamplerConfig, to_dict
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.nets.checkpoint import WEIGHT_FILES, load_model, sha256_file
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import threshold_anomaly
from bids_fcd.workflows.benchmark import Subject, anomaly_maps, load_cohort, pseudo_volumes

log = logging.getLogger(__name__)

Z_GRID = (1.65, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0)
SIZE_GRID = (50.0, 150.0, 300.0, 600.0)
FWHM_GRID = (4.0, 8.0)


def sweep_post(subjects: list[Subject], maps: dict[str, np.ndarray], grid_cfg: Any, base: PostConfig,
               max_fp_per_control: float) -> tuple[PostConfig, list[dict[str, Any]]]:
    """Evaluate every (z, size) pair; return the chosen PostConfig and the table of all pairs."""
    aff, _ = grid_affine(grid_cfg)
    table = []
    for z_thr, size in itertools.product(Z_GRID, SIZE_GRID):
        post = dataclasses.replace(base, z_threshold=z_thr, min_cluster_mm3=size)
        rows = []
        for sub in subjects:
            _, labels, clusters = threshold_anomaly(maps[sub.label], sub.mask, grid_cfg, post)
            r = score_subject(maps[sub.label], labels, [np.array(c.center_mm) for c in clusters], sub.mask,
                              sub.roi, aff)
            r["group"] = sub.group
            rows.append(r)
        s = cohort_summary(rows, z_thr)
        table.append({"z_threshold": z_thr, "min_cluster_mm3": size, "sensitivity": s["subject_sensitivity"] or 0.0,
                      "fp_clusters_per_control": s["fp_clusters_per_control"] or 0.0, "R@10": s["R@10"]})
    best = pick(table, max_fp_per_control)
    return dataclasses.replace(base, z_threshold=best["z_threshold"], min_cluster_mm3=best["min_cluster_mm3"]), table


def pick(table: list[dict[str, Any]], max_fp_per_control: float) -> dict[str, Any]:
    """Highest sensitivity within the false-positive bound; ties: fewer FP, then the lower threshold."""
    ok = [t for t in table if t["fp_clusters_per_control"] <= max_fp_per_control] or table
    return max(ok, key=lambda t: (t["sensitivity"], -t["fp_clusters_per_control"], -t["z_threshold"]))


def write_post(model_dir: Path, post: PostConfig, record: dict[str, Any]) -> None:
    """Store ``post`` (and how it was chosen) in config.json and renew SHA256SUMS."""
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["post"] = to_dict(post)
    cfg.setdefault("meta", {})["calibration"] = record
    (model_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    lines = [f"{sha256_file(model_dir / f)}  {f}" for f in ("config.json", *WEIGHT_FILES)]
    (model_dir / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def calibrate(model_dir: Path, bids: Path, work: Path, sampler: SamplerConfig, max_fp_per_control: float = 1.0,
              labels: list[str] | None = None) -> PostConfig:
    """Choose and store the model's cluster settings on the validation participants of ``bids``."""
    device = torch.device("cpu")
    model = load_model(str(model_dir), device)
    subjects = load_cohort(bids, work, model, labels)
    raw, _ = pseudo_volumes(subjects, model, sampler, device)
    table: list[dict[str, Any]] = []
    for fwhm in FWHM_GRID:
        base = dataclasses.replace(model.post, smoothing_fwhm_mm=fwhm)
        maps = anomaly_maps(subjects, raw, model, base, sampler.histogram_matching)
        table += [dict(t, smoothing_fwhm_mm=fwhm) for t in sweep_post(subjects, maps, model.net.grid, base,
                                                                        max_fp_per_control)[1]]
    chosen = pick(table, max_fp_per_control)
    post = dataclasses.replace(model.post, smoothing_fwhm_mm=chosen["smoothing_fwhm_mm"],
                               z_threshold=chosen["z_threshold"], min_cluster_mm3=chosen["min_cluster_mm3"])
    record = {"participants": [s.label for s in subjects], "dataset": str(bids), "sampler": to_dict(sampler),
              "max_fp_per_control": max_fp_per_control, "chosen": chosen}
    write_post(model_dir, post, record)
    log.info("calibrated: z > %g, >= %g mm3 (validation sensitivity %.2f, FP/control %.2f)", post.z_threshold,
             post.min_cluster_mm3, chosen["sensitivity"], chosen["fp_clusters_per_control"])
    (model_dir / "calibration.json").write_text(json.dumps({"record": record, "table": table}, indent=2) + "\n")
    return post
