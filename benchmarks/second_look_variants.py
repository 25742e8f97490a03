"""Second-look variants: how much the inpainting raises the residual inside lesions, against how
much it errs on the healthy tissue it also regenerates.

For each participant of a cohort (default: the validation cohort's FCD participants and controls) the default
first pass is read from (or written to) the cache, the second look is run with each variant's settings, and
per variant the table gives, over the participants: the mean shift and the SD and 99th percentile of the
smoothed residual (FLAIR − histogram-matched x̂_0, 4 mm) in the healthy parts of the holes (more than 6 mm from
any lesion), the same SD in the first pass, and the mean residual inside the lesions before and after, with the
second look's time (sampled in this run, so ratios between rows hold).

    python benchmarks/second_look_variants.py COHORT [--labels L ...] [--variant "look_t1='clean'" ...]
        [--cache DIR] [--threads N] [--json OUT.json]

COHORT holds ``bids/`` and ``work/`` (as for ``capacity.py``). A variant is a comma-separated list of
``SamplerConfig`` look settings (Python literals); the empty variant is the default second look.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from bids_fcd.config import SAMPLER_PRESETS, GridConfig, PostConfig, SamplerConfig
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.preprocessing.grid import from_slices
from bids_fcd.workflows.analysis import residual, resolve_sampler, sampled_slices, second_look
from bids_fcd.workflows.cohort import Subject, load_cohort, pseudo_volumes

log = logging.getLogger("second_look_variants")


def settings(variant: str) -> dict[str, Any]:
    """``"look_t1='clean',look_draws=4"`` → {"look_t1": "clean", "look_draws": 4} (literals only)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in variant.split(","))):
        key, _, value = part.partition("=")
        out[key.strip()] = ast.literal_eval(value.strip())
    return out


def smoothed_residual(sub: Subject, pseudo: np.ndarray, grid: GridConfig) -> np.ndarray:
    """FLAIR − histogram-matched x̂_0, smoothed within the brain: the default anomaly map."""
    return residual(sub.flair, pseudo, sub.mask, grid, PostConfig(), histogram_matching=True)[1]


def mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over the rows that have it."""
    vals = [float(r[key]) for r in rows if r[key] is not None]
    return float(np.mean(vals)) if vals else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cohort", type=Path)
    ap.add_argument("--labels", nargs="+", help="participants (default: all)")
    ap.add_argument("--variant", nargs="+", default=[""], help="look settings per variant ('' = the default)")
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--cache", type=Path, help="first-pass volumes (default: COHORT/cache)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    model = load_model(args.model, cpu)
    base = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"]), model)  # type: ignore[arg-type]
    subs = load_cohort(args.cohort / "bids", args.cohort / "work", model, args.labels)
    first, _ = pseudo_volumes(subs, model, base, cpu, args.cache or args.cohort / "cache")
    r1 = {s.label: smoothed_residual(s, first[s.label], model.net.grid) for s in subs}
    rows = []
    for variant in args.variant:
        look = dataclasses.replace(base, second_look="inpaint", **settings(variant))
        per: list[dict[str, Any]] = []
        t0 = time.time()
        for s in subs:
            todo = sampled_slices(model.net.grid, s.mask_s, "all")
            p2 = from_slices(second_look(model, s.stack, s.mask_s, todo, from_slices(first[s.label]), look, cpu))
            hole = (p2 != first[s.label]) & s.mask
            roi = s.roi if s.roi is not None and s.roi.any() else np.zeros_like(s.mask)
            healthy = hole & ~ndimage.binary_dilation(roi, iterations=3)
            r2 = smoothed_residual(s, p2, model.net.grid)
            per.append({"label": s.label, "hole_fraction": float(hole[s.mask].mean()),
                        "shift": float(r2[healthy].mean() - r1[s.label][healthy].mean()) if healthy.any() else None,
                        "sd_first": float(r1[s.label][healthy].std()) if healthy.any() else None,
                        "sd": float(r2[healthy].std()) if healthy.any() else None,
                        "p99": float(np.quantile(r2[healthy], 0.99)) if healthy.any() else None,
                        "lesion_first": float(r1[s.label][roi].mean()) if roi.any() else None,
                        "lesion": float(r2[roi].mean()) if roi.any() else None,
                        "lesion_in_holes": float(hole[roi].mean()) if roi.any() else None})
        seconds = (time.time() - t0) / max(len(subs), 1)
        rows.append({"variant": variant or "default", "seconds_per_subject": seconds, "per_subject": per,
                     **{k: mean_of(per, k) for k in ("hole_fraction", "shift", "sd_first", "sd", "p99", "lesion_first",
                                             "lesion", "lesion_in_holes")}})
    cols = ("variant", "seconds_per_subject", "hole_fraction", "shift", "sd_first", "sd", "p99", "lesion_first",
            "lesion", "lesion_in_holes")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |"
              for r in rows]
    log.info("\n%s", "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
