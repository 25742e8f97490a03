"""Shared fixtures: one tiny phantom, a tiny model trained on it by `bids-fcd train`, one
participant-level run. Session-scoped so the real preprocessing runs once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bids_fcd.cli.main import main
from bids_fcd.phantom.generator import write_cohort

PHANTOM_SEED = 3


@pytest.fixture(scope="session")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BIDS phantom: 2 FCD + 1 control (read-only for tests: copy before changing it)."""
    root = tmp_path_factory.mktemp("phantom") / "bids"
    write_cohort(root, n_fcd=2, n_hc=1, seed=PHANTOM_SEED, size="tiny")
    return root


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One preprocessing cache shared by training and the participant level."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def tiny_model(phantom: Path, work_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for two epochs on every phantom participant via the CLI."""
    model = tmp_path_factory.mktemp("models") / "tiny"
    code = main(["train", str(phantom), str(model), "--preset", "tiny", "--participant-label", "00001", "00002",
                 "00003", "--work-dir", str(work_dir), "--skip-bids-validation", "--seed", "0"])
    assert code == 0
    return model


@pytest.fixture(scope="session")
def participant_run(phantom: Path, tiny_model: Path, work_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTPUT_DIR of a participant-level run over the whole phantom."""
    out = tmp_path_factory.mktemp("out") / "derivatives"
    code = main([str(phantom), str(out), "participant", "--model", str(tiny_model), "--work-dir", str(work_dir),
                 "--encoding", "stochastic", "--noise-level", "20", "--steps", "5", "--guidance-scale", "5", "--draws", "1",
                 "--skip-bids-validation"])
    assert code == 0
    return out


def copy_dataset(src: Path, dst: Path) -> Path:
    """A writable copy of a BIDS dataset."""
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def stop_signals_at_their_defaults():
    """SIGINT and SIGTERM as in a foreground shell, whatever this test process inherited: a test runner started
    in the background of a non-interactive shell ignores SIGINT, and the product keeps an ignored signal ignored."""
    import signal

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)
