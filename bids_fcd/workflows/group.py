"""The group level: a row per participant and cohort figures, scored where lesion masks exist.

Reads only the participant-level derivatives in OUTPUT_DIR and the raw ``_roi`` masks (mapped
into the model grid through the participant's own transforms, nearest neighbour).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import InputError, find_inputs, open_layout, subject_sessions
from bids_fcd.bids.participants import read_participants
from bids_fcd.config import RunConfig
from bids_fcd.evaluation.metrics import (best_threshold_dice, cluster_hits_lesion, dice, false_positive_pixels,
                                         lesion_slices, peak_hit_at_k, recall_at_k)
from bids_fcd.preprocessing.grid import to_slices
from bids_fcd.preprocessing.pipeline import PreprocessingError, roi_to_grid

log = logging.getLogger(__name__)

ROW_COLUMNS = ("participant_id", "session", "group", "true_lobe", "predicted_lobe", "predicted_lobe_probability",
               "n_clusters", "top_cluster_lobe", "top_cluster_hemisphere", "top_cluster_peak_z", "lesion_slices",
               "r_at_5", "r_at_10", "peak_hit_at_10", "fp_pixels_per_slice", "dice_z", "dice_best", "detected",
               "fp_clusters")


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def score_participant(z_path: Path, anomaly_path: Path, dseg_path: Path, mask_path: Path, table: list[dict[str, str]],
                      roi_grid: np.ndarray | None) -> dict[str, Any]:
    """Metrics of one participant from its derivatives (and lesion mask on the same grid, if any)."""
    dseg = np.asarray(nib.load(dseg_path).get_fdata()).astype(int)
    affine = nib.load(dseg_path).affine
    out: dict[str, Any] = {"n_clusters": len(table)}
    if table:
        out.update(top_cluster_lobe=table[0]["lobe"], top_cluster_hemisphere=table[0]["hemisphere"],
                   top_cluster_peak_z=float(table[0]["peak_z"]))
    if roi_grid is None:
        out["fp_clusters"] = len(table)
        return out
    anomaly = np.asarray(nib.load(anomaly_path).get_fdata(), np.float32)
    mask = np.asarray(nib.load(mask_path).get_fdata()) > 0.5
    pred_s, les_s, an_s = (to_slices(a)[:, 0] for a in (dseg > 0, roi_grid, anomaly))
    pred_s, les_s = pred_s > 0.5, les_s > 0.5
    r5, n = recall_at_k(pred_s, les_s, 5)
    r10, _ = recall_at_k(pred_s, les_s, 10)
    ph, _ = peak_hit_at_k(an_s, les_s, 10)
    hits = [cluster_hits_lesion(dseg == int(r["index"]), np.array([float(r["center_x"]), float(r["center_y"]),
                                float(r["center_z"])]), roi_grid, affine) for r in table]
    best, _ = best_threshold_dice(anomaly, roi_grid, mask)
    out.update(
        lesion_slices=n, r5_hits=r5, r10_hits=r10, peak_hits=ph,
        r_at_5=r5 / n if n else None, r_at_10=r10 / n if n else None, peak_hit_at_10=ph / n if n else None,
        fp_pixels=false_positive_pixels(pred_s, les_s, 10), n_slices=int(lesion_slices(to_slices(mask)[:, 0] > 0.5).sum()),
        dice_z=dice(dseg > 0, roi_grid), dice_best=best, detected=bool(hits and hits[0]),
        fp_clusters=int(sum(not h for h in hits)),
    )
    out["fp_pixels_per_slice"] = out["fp_pixels"] / max(out["n_slices"], 1)
    return out


def run_group_level(cfg: RunConfig) -> int:
    """Write ``group_summary.tsv`` and ``group_summary.json`` into OUTPUT_DIR; returns the exit code."""
    bids_dir, out_dir = Path(cfg.bids_dir), Path(cfg.output_dir)
    if not (out_dir / "dataset_description.json").exists():
        log.error("%s holds no bids-fcd outputs; run the participant level first", out_dir)
        return 1
    layout = open_layout(bids_dir, validate=not cfg.skip_bids_validation)
    rows_in = read_participants(bids_dir)
    subjects = list(cfg.participant_label) or sorted(layout.get_subjects())
    rows: list[dict[str, Any]] = []
    for subject in subjects:
        for session in subject_sessions(layout, subject, cfg.session_label):
            def p(suffix: str, ext: str, **e: str | None) -> Path:
                return deriv.derivative_path(out_dir, subject, session, suffix, ext, **e)  # noqa: B023
            z_path = p("statmap", ".nii.gz", space=deriv.SPACE, stat="z", desc="anomaly")
            if not z_path.exists():
                log.warning("sub-%s: no participant-level outputs in %s; skipped", subject, out_dir)
                continue
            info = rows_in.get(subject, {})
            row: dict[str, Any] = {"participant_id": f"sub-{subject}", "session": session,
                                   "group": info.get("group", "n/a"), "true_lobe": info.get("lobe", "n/a")}
            lobes = {r["lobe"]: float(r["probability"]) for r in _read_tsv(p("probabilities", ".tsv", desc="lobes"))}
            top = max(lobes, key=lambda k: lobes[k])
            row.update(predicted_lobe=top, predicted_lobe_probability=lobes[top])
            roi_grid = None
            try:
                inp = find_inputs(layout, subject, session, {})
                if inp.roi is not None:
                    roi_grid = roi_to_grid(inp.roi, z_path,
                                           p("xfm", ".mat", from_="T1w", to=deriv.SPACE, mode="image"),
                                           p("xfm", ".mat", from_="FLAIR", to="T1w", mode="image"))
            except (InputError, PreprocessingError) as exc:
                log.warning("sub-%s: lesion mask not used: %s", subject, exc)
            row.update(score_participant(z_path, p("statmap", ".nii.gz", space=deriv.SPACE, desc="anomaly"),
                                         p("dseg", ".nii.gz", space=deriv.SPACE, desc="clusters"),
                                         p("mask", ".nii.gz", space=deriv.SPACE, desc="brain"),
                                         _read_tsv(p("table", ".tsv", desc="clusters")), roi_grid))
            rows.append(row)
    if not rows:
        log.error("no participant outputs found in %s", out_dir)
        return 1
    summary = cohort_summary(rows, cfg.post.z_threshold)
    with open(out_dir / "group_summary.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(ROW_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in ROW_COLUMNS])
    deriv.write_json(out_dir / "group_summary.json", summary)
    log.info("group level: %d participants; sensitivity %s, FP clusters per control %s", len(rows),
             summary["subject_sensitivity"], summary["fp_clusters_per_control"])
    return 0


def cohort_summary(rows: list[dict[str, Any]], z_threshold: float) -> dict[str, Any]:
    """Cohort figures: R@k pooled over lesion slices, with FP figures beside them (design.md §4)."""
    scored = [r for r in rows if r.get("lesion_slices")]
    controls = [r for r in rows if r.get("group") == "hc"]
    n_slices = sum(r["lesion_slices"] for r in scored)

    def mean(key: str, rs: list[dict[str, Any]]) -> float | None:
        vals = [float(r[key]) for r in rs if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    with_lobe = [r for r in rows if r.get("true_lobe") not in (None, "", "n/a")]
    return {
        "n_participants": len(rows),
        "n_scored": len(scored),
        "n_controls": len(controls),
        "binarisation": f"clusters of z > {z_threshold:g}",
        "R@5": sum(r["r5_hits"] for r in scored) / n_slices if n_slices else None,
        "R@10": sum(r["r10_hits"] for r in scored) / n_slices if n_slices else None,
        "peak_hit@10": sum(r["peak_hits"] for r in scored) / n_slices if n_slices else None,
        "fp_pixels_per_slice": mean("fp_pixels_per_slice", scored),
        "fp_clusters_per_control": mean("n_clusters", controls),
        "fp_clusters_per_patient": mean("fp_clusters", scored),
        "dice_z": mean("dice_z", scored),
        "dice_best_per_subject": mean("dice_best", scored),
        "subject_sensitivity": (sum(bool(r["detected"]) for r in scored) / len(scored)) if scored else None,
        "lobe_accuracy": (sum(r["predicted_lobe"] in r["true_lobe"].split(",") for r in with_lobe) / len(with_lobe))
        if with_lobe else None,
    }
