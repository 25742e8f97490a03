"""Cluster statistics and map combinations for the combined z-map: TFCE, and the larger of the two z's.

Large lesions of the hidden cohort lie over a wide area at moderate z; TFCE (Smith & Nichols 2009) scores each
voxel by the extent and height of the clusters it belongs to at every level h, so such a lesion could outrank a
control's small high peak. Each variant below is calibrated on the reference controls' leave-one-out z-maps for
``--budget`` false-positive clusters per control (clusters of TFCE > T with a minimum size, as the z rule is), and
read on each cohort with the top cluster ranked by peak TFCE. The ``z`` row is the method's own rule and
reproduces the committed figures. ``max`` replaces the standardised sum (z_residual + z_FLAIR)/√2 by
max(z_residual, z_FLAIR), so a lesion the pseudo-healthy FLAIR redraws (z_residual ≈ 0) keeps its FLAIR z.

    python benchmarks/tfce.py COHORT [COHORT ...] --reference REF [--cache DIR]
        [--variants z,max,0:0.5:2,2:0.5:2] [--budget 0.25] [--json OUT.json]

COHORT and REF as for ``benchmarks/capacity.py`` (``bids/`` and ``work/``; REF's controls form the reference);
pseudo-healthy volumes come from ``--cache`` (the shipped model, fast preset; sampled when missing). A variant
``h0:E:H`` is TFCE of max(z − h0, 0) with extent exponent E and height exponent H, dh = 0.1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nilearn.mass_univariate._utils import calculate_tfce  # nilearn's TFCE (pinned nilearn; private helper)

from bids_fcd.config import SAMPLER_PRESETS, SamplerConfig
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.normative import ReferenceParams, build_reference, combined_z, leave_one_out_combined
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights, resolve_sampler
from bids_fcd.workflows.cohort import anomaly_maps, controls_of, load_cohort, pseudo_volumes
from bids_fcd.workflows.reference import control_maps

log = logging.getLogger("tfce")
DH = 0.1


def tfce(z: np.ndarray, mask: np.ndarray, h0: float, e: float, h: float) -> np.ndarray:
    """(W, H, S) TFCE of max(z − h0, 0) inside ``mask`` (× dh, the paper's integral); 0 where nothing exceeds h0."""
    x = np.where(mask, np.clip(z - h0, 0, None), 0).astype(np.float64)
    if x.max() <= 0:
        return np.zeros(z.shape, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn warns on few or many steps
        t = calculate_tfce(x[..., None], np.ones((3, 3, 3), bool), E=e, H=h, dh=DH, two_sided_test=False)[..., 0]
    return (t * DH).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cohorts", type=Path, nargs="+")
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--variants", default="z,max,0:0.5:2,2:0.5:2,3:0.5:2,2:1:2,0:0.5:1")
    ap.add_argument("--budget", type=float, default=0.25)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cpu = torch.device("cpu")
    model = load_model("phantom-default", cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"]), model)  # type: ignore[arg-type]
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    post = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    weights = map_weights(post)
    refs = load_cohort(args.reference / "bids", args.reference / "work", model, controls_of(args.reference / "bids"))
    cache = args.cache or args.reference / "cache"
    raw_r, _ = pseudo_volumes(refs, model, sampler, cpu, cache)
    r_maps = control_maps(refs, anomaly_maps(refs, raw_r, model, post, sampler.histogram_matching), grid, post)
    masks = [s.mask for s in refs]
    # (the method's combined z, z_residual, z_FLAIR) per control (leave-one-out) and per participant
    singles = ({"anomaly": 1.0}, {"flair": 1.0})
    ctrl = list(zip(*(leave_one_out_combined(r_maps, masks, w, post.restandardise, ReferenceParams())
                      for w in (weights, *singles)), strict=True))
    ref = build_reference(r_maps, masks, ReferenceParams())
    cohorts: dict[str, list[tuple[Any, tuple[np.ndarray, ...]]]] = {}
    for path in args.cohorts:
        subs = load_cohort(path / "bids", path / "work", model)
        raw, _ = pseudo_volumes(subs, model, sampler, cpu, cache)
        maps = control_maps(subs, anomaly_maps(subs, raw, model, post, sampler.histogram_matching), grid, post)
        cohorts[path.name] = [(s, tuple(combined_z({k: v[i] for k, v in maps.items()}, s.mask, ref, w,
                                                   post.restandardise) for w in (weights, *singles)))
                              for i, s in enumerate(subs)]

    def z_of(zs: tuple[np.ndarray, ...], variant: str) -> np.ndarray:
        """The z-map a variant clusters (TFCE variants start from the method's z)."""
        return np.maximum(zs[1], zs[2]) if variant == "max" else zs[0]

    ctrl_z = [zs[0] for zs in ctrl]
    results: dict[str, Any] = {}
    for variant in args.variants.split(","):
        if variant in ("z", "max"):
            stat = [np.where(m, z_of(zs, variant), 0).astype(np.float32) for zs, m in zip(ctrl, masks, strict=True)]
            table = fp_table(stat, aff)
        else:
            h0, e, h = (float(v) for v in variant.split(":"))
            stat = [tfce(z, m, h0, e, h) for z, m in zip(ctrl_z, masks, strict=True)]
            top = np.array([s.max() for s in stat])
            thr_grid = np.unique(np.round(np.geomspace(max(np.percentile(top, 5), 1e-3), top.max() * 1.2, 80), 4))
            table = fp_table(stat, aff, z_grid=thr_grid, size_grid=(0.0, 50.0, 100.0, 150.0))
        chosen = choose(table, args.budget)
        thr, size = chosen["z_threshold"], chosen["min_cluster_mm3"]
        for name, subs in cohorts.items():
            rows, peak_over_thr = [], {}
            for s, zs in subs:
                z = z_of(zs, variant)
                t = np.where(s.mask, z, 0).astype(np.float32) if variant in ("z", "max") else tfce(z, s.mask, h0, e, h)
                lab, cl = find_clusters(t, aff, thr, size, post.max_clusters)
                row = score_subject(t, lab, [np.array(c.center_mm) for c in cl], s.mask, s.roi, aff)
                row.update(group=s.group)
                rows.append(row)
                if s.roi is not None and s.roi.any():
                    peak_over_thr[s.label] = round(float(t[s.roi].max() / thr), 3)
            summ = cohort_summary(rows, thr)
            key = f"{name} | {variant}"
            results[key] = {"subject_sensitivity": summ["subject_sensitivity"],
                            "fp_clusters_per_control": summ["fp_clusters_per_control"], "R@10": summ["R@10"],
                            "threshold": thr, "min_cluster_mm3": size, "lesion_peak_over_threshold": peak_over_thr}
            log.info("%-28s sens %.3f  FP/HC %.3f  R@10 %.3f  thr %.4g  ≥%g mm³", key, summ["subject_sensitivity"],
                     summ["fp_clusters_per_control"], summ["R@10"], thr, size)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
