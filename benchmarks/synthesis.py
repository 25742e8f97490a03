#!/usr/bin/env python
"""JS-DDPM benchmark: train on the train split of a BIDS cohort with ``_roi`` masks,
sample as many synthetic lesion (and control) slices as the training split has, compare with the
held-out test split; prints one table and writes it (plus results.json) as markdown.

    .venv/bin/python benchmarks/synthesis.py BIDS WORK MODEL_DIR RESULTS.md [--preset cpu] [--seed 600]
        [--prediction sample|v_prediction|epsilon] [--no-self-conditioning] [--no-kendall]

The model is trained only when MODEL_DIR holds no finished model (so a re-run only re-measures).
Uses the product's preprocessing (cached in WORK) and ``bids_fcd.synthesis``.
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

from bids_fcd.bids.participants import read_participants
from bids_fcd.config import GridConfig, to_dict
from bids_fcd.synthesis import evaluate, jsddpm, lesions
from bids_fcd.synthesis.data import load_bids_subjects, make_token, pairs_from_subjects

log = logging.getLogger("benchmarks.synthesis")


def fmt(e: dict) -> str:
    return f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"


def table(res: dict, meta: dict) -> str:
    """The markdown report."""
    n = res["n"]
    lines = [
        "| metric | real train vs real test | synthetic vs real test | real split-half (subject-disjoint) |",
        "|---|---|---|---|",
    ]
    for key, name in (("mmd_image", "MMD² pixels, FLAIR"), ("mmd_pair", "MMD² pixels, FLAIR + mask")):
        m = res[key]
        lines.append(f"| {name} (σ = {m['sigma']:.2f}) | {fmt(m['real_train_vs_test'])} | "
                     f"{fmt(m['synthetic_vs_test'])} | {fmt(m['real_split_half'])} |")
    k = res["kid_random_features"]
    lines.append(f"| KID, random-feature net (not Inception) | {fmt(k['real_train_vs_test'])} | "
                 f"{fmt(k['synthetic_vs_test'])} | |")
    f = res["frechet_random_features"]
    lines.append(f"| Fréchet distance, random-feature net (not FID) | {f['real_train_vs_test']:.3f} | "
                 f"{f['synthetic_vs_test']:.3f} | |")
    lines += ["", "| set | n | MS-SSIM diversity | FLAIR ratio in/out mask | sharpness mean abs(grad I) | empty masks |"
              " area (px, mean / median) | components / slice | centroid (row, col) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in ("real_train", "real_test", "synthetic"):
        ms = res["mask_stats"][s]
        lines.append(f"| {s.replace('_', ' ')} | {n[s]} | {fmt(res['ms_ssim_diversity'][s])} | "
                     f"{res['flair_ratio'][s]:.3f} | {res['gradient_energy'][s]:.4f} | {ms['empty_fraction']:.2f} | "
                     f"{ms['area_mean']:.1f} / "
                     f"{ms['area_median']:.1f} | {ms['components_mean']:.2f} | ({ms['centroid_row_mean']:.1f}, "
                     f"{ms['centroid_col_mean']:.1f}) |")
    v = res["verdicts"]
    lines += ["", f"Synthetic mask channel near-binary (|M| within 0.2 of 1): {res['near_binary_fraction']:.3f}. "
              f"Synthetic control slices with any mask pixel: {res['control']['with_mask_fraction']:.2f} "
              f"(n = {res['control']['n']}); MMD² FLAIR synthetic controls vs real test controls "
              f"{fmt(res['control']['mmd_image_vs_test'])}, real train vs test controls "
              f"{fmt(res['control']['mmd_image_train_vs_test'])}.", "",
              f"Targets: synthetic MMD² within the real train-vs-test CI: **{v['mmd_within_train_vs_test_ci']}**; "
              f"within the split-half CI: **{v['mmd_within_split_half_ci']}**; FLAIR ratio within 20 % of real "
              f"train: **{v['flair_ratio_within_20pct']}**; lesion contrast (ratio − 1) within 20 %: "
              f"**{v['contrast_within_20pct']}**.", "",
              f"Training: {meta['final'].get('step')} steps in {meta['train_seconds']:.0f} s on {meta['device']} "
              f"({meta['threads']} threads); sampling {res['sampling_seconds']:.0f} s for "
              f"{n['synthetic'] + res['control']['n']} slices ({res['sample_steps']} DDIM steps)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bids", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("model_dir", type=Path)
    p.add_argument("results", type=Path, help="markdown file to write (results.json beside it)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seed", type=int, default=600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--prediction", default=None, help="sample, v_prediction or epsilon (default: the preset's)")
    p.add_argument("--sample-steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--no-self-conditioning", action="store_true", help="ablation: no self-conditioning channels")
    p.add_argument("--no-kendall", action="store_true", help="ablation: fixed unit loss weights, no Kendall σ²")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)
    rows = read_participants(a.bids)
    train_ids = sorted(k for k, r in rows.items() if r.get("split") == "train")
    test_ids = sorted(k for k, r in rows.items() if r.get("split") == "test")
    cfg = lesions.resolve_config(a.preset, {"seed": a.seed, "steps": a.steps, "prediction": a.prediction,
                                                "self_conditioning": False if a.no_self_conditioning else None,
                                                "kendall": False if a.no_kendall else None})
    grid = GridConfig()
    subs = load_bids_subjects(a.bids, a.work, grid, train_ids + test_ids)
    by = {s.subject: s for s in subs}
    args = (cfg.net.n_bins, cfg.data.flair_max, cfg.data.downsample, cfg.data.min_brain_fraction)
    train = pairs_from_subjects([by[s] for s in train_ids if s in by], *args)
    test = pairs_from_subjects([by[s] for s in test_ids if s in by], *args)
    if not (a.model_dir / "SHA256SUMS").exists():
        lesions.train_from_pairs(cfg, train, a.model_dir, torch.device("cpu"),
                                 {"bids_dir": str(a.bids), "participants": train_ids, "grid": to_dict(grid)})
    model = lesions.load_lesion_model(a.model_dir, torch.device("cpu"))
    mcfg = model.config
    if a.sample_steps:
        mcfg = dataclasses.replace(mcfg, sample=dataclasses.replace(mcfg.sample, steps=a.sample_steps))
    les_tr, les_te = train.pathology == 1, test.pathology == 1
    tok_les = make_token(train.z_bin[les_tr], 1, mcfg.net.n_bins)
    # as many control samples as lesion samples, z-bins of the training control slices drawn with the seed
    ctl_idx = np.random.default_rng([a.seed, 1]).choice(np.flatnonzero(~les_tr), size=int(les_tr.sum()),
                                                         replace=False)
    tok_ctl = make_token(train.z_bin[ctl_idx], 0, mcfg.net.n_bins)
    tokens = np.concatenate([tok_les, tok_ctl])
    cache = a.model_dir.parent / "synthetic_samples.npz"
    key = f"{model.sha256}-{mcfg.sample.steps}-{a.seed}"
    old = np.load(cache) if cache.exists() else None
    if old is not None and "key" in old.files and str(old["key"]) == key and np.array_equal(old["tokens"], tokens):
        c = np.load(cache)
        syn, sampling = np.concatenate([c["lesion"], c["control"]]), float(c["seconds"])
        log.info("samples read back from %s (same model, steps, seed and tokens)", cache)
    else:
        t0 = time.time()
        syn = jsddpm.sample(model.model, mcfg.net, torch.from_numpy(tokens), mcfg.sample, a.seed).numpy()
        sampling = time.time() - t0
    syn_les, syn_ctl = syn[: len(tok_les)], syn[len(tok_les):]
    rng = np.random.default_rng(a.seed)
    groups = np.array(list(np.array(train.subjects)[les_tr]) + list(np.array(test.subjects)[les_te]))
    res = evaluate.compare_pairs(train.x[les_tr], test.x[les_te], syn_les, groups, rng, a.n_boot,
                                 mcfg.sample.mask_min_pixels)
    from bids_fcd.synthesis import metrics as M

    test_ctl = test.x[~les_te]
    sub_te = test_ctl[np.random.default_rng([a.seed, 2]).choice(len(test_ctl), size=min(len(test_ctl), 400),
                                                                replace=False)]
    sigma = res["mmd_image"]["sigma"]
    res["control"] = {
        "n": int(len(syn_ctl)),
        "with_mask_fraction": float((M.binarise(syn_ctl[:, 1]).reshape(len(syn_ctl), -1).any(1)).mean()),
        "mmd_image_vs_test": evaluate._est(M.mmd_bootstrap(syn_ctl[:, :1], sub_te[:, :1], rng, a.n_boot, sigma)),
        "mmd_image_train_vs_test": evaluate._est(M.mmd_bootstrap(train.x[ctl_idx][:, :1], sub_te[:, :1], rng,
                                                                 a.n_boot, sigma)),
    }
    res["verdicts"] = evaluate.verdicts(res)
    res["sampling_seconds"] = sampling
    res["sample_steps"] = mcfg.sample.steps
    res["model_sha256"] = model.sha256
    res["train_meta"] = {k: model.meta.get(k) for k in ("train_seconds", "final", "device", "threads", "slices",
                                                         "lesion_slices", "kendall_sigma2", "participants")}
    res["test_participants"] = test_ids
    text = table(res, model.meta)
    print(text)
    a.results.parent.mkdir(parents=True, exist_ok=True)
    cmd = "    .venv/bin/python benchmarks/synthesis.py " + " ".join(argv)
    a.results.write_text(f"# JS-DDPM synthesis benchmark (issue #19)\n\nCommand:\n\n{cmd}\n\n"
                         f"Model {model.sha256[:12]} ({mcfg.preset} preset).\n\n{text}")
    a.results.with_suffix(".json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    np.savez_compressed(cache, lesion=syn_les, control=syn_ctl, tokens=tokens, key=key, seconds=sampling)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
