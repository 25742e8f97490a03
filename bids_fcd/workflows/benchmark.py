"""``bids-fcd benchmark``: the method, its ablations and two baselines on one held-out phantom.

Every variant sees the same preprocessed inputs and the same scoring (design.md §4); the table
is printed in the paper's form (R@5, R@10, Dice) with false-positive and subject-level columns.
Results go to OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_fcd.bids.layout import find_inputs, open_layout
from bids_fcd.bids.participants import read_participants
from bids_fcd.config import PostConfig, PreprocConfig, SamplerConfig
from bids_fcd.evaluation.baselines import asymmetry, control_zscore
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.nets.checkpoint import LoadedModel, load_model
from bids_fcd.phantom.generator import write_cohort
from bids_fcd.postprocessing.anomaly import anomaly_map
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.preprocessing.pipeline import preprocess
from bids_fcd.workflows.analysis import postprocess, synthesise, threshold_anomaly
from bids_fcd.workflows.participant import resolve_device

log = logging.getLogger(__name__)

COLUMNS = ("R@5", "R@10", "dice_best_per_subject", "dice_z", "fp_pixels_per_slice", "fp_clusters_per_control",
           "subject_sensitivity", "peak_hit@10", "top_cluster_lobe_accuracy", "seconds_per_subject")
HEADERS = ("R@5", "R@10", "Dice best", "Dice z", "FP px/slice", "FP clusters/HC", "subject sens.", "peak hit@10",
           "top-cluster lobe acc.", "s/subject")


#: The paper's sweeps: guidance scale s (ε-form) and noise level L with its step count K (L/K divides T).
SCALE_SWEEP = (0.0, 20.0, 80.0)
LEVEL_SWEEP = ((50, 5), (100, 10), (200, 10))


@dataclass
class Subject:
    """One benchmark participant on the model grid: volumes are (W, H, S)."""

    label: str
    group: str
    lobe: str
    stack: np.ndarray  # (S, 2, H, W)
    mask_s: np.ndarray  # (S, H, W)
    flair: np.ndarray
    mask: np.ndarray
    roi: np.ndarray | None


def load_cohort(bids: Path, work: Path, model: LoadedModel, labels: list[str] | None = None) -> list[Subject]:
    """Preprocess (cached) the participants (default: all) of a cohort onto the model's grid."""
    layout = open_layout(bids, validate=False)
    rows = read_participants(bids)
    out = []
    for label in labels or sorted(layout.get_subjects()):
        inp = find_inputs(layout, label, None, {})
        pre = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, model.net.grid, PreprocConfig())
        stack, mask_s = pre.slices()
        roi = pre.roi_slices()
        row = rows.get(label, {})
        out.append(Subject(label, row.get("group", "n/a"), row.get("lobe", "n/a"), stack, mask_s,
                           from_slices(stack[:, 0]), from_slices(mask_s),
                           from_slices(roi) if roi is not None else None))
    return out


def evaluate_maps(subjects: list[Subject], maps: dict[str, np.ndarray], model: LoadedModel, post: PostConfig,
                  seconds: float) -> dict[str, Any]:
    """Score anomaly maps {label: (W, H, S)} of a variant; returns the cohort summary."""
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    rows = []
    for sub in subjects:
        z, labels, clusters = threshold_anomaly(maps[sub.label], sub.mask, grid, post)
        row = score_subject(maps[sub.label], labels, [np.array(c.center_mm) for c in clusters], sub.mask, sub.roi,
                            aff)
        row.update(group=sub.group, true_lobe=sub.lobe)
        if clusters:
            row["predicted_lobe"] = clusters[0].lobe
        rows.append(row)
    summary = cohort_summary(rows, post.z_threshold)
    summary["top_cluster_lobe_accuracy"] = summary.pop("lobe_accuracy")
    summary["seconds_per_subject"] = seconds / max(len(subjects), 1)
    summary["per_subject"] = [{k: r.get(k) for k in ("group", "true_lobe", "predicted_lobe", "detected", "r_at_10",
                                                     "n_clusters", "dice_z")} | {"label": s.label}
                              for r, s in zip(rows, subjects, strict=True)]
    return summary


def pseudo_volumes(subjects: list[Subject], model: LoadedModel, sampler: SamplerConfig,
                   device: torch.device) -> tuple[dict[str, np.ndarray], float]:
    """Raw pseudo-healthy FLAIR volumes (W, H, S) per participant, and the seconds taken."""
    t0 = time.time()
    raw = {}
    for sub in subjects:
        raw[sub.label] = from_slices(synthesise(model, sub.stack, sub.mask_s, sampler, device))
        log.info("sub-%s: pseudo-healthy (s=%g, L=%d, K=%s) after %.0f s", sub.label, sampler.guidance_scale,
                 sampler.noise_level, sampler.steps, time.time() - t0)
    return raw, time.time() - t0


def anomaly_maps(subjects: list[Subject], raw: dict[str, np.ndarray], model: LoadedModel, post: PostConfig,
                 histogram_matching: bool) -> dict[str, np.ndarray]:
    """Anomaly maps from raw pseudo-healthy volumes (with or without histogram matching)."""
    return {sub.label: postprocess(sub.flair, raw[sub.label], sub.mask, model.net.grid, post, histogram_matching)[1]
            for sub in subjects}


def method_maps(subjects: list[Subject], model: LoadedModel, sampler: SamplerConfig, post: PostConfig,
                device: torch.device) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """Anomaly maps with and without histogram matching for one sampler setting (+ seconds taken)."""
    raw, secs = pseudo_volumes(subjects, model, sampler, device)
    return (anomaly_maps(subjects, raw, model, post, True), anomaly_maps(subjects, raw, model, post, False), secs)


def baseline_maps(subjects: list[Subject], fn: Callable[[Subject], np.ndarray], model: LoadedModel,
                  post: PostConfig) -> tuple[dict[str, np.ndarray], float]:
    """Smoothed baseline maps (same smoothing as the method's anomaly map)."""
    t0 = time.time()
    maps = {}
    for sub in subjects:
        base = fn(sub)
        maps[sub.label] = anomaly_map(base, np.zeros_like(base), sub.mask, post.smoothing_fwhm_mm,
                                      model.net.grid.spacing_mm)
    return maps, time.time() - t0


def markdown_table(results: dict[str, dict[str, Any]], first: str = "variant") -> str:
    """A markdown table of cohort summaries (one row per variant)."""
    def fmt(v: Any) -> str:
        return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join((first, *HEADERS)) + " |", "|" + "---|" * (len(HEADERS) + 1)]
    for name, s in results.items():
        lines.append("| " + " | ".join([name] + [fmt(s.get(c)) for c in COLUMNS]) + " |")
    return "\n".join(lines)


def run_benchmark(args, sampler: SamplerConfig) -> int:  # noqa: ANN001
    """Entry of ``bids-fcd benchmark``; returns the exit code."""
    out = Path(args.out)
    bids, work = out / "bids", out / "work"
    if not (bids / "dataset_description.json").exists():
        write_cohort(bids, args.n_fcd, args.n_hc, args.phantom_seed, args.size)
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    post = model.post
    subjects = load_cohort(bids, work, model)
    controls = [s for s in subjects if s.group == "hc"]
    log.info("benchmark: %d participants (%d controls), model %s", len(subjects), len(controls), model.name)
    res: dict[str, dict[str, Any]] = {}

    def key(cfg: SamplerConfig) -> tuple[float, int, int | None]:
        return (cfg.guidance_scale, cfg.noise_level, cfg.steps)

    hm, no_hm, secs = method_maps(subjects, model, sampler, post, device)
    done = {key(sampler): evaluate_maps(subjects, hm, model, post, secs)}
    res[f"method (s={sampler.guidance_scale:g}, L={sampler.noise_level}, K={sampler.steps})"] = done[key(sampler)]
    res["ablation: no histogram matching"] = evaluate_maps(subjects, no_hm, model, post, secs)

    def method(cfg: SamplerConfig) -> dict[str, Any]:
        """The method's cohort summary for one sampler setting (each setting sampled once)."""
        if key(cfg) not in done:
            maps, _, secs = method_maps(subjects, model, cfg, post, device)
            done[key(cfg)] = evaluate_maps(subjects, maps, model, post, secs)
        return done[key(cfg)]

    res["ablation: no guidance (s=0)"] = method(dataclasses.replace(sampler, guidance_scale=0.0))
    if args.flair_only_model:
        fo = load_model(args.flair_only_model, device)
        hm_fo, _, secs_fo = method_maps(subjects, fo, sampler, post, device)
        res["ablation: FLAIR-only model"] = evaluate_maps(subjects, hm_fo, fo, post, secs_fo)

    def zbase(sub: Subject) -> np.ndarray:
        others = [c for c in controls if c.label != sub.label]
        if not others:
            log.warning("sub-%s: no other control for the z-score baseline; its map is empty", sub.label)
            return np.zeros_like(sub.flair)
        return control_zscore(sub.flair, [c.flair for c in others], [c.mask for c in others], sub.mask)

    maps, secs_b = baseline_maps(subjects, zbase, model, post)
    res["baseline: FLAIR z-score vs controls"] = evaluate_maps(subjects, maps, model, post, secs_b)
    maps, secs_b = baseline_maps(subjects, lambda s: asymmetry(s.flair, s.mask), model, post)
    res["baseline: FLAIR asymmetry"] = evaluate_maps(subjects, maps, model, post, secs_b)

    sweeps: dict[str, dict[str, dict[str, Any]]] = {}
    if args.sweeps:
        sweeps["guidance scale s"] = {
            f"s={s:g}": method(dataclasses.replace(sampler, guidance_scale=s)) for s in SCALE_SWEEP}
        sweeps["noise level L"] = {
            f"L={level} (K={k})": method(dataclasses.replace(sampler, noise_level=level, steps=k))
            for level, k in LEVEL_SWEEP}

    meta = {"cohort": {"n_fcd": args.n_fcd, "n_hc": args.n_hc, "seed": args.phantom_seed, "size": args.size},
            "model": {"name": model.name, "sha256": model.sha256}, "sampler": dataclasses.asdict(sampler),
            "post": dataclasses.asdict(post), "device": str(device),
            "date": time.strftime("%Y-%m-%d")}
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": res, "sweeps": sweeps}, indent=2) + "\n")
    text = [markdown_table(res)]
    for name, table in sweeps.items():
        text += ["", f"Sweep: {name}", "", markdown_table(table, name)]
    (out / "results.md").write_text("\n".join(text) + "\n")
    log.info("benchmark results:\n%s", "\n".join(text))
    return 0
