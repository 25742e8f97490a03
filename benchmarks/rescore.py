"""Rescore cached pseudo-healthy volumes under post-processing variants, on a validation and a test cohort.

The choices of drift source, false-positive budget and cluster rule were made with this script on the
validation cohort and only then read on the held-out test cohort. Both cohorts share one calibration:
the reference controls of a ``bids-fcd benchmark`` output directory, leave-one-out, as the benchmark does.

    python benchmarks/rescore.py BENCH_OUT VALIDATION_DIR [--model phantom-default] [--preset fast]
        [--draws D] [--guidance-scale S] [--variants self,pseudo] [--budgets 0.25,0.5] [--json OUT.json]

BENCH_OUT is a benchmark directory (bids/, work/, ref-bids/, ref-work/, cache/); VALIDATION_DIR holds a
phantom cohort in VALIDATION_DIR/bids (written with ``--seed`` if missing) and its preprocessing cache in
VALIDATION_DIR/work. Pseudo-healthy volumes come from BENCH_OUT/cache (sampled there when missing). Prints
one line per (cohort, variant, budget, cluster rule).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from bids_fcd.bids.participants import is_control
from bids_fcd.config import SAMPLER_PRESETS, PostConfig, SamplerConfig
from bids_fcd.evaluation.calibration import Z_GRID, choose, fp_table
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.nets.checkpoint import LoadedModel, load_model
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.normative import build_reference, combined_z, leave_one_out_combined
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights, normative_maps, resolve_sampler
from bids_fcd.workflows.cohort import Subject, anomaly_maps, controls_of, load_cohort, pseudo_volumes

log = logging.getLogger("rescore")

#: Post-processing variants (fields of PostConfig over the model's own).
VARIANTS = {"self": {}, "pseudo": {"drift_source": "pseudo"},
            "self w0.35": {"flair_weight": 0.35}, "self w0.65": {"flair_weight": 0.65},
            "flair-z": {"flair_weight": 1.0}, "residual": {"flair_weight": 0.0},
            "robust": {"drift_source": "robust"}, "robust c0": {"drift_source": "robust", "drift_cut_sd": 0.0},
            "robust c1": {"drift_source": "robust", "drift_cut_sd": 1.0},
            "self 16mm": {"drift_block_mm": 16.0}, "self 32mm": {"drift_block_mm": 32.0}}


def clusters_by_rule(z: np.ndarray, aff: np.ndarray, thr: float, size: float, peak: float):
    """Clusters of z > thr kept when their extent is ≥ size mm³ *or* their peak z ≥ peak; ranked by peak."""
    lab, found = find_clusters(z, aff, thr, 0.0, 10_000)
    keep = [c for c in found if c.size_mm3 >= size or c.peak_z >= peak][:20]
    out = np.zeros(z.shape, np.int16)
    for rank, c in enumerate(keep, start=1):
        out[lab == c.index] = rank
    return out, keep


def cohort_maps(subs: list[Subject], volumes: dict[str, np.ndarray], model: LoadedModel, post: PostConfig,
                histogram_matching: bool) -> list[dict[str, np.ndarray]]:
    """:func:`normative_maps` (``anomaly``, ``flair``) of each subject from its raw pseudo-healthy volume."""
    an = anomaly_maps(subs, volumes, model, post, histogram_matching)
    return [normative_maps(an[s.label][1], s.flair, s.mask, model.net.grid, post, an[s.label][0]) for s in subs]


def load_cohorts(bench: Path, validation: Path | None, model_name: str, preset: str, draws: int | None = None,
                 scale: float | None = None, seed: int = 2030, n_fcd: int = 6, n_hc: int = 3,
                 ) -> tuple[LoadedModel, SamplerConfig, dict[str, list[Subject]], list[Subject],
                            dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(model, sampler, {"validation", "test"}: subjects, reference controls, raw pseudo-healthy volumes keyed
    ``cohort/label``, the controls' raw volumes) from a benchmark directory and a validation directory (its
    phantom cohort written with ``seed`` when missing; None: the test cohort only); volumes come from
    BENCH/cache (sampled when missing)."""
    if validation is not None and not (validation / "bids" / "dataset_description.json").exists():
        write_cohort(validation / "bids", n_fcd, n_hc, seed, "mixed", "stratified")
    cpu = torch.device("cpu")
    model = load_model(model_name, cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS[preset]), model)  # type: ignore[arg-type]
    over = {k: v for k, v in (("draws", draws), ("guidance_scale", scale)) if v is not None}
    sampler = dataclasses.replace(sampler, **over)  # type: ignore[arg-type]
    cohorts = {} if validation is None else {"validation": load_cohort(validation / "bids", validation / "work", model)}
    cohorts["test"] = load_cohort(bench / "bids", bench / "work", model)
    refs = load_cohort(bench / "ref-bids", bench / "ref-work", model, controls_of(bench / "ref-bids"))
    raw = {}
    for name, subs in cohorts.items():
        volumes, _ = pseudo_volumes(subs, model, sampler, cpu, bench / "cache")
        raw.update({f"{name}/{k}": v for k, v in volumes.items()})
    raw_r, _ = pseudo_volumes(refs, model, sampler, cpu, bench / "cache")
    return model, sampler, cohorts, refs, raw, raw_r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("--seed", type=int, default=2030, help="validation phantom seed (if it must be written)")
    ap.add_argument("--n-fcd", type=int, default=6)
    ap.add_argument("--n-hc", type=int, default=3)
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--preset", default="fast", choices=sorted(SAMPLER_PRESETS))
    ap.add_argument("--draws", type=int, help="stochastic encodings D (default: the preset's)")
    ap.add_argument("--guidance-scale", type=float, help="guidance scale s (default: the preset's)")
    ap.add_argument("--variants", default="self,pseudo")
    ap.add_argument("--budgets", default="0.25,0.5")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, sampler, cohorts, refs, raw, raw_r = load_cohorts(args.bench, args.validation, args.model, args.preset,
                                                             args.draws, args.guidance_scale, args.seed, args.n_fcd,
                                                             args.n_hc)
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    ref_masks = [s.mask for s in refs]
    post0 = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    results: dict[str, dict[str, object]] = {}
    for variant in args.variants.split(","):
        post = dataclasses.replace(post0, **VARIANTS[variant])  # type: ignore[arg-type]
        per = cohort_maps(refs, raw_r, model, post, sampler.histogram_matching)
        r_maps = {k: [p[k] for p in per] for k in per[0]}
        weights = map_weights(post)
        ref = build_reference(r_maps, ref_masks)
        ctrl = leave_one_out_combined(r_maps, ref_masks, weights, post.restandardise)
        table = fp_table(ctrl, aff)
        zs: dict[str, dict[str, np.ndarray]] = {}
        for name, subs in cohorts.items():
            maps = cohort_maps(subs, {s.label: raw[f"{name}/{s.label}"] for s in subs}, model, post,
                               sampler.histogram_matching)
            zs[name] = {s.label: combined_z(m, s.mask, ref, weights, post.restandardise)
                        for s, m in zip(subs, maps, strict=True)}
        for budget in (float(b) for b in args.budgets.split(",")):
            chosen = choose(table, budget)
            thr, size = chosen["z_threshold"], chosen["min_cluster_mm3"]
            # extent *or* height: the lowest peak threshold above thr that keeps the controls within budget
            peak = next((p for p in Z_GRID if p > thr and np.mean(
                [len(clusters_by_rule(c, aff, thr, size, p)[1]) for c in ctrl]) <= budget), float("inf"))
            for name, subs in cohorts.items():
                for rule, pk in (("extent", float("inf")), ("extent or peak", peak)):
                    rows = []
                    for s in subs:
                        lab, cl = clusters_by_rule(zs[name][s.label], aff, thr, size, pk)
                        row = score_subject(zs[name][s.label], lab, [np.array(c.center_mm) for c in cl], s.mask,
                                            s.roi, aff)
                        row.update(group=s.group, label=s.label)
                        rows.append(row)
                    summ = cohort_summary(rows, thr)
                    lesion_max = [float(zs[name][s.label][s.roi].max()) for s in subs if s.roi is not None and s.roi.any()]
                    ctrl_max = [float(zs[name][s.label][s.mask].max()) for s in subs if is_control(s.group)]
                    # mean z inside each lesion, the largest third by mask volume apart: what drift removal takes
                    vols = {s.label: int(s.roi.sum()) for s in subs if s.roi is not None and s.roi.any()}
                    big = sorted(vols, key=vols.__getitem__)[-max(1, len(vols) // 3):] if vols else []
                    lesion_mean = {s.label: float(zs[name][s.label][s.roi].mean()) for s in subs if s.label in vols}
                    key = f"{name} | {variant} | budget {budget:g} | {rule}"
                    results[key] = {"subject_sensitivity": summ["subject_sensitivity"],
                                    "fp_clusters_per_control": summ["fp_clusters_per_control"], "R@10": summ["R@10"],
                                    "z_threshold": thr, "min_cluster_mm3": size,
                                    "peak_z_threshold": pk if np.isfinite(pk) else None,
                                    "lesion_max_z": lesion_max, "control_max_z": ctrl_max,
                                    "lesion_mean_z": lesion_mean, "largest_third": big,
                                    "detected": {r["label"]: r.get("detected") for r in rows if "detected" in r}}
                    print(f"{key:55s} sens {summ['subject_sensitivity']:.3f}  FP/HC {summ['fp_clusters_per_control']:.3f}"
                          f"  R@10 {summ['R@10']:.3f}  z>{thr:g} ≥{size:g} mm³ peak≥{pk:g}"
                          f"  mean z in largest third {np.mean([lesion_mean[b] for b in big]) if big else np.nan:.2f}"
                          f" (all {np.median(list(lesion_mean.values())) if lesion_mean else np.nan:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
