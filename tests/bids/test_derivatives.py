import json
from pathlib import Path

import pytest

from bids_fcd.bids import derivatives as d
from bids_fcd.config import Environment
from bids_fcd.postprocessing.clusters import NATIVE_COLUMNS, TABLE_COLUMNS


def test_names_follow_the_fixed_scheme():
    root = Path("/out")
    assert d.derivative_path(root, "01", None, "statmap", ".nii.gz", space="MNI152NLin2009aSym", res="2", stat="z",
                             desc="anomaly") == Path("/out/sub-01/anat/sub-01_space-MNI152NLin2009aSym_res-2_stat-z_"
                                                     "desc-anomaly_statmap.nii.gz")
    assert d.derivative_path(root, "01", "pre", "table", ".tsv", desc="clusters") == Path(
        "/out/sub-01/ses-pre/anat/sub-01_ses-pre_desc-clusters_table.tsv")
    assert d.derivative_path(root, "01", None, "xfm", ".mat", from_="T1w", to="MNI152NLin2009aSym",
                             mode="image").name == "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.mat"
    with pytest.raises(ValueError):
        d.derivative_path(root, "01", None, "x", ".nii.gz", bogus="1")


def test_res_entity_only_off_the_template_resolution():
    assert d.res_label(1.0) is None
    assert d.res_label(2.0) == "2"
    assert d.res_label(1.5) == "1p5"


def test_sidecars_and_uris(tmp_path):
    assert d.sidecar_path(Path("a/sub-01_desc-x_statmap.nii.gz")).name == "sub-01_desc-x_statmap.json"
    assert d.sidecar_path(Path("a/t.tsv")).name == "t.json"
    assert d.bids_uri(tmp_path / "sub-01" / "anat" / "x.nii.gz", tmp_path) == "bids:raw:sub-01/anat/x.nii.gz"


def test_dataset_description_names_no_local_path(tmp_path):
    (tmp_path / "dataset_description.json").write_text("\ufeff" + json.dumps({"Name": "raw"}), encoding="utf-8")
    dd = d.dataset_description(tmp_path)
    assert dd["DatasetType"] == "derivative" and dd["GeneratedBy"][0]["Name"] == "bids-fcd"
    assert str(tmp_path) not in json.dumps(dd), "a path of this machine means nothing elsewhere"
    assert dd["SourceDatasets"] == [{"URL": "bids:raw:", "Name": "raw"}]
    assert "Container" not in dd["GeneratedBy"][0], "no container claimed outside the image"
    (tmp_path / "dataset_description.json").write_text(json.dumps({"DatasetDOI": "doi:10.18112/openneuro.ds004199.v1.0.5"}))
    dd = d.dataset_description(tmp_path, Environment.from_environ({"BIDS_FCD_CONTAINER": "docker"}))
    assert dd["SourceDatasets"][0]["DOI"] == "doi:10.18112/openneuro.ds004199.v1.0.5"
    assert dd["SourceDatasets"][0]["URL"] == "https://doi.org/10.18112/openneuro.ds004199.v1.0.5"
    assert dd["GeneratedBy"][0]["Container"]["Type"] == "docker"


def test_every_table_column_is_documented():
    assert set(TABLE_COLUMNS) <= set(d.sidecar("clusters_table", space="MNI"))
    assert set(NATIVE_COLUMNS) <= set(d.sidecar("clusters_table_T1w"))
    assert {"lobe", "probability"} <= set(d.sidecar("lobes_probabilities"))
    text = d.sidecar("preproc_T1w", registration="syn", space="MNI", percentiles=(1, 50))["Description"]
    assert "{" not in text and "syn registration to MNI" in text


def test_atomic_writes_leave_no_partial_file(tmp_path):
    target = tmp_path / "x.json"
    d.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), d.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}, "the old version survives a failed write"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"], "no temporary file left behind"


# ------------------------------------------------------------------- the registry of outputs


def test_every_registered_sidecar_kind_has_a_text_and_every_text_is_used():
    kinds = {o.sidecar for o in d.OUTPUTS.values() if o.sidecar is not None}
    assert kinds <= set(d.SIDECARS), kinds - set(d.SIDECARS)
    assert set(d.SIDECARS) <= kinds, set(d.SIDECARS) - kinds


def test_registered_names_are_unique_and_on_grid_images_carry_res():
    paths = {r: d.output_path(Path("/o"), "01", "pre", r, "2") for r in d.OUTPUTS}
    assert len(set(paths.values())) == len(paths)
    for role, o in d.OUTPUTS.items():
        assert ("_res-2_" in paths[role].name) == o.on_grid, role
    assert paths["report"] == Path("/o/sub-01_ses-pre.html")
    assert paths["z_statmap"] == Path("/o/sub-01/ses-pre/anat/sub-01_ses-pre_space-MNI152NLin2009aSym_res-2_stat-z_"
                                      "desc-anomaly_statmap.nii.gz")
    assert paths["xfm_T1w_to_template_warp"].name == ("sub-01_ses-pre_from-T1w_to-MNI152NLin2009aSym_mode-image_"
                                                      "desc-warp_xfm.nii.gz")
    # at the template's own resolution no res- entity at all
    assert "_res-" not in d.output_path(Path("/o"), "01", None, "z_statmap", d.res_label(1.0)).name
    with pytest.raises(ValueError, match="unknown output role 'zmap'"):
        d.output_path(Path("/o"), "01", None, "zmap")


def test_expected_outputs_follow_the_when_rules():
    full = d.expected_outputs("01", None, "2")
    rigid = d.expected_outputs("01", None, "2", warp=False)
    warp = "sub-01/anat/sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_desc-warp_xfm.nii.gz"
    assert warp in full and warp.replace(".nii.gz", ".json") in full
    assert set(full) - set(rigid) == {warp, warp.replace(".nii.gz", ".json")}
    assert not any("crash" in f for f in full)
    # the lookup TSVs share their dseg's sidecar: no JSON of their own beyond the dseg's
    assert sum(f.endswith("desc-clusters_dseg.json") for f in full) == 2
    assert full == sorted(full)


def test_participant_prefix():
    assert d.participant_prefix("01", None) == "sub-01"
    assert d.participant_prefix("01", "pre") == "sub-01_ses-pre"
