"""The 3D healthy-brain DDPM on phantom controls, measured as the seed paper reports it.

Trains the ``cpu`` preset (or another) of :mod:`bids_fcd.synthesis.brain3d` on the T1w of reference controls
(the model grid of the shipped detection model, 2 mm, block-mean downsampled to 4 mm), samples as many
synthetic brains as there are held-out real controls and compares, with 1000-resample bootstrap 95 % CIs:
unbiased MMD² (Gaussian kernel, median heuristic from the real sets) synthetic vs held-out against real
training vs held-out and a subject-disjoint split-half of all real volumes; KID and the Fréchet distance on
a fixed random 3D convolutional network (not Inception: **not comparable to published FID/KID**); MS-SSIM
within each set (diversity; lower = more diverse). Writes OUT/results.json, OUT/results.md and
OUT/brains.png (central slices, synthetic next to real).

    python benchmarks/brains3d.py BENCH_OUT VALIDATION_DIR OUT [--preset cpu] [--n-train 30] [--threads 1]
        [--max-minutes M] [--steps N] [--seed 0]

BENCH_OUT holds ref-bids/ref-work (the reference controls, training set and part of the held-out set) and
bids/work (whose controls are held out); VALIDATION_DIR bids/work likewise (as for rescore.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bids_fcd.bids.participants import is_control  # noqa: E402
from bids_fcd.io import write_json, write_text  # noqa: E402
from bids_fcd.nets.checkpoint import load_model  # noqa: E402
from bids_fcd.synthesis import brain3d, metrics  # noqa: E402
from bids_fcd.workflows.cohort import Subject, controls_of, load_cohort  # noqa: E402

log = logging.getLogger("brains3d")


@dataclasses.dataclass(frozen=True)
class _Slices:
    """The two fields of a preprocessed participant that :func:`brain3d.volume_from_subject` reads."""

    stack: np.ndarray  # (S, 2, H, W)
    mask: np.ndarray  # (S, H, W)


def volumes(subs: list[Subject], cfg: brain3d.BrainDDPMConfig) -> np.ndarray:
    """(N, C, X, Y, Z) float32 in [−1, 1] of the participants' brain-masked T1w."""
    return np.stack([brain3d.volume_from_subject(_Slices(s.stack, s.mask_s), cfg) for s in subs])  # type: ignore[arg-type]


def _est(e: metrics.Estimate) -> dict[str, float]:
    return {"value": e.value, "low": e.low, "high": e.high}


def compare(train: np.ndarray, held: np.ndarray, syn: np.ndarray, seed: int) -> dict[str, object]:
    """The paper's table for three sets of volumes (N, C, X, Y, Z)."""
    rng = np.random.default_rng(seed)
    sigma = metrics.median_bandwidth(metrics._flat(train), metrics._flat(held))  # fixed by the real sets
    real_all = np.concatenate([train, held])
    net = metrics.RandomFeatures(in_channels=train.shape[1], spatial_dims=3)
    f = {k: metrics.features(v, net, batch=4) for k, v in (("train", train), ("held", held), ("syn", syn))}
    div = {k: metrics.ms_ssim_diversity(v, rng) for k, v in (("held-out real", held), ("training real", train),
                                                              ("synthetic", syn))}
    return {
        "n": {"train": len(train), "held_out": len(held), "synthetic": len(syn)},
        "mmd2": {"synthetic_vs_held_out": _est(metrics.mmd_bootstrap(syn, held, rng, bandwidth=sigma)),
                 "real_train_vs_held_out": _est(metrics.mmd_bootstrap(train, held, rng, bandwidth=sigma)),
                 "real_split_half": _est(metrics.split_half_mmd(real_all, rng, bandwidth=sigma))},
        "kid_random_features": {"synthetic_vs_held_out": _est(metrics.kid(f["syn"], f["held"], rng)),
                                "real_train_vs_held_out": _est(metrics.kid(f["train"], f["held"], rng))},
        "frechet_random_features": {
            "synthetic_vs_held_out": _est(metrics.frechet_bootstrap(f["syn"], f["held"], rng)),
            "real_train_vs_held_out": _est(metrics.frechet_bootstrap(f["train"], f["held"], rng))},
        "ms_ssim_diversity": {k: _est(v) for k, v in div.items()},
    }


def figure(path: Path, real: np.ndarray, syn: np.ndarray, n: int = 4) -> None:
    """Central axial, coronal and sagittal slices: n real brains (top) above n synthetic ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bids_fcd.io import atomic_path

    fig, ax = plt.subplots(2 * 3, n, figsize=(2.0 * n, 11))
    for row, (name, vols) in enumerate((("real", real), ("synthetic", syn))):
        for i in range(n):
            v = vols[i, 0]
            views = (v[:, :, v.shape[2] // 2].T, v[:, v.shape[1] // 2, :].T, v[v.shape[0] // 2, :, :].T)
            for k, img in enumerate(views):
                a = ax[row * 3 + k, i]
                a.imshow(img, origin="lower", cmap="gray", vmin=-1, vmax=1)
                a.axis("off")
                if i == 0 and k == 0:
                    a.set_title(f"{name} T1w", fontsize=9, loc="left")
    fig.suptitle("3D DDPM (cpu preset, 4 mm): real phantom controls (top) and synthetic brains (bottom)",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def markdown(res: dict[str, object]) -> str:
    def f(e: dict[str, float]) -> str:
        return f"{e['value']:.4g} [{e['low']:.4g}, {e['high']:.4g}]"

    mmd, kid, fd, div = (res[k] for k in ("mmd2", "kid_random_features", "frechet_random_features",
                                          "ms_ssim_diversity"))
    rows = ["| comparison | MMD² [95 % CI] | KID, random 3D features [CI] | Fréchet, random 3D features [CI] |",
            "|---|---|---|---|",
            f"| synthetic vs held-out real | {f(mmd['synthetic_vs_held_out'])} | {f(kid['synthetic_vs_held_out'])} | "  # type: ignore[index]
            f"{f(fd['synthetic_vs_held_out'])} |",  # type: ignore[index]
            f"| real training vs held-out real | {f(mmd['real_train_vs_held_out'])} | "  # type: ignore[index]
            f"{f(kid['real_train_vs_held_out'])} | {f(fd['real_train_vs_held_out'])} |",  # type: ignore[index]
            f"| real split-half (subject-disjoint) | {f(mmd['real_split_half'])} | | |", "",  # type: ignore[index]
            "| set | MS-SSIM within the set [95 % CI] |", "|---|---|"]
    rows += [f"| {k} | {f(v)} |" for k, v in div.items()]  # type: ignore[union-attr]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="cpu", choices=sorted(brain3d.BRAIN_PRESETS))
    ap.add_argument("--n-train", type=int, default=30, help="reference controls used for training")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    overrides = {k: v for k, v in (("max_minutes", args.max_minutes), ("steps", args.steps)) if v is not None}
    cfg = brain3d.resolve_config(args.preset, overrides)
    model = load_model("phantom-default", cpu)
    refs = load_cohort(args.bench / "ref-bids", args.bench / "ref-work", model, controls_of(args.bench / "ref-bids"))
    others = [s for d in (args.bench, args.validation) for s in load_cohort(d / "bids", d / "work", model)
              if is_control(s.group)]
    train_subs, held_subs = refs[: args.n_train], refs[args.n_train:] + others
    x_train, x_held = volumes(train_subs, cfg), volumes(held_subs, cfg)
    log.info("3D DDPM benchmark: %d training, %d held-out real volumes %s", len(x_train), len(x_held),
             x_train.shape[1:])
    model_dir = args.out / "model"
    t0 = time.time()
    sha = brain3d.train_from_volumes(cfg, torch.from_numpy(x_train), model_dir, cpu,
                                     {"participants": [s.label for s in train_subs], "grid": dataclasses.asdict(
                                         model.net.grid)})
    train_s = time.time() - t0
    loaded = brain3d.load_brain_model(model_dir, cpu)
    t0 = time.time()
    syn = brain3d.sample(loaded.model, cfg.net, len(x_held), cfg.sample, args.seed).numpy()
    sample_s = time.time() - t0
    res = compare(x_train, x_held, syn, args.seed)
    res.update(preset=cfg.preset, model_sha256=sha, train_seconds=round(train_s, 1),
               sample_seconds=round(sample_s, 1), threads=args.threads, device="cpu",
               train_steps_done=json.loads((model_dir / "config.json").read_text()).get("meta", {}).get("final"),
               held_out=[s.label for s in held_subs], date=time.strftime("%Y-%m-%d"))
    write_json(args.out / "results.json", res)
    write_text(args.out / "results.md", markdown(res) + "\n")
    figure(args.out / "brains.png", x_held, syn)
    print(markdown(res))
    print(f"train {train_s:.0f} s, sample {sample_s:.0f} s ({len(syn)} volumes), model {sha[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
