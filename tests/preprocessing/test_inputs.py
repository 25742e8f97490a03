"""Odd input images at the reading stage: each is read correctly or refused with the file named."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

import bids_fcd.preprocessing.inputs as inputs
from bids_fcd.preprocessing.errors import PreprocessingError
from bids_fcd.preprocessing.inputs import MAX_FOV_MM, check_brain_in_view, read_image

SHAPE = (24, 24, 20)


def _head(shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """A bright ellipsoid on a dark background with a left-right asymmetry (float32)."""
    i, j, k = np.ogrid[tuple(slice(0, n) for n in shape[:3])]
    c = (np.asarray(shape[:3]) - 1) / 2
    inside = ((i - c[0]) / (0.4 * shape[0])) ** 2 + ((j - c[1]) / (0.4 * shape[1])) ** 2 + (
        (k - c[2]) / (0.4 * shape[2])
    ) ** 2 < 1
    out = np.where(inside, 500.0, 20.0) + np.random.default_rng(0).random(shape[:3]) * 10
    out[: shape[0] // 3] *= 1.5  # the left third brighter: a flip is visible
    return out.astype(np.float32)


def _save(path, data, affine=None, zooms=None):
    aff = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    if zooms is not None:
        aff = np.diag([*zooms, 1.0])
    nib.save(nib.Nifti1Image(data, aff), path)
    return path


def _odd(case: str, tmp_path):
    head = _head()
    p = tmp_path / "sub-01_FLAIR.nii.gz"
    if case == "four_d_one_volume":
        return _save(p, head[..., None])
    if case == "four_d_series":
        return _save(p, np.stack([head, head], axis=-1))
    if case == "seven_mm_slices":
        return _save(p, head[:, :, :10], zooms=(1.0, 1.0, 7.0))
    if case == "eleven_mm_slices":
        return _save(p, head[:, :, :10], zooms=(1.0, 1.0, 11.0))
    if case == "whole_body_fov":
        return _save(p, np.tile(head, (1, 1, 10)), zooms=(8.0, 8.0, 9.0))  # 192 x 192 x 1800 mm: 10 heads
    if case in ("nan", "inf"):
        bad = head.copy()
        bad[3, 4, 5] = np.nan if case == "nan" else np.inf
        return _save(p, bad)
    if case == "float64":
        return _save(p, head.astype(np.float64))
    if case == "int8":
        return _save(p, (head / 10).astype(np.int8))
    if case == "rgb":
        rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
        for c in "RGB":
            rgb[c] = (head / 10).astype(np.uint8)
        return _save(p, rgb)
    if case == "vector_5d":
        return _save(p, np.stack([head] * 3, axis=-1)[:, :, :, None, :])
    if case in ("qform_sform_shifted", "qform_sform_mirrored"):
        img = nib.Nifti1Image(head, np.eye(4))
        q = np.diag([-1.0, 1.0, 1.0, 1.0]) if case.endswith("mirrored") else np.eye(4)
        q[0, 3] += 0.0 if case.endswith("mirrored") else 15.0
        img.set_qform(q, code=1)
        img.set_sform(np.eye(4), code=1)
        nib.save(img, p)
        return p
    if case == "qform_sform_within_a_millimetre":
        img = nib.Nifti1Image(head, np.eye(4))
        q = np.eye(4)
        q[:3, 3] = 0.3
        img.set_qform(q, code=1)
        img.set_sform(np.eye(4), code=1)
        nib.save(img, p)
        return p
    if case == "empty":
        p.write_bytes(b"")
        return p
    if case == "not_gzip":
        p.write_bytes(nib.Nifti1Image(head, np.eye(4)).to_bytes())
        return p
    if case == "unicode_and_spaces":
        folder = tmp_path / "Données patient 患者 01"
        folder.mkdir()
        return _save(folder / "sub-01 é_FLAIR.nii.gz", head)
    raise ValueError(case)


#: odd input → None (read, same voxels as the plain image) or words of the refusal
CASES = {
    "four_d_one_volume": None,
    "four_d_series": "a single 3D volume is required",
    "vector_5d": "a single 3D volume is required",
    "seven_mm_slices": None,
    "eleven_mm_slices": "too coarse to register",
    "whole_body_fov": "crop it to the head first",
    "nan": "NaN or infinite voxels",
    "inf": "NaN or infinite voxels",
    "float64": None,
    "int8": None,
    "rgb": "RGB (colour) voxels",
    "qform_sform_shifted": "qform and sform disagree by up to 15.0 mm",
    "qform_sform_mirrored": "left-right flip",
    "qform_sform_within_a_millimetre": None,
    "empty": "the file is empty",
    "not_gzip": "not gzip-compressed although its name ends in .gz",
    "unicode_and_spaces": None,
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_odd_image_is_read_or_refused_with_its_file_named(case, tmp_path):
    path = _odd(case, tmp_path)
    words = CASES[case]
    if words is not None:
        with pytest.raises(PreprocessingError) as exc:
            read_image(path, "FLAIR")
        assert str(path) in str(exc.value) and words in str(exc.value), str(exc.value)
        return
    img = read_image(path, "FLAIR")
    assert img.dimension == 3
    expected = np.asarray(nib.load(path).dataobj, np.float32).reshape(img.shape)
    assert np.allclose(img.numpy(), expected), "the voxels are read unchanged"


def test_accepted_oddities_are_warned_about(tmp_path, caplog):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with caplog.at_level(logging.WARNING):
        read_image(_odd("four_d_one_volume", tmp_path / "a"), "FLAIR")
        read_image(_odd("seven_mm_slices", tmp_path / "b"), "FLAIR")
    text = caplog.text
    assert "4D with one volume" in text and "reading it as that 3D volume" in text
    assert "7 mm voxels" in text and "may be missed" in text


def test_a_huge_grid_is_refused_from_its_header_without_reading_the_voxels(tmp_path, monkeypatch):
    """A whole-body 512 x 512 x 1800 int16 header with no voxels behind it: the field of view check
    refuses it before the voxels are read (reading them would fail here as a truncated file)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((512, 512, 1800))
    hdr.set_data_dtype(np.int16)
    hdr.set_zooms((1.0, 1.0, 1.0))
    hdr.set_sform(np.eye(4), code=1)
    hdr.set_qform(np.eye(4), code=1)
    path = tmp_path / "sub-01_T1w.nii"
    path.write_bytes(hdr.binaryblock + b"\x00" * 4)

    def no_voxels(*args, **kwargs):
        raise AssertionError("the voxels of a refused grid were read")

    monkeypatch.setattr(inputs, "_check_voxels", no_voxels)
    with pytest.raises(PreprocessingError) as exc:
        read_image(path, "T1w")
    assert str(path) in str(exc.value) and "512 x 512 x 1800 mm" in str(exc.value)
    assert f"a head fits in {MAX_FOV_MM:.0f} mm" in str(exc.value)


def test_too_many_voxels_in_a_head_sized_view_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_VOXELS", 1000)
    path = _save(tmp_path / "sub-01_T1w.nii.gz", _head())
    with pytest.raises(PreprocessingError, match="M voxels"):
        read_image(path, "T1w")


def test_a_left_right_flipped_header_with_flipped_voxels_is_the_same_image(tmp_path):
    """A FLAIR stored left-to-right (LAS, voxels mirrored and the header saying so) is physically the
    image stored RAS: read, and resampled onto the RAS one, it gives the same voxels."""
    import ants

    head = _head()
    ras = _save(tmp_path / "ras.nii.gz", head)
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = SHAPE[0] - 1
    las = _save(tmp_path / "las.nii.gz", head[::-1].copy(), affine=flip)
    assert nib.aff2axcodes(nib.load(las).affine) == ("L", "A", "S")
    a, b = read_image(ras, "T1w"), read_image(las, "FLAIR")
    same = ants.resample_image_to_target(b, a, interp_type="nearestNeighbor")
    assert np.allclose(same.numpy(), a.numpy())
    assert not np.allclose(b.numpy(), a.numpy()), "the stored voxels differ"


def _ants_mask(mask: np.ndarray, spacing=(4.0, 4.0, 4.0)):
    import ants

    return ants.from_numpy(mask.astype(np.float32), spacing=spacing)


def test_a_brain_cut_by_the_field_of_view_is_refused_and_a_clipped_one_warned_about(tmp_path, caplog):
    i, j, k = np.ogrid[:40, :40, :40]
    ball = (i - 19.5) ** 2 + (j - 19.5) ** 2 + (k - 19.5) ** 2 < 16**2  # a 128 mm brain in 4 mm voxels
    t1w = tmp_path / "sub-01_T1w.nii.gz"
    stem = ball.copy()
    stem[18:22, 18:22, :20] = True  # the brainstem leaving through a face (16 x 16 mm²)
    with caplog.at_level(logging.WARNING):
        check_brain_in_view(_ants_mask(ball), t1w)  # whole brain in view: accepted
        check_brain_in_view(_ants_mask(stem), t1w)
    assert not caplog.text
    with caplog.at_level(logging.WARNING):  # the lowest 2 cm out of view: warned about
        check_brain_in_view(_ants_mask(ball[:, :, 9:]), t1w)
    assert "out of view" in caplog.text and "inferior edge" in caplog.text
    # the top half of the field of view only (ants' index k runs inferior → superior in LPS)
    with pytest.raises(PreprocessingError) as exc:
        check_brain_in_view(_ants_mask(ball[:, :, 20:]), t1w)
    assert str(t1w) in str(exc.value) and "cuts through the brain" in str(exc.value)
    assert "inferior edge" in str(exc.value)


def test_a_flair_covering_part_of_the_brain_is_refused_after_registration(tmp_path):
    """A partial-brain FLAIR (a 28 mm slab of the head) over a whole-brain T1w: refused by the coverage
    check after the FLAIR → T1w registration (here the identity), with the FLAIR named."""
    import ants

    from bids_fcd.preprocessing.pipeline import check_flair_overlap

    head = _head((40, 40, 40))
    t1 = ants.from_numpy(head, spacing=(4.0, 4.0, 4.0))
    brain = ants.from_numpy((head > 100).astype(np.float32), spacing=(4.0, 4.0, 4.0))
    identity = tmp_path / "identity.mat"
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), str(identity))
    whole = ants.from_numpy(head.max() - head + 1.0, spacing=(4.0, 4.0, 4.0))  # FLAIR-like: inverted contrast
    check_flair_overlap(t1, whole, brain, [str(identity)], tmp_path / "whole_FLAIR.nii.gz")
    slab = ants.crop_indices(whole, (0, 0, 16), (40, 40, 23))
    with pytest.raises(PreprocessingError) as exc:
        check_flair_overlap(t1, slab, brain, [str(identity)], tmp_path / "slab_FLAIR.nii.gz")
    assert str(tmp_path / "slab_FLAIR.nii.gz") in str(exc.value) and "do not overlap" in str(exc.value)
