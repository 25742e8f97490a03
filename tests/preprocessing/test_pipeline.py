import logging
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img

from bids_fcd.atlas import load_template
from bids_fcd.bids.layout import find_inputs, open_layout
from bids_fcd.config import PreprocConfig
from bids_fcd.preprocessing.pipeline import (
    MIN_MUTUAL_INFORMATION,
    PreprocessingError,
    _read,
    cache_key,
    mutual_information,
    preprocess,
    working_spacing,
)
from bids_fcd.training.presets import PRESETS

GRID = PRESETS["tiny"].net.grid


def test_preprocessing_lands_in_template_space_and_is_cached(phantom, work_dir, tiny_model):
    layout = open_layout(phantom, validate=False)
    inp = find_inputs(layout, "00001", None, {})
    t0 = time.time()
    pre = preprocess(inp.t1w, inp.flair, inp.roi, work_dir / inp.prefix, GRID, PreprocConfig())
    assert time.time() - t0 < 5, "the training fixture already preprocessed this participant: cache expected"
    mask = nib.load(pre.mask).get_fdata() > 0.5
    tpl_mask = resample_to_img(load_template(2)["mask"], nib.load(pre.mask), interpolation="nearest",
                               force_resample=True, copy_header=True).get_fdata() > 0.5
    dice = 2 * (mask & tpl_mask).sum() / (mask.sum() + tpl_mask.sum())
    assert dice > 0.85, f"brain mask vs template mask Dice {dice:.2f}"
    stack, m = pre.slices()
    assert stack.shape[1] == 2 and stack.shape[2:] == GRID.shape
    assert stack.min() >= -1
    for c in range(2):  # brain percentiles (1, 50) land on -1 and 0.6, nothing is clipped above
        assert abs(float(np.median(stack[:, c][m])) - 0.6) < 0.01
        assert abs(float(np.percentile(stack[:, c][m], 1)) + 1.0) < 0.05
    assert np.all(stack[:, 0][~m] == -1)
    for p in (pre.xfm_t1w_to_template, pre.xfm_flair_to_t1w, pre.t1w_native):
        assert p.exists()
    # both images sit on the template anatomy: T1w follows the template T1w and white matter, FLAIR
    # follows grey matter (GM is bright on FLAIR, dark on T1w); a misregistered FLAIR would not
    tpl = load_template(2)
    ref = nib.load(pre.t1w)

    def tmpl(key):
        img = resample_to_img(tpl[key], ref, force_resample=True, copy_header=True)
        return img.get_fdata()[mask]

    t1, fl = nib.load(pre.t1w).get_fdata()[mask], nib.load(pre.flair).get_fdata()[mask]
    assert np.corrcoef(t1, tmpl("t1"))[0, 1] > 0.8
    assert np.corrcoef(fl, tmpl("gm"))[0, 1] > 0.3 > np.corrcoef(t1, tmpl("gm"))[0, 1]


def _vol(tmp_path, name, data, affine=None):
    p = tmp_path / name
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), p)
    return p


@pytest.mark.parametrize("case, message", [
    ("empty", "the file is empty"),
    ("truncated", "not a complete NIfTI"),
    ("not_gzip", "not a complete NIfTI"),
    ("four_d", "a single 3D volume is required"),
    ("nan", "NaN or infinite voxels"),
    ("zero", "is constant"),
    ("flat", "not a head volume"),
])
def test_bad_images_are_refused_with_the_file_named(tmp_path, case, message):
    rng = np.random.default_rng(0)
    good = rng.random((16, 16, 16)).astype(np.float32)
    if case == "empty":
        p = tmp_path / "x.nii.gz"
        p.write_bytes(b"")
    elif case == "truncated":
        full = _vol(tmp_path, "full.nii.gz", good)
        p = tmp_path / "x.nii.gz"
        p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "not_gzip":
        raw = _vol(tmp_path, "raw.nii", good)
        p = tmp_path / "x.nii.gz"
        p.write_bytes(raw.read_bytes())
    elif case == "four_d":
        p = _vol(tmp_path, "x.nii.gz", rng.random((16, 16, 16, 3)).astype(np.float32))
    elif case == "nan":
        bad = good.copy()
        bad[3, 3, 3] = np.nan
        p = _vol(tmp_path, "x.nii.gz", bad)
    elif case == "zero":
        p = _vol(tmp_path, "x.nii.gz", np.zeros((16, 16, 16), np.float32))
    else:
        p = _vol(tmp_path, "x.nii.gz", rng.random((64, 64, 1)).astype(np.float32))
    with pytest.raises(PreprocessingError) as exc:
        _read(p, "FLAIR")
    assert str(p) in str(exc.value) and message in str(exc.value)


def test_a_single_volume_4d_file_is_read_as_3d(tmp_path):
    p = _vol(tmp_path, "x.nii.gz", np.random.default_rng(0).random((16, 16, 16, 1)).astype(np.float32))
    assert _read(p, "T1w").dimension == 3


def test_mutual_information_separates_paired_from_unrelated():
    rng = np.random.default_rng(0)
    a = rng.random(20000)
    assert mutual_information(a, np.exp(a) + 0.01 * rng.random(20000)) > 1.0
    assert mutual_information(a, rng.random(20000)) < MIN_MUTUAL_INFORMATION


def test_the_cache_key_follows_content_settings_and_threads(tmp_path):
    t1 = _vol(tmp_path, "t1.nii.gz", np.ones((8, 8, 8), np.float32))
    fl = _vol(tmp_path, "fl.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8))
    k = cache_key(t1, fl, None, GRID, PreprocConfig(), 2)
    assert k == cache_key(t1, fl, None, GRID, PreprocConfig(), 2)
    assert k != cache_key(t1, fl, None, GRID, PreprocConfig(), 1), "ANTs results depend on the thread count"
    assert k != cache_key(t1, fl, None, GRID, PreprocConfig(registration="affine"), 2)
    copy = tmp_path / "copy.nii.gz"
    copy.write_bytes(fl.read_bytes())
    assert k == cache_key(t1, copy, None, GRID, PreprocConfig(), 2), "a copy of the same bytes hits the cache"


def test_native_coordinates_point_each_grid_voxel_at_its_source_in_the_t1w(phantom, work_dir, tiny_model):
    from scipy import ndimage

    from bids_fcd.preprocessing.pipeline import native_coordinates

    inp = find_inputs(open_layout(phantom, validate=False), "00001", None, {})
    pre = preprocess(inp.t1w, inp.flair, inp.roi, work_dir / inp.prefix, GRID, PreprocConfig())
    mask = nib.load(pre.mask).get_fdata() > 0.5
    xyz = native_coordinates(GRID, pre, mask)
    assert xyz.shape == (3, *mask.shape) and np.isnan(xyz[:, ~mask]).all() and np.isfinite(xyz[:, mask]).all()
    native = nib.load(inp.t1w)  # the participant's own T1w, in its scanner space
    ijk = np.linalg.inv(native.affine) @ np.vstack([xyz[:, mask], np.ones(int(mask.sum()))])
    sampled = ndimage.map_coordinates(np.asarray(native.get_fdata(), np.float32), ijk[:3], order=1)
    on_grid = nib.load(pre.t1w).get_fdata()[mask]
    assert np.corrcoef(sampled, on_grid)[0, 1] > 0.85  # the native T1w read at those points is the grid's T1w
    flipped = ijk.copy()
    flipped[0] = native.shape[0] - 1 - flipped[0]  # a left-right error would not be
    assert np.corrcoef(ndimage.map_coordinates(np.asarray(native.get_fdata(), np.float32), flipped[:3], order=1),
                       on_grid)[0, 1] < 0.7


def test_the_working_resolution_is_never_coarser_than_the_grid():
    assert working_spacing(2.0, PRESETS["default"].net.grid) == 2.0
    assert working_spacing(2.0, PRESETS["fine"].net.grid) == 1.5  # a 1.5 mm grid resamples from 1.5 mm images
    assert working_spacing(2.0, GRID) == 2.0  # a coarser grid keeps the working resolution
    assert working_spacing(0.0, PRESETS["fine"].net.grid) == 0.0  # native stays native


def test_the_brain_mask_is_kept_to_the_template_brain_and_the_flair_view(caplog):
    from bids_fcd.preprocessing.pipeline import restrict_mask

    template = np.zeros((20, 20, 20), bool)
    template[4:16, 4:16, 4:16] = True
    fov = np.ones_like(template)
    fov[:, :, 15:] = False  # a FLAIR slab stopping one slice short of the brain's top
    mask = np.zeros_like(template)
    mask[2:18, 4:16, 4:16] = True  # two layers outside the template's brain on two sides: 25 %
    with caplog.at_level(logging.INFO, logger="bids_fcd"):
        out = restrict_mask(mask, template, fov, 2.0, Path("sub-x_T1w.nii.gz"), Path("sub-x_FLAIR.nii.gz"))
    np.testing.assert_array_equal(out, mask & template & fov)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sub-x_T1w.nii.gz" in w and "registration to the template may have failed" in w for w in warned)
    assert any("sub-x_FLAIR.nii.gz" in w and "outside the FLAIR's field of view" in w for w in warned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bids_fcd"):
        restrict_mask(template, template, np.ones_like(template), 2.0, Path("t1"), Path("fl"))
    assert not caplog.records, "a mask on the template's brain, all in view, is not warned about"
    with pytest.raises(PreprocessingError, match="sub-x_T1w.nii.gz: no brain is left"):
        restrict_mask(mask, template, np.zeros_like(template), 2.0, Path("sub-x_T1w.nii.gz"), Path("f"))
