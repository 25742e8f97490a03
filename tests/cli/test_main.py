"""Every subcommand resolves the device and the work directory the same way (issue #18)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bids_fcd import resources
from bids_fcd.cli.main import main
from bids_fcd.config import SAMPLER_PRESETS, SamplerConfig
from bids_fcd.workflows import benchmark, reference, train


class Reached(Exception):
    """Raised by a stub where the real step would start heavy work."""


def _no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_resolve_device(monkeypatch):
    _no_cuda(monkeypatch)
    assert resources.resolve_device("auto") == torch.device("cpu")
    assert resources.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="use --device cpu or auto"):
        resources.resolve_device("cuda")


def test_reference_refuses_cuda_without_a_gpu(monkeypatch, tmp_path: Path, caplog):
    _no_cuda(monkeypatch)
    monkeypatch.setattr(reference, "load_model", lambda *a, **k: pytest.fail("the model must not be loaded"))
    with caplog.at_level(logging.ERROR):
        code = main(["reference", str(tmp_path), str(tmp_path.parent / "ref"), "--device", "cuda",
                     "--participant-label", "a1", "a2", "a3", "a4"])
    assert code == 1
    assert "--device cuda was asked for but no CUDA GPU is visible" in caplog.text


def test_reference_uses_the_work_dir_of_the_environment(monkeypatch, tmp_path: Path):
    env_work = tmp_path / "env-work"
    monkeypatch.setenv("BIDS_FCD_WORK_DIR", str(env_work))
    model = SimpleNamespace(post=reference.PostConfig())
    monkeypatch.setattr(reference, "load_model", lambda *a, **k: model)
    monkeypatch.setattr(reference, "resolve_sampler", lambda s, m: s)
    seen: dict[str, Path] = {}

    def load_cohort(bids, work, mdl, labels):
        seen["work"] = work
        raise Reached

    monkeypatch.setattr(reference, "load_cohort", load_cohort)
    with pytest.raises(Reached):
        main(["reference", str(tmp_path), str(tmp_path / "ref"), "--device", "cpu",
              "--participant-label", "a1", "a2", "a3", "a4"])
    assert seen["work"] == env_work


def test_train_uses_the_work_dir_of_the_environment(monkeypatch, tmp_path: Path):
    env_work = tmp_path / "env-work"
    monkeypatch.setenv("BIDS_FCD_WORK_DIR", str(env_work))
    monkeypatch.setattr(train, "open_layout", lambda *a, **k: SimpleNamespace(get_subjects=lambda: ["a1"]))
    seen: dict[str, Path] = {}

    def load_subjects(bids, subjects, work, cfg, skip, info):
        seen["work"] = work
        raise Reached

    monkeypatch.setattr(train, "load_subjects", load_subjects)
    with pytest.raises(Reached):
        main(["train", str(tmp_path), str(tmp_path / "model"), "--device", "cpu", "--participant-label", "a1"])
    assert seen["work"] == env_work


def test_train_refuses_cuda_without_a_gpu(monkeypatch, tmp_path: Path, caplog):
    _no_cuda(monkeypatch)
    with caplog.at_level(logging.ERROR):
        assert main(["train", str(tmp_path), str(tmp_path / "model"), "--device", "cuda"]) == 1
    assert "no CUDA GPU is visible" in caplog.text


def test_benchmark_paper_row_is_the_paper_preset():
    rows = dict(benchmark.sampler_ablations(SamplerConfig()))
    (paper,) = [cfg for name, cfg in rows.items() if name.startswith("paper preset")]
    for key, value in SAMPLER_PRESETS["paper"].items():
        assert getattr(paper, key) == value, f"the benchmark's paper row differs from the preset in {key}"


def test_synthesize_is_wired_into_the_cli(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synthesize", "lesions", "sample", "--help"])
    assert exc.value.code == 0 and "--pathology" in capsys.readouterr().out
