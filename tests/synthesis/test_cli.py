"""``bids-fcd synthesize``: parser, lesions train → sample through run(), outputs and sidecars."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.cli import synthesize
from bids_fcd.training.datasets import SubjectSlices


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bids-fcd")
    synthesize.add_subparser(p.add_subparsers(dest="command", required=True))
    return p


def _subjects() -> list[SubjectSlices]:
    """Two 16×16 'subjects' of 12 slices: a bright blob where the lesion mask is, and one control."""
    rng = np.random.default_rng(620)
    out = []
    for k, has in enumerate((True, False)):
        stack = np.full((12, 2, 16, 16), -1.0, np.float32)
        mask = np.zeros((12, 16, 16), bool)
        mask[:, 3:13, 3:13] = True
        stack[:, :, 3:13, 3:13] = rng.normal(0.0, 0.1, (12, 2, 10, 10))
        roi = None
        if has:
            roi = np.zeros((12, 16, 16), bool)
            roi[4:8, 6:9, 6:9] = True
            stack[:, 0][roi] = 1.5
        out.append(SubjectSlices(f"0000{k + 1}", stack, mask, roi, "FL" if has else "n/a"))
    return out


def test_import_is_light() -> None:
    code = "import sys, bids_fcd.cli.synthesize; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_parser_shapes_and_refusals(tmp_path: Path) -> None:
    p = _parser()
    a = p.parse_args(["synthesize", "lesions", "sample", str(tmp_path), str(tmp_path / "o"), "--n", "3", "--z-bin",
                      "12", "--pathology", "control", "--seed", "5"])
    assert (a.synth_model, a.synth_action, a.n, a.z_bin, a.pathology, a.seed) == ("lesions", "sample", 3, 12,
                                                                                  "control", 5)
    b = p.parse_args(["synthesize", "lesions", "train", str(tmp_path), str(tmp_path / "m"), "--preset", "tiny",
                      "--participant-label", "sub-00001", "--prediction", "epsilon", "--max_minutes", "2"])
    assert b.participant_label == ["00001"] and b.prediction == "epsilon" and b.max_minutes == 2.0
    for bad in (["synthesize", "lesions", "sample", str(tmp_path), "o"],  # --n missing
                ["synthesize", "lesions", "sample", str(tmp_path), "o", "--n", "0"],
                ["synthesize", "lesions", "train", str(tmp_path / "nope"), "m"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_ablation_flags_reach_the_config(tmp_path: Path) -> None:
    from bids_fcd.synthesis import lesions

    a = _parser().parse_args(["synthesize", "lesions", "train", str(tmp_path), str(tmp_path / "m"), "--no-kendall",
                              "--no-self-conditioning"])
    assert a.no_kendall and a.no_self_conditioning
    off = lesions.resolve_config("cpu", {"kendall": False, "self_conditioning": False, "steps": None})
    on = lesions.resolve_config("cpu", {"kendall": None, "self_conditioning": None})
    assert (off.loss.kendall, off.net.self_conditioning) == (False, False)
    assert (on.loss.kendall, on.net.self_conditioning) == (True, True)
    assert off.train == on.train and off.loss.p == on.loss.p


def test_train_and_sample_write_synthetic_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bids_fcd.synthesis import lesions

    monkeypatch.setattr(lesions, "load_bids_subjects", lambda *a, **k: _subjects())
    bids = tmp_path / "bids"
    bids.mkdir()
    model = tmp_path / "model"
    p = _parser()
    args = p.parse_args(["synthesize", "lesions", "train", str(bids), str(model), "--preset", "tiny", "--steps", "6",
                         "--threads", "1", "--device", "cpu"])
    assert synthesize.run(args) == 0
    for f in ("config.json", "ema.pt", "model.pt", "train_log.jsonl", "MODEL_CARD.md", "SHA256SUMS"):
        assert (model / f).exists(), f
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["kind"] == "jsddpm" and cfg["meta"]["lesion_slices"] == 4
    assert cfg["meta"]["z_bin_counts"]["lesion"][10:20].count(0) < 10
    assert "synthetic" in (model / "MODEL_CARD.md").read_text().lower()

    out = tmp_path / "samples"
    sargs = p.parse_args(["synthesize", "lesions", "sample", str(model), str(out), "--n", "5", "--seed", "7",
                          "--threads", "1", "--device", "cpu"])
    assert synthesize.run(sargs) == 0
    fl, roi = nib.load(out / "synthetic_FLAIR.nii.gz"), nib.load(out / "synthetic_roi.nii.gz")
    assert fl.shape == (16, 16, 5) and roi.shape == (16, 16, 5)
    assert set(np.unique(np.asarray(roi.dataobj))) <= {0, 1}
    side = json.loads((out / "synthetic_FLAIR.json").read_text())
    assert side["Synthetic"] is True and side["Seed"] == 7 and len(side["ModelSHA256"]) == 64
    rows = list(csv.DictReader(open(out / "samples.tsv"), delimiter="\t"))
    assert len(rows) == 5 and all(r["pathology"] == "lesion" for r in rows)

    again = tmp_path / "again"
    assert synthesize.run(p.parse_args(["synthesize", "lesions", "sample", str(model), str(again), "--n", "5",
                                        "--seed", "7", "--threads", "1", "--device", "cpu"])) == 0
    assert np.array_equal(np.asarray(nib.load(again / "synthetic_FLAIR.nii.gz").dataobj), np.asarray(fl.dataobj))
    # a second run into the same directory is refused; a changed weight file is caught
    assert synthesize.run(sargs) == 1
    (model / "ema.pt").write_bytes(b"x")
    assert synthesize.run(p.parse_args(["synthesize", "lesions", "sample", str(model), str(tmp_path / "c"), "--n", "1",
                                        "--threads", "1"])) == 1


def test_train_refuses_a_dataset_without_lesions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bids_fcd.synthesis import lesions

    monkeypatch.setattr(lesions, "load_bids_subjects", lambda *a, **k: _subjects()[1:])
    args = _parser().parse_args(["synthesize", "lesions", "train", str(tmp_path), str(tmp_path / "m"), "--preset",
                                 "tiny", "--steps", "2", "--threads", "1"])
    assert synthesize.run(args) == 1  # inside the dataset, and no lesion
    other = tmp_path.parent / (tmp_path.name + "-models") / "m"
    args = _parser().parse_args(["synthesize", "lesions", "train", str(tmp_path), str(other), "--preset", "tiny",
                                 "--steps", "2", "--threads", "1"])
    assert synthesize.run(args) == 1
    assert not (other / "SHA256SUMS").exists()
