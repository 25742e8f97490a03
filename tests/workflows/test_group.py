"""The group level on hand-made participant outputs: tables, sidecar, detection, crash records, page."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.bids import derivatives as deriv
from bids_fcd.config import LOBES, RunConfig
from bids_fcd.postprocessing.clusters import TABLE_COLUMNS
from bids_fcd.reports import participant as rp
from bids_fcd.workflows import group
from tests.reports.conftest import GRID, make_inputs

PARTICIPANTS = (("01", "fcd", "FL", (-30.0, 10.0, 30.0)), ("02", "fcd", "TL", (40.0, -20.0, -10.0)),
                ("03", "hc", "n/a", None), ("04", "hc", "n/a", None))


def _nii(path: Path, arr: np.ndarray, aff: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, aff), path)


def _tsv(path: Path, rows: list[dict[str, object]], cols: tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cols), delimiter="\t", lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A BIDS dataset of four participants (+ one that crashed) and hand-made participant outputs."""
    tmp_path = tmp_path_factory.mktemp("cohort")
    bids, out = tmp_path / "bids", tmp_path / "derivatives"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9.0"}))
    lines = ["participant_id\tgroup\tlobe"] + [f"sub-{s}\t{g}\t{lobe}" for s, g, lobe, _ in PARTICIPANTS]
    (bids / "participants.tsv").write_text("\n".join([*lines, "sub-05\tfcd\tPL"]) + "\n")
    tiny = np.zeros((4, 4, 4), np.float32)
    for s in ("01", "02", "03", "04", "05"):
        for suffix in ("T1w", "FLAIR"):
            _nii(bids / f"sub-{s}" / "anat" / f"sub-{s}_{suffix}.nii.gz", tiny, np.eye(4))
    deriv.write_json(out / "dataset_description.json", {"Name": "bids-fcd derivatives"})
    rois: dict[str, np.ndarray] = {}
    for s, g, _, lesion in PARTICIPANTS:
        data = dataclasses.replace(make_inputs(lesion_mm=lesion, seed=int(s)), subject=s)
        aff = data.affine
        deriv.write_json(deriv.derivative_path(out, s, None, "config", ".json", datatype="log"),
                         {"model": {"name": "phantom-default", "net": {"grid": {"spacing_mm": GRID.spacing_mm}}}})
        f = group.participant_files(out, s, None)
        assert "_res-3_" in f["z"].name  # the run record's grid gives the res- entity
        _nii(f["z"], data.z, aff)
        _nii(f["dseg"], data.labels.astype(np.int16), aff)
        deriv.write_json(deriv.sidecar_path(f["dseg"]), {"Threshold": data.z_threshold,
                                                         "MinClusterSizemm3": data.min_cluster_mm3})
        _nii(f["mask"], data.mask.astype(np.uint8), aff)
        _tsv(f["table"], data.clusters, TABLE_COLUMNS)
        probs = [0.1, 0.5, 0.1, 0.1, 0.1, 0.1] if g == "fcd" else [0.6, 0.1, 0.1, 0.1, 0.05, 0.05]
        _tsv(f["lobes"], [{"lobe": k, "probability": p} for k, p in zip(LOBES, probs, strict=True)],
             ("lobe", "probability"))
        if s in ("01", "03"):  # two with reports: thumbnails and links
            rp.write_participant_report(out, data)
        if data.roi is not None:
            rois[s] = data.roi
    deriv.write_json(deriv.derivative_path(out, "05", None, "crash", ".json", datatype="log"),
                     {"participant": "sub-05", "message": "FLAIR and T1w do not overlap after registration\nmore"})
    return bids, out, rois


def _run(bids: Path, out: Path) -> int:
    return group.run_group_level(RunConfig(bids_dir=str(bids), output_dir=str(out), analysis_level="group",
                                           skip_bids_validation=True))


def test_group_level_files(cohort: tuple[Path, Path, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch) -> None:
    bids, out, rois = cohort
    monkeypatch.setattr(group, "_roi_grid", lambda layout, subject, session, files: rois.get(subject))
    assert _run(bids, out) == 0
    with open(out / "group_summary.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["participant_id"] for r in rows] == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert list(rows[0]) == list(group.ROW_COLUMNS)
    side = json.loads((out / "group_summary.json").read_text())
    assert all("Description" in side[c] for c in group.ROW_COLUMNS)  # a real sidecar of the TSV
    run = json.loads((out / "group_config.json").read_text())["run"]  # the run's config beside its outputs
    assert run["analysis_level"] == "group" and "env" in run
    det = json.loads((out / "group_detection.json").read_text())
    assert det["n_scored"] == 2 and det["n_controls"] == 2 and det["subject_sensitivity"] == 1.0
    froc = det["free_response"]
    assert froc["threshold"][0] == 3.0 and froc["sensitivity_top"][0] == det["subject_sensitivity"]
    assert froc["fp_per_control"][0] == det["fp_clusters_per_control"]
    page = (out / "group.html").read_text()
    assert "sub-05" in page and "FLAIR and T1w do not overlap after registration" in page and "more" not in page
    assert "id='froc'" in page and "<svg" in page
    assert "id='synthetic-model'" in page and "phantom-default" in page
    thumb = rp.figure_paths(out, "01", None)["glassbrain"]
    assert f"src='{thumb.relative_to(out).as_posix()}'" in page and "href='sub-01.html'" in page
    assert "href='sub-02.html'" not in page  # no report there: no dead link


def test_a_failing_page_keeps_the_tables(cohort: tuple[Path, Path, dict[str, np.ndarray]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bids, out, _ = cohort
    monkeypatch.setattr(group, "_roi_grid", lambda *a: None)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no space left")

    monkeypatch.setattr("bids_fcd.reports.group.write_group_report", boom)
    for f in out.glob("group*"):
        f.unlink()
    assert _run(bids, out) == 1
    assert (out / "group_summary.tsv").is_file() and (out / "group_detection.json").is_file()
    det = json.loads((out / "group_detection.json").read_text())
    assert det["free_response"] is None and det["n_scored"] == 0


def test_find_crashes_reads_sessions_and_bad_records(tmp_path: Path) -> None:
    deriv.write_json(deriv.derivative_path(tmp_path, "07", "pre", "crash", ".json", datatype="log"),
                     {"participant": "sub-07_ses-pre", "message": "boom"})
    bad = deriv.derivative_path(tmp_path, "08", None, "crash", ".json", datatype="log")
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    got = group.find_crashes(tmp_path)
    assert [c["participant"] for c in got] == ["sub-07_ses-pre", "sub-08"]
    assert got[0]["message"] == "boom" and "unreadable" in got[1]["message"]
    assert group.find_crashes(tmp_path, ["07"])[0]["participant"] == "sub-07_ses-pre"
