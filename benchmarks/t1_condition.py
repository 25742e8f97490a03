"""The first pass conditioned on another T1w, and the FLAIR-asymmetry map (the T1w condition carries the
lesion).

The shipped network draws the FLAIR that healthy tissue with the given T1w would have, so a lesion's own T1w
signs (grey matter reaching into white matter, a blurred junction) are drawn back into its pseudo-healthy FLAIR.
Here every participant's (and reference control's) T1w channel is replaced before sampling
(:func:`bids_fcd.sampling.condition.conditioned_stack`, what ``--t1-condition`` does inside the sampler): by
y_sym = (y + y_mirror) / 2 (``symmetric``) or y_mirror (``mirror``, the default since 2026-12-05) where both the
voxel and its mirror (the grid is centred on x = 0) are brain, y elsewhere. The FLAIR is unchanged; each cohort
is scored against the 40 reference controls sampled the same way, calibrated leave-one-out for ``--budget`` FP
clusters per control, as ``benchmarks/capacity.py`` does.

    python benchmarks/t1_condition.py sample REF COHORT [COHORT ...] --cache DIR [--t1 C] [--draws D]
        [--worker K --workers N]
    python benchmarks/t1_condition.py score REF COHORT [COHORT ...] --cache DIR [--t1 C] [--draws D]
        [--asymmetry-weight A [A ...]] [--sweep Z ...] [--json OUT.json]

``--t1 mirror`` shows y_mirror itself instead (:mod:`bids_fcd.sampling.condition`); ``--t1 native`` scores the
default sampler's volumes. ``--asymmetry-weight`` adds the FLAIR's left-right asymmetry as a third normative map
(``PostConfig.asymmetry_weight``), one set of rows per weight, each calibrated on its own; every set ends with
the cohorts' pooled lesions found and control clusters at each ``--sweep`` threshold (descriptive, not
calibrated).

The stacks are conditioned here and handed to a ``native`` sampler (so the cache keys on the conditioned stack);
the product's ``--t1-condition`` does the same arithmetic inside the sampler and gives the same volumes bit for bit
(checked on a reference control, 2026-12-05).

REF and each COHORT hold ``bids/`` and ``work/`` (as for ``capacity.py``); ``sample`` fills the cache (run N
workers side by side), ``score`` reads it (sampling what is missing) and prints one line per cohort.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
from pathlib import Path
from typing import Any

import torch
from capacity import model_row

from bids_fcd.config import SAMPLER_PRESETS, T1_CONDITIONS, SamplerConfig
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.sampling.condition import conditioned_stack
from bids_fcd.workflows.analysis import resolve_sampler
from bids_fcd.workflows.cohort import Subject, controls_of, load_cohort, pseudo_volumes

log = logging.getLogger("t1_condition")


def conditioned(sub: Subject, condition: str) -> Subject:
    """``sub`` with its stack's T1w channel replaced for ``condition`` (:func:`conditioned_stack`)."""
    return dataclasses.replace(sub, stack=conditioned_stack(sub.stack, sub.mask_s, condition))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("sample", "score"))
    ap.add_argument("reference", type=Path)
    ap.add_argument("cohorts", type=Path, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0.25)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--t1", choices=T1_CONDITIONS, default="symmetric",
                    help="the T1w condition (bids_fcd.sampling.condition; default: symmetric; native: the cache of "
                         "the default sampler, as capacity.py writes it)")
    ap.add_argument("--asymmetry-weight", type=float, nargs="+", default=[0.0],
                    help="weights of the FLAIR-asymmetry map (PostConfig.asymmetry_weight), one row each (default: 0)")
    ap.add_argument("--draws", type=int, default=None,
                    help="D, the stochastic encodings averaged (default: the fast preset's, 4); the cache keys on it")
    ap.add_argument("--sweep", type=float, nargs="*", default=[5.0 + 0.5 * i for i in range(9)],
                    help="z thresholds of the pooled descriptive FROC (default: 5, 5.5, ..., 9)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ref_dir = args.reference
    if args.action == "sample":
        cpu = torch.device("cpu")
        model = load_model("phantom-default", cpu)
        sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"],  # type: ignore[arg-type]
                                                      t1_condition="native"), model)
        if args.draws is not None:
            sampler = dataclasses.replace(sampler, draws=args.draws)
        everyone = [s for c in args.cohorts for s in load_cohort(c / "bids", c / "work", model)]
        everyone += load_cohort(ref_dir / "bids", ref_dir / "work", model, controls_of(ref_dir / "bids"))
        pseudo_volumes([conditioned(s, args.t1) for s in everyone][args.worker::args.workers], model, sampler, cpu, args.cache)
        return 0
    results: dict[str, Any] = {"t1_condition": args.t1, "budget": args.budget, "rows": {}, "pooled_sweep": {}}
    prepare = None if args.t1 == "native" else functools.partial(conditioned, condition=args.t1)
    for a in args.asymmetry_weight:  # capacity.py's figures, every participant and control conditioned
        rows = {}
        for path in args.cohorts:
            row = model_row("phantom-default", path, ref_dir, "fast", args.budget, args.cache, prepare=prepare,
                            asymmetry_weight=a, sweep=args.sweep, t1_condition="native", draws=args.draws)
            rows[path.name] = row
            log.info("%s a=%g: removal %.2f  HC MAE %.3f  SSIM %.3f  sens %.3f  FP/HC %.3f  R@10 %.3f  z > %g",
                     path.name, a, row["lesion_removal_median"] or float("nan"), row["control_mae"],
                     row["control_ssim"], row["subject_sensitivity"], row["fp_clusters_per_control"], row["R@10"],
                     row["z_threshold"])
            log.info("%s a=%g: max z in lesion %s; in control brain %s", path.name, a,
                     ", ".join(f"{k} {v:.1f}" for k, v in row["lesion_max_z"].items()),
                     ", ".join(f"{k} {v:.1f}" for k, v in row["control_max_z"].items()))
        results["rows"][f"a={a:g}"] = rows
        pooled = []  # the cohorts together: lesions found and control clusters at each threshold
        for i, thr in enumerate(args.sweep):
            at = [r["sweep"][i] for r in rows.values()]
            pooled.append({"z_threshold": thr, **{k: sum(x[k] for x in at) for k in
                                                  ("lesions_found", "n_fcd", "control_clusters", "n_controls")}})
            log.info("pooled a=%g z > %.2f: %d/%d lesions, %d clusters in %d controls", a, thr,
                     pooled[-1]["lesions_found"], pooled[-1]["n_fcd"], pooled[-1]["control_clusters"],
                     pooled[-1]["n_controls"])
        results["pooled_sweep"][f"a={a:g}"] = pooled
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
