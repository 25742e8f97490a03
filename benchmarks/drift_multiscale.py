"""Does the scoring's drift removal lose large lesions? Drift settings and a two-scale score on cached
volumes.

The default scoring takes each normative map's low-frequency drift out with 8 mm block medians, which hollows
out a lesion larger than a block. This rescoring compares, on the default sampler's cached pseudo-healthy
volumes (the T1w condition ``--t1``, as ``t1_condition.py`` samples them):

- ``self`` (the default), ``robust`` (coarse-to-fine drift without the voxels above it, cut 1 SD) and
  ``pseudo`` (the FLAIR loses the pseudo-healthy FLAIR's drift, the residual none): one map each;
- a *coarse scale* alone (the same maps smoothed 8 mm FWHM, drift from 32 mm blocks or none) and the
  two-scale score max(z_fine, c · z_coarse), c = 1 or 0.9, each z against the same controls.

Every row is calibrated leave-one-out on the reference controls for ``--budget`` FP clusters per control
(``bids-fcd reference``'s rule, applied to the row's own map), then scored on each cohort: lesions whose
top-ranked cluster hits them, FP clusters per control, R@10, the highest z inside each lesion and in each
control's brain.

    python benchmarks/drift_multiscale.py REF COHORT [COHORT ...] --cache DIR [--t1 mirror] [--draws D]
        [--budget 0.25] [--json OUT.json]

REF and each COHORT hold ``bids/`` and ``work/``; the cache is the one ``t1_condition.py sample``
fills (volumes missing from it are sampled).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from t1_condition import conditioned

from bids_fcd.config import SAMPLER_PRESETS, T1_CONDITIONS, PostConfig, SamplerConfig
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.postprocessing.normative import ReferenceParams, build_reference, combined_z, leave_one_out_combined
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights, resolve_sampler
from bids_fcd.workflows.benchmark import evaluate_variant
from bids_fcd.workflows.cohort import Subject, anomaly_maps, controls_of, load_cohort, pseudo_volumes
from bids_fcd.workflows.reference import control_maps

log = logging.getLogger("drift_multiscale")

#: One scale's z-maps: the controls' leave-one-out maps, and {(cohort, label): map} of the participants.
Scale = tuple[list[np.ndarray], dict[tuple[str, str], np.ndarray]]


def variants(post: PostConfig) -> tuple[dict[str, PostConfig], dict[str, PostConfig]]:
    """(single-scale rows, coarse scales combined with the default's): name → post-processing."""
    single = {"self (default)": post,
              "robust, cut 1 SD": dataclasses.replace(post, drift_source="robust", drift_cut_sd=1.0),
              "pseudo": dataclasses.replace(post, drift_source="pseudo")}
    coarse = {"8 mm, 32 mm blocks": dataclasses.replace(post, smoothing_fwhm_mm=8.0, drift_block_mm=32.0),
              "8 mm, no drift": dataclasses.replace(post, smoothing_fwhm_mm=8.0, drift_block_mm=0.0)}
    return single, coarse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path)
    ap.add_argument("cohorts", type=Path, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--t1", choices=T1_CONDITIONS, default="mirror", help="the T1w condition (default: mirror)")
    ap.add_argument("--draws", type=int, default=None, help="D (default: the fast preset's)")
    ap.add_argument("--budget", type=float, default=0.25)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cpu = torch.device("cpu")
    model = load_model("phantom-default", cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"],  # type: ignore[arg-type]
                                                  t1_condition="native"), model)
    if args.draws is not None:
        sampler = dataclasses.replace(sampler, draws=args.draws)
    prep: Callable[[Subject], Subject] = ((lambda s: s) if args.t1 == "native"
                                          else functools.partial(conditioned, condition=args.t1))
    post = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    hm, grid = sampler.histogram_matching, model.net.grid
    aff, _ = grid_affine(grid)
    refs = [prep(s) for s in load_cohort(args.reference / "bids", args.reference / "work", model,
                                         controls_of(args.reference / "bids"))]
    raw_r, _ = pseudo_volumes(refs, model, sampler, cpu, args.cache)
    subs = {c.name: [prep(s) for s in load_cohort(c / "bids", c / "work", model)] for c in args.cohorts}
    raws = {c: pseudo_volumes(s, model, sampler, cpu, args.cache)[0] for c, s in subs.items()}
    params = ReferenceParams()

    def scale(p: PostConfig) -> Scale:
        rm = control_maps(refs, anomaly_maps(refs, raw_r, model, p, hm), grid, p)
        masks = [s.mask for s in refs]
        ref = build_reference(rm, masks, params)
        loo = leave_one_out_combined(rm, masks, map_weights(p), p.restandardise, params)
        zs = {}
        for c, ss in subs.items():
            tm = control_maps(ss, anomaly_maps(ss, raws[c], model, p, hm), grid, p)
            for i, s in enumerate(ss):
                zs[(c, s.label)] = combined_z({k: v[i] for k, v in tm.items()}, s.mask, ref, map_weights(p),
                                              p.restandardise)
        return loo, zs

    results: dict[str, Any] = {"t1_condition": args.t1, "draws": sampler.draws, "budget": args.budget, "rows": {}}

    def report(name: str, loo: list[np.ndarray], zs: dict[tuple[str, str], np.ndarray]) -> None:
        chosen = choose(fp_table(loo, aff), args.budget)
        cal = dataclasses.replace(post, z_threshold=chosen["z_threshold"], min_cluster_mm3=chosen["min_cluster_mm3"])
        row: dict[str, Any] = {"z_threshold": cal.z_threshold, "min_cluster_mm3": cal.min_cluster_mm3}
        for c, ss in subs.items():
            z = {s.label: zs[(c, s.label)] for s in ss}
            summary = evaluate_variant(ss, z, aff, cal, 0.0)
            fcd = [s for s in ss if s.roi is not None and s.roi.any()]
            row[c] = {"lesions_found": round(summary["subject_sensitivity"] * len(fcd)), "n_fcd": len(fcd),
                      "fp_clusters_per_control": summary["fp_clusters_per_control"], "R@10": summary["R@10"],
                      "lesion_max_z": {s.label: round(float(z[s.label][s.roi].max()), 2) for s in fcd},
                      "control_max_z": {s.label: round(float(z[s.label][s.mask].max()), 2) for s in ss
                                        if s.roi is None or not s.roi.any()}}
        results["rows"][name] = row
        log.info("%s | z > %g, >= %g mm3 | %s", name, cal.z_threshold, cal.min_cluster_mm3,
                 " | ".join(f"{c} {r['lesions_found']}/{r['n_fcd']} at {r['fp_clusters_per_control']:.2f} FP/HC, "
                            f"R@10 {r['R@10']:.3f}" for c, r in row.items() if isinstance(r, dict)))

    single, coarse = variants(post)
    fine: Scale | None = None
    for name, p in single.items():
        maps = scale(p)
        fine = fine or maps
        report(name, *maps)
    assert fine is not None
    for name, p in coarse.items():
        loo, zs = scale(p)
        report(f"coarse {name} alone", loo, zs)
        for c in (1.0, 0.9):
            report(f"max(default, {c:g} × coarse {name})", [np.maximum(a, c * b) for a, b in zip(fine[0], loo, strict=True)],
                   {k: np.maximum(fine[1][k], c * v) for k, v in zs.items()})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
