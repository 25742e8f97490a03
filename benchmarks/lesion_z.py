"""Per lesion of a benchmarked cohort, how far it stands out, and the method's curve against the FLAIR's.

Reads a ``bids-fcd benchmark`` directory (its test cohort ``bids/`` + ``work/``, its reference controls
``ref-bids/`` + ``ref-work/`` and its ``cache/`` of pseudo-healthy volumes; volumes missing there are sampled)
and prints, with the model's default sampler and scoring against a reference of all the controls:

1. per lesion: its volume, its lesion removal (the benchmark's definition), the highest combined z inside it
   and the highest of its two parts (the residual's and the FLAIR's own normative z, each re-standardised as in
   the sum), and the highest z anywhere in the
   brain; per test control its highest z (the noise floor the lesions must clear);
2. the curve: lesions found by the top-ranked cluster and false-positive clusters per test control at
   z > 4.5 … 8 (≥ ``--min-mm3``), for the method's combined z and for the FLAIR's own z alone.

    python benchmarks/lesion_z.py BENCH_OUT [--model phantom-default] [--draws 4] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from benchmarks.rescore import cohort_maps, load_cohorts
from bids_fcd.postprocessing.normative import build_reference, combined_z, z_parts
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import map_weights
from bids_fcd.workflows.benchmark import cortex_on_grid, evaluate_variant, synthesis_quality

log = logging.getLogger("lesion_z")
THRESHOLDS = (4.5, 4.75, 5.0, 5.25, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--min-mm3", type=float, default=150.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, sampler, cohorts, refs, raw_all, raw_r = load_cohorts(args.bench, None, args.model, "fast", args.draws)
    subs = cohorts["test"]
    raw = {s.label: raw_all[f"test/{s.label}"] for s in subs}
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    post = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    weights = map_weights(post)

    def maps_of(group: list, volumes: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        return cohort_maps(group, volumes, model, post, sampler.histogram_matching)

    per_ref = maps_of(refs, raw_r)
    ref = build_reference({k: [p[k] for p in per_ref] for k in per_ref[0]}, [s.mask for s in refs])
    voxel_mm3 = grid.spacing_mm ** 3
    removal = synthesis_quality(subs, raw, cortex_on_grid(model), sampler.histogram_matching)[
        "lesion_removal_per_subject"]
    combined, flair_z, rows = {}, {}, []
    for s, maps in zip(subs, maps_of(subs, raw), strict=True):
        z = combined_z(maps, s.mask, ref, weights, post.restandardise)
        parts = z_parts(maps, s.mask, ref, ("anomaly", "flair"), post.restandardise)
        combined[s.label], flair_z[s.label] = z, parts["flair"]
        brain = np.asarray(s.mask, bool)
        row = {"label": s.label, "brain_max_z": float(z[brain].max())}
        if s.roi is not None and s.roi.any():
            roi = s.roi & brain
            row.update(volume_mm3=float(roi.sum() * voxel_mm3), removal=removal[s.label],
                       max_z=float(z[roi].max()), residual_max_z=float(parts["anomaly"][roi].max()),
                       flair_max_z=float(parts["flair"][roi].max()))
            print(f"lesion {s.label} {row['volume_mm3']:7.0f} mm³  removal {row['removal']:5.2f}  highest z inside: "
                  f"combined {row['max_z']:5.1f}, residual {row['residual_max_z']:5.1f}, FLAIR {row['flair_max_z']:5.1f}; "
                  f"in the brain {row['brain_max_z']:.1f}")
        else:
            print(f"control {s.label}  highest z in the brain {row['brain_max_z']:.1f}")
        rows.append(row)
    curve: dict[str, list[dict[str, float]]] = {}
    for name, zs in (("method", combined), ("FLAIR z alone", flair_z)):
        for t in THRESHOLDS:
            cal = dataclasses.replace(post, z_threshold=t, min_cluster_mm3=args.min_mm3)
            summ = evaluate_variant(subs, zs, aff, cal, 0.0)
            per = summ["per_subject"]
            found = sum(1 for p in per if p["detected"])
            n_fcd = sum(1 for p in per if p["detected"] is not None)
            curve.setdefault(name, []).append({"z": t, "found": found, "n_fcd": n_fcd,
                                               "fp_clusters_per_control": summ["fp_clusters_per_control"]})
            print(f"{name:14s} z > {t:<5g} {found}/{n_fcd} found, {summ['fp_clusters_per_control']:.3f} FP clusters "
                  "per control")
    if args.json:
        args.json.write_text(json.dumps({"subjects": rows, "curve": curve}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
