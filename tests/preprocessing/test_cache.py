"""The preprocessing cache's record: a truncated, changed or foreign cache folder is never used."""

from __future__ import annotations

import dataclasses
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.bids.layout import find_inputs, open_layout
from bids_fcd.config import PreprocConfig
from bids_fcd.preprocessing.cache import RECORD, cache_problem, nifti_complete, tool_versions, write_record
from bids_fcd.preprocessing.pipeline import ants_threads, cache_key, grid_reference, preprocess, template_reference
from bids_fcd.training.presets import PRESETS

GRID = PRESETS["tiny"].net.grid
KEY = "ab" * 32
NAMES = ["t1w_grid.nii.gz", "mask_grid.nii.gz"]


def _folder(tmp_path):
    folder = tmp_path / KEY[:16]
    folder.mkdir()
    for i, name in enumerate(NAMES):
        nib.save(nib.Nifti1Image(np.random.default_rng(i).random((16, 16, 16)).astype(np.float32), np.eye(4)),
                 folder / name)
    write_record(folder, KEY, {"t1w": "t1.nii.gz"}, NAMES, tool_versions())
    return folder


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_complete_folder_is_used(tmp_path):
    assert cache_problem(_folder(tmp_path), KEY, NAMES) is None


@pytest.mark.parametrize("damage, words", [
    (lambda f: _truncate(f / "t1w_grid.nii.gz"), "t1w_grid.nii.gz does not match its sha256"),
    (lambda f: (f / "mask_grid.nii.gz").unlink(), "mask_grid.nii.gz is missing"),
    (lambda f: (f / RECORD).write_text('{"key": '), "cannot be read"),
])
def test_a_damaged_folder_is_refused(tmp_path, damage, words):
    folder = _folder(tmp_path)
    damage(folder)
    assert words in (cache_problem(folder, KEY, NAMES) or "")


def test_a_folder_of_other_settings_or_tools_is_refused(tmp_path):
    folder = _folder(tmp_path)
    assert "made for other inputs or settings" in (cache_problem(folder, "cd" * 32, NAMES) or "")
    assert "lists no roi_grid.nii.gz" in (cache_problem(folder, KEY, [*NAMES, "roi_grid.nii.gz"]) or "")
    record = json.loads((folder / RECORD).read_text())
    record["tools"] = {**record["tools"], "antspyx": "0.0.1"}
    (folder / RECORD).write_text(json.dumps(record))
    assert "was made with antspyx 0.0.1" in (cache_problem(folder, KEY, NAMES) or "")


def test_a_folder_without_checksums_is_read_through_then_given_them(tmp_path):
    folder = _folder(tmp_path)
    (folder / RECORD).write_text(json.dumps({"t1w": "t1.nii.gz", "flair": "fl.nii.gz", "roi": "None"}) + "\n")
    assert cache_problem(folder, KEY, NAMES) is None
    record = json.loads((folder / RECORD).read_text())
    assert record["key"] == KEY and sorted(record["files"]) == sorted(NAMES) and record["tools"] is None
    _truncate(folder / "t1w_grid.nii.gz")
    assert "does not match its sha256" in (cache_problem(folder, KEY, NAMES) or "")

    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(folder / "mask_grid.nii.gz", old / "mask_grid.nii.gz")
    shutil.copy(folder / "t1w_grid.nii.gz", old / "t1w_grid.nii.gz")  # the truncated one
    (old / RECORD).write_text(json.dumps({"t1w": "t1.nii.gz"}))
    assert "does not read to its end" in (cache_problem(old, KEY, NAMES) or "")


def test_a_truncated_or_foreign_grid_reference_is_rewritten(tmp_path):
    ref = grid_reference(tmp_path, GRID)
    _truncate(ref)
    assert not nifti_complete(ref)
    assert grid_reference(tmp_path, GRID) == ref and nifti_complete(ref)
    moved = grid_reference(tmp_path, dataclasses.replace(GRID, z_min_mm=GRID.z_min_mm + 2, z_max_mm=GRID.z_max_mm + 2))
    assert moved != ref, "a grid of the same size elsewhere gets its own reference"
    assert not np.allclose(nib.load(moved).affine, nib.load(ref).affine)
    tpl = template_reference(tmp_path)
    _truncate(tpl)
    assert template_reference(tmp_path) == tpl and nifti_complete(tpl)


def test_a_truncated_cached_image_is_recomputed_never_used(phantom, work_dir, tiny_model, tmp_path, caplog):
    """A copy of a participant's cache folder, one image truncated: preprocessing recomputes it."""
    inp = find_inputs(open_layout(phantom, validate=False), "00003", None, {})
    cfg = PreprocConfig()
    pre = preprocess(inp.t1w, inp.flair, inp.roi, work_dir / inp.prefix, GRID, cfg)  # cached by the training fixture
    key = cache_key(inp.t1w, inp.flair, inp.roi, GRID, cfg, ants_threads())
    work = tmp_path / "work"
    shutil.copytree(pre.folder, work / inp.prefix / key[:16])
    damaged = work / inp.prefix / key[:16] / pre.flair.name
    _truncate(damaged)
    again = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, GRID, cfg)
    assert f"{damaged} does not match its sha256" in caplog.text and "recomputing" in caplog.text
    assert nifti_complete(again.flair) and cache_problem(again.folder, key, [pre.flair.name]) is None
    np.testing.assert_array_equal(nib.load(again.flair).get_fdata(), nib.load(pre.flair).get_fdata())


def test_each_writer_fills_its_own_folder_and_the_first_complete_one_is_kept(tmp_path, caplog):
    from bids_fcd.preprocessing.cache import partial_folder, publish_folder

    caplog.set_level("INFO")
    folder = tmp_path / KEY[:16]
    mine = partial_folder(folder)
    (tmp_path / "other").mkdir()
    theirs = _folder(tmp_path / "other")  # a complete folder of another process, published first
    theirs.rename(folder)
    assert mine.name.endswith(".partial") and mine != folder and mine.is_dir()
    for name in NAMES:
        (mine / name).write_bytes(b"mine")
    write_record(mine, KEY, {}, NAMES, tool_versions())
    publish_folder(mine, folder, KEY, NAMES)
    assert not mine.exists() and cache_problem(folder, KEY, NAMES) is None
    assert (folder / NAMES[0]).read_bytes() != b"mine", "the folder in use is never replaced"
    assert "completed by another process meanwhile" in caplog.text


def test_a_damaged_folder_is_replaced_by_a_complete_one(tmp_path):
    from bids_fcd.preprocessing.cache import partial_folder, publish_folder

    folder = _folder(tmp_path)
    _truncate(folder / NAMES[0])
    fresh = partial_folder(folder)
    for i, name in enumerate(NAMES):
        nib.save(nib.Nifti1Image(np.full((4, 4, 4), i, np.float32), np.eye(4)), fresh / name)
    write_record(fresh, KEY, {}, NAMES, tool_versions())
    publish_folder(fresh, folder, KEY, NAMES)
    assert cache_problem(folder, KEY, NAMES) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name], "nothing left beside it"
