"""End to end on the tiny phantom: participant level, file list, contents, group level, failures."""

import csv
import json

import bids
import nibabel as nib
import numpy as np

from bids_fcd.cli.main import main
from tests.workflows.conftest import expected_outputs
from tests.workflows.conftest import files_under as _files


def test_output_file_list_matches_the_stored_list(participant_run):
    got = [f for f in _files(participant_run) if not f.startswith("group")]
    assert got == expected_outputs("6")


def test_every_json_parses_and_layout_indexes(participant_run):
    for f in participant_run.rglob("*.json"):
        json.loads(f.read_text())
    dd = json.loads((participant_run / "dataset_description.json").read_text())
    assert dd["DatasetType"] == "derivative" and dd["GeneratedBy"][0]["Name"] == "bids-fcd"
    layout = bids.BIDSLayout(str(participant_run), validate=False, is_derivative=True)
    assert sorted(layout.get_subjects()) == ["00001", "00002", "00003"]
    zmaps = layout.get(suffix="statmap", desc="anomaly", space="MNI152NLin2009aSym", extension=".nii.gz")
    assert len(zmaps) == 6
    native = layout.get(suffix="statmap", space="T1w", extension=".nii.gz", return_type="filename")
    assert len([f for f in native if "_stat-z_" in f]) == 3
    for side in participant_run.rglob("*_table.json"):  # every TSV column is documented in its sidecar
        tsv = side.with_suffix(".tsv")
        header = tsv.read_text().splitlines()[0].split("\t")
        assert set(header) <= set(json.loads(side.read_text())), side.name


def test_output_contents(participant_run, tiny_model):
    anat = participant_run / "sub-00001" / "anat"
    p = "sub-00001_space-MNI152NLin2009aSym_res-6_"
    mask = nib.load(anat / f"{p}desc-brain_mask.nii.gz").get_fdata() > 0
    z = nib.load(anat / f"{p}stat-z_desc-anomaly_statmap.nii.gz").get_fdata()
    assert abs(z[mask].mean()) < 1e-3 and abs(z[mask].std() - 1) < 1e-2 and np.all(z[~mask] == 0)
    anom = nib.load(anat / f"{p}desc-anomaly_statmap.nii.gz").get_fdata()
    real = nib.load(anat / f"{p}desc-preproc_FLAIR.nii.gz").get_fdata()
    pseudo = nib.load(anat / f"{p}desc-pseudohealthy_FLAIR.nii.gz").get_fdata()
    # signed anomaly (the default): FLAIR - pseudo-healthy has both signs in the brain, 0 outside
    assert anom.min() < 0 < anom.max() and np.all(anom[~mask] == 0)
    # histogram matching: the pseudo-healthy FLAIR has the real FLAIR's intensity distribution in the brain
    assert np.allclose(np.sort(pseudo[mask]), np.sort(real[mask]), atol=1e-5)
    assert not np.allclose(pseudo[mask], real[mask])
    native = nib.load(anat / "sub-00001_space-T1w_desc-anomaly_statmap.nii.gz")
    t1 = next((participant_run.parent.parent / "phantom").rglob("sub-00001_*_T1w.nii.gz"), None)
    if t1 is not None:
        assert native.shape == nib.load(t1).shape
    assert native.get_fdata().max() > 0
    dseg = nib.load(anat / f"{p}desc-clusters_dseg.nii.gz").get_fdata().astype(int)
    with open(anat / "sub-00001_space-MNI152NLin2009aSym_desc-clusters_table.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0])[:8] == ["index", "hemisphere", "lobe", "size_mm3", "peak_z", "peak_x", "peak_y", "peak_z_mm"]
    assert [int(r["index"]) for r in rows] == list(range(1, len(rows) + 1)) == sorted(set(np.unique(dseg)) - {0})
    peaks = [float(r["peak_z"]) for r in rows]
    assert peaks == sorted(peaks, reverse=True) and all(pz > 1.65 for pz in peaks)
    with open(anat / "sub-00001_desc-lobes_probabilities.tsv") as fh:
        probs = {r["lobe"]: float(r["probability"]) for r in csv.DictReader(fh, delimiter="\t")}
    assert list(probs) == ["healthy", "FL", "TL", "PL", "OL", "IL"] and abs(sum(probs.values()) - 1) < 1e-4
    side = json.loads((anat / f"{p}desc-pseudohealthy_FLAIR.json").read_text())
    assert side["Sampler"] == {"Encoding": "stochastic", "NoiseLevel": 20, "Steps": 5, "Draws": 1, "GuidanceScale": 5.0,
                               "Seed": 0, "HistogramMatching": True, "T1wCondition": "mirror"}
    assert side["Model"]["SHA256"] and side["SkullStripped"] is True
    assert all(s.startswith("bids:raw:sub-00001/anat/") for s in side["Sources"])
    # the tiny model has no normative reference: the z-map falls back to within-brain scoring
    zside = json.loads((anat / f"{p}stat-z_desc-anomaly_statmap.json").read_text())
    assert "within the brain" in zside["Description"] and "Reference" not in zside
    warp = anat / "sub-00001_from-T1w_to-MNI152NLin2009aSym_mode-image_desc-warp_xfm.nii.gz"
    assert nib.load(warp).shape[-1] == 3, "a displacement field: one 3-vector per voxel"
    wside = json.loads(warp.with_name(warp.name.replace(".nii.gz", ".json")).read_text())
    assert "SyN" in wside["Description"]
    cfg = json.loads((participant_run / "sub-00001" / "log" / "sub-00001_config.json").read_text())
    assert cfg["run"]["sampler"]["noise_level"] == 20
    # clusters in T1w space: same labels as the template-space ones, coordinates in the T1w's scanner mm
    ndseg = nib.load(anat / "sub-00001_space-T1w_desc-clusters_dseg.nii.gz")
    assert set(np.unique(np.asarray(ndseg.dataobj))) - {0} <= set(range(1, len(rows) + 1))
    with open(anat / "sub-00001_space-T1w_desc-clusters_table.tsv") as fh:
        nrows = list(csv.DictReader(fh, delimiter="\t"))
    assert {int(r["index"]) for r in nrows} == set(np.unique(np.asarray(ndseg.dataobj))) - {0}
    lookup = (anat / "sub-00001_space-T1w_desc-clusters_dseg.tsv").read_text().splitlines()
    assert lookup[0] == "index\tname" and len(lookup) == len(rows) + 1
    # the manifest lists every output with its sha256
    man = json.loads((participant_run / "sub-00001" / "log" / "sub-00001_manifest.json").read_text())
    assert len(man["files"]) > 30 and all((participant_run / f).is_file() for f in man["files"])
    page = (participant_run / "sub-00001.html").read_text()
    assert "figures/" in page


def test_group_level(phantom, participant_run):
    assert main([str(phantom), str(participant_run), "group", "--skip-bids-validation"]) == 0
    with open(participant_run / "group_summary.tsv") as fh:
        rows = {r["participant_id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    summary = json.loads((participant_run / "group_detection.json").read_text())
    columns = json.loads((participant_run / "group_summary.json").read_text())
    assert set(rows["sub-00001"]) <= set(columns), "group_summary.json documents every column of the TSV"
    assert (participant_run / "group.html").exists()
    assert set(rows) == {"sub-00001", "sub-00002", "sub-00003"}
    fcd = [r for r in rows.values() if r["group"] == "fcd"]
    hc = [r for r in rows.values() if r["group"] == "hc"]
    assert len(fcd) == 2 and len(hc) == 1
    for r in fcd:
        assert int(r["lesion_slices"]) > 0
        for key in ("r_at_5", "r_at_10", "peak_hit_at_10", "dice_z", "dice_best"):
            assert 0.0 <= float(r[key]) <= 1.0
        assert float(r["r_at_5"]) <= float(r["r_at_10"])
        assert r["detected"] in ("yes", "no")
    assert hc[0]["r_at_5"] == "n/a"
    assert summary["n_scored"] == 2 and summary["n_controls"] == 1
    assert summary["fp_clusters_per_control"] == float(hc[0]["n_clusters"])
    assert summary["subject_sensitivity"] == sum(r["detected"] == "yes" for r in fcd) / 2
    for key in ("R@5", "R@10", "fp_pixels_per_slice", "dice_z", "dice_best_per_subject", "lobe_accuracy"):
        assert summary[key] is not None
