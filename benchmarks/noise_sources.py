"""What sets the controls' noise floor that the small lesions sit under, rescored on cached volumes.

Three questions, each answered on the cohorts of ``benchmarks/build_fine_model.sh`` (the test cohort and its
reference controls in BENCH_OUT, the validation cohort, optionally the small-lesion cohort) with the cached
pseudo-healthy volumes, every row calibrated leave-one-out on its reference controls for ≤ ``--budget``
false-positive clusters per control, as ``bids-fcd reference`` does:

1. *Reference size*: the reference built from random subsets of the controls (``--subsets``, ``--repeats``
   draws each, numpy ``default_rng(repeat)``), and its SD map smoothed more or less (``sd_smoothing_vox``).
2. *Local re-standardisation*: each z-map divided by its own local RMS (Gaussian window σ, voxels with
   |z| ≥ cut left out so a lesion does not set it, relative to the brain's median, never below 1), so a
   control's noisier neighbourhoods need a larger deviation.
3. *Per lesion* (≤ 300 mm³): the highest combined z and its two parts, the residual's and the FLAIR's own
   normative z, and where the controls' clusters lie (depth under the brain's surface, local RMS around them).

    python benchmarks/noise_sources.py BENCH_OUT VALIDATION_DIR [--small SMALL_DIR] [--model M]
        [--draws 4] [--subsets 10,20,30] [--repeats 2] [--smoothing-fwhm MM] [--json OUT.json]

SMALL_DIR holds ``bids/`` and ``work/`` of ``bids-fcd phantom --lesions small`` (its volumes are sampled into
BENCH_OUT/cache when missing). Prints one line per row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from benchmarks.rescore import cohort_maps, load_cohorts
from bids_fcd.config import PostConfig
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.normative import (
    ReferenceParams,
    build_reference,
    combined_z,
    leave_one_out_combined,
    z_parts,
)
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights
from bids_fcd.workflows.benchmark import evaluate_variant
from bids_fcd.workflows.cohort import Subject, load_cohort, pseudo_volumes

log = logging.getLogger("noise_sources")
Maps = dict[str, np.ndarray]
Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]


def local_restandardise(sigma_vox: float, cut: float) -> Transform:
    """z / max(1, s/median(s)), s the Gaussian-weighted RMS of z over brain voxels with |z| < ``cut``."""
    def apply(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = np.asarray(mask, bool)
        w = (m & (np.abs(z) < cut)).astype(np.float32)
        s = np.sqrt(ndimage.gaussian_filter(w * z * z, sigma_vox) / np.maximum(ndimage.gaussian_filter(w, sigma_vox),
                                                                                 1e-3))
        s = np.maximum(s / max(float(np.median(s[m])), 1e-6), 1.0)
        return np.where(m, z / s, 0.0).astype(np.float32)
    return apply


def identity(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return z


def evaluate(ref_maps: list[Maps], ref_masks: list[np.ndarray], cohorts: dict[str, list[tuple[Subject, Maps]]],
             post: PostConfig, aff: np.ndarray, budget: float, params: ReferenceParams | None = None,
             transform: Transform = identity, loo: list[np.ndarray] | None = None) -> dict[str, object]:
    """Calibrate on the controls (leave-one-out; ``loo``: their z-maps, if already made), then score every
    cohort with :func:`~bids_fcd.workflows.benchmark.evaluate_variant`; one row."""
    weights, rs = map_weights(post), post.restandardise
    stacked = {k: [m[k] for m in ref_maps] for k in ref_maps[0]}
    if loo is None:
        loo = leave_one_out_combined(stacked, ref_masks, weights, rs, params)
    ctrl = [transform(z, m) for z, m in zip(loo, ref_masks, strict=True)]
    ref = build_reference(stacked, ref_masks, params)
    chosen = choose(fp_table(ctrl, aff), budget)
    cal = dataclasses.replace(post, z_threshold=float(chosen["z_threshold"]),
                              min_cluster_mm3=float(chosen["min_cluster_mm3"]))
    row: dict[str, object] = {"n_controls": len(ref_masks), "z_threshold": cal.z_threshold,
                              "min_cluster_mm3": cal.min_cluster_mm3}
    for name, subs in cohorts.items():
        zs = {s.label: transform(combined_z(maps, s.mask, ref, weights, rs), s.mask) for s, maps in subs}
        summ = evaluate_variant([s for s, _ in subs], zs, aff, cal, 0.0)
        per = summ["per_subject"]
        found = [r["label"] for r in per if r["detected"]]
        row[name] = {"found": len(found), "n_fcd": sum(1 for r in per if r["detected"] is not None),
                     "fp_clusters_per_control": summ["fp_clusters_per_control"], "R@10": summ["R@10"],
                     "detected": found}
    return row


def describe(label: str, row: dict[str, object], cohorts: list[str]) -> str:
    cells = []
    for name in cohorts:
        c = row[name]
        assert isinstance(c, dict)
        cells.append(f"{name} {c['found']}/{c['n_fcd']} at {c['fp_clusters_per_control']:.2f}")
    return f"{label:34s} n={row['n_controls']:<3} z>{row['z_threshold']:g} ≥{row['min_cluster_mm3']:g} mm³  " + \
        "  ".join(cells)


def lesion_parts(cohorts: dict[str, list[tuple[Subject, Maps]]], ref_maps: list[Maps], ref_masks: list[np.ndarray],
                 weights: dict[str, float], restandardised: bool, max_mm3: float, voxel_mm3: float) -> list[dict]:
    """Per lesion of ≤ ``max_mm3``: its volume, the highest combined z and the residual's and FLAIR's own z."""
    ref = build_reference({k: [m[k] for m in ref_maps] for k in ref_maps[0]}, ref_masks)
    out = []
    for name, subs in cohorts.items():
        for s, maps in subs:
            if s.roi is None or not s.roi.any() or s.roi.sum() * voxel_mm3 > max_mm3:
                continue
            z = combined_z(maps, s.mask, ref, weights, restandardised)
            part = z_parts(maps, s.mask, ref, ("anomaly", "flair"))
            out.append({"subject": f"{name}/{s.label}", "volume_mm3": float(s.roi.sum() * voxel_mm3),
                        "max_z": float(z[s.roi].max()),
                        **{f"{k}_max_z": float(v[s.roi].max()) for k, v in part.items()},
                        **{f"{k}_mean_z": float(v[s.roi].mean()) for k, v in part.items()}})
    return out


def cube_rms(z: np.ndarray, keep: np.ndarray, centre: np.ndarray, half: int = 15) -> float:
    """RMS of z over the ``keep`` voxels of the (2·half + 1)-voxel cube around ``centre``."""
    box = tuple(slice(max(0, int(p) - half), int(p) + half + 1) for p in centre)
    return float(np.sqrt(np.mean(z[box][keep[box]] ** 2)))


def random_cube_rms(loo: list[np.ndarray], ref_masks: list[np.ndarray], per_control: int = 30) -> list[float]:
    """:func:`cube_rms` around ``per_control`` random brain voxels of each control (``default_rng(0)``)."""
    rng = np.random.default_rng(0)
    out = []
    for z, mask in zip(loo, ref_masks, strict=True):
        m = np.asarray(mask, bool)
        idx = np.argwhere(m)
        out += [cube_rms(z, m, idx[i]) for i in rng.choice(len(idx), per_control, replace=False)]
    return out


def control_clusters(loo: list[np.ndarray], ref_masks: list[np.ndarray], aff: np.ndarray, thr: float, size: float,
                     spacing: float) -> list[dict]:
    """The controls' leave-one-out clusters (``loo``: their z-maps): peak z, size, depth under the brain's
    surface (mm), and the RMS of z in the 31-voxel cube around the peak outside the cluster."""
    out = []
    for z, mask in zip(loo, ref_masks, strict=True):
        lab, found = find_clusters(z, aff, thr, size, 20)
        depth = ndimage.distance_transform_edt(mask) * spacing
        for c in found:
            vox = np.argwhere(lab == c.index)
            peak = vox[int(np.argmax(z[tuple(vox.T)]))]
            out.append({"peak_z": float(c.peak_z), "size_mm3": float(c.size_mm3), "depth_mm": float(depth[tuple(peak)]),
                        "local_rms": cube_rms(z, np.asarray(mask, bool) & (lab != c.index), peak)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("--small", type=Path, help="a small-lesion cohort directory (bids/, work/)")
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--budget", type=float, default=0.25)
    ap.add_argument("--smoothing-fwhm", type=float, help="smooth the maps this much (mm) instead of the model's")
    ap.add_argument("--subsets", default="10,20,30")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, sampler, subjects, refs, raw, raw_r = load_cohorts(args.bench, args.validation, args.model, "fast",
                                                              args.draws)
    if args.small is not None:
        small = load_cohort(args.small / "bids", args.small / "work", model)
        vols, _ = pseudo_volumes(small, model, sampler, torch.device("cpu"), args.bench / "cache")
        subjects["small"] = small
        raw.update({f"small/{k}": v for k, v in vols.items()})
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    post = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    if args.smoothing_fwhm is not None:
        post = dataclasses.replace(post, smoothing_fwhm_mm=args.smoothing_fwhm)
    weights, rs = map_weights(post), post.restandardise

    def maps_of(subs: list[Subject], volumes: dict[str, np.ndarray]) -> list[Maps]:
        return cohort_maps(subs, volumes, model, post, sampler.histogram_matching)

    ref_maps, ref_masks = maps_of(refs, raw_r), [s.mask for s in refs]
    cohorts = {name: list(zip(subs, maps_of(subs, {s.label: raw[f"{name}/{s.label}"] for s in subs}), strict=True))
               for name, subs in subjects.items()}
    names = list(cohorts)
    rows: dict[str, object] = {}

    def record(label: str, row: dict[str, object]) -> None:
        rows[label] = row
        print(describe(label, row, names), flush=True)

    n = len(ref_masks)
    loo = leave_one_out_combined({k: [m[k] for m in ref_maps] for k in ref_maps[0]}, ref_masks, weights, rs)
    record("all controls (default)", evaluate(ref_maps, ref_masks, cohorts, post, aff, args.budget, loo=loo))
    for size in (int(v) for v in args.subsets.split(",") if int(v) < n):
        for rep in range(args.repeats):
            idx = sorted(np.random.default_rng(rep).choice(n, size, replace=False).tolist())
            record(f"{size} controls, draw {rep}", evaluate([ref_maps[i] for i in idx], [ref_masks[i] for i in idx],
                                                            cohorts, post, aff, args.budget))
    for sm in (0.0, 2.0, 3.0):
        record(f"SD smoothed {sm:g} voxels", evaluate(ref_maps, ref_masks, cohorts, post, aff, args.budget,
                                                      ReferenceParams(sd_smoothing_vox=sm)))
    for sigma_mm in (10.0, 20.0):
        for cut in (3.0, 4.0, float("inf")):
            record(f"local RMS σ {sigma_mm:g} mm, cut {cut:g}",
                   evaluate(ref_maps, ref_masks, cohorts, post, aff, args.budget,
                            transform=local_restandardise(sigma_mm / grid.spacing_mm, cut), loo=loo))
    default = rows["all controls (default)"]
    assert isinstance(default, dict)
    parts = lesion_parts(cohorts, ref_maps, ref_masks, weights, rs, 300.0, grid.spacing_mm ** 3)
    for p in parts:
        print(f"lesion {p['subject']:20s} {p['volume_mm3']:5.0f} mm³  max z {p['max_z']:5.1f}  residual z max "
              f"{p['anomaly_max_z']:4.1f} mean {p['anomaly_mean_z']:4.2f}  FLAIR z max {p['flair_max_z']:4.1f} mean "
              f"{p['flair_mean_z']:4.2f}")
    clusters = control_clusters(loo, ref_masks, aff, default["z_threshold"], default["min_cluster_mm3"],  # type: ignore[arg-type]
                                grid.spacing_mm)
    for c in clusters:
        print(f"control cluster peak z {c['peak_z']:4.1f} {c['size_mm3']:5.0f} mm³ depth {c['depth_mm']:4.1f} mm "
              f"local RMS {c['local_rms']:.2f}")
    baseline = np.percentile(random_cube_rms(loo, ref_masks), [50, 90, 99]).tolist()
    print("local RMS around random brain voxels of the controls: p50 {:.2f} p90 {:.2f} p99 {:.2f}".format(*baseline))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "lesions": parts, "control_clusters": clusters,
                                         "random_voxel_local_rms_p50_p90_p99": baseline}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
