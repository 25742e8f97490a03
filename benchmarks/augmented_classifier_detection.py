#!/usr/bin/env python
"""On the product grid: the guidance classifier trained with and without JS-DDPM lesion slices.

The augmentation benchmark (``benchmarks/augmentation.py``) measured the synthetic slices only on a 48×48 (4 mm)
copy of the classifier. This script retrains the product's classifier itself (96×80 at 2 mm, the shipped
``phantom-default`` grid) with the shipped recipe, once on the real training slices (arm A) and once on the real
plus synthetic slices (arm B), scores the lesion-slice AUC of 1 − C(healthy | x_t, t) per t for A, B and the
shipped classifier, and writes a model directory whose classifier is arm B's, for detection with
``benchmarks/capacity.py``.

Data: the shipped model's own training phantom (seed 300; its 16 participants of ``split.json``), preprocessed on the
product grid (``TRAIN_WORK``) and, for the JS-DDPM, on the full synthesis grid (``GridConfig()``, 96×96, in
``SYN_WORK``). The product grid (96×80, centre (0, −18) mm) is the synthesis grid without its 8 outer columns on
each side in x (both grids have ``grid_affine`` origin x = cx − (w − 1)/2 · 2 mm: −95 mm and −79 mm; rows and slices
coincide); ``synth`` checks this on the preprocessed training participants.

Synthetic slices (``synth``): ``--per-real`` JS-DDPM samples per real training lesion slice (the real slices on the
JS-DDPM's grid, ``augment.downsample_subject``), at that slice's z-bin, pathology lesion, inheriting its lobe
(``augment.matched_sources`` / ``lesion_slices`` / ``synthetic_subjects``); then ×2 upsampled (FLAIR bilinear,
``align_corners=False``, which puts a coarse pixel's centre between the two fine pixels it was averaged from; mask
nearest), cut to the product grid's columns, and slices whose mask is then empty are dropped. Brain = FLAIR > −0.95
(``synthetic_subjects``' rule), T1w channel −1 (absent; the classifier reads the FLAIR only).

Classifiers (``classifiers``): ``augment.train_classifier`` with the shipped model's network config and the
``default`` preset's classifier settings (epochs, batch, classifier_lr, classifier_max_t, seed): uniform draws,
``SliceDataset.loss_weights`` class weights of the arm's own training set, and the same number of draws per epoch
(the real slice count) in both arms, so both take the same optimiser steps. The shipped classifier itself was
trained interleaved with the UNet (its initialisation and noise stream differ), so arm A is the shipped recipe
re-run, not a bit-identical copy of the shipped weights. AUC on the brain slices of the val + final cohorts (FCD
participants whose lesion has no voxel on the grid are left out, as in ``augmentation.py``), one noise draw per t
from a seeded generator shared by all three classifiers (``augment.auc_per_t``).

Commands (run from /work/main; every output under OUT = /work/bench/c19):

    OMP_NUM_THREADS=1 bids-fcd synthesize lesions train /work/bench/hl/train-ph /work/bench/c19/jsddpm --preset cpu \\
        --participant-label 00001 00002 00003 00004 00005 00006 00007 00008 00009 00010 00011 00012 00013 00014 \\
        00015 00016 --work-dir /work/bench/c19/work-syn --seed 0 --threads 1 --skip-bids-validation
    OMP_NUM_THREADS=1 python benchmarks/augmented_classifier_detection.py synth
    OMP_NUM_THREADS=1 python benchmarks/augmented_classifier_detection.py classifiers
    OMP_NUM_THREADS=1 python benchmarks/augmented_classifier_detection.py classifiers --seed 1   # and --seed 2: spread check only
    # fill the pseudo-healthy cache of the arm-B model (two workers side by side), then detection as capacity.py does:
    OMP_NUM_THREADS=1 python benchmarks/augmented_classifier_detection.py fill-cache --worker 0 --workers 2 &
    OMP_NUM_THREADS=1 python benchmarks/augmented_classifier_detection.py fill-cache --worker 1 --workers 2
    for c in val final aug; do OMP_NUM_THREADS=1 python benchmarks/capacity.py /work/bench/$c /work/bench/c19/model-aug \\
        --t1-condition native --reference /work/bench/refdir --cache /work/bench/c19/cache \\
        --json /work/bench/c19/capacity-$c.json; done
    # the shipped model's row on the test cohort from its own cache (same protocol check), run in /work/bench:
    OMP_NUM_THREADS=1 python /work/main/benchmarks/capacity.py final phantom-default --t1-condition native --reference refdir \
        --cache final/cache --json /work/bench/c19/capacity-final-shipped.json
    python benchmarks/augmented_classifier_detection.py table

Every random path is seeded (``--sample-seed`` for the JS-DDPM draws and the choice of sources, the preset's seed for
the classifiers, ``--auc-seed`` for the AUC noise), so the same commands give the same numbers on the same machine
and thread count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bids_fcd.bids.participants import is_control, read_participants
from bids_fcd.config import SAMPLER_PRESETS, GridConfig, SamplerConfig, to_dict
from bids_fcd.nets.checkpoint import WEIGHT_FILES, load_model, write_sums
from bids_fcd.nets.reference import REFERENCE_DIR
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.synthesis import augment, jsddpm, lesions
from bids_fcd.synthesis.data import load_bids_subjects, make_token, unscale_flair
from bids_fcd.synthesis.metrics import binarise
from bids_fcd.training.datasets import SliceDataset, SubjectSlices
from bids_fcd.training.presets import PRESETS
from bids_fcd.workflows.analysis import resolve_sampler
from bids_fcd.workflows.cohort import controls_of, load_cohort, pseudo_volumes

log = logging.getLogger("benchmarks.augmented_classifier_detection")

MAIN = Path(__file__).resolve().parents[1]
SHIPPED = MAIN / "bids_fcd" / "models" / "phantom-default"
#: Where the cohorts live (``--bench``): val/, final/, aug/ and refdir/, each with bids/ and work/, and hl/ (training).
BENCH_DEFAULT = Path("/work/bench")
TIMESTEPS = (0, 100, 200, 300, 500)
ARMS = ("A", "B")
#: synthetic brain: FLAIR above this (the rule of ``augment.synthetic_subjects``)
BRAIN_THRESHOLD = -0.95


def product_window(syn: GridConfig, prod: GridConfig) -> tuple[slice, slice]:
    """(rows, columns) of the synthesis grid's slices that are the product grid's, from ``grid_affine``.

    Both grids must share spacing and the z axis, and the product grid's pixel centres must fall on the
    synthesis grid's (an integer offset); otherwise a ValueError.
    """
    a_s, shape_s = grid_affine(syn)
    a_p, shape_p = grid_affine(prod)
    if not np.allclose(a_s[:3, :3], a_p[:3, :3]) or a_s[2, 3] != a_p[2, 3] or shape_s[2] != shape_p[2]:
        raise ValueError("the grids differ in spacing or slices")
    off = (a_p[:2, 3] - a_s[:2, 3]) / syn.spacing_mm  # (x, y) offset in synthesis pixels
    if not np.allclose(off, np.round(off)):
        raise ValueError(f"the product grid is not on the synthesis grid's pixels (offset {off} px)")
    ox, oy = (int(round(v)) for v in off)
    (wp, hp), (ws, hs) = shape_p[:2], shape_s[:2]
    if ox < 0 or oy < 0 or ox + wp > ws or oy + hp > hs:
        raise ValueError("the product grid is not inside the synthesis grid")
    # slices are (S, C, H, W): H along y, W along x (to_slices)
    return slice(oy, oy + hp), slice(ox, ox + wp)


def upsample(x: np.ndarray, factor: int, mode: str) -> np.ndarray:
    """(N, h, w) → (N, h·f, w·f): ``bilinear`` (align_corners=False) or ``nearest``."""
    t = torch.from_numpy(np.asarray(x, np.float32))[:, None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, scale_factor=factor, mode=mode, **kw)[:, 0].numpy()


def train_labels() -> list[str]:
    return list(json.loads((SHIPPED / "split.json").read_text())["train"])


# ----------------------------------------------------------------------------------------------------------- synth
def cmd_synth(a: argparse.Namespace) -> int:
    out = a.out
    t0 = time.time()
    jmodel = lesions.load_lesion_model(a.jsddpm, torch.device("cpu"))
    jcfg = jmodel.config
    syn_grid = GridConfig()
    prod_grid = load_model(str(SHIPPED), torch.device("cpu")).net.grid
    rows, cols = product_window(syn_grid, prod_grid)
    log.info("product grid = synthesis grid rows %s, columns %s", rows, cols)
    labels = train_labels()
    syn_subs = load_bids_subjects(a.train_bids, a.syn_work, syn_grid, labels)
    # check the window on the data: the product-grid preprocessing of the same participants must equal the cut
    prod_subs = load_bids_subjects(a.train_bids, a.train_work, prod_grid, labels)
    check = {}
    for s96, s80 in zip(syn_subs, prod_subs, strict=True):
        cut = s96.stack[:, :, rows, cols]
        check[s96.subject] = {"max_abs_diff": float(np.abs(cut - s80.stack).max()),
                              "mask_equal": bool(np.array_equal(s96.mask[:, rows, cols], s80.mask)),
                              "roi_equal": (s96.roi is None and s80.roi is None) or (
                                  s96.roi is not None and s80.roi is not None
                                  and bool(np.array_equal(s96.roi[:, rows, cols], s80.roi))),
                              "lesion_slices": [None if s.roi is None else int(s.roi.reshape(len(s.roi), -1).any(1).sum())
                                                for s in (s96, s80)],
                              "brain_outside_window": int(s96.mask.sum() - s96.mask[:, rows, cols].sum())}
    log.info("grid check (synthesis cut vs product grid): max |diff| %.3g, masks equal %s, lesions equal %s, brain "
             "voxels outside the window %d", max(v["max_abs_diff"] for v in check.values()),
             all(v["mask_equal"] for v in check.values()), all(v["roi_equal"] for v in check.values()),
             sum(v["brain_outside_window"] for v in check.values()))
    for k, v in check.items():
        log.info("sub-%s: lesion slices (synthesis grid, product grid) %s", k, v["lesion_slices"])
    factor, fmax, min_brain = jcfg.data.downsample, jcfg.data.flair_max, jcfg.data.min_brain_fraction
    coarse = [augment.downsample_subject(s, factor, fmax) for s in syn_subs]
    les = augment.lesion_slices(coarse, jcfg.net.n_bins, min_brain)
    src = augment.matched_sources(len(les), a.per_real, np.random.default_rng(a.sample_seed))
    z = np.array([les[i].z_bin for i in src], np.int64)
    tokens = make_token(z, 1, jcfg.net.n_bins)
    ts = time.time()
    x = jsddpm.sample(jmodel.model, jcfg.net, torch.from_numpy(tokens), jcfg.sample, a.sample_seed).numpy()
    sample_s = time.time() - ts
    lobes = [les[i].lobe for i in src]
    # per sample (not per lobe subject) so that every kept slice keeps its source
    _, dropped_coarse = augment.synthetic_subjects(x, lobes, fmax, jcfg.sample.mask_min_pixels)
    flair_c = unscale_flair(x[:, 0], fmax)
    roi_c = binarise(x[:, 1], jcfg.sample.mask_min_pixels)
    flair = upsample(flair_c, factor, "bilinear")[:, rows, cols]
    roi = upsample(roi_c.astype(np.float32), factor, "nearest")[:, rows, cols] > 0.5
    brain = flair > BRAIN_THRESHOLD
    keep = roi.reshape(len(x), -1).any(axis=1)
    log.info("synthetic: %d sampled (%.0f s), %d with an empty mask on the JS-DDPM grid, %d empty on the product "
             "grid, %d kept", len(x), sample_s, dropped_coarse, int((~keep).sum()), int(keep.sum()))
    np.savez_compressed(out / "synthetic.npz", x_coarse=x, tokens=tokens, sources=src,
                        source_subject=np.array([coarse[les[i].subject].subject for i in src]),
                        source_slice=np.array([les[i].slice_index for i in src]), lobes=np.array(lobes),
                        flair=flair[keep], roi=roi[keep], brain=brain[keep], kept=keep)
    info = {"jsddpm": str(a.jsddpm), "jsddpm_sha256": jmodel.sha256, "ddim_steps": jcfg.sample.steps,
            "eta": jcfg.sample.eta, "sample_seed": a.sample_seed, "per_real": a.per_real,
            "real_lesion_slices_coarse": len(les), "sampled": int(len(x)), "sample_seconds": sample_s,
            "empty_mask_coarse": dropped_coarse, "empty_mask_product_grid": int((~keep).sum()),
            "kept": int(keep.sum()), "mask_area_px_product_grid": float(roi[keep].reshape(int(keep.sum()), -1)
                                                                        .sum(axis=1).mean()) if keep.any() else None,
            "window": {"rows": [rows.start, rows.stop], "cols": [cols.start, cols.stop]}, "grid_check": check,
            "seconds": time.time() - t0}
    (out / "synthetic.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


def synthetic_product_subjects(path: Path) -> list[SubjectSlices]:
    """The kept synthetic slices as one pseudo-subject per lobe (``augment.SYNTHETIC_PREFIX``)."""
    d = np.load(path)
    lobes = d["lobes"][d["kept"]]
    out = []
    for lobe in sorted(set(lobes.tolist())):
        sel = lobes == lobe
        fl = d["flair"][sel].astype(np.float32)
        stack = np.stack([fl, np.full_like(fl, -1.0)], axis=1)
        out.append(SubjectSlices(augment.SYNTHETIC_PREFIX + lobe, stack, d["brain"][sel], d["roi"][sel], str(lobe)))
    return out


# ----------------------------------------------------------------------------------------------------- classifiers
def test_slices(cohorts: list[Path], grid: GridConfig, min_brain: float) -> tuple[torch.Tensor, np.ndarray, dict]:
    """FLAIR brain slices (N, 1, H, W) of the cohorts' participants and their lesion flags (N,)."""
    xs, ys, info = [], [], {}
    for c in cohorts:
        groups = {k: r.get("group", "n/a") for k, r in read_participants(c / "bids").items()}
        subs = load_bids_subjects(c / "bids", c / "work", grid, sorted(groups))
        kept = [s for s in subs if is_control(groups.get(s.subject)) or (s.roi is not None and s.roi.any())]
        names = {s.subject for s in kept}
        info[c.name] = {"participants": sorted(names),
                        "left_out_no_lesion_on_grid": [s.subject for s in subs if s.subject not in names]}
        for s in kept:
            keep = s.mask.reshape(len(s.mask), -1).mean(axis=1) >= min_brain
            xs.append(s.stack[keep][:, :1])
            roi = np.zeros(s.mask.shape, bool) if s.roi is None else np.asarray(s.roi, bool)
            ys.append(roi[keep].reshape(int(keep.sum()), -1).any(axis=1))
    return torch.from_numpy(np.concatenate(xs)).float(), np.concatenate(ys), info


def cmd_classifiers(a: argparse.Namespace) -> int:
    out = a.out
    cpu = torch.device("cpu")
    shipped = load_model(str(SHIPPED), cpu)
    net = shipped.net
    pre = PRESETS["default"]
    if to_dict(pre.net.grid) != to_dict(net.grid) or pre.net.classifier_channels != net.classifier_channels:
        raise SystemExit("the default preset's classifier differs from the shipped model's")
    real = load_bids_subjects(a.train_bids, a.train_work, net.grid, train_labels())
    syn = synthetic_product_subjects(out / "synthetic.npz")
    sets = {"A": SliceDataset(real, pre.min_brain_fraction, channels=1),
            "B": SliceDataset(real + syn, pre.min_brain_fraction, channels=1)}
    n_real = len(sets["A"])
    log.info("arm A: %d slices (%d lesion); arm B: %d slices (%d lesion); the shipped model's meta: %s (%s)",
             n_real, int((sets["A"].labels > 0).sum()), len(sets["B"]), int((sets["B"].labels > 0).sum()),
             shipped.meta.get("slices"), shipped.meta.get("lesion_slices"))
    seed = pre.seed if a.seed is None else a.seed
    # the preset's seed makes the arm-B model; another seed (a spread check) only scores its arms
    tag = "" if seed == pre.seed else f"-seed{seed}"
    cfg = augment.ClassifierRunConfig(epochs=pre.epochs, draws_per_epoch=n_real, batch_size=pre.batch_size,
                                      lr=pre.classifier_lr, max_t=pre.classifier_max_t, seed=seed)
    x_te, lesion_te, te_info = test_slices([a.bench / "val", a.bench / "final"], net.grid, pre.min_brain_fraction)
    log.info("AUC test set: %d slices, %d with lesion", len(x_te), int(lesion_te.sum()))
    res: dict = {"config": dataclasses.asdict(cfg), "timesteps": list(TIMESTEPS), "auc_seed": a.auc_seed,
                 "test": {"slices": int(len(x_te)), "lesion_slices": int(lesion_te.sum()), **te_info},
                 "device": f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s)", "arms": {}}
    clfs = {}
    for arm in ARMS:
        ds = sets[arm]
        r = augment.train_classifier(net, cfg, ds)
        clfs[arm] = r.classifier
        torch.save({k: v.detach().cpu().float() for k, v in r.classifier.state_dict().items()},
                   out / f"classifier-{arm}{tag}.pt")
        res["arms"][arm] = {"slices": len(ds), "lesion_slices": int((ds.labels > 0).sum()), "steps": r.steps,
                            "seconds": r.seconds, "log": r.log,
                            "class_weights": [float(v) for v in ds.loss_weights()]}
        log.info("arm %s: %d steps in %.0f s, final CE %.4f", arm, r.steps, r.seconds, r.log[-1]["loss"])
    clfs["shipped"] = shipped.classifier
    res["auc"] = {k: augment.auc_per_t(c, net, x_te, lesion_te, TIMESTEPS, seed=a.auc_seed) for k, c in clfs.items()}
    for k, v in res["auc"].items():
        log.info("AUC %s: %s", k, {t: round(x, 3) for t, x in v.items() if x is not None})
    if tag:
        (out / f"classifiers{tag}.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
        return 0
    # the arm-B model directory: the shipped model without its reference, classifier.pt replaced
    mdir = out / "model-aug"
    if mdir.exists():
        shutil.rmtree(mdir)
    shutil.copytree(SHIPPED, mdir, ignore=shutil.ignore_patterns(REFERENCE_DIR))
    torch.save({k: v.detach().cpu().float() for k, v in clfs["B"].state_dict().items()}, mdir / "classifier.pt")
    res["model_aug_id"] = write_sums(mdir)
    m = load_model(str(mdir), cpu)
    same = all(torch.equal(p, q) for p, q in zip(m.classifier.state_dict().values(),
                                                   clfs["B"].state_dict().values(), strict=True))
    unet_same = all(torch.equal(p, q) for p, q in zip(m.unet.state_dict().values(),
                                                        shipped.unet.state_dict().values(), strict=True))
    log.info("model-aug %s loads; classifier = arm B: %s; UNet = shipped: %s", m.sha256[:12], same, unet_same)
    res["model_aug_check"] = {"classifier_is_arm_B": same, "unet_is_shipped": unet_same,
                              "weight_files": list(WEIGHT_FILES)}
    (out / "classifiers.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    return 0


# ------------------------------------------------------------------------------------------------------ fill-cache
def cmd_fill_cache(a: argparse.Namespace) -> int:
    """Sample the pseudo-healthy volumes ``capacity.py`` will need for MODEL (its fast preset, no overrides) into
    CACHE, every ``workers``-th participant from ``worker`` (refdir controls, then val, final, aug)."""
    cpu = torch.device("cpu")
    model = load_model(str(a.model), cpu)
    # the T1w condition of the measurement (the default until 2026-12-05): capacity.py is run with --t1-condition native
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"],  # type: ignore[arg-type]
                                                  t1_condition="native"), model)
    ref = a.bench / "refdir"
    jobs = [(ref, lab) for lab in controls_of(ref / "bids")]
    for c in a.cohorts:
        jobs += [(a.bench / c, lab) for lab in sorted(read_participants(a.bench / c / "bids"))]
    mine = jobs[a.worker::a.workers]
    log.info("worker %d/%d: %d of %d participants", a.worker, a.workers, len(mine), len(jobs))
    t0 = time.time()
    for c in dict.fromkeys(c for c, _ in mine):
        subs = load_cohort(c / "bids", c / "work", model, [lab for cc, lab in mine if cc == c])
        pseudo_volumes(subs, model, sampler, cpu, a.cache)
        log.info("worker %d: %s done (%d participants), %.0f s", a.worker, c.name, len(subs), time.time() - t0)
    return 0


# ----------------------------------------------------------------------------------------------------------- table
def cmd_table(a: argparse.Namespace) -> int:
    out = a.out
    lines = []
    cl = out / "classifiers.json"
    if cl.exists():
        r = json.loads(cl.read_text())
        ts = r["timesteps"]
        lines += [f"Lesion-slice AUC of 1 − C(healthy | x_t, t), val + final brain slices ({r['test']['slices']}, "
                  f"{r['test']['lesion_slices']} with lesion), noise seed {r['auc_seed']}:", "",
                  "| classifier | " + " | ".join(f"t = {t}" for t in ts) + " | train slices (lesion) | steps |",
                  "|---|" + "---|" * (len(ts) + 2)]
        names = {"A": "A: real only (retrained)", "B": "B: real + synthetic", "shipped": "shipped"}
        runs = [r] + [json.loads(p.read_text()) for p in sorted(out.glob("classifiers-seed*.json"))]
        for k in ("A", "B", "shipped"):
            for rr in runs if k != "shipped" else runs[:1]:
                arm = rr["arms"].get(k, {})
                extra = f"{arm['slices']} ({arm['lesion_slices']}) | {arm['steps']}" if arm else " | "
                seed = f", seed {rr['config']['seed']}" if k != "shipped" else ""
                lines.append(f"| {names[k]}{seed} | " + " | ".join(f"{rr['auc'][k][f't={t}']:.3f}" for t in ts)
                             + f" | {extra} |")
        lines.append("")
    cols = ("subject_sensitivity", "fp_clusters_per_control", "R@10", "lesion_removal_median", "control_mae",
            "z_threshold", "min_cluster_mm3")
    det = []
    for c, p in [(c, out / f"capacity-{c}{tag}.json") for c in ("val", "final", "aug") for tag in ("", "-shipped")]:
        if not p.exists():
            continue
        for row in json.loads(p.read_text()):
            n_les = len(row.get("lesion_max_z", {}))
            sens = row.get("subject_sensitivity")
            hits = f" ({round(sens * n_les)}/{n_les})" if sens is not None and n_les else ""
            det.append(f"| {c} | {Path(row['model']).name} | {sens:.3f}{hits} | " +
                       " | ".join("" if row.get(k) is None else f"{row[k]:.3f}" for k in cols[1:]) + " |")
    if det:
        lines += ["Detection (capacity.py, fast preset, reference refdir calibrated leave-one-out, ≤ 0.25 FP/HC):", "",
                  "| cohort | model | subject sensitivity (hits) | " + " | ".join(cols[1:]) + " |",
                  "|---|---|---|" + "---|" * (len(cols) - 1), *det]
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", type=Path, default=BENCH_DEFAULT, help="the cohorts' folder (default: %(default)s)")
    p.add_argument("--out", type=Path, default=BENCH_DEFAULT / "c19")
    p.add_argument("--train-bids", type=Path, default=BENCH_DEFAULT / "hl" / "train-ph")
    p.add_argument("--train-work", type=Path, default=BENCH_DEFAULT / "hl" / "work", help="product-grid preprocessing cache")
    p.add_argument("--syn-work", type=Path, default=BENCH_DEFAULT / "c19" / "work-syn",
                   help="synthesis-grid (GridConfig(), 96×96) preprocessing cache, written by the JS-DDPM training")
    p.add_argument("--jsddpm", type=Path, default=BENCH_DEFAULT / "c19" / "jsddpm")
    p.add_argument("--threads", type=int, default=1)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="sample synthetic lesion slices and bring them to the product grid")
    s.add_argument("--per-real", type=float, default=2.0)
    s.add_argument("--sample-seed", type=int, default=6101)
    c = sub.add_parser("classifiers", help="train arms A and B, AUC per t, write the arm-B model directory")
    c.add_argument("--auc-seed", type=int, default=1000)
    c.add_argument("--seed", type=int, default=None,
                   help="classifier seed (default: the preset's, 0, which also writes model-aug); another seed "
                        "writes classifiers-seed<N>.json only")
    f = sub.add_parser("fill-cache", help="sample a model's pseudo-healthy volumes into the capacity.py cache")
    f.add_argument("--model", type=Path, default=BENCH_DEFAULT / "c19" / "model-aug")
    f.add_argument("--cache", type=Path, default=BENCH_DEFAULT / "c19" / "cache")
    f.add_argument("--cohorts", nargs="+", default=["val", "final", "aug"])
    f.add_argument("--worker", type=int, default=0)
    f.add_argument("--workers", type=int, default=1)
    sub.add_parser("table", help="print the AUC and detection tables")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    return {"synth": cmd_synth, "classifiers": cmd_classifiers, "fill-cache": cmd_fill_cache,
            "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
