"""The real FLAIR next to its pseudo-healthy FLAIRs under each T1w condition and the FLAIR its T1w predicts.

For participants of a ``bids-fcd benchmark`` output directory (its ``bids/`` and ``work/``), one row pair per
participant (axial and sagittal through the lesion, or the grid centre for a control; the lesion outlined in
red): the real FLAIR, the histogram-matched pseudo-healthy FLAIR of the benchmark's sampler (its
``benchmark_config.json``; else the model's default) with each
``--conditions`` T1w condition, and :func:`~bids_fcd.postprocessing.anomaly.flair_from_t1w` (no network), each
titled with its mean absolute error in the brain. Pseudo-healthy volumes are read from the ``--cache`` folders
(``bids-fcd benchmark`` writes them to OUT/cache, keyed by model, sampler and input) and sampled where missing.
BENCHMARKS.md's figure of the real-anatomy section was made this way.

    python benchmarks/pseudo_healthy_figure.py BENCH_OUT --labels 00005 00003 --out FIG.png
        [--conditions mirror native] [--cache DIR ...] [--model M]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bids_fcd.nets.checkpoint import load_model  # noqa: E402
from bids_fcd.postprocessing.anomaly import flair_from_t1w  # noqa: E402
from bids_fcd.preprocessing.grid import from_slices  # noqa: E402
from bids_fcd.workflows.benchmark import recorded_sampler  # noqa: E402
from bids_fcd.workflows.cohort import load_cohort, pseudo_volumes, residual, volume_key  # noqa: E402

log = logging.getLogger("pseudo_healthy_figure")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--labels", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--conditions", nargs="+", default=["mirror", "native"])
    ap.add_argument("--cache", type=Path, nargs="*", default=None, help="folders of cached volumes (default BENCH/cache)")
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cpu = torch.device("cpu")
    model = load_model(args.model, cpu)
    subjects = load_cohort(args.bench / "bids", args.bench / "work", model, args.labels)
    caches = args.cache or [args.bench / "cache"]
    base = recorded_sampler(args.bench, model)
    fig, ax = plt.subplots(2 * len(subjects), 2 + len(args.conditions),
                           figsize=(3.3 * (2 + len(args.conditions)), 6.2 * len(subjects)), squeeze=False)
    for i, sub in enumerate(subjects):
        cols = [("real FLAIR", sub.flair)]
        for cond in args.conditions:
            sampler = dataclasses.replace(base, t1_condition=cond)  # type: ignore[arg-type]
            key = volume_key(model, sampler, sub)
            hit = next((c for c in caches if (c / f"{key}.npy").exists()), caches[0])
            raw, _ = pseudo_volumes([sub], model, sampler, cpu, hit)
            matched, _ = residual(sub.flair, raw[sub.label], sub.mask, model.net.grid, model.post,
                                  sampler.histogram_matching)
            cols.append((f"model, {cond} T1w", matched))
        cols.append(("FLAIR its T1w predicts (no network)",
                     flair_from_t1w(sub.flair, from_slices(sub.stack[:, 1]), sub.mask)))
        roi = sub.roi if sub.roi is not None else np.zeros_like(sub.mask)
        c = np.argwhere(roi).mean(0).astype(int) if roi.any() else np.array(sub.mask.shape) // 2
        for j, (name, vol) in enumerate(cols):
            v = np.where(sub.mask, vol, np.nan)
            for r, sl, rs in ((2 * i, v[:, :, c[2]].T, roi[:, :, c[2]].T), (2 * i + 1, v[c[0], :, :].T, roi[c[0], :, :].T)):
                ax[r, j].imshow(sl, origin="lower", cmap="gray", vmin=-0.2, vmax=1.6)
                if rs.any():
                    ax[r, j].contour(rs, [0.5], colors="r", linewidths=0.7)
            mae = f"\nMAE in the brain {float(np.abs(sub.flair - vol)[sub.mask].mean()):.3f}" if j else ""
            ax[2 * i, j].set_title(f"sub-{sub.label} ({sub.group}): {name}{mae}", fontsize=8)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=72)
    log.info("wrote %s", args.out)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
