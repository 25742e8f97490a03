import shutil

import numpy as np
import pytest

from bids_fcd.bids.layout import InputError, find_inputs, open_layout, read_filter_file
from bids_fcd.bids.participants import lobe_target, read_participants
from tests.conftest import copy_dataset


def test_finds_t1w_flair_and_roi(phantom):
    layout = open_layout(phantom, validate=True)
    rows = read_participants(phantom)
    for label, row in rows.items():
        inp = find_inputs(layout, label, None, {})
        assert inp.t1w.name.endswith("_T1w.nii.gz") and inp.flair.name.endswith("_FLAIR.nii.gz")
        assert (inp.roi is not None) == (row["group"] == "fcd")
        if inp.roi is not None:
            assert inp.roi.name == inp.flair.name.replace(".nii.gz", "_roi.nii.gz")


def test_several_candidates_prefer_ds004199_acq(phantom, tmp_path, caplog):
    ds = copy_dataset(phantom, tmp_path / "ds")
    anat = ds / "sub-00001" / "anat"
    t1 = next(anat.glob("*_T1w.nii.gz"))
    other = "sag111" if "iso08" in t1.name else "iso08"
    shutil.copy(t1, anat / f"sub-00001_acq-{other}_T1w.nii.gz")
    shutil.copy(t1.with_name(t1.name.replace(".nii.gz", ".json")), anat / f"sub-00001_acq-{other}_T1w.json")
    inp = find_inputs(open_layout(ds, validate=False), "00001", None, {})
    assert "_acq-iso08_" in inp.t1w.name
    assert "using" in caplog.text and "T1w" in caplog.text


def test_missing_flair_is_a_clear_error(phantom, tmp_path):
    ds = copy_dataset(phantom, tmp_path / "ds")
    for f in (ds / "sub-00002" / "anat").glob("*_FLAIR*"):
        f.unlink()
    with pytest.raises(InputError, match=r"sub-00002: no FLAIR"):
        find_inputs(open_layout(ds, validate=False), "00002", None, {})


def test_filter_file(tmp_path):
    f = tmp_path / "f.json"
    f.write_text('{"t1w": {"acquisition": "iso08"}}')
    assert read_filter_file(f) == {"t1w": {"acquisition": "iso08"}}
    f.write_text('{"bold": {}}')
    with pytest.raises(InputError, match="only have the keys"):
        read_filter_file(f)


def test_participants_bom_and_lobes(tmp_path):
    (tmp_path / "participants.tsv").write_bytes("\ufeffparticipant_id\tgroup\tlobe\nsub-01\tfcd\tTL,PL\n".encode())
    rows = read_participants(tmp_path)
    assert rows["01"]["lobe"] == "TL,PL"
    t = lobe_target(rows["01"]["lobe"])
    assert np.allclose(t, [0, 0, 0.5, 0.5, 0, 0])
    assert np.allclose(lobe_target("n/a"), [1, 0, 0, 0, 0, 0])
    assert np.allclose(lobe_target("FL"), [0, 1, 0, 0, 0, 0])


def test_participants_missing_or_with_unknown_lobes(tmp_path, caplog):
    assert read_participants(tmp_path) == {}
    (tmp_path / "participants.tsv").write_text("participant_id\tlobe\nsub-01\tXX\nsub-02\tn/a\nsub-03\tFL\n")
    rows = read_participants(tmp_path)
    assert set(rows) == {"01", "02", "03"}
    assert "participants.tsv: unknown lobe code(s) XX in the lobe column" in caplog.text, "n/a is not unknown"
    assert np.allclose(lobe_target(rows["01"]["lobe"]), [1, 0, 0, 0, 0, 0])
