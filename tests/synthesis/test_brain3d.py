"""3D brain DDPM: volumes from slices, training lowers the loss, seeded sampling, the CLI round trip."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_fcd.cli import synthesize
from bids_fcd.config import from_dict, to_dict
from bids_fcd.synthesis import brain3d as B
from bids_fcd.synthesis.config import BRAIN_PRESETS, BrainDDPMConfig, BrainNetConfig
from bids_fcd.training.datasets import SubjectSlices

TINY = BRAIN_PRESETS["tiny"]


def _subjects(n: int = 3) -> list[SubjectSlices]:
    rng = np.random.default_rng(640)
    out = []
    for k in range(n):
        stack = np.full((8, 2, 8, 8), -1.0, np.float32)
        mask = np.zeros((8, 8, 8), bool)
        mask[1:7, 2:6, 2:6] = True
        stack[:, 1][mask] = rng.normal(0.3, 0.1, int(mask.sum()))
        out.append(SubjectSlices(f"0000{k + 1}", stack, mask, None, "n/a"))
    return out


def test_volume_from_subject_masks_pads_and_scales() -> None:
    v = B.volume_from_subject(_subjects(1)[0], TINY)
    assert v.shape == (1, 8, 8, 8) and v.min() >= -1 and v.max() <= 1
    assert (v[0, 0] == -1).all()  # x = 0 lies outside the mask
    cfg = dataclasses.replace(TINY, net=dataclasses.replace(TINY.net, image_size=(4, 4, 4)))
    with pytest.raises(ValueError, match="preset"):
        B.volume_from_subject(_subjects(1)[0], cfg)
    with pytest.raises(ValueError, match="divisible"):
        BrainNetConfig(image_size=(9, 8, 8), channels=(8, 16), attention=(False, True))


def test_training_lowers_the_loss_and_sampling_is_seeded() -> None:
    x = torch.from_numpy(np.stack([B.volume_from_subject(s, TINY) for s in _subjects()]))
    cfg = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, steps=30))
    res = B.train(cfg, x)
    assert res.log[-1]["mse"] < res.log[0]["mse"]
    s1 = B.sample(res.ema, cfg.net, 3, cfg.sample, seed=1)
    s2 = B.sample(res.ema, cfg.net, 3, cfg.sample, seed=1)
    assert s1.shape == (3, 1, 8, 8, 8) and torch.equal(s1, s2)
    assert not torch.equal(s1, B.sample(res.ema, cfg.net, 3, cfg.sample, seed=2))


def test_presets_round_trip_and_paper_sizes() -> None:
    for cfg in BRAIN_PRESETS.values():
        assert from_dict(BrainDDPMConfig, to_dict(cfg)) == cfg
    p = BRAIN_PRESETS["paper"].net
    assert p.channels == (128, 128, 256) and p.res_blocks == 2 and p.attention == (False, False, True)
    assert p.schedule == "scaled_linear_beta"


def test_cli_brains_train_and_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bids_fcd.synthesis.data as data

    monkeypatch.setattr(data, "load_bids_subjects", lambda *a, **k: _subjects())
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\tgroup\nsub-00001\thc\nsub-00002\thc\n")
    p = argparse.ArgumentParser()
    synthesize.add_subparser(p.add_subparsers(dest="command"))
    model = tmp_path / "m"
    assert synthesize.run(p.parse_args(["synthesize", "brains", "train", str(bids), str(model), "--preset", "tiny",
                                        "--steps", "4", "--threads", "1"])) == 0
    assert json.loads((model / "config.json").read_text())["kind"] == "brain3d"
    out = tmp_path / "o"
    assert synthesize.run(p.parse_args(["synthesize", "brains", "sample", str(model), str(out), "--n", "2",
                                        "--threads", "1"])) == 0
    img = nib.load(out / "synthetic_T1w_0001.nii.gz")
    assert img.shape == (8, 8, 8)
    assert json.loads((out / "synthetic_T1w_0001.json").read_text())["Synthetic"] is True
    # a JS-DDPM command on a brain model is refused with the reason
    assert synthesize.run(p.parse_args(["synthesize", "lesions", "sample", str(model), str(tmp_path / "x"), "--n", "1",
                                        "--threads", "1"])) == 1
