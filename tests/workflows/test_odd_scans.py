"""Odd scans in a participant-level run, on the tiny phantom and model: a participant whose T1w has a
whole-body field of view, and one whose FLAIR is an RGB image, fail alone with their file named,
while a good participant completes; the dataset and output folders have spaces and non-ASCII
characters in their paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_fcd.cli.main import main
from tests.conftest import copy_dataset

SAMPLER = [
    "--encoding",
    "stochastic",
    "--noise-level",
    "20",
    "--steps",
    "5",
    "--guidance-scale",
    "5",
    "--draws",
    "1",
    "--skip-bids-validation",
]


def _clone(ds: Path, src: str, dst: str) -> Path:
    """Copy sub-<src> to sub-<dst> (files renamed) with its participants.tsv row; returns its anat folder."""
    anat = ds / f"sub-{dst}" / "anat"
    anat.mkdir(parents=True)
    for f in (ds / f"sub-{src}" / "anat").iterdir():
        shutil.copyfile(f, anat / f.name.replace(f"sub-{src}", f"sub-{dst}"))
    tsv = ds / "participants.tsv"
    text = tsv.read_text(encoding="utf-8")
    row = next(r for r in text.splitlines() if r.startswith(f"sub-{src}\t")).split("\t")
    tsv.write_text(text.rstrip("\n") + "\n" + "\t".join([f"sub-{dst}", *row[1:]]) + "\n", encoding="utf-8")
    return anat


def test_participants_with_odd_scans_fail_alone_in_a_path_with_spaces_and_unicode(phantom, tiny_model, work_dir, tmp_path):
    root = tmp_path / "Études FCD 2026 — 患者"
    ds = copy_dataset(phantom, root / "bids dataset")
    t1 = next(_clone(ds, "00003", "body").glob("*_T1w.nii.gz"))
    img = nib.load(t1)
    body = np.tile(np.asanyarray(img.dataobj), (1, 1, 10))  # ten heads side by side: 1.8 m
    nib.save(nib.Nifti1Image(body, img.affine, img.header), t1)
    fl = next(_clone(ds, "00003", "rgb").glob("*_FLAIR.nii.gz"))
    grey = (np.asanyarray(nib.load(fl).dataobj) / 8).clip(0, 255).astype(np.uint8)
    rgb = np.zeros(grey.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    for c in "RGB":
        rgb[c] = grey
    nib.save(nib.Nifti1Image(rgb, nib.load(fl).affine), fl)

    out = root / "derivatives out"
    code = main(
        [
            str(ds),
            str(out),
            "participant",
            "--model",
            str(tiny_model),
            "--work-dir",
            str(work_dir),
            *SAMPLER,
            "--participant-label",
            "00001",
            "body",
            "rgb",
        ]
    )
    assert code == 1, "a failed participant makes the exit code non-zero"
    for label, path, words in (("body", t1, "crop it to the head first"), ("rgb", fl, "RGB (colour) voxels")):
        crash = json.loads((out / f"sub-{label}" / "log" / f"sub-{label}_crash.json").read_text(encoding="utf-8"))
        assert path.name in crash["message"] and words in crash["message"], crash["message"]
        assert not (out / f"sub-{label}" / "anat").exists(), "no outputs for a refused participant"
    assert (out / "sub-00001" / "log" / "sub-00001_manifest.json").exists(), "the good participant completes"
    assert not (out / "sub-00001" / "log" / "sub-00001_crash.json").exists()
