"""``bids-fcd benchmark``: detection on a held-out phantom, every variant scored the same way.

Cohorts (never used to train the networks): the test cohort OUT/bids (``--n-fcd`` FCD +
``--n-hc`` controls from ``--phantom-seed``, ``--size mixed``: 3D and clinical 2D FLAIR) and the
reference controls (``--reference-bids``, else a phantom OUT/ref-bids from ``--reference-seed``).
For every variant, the reference controls give the normative reference of that variant's map and,
leave-one-out, its cluster setting for ``--max-fp-per-control``; then the test cohort is scored
(docs/architecture.md §4): R@5/R@10 with false-positive pixels, Dice, subject-level detection (top-ranked
cluster), false-positive clusters per test control. Variants: the method (default sampler),
post-processing ablations (no histogram matching, within-brain z, absolute anomaly), with
``--ablations`` the sampler ablations (no guidance; the paper's deterministic inverse DDIM), an
optional FLAIR-only model, and three baselines repaired the same way (FLAIR, FLAIR asymmetry, and FLAIR
minus the FLAIR its own T1w predicts: a pseudo-healthy image without a network; each z-scored against the
reference controls). Also: lesion removal, pseudo-healthy error on
controls, the classifier's lesion-slice AUC per t and the guidance-gradient concentration.
Results go to OUT/results.json and OUT/results.md (and OUT/guidance_gradient.png); the method's
reference (as ``bids-fcd reference`` builds it from the reference controls) to OUT/reference; raw
pseudo-healthy volumes are cached in OUT/cache (keyed by model, sampler settings and input), so a re-run
re-scores without sampling again and reports the sampling time of the first run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.bids.participants import is_control
from bids_fcd.commands import BenchmarkConfig, config_file
from bids_fcd.config import SAMPLER_PRESETS, PostConfig, SamplerConfig, from_dict, to_dict
from bids_fcd.evaluation.calibration import choose, fp_table
from bids_fcd.evaluation.metrics import roc_auc
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.io import atomic_path, write_json, write_text
from bids_fcd.nets.checkpoint import LoadedModel, load_model
from bids_fcd.nets.networks import build_scheduler
from bids_fcd.nets.reference import save_reference
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.phantom.real_anatomy import anatomy_files
from bids_fcd.postprocessing.anomaly import asymmetry, flair_from_t1w, z_map
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.histmatch import match_histogram
from bids_fcd.postprocessing.normative import ReferenceParams, build_reference, combined_z
from bids_fcd.preprocessing.grid import from_slices, grid_affine, to_slices
from bids_fcd.resources import resolve_device
from bids_fcd.sampling.ddim import forward_noise
from bids_fcd.sampling.guidance import log_prob_grad
from bids_fcd.workflows.analysis import map_weights, normative_maps, resolve_sampler, without_drift
from bids_fcd.workflows.cohort import Subject, anomaly_maps, controls_of, load_cohort, pseudo_volumes
from bids_fcd.workflows.reference import calibrate_reference, control_maps, reference_from_cohort

log = logging.getLogger(__name__)

__all__ = ["Subject", "describe", "evaluate_variant", "markdown_table", "run_benchmark", "sampler_ablations"]

COLUMNS = ("subject_sensitivity", "fp_clusters_per_control", "R@5", "R@10", "fp_pixels_per_slice", "dice_z",
           "dice_best_per_subject", "peak_hit@10", "z_threshold", "min_cluster_mm3", "lesion_removal_median",
           "control_mae", "control_ssim", "seconds_per_subject")
HEADERS = ("subject sens.", "FP clusters/HC", "R@5", "R@10", "FP px/slice", "Dice z", "Dice best", "peak hit@10",
           "z thr", "min mm³", "lesion removal (median)", "HC MAE", "HC SSIM", "s/subject")
#: The subgroup table (``subgroups`` of each row).
SUBGROUP_COLUMNS = ("found_under_250mm3", "found_250_to_1000mm3", "found_over_1000mm3", "sensitivity_2D",
                    "sensitivity_3D", "fp_clusters_per_control_2D", "fp_clusters_per_control_3D")
SUBGROUP_HEADERS = ("found < 250 mm³", "found 250-1000 mm³", "found > 1000 mm³", "sens. 2D FLAIR", "sens. 3D FLAIR",
                    "FP/HC 2D", "FP/HC 3D")
#: Lesion-volume classes (mm³, in the model grid) of the subgroup table: FCD type II lesions that surgeons resect
#: are rarely under 250 mm³, so the smallest class is reported, not targeted.
SIZE_CLASSES = (("under_250mm3", 0.0, 250.0), ("250_to_1000mm3", 250.0, 1000.0), ("over_1000mm3", 1000.0, np.inf))

#: ``--sweeps``: noise levels L (with K) and guidance scales s around the default.
LEVEL_SWEEP = ((200, 4), (500, 10))
SCALE_SWEEP = (0.0, 60.0)
AUC_TIMESTEPS = (0, 100, 300, 500)
#: t at which the guidance gradient's concentration on lesions is measured.
GRADIENT_T = 300


Maps = dict[str, np.ndarray]


def calibrated_z(test: dict[str, Maps], ref_maps: dict[str, list[np.ndarray]], ref_masks: list[np.ndarray],
                 masks: dict[str, np.ndarray], post: PostConfig, affine: np.ndarray,
                 budget: float) -> tuple[dict[str, np.ndarray], PostConfig, dict[str, Any]]:
    """z-maps of the test participants and the cluster setting calibrated on the reference controls.

    ``test[label]`` and ``ref_maps`` hold :func:`normative_maps` (``anomaly``, ``flair``). Normative:
    :func:`combined_z` against the reference of ``ref_maps``, calibrated leave-one-out; within-brain:
    the anomaly z-scored in its own brain, calibrated on the controls' own z-maps. The normative
    calibration is the reference's own (:func:`bids_fcd.workflows.reference.calibrate_reference`),
    so a benchmark row and ``bids-fcd reference`` choose the same cluster setting from the same maps.
    """
    if post.zscore == "normative":
        params = ReferenceParams()
        ref = build_reference(ref_maps, ref_masks, params)
        cal, record = calibrate_reference(ref_maps, ref_masks, post, affine, params, budget)
        weights = map_weights(post)
        zs = {k: combined_z(m, masks[k], ref, weights, post.restandardise) for k, m in test.items()}
        return zs, cal, record["chosen"]
    ctrl_z = [z_map(m, mk) for m, mk in zip(ref_maps["anomaly"], ref_masks, strict=True)]
    zs = {k: z_map(m["anomaly"], masks[k]) for k, m in test.items()}
    chosen = choose(fp_table(ctrl_z, affine), budget)
    return zs, dataclasses.replace(post, z_threshold=chosen["z_threshold"],
                                   min_cluster_mm3=chosen["min_cluster_mm3"]), chosen


def evaluate_variant(subjects: list[Subject], z: dict[str, np.ndarray], affine: np.ndarray, post: PostConfig,
                     seconds: float) -> dict[str, Any]:
    """Cluster and score the test cohort's z-maps {label: (W, H, S)}; returns the cohort summary."""
    rows = []
    for sub in subjects:
        labels, clusters = find_clusters(z[sub.label], affine, post.z_threshold, post.min_cluster_mm3,
                                         post.max_clusters)
        row = score_subject(z[sub.label], labels, [np.array(c.center_mm) for c in clusters], sub.mask, sub.roi,
                            affine)
        row.update(group=sub.group, true_lobe=sub.lobe)
        if clusters:
            row["predicted_lobe"] = clusters[0].lobe
        rows.append(row)
    summary = cohort_summary(rows, post.z_threshold)
    summary["top_cluster_lobe_accuracy"] = summary.pop("lobe_accuracy")
    summary.update(z_threshold=post.z_threshold, min_cluster_mm3=post.min_cluster_mm3,
                   seconds_per_subject=seconds / max(len(subjects), 1))
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    for r, sub in zip(rows, subjects, strict=True):
        r.update(label=sub.label, acquisition=sub.acquisition,
                 lesion_mm3=float(sub.roi.sum()) * vox_mm3 if sub.roi is not None else None)
    summary["per_subject"] = [{k: r.get(k) for k in ("label", "group", "acquisition", "lesion_mm3", "true_lobe",
                                                     "predicted_lobe", "detected", "r_at_10", "n_clusters", "dice_z")}
                              for r in rows]
    summary["subgroups"] = subgroups(rows)
    return summary


def subgroups(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """Subject sensitivity in the smallest and largest third of lesions (by mask volume) and, per
    acquisition (2D thick-slice vs 3D FLAIR), sensitivity and false-positive clusters per control."""
    les = sorted((r for r in rows if r.get("lesion_slices")), key=lambda r: r["lesion_mm3"])
    third = max(len(les) // 3, 1)

    def sens(rs: list[dict[str, Any]]) -> float | None:
        return sum(bool(r["detected"]) for r in rs) / len(rs) if rs else None

    out: dict[str, float | int | None] = {
        "sensitivity_smallest_third": sens(les[:third]), "sensitivity_largest_third": sens(les[-third:]),
        "smallest_third_max_mm3": les[:third][-1]["lesion_mm3"] if les else None,
        "largest_third_min_mm3": les[-third:][0]["lesion_mm3"] if les else None}
    out.update(size_classes(les))
    for acq in ("2D", "3D"):
        out[f"sensitivity_{acq}"] = sens([r for r in les if r["acquisition"] == acq])
        ctrl = [r["n_clusters"] for r in rows if is_control(r.get("group")) and r["acquisition"] == acq]
        out[f"fp_clusters_per_control_{acq}"] = float(np.mean(ctrl)) if ctrl else None
        out[f"n_fcd_{acq}"] = sum(r["acquisition"] == acq for r in les)
        out[f"n_hc_{acq}"] = len(ctrl)
    return out


def size_classes(lesion_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``found_<class>`` = "k/n" lesions found (the top cluster on the lesion) in each :data:`SIZE_CLASSES` class
    of ``lesion_mm3``, and ``sensitivity_250mm3_and_over``. Rows are a variant's ``per_subject`` of FCD participants
    (``lesion_mm3``, ``detected``), so a stored results.json can be re-read."""
    out: dict[str, Any] = {}
    for name, lo, hi in SIZE_CLASSES:
        rs = [r for r in lesion_rows if lo <= float(r["lesion_mm3"]) < hi]
        out[f"found_{name}"] = f"{sum(bool(r['detected']) for r in rs)}/{len(rs)}"
    big = [r for r in lesion_rows if float(r["lesion_mm3"]) >= 250.0]
    out["sensitivity_250mm3_and_over"] = sum(bool(r["detected"]) for r in big) / len(big) if big else None
    return out


def cortex_on_grid(model: LoadedModel) -> np.ndarray:
    """(W, H, S) bool: the template's grey matter (probability > 0.5) on the model grid."""
    from nilearn.image import resample_img

    from bids_fcd.atlas import load_template

    aff, shape = grid_affine(model.net.grid)
    gm = resample_img(load_template(2)["gm"], target_affine=aff, target_shape=shape, interpolation="linear",
                      force_resample=True, copy_header=True)
    return np.asarray(gm.get_fdata()) > 0.5


def synthesis_quality(subjects: list[Subject], raw: dict[str, np.ndarray], cortex: np.ndarray,
                      histogram_matching: bool) -> dict[str, Any]:
    """Lesion removal (mean residual in lesions ÷ mean |residual| in the rest of the cortex, pooled
    over FCD subjects as mean and median, and per subject in ``lesion_removal_per_subject``; ≫ 1 when
    the pseudo-healthy FLAIR leaves the lesion out) and the pseudo-healthy error on controls (MAE and
    MONAI SSIM against their own FLAIR, in the brain)."""
    from monai.metrics import SSIMMetric

    per: dict[str, float] = {}
    maes, ssims = [], []
    for sub in subjects:
        pseudo = match_histogram(raw[sub.label], sub.flair, sub.mask) if histogram_matching else raw[sub.label]
        r = np.where(sub.mask, sub.flair - pseudo, 0.0)
        if sub.roi is not None and sub.roi.any():
            rest = cortex & sub.mask & ~sub.roi
            per[sub.label] = float(r[sub.roi].mean()) / max(float(np.abs(r[rest]).mean()), 1e-6)
        elif is_control(sub.group):
            maes.append(float(np.abs(r[sub.mask]).mean()))
            a = torch.from_numpy(np.where(sub.mask, pseudo, -1.0).astype(np.float32))[None, None]
            b = torch.from_numpy(np.where(sub.mask, sub.flair, -1.0).astype(np.float32))[None, None]
            rng = float(sub.flair[sub.mask].max() - sub.flair[sub.mask].min())
            val = SSIMMetric(spatial_dims=3, data_range=rng)(a, b)
            ssims.append(float(torch.as_tensor(val).mean()))
    ratios = list(per.values())
    return {"lesion_removal": float(np.mean(ratios)) if ratios else None,
            "lesion_removal_median": float(np.median(ratios)) if ratios else None,
            "lesion_removal_per_subject": per,
            "control_mae": float(np.mean(maes)) if maes else None,
            "control_ssim": float(np.mean(ssims)) if ssims else None}


@torch.no_grad()
def classifier_auc(model: LoadedModel, subjects: list[Subject], seed: int) -> dict[str, float | None]:
    """AUC of 1 − C(h | x_t, t) for lesion slices vs healthy slices, per t (held-out cohort)."""
    acp = build_scheduler(model.net).alphas_cumprod
    x0, y = [], []
    for sub in subjects:
        keep = sub.mask_s.reshape(len(sub.mask_s), -1).mean(axis=1) >= 0.05
        les = np.zeros(len(keep), bool)
        if sub.roi is not None:
            les = np.asarray((to_slices(sub.roi)[:, 0] > 0.5).reshape(len(keep), -1).any(axis=1))
        x0.append(sub.stack[keep][:, :1])
        y.append(les[keep])
    x = torch.from_numpy(np.concatenate(x0))
    labels = np.concatenate(y)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, float | None] = {}
    for t in AUC_TIMESTEPS:
        xt = forward_noise(x, acp, t, torch.randn(x.shape, generator=gen)) if t else x
        tt = torch.full((x.shape[0],), t, dtype=torch.long)
        p = torch.cat([torch.softmax(model.classifier(xt[i:i + 64], tt[i:i + 64]), -1) for i in range(0, len(x), 64)])
        out[f"t={t}"] = roc_auc(1.0 - p[:, 0].numpy(), labels)
    return out


def guidance_gradient(model: LoadedModel, subjects: list[Subject], t: int, seed: int,
                      figure: Path | None) -> float | None:
    """Mean |∇ log C(h | x_t)| inside lesions ÷ in the brain over FCD lesion slices (> 1: the gradient
    lands on the lesion); draws one slice's FLAIR, x_t and gradient into ``figure``."""
    acp = build_scheduler(model.net).alphas_cumprod
    gen = torch.Generator().manual_seed(seed)
    ratios, shown = [], False
    for sub in subjects:
        if sub.roi is None or not sub.roi.any():
            continue
        roi_s = to_slices(sub.roi)[:, 0] > 0.5
        ks = np.flatnonzero(roi_s.reshape(len(roi_s), -1).any(axis=1))
        x0 = torch.from_numpy(sub.stack[ks][:, :1])
        xt = forward_noise(x0, acp, t, torch.randn(x0.shape, generator=gen))
        g = log_prob_grad(model.classifier, xt, torch.full((len(ks),), t, dtype=torch.long), 0)[:, 0].abs().numpy()
        brain = sub.mask_s[ks]
        ratios.append(float(g[roi_s[ks]].mean()) / max(float(g[brain].mean()), 1e-12))
        if figure is not None and not shown:
            j = int(np.argmax(roi_s[ks].reshape(len(ks), -1).sum(axis=1)))
            _draw_gradient(figure, x0[j, 0].numpy(), xt[j, 0].numpy(), g[j], roi_s[ks][j], t, sub.label)
            shown = True
    return float(np.mean(ratios)) if ratios else None


def _draw_gradient(path: Path, x0: np.ndarray, xt: np.ndarray, g: np.ndarray, roi: np.ndarray, t: int,
                   label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(9, 3.4))
    for a, img, title, cmap in ((ax[0], x0, f"FLAIR (sub-{label})", "gray"), (ax[1], xt, f"x_t, t={t}", "gray"),
                                (ax[2], g, "|grad log C(h | x_t)|", "inferno")):
        a.imshow(img, origin="lower", cmap=cmap)
        a.contour(roi, levels=[0.5], colors="cyan", linewidths=0.8)
        a.set_title(title, fontsize=9)
        a.axis("off")
    fig.suptitle("Guidance gradient on a lesion slice (cyan: lesion mask)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def markdown_table(results: dict[str, dict[str, Any]], first: str = "variant", columns: tuple[str, ...] = COLUMNS,
                   headers: tuple[str, ...] = HEADERS, part: str | None = None) -> str:
    """A markdown table of cohort summaries (one row per variant); ``part`` reads the columns from
    that sub-dict of each summary (e.g. ``subgroups``)."""
    def fmt(v: Any) -> str:
        return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join((first, *headers)) + " |", "|" + "---|" * (len(headers) + 1)]
    for name, s in results.items():
        src = s.get(part, {}) if part else s
        lines.append("| " + " | ".join([name] + [fmt(src.get(c)) for c in columns]) + " |")
    return "\n".join(lines)


def describe(cfg: SamplerConfig) -> str:
    """The sampler settings of a results row, e.g. ``stochastic, L=300, K=3, D=2, s=20``."""
    if cfg.encoding == "patched":
        return (f"patched, core {cfg.patch_core_px} px, margin {cfg.patch_margin_px} px, T1w {cfg.t1_hiding}, "
                f"L={cfg.noise_level}, K={cfg.steps}, D={cfg.draws}")
    return (f"{cfg.encoding}, L={cfg.noise_level}, K={cfg.steps}" + (f", D={cfg.draws}" if cfg.encoding ==
            "stochastic" else "") + f", s={cfg.guidance_scale:g}")


def sampler_ablations(sampler: SamplerConfig) -> list[tuple[str, SamplerConfig]]:
    """The ``--ablations`` rows of the sampler (name, settings): for the patched encoding the T1w kept
    clean inside the holes and one step; for whole-slice encodings no guidance and the paper's
    deterministic encoding exactly as the ``paper`` preset (:data:`~bids_fcd.config.SAMPLER_PRESETS`)."""
    if sampler.encoding == "patched":
        rows = [("ablation: T1w clean inside the holes", dataclasses.replace(sampler, t1_hiding="clean")),
                ("ablation: one step (K=1)", dataclasses.replace(sampler, steps=1))]
        return [(name + f" ({describe(cfg)})", cfg) for name, cfg in rows]
    paper = dataclasses.replace(sampler, **SAMPLER_PRESETS["paper"])  # type: ignore[arg-type]
    return [("ablation: no guidance (s=0)", dataclasses.replace(sampler, guidance_scale=0.0)),
            (f"paper preset ({describe(paper)})", paper)]


def post_variants(prefix: str, post0: PostConfig, hm: bool, ablations: bool) -> list[tuple[str, PostConfig, bool]]:
    """The table of post-processing variants of one sampler run: (row name, cluster/scoring settings,
    histogram matching). The method and its residual-only row; with ``ablations`` (the default
    sampler's own rows) the drift, re-standardisation, histogram-matching, within-brain z and
    absolute-anomaly ablations and the paper's post-processing."""
    residual_only = dataclasses.replace(post0, flair_weight=0.0)
    rows = [(prefix, post0, hm), (prefix + ", residual only", residual_only, hm)]
    if ablations:
        rows += [("ablation: drift from each map itself (the earlier default)", dataclasses.replace(post0, drift_source="self"),
                  hm),
                 ("ablation: residual only, drift from itself (the earlier default)",
                  dataclasses.replace(residual_only, drift_source="self"), hm),
                 ("ablation: no drift removal, no re-standardisation",
                  dataclasses.replace(post0, drift_block_mm=0.0, restandardise=False), hm),
                 ("ablation: residual only, no drift removal, no re-standardisation",
                  dataclasses.replace(residual_only, drift_block_mm=0.0, restandardise=False), hm),
                 ("ablation: no histogram matching", post0, False),
                 ("ablation: within-brain z (the paper's z)", dataclasses.replace(post0, zscore="within"), hm),
                 ("ablation: absolute anomaly", dataclasses.replace(post0, anomaly="absolute"), hm),
                 ("paper's post-processing (absolute, within-brain z)",
                  dataclasses.replace(post0, anomaly="absolute", zscore="within"), hm)]
    return rows


#: The baselines: (row name, the map of a subject), each scored exactly as the method's residual.
BASELINES: tuple[tuple[str, Callable[[Subject], np.ndarray]], ...] = (
    ("baseline: FLAIR z vs reference controls", lambda s: s.flair),
    ("baseline: FLAIR asymmetry vs reference controls", lambda s: asymmetry(s.flair, s.mask, signed=True)),
    ("baseline: FLAIR minus the FLAIR its own T1w predicts, vs reference controls",
     lambda s: s.flair - flair_from_t1w(s.flair, from_slices(s.stack[:, 1]), s.mask)),
)


@dataclass
class Bench:
    """The state of one benchmark run: cohorts, model, settings and the results written so far."""

    run: BenchmarkConfig
    out: Path
    model: LoadedModel
    sampler: SamplerConfig
    device: torch.device
    subjects: list[Subject]
    refs: list[Subject]
    ref_bids: Path
    post0: PostConfig
    cortex: np.ndarray
    res: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweeps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    timings: dict[tuple[str, str], float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def affine(self) -> np.ndarray:
        return grid_affine(self.model.net.grid)[0]

    @property
    def timings_file(self) -> Path:
        return self.out / "cache" / "timings.json"


def flush(b: Bench) -> None:
    """Write what is done so far (a long run interrupted keeps its finished rows)."""
    write_json(b.timings_file, {f"{k}|{v}": t for (k, v), t in b.timings.items()}, indent=1)
    write_json(b.out / "results.json", {"meta": b.meta, "results": b.res, "sweeps": b.sweeps,
                                        "diagnostics": b.diagnostics})
    text = [markdown_table(b.res), "", "Subgroups (lesion thirds by mask volume; acquisition of the FLAIR):", "",
            markdown_table(b.res, columns=SUBGROUP_COLUMNS, headers=SUBGROUP_HEADERS, part="subgroups")]
    for name, table in b.sweeps.items():
        text += ["", f"Sweep: {name}", "", markdown_table(table, name)]
    if b.diagnostics:
        text += ["", "Classifier AUC (lesion vs healthy slice, 1 - C(h | x_t)): " +
                 ", ".join(f"{k}: {v:.3f}" if v is not None else f"{k}: n/a"
                           for k, v in b.diagnostics["classifier_auc_lesion_slice"].items()),
                 f"Guidance gradient |grad| lesion / brain at t={GRADIENT_T}: "
                 f"{b.diagnostics['guidance_gradient_lesion_to_brain']}"]
    write_text(b.out / "results.md", "\n".join(text) + "\n")


def score_variant(b: Bench, name: str, test_maps: dict[str, Maps], ref_maps: dict[str, list[np.ndarray]],
                  post: PostConfig, seconds: float, extra: dict[str, Any] | None = None) -> None:
    """Calibrate one variant on the reference controls, score the test cohort, store and flush the row."""
    masks = {s.label: s.mask for s in b.subjects}
    zs, cal, chosen = calibrated_z(test_maps, ref_maps, [s.mask for s in b.refs], masks, post, b.affine,
                                   b.run.max_fp_per_control)
    b.res[name] = evaluate_variant(b.subjects, zs, b.affine, cal, seconds) | (extra or {})
    b.res[name]["calibration_fp_per_control"] = chosen["fp_clusters_per_control"]
    flush(b)
    log.info("%s: sensitivity %s, FP clusters/HC %s (z > %g, >= %g mm3)", name, b.res[name]["subject_sensitivity"],
             b.res[name]["fp_clusters_per_control"], cal.z_threshold, cal.min_cluster_mm3)


def sample_cohorts(b: Bench, cfg: SamplerConfig, mdl: LoadedModel) -> tuple[dict[str, np.ndarray],
                                                                           dict[str, np.ndarray], float]:
    """Raw pseudo-healthy volumes of the test and reference cohorts (cached) and the sampling seconds
    of the first, uncached run."""
    raw_t, secs = pseudo_volumes(b.subjects, mdl, cfg, b.device, b.out / "cache", b.run.env.compile_nets)
    raw_r, _ = pseudo_volumes(b.refs, mdl, cfg, b.device, b.out / "cache", b.run.env.compile_nets)
    secs = b.timings.setdefault((mdl.sha256, json.dumps(to_dict(cfg))), secs)
    return raw_t, raw_r, secs


def run_method(b: Bench, prefix: str, cfg: SamplerConfig, mdl: LoadedModel, own_reference: bool = False) -> None:
    """Every row of :func:`post_variants` for one sampler and model. ``own_reference``: also write
    the method's reference to OUT/reference exactly as ``bids-fcd reference`` builds it, and the
    post-processing ablations."""
    raw_t, raw_r, secs = sample_cohorts(b, cfg, mdl)
    if own_reference:
        ref, _, meta = reference_from_cohort(b.refs, raw_r, mdl, cfg, b.post0, b.run.max_fp_per_control)
        save_reference(b.out / "reference", ref, b.affine, {**meta, "dataset": b.ref_bids.name})
    grid = mdl.net.grid
    quality = synthesis_quality(b.subjects, raw_t, b.cortex, cfg.histogram_matching)
    for name, post, hm in post_variants(prefix, b.post0, cfg.histogram_matching, own_reference):
        t_an = anomaly_maps(b.subjects, raw_t, mdl, post, hm)
        r_an = anomaly_maps(b.refs, raw_r, mdl, post, hm)
        t_maps = {s.label: normative_maps(t_an[s.label][1], s.flair, s.mask, grid, post, t_an[s.label][0])
                  for s in b.subjects}
        q = quality if hm == cfg.histogram_matching else synthesis_quality(b.subjects, raw_t, b.cortex, hm)
        score_variant(b, name, t_maps, control_maps(b.refs, r_an, grid, post), post, secs, q)


def run_baseline(b: Bench, name: str, fn: Callable[[Subject], np.ndarray]) -> None:
    """A map without diffusion model, scored exactly as the method's residual (drift removal,
    normative z, re-standardisation, leave-one-out calibration)."""
    t0 = time.time()
    residual_only = dataclasses.replace(b.post0, flair_weight=0.0)
    grid = b.model.net.grid

    def maps(s: Subject) -> Maps:
        return {"anomaly": without_drift(fn(s), s.mask, grid, b.post0, smooth=True)}

    t_maps = {s.label: maps(s) for s in b.subjects}
    secs = time.time() - t0
    score_variant(b, name, t_maps, {"anomaly": [maps(s)["anomaly"] for s in b.refs]}, residual_only, secs)


def sampler_rows(b: Bench) -> list[tuple[str, SamplerConfig, LoadedModel]]:
    """The table of further sampler runs the flags ask for: ``--compare-model`` (fast preset),
    ``--ablations`` (:func:`sampler_ablations`), ``--flair-only-model``."""
    run = b.run
    rows: list[tuple[str, SamplerConfig, LoadedModel]] = []
    if run.compare_model:
        other = load_model(run.compare_model, b.device, run.env.models_dir)
        fast = dataclasses.replace(b.sampler, **SAMPLER_PRESETS["fast"])  # type: ignore[arg-type]
        rows.append((f"model {other.name} ({other.sha256[:8]}), fast preset ({describe(fast)})", fast, other))
    if run.ablations:
        rows += [(name, cfg, b.model) for name, cfg in sampler_ablations(b.sampler)]
    if run.flair_only_model:
        rows.append(("ablation: FLAIR-only model", b.sampler,
                     load_model(run.flair_only_model, b.device, run.env.models_dir)))
    return rows


def sweep_rows(sampler: SamplerConfig) -> list[tuple[str, str, SamplerConfig]]:
    """``--sweeps``: (sweep name, row name, sampler) over :data:`LEVEL_SWEEP` and :data:`SCALE_SWEEP`."""
    return ([("noise level L", f"L={level} (K={k})", dataclasses.replace(sampler, noise_level=level, steps=k))
             for level, k in LEVEL_SWEEP] +
            [("guidance scale s", f"s={scale:g}", dataclasses.replace(sampler, guidance_scale=scale))
             for scale in SCALE_SWEEP])


def recorded_sampler(out: Path, model: LoadedModel) -> SamplerConfig:
    """The sampler the benchmark in ``out`` ran (its ``benchmark_config.json``), resolved for ``model``, so a
    script reads the volumes that benchmark cached; the model's default sampler where none is recorded."""
    recorded = out / config_file("benchmark")
    cfg = (from_dict(SamplerConfig, json.loads(recorded.read_text())["run"]["sampler"]) if recorded.exists()
           else SamplerConfig())
    return resolve_sampler(cfg, model)


def prepare(run: BenchmarkConfig) -> Bench:
    """Write the cohorts that are missing, load the model and both cohorts (preprocessed, cached)."""
    out = Path(run.out)
    bids = out / "bids"
    write_json(out / config_file("benchmark"), {"run": to_dict(run)})
    test_anatomies: tuple[str, ...] = ()
    reference_anatomies: tuple[str, ...] = ()
    if run.anatomy:
        test_anatomies = tuple(str(p) for p in anatomy_files(Path(run.anatomy), run.anatomy_split))
        reference_anatomies = tuple(str(p) for p in anatomy_files(Path(run.anatomy), "reference"))
    if not (bids / "dataset_description.json").exists():
        write_cohort(bids, run.n_fcd, run.n_hc, run.phantom_seed, run.size, run.lesions, anatomies=test_anatomies)
    ref_bids = Path(run.reference_bids) if run.reference_bids else out / "ref-bids"
    if not (ref_bids / "dataset_description.json").exists():
        write_cohort(ref_bids, 0, run.n_reference, run.reference_seed, run.size, run.lesions,
                     anatomies=reference_anatomies)
    device = resolve_device(run.device)
    model = load_model(run.model, device, run.env.models_dir)
    sampler = resolve_sampler(run.sampler, model)
    post0 = dataclasses.replace(model.post, anomaly="signed", zscore="normative")
    subjects = load_cohort(bids, out / "work", model)
    refs = load_cohort(ref_bids, out / "ref-work", model, controls_of(ref_bids))
    b = Bench(run=run, out=out, model=model, sampler=sampler, device=device, subjects=subjects, refs=refs,
              ref_bids=ref_bids, post0=post0, cortex=cortex_on_grid(model))
    if b.timings_file.exists():
        b.timings = {tuple(k.split("|", 1)): v  # type: ignore[misc]
                     for k, v in json.loads(b.timings_file.read_text()).items()}
    b.meta = {"cohort": {"n_fcd": run.n_fcd, "n_hc": run.n_hc, "seed": run.phantom_seed, "size": run.size,
                         "anatomy": run.anatomy_split if run.anatomy else "template"},
              "reference": {"bids": str(ref_bids), "n_controls": len(refs), "seed": run.reference_seed},
              "model": {"name": model.name, "sha256": model.sha256}, "sampler": to_dict(sampler),
              "post": to_dict(post0), "max_fp_per_control": run.max_fp_per_control, "device": str(device),
              "date": time.strftime("%Y-%m-%d")}
    log.info("benchmark: %d test participants (%d controls), %d reference controls, model %s", len(subjects),
             sum(is_control(s.group) for s in subjects), len(refs), model.name)
    return b


def run_benchmark(run: BenchmarkConfig) -> int:
    """Entry of ``bids-fcd benchmark``; returns the exit code (``run`` is written to OUT/benchmark_config.json)."""
    b = prepare(run)
    run_method(b, f"method ({describe(b.sampler)})", b.sampler, b.model, own_reference=True)
    for name, fn in BASELINES:
        run_baseline(b, name, fn)
    b.diagnostics["classifier_auc_lesion_slice"] = classifier_auc(b.model, b.subjects, run.seed)
    b.diagnostics["guidance_gradient_lesion_to_brain"] = guidance_gradient(
        b.model, b.subjects, GRADIENT_T, run.seed, b.out / "guidance_gradient.png")
    flush(b)
    for name, cfg, mdl in sampler_rows(b):
        run_method(b, name, cfg, mdl)
    if run.sweeps:
        for sweep, name, cfg in sweep_rows(b.sampler):
            run_method(b, name, cfg, b.model)
            b.sweeps.setdefault(sweep, {})[name] = b.res.pop(name)
    flush(b)
    log.info("benchmark results:\n%s", (b.out / "results.md").read_text())
    return 0
