"""The group level: a row per participant and cohort figures, scored where lesion masks exist.

Reads only the participant-level derivatives in OUTPUT_DIR and the raw ``_roi`` masks (mapped
into the model grid through the participant's own transforms, SyN warp included).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import InputError, find_inputs, open_layout, subject_sessions
from bids_fcd.bids.participants import read_participants
from bids_fcd.config import RunConfig
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.preprocessing.pipeline import PreprocessingError, roi_to_grid

log = logging.getLogger(__name__)

ROW_COLUMNS = ("participant_id", "session", "group", "true_lobe", "predicted_lobe", "predicted_lobe_probability",
               "healthy_probability",
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


def score_participant(anomaly_path: Path, dseg_path: Path, mask_path: Path, table: list[dict[str, str]],
                      roi_grid: np.ndarray | None) -> dict[str, Any]:
    """Metrics of one participant from its derivatives (and lesion mask on the same grid, if any).

    ``anomaly_path`` is the map the threshold-free figures use: the z-map, as in the benchmark.
    """
    dseg_img = nib.load(dseg_path)
    labels = np.asarray(dseg_img.get_fdata()).astype(int)  # type: ignore[attr-defined]
    anomaly = np.asarray(nib.load(anomaly_path).get_fdata(), np.float32)  # type: ignore[attr-defined]
    mask = np.asarray(nib.load(mask_path).get_fdata()) > 0.5  # type: ignore[attr-defined]
    centres = [np.array([float(r["center_x"]), float(r["center_y"]), float(r["center_z"])]) for r in table]
    out = score_subject(anomaly, labels, centres, mask, roi_grid, dseg_img.affine)  # type: ignore[attr-defined]
    if table:
        out.update(top_cluster_lobe=table[0]["lobe"], top_cluster_hemisphere=table[0]["hemisphere"],
                   top_cluster_peak_z=float(table[0]["peak_z"]))
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
    thresholds: list[float] = []
    for subject in subjects:
        for session in subject_sessions(layout, subject, cfg.session_label):
            def p(suffix: str, ext: str, **e: str) -> Path:
                return deriv.derivative_path(out_dir, subject, session, suffix, ext, **e)  # noqa: B023
            z_path = p("statmap", ".nii.gz", space=deriv.SPACE, stat="z", desc="anomaly")
            if not z_path.exists():
                log.warning("sub-%s: no participant-level outputs in %s; skipped", subject, out_dir)
                continue
            info = rows_in.get(subject, {})
            row: dict[str, Any] = {"participant_id": f"sub-{subject}", "session": session,
                                   "group": info.get("group", "n/a"), "true_lobe": info.get("lobe", "n/a")}
            lobes = {r["lobe"]: float(r["probability"]) for r in _read_tsv(p("probabilities", ".tsv", desc="lobes"))}
            top = max((k for k in lobes if k != "healthy"), key=lambda k: lobes[k])
            row.update(predicted_lobe=top, predicted_lobe_probability=lobes[top],
                       healthy_probability=lobes.get("healthy"))
            roi_grid = None
            try:
                inp = find_inputs(layout, subject, session, {})
                if inp.roi is not None:
                    warp = p("xfm", ".nii.gz", from_="T1w", to=deriv.SPACE, mode="image", desc="warp")
                    chain = ([warp] if warp.exists() else []) + [
                        p("xfm", ".mat", from_="T1w", to=deriv.SPACE, mode="image"),
                        p("xfm", ".mat", from_="FLAIR", to="T1w", mode="image")]
                    roi_grid = roi_to_grid(inp.roi, z_path, chain)
            except (InputError, PreprocessingError) as exc:
                log.warning("sub-%s: lesion mask not used: %s", subject, exc)
            dseg_side = deriv.sidecar_path(p("dseg", ".nii.gz", space=deriv.SPACE, desc="clusters"))
            thresholds.append(float(json.loads(dseg_side.read_text())["Threshold"]))
            row.update(score_participant(z_path,  # the thresholded map (peak hit, best-threshold Dice)
                                         p("dseg", ".nii.gz", space=deriv.SPACE, desc="clusters"),
                                         p("mask", ".nii.gz", space=deriv.SPACE, desc="brain"),
                                         _read_tsv(p("table", ".tsv", desc="clusters")), roi_grid))
            rows.append(row)
    if not rows:
        log.error("no participant outputs found in %s", out_dir)
        return 1
    summary = cohort_summary(rows, thresholds[0] if len(set(thresholds)) == 1 else float("nan"))
    with open(out_dir / "group_summary.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(ROW_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in ROW_COLUMNS])
    deriv.write_json(out_dir / "group_summary.json", summary)
    log.info("group level: %d participants; sensitivity %s, FP clusters per control %s", len(rows),
             summary["subject_sensitivity"], summary["fp_clusters_per_control"])
    return 0
