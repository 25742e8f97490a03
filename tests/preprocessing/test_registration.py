"""ANTs registration under paths that look like transform file extensions to ANTs (``.h5``, ``.mat``)."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from bids_fcd.preprocessing.errors import PreprocessingError
from bids_fcd.preprocessing.registration import ants_scratch, ants_unsafe_part, expected_transforms, register

ants = pytest.importorskip("ants")


@pytest.fixture(autouse=True)
def _one_itk_thread(monkeypatch):
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")


def _pair():
    """A tiny box and the same box shifted by two voxels (4 mm voxels): a few SyN iterations align them."""
    rng = np.random.default_rng(0)
    fixed = np.zeros((24, 24, 24), np.float32)
    fixed[6:18, 5:19, 7:17] = 1
    fixed += 0.05 * rng.random(fixed.shape, dtype=np.float32)
    moving = np.roll(fixed, 2, axis=0)
    return ants.from_numpy(fixed, spacing=(4.0, 4.0, 4.0)), ants.from_numpy(moving, spacing=(4.0, 4.0, 4.0))


@pytest.mark.parametrize("path, part", [("/data/study.h5/work", ".h5"), ("/x/tmp.123.mat0/a", ".mat"),
                                        ("/x/A.TXT/b", ".txt"), ("/x/[1]/y", "["), ("/data/study/work", None),
                                        ("/x/tmp.123_h5abc", None), ("/x/a.nii.gz", None)])
def test_paths_ants_would_misread_are_recognised(path, part):
    assert ants_unsafe_part(path) == part


def test_syn_in_a_work_dir_named_like_h5_writes_every_transform(tmp_path, monkeypatch):
    """The temporary directory lies under ``study.h5/`` (a private one inside such a work dir): the
    scratch folder moves elsewhere and SyN's warps are written and usable."""
    tmp = tmp_path / "study.h5" / "work" / "tmp.123.h5abc"
    tmp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    fixed, moving = _pair()
    with ants_scratch() as scratch:
        assert ants_unsafe_part(scratch) is None
        xfm = register(fixed, moving, "SyN", scratch / "t1w_to_template_", "sub-01_T1w.nii.gz: T1w → template")
        assert xfm.warp is not None and xfm.inverse_warp is not None
        assert all(p.is_file() for p in (xfm.affine, xfm.warp, xfm.inverse_warp))
        moved = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[str(xfm.warp), str(xfm.affine)])
        before = float(np.abs(moving.numpy() - fixed.numpy()).mean())
        assert float(np.abs(moved.numpy() - fixed.numpy()).mean()) < before / 2
    assert not scratch.exists(), "the scratch folder is removed"


@pytest.mark.parametrize("folder", ["study.h5", "tmp.mat1"])
def test_missing_warps_raise_a_preprocessing_error_naming_the_file(tmp_path, folder):
    """ANTs writing under such a folder leaves no warp (``.h5``) or makes antspyx raise IndexError
    (``.mat``): either is the participant's PreprocessingError, naming the file and the fix."""
    out = tmp_path / folder
    out.mkdir()
    fixed, moving = _pair()
    with pytest.raises(PreprocessingError) as exc:
        register(fixed, moving, "SyN", out / "t1w_to_template_", "sub-01_T1w.nii.gz: T1w → template")
    message = str(exc.value)
    assert message.startswith("sub-01_T1w.nii.gz: T1w → template: ANTs SyN registration")
    assert "takes for a transform file extension: set TMPDIR" in message


def test_rigid_writes_only_its_affine(tmp_path):
    fixed, moving = _pair()
    xfm = register(fixed, moving, "Rigid", tmp_path / "flair_to_t1w_", "sub-01_FLAIR.nii.gz: FLAIR → T1w")
    assert xfm.affine.is_file() and xfm.warp is None and xfm.inverse_warp is None


def test_no_safe_temporary_folder_is_a_clear_error(tmp_path, monkeypatch):
    import bids_fcd.preprocessing.registration as reg

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a.h5"))
    monkeypatch.setattr(reg, "FALLBACK_TEMP_DIRS", (str(tmp_path / "b.mat"), str(tmp_path / "missing")))
    with pytest.raises(PreprocessingError, match="set TMPDIR to such a folder"), ants_scratch():
        pass


def test_expected_names_follow_ants(tmp_path):
    syn = expected_transforms(tmp_path / "p_", "SyN")
    assert [p.name for p in (syn.affine, syn.warp, syn.inverse_warp) if p is not None] == [
        "p_0GenericAffine.mat", "p_1Warp.nii.gz", "p_1InverseWarp.nii.gz"]
    with pytest.raises(ValueError, match="unsupported registration"):
        expected_transforms(tmp_path / "p_", "BSpline")
