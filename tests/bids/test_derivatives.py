import json
from pathlib import Path

import pytest

from bids_fcd.bids.derivatives import bids_uri, dataset_description, derivative_path, sidecar_path


def test_names_follow_the_fixed_scheme():
    root = Path("/out")
    assert derivative_path(root, "01", None, "statmap", ".nii.gz", space="MNI152NLin2009aSym", stat="z",
                           desc="anomaly") == Path("/out/sub-01/anat/sub-01_space-MNI152NLin2009aSym_stat-z_desc-"
                                                   "anomaly_statmap.nii.gz")
    assert derivative_path(root, "01", "pre", "table", ".tsv", desc="clusters") == Path(
        "/out/sub-01/ses-pre/anat/sub-01_ses-pre_desc-clusters_table.tsv")
    assert derivative_path(root, "01", None, "xfm", ".mat", from_="T1w", to="MNI152NLin2009aSym",
                           mode="image").name == "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.mat"
    with pytest.raises(ValueError):
        derivative_path(root, "01", None, "x", ".nii.gz", bogus="1")


def test_sidecars_and_uris(tmp_path):
    assert sidecar_path(Path("a/sub-01_desc-x_statmap.nii.gz")).name == "sub-01_desc-x_statmap.json"
    assert sidecar_path(Path("a/t.tsv")).name == "t.json"
    assert bids_uri(tmp_path / "sub-01" / "anat" / "x.nii.gz", tmp_path) == "bids:raw:sub-01/anat/x.nii.gz"
    (tmp_path / "dataset_description.json").write_text(json.dumps({"DatasetDOI": "doi:10.1/x"}))
    dd = dataset_description(tmp_path)
    assert dd["DatasetType"] == "derivative" and dd["GeneratedBy"][0]["Name"] == "bids-fcd"
    assert dd["SourceDatasets"][0]["DOI"] == "doi:10.1/x"
