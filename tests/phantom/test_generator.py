import dataclasses
import json
import re

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.phantom import anatomy
from bids_fcd.phantom.generator import LESION_PROFILES, SIZE_CHOICES, SIZES, cohort_specs, template_head, write_cohort

LAYOUT_NAMES = re.compile(r"^sub-\d{5}_acq-(iso08_T1w|sag111_T1w|T2sel_FLAIR|tse3dvfl_FLAIR)(_roi)?\.(nii\.gz|json)$")


def test_layout_matches_ds004199(phantom):
    tsv = (phantom / "participants.tsv").read_bytes()
    assert tsv.startswith(b"\xef\xbb\xbf"), "ds004199's participants.tsv starts with a BOM"
    header = tsv.decode("utf-8-sig").splitlines()[0].split("\t")
    for col in ("participant_id", "group", "sex", "age_scan", "hemisphere", "lobe", "split"):
        assert col in header
    assert (phantom / ".bidsignore").read_text().strip() == "*_roi.nii.gz"
    assert json.loads((phantom / "dataset_description.json").read_text())["BIDSVersion"]
    rows = [dict(zip(header, line.split("\t"), strict=False)) for line in tsv.decode("utf-8-sig").splitlines()[1:]]
    assert sorted(r["group"] for r in rows) == ["fcd", "fcd", "hc"]
    for r in rows:
        anat = phantom / r["participant_id"] / "anat"
        names = sorted(p.name for p in anat.iterdir())
        assert all(LAYOUT_NAMES.match(n) for n in names), names
        rois = [n for n in names if n.endswith("_roi.nii.gz")]
        assert len(rois) == (1 if r["group"] == "fcd" else 0)
        if r["group"] == "fcd":
            assert r["lobe"] in {"FL", "TL", "PL", "OL", "IL"} and r["hemisphere"] in {"L", "R"}
        else:
            assert r["lobe"] == "n/a"
    levels = json.loads((phantom / "participants.json").read_text())["lobe"]["Levels"]
    assert levels == {"FL": "frontal", "TL": "temporal", "PL": "parietal", "OL": "occipital", "IL": "insula"}


def test_images_are_int16_in_different_grids_with_lesion(phantom):
    anat = next(p for p in sorted(phantom.glob("sub-*/anat")) if list(p.glob("*_roi.nii.gz")))
    t1 = nib.load(next(anat.glob("*_T1w.nii.gz")))
    fl = nib.load(next(anat.glob("*_FLAIR.nii.gz")))
    roi = nib.load(next(anat.glob("*_roi.nii.gz")))
    assert t1.get_data_dtype() == np.int16 and fl.get_data_dtype() == np.int16
    assert nib.aff2axcodes(t1.affine) != nib.aff2axcodes(fl.affine)
    assert t1.shape != fl.shape
    assert np.allclose(roi.affine, fl.affine)
    mask = roi.get_fdata() > 0
    assert 5 < mask.sum() < 0.02 * mask.size
    flair = fl.get_fdata()
    # the lesion is hyperintense on FLAIR relative to the rest of the head
    assert flair[mask].mean() > np.percentile(flair[flair > 0], 60)


def test_deterministic_by_seed(tmp_path):
    a = write_cohort(tmp_path / "a", 1, 0, seed=11, size="tiny")
    b = write_cohort(tmp_path / "b", 1, 0, seed=11, size="tiny")
    assert a == b
    img = f"sub-00001/anat/sub-00001_acq-{a[0].acq[1]}_FLAIR.nii.gz"
    assert np.array_equal(nib.load(tmp_path / "a" / img).get_fdata(), nib.load(tmp_path / "b" / img).get_fdata())
    assert cohort_specs(5, 5, 1) != cohort_specs(5, 5, 2)


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        write_cohort(tmp_path / "x", 1, 0, seed=0)
    assert (tmp_path / "x" / "file").read_text() == "keep me"


def test_mixed_cohort_draws_full_or_clinical_per_subject():
    assert {"tiny", "full", "clinical", "mixed"} == set(SIZE_CHOICES) and "mixed" not in SIZES
    assert SIZES["clinical"].slice_mm is not None and 4.0 <= min(SIZES["clinical"].slice_mm)
    assert max(SIZES["clinical"].slice_mm) <= 6.0 and SIZES["full"].slice_mm is None
    mixed = cohort_specs(8, 4, seed=2026, size="mixed")
    kinds = [s.size for s in mixed]
    assert set(kinds) == {"full", "clinical"}
    assert cohort_specs(8, 4, seed=2026, size="mixed") == mixed        # deterministic
    assert [s.size for s in cohort_specs(8, 4, seed=2027, size="mixed")] != kinds
    # the per-subject size comes from its own stream: everything else is the same as for one size
    tiny = cohort_specs(8, 4, seed=2026)
    assert all(s.size == "tiny" for s in tiny)
    assert [dataclasses.replace(s, size="tiny") for s in mixed] == tiny
    assert all(s.size == "clinical" for s in cohort_specs(8, 4, seed=2026, size="clinical"))
    assert sorted(s.group for s in mixed) == ["fcd"] * 8 + ["hc"] * 4


def test_one_class_draw_gives_every_fcd_subject_that_class():
    for cls in ("small", "large"):
        specs = cohort_specs(6, 3, seed=2041, size="mixed", lesions=cls)
        assert [s.lesion_class for s in specs if s.group == "fcd"] == [cls] * 6
        assert all(s.lesion_class == "" for s in specs if s.group == "hc")
        # only the class changes: the rows are those of a random draw
        assert [dataclasses.replace(s, lesion_class="") for s in specs] == cohort_specs(6, 3, 2041, "mixed")
    with pytest.raises(ValueError, match="unknown --lesions 'medium'"):
        cohort_specs(2, 1, seed=0, lesions="medium")


def test_lesion_profile_flat_keeps_the_rows_and_fills_the_core():
    peaked = cohort_specs(6, 3, seed=2042, size="mixed", lesions="large")
    assert all(s.lesion_profile == "peaked" for s in peaked)                 # the default: cohorts unchanged
    flat = cohort_specs(6, 3, seed=2042, size="mixed", lesions="large", profile="flat")
    assert [dataclasses.replace(s, lesion_profile="peaked") for s in flat] == peaked
    mixed = [s.lesion_profile for s in cohort_specs(40, 0, seed=2042, profile="mixed")]
    assert set(mixed) == {"peaked", "flat"}
    with pytest.raises(ValueError, match="unknown --lesion-profile 'round'"):
        cohort_specs(2, 1, seed=0, profile="round")
    # the same lesion with each profile: the flat one is as bright inside as at its centre
    tissue = template_head(2)
    core = {}
    for name, p in LESION_PROFILES.items():
        les = anatomy.make_lesion(tissue, "FL", "L", np.random.default_rng(5), 12.0, gain=0.2, profile_power=p)
        w = les.weight[les.mask]
        core[name] = float(np.median(w) / w.max())
    assert core["flat"] > 0.8 and core["peaked"] < 0.65


def test_unknown_size_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="unknown phantom size 'huge'"):
        write_cohort(tmp_path / "p", 1, 0, seed=0, size="huge")
    assert not (tmp_path / "p").exists()


def test_a_lesion_thinner_than_the_slices_still_gets_a_mask():
    from bids_fcd.phantom.generator import binary_roi

    pv = np.zeros((6, 6, 4), np.float32)
    pv[2:4, 2:4, 1] = [[0.3, 0.1], [0.35, 0.1]]  # a 3 mm lesion spread over 6 mm slices: no voxel is half lesion
    mask = binary_roi(pv)
    assert mask.any() and mask.sum() == 2 and mask[2, 2, 1] and mask[3, 2, 1]  # the voxels ≥ half the peak
    big = np.zeros_like(pv)
    big[1:4, 1:4, 1:3] = 0.9
    big[0, 0, 0] = 0.4
    assert np.array_equal(binary_roi(big), big > 0.5)  # unchanged where some voxel is more than half lesion
    assert not binary_roi(np.zeros_like(pv)).any()
