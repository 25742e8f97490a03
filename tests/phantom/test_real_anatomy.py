"""Real-anatomy heads: label fractions, the fixed split, registration into template mm, and subjects made
from a label map through the BIDS writer and the grid brains.

The label map of these tests is made from the template's own tissue maps, turned to LIA at 2 mm and moved by a
known rotation and shift, so that registration has something to undo and the result can be checked against the
template; the project's 20 real label maps (shared/anatomy) are used where they are there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.atlas import load_template, lobe_of_mm
from bids_fcd.commands import ANATOMY_SPLITS
from bids_fcd.phantom import anatomy
from bids_fcd.phantom.generator import SIZES, cohort_specs, make_subject, template_head, write_cohort
from bids_fcd.phantom.grid_brains import grid_brain
from bids_fcd.phantom.real_anatomy import (
    ANATOMY_FILE,
    ANATOMY_SPLIT,
    SPLIT_CHOICES,
    anatomy_files,
    anatomy_head,
    label_fractions,
)
from bids_fcd.training.presets import PRESETS

SHARED_ANATOMY = Path(__file__).resolve().parents[3] / "shared" / "anatomy"


def _template_labels(res: int = 2) -> nib.Nifti1Image:
    """A FreeSurfer-style label map of the template (cortex 3/42, white matter 2/41, CSF 24, putamen-like
    deep grey 12/51, bone 515, skin 511), stored LIA and moved by 6° about z and (5, −4, 3) mm."""
    tpl = load_template(res)
    gm, wm = (np.asarray(tpl[k].get_fdata(), np.float32) for k in ("gm", "wm"))
    brain = np.asarray(tpl["mask"].get_fdata()) > 0.5
    pad = 8
    gm, wm, brain = (np.pad(a, pad) for a in (gm, wm, brain))
    aff = tpl["gm"].affine.copy()
    aff[:3, 3] -= aff[:3, :3] @ np.full(3, pad)
    ijk = np.argwhere(np.ones(gm.shape, bool))
    x = (ijk @ aff[:3, :3].T + aff[:3, 3])[:, 0].reshape(gm.shape)
    right = x > 0
    lab = np.zeros(gm.shape, np.int16)
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~brain, sampling=res)
    lab[(dist > 2) & (dist <= 8)] = 515
    lab[(dist > 8) & (dist <= 12)] = 511
    lab[brain] = 24
    lab[brain & (wm >= gm) & (wm > 0.3)] = 2
    lab[brain & (gm > wm) & (gm > 0.3)] = 3
    lab[(lab == 2) & right] = 41
    lab[(lab == 3) & right] = 42
    deep = brain & (np.abs(x) > 18) & (np.abs(x) < 28)
    deep &= np.abs((ijk @ aff[:3, :3].T + aff[:3, 3])[:, 1].reshape(gm.shape)) < 8
    lab[deep & (lab > 0) & (lab < 100)] = np.where(right[deep & (lab > 0) & (lab < 100)], 51, 12)
    # LIA storage: i = −x (L), j = −z (I), k = +y (A)
    data = np.transpose(lab, (0, 2, 1))[::-1, ::-1, :]
    shape = data.shape
    lia = np.array([[-res, 0, 0], [0, 0, res], [0, -res, 0]], float)
    centre = aff[:3, :3] @ ((np.array(lab.shape) - 1) / 2) + aff[:3, 3]
    out_aff = np.eye(4)
    out_aff[:3, :3] = lia
    out_aff[:3, 3] = centre - lia @ ((np.array(shape) - 1) / 2)
    ang = np.deg2rad(6.0)
    move = np.eye(4)
    move[:3, :3] = [[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]]
    move[:3, 3] = (5.0, -4.0, 3.0)
    return nib.Nifti1Image(np.ascontiguousarray(data), move @ out_aff)


@pytest.fixture(scope="module")
def label_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two label maps named as the project's anatomies 01 and 02."""
    d = tmp_path_factory.mktemp("anatomy")
    img = _template_labels()
    for n in (1, 2):
        nib.save(img, d / ANATOMY_FILE.format(n))
    return d


def test_split_is_fixed_disjoint_and_covers_the_twenty():
    seen = [n for split in ANATOMY_SPLIT.values() for n in split]
    assert sorted(seen) == list(range(1, 21))
    assert set(ANATOMY_SPLIT) == {"train", "reference", "development", "test"}
    assert SPLIT_CHOICES == ANATOMY_SPLITS


def test_anatomy_files_names_what_is_missing(label_dir: Path, tmp_path: Path):
    assert [p.name for p in anatomy_files(label_dir, "all")] == [ANATOMY_FILE.format(1), ANATOMY_FILE.format(2)]
    with pytest.raises(ValueError, match=ANATOMY_FILE.format(3).replace(".", r"\.")):
        anatomy_files(label_dir, "train")
    with pytest.raises(ValueError, match="unknown anatomy split"):
        anatomy_files(label_dir, "validation")
    with pytest.raises(ValueError, match="no label map"):
        anatomy_files(tmp_path, "all")


def test_label_fractions_mix_deep_grey_and_keep_cortex_apart():
    lab = np.array([[[3, 42, 2, 12, 24, 515, 511, 507, 506, 0, 30]]])
    fr = label_fractions(lab)
    np.testing.assert_allclose(fr["gm"][0, 0, :4], [1.0, 1.0, 0.0, 0.75])
    np.testing.assert_allclose(fr["gm"] + fr["wm"], [[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]]])
    assert fr["cortex"][0, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert fr["csf"][0, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1]  # CSF, the eye, a vessel
    assert fr["skull"][0, 0, 5] == 1 and fr["scalp"][0, 0, 6] == 1 and fr["soft"][0, 0, 7] == 1
    assert fr["brain"][0, 0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    total = sum(fr[k] for k in ("gm", "wm", "csf", "skull", "scalp", "soft"))
    assert total.max() <= 1.0 and total[0, 0, 9] == 0  # background is nothing


def test_anatomy_head_lands_in_template_mm(label_dir: Path):
    """The moved, LIA-stored label map comes back onto the template grid: its brain overlaps the template's."""
    head = anatomy_head(str(label_dir / ANATOMY_FILE.format(1)), 2)
    ref = template_head(2)
    assert head.gm.shape == ref.gm.shape
    np.testing.assert_allclose(head.affine, ref.affine)
    tpl_brain = np.pad(np.asarray(load_template(2)["mask"].get_fdata()) > 0.5, 8)
    brain = head.brain > 0.5
    dice = 2 * (brain & tpl_brain).sum() / (brain.sum() + tpl_brain.sum())
    assert dice > 0.85, dice
    # the cortex is a part of the grey matter, and the right hemisphere's cortex lies at x > 0
    assert (head.cortex <= head.gm + 1e-4).all()
    assert head.soft is not None and head.skull.sum() > 0


def test_cohort_deals_each_anatomy_before_any_twice():
    maps = ("a", "b", "c")
    specs = cohort_specs(4, 3, seed=5, anatomies=maps)
    first = [s.anatomy for s in specs[:3]]
    assert sorted(first) == list(maps)
    assert all(s.anatomy in maps for s in specs)
    assert [s.anatomy for s in cohort_specs(4, 3, seed=5)] == [""] * 7
    # the rest of a row does not depend on the anatomies
    plain = cohort_specs(4, 3, seed=5)
    assert [(s.group, s.lobe, s.size) for s in plain] == [(s.group, s.lobe, s.size) for s in specs]


def test_lesions_go_into_the_cortex_of_the_lobe_asked_for(label_dir: Path):
    head = anatomy_head(str(label_dir / ANATOMY_FILE.format(1)), 2)
    rng = np.random.default_rng(4)
    for lobe, hemi in (("FL", "L"), ("TL", "R"), ("PL", "R")):
        lesion = anatomy.make_lesion(head, lobe, hemi, rng, 6.0)
        centre = np.array(lesion.center_mm)
        assert lobe_of_mm(centre[None])[0] == lobe and (centre[0] < 0) == (hemi == "L")
        ijk = np.round(np.linalg.inv(head.affine) @ np.append(centre, 1.0))[:3].astype(int)
        assert head.cortex[tuple(ijk)] > 0.5  # the cerebral cortex, not a deep nucleus


def test_subject_from_a_label_map_is_deterministic_and_not_the_template(label_dir: Path):
    anat = (str(label_dir / ANATOMY_FILE.format(1)),)
    spec = next(s for s in cohort_specs(3, 0, seed=11, anatomies=anat) if s.group == "fcd")
    imgs = make_subject(spec, SIZES["tiny"], seed=11)
    again = make_subject(spec, SIZES["tiny"], seed=11)
    assert np.array_equal(np.asarray(imgs["flair"].dataobj), np.asarray(again["flair"].dataobj))
    assert (np.asarray(imgs["roi"].dataobj) > 0).any()
    plain = make_subject(dataclasses.replace(spec, anatomy=""), SIZES["tiny"], seed=11)
    assert not np.array_equal(np.asarray(imgs["t1w"].dataobj), np.asarray(plain["t1w"].dataobj))


def test_write_cohort_names_the_anatomy(label_dir: Path, tmp_path: Path):
    files = tuple(str(p) for p in anatomy_files(label_dir, "all"))
    write_cohort(tmp_path / "bids", 1, 1, seed=2, size="tiny", anatomies=files)
    lines = (tmp_path / "bids" / "participants.tsv").read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split("\t")
    assert header[-1] == "anatomy"
    assert sorted(line.split("\t")[-1] for line in lines[1:]) == ["synthseg-training_seg_01",
                                                                  "synthseg-training_seg_02"]


def test_grid_brain_from_a_label_map_uses_its_own_mask(label_dir: Path):
    grid = PRESETS["inpaint-tiny"].net.grid
    anat = (str(label_dir / ANATOMY_FILE.format(1)),)
    a = grid_brain(3, 0, grid, p_fcd=1.0, anatomies=anat)
    b = grid_brain(3, 0, grid, p_fcd=1.0, anatomies=anat)
    np.testing.assert_array_equal(a.stack, b.stack)
    assert a.mask.any() and a.roi is not None and a.roi.any()
    assert not (a.roi & ~a.mask).any() or (a.roi & a.mask).sum() > 0.5 * a.roi.sum()


@pytest.mark.skipif(not SHARED_ANATOMY.is_dir(), reason="the project's shared/anatomy is not beside the checkout")
def test_the_projects_split_is_all_there():
    for split in ANATOMY_SPLIT:
        assert len(anatomy_files(SHARED_ANATOMY, split)) == len(ANATOMY_SPLIT[split])
