#!/usr/bin/env python
"""Augmentation benchmark: do JS-DDPM synthetic lesion slices help?

Two experiments, each with a real-only and a real + synthetic arm (same seeds, same steps):

1. the product's guidance (lobe) classifier: lesion-slice AUC of 1 − C(healthy | x_t, t) per t;
2. a supervised 2D MONAI UNet segmenter (FLAIR only in both arms: synthetic slices have no T1w):
   Dice, HD95, subject-level detection (largest cluster hits the lesion) and false-positive
   clusters per control.

Both train on the ``split == train`` participants of TRAIN_BIDS (the JS-DDPM's training set) and are
scored on every participant of TEST_BIDS (a cohort never used for training), on the JS-DDPM's grid
(the product grid downsampled ×2: 48×48 at 4 mm in-plane, 2 mm slices). Synthetic slices are drawn
``--per-real`` per real lesion slice at its z-bin and take its lobe label. Prints one markdown
table; writes OUT/results.md and OUT/results.json (samples cached in OUT/synthetic.npz).

    .venv/bin/python benchmarks/augmentation.py TRAIN_BIDS TRAIN_WORK TEST_BIDS TEST_WORK JSDDPM_DIR OUT \
        [--seeds 0 1 2] [--per-real 2] [--clf-epochs 12] [--seg-steps 1500] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bids_fcd.bids.participants import read_participants
from bids_fcd.config import GridConfig
from bids_fcd.evaluation.metrics import roc_auc
from bids_fcd.synthesis import augment, jsddpm, lesions, segmenter
from bids_fcd.synthesis.data import load_bids_subjects, make_token
from bids_fcd.training.datasets import SliceDataset, SubjectSlices

log = logging.getLogger("benchmarks.augmentation")
ARMS = ("real", "real+synthetic")
#: the optional segmenter reference: real slices with both channels (synthetic slices have no T1w)
T1W_ARM = "real, FLAIR + T1w"


def synthetic_slices(model_dir: Path, z: np.ndarray, seed: int, cache: Path, steps: int | None) -> tuple[np.ndarray, dict]:
    """JS-DDPM lesion samples (N, 2, h, w) for z-bins z (N,), read back from ``cache`` when the model,
    steps, seed and tokens match."""
    model = lesions.load_lesion_model(model_dir, torch.device("cpu"))
    cfg = model.config
    if steps:
        cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, steps=steps))
    tokens = make_token(z, 1, cfg.net.n_bins)
    key = f"{model.sha256}-{cfg.sample.steps}-{seed}"
    info = {"model_sha256": model.sha256, "ddim_steps": cfg.sample.steps, "seed": seed, "n": int(len(tokens))}
    if cache.exists():
        c = np.load(cache)
        if str(c["key"]) == key and np.array_equal(c["tokens"], tokens):
            log.info("synthetic slices read back from %s", cache)
            return c["x"], {**info, "seconds": float(c["seconds"]), "cached": True}
    t0 = time.time()
    x = jsddpm.sample(model.model, cfg.net, torch.from_numpy(tokens), cfg.sample, seed).numpy()
    sec = time.time() - t0
    np.savez_compressed(cache, x=x, tokens=tokens, key=key, seconds=sec)
    return x, {**info, "seconds": sec, "cached": False}


def flair_slices(subs: list[SubjectSlices], min_brain: float, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Brain slices of subjects: FLAIR (N, 1, h, w) (FLAIR ‖ T1w with ``channels`` 2) and lesion (N, 1, h, w)."""
    xs, ys = [], []
    for s in subs:
        keep = s.mask.reshape(len(s.mask), -1).mean(axis=1) >= min_brain
        xs.append(s.stack[keep][:, :channels])
        roi = np.zeros(s.mask.shape, bool) if s.roi is None else np.asarray(s.roi, bool)
        ys.append(roi[keep][:, None])
    return torch.from_numpy(np.concatenate(xs)).float(), torch.from_numpy(np.concatenate(ys).astype(np.float32))


def mean_sd(v: list[float]) -> str:
    a = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    if not len(a):
        return "n/a"
    return f"{a.mean():.3f} ± {a.std(ddof=1):.3f}" if len(a) > 1 else f"{a.mean():.3f}"


def table(res: dict) -> str:
    ts = res["timesteps"]
    lines = classifier_table(res, ts) if res["classifier"] else []
    if res["segmenter"]:
        lines += segmenter_table(res)
    return "\n".join(lines + verdict_lines(res)) + "\n"


def classifier_table(res: dict, ts: list[int]) -> list[str]:
    lines = ["Guidance classifier, lesion-slice AUC of 1 − C(healthy | x_t, t) on the test cohort "
             f"(mean ± sd over seeds {res['seeds']}):", "",
             "| arm | " + " | ".join(f"t = {t}" for t in ts) + " | train slices (lesion) | steps | s / run |",
             "|---|" + "---|" * (len(ts) + 3)]
    for arm in ARMS:
        runs = res["classifier"][arm]
        cells = [mean_sd([r["auc"][f"t={t}"] for r in runs]) for t in ts]
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {runs[0]['slices']} ({runs[0]['lesion_slices']}) | "
                     f"{runs[0]['steps']} | {np.mean([r['seconds'] for r in runs]):.0f} |")
    d = res["classifier_delta"]
    lines.append("| Δ (paired by seed) | " + " | ".join(mean_sd(d[f"t={t}"]) for t in ts) + " | | | |")
    eps = sorted({int(e) for r in res["classifier"]["real"] for e in r["auc_by_epoch"]})
    if len(eps) > 1:
        lines += ["", "The same runs scored after each of these epochs (mean over seeds; Δ paired by seed):", "",
                  "| epoch | " + " | ".join(f"real t = {t} | +synthetic | Δ" for t in ts) + " |",
                  "|---|" + "---|---|---|" * len(ts)]
        for e in eps:
            cells = []
            for t in ts:
                r0 = [r["auc_by_epoch"][e][f"t={t}"] for r in res["classifier"]["real"]]
                r1 = [r["auc_by_epoch"][e][f"t={t}"] for r in res["classifier"]["real+synthetic"]]
                cells += [f"{np.mean(r0):.3f}", f"{np.mean(r1):.3f}", f"{np.mean(np.subtract(r1, r0)):+.3f}"]
            lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return lines


def segmenter_table(res: dict) -> list[str]:
    lines = ["", "Supervised segmenter (MONAI UNet; FLAIR only unless the arm says FLAIR + T1w), test cohort "
              f"(mean ± sd over seeds {res['seeds']}):", "",
              "| arm | Dice (FCD subjects) | HD95 mm | detected (largest cluster; per seed) | FP clusters / control | "
              "FP clusters / FCD subject | voxel AUC (brain, FCD subjects) | train loss (last 100) | "
              "train slices (lesion) | s / run |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in res["segmenter"]:
        runs = res["segmenter"][arm]
        lines.append(f"| {arm} | {mean_sd([r['dice_mean'] for r in runs])} | {mean_sd([r['hd95_mean'] for r in runs])} | "
                     f"{', '.join(str(r['detected']) for r in runs)} of {runs[0]['n_fcd']} | "
                     f"{mean_sd([r['fp_per_control'] for r in runs])} | {mean_sd([r['fp_per_fcd'] for r in runs])} | "
                     f"{mean_sd([r['voxel_auc'] for r in runs])} | {mean_sd([r['final_loss'] for r in runs])} | "
                     f"{runs[0]['slices']} ({runs[0]['lesion_slices']}) | {np.mean([r['seconds'] for r in runs]):.0f} |")
    return lines


def verdict_lines(res: dict) -> list[str]:
    v = res["verdicts"]
    return ["", f"Targets: classifier AUC up by ≥ 0.05 at every t ≤ 300 (mean paired Δ): **{v['auc_up_005']}**; "
              f"segmenter Dice with augmentation ≥ without (mean over seeds): **{v['dice_not_lower']}**.", "",
              f"Synthetic: {res['synthetic']['n']} JS-DDPM lesion slices ({res['synthetic']['per_real']} per real "
              f"lesion slice, {res['synthetic']['dropped_empty']} dropped for an empty mask), "
              f"{res['synthetic']['ddim_steps']} DDIM steps, {res['synthetic']['seconds']:.0f} s"
              f"{' (cached)' if res['synthetic']['cached'] else ''}; model {res['synthetic']['model_sha256'][:12]}."]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train_bids", type=Path)
    p.add_argument("train_work", type=Path)
    p.add_argument("test_bids", type=Path)
    p.add_argument("test_work", type=Path)
    p.add_argument("jsddpm", type=Path, help="JS-DDPM model directory (bids-fcd synthesize lesions train)")
    p.add_argument("out", type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--per-real", type=float, default=2.0, help="synthetic slices per real lesion slice")
    p.add_argument("--sample-seed", type=int, default=6101)
    p.add_argument("--sample-steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--clf-epochs", type=int, default=12)
    p.add_argument("--auc-epochs", type=int, nargs="*", default=[1, 3, 6],
                   help="also score the classifier after these epochs (same runs)")
    p.add_argument("--seg-steps", type=int, default=1500)
    p.add_argument("--timesteps", type=int, nargs="+", default=[0, 100, 200, 300, 500])
    p.add_argument("--t1w-reference", action="store_true",
                   help="also train the segmenter on real FLAIR + T1w (a reference row; not an augmentation arm)")
    p.add_argument("--skip", choices=("classifier", "segmenter"), default=None)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)
    t_all = time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    model = lesions.load_lesion_model(a.jsddpm, torch.device("cpu"))
    jcfg = model.config
    factor, fmax, min_brain = jcfg.data.downsample, jcfg.data.flair_max, jcfg.data.min_brain_fraction
    grid = GridConfig()
    rows = read_participants(a.train_bids)
    train_ids = sorted(k for k, r in rows.items() if r.get("split") == "train")
    test_ids = sorted(read_participants(a.test_bids))
    train = [augment.downsample_subject(s, factor, fmax) for s in load_bids_subjects(a.train_bids, a.train_work, grid, train_ids)]
    test_all = [augment.downsample_subject(s, factor, fmax)
                for s in load_bids_subjects(a.test_bids, a.test_work, grid, test_ids)]
    # a patient whose lesion has no voxel on the grid (a tiny lesion lost to partial volume) is neither a
    # lesion subject nor a control: left out of both experiments, and named in results.json
    groups = {k: r.get("group", "n/a") for k, r in read_participants(a.test_bids).items()}
    test = [s for s in test_all if groups.get(s.subject) == "hc" or (s.roi is not None and s.roi.any())]
    kept = {s.subject for s in test}
    lost = [s.subject for s in test_all if s.subject not in kept]
    les = augment.lesion_slices(train, jcfg.net.n_bins, min_brain)
    src = augment.matched_sources(len(les), a.per_real, np.random.default_rng(a.sample_seed))
    syn_x, syn_info = synthetic_slices(a.jsddpm, np.array([les[i].z_bin for i in src], np.int64), a.sample_seed,
                                       a.out / "synthetic.npz", a.sample_steps)
    syn_subs, dropped = augment.synthetic_subjects(syn_x, [les[i].lobe for i in src], fmax, jcfg.sample.mask_min_pixels)
    net = augment.classifier_net(augment.coarse_grid(grid, factor))
    res: dict = {"seeds": a.seeds, "timesteps": a.timesteps, "train_participants": train_ids,
                 "test_participants": [s.subject for s in test],
                 "test_left_out_no_lesion_on_grid": lost,
                 "grid": {"shape": list(net.grid.shape), "spacing_mm": net.grid.spacing_mm, "slice_mm": grid.spacing_mm},
                 "synthetic": {**syn_info, "per_real": a.per_real, "dropped_empty": dropped,
                               "real_lesion_slices": len(les)},
                 "device": f"{platform.machine()} CPU, torch {torch.__version__}, {a.threads} thread(s)",
                 "classifier": {}, "segmenter": {}}
    sets = {"real": train, "real+synthetic": train + syn_subs}

    if a.skip != "classifier":
        x_te, y_te = flair_slices(test, min_brain)
        lesion_te = (y_te.flatten(1) > 0).any(dim=1).numpy()
        n_real = len(SliceDataset(train, min_brain, channels=1))
        for arm in ARMS:
            ds = SliceDataset(sets[arm], min_brain, channels=1)
            res["classifier"][arm] = []
            for seed in a.seeds:
                cfg = augment.ClassifierRunConfig(epochs=a.clf_epochs, draws_per_epoch=n_real, seed=seed)
                by_epoch: dict[int, dict] = {}

                def at_epoch(ep: int, clf: torch.nn.Module, seed: int = seed, by_epoch: dict = by_epoch) -> None:
                    if ep in a.auc_epochs and ep != a.clf_epochs:
                        by_epoch[ep] = augment.auc_per_t(clf, net, x_te, lesion_te, a.timesteps, seed=1000 + seed)

                r = augment.train_classifier(net, cfg, ds, on_epoch=at_epoch)
                auc = augment.auc_per_t(r.classifier, net, x_te, lesion_te, a.timesteps, seed=1000 + seed)
                by_epoch[a.clf_epochs] = auc
                log.info("classifier %s seed %d: %s (%.0f s)", arm, seed, auc, r.seconds)
                res["classifier"][arm].append({"seed": seed, "auc": auc, "auc_by_epoch": by_epoch, "steps": r.steps,
                                               "seconds": r.seconds,
                                               "slices": len(ds), "lesion_slices": int((ds.labels > 0).sum()),
                                               "final": r.log[-1], "config": dataclasses.asdict(cfg)})
        res["classifier_test"] = {"slices": int(len(x_te)), "lesion_slices": int(lesion_te.sum())}
        res["classifier_delta"] = {f"t={t}": [b["auc"][f"t={t}"] - r0["auc"][f"t={t}"] for r0, b in
                                              zip(res["classifier"]["real"], res["classifier"]["real+synthetic"],
                                                  strict=True)] for t in a.timesteps}

    if a.skip != "segmenter":
        spacing = (grid.spacing_mm, net.grid.spacing_mm, net.grid.spacing_mm)
        sets[T1W_ARM] = train
        for arm in ARMS + ((T1W_ARM,) if a.t1w_reference else ()):
            ch = 2 if arm == T1W_ARM else 1
            x_tr, y_tr = flair_slices(sets[arm], min_brain, ch)
            res["segmenter"][arm] = []
            for seed in a.seeds:
                cfg = segmenter.SegmenterConfig(in_channels=ch, steps=a.seg_steps, seed=seed)
                r = segmenter.train_segmenter(cfg, x_tr, y_tr)
                scores, vp, vl = {}, [], []
                for s in test:
                    prob = segmenter.predict(r.model, torch.from_numpy(s.stack[:, :ch]).float()) * s.mask
                    scores[s.subject] = segmenter.score_subject(prob, s.roi, cfg.threshold, cfg.min_cluster_voxels, spacing)
                    if s.roi is not None:
                        vp.append(prob[s.mask])
                        vl.append(np.asarray(s.roi, bool)[s.mask])
                fcd = [v for v in scores.values() if v.detected is not None]
                hc = [v for v in scores.values() if v.detected is None]
                out = {"seed": seed, "seconds": r.seconds, "slices": int(len(x_tr)),
                       "lesion_slices": int((y_tr.flatten(1) > 0).any(dim=1).sum()), "n_fcd": len(fcd), "n_hc": len(hc),
                       "dice_mean": float(np.mean([v.dice for v in fcd])),
                       "hd95_mean": float(np.nanmean([v.hd95_mm for v in fcd])) if any(np.isfinite(v.hd95_mm) for v in fcd)
                       else float("nan"),
                       "detected": int(sum(bool(v.detected) for v in fcd)),
                       "fp_per_control": float(np.mean([v.false_positive_clusters for v in hc])) if hc else float("nan"),
                       "fp_per_fcd": float(np.mean([v.false_positive_clusters for v in fcd])),
                       "final_loss": float(np.mean(r.losses[-100:])),
                       "voxel_auc": roc_auc(np.concatenate(vp), np.concatenate(vl)) if vp else None,
                       "config": dataclasses.asdict(cfg),
                       "subjects": {k: dataclasses.asdict(v) for k, v in scores.items()}}
                log.info("segmenter %s seed %d: Dice %.3f, detected %d/%d, FP/HC %.2f (%.0f s)", arm, seed,
                         out["dice_mean"], out["detected"], len(fcd), out["fp_per_control"], r.seconds)
                res["segmenter"][arm].append(out)

    auc_ok = a.skip != "classifier" and all(
        np.mean(res["classifier_delta"][f"t={t}"]) >= 0.05 for t in a.timesteps if t <= 300)
    dice_ok: bool | str = "n/a"
    if a.skip != "segmenter":
        d_real, d_aug = (float(np.mean([r["dice_mean"] for r in res["segmenter"][k]])) for k in ARMS)
        # both arms at Dice 0 is no evidence either way
        dice_ok = "n/a (both arms Dice 0)" if max(d_real, d_aug) == 0 else bool(d_aug >= d_real)
    res["verdicts"] = {"auc_up_005": bool(auc_ok), "dice_not_lower": dice_ok}
    res["seconds"] = time.time() - t_all
    text = table(res)
    print(text)
    cmd = "    .venv/bin/python benchmarks/augmentation.py " + " ".join(argv)
    (a.out / "results.md").write_text(f"# Augmentation benchmark (issue #19)\n\nCommand:\n\n{cmd}\n\n"
                                      f"Device: {res['device']}; {res['seconds']:.0f} s in all.\n\n{text}")
    (a.out / "results.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
