"""Oracle diagnostic: does the T1w condition carry a lesion into the pseudo-healthy FLAIR?

For every FCD participant of a test and a validation cohort, the T1w inside the lesion (dilated 2 voxels) is
exchanged with the T1w of the mirror region in the other hemisphere (the template is left-right symmetric and
the grid is centred on x = 0, so axis 0 reversed is the mirror, as for the asymmetry baseline), the FLAIR is
left as it is, and the sampler is run again.
Per lesion: the mean residual (FLAIR − histogram-matched pseudo-healthy, unsmoothed) inside the lesion and
inside the mirror region, with the default inputs and with the T1w exchanged, and the mean |residual| far
from both. It uses the lesion masks, so it is a diagnostic, not a method.

    python benchmarks/t1_swap.py BENCH_OUT VALIDATION_DIR [--worker K --workers N] [--limit M]
        [--json OUT.json]

BENCH_OUT and VALIDATION_DIR as for ``rescore.py`` (their ``bids/`` and ``work/``; default-sampler
volumes are read from, or written to, BENCH_OUT/cache). ``--worker``/``--workers`` split the participants over
processes (each writes its own JSON); one thread per process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from bids_fcd.config import SAMPLER_PRESETS, SamplerConfig
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.postprocessing.histmatch import match_histogram
from bids_fcd.preprocessing.grid import from_slices, to_slices
from bids_fcd.workflows.analysis import resolve_sampler, synthesise
from bids_fcd.workflows.cohort import load_cohort, pseudo_volumes

log = logging.getLogger("t1_swap")

def residuals(flair: np.ndarray, pseudo_raw: np.ndarray, mask: np.ndarray, roi: np.ndarray, mroi: np.ndarray,
              ) -> dict[str, float | None]:
    """Mean residual in the lesion and its mirror, and mean |residual| away from both."""
    res = flair - np.where(mask, match_histogram(pseudo_raw, flair, mask), flair)
    far = mask & ~ndimage.binary_dilation(roi, iterations=5) & ~ndimage.binary_dilation(mroi, iterations=5)
    return {"lesion": float(res[roi].mean()), "mirror": float(res[mroi].mean()) if mroi.any() else None,
            "abs_far": float(np.abs(res[far]).mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("--model", default="phantom-default")
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit", type=int, help="at most this many participants (a quick check)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    model = load_model(args.model, cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"]), model)  # type: ignore[arg-type]
    subs = [("test", s) for s in load_cohort(args.bench / "bids", args.bench / "work", model)]
    subs += [("validation", s) for s in load_cohort(args.validation / "bids", args.validation / "work", model)]
    subs = [(c, s) for c, s in subs if s.roi is not None and s.roi.any()][args.worker::args.workers][: args.limit]
    out = {}
    for cohort, s in subs:
        if s.roi is None:  # filtered above; narrows the type
            continue
        raw, _ = pseudo_volumes([s], model, sampler, cpu, args.bench / "cache")
        flair, t1 = from_slices(s.stack[:, 0]), from_slices(s.stack[:, 1])
        hole = ndimage.binary_dilation(s.roi, iterations=2) & s.mask
        mhole = hole[::-1] & s.mask & ~hole
        t1_swapped = np.where(hole | mhole, t1[::-1], t1)  # each side gets the other side's T1w
        swapped = from_slices(synthesise(model, to_slices(flair, t1_swapped), s.mask_s, sampler, cpu))
        mroi = s.roi[::-1] & s.mask & ~hole
        row = {"cohort": cohort, "voxels": int(s.roi.sum()),
               "default": residuals(flair, raw[s.label], s.mask, s.roi, mroi),
               "t1_swapped": residuals(flair, swapped, s.mask, s.roi, mroi)}
        out[f"{cohort}/{s.label}"] = row
        log.info("%s/%s %s", cohort, s.label, row)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
