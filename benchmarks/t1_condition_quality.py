"""How well the pseudo-healthy FLAIR fits each participant under each T1w condition, without a reference.

For the test cohort of a ``bids-fcd benchmark`` output directory (its preprocessing cache; pseudo-healthy volumes
from OUT/cache, sampled where missing), the benchmark's sampler (its ``benchmark_config.json``) is run with
each ``--t1-condition`` and scored by :func:`bids_fcd.workflows.benchmark.synthesis_quality`: the controls'
error in the cortex (MAE, SSIM; a network shown another hemisphere's folding draws the wrong sulci and errs
more) and each lesion's removal (how much more the real FLAIR exceeds the pseudo-healthy one inside the lesion
than around it; a network that redraws the lesion from its T1w signs removes less). Detection needs a reference
per condition (``bids-fcd benchmark --t1-condition``); this is the cheap half of that comparison.

    python benchmarks/t1_condition_quality.py BENCH_OUT [--conditions mirror native symmetric] [--model M]
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

from bids_fcd.nets.checkpoint import load_model
from bids_fcd.workflows.benchmark import cortex_on_grid, recorded_sampler, synthesis_quality
from bids_fcd.workflows.cohort import load_cohort, pseudo_volumes

log = logging.getLogger("t1_condition_quality")


def quality_by_condition(bench: Path, conditions: list[str], model_name: str | None) -> dict[str, dict[str, Any]]:
    """{condition: synthesis_quality of the benchmark's test cohort} with the benchmark's sampler."""
    cpu = torch.device("cpu")
    model = load_model(model_name, cpu)
    subjects = load_cohort(bench / "bids", bench / "work", model)
    cortex = cortex_on_grid(model)
    base = recorded_sampler(bench, model)
    out = {}
    for cond in conditions:
        sampler = dataclasses.replace(base, t1_condition=cond)  # type: ignore[arg-type]
        volumes, _ = pseudo_volumes(subjects, model, sampler, cpu, bench / "cache")
        q = synthesis_quality(subjects, volumes, cortex, sampler.histogram_matching)
        out[cond] = q
        log.info("%s: control MAE %.4f, SSIM %.4f, lesion removal median %.3f (per lesion %s)", cond,
                 q["control_mae"], q["control_ssim"], q["lesion_removal_median"],
                 ", ".join(f"{k} {v:.2f}" for k, v in q["lesion_removal_per_subject"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--conditions", nargs="+", default=["mirror", "native"],
                    choices=("native", "symmetric", "mirror"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    res = quality_by_condition(args.bench, args.conditions, args.model)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=lambda o: float(o) if np.isscalar(o) else str(o)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
