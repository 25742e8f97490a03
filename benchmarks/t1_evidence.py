"""T1w evidence and per-acquisition calibration, rescored on cached volumes.

T1w evidence in the style of the morphometric programs clinics use: on the preprocessed template-space
T1w, a *junction* map (how much of the neighbourhood has intensities between grey and white matter, the
blurred grey-white boundary of FCD) and an *extension* map (how grey-matter-like the neighbourhood is,
grey matter reaching into white matter), each smoothed within the brain and z-scored voxelwise against the
same reference controls as the FLAIR maps, alone and added to the method's combined z. Per-acquisition
calibration: the cluster threshold and minimum size chosen separately on the 2D and the 3D reference
controls (leave-one-out), each participant clustered with its own acquisition's setting.

    python benchmarks/t1_evidence.py BENCH_OUT VALIDATION_DIR [--sigma-vox 1.5] [--json OUT.json]

BENCH_OUT and VALIDATION_DIR as for benchmarks/rescore.py (the cohorts, their preprocessing
caches and the pseudo-healthy cache of the shipped model, fast preset). Prints one line per (cohort, variant).
"""
import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
from nilearn.image import resample_img
from scipy import ndimage

from bids_fcd.atlas import load_template
from bids_fcd.config import SAMPLER_PRESETS, SamplerConfig
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.normative import build_reference, z_parts
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.workflows.analysis import map_weights, normative_maps, resolve_sampler
from bids_fcd.workflows.cohort import anomaly_maps, controls_of, load_cohort, pseudo_volumes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("validation", type=Path)
    ap.add_argument("--sigma-vox", type=float, default=1.5, help="smoothing of the T1w maps (voxels of the grid)")
    ap.add_argument("--budget", type=float, default=0.25, help="false-positive clusters per control")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    B, V = args.bench, args.validation
    cpu = torch.device("cpu")
    model = load_model("phantom-default", cpu)
    sampler = resolve_sampler(dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"]), model)
    grid = model.net.grid
    aff, shape = grid_affine(grid)
    tpl = load_template(2)
    def on_grid(img):
        return np.asarray(resample_img(img, target_affine=aff, target_shape=shape, interpolation="linear",
                                       force_resample=True, copy_header=True).get_fdata())
    tgm, twm = on_grid(tpl["gm"]), on_grid(tpl["wm"])

    cohorts = {"validation": load_cohort(V / "bids", V / "work", model), "test": load_cohort(B / "bids", B / "work", model)}
    refs = load_cohort(B / "ref-bids", B / "ref-work", model, controls_of(B / "ref-bids"))
    post0 = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    SIG = args.sigma_vox


    def t1_maps(s):
        t1 = from_slices(s.stack[:, 1])
        m = s.mask
        gm_v = float(np.median(t1[m & (tgm > 0.6)]))
        wm_v = float(np.median(t1[m & (twm > 0.8)]))
        mid, width = 0.5 * (gm_v + wm_v), max(abs(wm_v - gm_v), 1e-3) / 4
        junction = np.exp(-0.5 * ((t1 - mid) / width) ** 2) * m
        gmlike = 1.0 / (1.0 + np.exp((t1 - mid) / width)) * m  # 1 for GM-like (darker than mid on T1w)
        def sm(x):
            num = ndimage.gaussian_filter(x.astype(np.float32), SIG)
            den = ndimage.gaussian_filter(m.astype(np.float32), SIG)
            return np.where(m, num / np.maximum(den, 1e-3), 0).astype(np.float32)
        return {"junction": sm(junction), "extension": sm(gmlike)}


    def maps_of(subs, raw):
        an = anomaly_maps(subs, raw, model, post0, sampler.histogram_matching)
        out = {}
        for s in subs:
            mp = normative_maps(an[s.label][1], s.flair, s.mask, grid, post0, an[s.label][0])
            mp.update(t1_maps(s))
            out[s.label] = mp
        return out


    raw_r, _ = pseudo_volumes(refs, model, sampler, cpu, B / "cache")
    ref_maps_l = maps_of(refs, raw_r)
    r_maps = {k: [ref_maps_l[s.label][k] for s in refs] for k in ref_maps_l[refs[0].label]}
    ref_masks = [s.mask for s in refs]
    test_maps = {}
    for name, subs in cohorts.items():
        raw, _ = pseudo_volumes(subs, model, sampler, cpu, B / "cache")
        test_maps[name] = maps_of(subs, raw)
    base = map_weights(post0)
    VARIANTS = {
        "method": base,
        "junction only": {"junction": 1.0},
        "extension only": {"extension": 1.0},
        "method + junction 0.5": {**base, "junction": 0.5},
        "method + extension 0.5": {**base, "extension": 0.5},
        "method + both 0.35": {**base, "junction": 0.35, "extension": 0.35},
    }
    ref = build_reference(r_maps, ref_masks)
    NAMES = ("anomaly", "flair", "junction", "extension")


    def per_map_z(maps, mask, rf):
        return z_parts(maps, mask, rf, NAMES)


    def combine(zk, w):
        used = {k: v for k, v in w.items() if v > 0}
        tot = sum(v * zk[k] for k, v in used.items())
        return (tot / np.sqrt(sum(v * v for v in used.values()))).astype(np.float32)


    loo = []
    for i in range(len(refs)):
        rest = [j for j in range(len(refs)) if j != i]
        rf = build_reference({k: [v[j] for j in rest] for k, v in r_maps.items()}, [ref_masks[j] for j in rest])
        loo.append(per_map_z({k: v[i] for k, v in r_maps.items()}, ref_masks[i], rf))
    ACQ = [s.acquisition for s in refs]
    tz = {c: {s.label: per_map_z(test_maps[c][s.label], s.mask, ref) for s in subs} for c, subs in cohorts.items()}
    results = {}
    for vname, w in {**VARIANTS, "method, calibrated per acquisition": base}.items():
        ctrl = [combine(zk, w) for zk in loo]
        per_acq = vname.endswith("per acquisition")
        setting = {}
        for acq in ("2D", "3D"):
            sub = [c for c, a in zip(ctrl, ACQ, strict=True) if a == acq] if per_acq else ctrl
            chosen = choose(fp_table(sub, aff), args.budget)
            setting[acq] = (chosen["z_threshold"], chosen["min_cluster_mm3"])
        for cname, subs in cohorts.items():
            rows = []
            for s in subs:
                z = combine(tz[cname][s.label], w)
                thr, size = setting[s.acquisition]
                lab, cl = find_clusters(z, aff, thr, size, 20)
                row = score_subject(z, lab, [np.array(c.center_mm) for c in cl], s.mask, s.roi, aff)
                row.update(group=s.group, label=s.label)
                rows.append(row)
            summ = cohort_summary(rows, setting["3D"][0])
            det = {r["label"]: bool(r.get("detected")) for r in rows if "detected" in r}
            results[f"{cname} | {vname}"] = {"subject_sensitivity": summ["subject_sensitivity"],
                                             "fp_clusters_per_control": summ["fp_clusters_per_control"],
                                             "R@10": summ["R@10"], "setting": setting, "detected": det}
            print(f"{cname:10s} | {vname:36s} sens {summ['subject_sensitivity']:.3f}  FP/HC "
                  f"{summ['fp_clusters_per_control']:.3f}  R@10 {summ['R@10']:.3f}  "
                  + ", ".join(f"{a}: z>{t:g} >= {m:g} mm3" for a, (t, m) in setting.items())
                  + f"  hits {''.join('x' if d else '.' for d in det.values())}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"sigma_vox": SIG, "budget": args.budget, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
