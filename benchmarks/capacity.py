"""Model capacity against pseudo-healthy error and detection, one table for several models.

Every model samples the same held-out cohort with the same sampler preset; the table gives, per model, its
UNet size, the sampling time per participant (measured in this run, so ratios between rows hold), lesion
removal, the pseudo-healthy error on held-out controls (MAE, SSIM), the highest combined z inside each lesion
and anywhere in each control, and, with ``--reference``, detection with each model's own reference built from
the same controls and calibrated leave-one-out exactly as ``bids-fcd reference`` does.

    python benchmarks/capacity.py COHORT MODEL [MODEL ...] [--reference REF] [--preset fast] [--draws D [D ...]]
        [--guidance-scale S [S ...]] [--noise-level L [L ...]] [--steps K [K ...]] [--second-look off inpaint]
        [--look-z Z] [--look-shrink] [--drift-source SRC] [--t1-condition C]
        [--budget 0.25] [--cache DIR] [--sweep Z [Z ...]] [--json OUT.json]

One row per model × draws D × guidance scale s × noise level L × steps K × second look (each default: the
preset's), all
sampled in this run; ``--drift-source`` scores every row with that drift estimate (default: the model's).

COHORT and REF are directories holding ``bids/`` (a phantom cohort; REF's controls are used) and ``work/``
(the preprocessing cache, written when missing). Pseudo-healthy volumes are cached in ``--cache`` (default
COHORT/cache), keyed by the networks and the sampler, so rescoring is cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.bids.participants import is_control
from bids_fcd.config import DRIFT_SOURCES, SAMPLER_PRESETS, T1_CONDITIONS, SamplerConfig
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.nets.networks import count_parameters
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import resolve_sampler
from bids_fcd.workflows.benchmark import calibrated_z, cortex_on_grid, evaluate_variant, synthesis_quality
from bids_fcd.workflows.cohort import Subject, anomaly_maps, controls_of, load_cohort, pseudo_volumes
from bids_fcd.workflows.reference import control_maps

log = logging.getLogger("capacity")


def model_row(name: str, cohort: Path, reference: Path | None, preset: str, budget: float,
              cache: Path, draws: int | None = None, scale: float | None = None, noise_level: int | None = None,
              steps: int | None = None, drift_source: str | None = None, second_look: str | None = None,
              look_z: float | None = None, look_shrink: bool = False,
              prepare: Callable[[Subject], Subject] | None = None, asymmetry_weight: float | None = None,
              sweep: Sequence[float] = (), t1_condition: str | None = None) -> dict[str, Any]:
    """Figures of one model and sampler (the preset with ``draws`` D, guidance ``scale`` s, ``noise_level`` L,
    ``steps`` K, ``second_look`` and its ``look_z`` when given) on the cohort (and, with ``reference``, its
    detection, drift from ``drift_source``). ``prepare`` changes every participant and reference control before
    sampling (e.g. the symmetrised T1w of ``t1_condition.py``). ``t1_condition`` is the sampler's T1w
    condition (default: the sampler's). ``asymmetry_weight`` scores with the FLAIR-asymmetry map at that weight
    (``PostConfig.asymmetry_weight``); ``sweep`` adds, for each z threshold in it (at the calibrated minimum
    cluster size), the lesions found and the control clusters (``row["sweep"]``: descriptive FROC points on this
    cohort, not calibrated)."""
    prep = prepare or (lambda s: s)
    cpu = torch.device("cpu")
    model = load_model(name, cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS[preset]), model)  # type: ignore[arg-type]
    over = {k: v for k, v in (("draws", draws), ("guidance_scale", scale), ("noise_level", noise_level),
                              ("steps", steps), ("second_look", second_look), ("look_z", look_z),
                              ("t1_condition", t1_condition)) if v is not None}
    sampler = dataclasses.replace(sampler, **over, look_shrink=look_shrink)  # type: ignore[arg-type]
    subjects = [prep(s) for s in load_cohort(cohort / "bids", cohort / "work", model)]
    raw, seconds = pseudo_volumes(subjects, model, sampler, cpu, cache)
    cortex = cortex_on_grid(model)
    hm = sampler.histogram_matching
    # the benchmark's definitions: removal one FCD participant at a time (median and mean from those), the
    # pseudo-healthy error over the controls
    fcd = [s for s in subjects if s.roi is not None and s.roi.any()]
    removal = {s.label: synthesis_quality([s], raw, cortex, hm)["lesion_removal"] for s in fcd}
    quality = synthesis_quality([s for s in subjects if is_control(s.group)], raw, cortex, hm)
    values = [v for v in removal.values() if v is not None]
    row: dict[str, Any] = {"model": name, "draws": sampler.draws, "guidance_scale": sampler.guidance_scale,
                           "noise_level": sampler.noise_level, "steps": sampler.steps,
                           "second_look": sampler.second_look, "look_z": sampler.look_z,
                           "unet_channels": list(model.net.unet_channels),
                           "unet_parameters_M": round(count_parameters(model.unet) / 1e6, 2),
                           "sampling_s_per_subject": seconds / max(len(subjects), 1),  # 0 when all cached
                           "control_mae": quality["control_mae"], "control_ssim": quality["control_ssim"],
                           "lesion_removal": float(np.mean(values)) if values else None,
                           "lesion_removal_median": float(np.median(values)) if values else None,
                           "lesion_removal_per_subject": removal}
    if reference is None:
        return row
    post = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    if drift_source is not None:
        post = dataclasses.replace(post, drift_source=drift_source)  # type: ignore[arg-type]
    if asymmetry_weight is not None:
        post = dataclasses.replace(post, asymmetry_weight=asymmetry_weight)
    row["drift_source"], row["asymmetry_weight"] = post.drift_source, post.asymmetry_weight
    an = anomaly_maps(subjects, raw, model, post, hm)
    refs = [prep(s) for s in load_cohort(reference / "bids", reference / "work", model, controls_of(reference / "bids"))]
    raw_r, _ = pseudo_volumes(refs, model, sampler, cpu, cache)
    ref_maps = control_maps(refs, anomaly_maps(refs, raw_r, model, post, hm),
                            model.net.grid, post)
    test_maps = control_maps(subjects, an, model.net.grid, post)
    test = {s.label: {k: v[i] for k, v in test_maps.items()} for i, s in enumerate(subjects)}
    aff, _ = grid_affine(model.net.grid)
    zs, cal, _ = calibrated_z(test, ref_maps, [s.mask for s in refs], {s.label: s.mask for s in subjects}, post,
                              aff, budget)
    summary = evaluate_variant(subjects, zs, aff, cal, seconds)
    row.update({k: summary.get(k) for k in ("subject_sensitivity", "fp_clusters_per_control", "R@10",
                                             "z_threshold", "min_cluster_mm3")})
    row["n_reference"] = len(refs)
    n_fcd = sum(s.roi is not None and bool(s.roi.any()) for s in subjects)
    n_hc = sum(is_control(s.group) for s in subjects)
    row["sweep"] = []
    for thr in sweep:
        at = evaluate_variant(subjects, zs, aff, dataclasses.replace(cal, z_threshold=float(thr)), seconds)
        row["sweep"].append({"z_threshold": float(thr), "lesions_found": round(at["subject_sensitivity"] * n_fcd),
                             "n_fcd": n_fcd, "control_clusters": round(at["fp_clusters_per_control"] * n_hc),
                             "n_controls": n_hc})
    row["lesion_max_z"] = {s.label: float(zs[s.label][s.roi].max()) for s in subjects
                           if s.roi is not None and s.roi.any()}
    row["control_max_z"] = {s.label: float(zs[s.label][s.mask].max()) for s in subjects if is_control(s.group)}
    return row


def fmt(v: Any) -> str:
    """A table cell."""
    if v is None:
        return ""
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cohort", type=Path)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--reference", type=Path)
    ap.add_argument("--preset", default="fast", choices=sorted(SAMPLER_PRESETS))
    ap.add_argument("--draws", type=int, nargs="+", default=[None],
                    help="stochastic encodings D averaged (default: the preset's)")
    ap.add_argument("--guidance-scale", type=float, nargs="+", default=[None],
                    help="classifier-guidance scale s, 0 = unguided (default: the preset's)")
    ap.add_argument("--noise-level", type=int, nargs="+", default=[None],
                    help="encoding noise level L (default: the preset's)")
    ap.add_argument("--steps", type=int, nargs="+", default=[None], help="DDIM steps K (default: the preset's)")
    ap.add_argument("--second-look", nargs="+", default=[None],
                    help="second look(s): off, inpaint (default: the preset's)")
    ap.add_argument("--look-z", type=float, help="second look's candidate cut (default: the sampler's)")
    ap.add_argument("--look-shrink", action="store_true", help="second look: shrink the holes' residual")
    ap.add_argument("--drift-source", choices=DRIFT_SOURCES, help="drift estimate for scoring (default: the model's)")
    ap.add_argument("--t1-condition", choices=T1_CONDITIONS,
                    help="the T1w the network is shown, for every row (default: the sampler's)")
    ap.add_argument("--budget", type=float, default=0.25, help="false-positive clusters per control")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sweep", type=float, nargs="*", default=[],
                    help="z thresholds at which to count lesions found and control clusters (descriptive FROC points "
                         "of this cohort at the calibrated minimum cluster size, e.g. 5 5.5 6 6.5 7)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows = [model_row(m, args.cohort, args.reference, args.preset, args.budget, args.cache or args.cohort / "cache",
                      d, s, n, k, args.drift_source, look, args.look_z, args.look_shrink,
                      t1_condition=args.t1_condition, sweep=args.sweep)
            for m in args.models for d in args.draws for s in args.guidance_scale for n in args.noise_level
            for k in args.steps for look in args.second_look]
    cols = ("model", "draws", "guidance_scale", "noise_level", "steps", "second_look", "unet_parameters_M",
            "sampling_s_per_subject",
            "lesion_removal_median", "control_mae", "control_ssim", "subject_sensitivity", "fp_clusters_per_control",
            "R@10", "z_threshold")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    for r in rows:
        r["row"] = (f"{r['model']} D={r['draws']} s={r['guidance_scale']:g} L={r['noise_level']} K={r['steps']} "
                    f"look={r['second_look']}")
        lines.append(f"\n{r['row']}: removal per lesion " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["lesion_removal_per_subject"].items() if v is not None))
        if "lesion_max_z" in r:
            lines.append(f"{r['row']}: max z in lesion " + ", ".join(f"{k} {v:.1f}" for k, v in r["lesion_max_z"].items())
                         + "; max z in control brain " + ", ".join(f"{k} {v:.1f}" for k, v in r["control_max_z"].items()))
    log.info("\n%s", "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
