"""The group level: a row per participant, cohort detection figures, and the cohort page.

Reads only the participant-level derivatives in OUTPUT_DIR, their crash records, and the raw
``_roi`` masks (mapped into the model grid through the participant's own transforms, SyN warp
included). Writes, in OUTPUT_DIR:

- ``group_summary.tsv``: one row per participant (:data:`ROW_COLUMNS`);
- ``group_summary.json``: its sidecar, a description per column (:data:`SUMMARY_COLUMNS`);
- ``group_detection.json``: the cohort metrics (:func:`cohort_summary`) and the free-response curve;
- ``group.html``: the cohort page (:func:`bids_fcd.reports.group.write_group_report`).

The TSV and JSON files are written first; a failure while making the page is logged and makes
the exit code non-zero without touching them.
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
from bids_fcd.bids.participants import is_control, read_participants
from bids_fcd.commands import config_file
from bids_fcd.config import PostConfig, RunConfig, lobe_legend, to_dict
from bids_fcd.evaluation.froc import Marks, froc_curve, marks_from_map
from bids_fcd.evaluation.scoring import cohort_summary, score_subject
from bids_fcd.interrupts import deferred
from bids_fcd.io import write_json, write_tsv
from bids_fcd.preprocessing.pipeline import PreprocessingError, roi_to_grid

log = logging.getLogger(__name__)

ROW_COLUMNS = ("participant_id", "session", "group", "true_lobe", "predicted_lobe", "predicted_lobe_probability",
               "healthy_probability",
               "n_clusters", "top_cluster_lobe", "top_cluster_hemisphere", "top_cluster_peak_z", "lesion_slices",
               "r_at_5", "r_at_10", "peak_hit_at_10", "fp_pixels_per_slice", "dice_z", "dice_best", "detected",
               "fp_clusters")

_LOBES = lobe_legend()
#: The sidecar of group_summary.tsv: a description per column (BIDS tabular-file sidecar).
SUMMARY_COLUMNS: dict[str, dict[str, str]] = {
    "participant_id": {"Description": "Participant label, as in participants.tsv"},
    "session": {"Description": "Session label (n/a without sessions)"},
    "group": {"Description": "The participants.tsv group", "Levels": "fcd: patient with FCD; hc: healthy control"},
    "true_lobe": {"Description": f"Lesion lobe from participants.tsv ({_LOBES}; comma-separated when several)"},
    "predicted_lobe": {"Description": "Most likely lobe of the lobe classifier (healthy excluded)"},
    "predicted_lobe_probability": {"Description": "Classifier probability of predicted_lobe"},
    "healthy_probability": {"Description": "Classifier probability of the healthy class"},
    "n_clusters": {"Description": "Number of clusters of the z-map above the cluster-forming threshold"},
    "top_cluster_lobe": {"Description": f"Lobe of the top cluster's peak ({_LOBES}), from template coordinates"},
    "top_cluster_hemisphere": {"Description": "Hemisphere of the top cluster's peak", "Levels": "L, R"},
    "top_cluster_peak_z": {"Description": "Peak z-statistic of the top cluster"},
    "lesion_slices": {"Description": "Axial slices of the model grid that contain lesion (lesion mask needed)"},
    "r_at_5": {"Description": "R@5: fraction of lesion slices where a cluster voxel lies within 5 pixels of the "
                              "lesion (the paper's metric)"},
    "r_at_10": {"Description": "R@10: as r_at_5 within 10 pixels"},
    "peak_hit_at_10": {"Description": "Fraction of lesion slices whose z-map maximum lies within 10 pixels of the "
                                      "lesion (no threshold)"},
    "fp_pixels_per_slice": {"Description": "Cluster pixels farther than 10 pixels from the lesion, per brain slice"},
    "dice_z": {"Description": "Dice of the clusters with the lesion mask"},
    "dice_best": {"Description": "Dice of the z-map with the lesion at the best threshold for this participant "
                                 "(an oracle, as in the paper)"},
    "detected": {"Description": "Top cluster overlaps the lesion or its centre lies within 10 mm of it",
                 "Levels": "yes, no"},
    "fp_clusters": {"Description": "Clusters that do not hit the lesion (all clusters of a participant without a "
                                   "lesion mask)"},
}
SUMMARY_SIDECAR: dict[str, Any] = {
    "Description": "bids-fcd group level: one row per participant (and session); n/a where a figure needs a "
                   "lesion mask the participant lacks",
    **SUMMARY_COLUMNS,
}


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


#: The participant-level outputs the group level reads: key → role in the registry
#: (:data:`bids_fcd.bids.derivatives.OUTPUTS`).
READS: dict[str, str] = {"config": "config", "z": "z_statmap", "dseg": "clusters_dseg", "mask": "brain_mask",
                         "table": "clusters_table", "lobes": "lobes_probabilities",
                         "warp": "xfm_T1w_to_template_warp", "affine": "xfm_T1w_to_template",
                         "rigid": "xfm_FLAIR_to_T1w", "crash": "crash"}


def participant_files(out_dir: Path, subject: str, session: str | None) -> dict[str, Path]:
    """The participant-level derivatives the group level reads, by key of :data:`READS`.

    Template-space images carry a ``res-`` entity when the model grid is not 1 mm; the grid comes
    from the participant's run record (``log/…_config.json``), so no name is guessed.
    """
    config = deriv.output_path(out_dir, subject, session, "config")
    res: str | None = None
    try:
        spacing = json.loads(config.read_text())["model"]["net"]["grid"]["spacing_mm"]
        res = deriv.res_label(float(spacing))
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return {key: deriv.output_path(out_dir, subject, session, role, res) for key, role in READS.items()}


def read_crash(path: Path) -> dict[str, str] | None:
    """A crash record (``participant``, ``message``, …) or None when there is none; an unreadable
    record still counts, with its problem as the message."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return {"participant": str(data.get("participant", path.name.removesuffix("_crash.json"))),
                "message": str(data.get("message", "")).strip().splitlines()[0] if data.get("message") else "",
                "path": str(path)}
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        return {"participant": path.name.removesuffix("_crash.json"), "message": f"unreadable crash record: {exc}",
                "path": str(path)}


def find_crashes(out_dir: Path, subjects: list[str] | None = None) -> list[dict[str, str]]:
    """Every crash record under OUTPUT_DIR (``sub-*/[ses-*/]log/*_crash.json``), optionally only of
    ``subjects`` (labels without ``sub-``), sorted by participant."""
    found = sorted(set(out_dir.glob("sub-*/log/*_crash.json")) | set(out_dir.glob("sub-*/ses-*/log/*_crash.json")))
    out = []
    for path in found:
        label = path.relative_to(out_dir).parts[0].removeprefix("sub-")
        if subjects and label not in subjects:
            continue
        rec = read_crash(path)
        if rec is not None:
            out.append(rec)
    return sorted(out, key=lambda r: r["participant"])


def score_participant(anomaly: np.ndarray, labels: np.ndarray, mask: np.ndarray, affine: np.ndarray,
                      table: list[dict[str, str]], roi_grid: np.ndarray | None) -> dict[str, Any]:
    """Metrics of one participant from its arrays on the model grid (and lesion mask, if any).

    ``anomaly`` is the map the threshold-free figures use: the z-map, as in the benchmark.
    """
    centres = [np.array([float(r["center_x"]), float(r["center_y"]), float(r["center_z"])]) for r in table]
    out = score_subject(anomaly, labels, centres, mask, roi_grid, affine)
    if table:
        out.update(top_cluster_lobe=table[0]["lobe"], top_cluster_hemisphere=table[0]["hemisphere"],
                   top_cluster_peak_z=float(table[0]["peak_z"]))
    return out


def _roi_grid(layout: Any, subject: str, session: str | None, files: dict[str, Path]) -> np.ndarray | None:
    try:
        inp = find_inputs(layout, subject, session, {})
        if inp.roi is None:
            return None
        chain = ([files["warp"]] if files["warp"].exists() else []) + [files["affine"], files["rigid"]]
        return roi_to_grid(inp.roi, files["z"], chain)
    except (InputError, PreprocessingError, OSError, RuntimeError) as exc:
        log.warning("sub-%s: lesion mask not used: %s", subject, exc)
        return None


def write_tables(out_dir: Path, rows: list[dict[str, Any]], detection: dict[str, Any]) -> list[Path]:
    """``group_summary.tsv`` with its sidecar ``group_summary.json``, and ``group_detection.json``."""
    tsv = out_dir / "group_summary.tsv"
    write_tsv(tsv, [{c: _fmt(r.get(c)) for c in ROW_COLUMNS} for r in rows], ROW_COLUMNS)
    write_json(out_dir / "group_summary.json", SUMMARY_SIDECAR)
    write_json(out_dir / "group_detection.json", detection)
    return [tsv, out_dir / "group_summary.json", out_dir / "group_detection.json"]


def run_group_level(cfg: RunConfig) -> int:
    """Write the group files (module docstring) into OUTPUT_DIR; returns the exit code.

    Non-zero when no participant has outputs or when the cohort page could not be made; crash
    records of failed participants are listed on the page, not counted here (the participant
    level's exit code counted them).
    """
    bids_dir, out_dir = Path(cfg.bids_dir), Path(cfg.output_dir)
    if not (out_dir / "dataset_description.json").exists():
        log.error("%s holds no bids-fcd outputs; run the participant level first", out_dir)
        return 1
    layout = open_layout(bids_dir, validate=not cfg.skip_bids_validation)
    rows_in = read_participants(bids_dir)
    subjects = list(cfg.participant_label) or sorted(layout.get_subjects())
    post = cfg.post or PostConfig()
    rows: list[dict[str, Any]] = []
    thresholds: list[float] = []
    marks: list[Marks] = []
    froc_errors: list[str] = []
    models: list[str] = []
    for subject in subjects:
        for session in subject_sessions(layout, subject, cfg.session_label):
            f = participant_files(out_dir, subject, session)
            if not f["z"].exists():
                log.warning("sub-%s: no participant-level outputs in %s; skipped", subject, out_dir)
                continue
            info = rows_in.get(subject, {})
            try:
                models.append(str(json.loads(f["config"].read_text())["model"]["name"]))
            except (OSError, KeyError, TypeError, ValueError):
                pass
            row: dict[str, Any] = {"participant_id": f"sub-{subject}", "session": session,
                                   "group": info.get("group", "n/a"), "true_lobe": info.get("lobe", "n/a")}
            lobes = {r["lobe"]: float(r["probability"]) for r in _read_tsv(f["lobes"])}
            top = max((k for k in lobes if k != "healthy"), key=lambda k: lobes[k])
            row.update(predicted_lobe=top, predicted_lobe_probability=lobes[top],
                       healthy_probability=lobes.get("healthy"))
            roi_grid = _roi_grid(layout, subject, session, f)
            side = json.loads(deriv.sidecar_path(f["dseg"]).read_text())
            thr = float(side["Threshold"])
            min_mm3 = float(side.get("MinClusterSizemm3", post.min_cluster_mm3))
            thresholds.append(thr)
            z_img = nib.load(f["z"])
            z = np.asarray(z_img.get_fdata(), np.float32)  # type: ignore[attr-defined]
            labels = np.asarray(nib.load(f["dseg"]).get_fdata()).astype(int)  # type: ignore[attr-defined]
            mask = np.asarray(nib.load(f["mask"]).get_fdata()) > 0.5  # type: ignore[attr-defined]
            affine = np.asarray(z_img.affine)  # type: ignore[attr-defined]
            row.update(score_participant(z, labels, mask, affine, _read_tsv(f["table"]), roi_grid))
            rows.append(row)
            try:
                marks.append(marks_from_map(z, roi_grid, affine, thr, min_mm3, post.max_clusters,
                                            control=is_control(row["group"])))
            except (ValueError, IndexError) as exc:
                froc_errors.append(f"sub-{subject}: {exc}")
                log.warning("sub-%s: left out of the free-response curve: %s", subject, exc)
    crashes = find_crashes(out_dir, list(cfg.participant_label) or None)
    for c in crashes:
        log.warning("%s failed at the participant level: %s", c["participant"], c["message"])
    threshold = thresholds[0] if len(set(thresholds)) == 1 else float("nan")
    code = 0
    if not rows:
        log.error("no participant outputs found in %s", out_dir)
        code = 1
    summary = cohort_summary(rows, threshold) if rows else {"n_participants": 0}
    froc = None
    if rows and np.isfinite(threshold) and any(m.hits is not None for m in marks):
        scores = sorted({s for m in marks for s in m.scores if s >= threshold})
        froc = froc_curve(marks, [threshold, *scores])
    detection = {**summary, "free_response": froc, "free_response_left_out": froc_errors}
    if rows:
        with deferred():  # a stop signal waits until the tables and the run's record are all written
            write_tables(out_dir, rows, detection)
            write_json(out_dir / config_file("group"), {"run": to_dict(cfg)})
        log.info("group level: %d participants; sensitivity %s, FP clusters per control %s", len(rows),
                 summary["subject_sensitivity"], summary["fp_clusters_per_control"])
    try:
        from bids_fcd.reports.group import write_group_report

        write_group_report(out_dir, rows, ROW_COLUMNS, crashes, summary if rows else None, froc, threshold,
                           models)
    except Exception as exc:  # noqa: BLE001 - the page must never cost the tables
        log.error("group.html could not be made (%s: %s); group_summary.tsv and group_detection.json are kept",
                  type(exc).__name__, exc)
        log.debug("traceback", exc_info=True)
        code = 1
    return code
