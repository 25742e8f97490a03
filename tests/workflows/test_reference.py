"""`bids-fcd reference` on the tiny phantom: a reference stored inside a copy of the tiny model, then
a participant run scored against it."""

import json
import logging
import shutil

import nibabel as nib
import numpy as np

from bids_fcd.cli.main import main
from bids_fcd.nets.checkpoint import verify
from bids_fcd.nets.reference import load_reference

SAMPLER = ["--encoding", "stochastic", "--noise-level", "20", "--steps", "5", "--guidance-scale", "5", "--draws", "1"]


def test_reference_inside_a_model_and_a_participant_run_against_it(phantom, tiny_model, work_dir, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    assert "reference/" not in (model / "SHA256SUMS").read_text()
    code = main(["reference", str(phantom), str(model / "reference"), "--participant-label", "00001", "00002", "00003",
                 "--model", str(model), "--work-dir", str(work_dir), *SAMPLER])
    assert code == 0
    verify(model)  # raises when a listed file does not match
    listed = [line.split(maxsplit=1)[1] for line in (model / "SHA256SUMS").read_text().splitlines() if line.strip()]
    assert "reference/reference.nii.gz" in listed and "reference/reference.json" in listed
    loaded = load_reference(model / "reference")
    assert loaded.ref.n == 3
    run = json.loads((model / "reference" / "reference_config.json").read_text())
    assert run["run"]["participant_label"] == ["00001", "00002", "00003"] and run["run"]["sampler"]["noise_level"] == 20
    assert loaded.meta["participants"] == ["00001", "00002", "00003"]
    assert sum(loaded.meta["acquisitions"].values()) == 3 and set(loaded.meta["acquisitions"]) <= {"2D", "3D"}
    assert loaded.meta["sampler"]["draws"] == 1 and loaded.meta["sampler"]["encoding"] == "stochastic"
    assert loaded.post is not None and loaded.post.min_cluster_mm3 <= 150
    assert loaded.post.zscore == "normative"
    chosen = loaded.meta["calibration"]["chosen"]
    assert (chosen["z_threshold"], chosen["min_cluster_mm3"]) == (loaded.post.z_threshold, loaded.post.min_cluster_mm3)
    assert set(loaded.ref.stats) == {"anomaly", "flair"}
    mean, sd = loaded.ref.stats["anomaly"]
    assert loaded.ref.coverage.any() and np.all(sd[loaded.ref.coverage] > 0)

    out = tmp_path / "out"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code = main([str(phantom), str(out), "participant", "--model", str(model), "--work-dir", str(work_dir),
                     *SAMPLER, "--skip-bids-validation", "--participant-label", "00003"])
    assert code == 0
    assert "other sampler settings" not in caplog.text and "no normative reference" not in caplog.text
    anat = out / "sub-00003" / "anat"
    (zside,) = anat.glob("*_space-MNI152NLin2009aSym_*stat-z_desc-anomaly_statmap.json")
    (native_side,) = anat.glob("*_space-T1w_stat-z_desc-anomaly_statmap.json")
    assert json.loads(native_side.read_text())["Reference"]["NumberOfControls"] == 3
    side = json.loads(zside.read_text())
    assert side["Reference"]["NumberOfControls"] == 3
    assert side["Reference"]["SHA256"] == loaded.sha256 and side["Reference"]["Path"] == "model/reference"
    assert "normative reference" in side["Description"]
    # the z-map is the normative one: zero outside brain ∩ coverage, not standardised within the brain
    z = np.asarray(nib.load(zside.with_name(zside.name.replace(".json", ".nii.gz"))).dataobj)
    brain = np.asarray(nib.load(next(anat.glob("*_desc-brain_mask.nii.gz"))).dataobj) > 0
    assert np.all(z[~(brain & loaded.ref.coverage)] == 0)
    dseg = json.loads(next(anat.glob("*_desc-clusters_dseg.json")).read_text())
    assert (dseg["Threshold"], dseg["MinClusterSizemm3"]) == (loaded.post.z_threshold, loaded.post.min_cluster_mm3)


def test_reference_needs_three_controls(phantom, tiny_model, work_dir, tmp_path, caplog):
    out = tmp_path / "ref"
    code = main(["reference", str(phantom), str(out), "--participant-label", "00003", "--model", str(tiny_model),
                 "--work-dir", str(work_dir), *SAMPLER])
    assert code == 1
    assert "a reference needs at least 3" in caplog.text
    assert not out.exists()
    # by default the controls are participants.tsv's hc rows: the phantom has one
    assert main(["reference", str(phantom), str(out), "--model", str(tiny_model), "--work-dir", str(work_dir),
                 *SAMPLER]) == 1
    assert not out.exists()


def test_a_reference_with_the_asymmetry_map_and_a_symmetric_t1w_and_a_run_against_it(phantom, tiny_model, work_dir,
                                                                                     tmp_path, caplog):
    """Both issue-#17 settings travel with the reference: the asymmetry weight in its post record (a run takes
    it from there), the T1w condition in its sampler record (a run without it is warned)."""
    ref_dir = tmp_path / "ref"
    code = main(["reference", str(phantom), str(ref_dir), "--participant-label", "00001", "00002", "00003",
                 "--model", str(tiny_model), "--work-dir", str(work_dir), *SAMPLER, "--asymmetry-weight", "0.5",
                 "--t1-condition", "symmetric"])
    assert code == 0
    loaded = load_reference(ref_dir)
    assert set(loaded.ref.stats) == {"anomaly", "flair", "asymmetry"}
    assert loaded.post is not None and loaded.post.asymmetry_weight == 0.5
    assert loaded.meta["sampler"]["t1_condition"] == "symmetric"
    run = [str(phantom), "--model", str(tiny_model), "--work-dir", str(work_dir), "--reference", str(ref_dir),
           *SAMPLER, "--skip-bids-validation", "--participant-label", "00003"]
    for extra, warned in (([], True), (["--t1-condition", "symmetric"], False)):
        out = tmp_path / f"out{len(extra)}"
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert main([run[0], str(out), "participant", *run[1:], *extra]) == 0
        assert ("other sampler settings (t1_condition)" in caplog.text) is warned
    (report,) = out.glob("sub-00003*.html")
    assert "left-right asymmetry (FLAIR minus its mirror image)" in report.read_text()
    (zside,) = (out / "sub-00003" / "anat").glob("*_space-MNI152NLin2009aSym_*stat-z_desc-anomaly_statmap.json")
    side = json.loads(zside.read_text())
    assert "left-right asymmetry (weight 0.5)" in side["Description"]
    (ph,) = (out / "sub-00003" / "anat").glob("*desc-pseudohealthy_FLAIR.json")
    assert json.loads(ph.read_text())["Sampler"]["T1wCondition"] == "symmetric"
