"""Bad input, odd geometry, determinism, resuming and killed runs, on the tiny phantom and model.

One participant-level run over a dataset of good, odd and broken participants checks that each
broken one fails alone with one line naming its file, a crash record and no outputs, that odd
but valid geometry runs, and that the input is untouched. Then: two runs from scratch give
bit-identical derivatives; a rerun skips complete participants; a killed run, rerun, gives the
same derivatives as an uninterrupted one; two processes sharing a work directory do not collide.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_img

from bids_fcd.cli.main import main
from tests.conftest import copy_dataset
from tests.workflows.conftest import tree_hash as _tree_hash

SAMPLER = ["--encoding", "stochastic", "--noise-level", "20", "--steps", "5", "--guidance-scale", "5", "--draws", "1",
           "--skip-bids-validation"]

#: broken participant → (what to do, the file kind named, words of the message)
BROKEN = {
    "trunc": ("FLAIR", "not a complete NIfTI"),
    "nogz": ("FLAIR", "not a complete NIfTI"),
    "empty": ("FLAIR", "the file is empty"),
    "fourd": ("T1w", "a single 3D volume is required"),
    "nan": ("T1w", "NaN or infinite voxels"),
    "zero": ("FLAIR", "is constant"),
    "noise": ("FLAIR", "do not overlap or are of different heads"),
    "noflair": ("FLAIR", "no FLAIR image found"),
    "not1w": ("T1w", "no T1w image found"),
}
#: odd but valid participants: they must run
ODD = ("lps", "thick")


def _anat_hashes(out: Path, prefix: str) -> dict[str, str]:
    anat = out / prefix / "anat"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(anat.iterdir())}


def _clone(ds: Path, src: str, dst: str, lobe: str | None = None) -> Path:
    """Copy sub-<src> to sub-<dst> (files renamed) and add its participants.tsv row."""
    anat = ds / f"sub-{dst}" / "anat"
    anat.mkdir(parents=True)
    for f in (ds / f"sub-{src}" / "anat").iterdir():
        shutil.copyfile(f, anat / f.name.replace(f"sub-{src}", f"sub-{dst}"))
    tsv = ds / "participants.tsv"
    text = tsv.read_text(encoding="utf-8")
    row = next(r for r in text.splitlines() if r.startswith(f"sub-{src}\t")).split("\t")
    row[0] = f"sub-{dst}"
    if lobe is not None:
        row[7] = lobe
    tsv.write_text(text.rstrip("\n") + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    return anat


def _one(anat: Path, kind: str) -> Path:
    return next(p for p in anat.glob(f"*_{kind}.nii.gz"))


def _reorient(img: nib.Nifti1Image, codes: str) -> nib.Nifti1Image:
    ornt = nib.orientations.ornt_transform(nib.io_orientation(img.affine), nib.orientations.axcodes2ornt(tuple(codes)))
    return img.as_reoriented(ornt)


def _oblique(img: nib.Nifti1Image, degrees: float) -> nib.Nifti1Image:
    """The same voxels with the head turned by ``degrees`` about the scanner z axis through its centre."""
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    centre = img.affine @ np.r_[(np.array(img.shape[:3]) - 1) / 2, 1]
    shift, back = np.eye(4), np.eye(4)
    shift[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return nib.Nifti1Image(np.asanyarray(img.dataobj), back @ rot @ shift @ img.affine, img.header)


def _battery(phantom: Path, root: Path) -> Path:
    ds = copy_dataset(phantom, root / "ds")
    rng = np.random.default_rng(0)
    for label in BROKEN:
        anat = _clone(ds, "00003", label)
        kind = BROKEN[label][0]
        f = _one(anat, kind)
        img = nib.load(f)
        if label == "trunc":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        elif label == "nogz":
            f.write_bytes(img.to_bytes())
        elif label == "empty":
            f.write_bytes(b"")
        elif label == "fourd":
            data = np.asanyarray(img.dataobj)
            nib.save(nib.Nifti1Image(np.stack([data, data], axis=-1), img.affine, img.header), f)
        elif label == "nan":
            data = np.asanyarray(img.dataobj).astype(np.float32)
            data[10, 10, 10] = np.nan
            nib.save(nib.Nifti1Image(data, img.affine), f)
        elif label == "zero":
            nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), img.affine, img.header), f)
        elif label == "noise":
            nib.save(nib.Nifti1Image((rng.random(img.shape) * 1000).astype(np.int16), img.affine, img.header), f)
        elif label in ("noflair", "not1w"):
            for g in anat.glob(f"*_{kind}*"):
                g.unlink()
    anat = _clone(ds, "00003", "lps", lobe="XX")  # an unknown lobe code in participants.tsv
    t1 = _one(anat, "T1w")
    nib.save(_oblique(_reorient(nib.load(t1), "LPS"), 12.0), t1)
    fl = _one(anat, "FLAIR")
    nib.save(_reorient(nib.load(fl), "ASR"), fl)  # sagittal slices
    anat = _clone(ds, "00003", "thick")
    fl = _one(anat, "FLAIR")
    img = nib.load(fl)
    thick = resample_img(img, target_affine=np.diag([3.0, 3.0, 6.0]), interpolation="continuous",
                         force_resample=True, copy_header=True)  # RAS, a 2D FLAIR with 6 mm slices
    nib.save(nib.Nifti1Image(np.asarray(thick.get_fdata(), np.float32), thick.affine), fl)
    return ds


@pytest.fixture(scope="module")
def battery_run(phantom, tiny_model, work_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("battery")
    ds = _battery(phantom, root)
    before = _tree_hash(ds)
    for p in [ds, *ds.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)  # the input is read-only (root may still write: the hash checks that)
    system_tmp = root / "system-tmp"  # stands for the system temporary directory, which other processes share
    system_tmp.mkdir()
    old_tempdir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(system_tmp), str(system_tmp)
    out = root / "out"
    try:
        code = main([str(ds), str(out), "participant", "--model", str(tiny_model), "--work-dir", str(work_dir),
                     *SAMPLER])
    finally:
        tempfile.tempdir = old_tempdir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
    new_tmp = set(system_tmp.iterdir())
    yield {"ds": ds, "out": out, "code": code, "before": before, "new_tmp": new_tmp}
    for p in [ds, *ds.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)


def test_broken_participants_fail_alone_with_their_file_named(battery_run, caplog):
    out = battery_run["out"]
    assert battery_run["code"] == 1, "a failed participant makes the exit code non-zero"
    for label, (kind, words) in BROKEN.items():
        crash = json.loads((out / f"sub-{label}" / "log" / f"sub-{label}_crash.json").read_text())
        assert words in crash["message"], (label, crash["message"])
        assert "\n" not in crash["message"].strip(), "one line for the user"
        if label not in ("noflair", "not1w"):
            assert f"sub-{label}_" in crash["message"] and kind in crash["message"], crash["message"]
        assert not (out / f"sub-{label}" / "anat").exists(), f"sub-{label}: no half-written outputs"
        assert not (out / f"sub-{label}.html").exists()
    assert not (out / ".staging").exists()


def test_odd_geometry_and_good_participants_complete(battery_run):
    out, ds = battery_run["out"], battery_run["ds"]
    for label in ("00001", "00002", "00003", *ODD):
        assert (out / f"sub-{label}" / "log" / f"sub-{label}_manifest.json").exists(), label
        assert not (out / f"sub-{label}" / "log" / f"sub-{label}_crash.json").exists()
        native = nib.load(out / f"sub-{label}" / "anat" / f"sub-{label}_space-T1w_stat-z_desc-anomaly_statmap.nii.gz")
        t1 = nib.load(_one(ds / f"sub-{label}" / "anat", "T1w"))
        assert native.shape == t1.shape and np.allclose(native.affine, t1.affine, atol=1e-4)
    # the LPS + oblique T1w with a sagittal FLAIR lands where the plain one does (same head, same template)
    def brain(label: str) -> np.ndarray:
        return nib.load(next((out / f"sub-{label}" / "anat").glob("*_desc-brain_mask.nii.gz"))).get_fdata() > 0
    a, b = brain("00003"), brain("lps")
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9


def test_the_input_is_untouched_and_no_temporary_files_are_left(battery_run):
    assert _tree_hash(battery_run["ds"]) == battery_run["before"], "the input dataset must not change"
    assert not battery_run["new_tmp"], f"left in the system temporary directory: {battery_run['new_tmp']}"
    work_tmp = [p for p in Path(battery_run["out"]).parent.rglob("tmp.*") if p.is_dir()]
    assert not work_tmp


def _cli(ds: Path, out: Path, work: Path, model: Path, *extra: str) -> list[str]:
    return [str(ds), str(out), "participant", "--model", str(model), "--work-dir", str(work), *SAMPLER, *extra]


def test_same_input_same_seed_same_threads_bit_identical(phantom, tiny_model, tmp_path):
    """From scratch twice (fresh work directories: ANTs, deepbet and the sampler all rerun)."""
    runs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        assert main(_cli(phantom, out, tmp_path / f"work{i}", tiny_model, "--participant-label", "00003")) == 0
        runs.append(_anat_hashes(out, "sub-00003"))
    assert runs[0] == runs[1]
    assert len(runs[0]) >= 20


def test_rerun_skips_complete_participants_unless_overwrite(phantom, tiny_model, work_dir, tmp_path, caplog):
    out = tmp_path / "out"
    args = _cli(phantom, out, work_dir, tiny_model, "--participant-label", "00003")
    assert main(args) == 0
    first = _anat_hashes(out, "sub-00003")
    stamp = {p: p.stat().st_mtime_ns for p in (out / "sub-00003" / "anat").iterdir()}
    caplog.clear()
    assert main(args) == 0
    assert "skipped (use --overwrite to recompute)" in caplog.text
    assert stamp == {p: p.stat().st_mtime_ns for p in (out / "sub-00003" / "anat").iterdir()}, "nothing rewritten"
    z = next((out / "sub-00003" / "anat").glob("*_stat-z_desc-anomaly_statmap.nii.gz"))
    z.write_bytes(b"damaged")
    caplog.clear()
    assert main(args) == 0 and "missing or changed" in caplog.text, "a damaged output is recomputed"
    assert _anat_hashes(out, "sub-00003") == first
    caplog.clear()
    assert main([*args, "--overwrite"]) == 0 and "skipped (use --overwrite" not in caplog.text


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bids_fcd", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_a_killed_run_rerun_matches_an_uninterrupted_one(phantom, tiny_model, work_dir, tmp_path):
    ref_out, out = tmp_path / "ref", tmp_path / "out"
    label = ["--participant-label", "00002"]
    assert main(_cli(phantom, ref_out, work_dir, tiny_model, *label)) == 0
    proc = _spawn(_cli(phantom, out, work_dir, tiny_model, *label))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill while it writes
        staged = list((out / ".staging").rglob("*.nii.gz")) if (out / ".staging").exists() else []
        if len(staged) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "sub-00002" / "log" / "sub-00002_manifest.json").exists()
    assert main(_cli(phantom, out, work_dir, tiny_model, *label)) == 0
    assert _anat_hashes(out, "sub-00002") == _anat_hashes(ref_out, "sub-00002")
    assert not (out / ".staging").exists(), "the killed run's staging folder is cleaned up by the rerun"


def test_two_runs_share_a_work_directory(phantom, tiny_model, work_dir, tmp_path):
    out = tmp_path / "out"
    procs = [_spawn(_cli(phantom, out, work_dir, tiny_model, "--participant-label", lab))
             for lab in ("00001", "00003")]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    for lab in ("00001", "00003"):
        assert (out / f"sub-{lab}" / "log" / f"sub-{lab}_manifest.json").exists()
    with open(out / "sub-00001" / "anat" / "sub-00001_desc-lobes_probabilities.tsv") as fh:
        assert len(list(csv.DictReader(fh, delimiter="\t"))) == 6


def test_a_tampered_model_is_refused_before_anything_is_written(phantom, tiny_model, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = bytearray((model / "unet.pt").read_bytes())
    weights[-10] ^= 0xFF
    (model / "unet.pt").write_bytes(bytes(weights))
    out = tmp_path / "out"
    assert main(_cli(phantom, out, tmp_path / "work", model, "--participant-label", "00001")) == 1
    assert "unet.pt does not match its sha256 in SHA256SUMS" in caplog.text
    assert not out.exists(), "nothing written with a model that failed its check"


def test_a_failed_report_is_counted_and_loses_no_derivative(phantom, tiny_model, work_dir, tmp_path, monkeypatch,
                                                           caplog):
    import bids_fcd.reports.participant as rp

    def broken(root, data):
        raise RuntimeError("no figures today")

    monkeypatch.setattr(rp, "write_participant_report", broken)
    out = tmp_path / "out"
    assert main(_cli(phantom, out, work_dir, tiny_model, "--participant-label", "00003")) == 1
    assert "the HTML report could not be made (RuntimeError: no figures today)" in caplog.text
    anat = out / "sub-00003" / "anat"
    assert len(list(anat.glob("*.nii.gz"))) >= 10, "the derivatives are kept"
    crash = json.loads((out / "sub-00003" / "log" / "sub-00003_crash.json").read_text())
    assert "HTML report" in crash["message"]
    assert not (out / "sub-00003" / "log" / "sub-00003_manifest.json").exists(), "a rerun makes the report again"
