"""Where small lesions are lost: a per-lesion breakdown of the z-map and scoring variants against it.

Three parts, on the validation and the test cohort of a benchmark directory, from its cached pseudo-healthy
volumes and its reference controls (leave-one-out calibration for ``--budget`` false-positive clusters per
control, as ``bids-fcd reference`` does):

1. per lesion: its volume, its depth below the brain mask's edge, the unsmoothed residual inside it against the
   mean |residual| elsewhere, the smoothed residual against the reference's median μ and robust SD σ there, and
   the highest residual z, FLAIR z and combined z inside it;
2. where false positives lie: the share of the controls' clusters (z above the calibrated threshold, any size)
   whose peak is on the outermost voxel layer of the brain mask;
3. scoring variants, each calibrated on the same controls: the anomaly's smoothing, the reference SD's
   smoothing, and an edge margin (z set to 0 within ``m`` voxels of the participant's brain-mask edge).

    python benchmarks/noise_floor.py BENCH_OUT VALIDATION_DIR [--model phantom-default] [--preset fast]
        [--budget 0.25] [--json OUT.json]

BENCH_OUT and VALIDATION_DIR as for ``rescore.py`` (whose loader this uses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from rescore import load_cohorts
from scipy import ndimage

from bids_fcd.bids.participants import is_control
from bids_fcd.config import SAMPLER_PRESETS, PostConfig
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.postprocessing.normative import (
    ReferenceParams,
    build_reference,
    combined_z,
    leave_one_out_combined,
    z_parts,
)
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights, normative_maps
from bids_fcd.workflows.benchmark import evaluate_variant
from bids_fcd.workflows.cohort import anomaly_maps

log = logging.getLogger("noise_floor")

#: name: (PostConfig fields over the model's, ReferenceParams fields, edge margin in voxels).
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {
    "default": ({}, {}, 0),
    "smoothing 2 mm": ({"smoothing_fwhm_mm": 2.0}, {}, 0),
    "no smoothing": ({"smoothing_fwhm_mm": 0.0}, {}, 0),
    "reference SD smoothed 2 vox": ({}, {"sd_smoothing_vox": 2.0}, 0),
    "edge margin 1 vox": ({}, {}, 1),
    "edge margin 2 vox": ({}, {}, 2),
    "smoothing 2 mm + edge margin 1 vox": ({"smoothing_fwhm_mm": 2.0}, {}, 1),
}


def core(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` (W, H, S) without its outer ``margin`` voxel layers (26-neighbourhood erosion)."""
    if margin <= 0:
        return np.asarray(mask, bool)
    return ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool), iterations=margin)


def breakdown(subs: list, an: dict, maps: dict, ref: Any, post: PostConfig, zs: dict, spacing: float) -> list[dict]:
    """Part 1: one row per lesion (see the module docstring)."""
    rows = []
    for i, s in enumerate(subs):
        if s.roi is None or not s.roi.any():
            continue
        roi = s.roi & s.mask
        pseudo, anom = an[s.label]
        res = s.flair - pseudo
        depth = ndimage.distance_transform_edt(s.mask)[roi] * spacing
        z = z_parts({k: maps[k][i] for k in ("anomaly", "flair")}, s.mask, ref, ("anomaly", "flair"))
        mu, sd = ref.stats["anomaly"]
        rows.append({"label": s.label, "lesion_mm3": float(roi.sum()) * spacing ** 3,
                     "depth_mm_min": float(depth.min()), "depth_mm_median": float(np.median(depth)),
                     "residual_inside": float(res[roi].mean()),
                     "abs_residual_elsewhere": float(np.abs(res[s.mask & ~roi]).mean()),
                     "smoothed_residual_inside": float(anom[roi].mean()), "reference_median_inside": float(mu[roi].mean()),
                     "reference_sd_inside": float(sd[roi].mean()), "max_z_residual": float(z["anomaly"][roi].max()),
                     "max_z_flair": float(z["flair"][roi].max()), "max_z_combined": float(zs[s.label][roi].max())})
    return rows


def edge_share(z_maps: list[np.ndarray], masks: list[np.ndarray], thr: float) -> dict[str, float]:
    """Part 2: clusters of z > thr (any size) over the controls, and the share whose peak is on the mask's edge."""
    n = edge = 0
    for z, m in zip(z_maps, masks, strict=True):
        lab, k = ndimage.label(z > thr, structure=np.ones((3, 3, 3), bool))
        if k == 0:
            continue
        rim = np.asarray(m, bool) & ~core(m, 1)
        peaks = ndimage.maximum_position(z, lab, range(1, k + 1))
        n += k
        edge += sum(bool(rim[p]) for p in peaks)
    return {"clusters": n, "share_peak_on_edge": edge / n if n else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--preset", default="fast", choices=sorted(SAMPLER_PRESETS))
    ap.add_argument("--budget", type=float, default=0.25, help="false-positive clusters per control")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, sampler, cohorts, refs, raw, raw_r = load_cohorts(args.bench, args.validation, args.model, args.preset)
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    masks = [s.mask for s in refs]
    post0 = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    out: dict[str, Any] = {"variants": {}}
    # the reference and its leave-one-out z-maps depend on the maps and the reference settings, not the margin:
    # variants that differ only in the margin share them
    built: dict[str, tuple[Any, list[np.ndarray]]] = {}
    for name in args.variants.split(","):
        over, ref_over, margin = VARIANTS[name]
        post, params = dataclasses.replace(post0, **over), ReferenceParams(**ref_over)
        weights = map_weights(post)
        key = json.dumps([over, ref_over], sort_keys=True)
        if key not in built:
            r_an = anomaly_maps(refs, raw_r, model, post, sampler.histogram_matching)
            per = [normative_maps(r_an[s.label][1], s.flair, s.mask, grid, post, r_an[s.label][0]) for s in refs]
            r_maps = {k: [p[k] for p in per] for k in per[0]}
            built[key] = (build_reference(r_maps, masks, params),
                          leave_one_out_combined(r_maps, masks, weights, post.restandardise, params))
        ref, loo_z = built[key]
        loo = [np.where(core(m, margin), z, 0.0) for z, m in zip(loo_z, masks, strict=True)]
        chosen = choose(fp_table(loo, aff), args.budget)
        cal = dataclasses.replace(post, z_threshold=chosen["z_threshold"], min_cluster_mm3=chosen["min_cluster_mm3"])
        row: dict[str, Any] = {"z_threshold": cal.z_threshold, "min_cluster_mm3": cal.min_cluster_mm3,
                               "loo_fp_clusters_per_control": chosen["fp_clusters_per_control"]}
        if name == "default":
            out["reference_controls_edge"] = edge_share(loo, masks, cal.z_threshold)
        for cname, subs in cohorts.items():
            an = anomaly_maps(subs, {s.label: raw[f"{cname}/{s.label}"] for s in subs}, model, post,
                              sampler.histogram_matching)
            per_t = [normative_maps(an[s.label][1], s.flair, s.mask, grid, post, an[s.label][0]) for s in subs]
            zs = {s.label: np.where(core(s.mask, margin), combined_z(p, s.mask, ref, weights, post.restandardise),
                                    0.0).astype(np.float32) for s, p in zip(subs, per_t, strict=True)}
            summ = evaluate_variant(subs, zs, aff, cal, 0.0)
            row[cname] = {k: summ[k] for k in ("subject_sensitivity", "fp_clusters_per_control", "R@10", "dice_z")}
            row[cname]["missed"] = [r["label"] for r in summ["per_subject"] if r["detected"] is False]
            row[cname]["control_max_z"] = sorted(float(zs[s.label].max()) for s in subs if is_control(s.group))
            if name == "default":
                t_maps = {k: [p[k] for p in per_t] for k in per_t[0]}
                out[f"{cname}_lesions"] = breakdown(subs, an, t_maps, ref, post, zs, grid.spacing_mm)
                ctrl = [s for s in subs if is_control(s.group)]
                out[f"{cname}_controls_edge"] = edge_share([zs[s.label] for s in ctrl], [s.mask for s in ctrl],
                                                           cal.z_threshold)
            print(f"{cname:10s} | {name:28s} sens {row[cname]['subject_sensitivity']:.3f}  FP/HC "
                  f"{row[cname]['fp_clusters_per_control']:.3f}  R@10 {row[cname]['R@10']:.3f}  "
                  f"z>{cal.z_threshold:g} ≥{cal.min_cluster_mm3:g} mm³  missed {row[cname]['missed']}", flush=True)
        out["variants"][name] = row
    for cname in cohorts:
        for r in out.get(f"{cname}_lesions", []):
            print(f"{cname:10s} | sub-{r['label']} {r['lesion_mm3']:6.0f} mm³ depth ≥{r['depth_mm_min']:4.1f} mm | "
                  f"residual {r['residual_inside']:.3f} vs |elsewhere| {r['abs_residual_elsewhere']:.3f} | smoothed "
                  f"{r['smoothed_residual_inside']:.3f} μ {r['reference_median_inside']:.3f} σ {r['reference_sd_inside']:.3f}"
                  f" | max z residual {r['max_z_residual']:.1f} FLAIR {r['max_z_flair']:.1f} combined {r['max_z_combined']:.1f}")
        print(f"{cname:10s} | controls' clusters on the mask edge: {out.get(f'{cname}_controls_edge')}")
    print(f"reference LOO | controls' clusters on the mask edge: {out.get('reference_controls_edge')}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
