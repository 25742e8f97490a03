"""A benchmark cohort scored against a normative reference built elsewhere: robustness across sources.

A site that runs the shipped model with its shipped reference scores its participants against controls of
another source (the project's phantoms). This script takes the test cohort of a ``bids-fcd benchmark`` output
directory (its preprocessed participants and cached pseudo-healthy volumes) and scores it exactly as the
participant level does against any reference directory (the shipped model's ``reference/``, or another
benchmark's ``OUT/reference``) with that reference's own calibrated cluster setting. It prints lesions found,
false-positive clusters per control, R@10 and the found/total count per lesion-volume class.

    python benchmarks/cross_source.py BENCH_OUT --reference REF_DIR [--model MODEL] [--t1-condition C]
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.config import SamplerConfig, from_dict
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.nets.reference import load_reference
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.workflows.analysis import resolve_sampler, score
from bids_fcd.workflows.benchmark import evaluate_variant, size_classes
from bids_fcd.workflows.cohort import anomaly_maps, load_cohort, pseudo_volumes

log = logging.getLogger("cross_source")


def cross_score(bench: Path, reference: Path, model_name: str | None, t1_condition: str | None) -> dict[str, Any]:
    """The benchmark's test cohort scored against ``reference`` (its own cluster setting); the summary of
    :func:`~bids_fcd.workflows.benchmark.evaluate_variant` plus the size classes. The volumes are sampled with the
    sampler the reference records (``t1_condition`` overrides its T1w condition)."""
    cpu = torch.device("cpu")
    model = load_model(model_name, cpu)
    ref = load_reference(reference)
    # the pseudo-healthy volumes are drawn as the reference's were (its record names the sampler)
    sampler = resolve_sampler(from_dict(SamplerConfig, ref.meta["sampler"]) if "sampler" in ref.meta
                              else SamplerConfig(), model)
    if t1_condition:
        sampler = dataclasses.replace(sampler, t1_condition=t1_condition)  # type: ignore[arg-type]
    if ref.post is None:
        raise SystemExit(f"{reference} holds no calibrated cluster setting; build it with `bids-fcd reference`")
    post = dataclasses.replace(ref.post, anomaly="signed", zscore="normative")
    subjects = load_cohort(bench / "bids", bench / "work", model)
    volumes, _ = pseudo_volumes(subjects, model, sampler, cpu, bench / "cache")
    maps = anomaly_maps(subjects, volumes, model, post, sampler.histogram_matching)
    zs = {s.label: score(maps[s.label][1], s.flair, s.mask, model.net.grid, post, ref.ref, maps[s.label][0])
          for s in subjects}
    summary = evaluate_variant(subjects, zs, grid_affine(model.net.grid)[0], post, 0.0)
    lesions = [r for r in summary["per_subject"] if r.get("lesion_mm3")]
    summary.update(size_classes(lesions))
    summary["found"] = f"{sum(bool(r['detected']) for r in lesions)}/{len(lesions)}"
    summary["reference"] = {"path": str(reference), "n_controls": ref.ref.n, "dataset": ref.meta.get("dataset"),
                            "z_threshold": post.z_threshold, "min_cluster_mm3": post.min_cluster_mm3}
    summary["model"] = {"name": model.name, "sha256": model.sha256, "t1_condition": sampler.t1_condition}
    summary["control_max_z"] = [float(np.max(zs[s.label][s.mask])) for s in subjects if s.roi is None]
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path, help="a bids-fcd benchmark output directory (bids/, work/, cache/)")
    ap.add_argument("--reference", type=Path, required=True, help="a reference directory (reference.nii.gz + .json)")
    ap.add_argument("--model", default=None, help="the model the reference was built with (default: the shipped one)")
    ap.add_argument("--t1-condition", default=None, choices=("native", "symmetric", "mirror"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    s = cross_score(args.bench, args.reference, args.model, args.t1_condition)
    log.info("%s against %s (%d controls, z > %g, >= %g mm3): found %s (< 250 mm3 %s, 250-1000 %s, > 1000 %s), "
             "FP clusters/control %.3g, R@10 %.3g", args.bench.name, args.reference, s["reference"]["n_controls"],
             s["reference"]["z_threshold"], s["reference"]["min_cluster_mm3"], s["found"], s["found_under_250mm3"],
             s["found_250_to_1000mm3"], s["found_over_1000mm3"], s["fp_clusters_per_control"], s["R@10"])
    if args.json:
        args.json.write_text(json.dumps(s, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
