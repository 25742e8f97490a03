"""Every subcommand resolves the device and the work directory the same way (issue #18)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bids_fcd import resources
from bids_fcd.cli.main import THIRD_PARTY_LOGGERS, main, setup_logging
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


@pytest.fixture
def restored_logging():
    """Put the root logger, its handlers (filters, streams) and the third-party loggers back as they were."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    filters = {h: list(h.filters) for h in handlers}
    streams = {h: h.stream for h in handlers if isinstance(h, logging.StreamHandler)}
    third = {name: logging.getLogger(name).level for name in THIRD_PARTY_LOGGERS}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h, fs in filters.items():
        h.filters[:] = fs
    for h, stream in streams.items():
        h.setStream(stream)
    root.setLevel(level)
    for name, lvl in third.items():
        logging.getLogger(name).setLevel(lvl)


def _product_stream() -> io.StringIO:
    """Point the CLI's log handler at a string buffer and return it."""
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_bids_fcd", False)]
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    return stream


def _write_pdf_with_embedded_font() -> None:
    """What the participant PDF does: matplotlib's PDF backend with TrueType fonts, subset by fontTools."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = plt.figure(figsize=(1, 1))
        fig.text(0.1, 0.5, "z 5.5")
        fig.savefig(io.BytesIO(), format="pdf")
        plt.close(fig)


@pytest.mark.parametrize("verbosity", [0, 1])
def test_third_party_loggers_are_at_warning_without_vv(restored_logging, verbosity):
    setup_logging(verbosity)
    for name in ("fontTools", "fontTools.subset", "matplotlib", "matplotlib.font_manager", "PIL", "nibabel", "bids"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    assert logging.getLogger("bids_fcd.workflows.participant").isEnabledFor(logging.INFO)
    assert not logging.getLogger("bids_fcd").isEnabledFor(logging.DEBUG)


def test_vv_lets_third_party_loggers_log_at_debug(restored_logging):
    setup_logging(0)
    setup_logging(2)  # a second call (the demo runs several steps) re-applies the levels
    for name in ("fontTools.subset", "matplotlib"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG, name
    assert logging.getLogger("bids_fcd").isEnabledFor(logging.DEBUG)


def test_unlisted_third_party_info_is_dropped_but_its_warnings_and_the_products_info_pass(restored_logging):
    setup_logging(0)
    stream = _product_stream()
    logging.getLogger("some_library.module").info("chatter")
    logging.getLogger("some_library.module").warning("a real problem")
    logging.getLogger("bids_fcd.workflows.participant").info("sub-01: done")
    text = stream.getvalue()
    assert "chatter" not in text and "a real problem" in text and "sub-01: done" in text


def test_the_pdf_writers_font_subsetting_is_not_logged_without_vv(restored_logging):
    setup_logging(0)
    stream = _product_stream()
    _write_pdf_with_embedded_font()
    assert "fontTools" not in stream.getvalue()
    setup_logging(2)
    stream = _product_stream()
    _write_pdf_with_embedded_font()
    assert "fontTools.subset" in stream.getvalue()
